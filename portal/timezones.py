"""Showing UTC instants in a person's or a site's zone, always with the zone named."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from portal.models import Site, User

DEFAULT_ZONE = "UTC"


def zone_for(user: User | None, site: Site | None = None) -> ZoneInfo:
    """A site's own zone when showing that site's things; otherwise the person's preference, then
    their home site's zone."""
    if site is not None:
        return ZoneInfo(site.time_zone)
    if user is not None and getattr(user, "time_zone", None):
        return ZoneInfo(user.time_zone)
    if user is not None and getattr(user, "home_site", None) is not None:
        return ZoneInfo(user.home_site.time_zone)
    return ZoneInfo(DEFAULT_ZONE)


def format_local(instant: datetime | None, zone: ZoneInfo, with_date: bool = True) -> str:
    """E.g. "Mon 30 Nov 2026, 14:05 CET" — the abbreviation names the zone and its DST state."""
    if instant is None:
        return "—"
    local = instant.astimezone(zone)
    text = local.strftime("%a %-d %b %Y, %H:%M" if with_date else "%H:%M")
    return f"{text} {local.tzname()}"
