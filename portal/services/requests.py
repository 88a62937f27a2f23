"""Supply and equipment requests: an employee asks for catalog items (one ticket of kind
"request" with a line per item), coordinators approve or decline each line, and the request is
fulfilled (ready for pick-up, delivered: stock leaves the shelf) or cancelled (stock goes back).

Stock is promised with one conditional UPDATE (`reserved + q` only while `on_hand - reserved >= q`),
so two coordinators approving the last units from two tabs can never oversell: the loser's line is
backordered and goes onto the next purchase order. Tracked items (assets) reserve nothing on
approval; delivering hands over assets in stock at the site (portal.services.assets)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, lazyload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from portal.errors import NotFound, RuleViolation
from portal.models import (
    HOLDING_STATUSES,
    ApprovalRule,
    Asset,
    AssetStatus,
    Booking,
    CatalogItem,
    Desk,
    Floor,
    LineStatus,
    RequestLine,
    Site,
    StockLevel,
    Ticket,
    TicketKind,
    TicketStatus,
    User,
)
from portal.models.sites import Building
from portal.services import assets, audit, tickets
from portal.services.audit import Actor
from portal.timezones import to_utc

NOTE_MAX = 2000
REASON_MAX = 500
MAX_LINES = 30
KEY_MAX = 40

DELIVERY_LABELS = {
    "desk": "To my desk",
    "floor": "To a floor",
    "pickup": "I'll pick it up",
}
LINE_LABELS = {
    LineStatus.PENDING: "Waiting for approval",
    LineStatus.APPROVED: "Approved",
    LineStatus.BACKORDERED: "Approved · to be ordered",
    LineStatus.ORDERED: "Ordered",
    LineStatus.READY: "Ready",
    LineStatus.FULFILLED: "Delivered",
    LineStatus.DECLINED: "Declined",
    LineStatus.CANCELLED: "Cancelled",
}
# Lines that are (or will be) handed over: the request counts as approved while any is left.
GRANTED = {
    LineStatus.APPROVED,
    LineStatus.BACKORDERED,
    LineStatus.ORDERED,
    LineStatus.READY,
    LineStatus.FULFILLED,
}
# Consumable lines holding a reservation on the shelf.
RESERVING = {LineStatus.APPROVED, LineStatus.READY}
# Requests a coordinator may still decide lines on.
DECIDABLE = {TicketStatus.SUBMITTED, TicketStatus.WAITING, TicketStatus.APPROVED}


# ---------------------------------------------------------------------------------------------
# Reading


def visible_request(session: Session, user: User, ticket_id: object) -> Ticket:
    """The request, for its requester, the site's coordinators and admins; NotFound otherwise."""
    return tickets.visible_ticket(session, user, ticket_id, TicketKind.REQUEST)


def line_of(ticket: Ticket, line_id: object) -> RequestLine:
    for line in ticket.lines:
        if str(line.id) == str(line_id):
            return line
    raise NotFound("There is no such line on this request.")


def requests_of(session: Session, user: User, limit: int = 200) -> list[Ticket]:
    """The person's requests, newest first (lines and items in one more query)."""
    return list(
        session.scalars(
            select(Ticket)
            .where(Ticket.requester_id == user.id, Ticket.kind == TicketKind.REQUEST)
            .options(selectinload(Ticket.lines))
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(limit)
        )
    )


# Lines that will not be handed over: struck through, and left out of what is still coming.
DROPPED = {LineStatus.DECLINED, LineStatus.CANCELLED}


def line_total(line: RequestLine) -> int:
    return line.unit_price_cents * line.quantity


def coming_total(ticket: Ticket) -> int:
    """What the request is still worth: every line but the declined and cancelled ones."""
    return sum(line_total(line) for line in ticket.lines if line.status not in DROPPED)


def requested_total(ticket: Ticket) -> int:
    """What was asked for, every line as sent."""
    return sum(line_total(line) for line in ticket.lines)


