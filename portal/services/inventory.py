"""Stock per site: what is on hand, what is promised to approved requests, what runs low, and the
two ways a coordinator changes it by hand: receiving goods that came without a purchase order and
correcting a count after a stock take. Every change is one audited row update that the database's
CHECK constraints keep honest (never below zero, never less on hand than is reserved).

Available = on hand - reserved. An item runs low when its site has a reorder point and no more
than that is available; restocking orders up to twice the reorder point, counting what is already
on its way: what open purchase orders still owe (ordered minus received), less what of it is bought
for approved requests (that is set aside for them on arrival, so it never becomes available)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import (
    CatalogItem,
    ItemCategory,
    LineStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    RequestLine,
    Site,
    StockLevel,
)
from portal.services import audit
from portal.services.audit import Actor

# One receipt or count never moves more than this: a typo of three extra zeros is refused.
MAX_QUANTITY = 100_000
NOTE_MAX = 300
REASON_MAX = 300
SEARCH_MAX = 100

CATEGORY_LABELS = {
    ItemCategory.OFFICE_SUPPLIES: "Office supplies",
    ItemCategory.IT_PERIPHERALS: "IT peripherals",
    ItemCategory.FURNITURE: "Furniture",
    ItemCategory.EQUIPMENT: "Equipment",
    ItemCategory.WELCOME_KITS: "Welcome kits",
}

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def parse_quantity(raw: object, field: str, *, allow_zero: bool = False, what: str = "") -> int:
    """A quantity typed by a person, or a RuleViolation on `field` saying what to fix."""
    text = str(raw if raw is not None else "").strip().replace("\u202f", "").replace(",", "")
    label = what or "a quantity"
    if not text:
        raise RuleViolation({field: f"Enter {label}."}, "quantity_missing")
    if not _WHOLE_NUMBER.fullmatch(text):
        raise RuleViolation(
            {field: "Enter a whole number, like 12 (no letters, decimals or units)."},
            "quantity_not_a_number",
        )
    digits = text.lstrip("+-").lstrip("0") or "0"
    if text.startswith("-") and digits != "0":
        raise RuleViolation({field: "A quantity cannot be negative."}, "quantity_negative")
    value = int(digits) if len(digits) <= 9 else MAX_QUANTITY + 1  # no giant ints parsed
    if value == 0 and not allow_zero:
        raise RuleViolation({field: "Enter a quantity of at least 1."}, "quantity_zero")
    if value > MAX_QUANTITY:
        raise RuleViolation(
            {field: f"That is more than {MAX_QUANTITY:,} at once; check the number."},
            "quantity_huge",
        )
    return value


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class StockFilter:
    site_ids: tuple[int, ...]
    category: str = ""
    text: str = ""
    low_only: bool = False


def stock_levels(session: Session, flt: StockFilter) -> list[StockLevel]:
    """Stock rows of active items at the given sites, by site and item name."""
    query = (
        select(StockLevel)
        .join(CatalogItem, CatalogItem.id == StockLevel.item_id)
        .where(StockLevel.site_id.in_(flt.site_ids), CatalogItem.active.is_(True))
        .order_by(StockLevel.site_id, func.lower(CatalogItem.name))
    )
    if flt.category:
        query = query.where(CatalogItem.category == flt.category)
    if flt.text:
        pattern = "%" + _escape_like(flt.text.lower()[:SEARCH_MAX]) + "%"
        query = query.where(
            or_(
                func.lower(CatalogItem.name).like(pattern, escape="\\"),
                func.lower(CatalogItem.description).like(pattern, escape="\\"),
            )
        )
    if flt.low_only:
        query = query.where(_low_clause())
    return list(session.scalars(query))


def low_stock(session: Session, site_ids: tuple[int, ...]) -> list[StockLevel]:
    """What should be reordered: the least available (relative to the reorder point) first."""
    query = (
        select(StockLevel)
        .join(CatalogItem, CatalogItem.id == StockLevel.item_id)
        .where(StockLevel.site_id.in_(site_ids), CatalogItem.active.is_(True), _low_clause())
        .order_by(
            (StockLevel.on_hand - StockLevel.reserved - StockLevel.reorder_point),
            func.lower(CatalogItem.name),
        )
    )
    return list(session.scalars(query))


def _low_clause():  # type: ignore[no-untyped-def]
    return and_(
        StockLevel.reorder_point > 0,
        StockLevel.on_hand - StockLevel.reserved <= StockLevel.reorder_point,
    )


def is_low(level: StockLevel) -> bool:
    return level.reorder_point > 0 and level.available <= level.reorder_point


def restock_quantity(level: StockLevel, incoming: int = 0) -> int:
    """How many to buy so that twice the reorder point is available again, once the `incoming`
    units (on order, not promised to anyone) have arrived. The one rule for the low-stock list
    and for "Create purchase orders"."""
    if level.reorder_point <= 0:
        return 0
    return max(0, 2 * level.reorder_point - level.available - max(0, incoming))


@dataclass(frozen=True)
class OnOrder:
    """What open purchase orders still owe of one item at one site."""

    quantity: int = 0  # ordered minus received
    for_requests: int = 0  # of that, bought for approved request lines still waiting

    @property
    def incoming(self) -> int:
        """What will be available once it arrives (the rest is set aside for the requests)."""
        return max(0, self.quantity - self.for_requests)


NOTHING_ON_ORDER = OnOrder()


def on_order(session: Session, site_ids: tuple[int, ...]) -> dict[tuple[int, int], OnOrder]:
    """(item id, site id) -> what is on order there, from every purchase order not yet received
    in full. Two grouped queries, whatever the number of items."""
    if not site_ids:
        return {}
    owed = session.execute(
        select(
            PurchaseOrderLine.item_id,
            PurchaseOrder.site_id,
            func.sum(PurchaseOrderLine.quantity - PurchaseOrderLine.received_quantity),
        )
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.order_id)
        .where(
            PurchaseOrder.site_id.in_(site_ids),
            PurchaseOrderLine.quantity > PurchaseOrderLine.received_quantity,
        )
        .group_by(PurchaseOrderLine.item_id, PurchaseOrder.site_id)
    )
    quantities = {(item_id, site_id): int(total or 0) for item_id, site_id, total in owed}
    if not quantities:
        return {}
    promised = session.execute(
        select(RequestLine.item_id, PurchaseOrder.site_id, func.sum(RequestLine.quantity))
        .join(PurchaseOrder, PurchaseOrder.id == RequestLine.purchase_order_id)
        .where(PurchaseOrder.site_id.in_(site_ids), RequestLine.status == LineStatus.ORDERED)
        .group_by(RequestLine.item_id, PurchaseOrder.site_id)
    )
    for_requests = {(item_id, site_id): int(total or 0) for item_id, site_id, total in promised}
    return {
        key: OnOrder(quantity, min(quantity, for_requests.get(key, 0)))
        for key, quantity in quantities.items()
    }


@dataclass(frozen=True)
class Restock:
    """A low-stock item and what to do about it."""

    level: StockLevel
    on_order: OnOrder = NOTHING_ON_ORDER

    @property
    def quantity(self) -> int:
        """How many still to order (0: what is on order covers it)."""
        return restock_quantity(self.level, self.on_order.incoming)

    @property
    def covered(self) -> bool:
        return self.quantity == 0


def restock_needs(session: Session, site_ids: tuple[int, ...]) -> list[Restock]:
    """Every low-stock item with what is on order for it: what still has to be ordered first
    (the least available first), then what open purchase orders already cover."""
    owed = on_order(session, site_ids)
    needs = [
        Restock(level, owed.get((level.item_id, level.site_id), NOTHING_ON_ORDER))
        for level in low_stock(session, site_ids)
    ]
    return [r for r in needs if not r.covered] + [r for r in needs if r.covered]


def stock_value_cents(level: StockLevel) -> int:
    return level.on_hand * level.item.price_cents


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def orderable_items(session: Session) -> list[CatalogItem]:
    """Active consumables and assets, for the receive and count forms."""
    return list(
        session.scalars(
            select(CatalogItem)
            .where(CatalogItem.active.is_(True))
            .order_by(func.lower(CatalogItem.name))
        )
    )


def level_of(session: Session, item_id: int, site_id: int) -> StockLevel | None:
    return session.scalar(
        select(StockLevel).where(StockLevel.item_id == item_id, StockLevel.site_id == site_id)
    )


# ---------------------------------------------------------------------------------------------
# Changing


def _active_item(session: Session, item_id: object, field: str = "item") -> CatalogItem:
    try:
        item = session.get(CatalogItem, int(item_id))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        item = None
    if item is None:
        raise RuleViolation({field: "Choose an item from the list."}, "unknown_item")
    if not item.active:
        raise RuleViolation(
            {field: f"{item.name} is retired from the catalog; it is no longer stocked."},
            "retired_item",
        )
    return item


def locked_level(session: Session, item: CatalogItem, site: Site) -> StockLevel:
    """The stock row of `item` at `site`, created when missing, locked for this transaction
    (a row lock on PostgreSQL; SQLite writers hold the database's write lock already)."""
    query = (
        select(StockLevel)
        .where(StockLevel.item_id == item.id, StockLevel.site_id == site.id)
        .with_for_update(of=StockLevel)
        .execution_options(populate_existing=True)
    )
    level = session.scalar(query)
    if level is not None:
        return level
    try:
        with session.begin_nested():
            level = StockLevel(item_id=item.id, site_id=site.id, on_hand=0, reserved=0)
            session.add(level)
            session.flush()
        return level
    except IntegrityError:  # a colleague created the row a moment ago
        level = session.scalar(query)
        if level is None:
            raise
        return level


def _snapshot(level: StockLevel) -> dict[str, object]:
    return {
        "item_id": level.item_id,
        "site_id": level.site_id,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
    }


def add_on_hand(session: Session, level: StockLevel, quantity: int) -> None:
    """Goods came in: one relative UPDATE, so a concurrent change is never overwritten."""
    if level.on_hand + quantity > 2_000_000_000:
        raise RuleViolation({"quantity": "That would hold more than can be counted."}, "overflow")
    session.execute(
        update(StockLevel)
        .where(StockLevel.id == level.id)
        .values(on_hand=StockLevel.on_hand + quantity)
        .execution_options(synchronize_session=False)
    )
    session.refresh(level)


def reserve(session: Session, level: StockLevel, quantity: int) -> bool:
    """Promise `quantity` to a request line if that many are available; False when short.
    Conditional, so two coordinators can never promise the same last units twice."""
    result = session.execute(
        update(StockLevel)
        .where(
            StockLevel.id == level.id,
            StockLevel.on_hand - StockLevel.reserved >= quantity,
        )
        .values(reserved=StockLevel.reserved + quantity)
        .execution_options(synchronize_session=False)
    )
    session.refresh(level)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def receive_stock(
    session: Session,
    actor: Actor,
    site: Site,
    *,
    item_id: object,
    quantity: object,
    note: str = "",
) -> StockLevel:
    """Goods that arrived without a purchase order (a delivery, items found, a return)."""
    item = _active_item(session, item_id)
    amount = parse_quantity(quantity, "quantity", what="how many arrived")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise RuleViolation({"note": f"Keep the note under {NOTE_MAX} characters."}, "too_long")
    level = locked_level(session, item, site)
    before = _snapshot(level)
    add_on_hand(session, level, amount)
    audit.record(
        session,
        actor,
        "stock.received",
        level,
        before=before,
        after={**_snapshot(level), "quantity": amount, "note": note},
    )
    return level


def correct_count(
    session: Session,
    actor: Actor,
    site: Site,
    *,
    item_id: object,
    counted: object,
    reason: str,
) -> tuple[StockLevel, int]:
    """Set what is on hand to what was counted on the shelf; returns the level and the change.
    A reason is required: the audit log keeps it with the numbers before and after."""
    item = _active_item(session, item_id)
    value = parse_quantity(counted, "counted", allow_zero=True, what="how many you counted")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(
            {"reason": "Say why the count changed (a stock take, damage, loss…)."}, "no_reason"
        )
    if len(reason) > REASON_MAX:
        raise RuleViolation(
            {"reason": f"Keep the reason under {REASON_MAX} characters."}, "too_long"
        )
    level = locked_level(session, item, site)
    if value < level.reserved:
        raise RuleViolation(
            {
                "counted": f"{level.reserved} {item.unit}(s) of {item.name} are set aside for "
                "approved requests, so the count cannot be lower. Decline or cancel those "
                "lines first, or count again."
            },
            "below_reserved",
        )
    before = _snapshot(level)
    change = value - level.on_hand
    level.on_hand = value
    session.flush()
    audit.record(
        session,
        actor,
        "stock.counted",
        level,
        before=before,
        after={**_snapshot(level), "change": change, "reason": reason},
    )
    return level, change
