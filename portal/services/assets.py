"""The asset register: tracked equipment (a laptop, a monitor) with a tag, a serial number, who holds
it and everything that happened to it. Coordinators add and hand over assets of their sites; the
holder accepts a hand-over and asks to give it back.

Every change checks the version the person was looking at (`expected_version`) and the row's own
version column, so two coordinators acting on one asset from two tabs cannot both win."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from portal.errors import Conflict, NotFound, RuleViolation
from portal.models import Asset, AssetEvent, AssetStatus, CatalogItem, Site, User
from portal.services import audit, notices, notifications, tickets
from portal.services.audit import Actor

TAG_MAX = 40
SERIAL_MAX = 80
NOTE_MAX = 500
# Tags and serial numbers are printed on labels: plain text, no markup, no control characters.
FORBIDDEN = re.compile(r"[<>\x00-\x1f\x7f]")

STATUS_LABELS = {
    AssetStatus.IN_STOCK: "In stock",
    AssetStatus.ASSIGNED: "Handed over",
    AssetStatus.ACCEPTED: "In use",
    AssetStatus.RETURN_REQUESTED: "Return requested",
    AssetStatus.LOST: "Lost",
    AssetStatus.RETIRED: "Retired",
}
EVENT_LABELS = {
    "received": "Received into stock",
    "assigned": "Handed over",
    "accepted": "Accepted by the holder",
    "return_requested": "Return requested",
    "returned": "Returned",
    "lost": "Marked lost",
    "retired": "Retired",
}
# Someone has it: it shows in their "My equipment".
HELD_STATUSES = (AssetStatus.ASSIGNED, AssetStatus.ACCEPTED, AssetStatus.RETURN_REQUESTED)


class StaleAsset(Conflict):
    """Someone changed the asset after the page was opened."""

    def __init__(self) -> None:
        super().__init__(
            "Changed by someone else since you opened it: here is the current state. "
            "Check it and try again."
        )


# ---------------------------------------------------------------------------------------------
# Who may see and do what


def may_manage(user: User, asset: Asset) -> bool:
    """Coordinators of the asset's site, and admins."""
    return bool(
        user.is_authenticated and (user.is_admin or asset.site_id in user.coordinated_site_ids())
    )


def _load(session: Session, asset_id: object) -> Asset | None:
    try:
        return session.get(Asset, int(asset_id))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def managed_asset(session: Session, user: User, asset_id: object) -> Asset:
    """The asset if `user` coordinates its site; NotFound otherwise (ids cannot be probed)."""
    asset = _load(session, asset_id)
    if asset is None or not may_manage(user, asset):
        raise NotFound("There is no such asset.")
    return asset


def held_asset(session: Session, user: User, asset_id: object) -> Asset:
    """The asset if `user` holds it; NotFound otherwise."""
    asset = _load(session, asset_id)
    if asset is None or asset.holder_id != user.id or asset.status not in HELD_STATUSES:
        raise NotFound("There is no such asset.")
    return asset