def heading_for(ticket: Ticket) -> str:
    """A short name for the request: its first item, and how many more."""
    if not ticket.lines:
        return f"Request {ticket.number}"
    first = ticket.lines[0]
    rest = len(ticket.lines) - 1
    name = f"{first.item.name} ×{first.quantity}"
    return f"{name} + {rest} more" if rest else name


def stock_notes(session: Session, ticket: Ticket) -> dict[int, str]:
    """For a coordinator deciding: beside each pending line, what the request's site has free
    ("3 in stock", "Out of stock — will be ordered"). Two queries at most, however many lines."""
    pending = [line for line in ticket.lines if line.status == LineStatus.PENDING]
    if not pending:
        return {}
    free = available_at(
        session, ticket.site_id, {line.item.id: line.item for line in pending}.values()
    )
    notes = {}
    for line in pending:
        available = free.get(line.item_id, 0)
        if available <= 0:
            notes[line.id] = "Out of stock — will be ordered"
        elif available < line.quantity:
            notes[line.id] = f"Only {available} in stock — will be ordered"
        else:
            notes[line.id] = f"{available} in stock"
    return notes


def tracked_uses_assets(item: CatalogItem) -> bool:
    return bool(item.tracked)


def can_cancel(ticket: Ticket, user: User) -> bool:
    return ticket.requester_id == user.id and ticket.status in tickets.CANCELLABLE


def cancellable_statuses() -> set[str]:
    return set(tickets.CANCELLABLE)


# ---------------------------------------------------------------------------------------------
# Checking what is asked for


def parse_quantity(raw: object, item: CatalogItem, key: str) -> int:
    """A whole number from 1 to the item's maximum per request, with a message that says which."""
    text = str(raw if raw is not None else "").strip()
    what = item.name
    if not text:
        raise RuleViolation({key: f"Enter how many {what} you need."}, "quantity")
    digits = text.lstrip("+-")
    if not (digits.isascii() and digits.isdigit()):  # "²".isdigit() is true; int("²") fails
        raise RuleViolation({key: f"Enter a whole number for {what}, like 1 or 2."}, "quantity")
    if text.startswith("-") and digits.strip("0"):
        raise RuleViolation({key: f"The quantity of {what} cannot be negative."}, "quantity")
    if len(digits.lstrip("0")) > 6 or int(digits) > item.max_per_request:
        raise RuleViolation(
            {key: f"You can ask for at most {item.max_per_request} × {what} in one request."},
            "quantity",
        )
    value = int(digits)
    if value == 0:
        raise RuleViolation(
            {key: f"Ask for at least 1 × {what}, or remove it from the request."}, "quantity"
        )
    return value


def checked_lines(
    session: Session, raw_lines: Sequence[tuple[object, object]]
) -> list[tuple[CatalogItem, int]]:
    """(item id, quantity) pairs as typed -> (item, quantity), duplicates of an item merged.
    Every problem is reported at once: under "lines" for the whole list, and under
    "qty_<item id>" beside the line it concerns."""
    if not raw_lines:
        raise RuleViolation({"lines": "Add at least one item to your request."}, "empty")
    ids: list[int] = []
    errors: dict[str, str] = {}
    for raw_id, _quantity in raw_lines:
        try:
            item_id = int(str(raw_id).strip())
        except (TypeError, ValueError):
            errors["lines"] = "One of the lines names no catalog item; remove it and try again."
            continue
        if 0 < item_id < 2**31:  # no item has a larger id, and the database cannot compare one
            ids.append(item_id)
    found = (
        {i.id: i for i in session.scalars(select(CatalogItem).where(CatalogItem.id.in_(ids)))}
        if ids
        else {}
    )
    merged: dict[int, int] = {}
    order: list[int] = []
    for raw_id, raw_quantity in raw_lines:
        try:
            item_id = int(str(raw_id).strip())
        except (TypeError, ValueError):
            continue
        item = found.get(item_id)
        key = f"qty_{item_id}"
        if item is None:
            errors[key] = f"Item #{item_id} is not in the catalog; remove it from the request."
            errors.setdefault("lines", errors[key])
            continue
        if not item.active:
            errors[key] = f"{item.name} is no longer offered; remove it from the request."
            errors.setdefault("lines", errors[key])
            continue
        try:
            quantity = parse_quantity(raw_quantity, item, key)
        except RuleViolation as violation:
            errors.update(violation.errors)
            continue
        if item_id not in merged:
            order.append(item_id)
            merged[item_id] = 0
        merged[item_id] += quantity
    for item_id in order:
        item = found[item_id]
        if merged[item_id] > item.max_per_request and f"qty_{item_id}" not in errors:
            errors[f"qty_{item_id}"] = (
                f"You can ask for at most {item.max_per_request} × {item.name} in one request."
            )
    if len(order) > MAX_LINES:
        errors["lines"] = f"A request can hold at most {MAX_LINES} different items."
    if errors:
        errors.setdefault("lines", "Some lines need a change; see the messages beside them.")
        raise RuleViolation(errors, "lines")
    return [(found[item_id], merged[item_id]) for item_id in order]


