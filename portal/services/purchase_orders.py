"""Purchase orders: what a site must buy (request lines approved but short of stock, and, when
chosen, low-stock items), grouped by the item's vendor into one numbered order per vendor, and
receiving against an order, which puts the goods on the shelf and sets them aside for the
requests they were bought for.

Numbers are "PO-<year>-<4 digits>", sequential per year. Two coordinators may create orders at
the same instant: each takes the next free number and the unique constraint decides; the loser
retries with the number after (inside a savepoint, so nothing else is lost)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.errors import Conflict, DomainError, RuleViolation
from portal.models import (
    CatalogItem,
    LineStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    RequestLine,
    Site,
    Ticket,
    TicketKind,
    TicketStatus,
    User,
    Vendor,
)
from portal.services import audit, badges, inventory, tickets
from portal.services.audit import Actor

OPEN, PARTIAL, RECEIVED = "open", "partial", "received"
STATUS_LABELS = {OPEN: "Open", PARTIAL: "Partly received", RECEIVED: "Received"}
NUMBER_ATTEMPTS = 50

# Lines that are approved and either still to come (backordered, ordered) or in hand.
_WAITING = {LineStatus.PENDING, LineStatus.BACKORDERED, LineStatus.ORDERED}
_IN_HAND = {LineStatus.APPROVED, LineStatus.READY, LineStatus.FULFILLED}


class StalePurchaseOrder(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "This purchase order was changed by someone else since you opened it: here is its "
            "current state. Check the quantities and try again."
        )


# ---------------------------------------------------------------------------------------------
# Planning: what would be ordered


@dataclass
class PlannedLine:
    item: CatalogItem
    request_lines: list[RequestLine] = field(default_factory=list)
    restock: int = 0

    @property
    def requested(self) -> int:
        return sum(line.quantity for line in self.request_lines)

    @property
    def quantity(self) -> int:
        return self.requested + self.restock

    @property
    def total_cents(self) -> int:
        return self.quantity * self.item.price_cents


@dataclass
class VendorGroup:
    vendor: Vendor
    lines: list[PlannedLine]

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)


@dataclass
class OrderPlan:
    site: Site
    groups: list[VendorGroup]  # one purchase order each
    needs_vendor: list[PlannedLine]  # items without a vendor: not ordered
    restock_candidates: list[inventory.Restock]  # low stock still to order, with the quantity
    covered: list[inventory.Restock]  # low stock that open purchase orders already cover

    @property
    def empty(self) -> bool:
        return not self.groups


def backordered_lines(session: Session, site: Site, *, lock: bool = False) -> list[RequestLine]:
    """Approved request lines at `site` that wait to be bought, oldest first."""
    query = (
        select(RequestLine)
        .join(Ticket, Ticket.id == RequestLine.ticket_id)
        .where(
            Ticket.site_id == site.id,
            Ticket.kind == TicketKind.REQUEST,
            RequestLine.status == LineStatus.BACKORDERED,
        )
        .order_by(RequestLine.id)
    )
    if lock:
        # A colleague creating orders for the same site at the same moment waits here and
        # then finds these lines ordered already (PostgreSQL re-checks the WHERE after the wait).
        query = query.with_for_update(of=RequestLine).execution_options(populate_existing=True)
    return list(session.scalars(query))


def plan(
    session: Session,
    site: Site,
    restock_item_ids: set[int] | frozenset[int] = frozenset(),
    *,
    lock: bool = False,
) -> OrderPlan:
    """What "Create purchase orders" would do at `site`: backordered lines plus the chosen
    low-stock items, grouped by vendor."""
    planned: dict[int, PlannedLine] = {}
    for line in backordered_lines(session, site, lock=lock):
        planned.setdefault(line.item_id, PlannedLine(line.item)).request_lines.append(line)
    needs = inventory.restock_needs(session, (site.id,))
    candidates = [need for need in needs if not need.covered]
    for need in candidates:
        if need.level.item_id in restock_item_ids:
            item = need.level.item
            planned.setdefault(item.id, PlannedLine(item)).restock = need.quantity
    by_vendor: dict[int, VendorGroup] = {}
    needs_vendor: list[PlannedLine] = []
    for line in sorted(planned.values(), key=lambda p: p.item.name.lower()):
        vendor = line.item.vendor
        if vendor is None or not vendor.active:
            needs_vendor.append(line)
            continue
        by_vendor.setdefault(vendor.id, VendorGroup(vendor, [])).lines.append(line)
    groups = sorted(by_vendor.values(), key=lambda g: g.vendor.name.lower())
    covered = [need for need in needs if need.covered]
    return OrderPlan(site, groups, needs_vendor, candidates, covered)


# ---------------------------------------------------------------------------------------------
# Numbers


def _last_sequence(session: Session, year: int) -> int:
    prefix = f"PO-{year}-"
    number = session.scalar(
        select(PurchaseOrder.number)
        .where(PurchaseOrder.number.like(prefix + "%"))
        .order_by(func.length(PurchaseOrder.number).desc(), PurchaseOrder.number.desc())
        .limit(1)
    )
    if number is None:
        return 0
    try:
        return int(number.removeprefix(prefix))
    except ValueError:
        return 0


def format_number(year: int, sequence: int) -> str:
    return f"PO-{year}-{sequence:04d}"


def _insert_numbered(
    session: Session, *, year: int, vendor: Vendor, site: Site, by: User, now: datetime
) -> PurchaseOrder:
    """A new order with the next free number of `year`. The unique constraint is the referee:
    losing to a colleague who committed the same number first only costs a retry."""
    for _attempt in range(NUMBER_ATTEMPTS):
        order = PurchaseOrder(
            number=format_number(year, _last_sequence(session, year) + 1),
            vendor_id=vendor.id,
            site_id=site.id,
            status=OPEN,
            created_by_id=by.id,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(order)
                session.flush()
        except IntegrityError:
            continue
        return order
    raise Conflict("Could not number the purchase order: too many at once. Try again.")


# ---------------------------------------------------------------------------------------------
# Creating


def create_orders(
    session: Session,
    actor: Actor,
    site: Site,
    *,
    by: User,
    now: datetime,
    restock_item_ids: set[int] | frozenset[int] = frozenset(),
) -> tuple[list[PurchaseOrder], list[PlannedLine]]:
    """One purchase order per vendor for everything `site` must buy. The request lines become
    ORDERED, and a request whose every approved line is now ordered moves to "ordered" (its
    requester is told). Returns the new orders and what could not be ordered (no vendor)."""
    the_plan = plan(session, site, restock_item_ids, lock=True)
    if the_plan.empty:
        if the_plan.needs_vendor:
            names = ", ".join(p.item.name for p in the_plan.needs_vendor)
            raise RuleViolation(
                {"": f"Nothing can be ordered yet: {names} need a vendor in the catalog."},
                "no_vendor",
            )
        raise RuleViolation(
            {
                "": "Nothing to order: no approved request waits for stock, and no low-stock "
                "item was chosen."
            },
            "nothing_to_order",
        )
    year = now.astimezone(ZoneInfo(site.time_zone)).year
    orders: list[PurchaseOrder] = []
    touched: dict[int, Ticket] = {}
    for group in the_plan.groups:
        order = _insert_numbered(session, year=year, vendor=group.vendor, site=site, by=by, now=now)
        for planned in group.lines:
            order.lines.append(
                PurchaseOrderLine(
                    item_id=planned.item.id,
                    quantity=planned.quantity,
                    received_quantity=0,
                    unit_price_cents=planned.item.price_cents,
                )
            )
            for line in planned.request_lines:
                line.status = LineStatus.ORDERED
                line.purchase_order_id = order.id
                touched[line.ticket_id] = line.ticket
                tickets.record(
                    session,
                    line.ticket,
                    by,
                    f"{line.quantity} × {planned.item.name} ordered from {group.vendor.name} "
                    f"on {order.number}",
                    now=now,
                    internal=True,
                )
        session.flush()
        audit.record(
            session,
            actor,
            "purchase_order.created",
            order,
            after={
                "number": order.number,
                "vendor_id": group.vendor.id,
                "site_id": site.id,
                "lines": [
                    {
                        "item_id": p.item.id,
                        "quantity": p.quantity,
                        "restock": p.restock,
                        "request_line_ids": [r.id for r in p.request_lines],
                    }
                    for p in group.lines
                ],
                "total_cents": group.total_cents,
            },
        )
        orders.append(order)
    for ticket in touched.values():
        _sync_ticket(session, actor, ticket, by=by, now=now)
    session.flush()
    return orders, the_plan.needs_vendor


def _sync_ticket(
    session: Session, actor: Actor, ticket: Ticket, *, by: User, now: datetime
) -> None:
    """Move a request on when its lines say so: "ordered" once nothing waits to be bought, and
    "ready" once everything approved is in hand. Steps the status machine refuses (the request
    was cancelled meanwhile, say) are skipped."""
    live = {line.status for line in ticket.lines} - {LineStatus.DECLINED, LineStatus.CANCELLED}
    if not live or live & {LineStatus.PENDING, LineStatus.BACKORDERED}:
        return
    if LineStatus.ORDERED in live:
        target = TicketStatus.ORDERED
    elif live <= _IN_HAND and LineStatus.FULFILLED not in live:
        target = TicketStatus.READY
    else:
        return
    allowed = tickets.TRANSITIONS.get(ticket.kind, {}).get(ticket.status, set())
    if ticket.status != target and target in allowed:
        tickets.change_status(session, actor, ticket, target, by=by, now=now)


# ---------------------------------------------------------------------------------------------
# Reading one order


def served_lines(session: Session, order: PurchaseOrder) -> dict[int, list[RequestLine]]:
    """For each item on the order, the request lines it was bought for."""
    served: dict[int, list[RequestLine]] = defaultdict(list)
    for line in session.scalars(
        select(RequestLine)
        .where(RequestLine.purchase_order_id == order.id)
        .order_by(RequestLine.id)
    ):
        served[line.item_id].append(line)
    return served


def total_cents(order: PurchaseOrder) -> int:
    return sum(line.quantity * line.unit_price_cents for line in order.lines)


def outstanding(line: PurchaseOrderLine) -> int:
    return line.quantity - line.received_quantity


def list_orders(
    session: Session, site_ids: tuple[int, ...], status: str = "", limit: int = 200
) -> list[PurchaseOrder]:
    query = (
        select(PurchaseOrder)
        .where(PurchaseOrder.site_id.in_(site_ids))
        .order_by(PurchaseOrder.created_at.desc(), PurchaseOrder.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(PurchaseOrder.status == status)
    return list(session.scalars(query))


def order_totals(session: Session, order_ids: list[int]) -> dict[int, tuple[int, int]]:
    """order id -> (number of lines, total in cents), in one query for a list page."""
    if not order_ids:
        return {}
    rows = session.execute(
        select(
            PurchaseOrderLine.order_id,
            func.count(PurchaseOrderLine.id),
            func.sum(PurchaseOrderLine.quantity * PurchaseOrderLine.unit_price_cents),
        )
        .where(PurchaseOrderLine.order_id.in_(order_ids))
        .group_by(PurchaseOrderLine.order_id)
    )
    return {order_id: (count, int(total or 0)) for order_id, count, total in rows}


# ---------------------------------------------------------------------------------------------
# Receiving


def receive(
    session: Session,
    actor: Actor,
    order: PurchaseOrder,
    quantities: dict[int, object],
    *,
    by: User,
    now: datetime,
    expected_version: int | None,
) -> list[RequestLine]:
    """Book what arrived (purchase order line id -> quantity; blank or 0 = nothing). Stock goes
    up, then the request lines this order serves are set aside (READY) as far as stock allows,
    and their requests become "ready" once everything approved is in hand. Returns the request
    lines that became ready."""
    # Lock the order, then compare versions: a colleague's receipt committed meanwhile makes
    # this form stale instead of booking the same delivery twice.
    session.execute(select(PurchaseOrder.id).where(PurchaseOrder.id == order.id).with_for_update())
    session.refresh(order)
    for line in order.lines:
        session.refresh(line)
    if expected_version is not None and expected_version != order.version:
        raise StalePurchaseOrder()
    if order.status == RECEIVED:
        raise RuleViolation({"": f"{order.number} has been received in full."}, "received")
    amounts: dict[int, int] = {}
    errors: dict[str, str] = {}
    for line in order.lines:
        raw = quantities.get(line.id, "")
        if raw is None or str(raw).strip() == "":
            continue
        field_name = f"line-{line.id}"
        try:
            amount = inventory.parse_quantity(raw, field_name, allow_zero=True)
        except RuleViolation as bad:
            errors.update(bad.errors)
            continue
        if amount > outstanding(line):
            errors[field_name] = (
                f"At most {outstanding(line)} more: {line.quantity} ordered, "
                f"{line.received_quantity} received already."
                if outstanding(line)
                else f"All {line.quantity} have been received already."
            )
            continue
        if amount:
            amounts[line.id] = amount
    if errors:
        raise RuleViolation(errors, "receive_quantities")
    if not amounts:
        raise RuleViolation({"": "Enter how many of at least one line arrived."}, "nothing")
    site = session.get(Site, order.site_id)
    assert site is not None
    before = {
        "status": order.status,
        "received": {ln.id: ln.received_quantity for ln in order.lines},
    }
    for line in order.lines:
        amount = amounts.get(line.id, 0)
        if not amount:
            continue
        line.received_quantity += amount
        level = inventory.locked_level(session, line.item, site)
        inventory.add_on_hand(session, level, amount)
    session.flush()
    ready = _set_aside(session, order, site, by=by, now=now)
    if all(outstanding(line) == 0 for line in order.lines):
        order.status = RECEIVED
        order.received_at = now
    else:
        order.status = PARTIAL
    session.flush()  # bumps the version: an open copy of this form is now stale
    audit.record(
        session,
        actor,
        "purchase_order.received",
        order,
        before=before,
        after={
            "status": order.status,
            "received": {ln.id: ln.received_quantity for ln in order.lines},
            "quantities": amounts,
            "ready_request_line_ids": [line.id for line in ready],
        },
    )
    touched = {line.ticket_id: line.ticket for line in ready}
    for ticket in touched.values():
        _sync_ticket(session, actor, ticket, by=by, now=now)
    return ready


def _set_aside(
    session: Session, order: PurchaseOrder, site: Site, *, by: User, now: datetime
) -> list[RequestLine]:
    """Reserve stock for the order's waiting request lines, oldest first; a line is set aside
    only whole (half a request is not ready for pick-up)."""
    waiting = list(
        session.scalars(
            select(RequestLine)
            .where(
                RequestLine.purchase_order_id == order.id,
                RequestLine.status == LineStatus.ORDERED,
            )
            .order_by(RequestLine.id)
            .with_for_update(of=RequestLine)
        )
    )
    received = {line.item_id: line.received_quantity for line in order.lines}
    ready: list[RequestLine] = []
    for line in waiting:
        if received.get(line.item_id, 0) <= 0:
            continue
        item = line.item
        level = inventory.locked_level(session, item, site)
        if not inventory.reserve(session, level, line.quantity):
            continue
        line.status = LineStatus.READY
        ready.append(line)
        tickets.record(
            session,
            line.ticket,
            by,
            f"{line.quantity} × {item.name} arrived and {'is' if line.quantity == 1 else 'are'} "
            "set aside for you",
            now=now,
        )
    return ready


# ---------------------------------------------------------------------------------------------
# Paper


class PrintUnavailable(DomainError):
    status = 503


def render_pdf(html: str) -> bytes:
    """The printable order (a complete HTML document with its styles inline) as an A4 PDF,
    laid out by WeasyPrint the way the badge labels are (one render at a time, no URL fetched)."""
    try:
        return badges.pdf_from_html(html)
    except badges.LabelUnavailable as exc:
        raise PrintUnavailable(
            "Purchase orders cannot be made into PDFs on this server (WeasyPrint is missing). "
            "Use the CSV export or print the page from the browser."
        ) from exc
