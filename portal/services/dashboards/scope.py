"""Which sites a dashboard counts: one site the viewer looks after, or all of them."""

from __future__ import annotations

from dataclasses import dataclass

from portal.errors import NotFound
from portal.models import Floor, Site


@dataclass(frozen=True)
class Scope:
    sites: tuple[Site, ...]  # never empty
    all_sites: bool  # the viewer asked for every site they look after
    floor: Floor | None = None

    @property
    def site_ids(self) -> list[int]:
        return [s.id for s in self.sites]

    @property
    def label(self) -> str:
        if self.all_sites and len(self.sites) > 1:
            return f"All my sites ({len(self.sites)})"
        place = self.sites[0].name
        return f"{place} · {self.floor.building.name} · {self.floor.name}" if self.floor else place


def resolve_scope(
    managed: list[Site],
    site_id: str | None,
    floor: Floor | None = None,
    default: Site | None = None,
) -> Scope:
    """The scope the filters ask for among `managed` (the viewer's sites). A site or floor the
    viewer does not look after is NotFound, exactly like one that does not exist."""
    if not managed:
        raise NotFound("no sites")
    if site_id in (None, ""):
        site = default or managed[0]
        return Scope((site,), False, None)
    if site_id == "all":
        if floor is not None:
            raise NotFound("a floor needs one site")
        return Scope(tuple(managed), True, None)
    try:
        wanted = int(site_id)
    except ValueError:
        raise NotFound("no such site") from None
    site = next((s for s in managed if s.id == wanted), None)
    if site is None:
        raise NotFound("no such site")
    if floor is not None and floor.building.site_id != site.id:
        raise NotFound("no such floor")
    return Scope((site,), False, floor)