def needs_approval(item: CatalogItem, quantity: int, unit_price_cents: int) -> bool:
    if item.approval == ApprovalRule.ALWAYS:
        return True
    if item.approval == ApprovalRule.ABOVE:
        return quantity * unit_price_cents > item.approval_above_cents
    return False


def today_at(site: Site, now: datetime) -> date:
    return now.astimezone(ZoneInfo(site.time_zone)).date()


def available_at(session: Session, site_id: int, items: Iterable[CatalogItem]) -> dict[int, int]:
    """How many of each item could be handed over at the site now: free shelf stock for
    consumables, assets in stock for tracked items. Two queries at most."""
    items = list(items)
    consumables = [i.id for i in items if not tracked_uses_assets(i)]
    tracked = [i.id for i in items if tracked_uses_assets(i)]
    counts: dict[int, int] = {i.id: 0 for i in items}
    if consumables:
        for item_id, free in session.execute(
            select(StockLevel.item_id, StockLevel.on_hand - StockLevel.reserved).where(
                StockLevel.site_id == site_id, StockLevel.item_id.in_(consumables)
            )
        ):
            counts[item_id] = max(int(free), 0)
    if tracked:
        for item_id, count in session.execute(
            select(Asset.item_id, func.count())
            .where(
                Asset.site_id == site_id,
                Asset.item_id.in_(tracked),
                Asset.status == AssetStatus.IN_STOCK,
            )
            .group_by(Asset.item_id)
        ):
            counts[item_id] = int(count)
    return counts


def lead_time_warnings(
    session: Session,
    site: Site,
    lines: Sequence[tuple[CatalogItem, int]],
    needed_by: date | None,
    now: datetime,
) -> list[str]:
    """Items that must be bought (not enough in stock) and usually take longer than the time
    left until `needed_by`. A warning, not a refusal: the coordinator may still manage."""
    if needed_by is None:
        return []
    days_left = (needed_by - today_at(site, now)).days
    free = available_at(session, site.id, [item for item, _q in lines])
    warnings = []
    for item, quantity in lines:
        if item.lead_time_days > days_left and free.get(item.id, 0) < quantity:
            warnings.append(
                f"{item.name} usually takes {item.lead_time_days} "
                f"day{'s' if item.lead_time_days != 1 else ''} to arrive when it must be "
                f"ordered; {needed_by:%-d %b} may be too soon."
            )
    return warnings


# ---------------------------------------------------------------------------------------------
# Where to deliver


def default_desk(session: Session, user: User, site: Site, now: datetime) -> Desk | None:
    """The desk the person booked for today at the site, else the desk assigned to them."""
    day = today_at(site, now)
    zone = ZoneInfo(site.time_zone)
    start = to_utc(datetime.combine(day, time.min), zone)
    end = to_utc(datetime.combine(day + timedelta(days=1), time.min), zone)
    booked = session.scalar(
        select(Desk)
        .join(Booking, Booking.resource_id == Desk.id)
        .where(
            Booking.user_id == user.id,
            Booking.status.in_(HOLDING_STATUSES),
            Booking.start_at < end,
            Booking.end_at > start,
            Desk.site_id == site.id,
            Desk.active.is_(True),
        )
        .order_by(Booking.start_at)
        .limit(1)
    )
    if booked is not None:
        return booked
    return session.scalar(
        select(Desk)
        .where(Desk.assigned_user_id == user.id, Desk.site_id == site.id, Desk.active.is_(True))
        .limit(1)
    )