def check_version(asset: Asset, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != asset.version:
        raise StaleAsset()


def _flush(session: Session) -> None:
    """The version column settles a race the expected_version check could not see."""
    try:
        session.flush()
    except StaleDataError as exc:
        raise StaleAsset() from exc


# ---------------------------------------------------------------------------------------------
# Reading


def tracked_items(session: Session) -> list[CatalogItem]:
    return list(
        session.scalars(
            select(CatalogItem)
            .where(CatalogItem.tracked.is_(True), CatalogItem.active.is_(True))
            .order_by(CatalogItem.name)
        )
    )


def search(
    session: Session,
    user: User,
    *,
    q: str = "",
    status: str = "",
    item_id: int | None = None,
    site_id: int | None = None,
    holder_id: int | None = None,
    limit: int = 200,
) -> list[Asset]:
    """Assets of the sites `user` coordinates (every site for admins), matching the filters: `q`
    searches the tag, the serial number and the holder's name and e-mail."""
    query = (
        select(Asset)
        .outerjoin(User, User.id == Asset.holder_id)
        .options(selectinload(Asset.holder), selectinload(Asset.site))
        .order_by(Asset.asset_tag)
        .limit(limit)
    )
    if not user.is_admin:
        query = query.where(Asset.site_id.in_(user.coordinated_site_ids() or {-1}))
    if site_id:
        query = query.where(Asset.site_id == site_id)
    if status == "held":
        query = query.where(Asset.status.in_(HELD_STATUSES))
    elif status in STATUS_LABELS:
        query = query.where(Asset.status == status)
    if item_id:
        query = query.where(Asset.item_id == item_id)
    if holder_id:
        query = query.where(Asset.holder_id == holder_id)
    text = " ".join((q or "").split())[:100]
    if text:
        like = f"%{_escape_like(text.lower())}%"
        query = query.where(
            or_(
                func.lower(Asset.asset_tag).like(like, escape="\\"),
                func.lower(Asset.serial_number).like(like, escape="\\"),
                func.lower(User.name).like(like, escape="\\"),
                func.lower(User.email).like(like, escape="\\"),
            )
        )
    return list(session.scalars(query))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def held_by(session: Session, user: User) -> list[Asset]:
    """What `user` has: handed over (waiting for them to accept), in use, or asked back."""
    return list(
        session.scalars(
            select(Asset)
            .where(Asset.holder_id == user.id, Asset.status.in_(HELD_STATUSES))
            .options(selectinload(Asset.site))
            .order_by(Asset.assigned_at.desc(), Asset.id)
        )
    )


def history(session: Session, asset: Asset) -> list[AssetEvent]:
    """Everything that happened to the asset, newest first."""
    return list(
        session.scalars(
            select(AssetEvent)
            .where(AssetEvent.asset_id == asset.id)
            .options(selectinload(AssetEvent.actor), selectinload(AssetEvent.holder))
            .order_by(AssetEvent.id.desc())
        )
    )


# ---------------------------------------------------------------------------------------------
# Adding


def normalise_tag(tag: str) -> str:
    return " ".join((tag or "").split()).upper()


@dataclass(frozen=True)
class NewAsset:
    item_id: int | None
    asset_tag: str
    serial_number: str = ""
    note: str = ""


def add_asset(
    session: Session, actor: Actor, by: User, site: Site, details: NewAsset, *, now: datetime
) -> Asset:
    """Receive a tracked item into a site's stock under a unique asset tag."""
    if not (by.is_admin or site.id in by.coordinated_site_ids()):
        raise NotFound("There is no such site.")
    errors: dict[str, str] = {}
    item = session.get(CatalogItem, details.item_id) if details.item_id else None
    if item is None or not item.active:
        errors["item_id"] = "Choose an item from the catalog."
    elif not item.tracked:
        errors["item_id"] = f"{item.name} is a consumable; only tracked items have asset tags."
    tag = normalise_tag(details.asset_tag)
    serial = " ".join((details.serial_number or "").split())
    if not tag:
        errors["asset_tag"] = "Give it an asset tag, as printed on its label."
    elif len(tag) > TAG_MAX:
        errors["asset_tag"] = f"Keep the tag under {TAG_MAX} characters."
    elif FORBIDDEN.search(tag):
        errors["asset_tag"] = "Use letters, digits and dashes; no < or >."
    elif session.scalar(select(Asset.id).where(Asset.asset_tag == tag)) is not None:
        errors["asset_tag"] = f"{tag} is already in the register."
    if len(serial) > SERIAL_MAX:
        errors["serial_number"] = f"Keep the serial number under {SERIAL_MAX} characters."
    elif FORBIDDEN.search(serial):
        errors["serial_number"] = "The serial number cannot contain < or >."
    note = (details.note or "").strip()
    if len(note) > NOTE_MAX:
        errors["note"] = f"Keep the note under {NOTE_MAX} characters."
    if errors:
        raise RuleViolation(errors, "invalid")
    assert item is not None
    asset = Asset(
        item_id=item.id,
        site_id=site.id,
        asset_tag=tag,
        serial_number=serial,
        status=AssetStatus.IN_STOCK,
        note=note,
        created_at=now,
    )
    try:
        # Added inside the savepoint: begin_nested() flushes what is pending first, outside it.
        with session.begin_nested():
            session.add(asset)
            session.flush()
    except IntegrityError as exc:  # a colleague registered the same tag a moment ago
        raise RuleViolation({"asset_tag": f"{tag} was just added by someone else."}) from exc
    _event(session, asset, "received", by, note=note, now=now)
    audit.record(session, actor, "asset.received", asset, after=snapshot(asset))
    return asset


# ---------------------------------------------------------------------------------------------
# Moving it along


def hand_over(
    session: Session,
    actor: Actor,
    asset: Asset,
    to_user: User,
    by: User,
    now: datetime,
    *,
    expected_version: int | None = None,
    note: str = "",
) -> Asset:
    """Give an asset in stock to someone. It waits for them to accept it; they are told by e-mail
    and with a notice in the header. (Fulfilling a request for a tracked item calls this.)"""
    _require_manager(by, asset)
    check_version(asset, expected_version)
    if asset.status != AssetStatus.IN_STOCK:
        raise RuleViolation({"to_user": _not_in_stock(asset)}, "not_in_stock")
    if not to_user.active:
        raise RuleViolation({"to_user": f"{to_user.name} no longer has an account."}, "inactive")
    before = snapshot(asset)
    asset.status = AssetStatus.ASSIGNED
    asset.holder_id = to_user.id
    asset.holder = to_user
    asset.assigned_at = now
    asset.accepted_at = None
    _flush(session)
    _event(session, asset, "assigned", by, holder=to_user, note=_clean_note(note), now=now)
    audit.record(session, actor, "asset.assigned", asset, before=before, after=snapshot(asset))
    what = describe(asset)
    notices.notify(
        session,
        to_user,
        "asset.assigned",
        f"{by.name} handed {what} over to you. Please confirm you have it.",
        link="/equipment",
    )
    sender = notifications.sender_for(session)
    notifications.queue_message(
        session,
        to_address=to_user.email,
        to_name=to_user.name,
        subject=f"Handed over to you: {what}",
        headline=f"{by.name} handed {what} over to you. Please confirm in Foyer that you have it.",
        facts=_facts(asset),
        notes=[note] if note.strip() else [],
        link=sender.base_url + "/equipment",
        link_text="Open My equipment",
        related=("asset", asset.id),
    )
    return asset


def accept(
    session: Session,
    actor: Actor,
    asset: Asset,
    by: User,
    now: datetime,
    *,
    expected_version: int | None = None,
) -> Asset:
    """The holder confirms they have it. Accepting twice changes nothing."""
    if asset.holder_id != by.id:
        raise NotFound("There is no such asset.")
    if asset.status == AssetStatus.ACCEPTED:
        return asset
    check_version(asset, expected_version)
    if asset.status != AssetStatus.ASSIGNED:
        raise RuleViolation(
            {"": f"It is {STATUS_LABELS[asset.status].lower()}; nothing to accept."},
            "not_assigned",
        )
    before = snapshot(asset)
    asset.status = AssetStatus.ACCEPTED
    asset.accepted_at = now
    _flush(session)
    _event(session, asset, "accepted", by, holder=by, now=now)
    audit.record(session, actor, "asset.accepted", asset, before=before, after=snapshot(asset))
    return asset


def request_return(
    session: Session,
    actor: Actor,
    asset: Asset,
    by: User,
    now: datetime,
    *,
    expected_version: int | None = None,
    note: str = "",
) -> Asset:
    """The holder wants to give it back: the site's coordinators are told to collect it."""
    if asset.holder_id != by.id or asset.status not in HELD_STATUSES:
        raise NotFound("There is no such asset.")
    if asset.status == AssetStatus.RETURN_REQUESTED:
        return asset
    check_version(asset, expected_version)
    mark_return_requested(session, actor, asset, by, now, note=_clean_note(note))
    for coordinator in tickets.site_coordinators(session, asset.site_id):
        if coordinator.id != by.id:
            notices.notify(
                session,
                coordinator,
                "asset.return_requested",
                f"{by.name} wants to return {describe(asset)}.",
                link=f"/assets/{asset.id}",
            )
    return asset


def mark_return_requested(
    session: Session, actor: Actor, asset: Asset, by: User, now: datetime, *, note: str = ""
) -> Asset:
    """Ask for the asset back (the holder's wish, or offboarding's return task)."""
    if asset.status not in HELD_STATUSES:
        raise RuleViolation({"": "Nobody holds it."}, "not_held")
    if asset.status == AssetStatus.RETURN_REQUESTED:
        return asset
    before = snapshot(asset)
    asset.status = AssetStatus.RETURN_REQUESTED
    _flush(session)
    _event(session, asset, "return_requested", by, holder=asset.holder, note=note, now=now)
    audit.record(
        session, actor, "asset.return_requested", asset, before=before, after=snapshot(asset)
    )
    return asset


def mark_returned(
    session: Session,
    actor: Actor,
    asset: Asset,
    by: User,
    now: datetime,
    *,
    expected_version: int | None = None,
    note: str = "",
) -> Asset:
    """Back in the coordinator's hands (also a lost asset that turned up again)."""
    _require_manager(by, asset)
    check_version(asset, expected_version)
    if asset.status not in (*HELD_STATUSES, AssetStatus.LOST):
        raise RuleViolation(
            {"": f"It is {STATUS_LABELS[asset.status].lower()}; there is nothing to return."},
            "not_held",
        )
    before = snapshot(asset)
    holder = asset.holder
    asset.status = AssetStatus.IN_STOCK
    asset.holder_id = None
    asset.holder = None
    asset.assigned_at = None
    asset.accepted_at = None
    _flush(session)
    _event(session, asset, "returned", by, holder=holder, note=_clean_note(note), now=now)
    audit.record(session, actor, "asset.returned", asset, before=before, after=snapshot(asset))
    return asset


def mark_lost(
    session: Session,
    actor: Actor,
    asset: Asset,
    by: User,
    now: datetime,
    *,
    expected_version: int | None = None,
    note: str = "",
) -> Asset:
    """Nobody can find it. The history keeps who had it last; it leaves their list."""
    _require_manager(by, asset)
    check_version(asset, expected_version)
    if asset.status in (AssetStatus.LOST, AssetStatus.RETIRED):
        raise RuleViolation(
            {"": f"It is already {STATUS_LABELS[asset.status].lower()}."}, "already_gone"
        )
    before = snapshot(asset)
    holder = asset.holder
    asset.status = AssetStatus.LOST
    asset.holder_id = None
    asset.holder = None
    _flush(session)
    _event(session, asset, "lost", by, holder=holder, note=_clean_note(note), now=now)
    audit.record(session, actor, "asset.lost", asset, before=before, after=snapshot(asset))
    return asset


def retire(
    session: Session,
    actor: Actor,
    asset: Asset,
    by: User,
    now: datetime,
    *,
    expected_version: int | None = None,
    note: str = "",
) -> Asset:
    """Out of service for good (broken, sold, written off). Only from stock or lost: an asset
    someone still holds must come back first."""
    _require_manager(by, asset)
    check_version(asset, expected_version)
    if asset.status == AssetStatus.RETIRED:
        raise RuleViolation({"": "It is already retired."}, "already_gone")
    if asset.status in HELD_STATUSES:
        holder = asset.holder.name if asset.holder else "someone"
        raise RuleViolation(
            {"": f"{holder} still has it. Mark it returned first, then retire it."},
            "still_held",
        )
    before = snapshot(asset)
    asset.status = AssetStatus.RETIRED
    _flush(session)
    _event(session, asset, "retired", by, note=_clean_note(note), now=now)
    audit.record(session, actor, "asset.retired", asset, before=before, after=snapshot(asset))
    return asset


# ---------------------------------------------------------------------------------------------
# Helpers


def describe(asset: Asset) -> str:
    """E.g. "Laptop 14" (IT-0042)"."""
    return f"{asset.item.name} ({asset.asset_tag})"


def snapshot(asset: Asset) -> dict[str, object]:
    return {
        "tag": asset.asset_tag,
        "item": asset.item_id,
        "site": asset.site_id,
        "status": asset.status,
        "holder": asset.holder_id,
    }


def _require_manager(by: User, asset: Asset) -> None:
    if not may_manage(by, asset):
        raise NotFound("There is no such asset.")


def _not_in_stock(asset: Asset) -> str:
    if asset.status in HELD_STATUSES and asset.holder is not None:
        return f"{asset.holder.name} has it. Mark it returned before handing it to someone else."
    return f"It is {STATUS_LABELS[asset.status].lower()}; only assets in stock can be handed over."


def _clean_note(note: str) -> str:
    text = (note or "").strip()
    if len(text) > NOTE_MAX:
        raise RuleViolation({"note": f"Keep the note under {NOTE_MAX} characters."}, "too_long")
    return text


def _facts(asset: Asset) -> list[tuple[str, str]]:
    facts = [("Item", asset.item.name), ("Tag", asset.asset_tag)]
    if asset.serial_number:
        facts.append(("Serial", asset.serial_number))
    return facts


def _event(
    session: Session,
    asset: Asset,
    action: str,
    by: User | None,
    *,
    holder: User | None = None,
    note: str = "",
    now: datetime,
) -> AssetEvent:
    event = AssetEvent(
        asset_id=asset.id,
        action=action,
        actor_id=by.id if by else None,
        holder_id=holder.id if holder else None,
        note=note[:NOTE_MAX],
        created_at=now,
    )
    session.add(event)
    return event