def desks_of(session: Session, site: Site) -> list[Desk]:
    return list(
        session.scalars(
            select(Desk)
            .join(Floor, Floor.id == Desk.floor_id)
            .where(Desk.site_id == site.id, Desk.active.is_(True))
            .order_by(Floor.level, func.lower(Desk.name))
        )
    )


def floors_of(session: Session, site: Site) -> list[Floor]:
    return list(
        session.scalars(
            select(Floor)
            .join(Building, Building.id == Floor.building_id)
            .where(Building.site_id == site.id)
            .order_by(Building.name, Floor.level)
        )
    )


def _place(
    session: Session, site: Site, delivery: str, desk_id: object, floor_id: object
) -> dict[str, object]:
    if delivery not in DELIVERY_LABELS:
        raise RuleViolation({"delivery": "Choose where to deliver: a desk, a floor or pick-up."})
    if delivery == "desk":
        desk = _get(session, Desk, desk_id)
        if desk is None or desk.site_id != site.id or not desk.active:
            raise RuleViolation(
                {"desk_id": f"Choose a desk at {site.name} from the list."}, "place"
            )
        return {"resource_id": desk.id, "floor_id": desk.floor_id, "place_note": ""}
    if delivery == "floor":
        floor = _get(session, Floor, floor_id)
        if floor is None or floor.building.site_id != site.id:
            raise RuleViolation(
                {"floor_id": f"Choose a floor at {site.name} from the list."}, "place"
            )
        return {"resource_id": None, "floor_id": floor.id, "place_note": ""}
    return {"resource_id": None, "floor_id": None, "place_note": "Pick-up point"}


def _get(session: Session, model: type, raw: object) -> object:
    try:
        return session.get(model, int(str(raw)))
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Submitting


@dataclass
class Submitted:
    ticket: Ticket
    warnings: list[str] = field(default_factory=list)
    repeated: bool = False  # the same form sent twice: the first request, unchanged


def key_for(requester: User, raw_key: str | None) -> str | None:
    key = (raw_key or "").strip()[:KEY_MAX]
    return f"req:{requester.id}:{key}" if key else None


def submitted_with(session: Session, requester: User, raw_key: str | None) -> Ticket | None:
    key = key_for(requester, raw_key)
    if key is None:
        return None
    return session.scalar(
        select(Ticket).where(Ticket.submission_key == key, Ticket.requester_id == requester.id)
    )


def title_for(lines: Sequence[tuple[CatalogItem, int]]) -> str:
    text = ", ".join(f"{item.name} ×{quantity}" for item, quantity in lines)
    return text if len(text) <= tickets.TITLE_MAX else text[: tickets.TITLE_MAX - 1] + "…"


def submit(
    session: Session,
    actor: Actor,
    requester: User,
    *,
    site: Site,
    lines: Sequence[tuple[object, object]],
    delivery: str,
    desk_id: object = None,
    floor_id: object = None,
    needed_by: date | None = None,
    note: str = "",
    now: datetime,
    submission_key: str | None = None,
) -> Submitted:
    """Check everything, then open one request ticket with a line per item. Lines that need no
    approval are approved at once (stock is reserved, or they are backordered)."""
    earlier = submitted_with(session, requester, submission_key)
    if earlier is not None:
        return Submitted(earlier, repeated=True)
    errors: dict[str, str] = {}
    checked: list[tuple[CatalogItem, int]] = []
    try:
        checked = checked_lines(session, lines)
    except RuleViolation as violation:
        errors.update(violation.errors)
    place: dict[str, object] = {}
    try:
        place = _place(session, site, delivery, desk_id, floor_id)
    except RuleViolation as violation:
        errors.update(violation.errors)
    if needed_by is not None and needed_by < today_at(site, now):
        errors["needed_by"] = "That date has passed; choose today or a later day."
    elif needed_by is not None and needed_by > today_at(site, now) + timedelta(days=366):
        errors["needed_by"] = "Choose a date within the next year."
    text = (note or "").strip()
    if len(text) > NOTE_MAX:
        errors["note"] = f"Keep the note under {NOTE_MAX:,} characters."
    if errors:
        raise RuleViolation(errors, "request")

    total = sum(item.price_cents * quantity for item, quantity in checked)
    ticket = tickets.open_ticket(
        session,
        actor,
        kind=TicketKind.REQUEST,
        site=site,
        requester=requester,
        title=title_for(checked),
        category=checked[0][0].category,
        description=text,
        now=now,
        delivery=delivery,
        needed_by=needed_by,
        total_cents=total,
        submission_key=key_for(requester, submission_key),
        **place,
    )
    for item, quantity in checked:
        ticket.lines.append(
            RequestLine(
                item_id=item.id, item=item, quantity=quantity, unit_price_cents=item.price_cents
            )
        )
    session.flush()
    automatic = [
        line
        for line in ticket.lines
        if not needs_approval(line.item, line.quantity, line.unit_price_cents)
    ]
    for line in automatic:
        outcome = _grant(session, ticket, line, now)
        tickets.record(session, ticket, None, f"Approved automatically: {outcome}", now=now)
        audit.record(session, actor, "request_line.approved", line, after=_line_snapshot(line))
    if automatic and len(automatic) == len(ticket.lines):
        # Nothing for a coordinator to decide: approved at once, by nobody in particular.
        ticket.status = TicketStatus.APPROVED
        tickets.record(
            session,
            ticket,
            None,
            tickets.STATUS_LABELS[TicketStatus.APPROVED],
            now=now,
            kind="status",
        )
    session.flush()
    return Submitted(ticket, lead_time_warnings(session, site, checked, needed_by, now))


# ---------------------------------------------------------------------------------------------
# Deciding lines


def _line_snapshot(line: RequestLine) -> dict[str, object]:
    return {
        "ticket_id": line.ticket_id,
        "item_id": line.item_id,
        "quantity": line.quantity,
        "status": line.status,
        "decline_reason": line.decline_reason,
    }


def _reserve(session: Session, item_id: int, site_id: int, quantity: int) -> bool:
    """Promise `quantity` from the shelf, only if that many are free: one conditional UPDATE,
    which the database serialises against a colleague's approval of the same item."""
    result = session.execute(
        update(StockLevel)
        .where(
            StockLevel.item_id == item_id,
            StockLevel.site_id == site_id,
            StockLevel.on_hand - StockLevel.reserved >= quantity,
        )
        .values(reserved=StockLevel.reserved + quantity)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _release(session: Session, item_id: int, site_id: int, quantity: int) -> None:
    session.execute(
        update(StockLevel)
        .where(
            StockLevel.item_id == item_id,
            StockLevel.site_id == site_id,
            StockLevel.reserved >= quantity,
        )
        .values(reserved=StockLevel.reserved - quantity)
        .execution_options(synchronize_session=False)
    )


def free_stock(session: Session, item_id: int, site_id: int) -> int:
    value = session.scalar(
        select(StockLevel.on_hand - StockLevel.reserved).where(
            StockLevel.item_id == item_id, StockLevel.site_id == site_id
        )
    )
    return max(int(value or 0), 0)


def _what(line: RequestLine) -> str:
    return f"{line.item.name} ×{line.quantity}"


def _grant(session: Session, ticket: Ticket, line: RequestLine, now: datetime) -> str:
    """Approve a line: reserve consumables (or backorder them when short); tracked items wait for
    an asset at hand-over. Returns what happened, in words."""
    line.decided_at = now
    if tracked_uses_assets(line.item):
        line.status = LineStatus.APPROVED
        return f"{_what(line)} (an asset is handed over on delivery)"
    if _reserve(session, line.item_id, ticket.site_id, line.quantity):
        line.status = LineStatus.APPROVED
        return f"{_what(line)}, set aside from stock"
    left = free_stock(session, line.item_id, ticket.site_id)
    line.status = LineStatus.BACKORDERED
    return f"{_what(line)}. Only {left} left in stock: it goes onto the next purchase order"


def _require_decidable(ticket: Ticket, line: RequestLine, by: User) -> None:
    if not tickets.may_manage(by, ticket):
        raise NotFound("There is no such request.")
    if ticket.status == TicketStatus.CANCELLED:
        raise RuleViolation(
            {
                "": f"{ticket.requester.name} cancelled {ticket.number}; there is nothing left "
                "to approve or decline."
            },
            "cancelled",
        )
    if ticket.status not in DECIDABLE:
        label = tickets.STATUS_LABELS.get(ticket.status, ticket.status).lower()
        raise RuleViolation({"": f"{ticket.number} is {label}; its lines can no longer change."})
    if line.status != LineStatus.PENDING:
        label = LINE_LABELS.get(line.status, line.status).lower()
        raise RuleViolation({"": f"{_what(line)} is already {label}."}, "decided")


@contextmanager
def _one_writer() -> Iterator[None]:
    """A colleague changed the request between our read and our write (the version column
    caught it at flush): answer "changed by someone else", never a 500."""
    try:
        yield
    except StaleDataError:
        raise tickets.StaleTicket() from None


def _bump(session: Session, ticket: Ticket, now: datetime, *, responded: bool = True) -> None:
    """Change the ticket row first: its version column makes a concurrent change of the same
    request fail here (on PostgreSQL, after waiting for the other to finish) before stock moves."""
    ticket.updated_at = now
    if responded:
        tickets.mark_responded(ticket, now)
    with _one_writer():
        session.flush()


@dataclass(frozen=True)
class Decision:
    line: RequestLine
    message: str


def approve(
    session: Session,
    actor: Actor,
    line: RequestLine,
    *,
    by: User,
    now: datetime,
    expected_version: int | None = None,
) -> Decision:
    """Approve one line; the answer says what happened (set aside, or backordered when short)."""
    ticket = line.ticket
    _require_decidable(ticket, line, by)
    tickets.check_version(ticket, expected_version)
    before = _line_snapshot(line)
    _bump(session, ticket, now)
    with _one_writer():
        outcome = _grant(session, ticket, line, now)
        tickets.record(session, ticket, by, f"Approved: {outcome}", now=now)
        audit.record(
            session, actor, "request_line.approved", line, before=before, after=_line_snapshot(line)
        )
        _settle(session, actor, ticket, by=by, now=now, headline=f"Approved: {outcome}")
    if line.status == LineStatus.BACKORDERED:
        return Decision(line, f"Approved {outcome}.")
    return Decision(line, f"Approved {_what(line)}.")


def approve_line(
    session: Session,
    actor: Actor,
    line: RequestLine,
    *,
    by: User,
    now: datetime,
    expected_version: int | None = None,
) -> RequestLine:
    """Approve one line (the inbox's bulk approve calls this). Raises RuleViolation / StaleTicket."""
    return approve(session, actor, line, by=by, now=now, expected_version=expected_version).line


def decline_line(
    session: Session,
    actor: Actor,
    line: RequestLine,
    *,
    by: User,
    reason: str,
    now: datetime,
    expected_version: int | None = None,
) -> RequestLine:
    """Decline one line with a reason the requester reads."""
    ticket = line.ticket
    _require_decidable(ticket, line, by)
    text = " ".join((reason or "").split())
    if not text:
        raise RuleViolation({"reason": "Say why, so the requester understands."}, "reason")
    if len(text) > REASON_MAX:
        raise RuleViolation({"reason": f"Keep the reason under {REASON_MAX} characters."})
    tickets.check_version(ticket, expected_version)
    before = _line_snapshot(line)
    _bump(session, ticket, now)
    with _one_writer():
        line.status = LineStatus.DECLINED
        line.decline_reason = text
        line.decided_at = now
        tickets.record(session, ticket, by, f"Declined: {_what(line)} — {text}", now=now)
        audit.record(
            session, actor, "request_line.declined", line, before=before, after=_line_snapshot(line)
        )
        _settle(session, actor, ticket, by=by, now=now, headline=f"Declined {_what(line)}: {text}")
    return line


def _settle(
    session: Session, actor: Actor, ticket: Ticket, *, by: User, now: datetime, headline: str
) -> None:
    """The request's status follows its lines: once none is pending, approved if any line was
    granted, else declined. The requester hears about every decision."""
    statuses = [line.status for line in ticket.lines]
    target: str | None = None
    if LineStatus.PENDING not in statuses and ticket.status in (
        TicketStatus.SUBMITTED,
        TicketStatus.WAITING,
    ):
        granted = any(s in GRANTED for s in statuses)
        target = TicketStatus.APPROVED if granted else TicketStatus.DECLINED
    if target is not None:
        tickets.change_status(session, actor, ticket, target, by=by, now=now, note=headline)
    else:
        tickets.tell_requester(session, ticket, headline)
    session.flush()


# ---------------------------------------------------------------------------------------------
# Fulfilling


def _require_manager(ticket: Ticket, by: User) -> None:
    if not tickets.may_manage(by, ticket):
        raise NotFound("There is no such request.")


def _not_cancelled(ticket: Ticket) -> None:
    if ticket.status == TicketStatus.CANCELLED:
        raise RuleViolation(
            {"": f"{ticket.requester.name} cancelled {ticket.number}; there is nothing to do."},
            "cancelled",
        )


def mark_ready(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    *,
    by: User,
    now: datetime,
    expected_version: int | None = None,
) -> None:
    """Everything approved is in hand: ready for pick-up (or on its way to the desk)."""
    _require_manager(ticket, by)
    _not_cancelled(ticket)
    tickets.check_version(ticket, expected_version)
    if any(line.status == LineStatus.PENDING for line in ticket.lines):
        raise RuleViolation({"": "Approve or decline every line first."}, "pending")
    waiting = [
        line for line in ticket.lines if line.status in (LineStatus.BACKORDERED, LineStatus.ORDERED)
    ]
    short = _short_for(session, ticket, waiting)
    if short:
        raise RuleViolation({"": short}, "short")
    with _one_writer():
        tickets.change_status(session, actor, ticket, TicketStatus.READY, by=by, now=now)
        for line in ticket.lines:
            if line.status == LineStatus.APPROVED:
                line.status = LineStatus.READY
        session.flush()


def _short_for(session: Session, ticket: Ticket, lines: list[RequestLine]) -> str:
    """Words for the lines still on order that the shelf cannot cover yet ("" when none)."""
    if not lines:
        return ""
    free = available_at(session, ticket.site_id, [line.item for line in lines])
    missing = [line for line in lines if free.get(line.item_id, 0) < line.quantity]
    if not missing:
        return ""
    names = ", ".join(_what(line) for line in missing)
    return f"Still waiting for stock of {names}: receive it first."


def mark_delivered(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    *,
    by: User,
    now: datetime,
    expected_version: int | None = None,
) -> None:
    """Handed over: stock leaves the shelf (on hand and reserved go down together, in one
    UPDATE each), tracked items are handed over as assets, lines are fulfilled."""
    _require_manager(ticket, by)
    _not_cancelled(ticket)
    tickets.check_version(ticket, expected_version)
    if any(line.status == LineStatus.PENDING for line in ticket.lines):
        raise RuleViolation({"": "Approve or decline every line first."}, "pending")
    to_hand = [line for line in ticket.lines if line.status in GRANTED - {LineStatus.FULFILLED}]
    if not to_hand:
        raise RuleViolation({"": "Nothing on this request was approved."}, "nothing")
    # Checked by change_status too, but before any stock moves.
    allowed = tickets.TRANSITIONS[TicketKind.REQUEST].get(ticket.status, set())
    if TicketStatus.DELIVERED not in allowed:
        label = tickets.STATUS_LABELS.get(ticket.status, ticket.status).lower()
        raise RuleViolation({"": f"{ticket.number} is {label}; it cannot be delivered now."})
    _bump(session, ticket, now)
    problems = []
    with _one_writer():
        for line in to_hand:
            if tracked_uses_assets(line.item):
                problem = _hand_over_assets(session, actor, ticket, line, by, now)
            else:
                problem = _take_from_shelf(session, ticket, line)
            if problem:
                problems.append(problem)
        if problems:
            # The caller's savepoint undoes what was already taken from the shelf.
            raise RuleViolation({"": " ".join(problems)}, "short")
        for line in to_hand:
            line.status = LineStatus.FULFILLED
            line.fulfilled_at = now
        tickets.change_status(session, actor, ticket, TicketStatus.DELIVERED, by=by, now=now)
        session.flush()


def _take_from_shelf(session: Session, ticket: Ticket, line: RequestLine) -> str:
    quantity = line.quantity
    if line.status in RESERVING:
        result = session.execute(
            update(StockLevel)
            .where(
                StockLevel.item_id == line.item_id,
                StockLevel.site_id == ticket.site_id,
                StockLevel.reserved >= quantity,
                StockLevel.on_hand >= quantity,
            )
            .values(on_hand=StockLevel.on_hand - quantity, reserved=StockLevel.reserved - quantity)
            .execution_options(synchronize_session=False)
        )
    else:  # backordered or ordered: nothing was set aside; take it if it has arrived
        result = session.execute(
            update(StockLevel)
            .where(
                StockLevel.item_id == line.item_id,
                StockLevel.site_id == ticket.site_id,
                StockLevel.on_hand - StockLevel.reserved >= quantity,
            )
            .values(on_hand=StockLevel.on_hand - quantity)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount:  # type: ignore[attr-defined]
        return ""
    return f"{_what(line)} is not on the shelf at {ticket.site.name} yet: receive it first."


def _hand_over_assets(
    session: Session, actor: Actor, ticket: Ticket, line: RequestLine, by: User, now: datetime
) -> str:
    picked = list(
        session.scalars(
            select(Asset)
            .where(
                Asset.item_id == line.item_id,
                Asset.site_id == ticket.site_id,
                Asset.status == AssetStatus.IN_STOCK,
            )
            .order_by(Asset.created_at, Asset.id)
            .limit(line.quantity)
            .options(lazyload(Asset.item))  # FOR UPDATE cannot lock an outer join's side
            .with_for_update(skip_locked=True)
        )
    )
    if len(picked) < line.quantity:
        return (
            f"Only {len(picked)} {line.item.name} in stock at {ticket.site.name} as assets; "
            f"{line.quantity} are needed. Receive more into the asset register first."
        )
    for asset in picked:
        assets.hand_over(
            session, actor, asset, ticket.requester, by, now, note=f"For {ticket.number}"
        )
    line.asset_id = picked[0].id
    return ""


def close(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    *,
    by: User,
    now: datetime,
    expected_version: int | None = None,
) -> None:
    _require_manager(ticket, by)
    _not_cancelled(ticket)
    with _one_writer():
        tickets.change_status(
            session,
            actor,
            ticket,
            TicketStatus.CLOSED,
            by=by,
            now=now,
            expected_version=expected_version,
        )
        session.flush()


def cancel(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    *,
    by: User,
    now: datetime,
    expected_version: int | None = None,
) -> None:
    """The requester withdraws (until it is ready or delivered): stock set aside goes back to
    the shelf and every open line is cancelled."""
    with _one_writer():
        tickets.cancel(session, actor, ticket, by, now=now, expected_version=expected_version)
        session.flush()  # the ticket first: a concurrent approval is caught before stock moves
        for line in ticket.lines:
            if line.status in RESERVING and not tracked_uses_assets(line.item):
                _release(session, line.item_id, ticket.site_id, line.quantity)
            if line.status not in (LineStatus.FULFILLED, LineStatus.DECLINED):
                line.status = LineStatus.CANCELLED
        session.flush()
