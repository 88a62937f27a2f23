"""The catalog of things employees can ask for: browsing it with each item's stock at one site,
and the administration of items (details, photo, retiring) and of stock per site.

Prices are integer cents; forms give "12.50" and `parse_money` turns that into 1250."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from portal.errors import NotFound, RuleViolation
from portal.models import (
    ApprovalRule,
    Asset,
    AssetStatus,
    CatalogItem,
    ItemCategory,
    Site,
    StockLevel,
    User,
    Vendor,
)
from portal.services import audit, image_uploads
from portal.services.audit import Actor

CATEGORY_LABELS = {
    ItemCategory.OFFICE_SUPPLIES: "Office supplies",
    ItemCategory.IT_PERIPHERALS: "IT peripherals",
    ItemCategory.FURNITURE: "Furniture",
    ItemCategory.EQUIPMENT: "Equipment",
    ItemCategory.WELCOME_KITS: "Welcome kits",
}
# The categories in the order people think of them (and the issue lists them), not A to Z.
CATEGORY_ORDER = case(
    {str(category): rank for rank, category in enumerate(CATEGORY_LABELS)},
    value=CatalogItem.category,
    else_=len(CATEGORY_LABELS),
)
APPROVAL_LABELS = {
    ApprovalRule.NEVER: "Never: approved at once",
    ApprovalRule.ALWAYS: "Always: a coordinator approves",
    ApprovalRule.ABOVE: "Above an amount per request",
}

NAME_MAX = 120
UNIT_MAX = 30
DESCRIPTION_MAX = 2000
PRICE_MAX_CENTS = 10_000_000  # €100,000: anything above is a typo
LEAD_TIME_MAX = 365
MAX_PER_REQUEST_MAX = 1000
STOCK_MAX = 1_000_000
SEARCH_MAX = 100

PHOTOS_FOLDER = "catalog"
MAX_PHOTO_BYTES = 5 * image_uploads.MEGABYTE
PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
PHOTO_SIZE = (1200, 1200)


# ---------------------------------------------------------------------------------------------
# Browsing


@dataclass(frozen=True)
class CatalogEntry:
    """An item as the catalog shows it at one site."""

    item: CatalogItem
    on_hand: int = 0
    reserved: int = 0
    reorder_point: int = 0

    @property
    def available(self) -> int:
        return max(self.on_hand - self.reserved, 0)

    @property
    def in_stock(self) -> bool:
        return self.available > 0

    @property
    def low(self) -> bool:
        """No more available than the reorder point: time to buy more (as in inventory)."""
        return self.reorder_point > 0 and self.available <= self.reorder_point


def _contains(column: object, text: str) -> object:
    return func.lower(column).contains(text.lower(), autoescape=True)  # type: ignore[arg-type]


def browse(
    session: Session,
    site_id: int | None,
    *,
    query: str = "",
    category: str = "",
    include_retired: bool = False,
    only_ids: list[int] | None = None,
) -> list[CatalogEntry]:
    """Active items matching the words in `query` (name or description) and `category`, with
    their stock at `site_id`: one query, however many items."""
    statement = select(CatalogItem, StockLevel).outerjoin(
        StockLevel,
        and_(StockLevel.item_id == CatalogItem.id, StockLevel.site_id == (site_id or -1)),
    )
    if not include_retired:
        statement = statement.where(CatalogItem.active.is_(True))
    if only_ids is not None:
        statement = statement.where(CatalogItem.id.in_(only_ids or [-1]))
    if category:
        statement = statement.where(CatalogItem.category == category)
    for word in (query or "").strip()[:SEARCH_MAX].split():
        statement = statement.where(
            or_(_contains(CatalogItem.name, word), _contains(CatalogItem.description, word))  # type: ignore[arg-type]
        )
    statement = statement.order_by(CATEGORY_ORDER, func.lower(CatalogItem.name), CatalogItem.id)
    rows = list(session.execute(statement).unique())
    assets_in_stock = _assets_in_stock(session, site_id, [i.id for i, _l in rows if i.tracked])
    entries = []
    for item, level in rows:
        point = level.reorder_point if level is not None else 0
        if item.tracked:
            # A tracked item is in stock as assets, not as a count on the shelf.
            entries.append(CatalogEntry(item, assets_in_stock.get(item.id, 0), 0, point))
        elif level is None:
            entries.append(CatalogEntry(item))
        else:
            entries.append(CatalogEntry(item, level.on_hand, level.reserved, point))
    return entries


def _assets_in_stock(session: Session, site_id: int | None, item_ids: list[int]) -> dict[int, int]:
    if not item_ids or not site_id:
        return {}
    rows = session.execute(
        select(Asset.item_id, func.count())
        .where(
            Asset.site_id == site_id,
            Asset.item_id.in_(item_ids),
            Asset.status == AssetStatus.IN_STOCK,
        )
        .group_by(Asset.item_id)
    )
    return {item_id: int(count) for item_id, count in rows}


def entry_at(session: Session, item: CatalogItem, site_id: int | None) -> CatalogEntry:
    level = stock_level(session, item.id, site_id) if site_id else None
    if item.tracked:
        count = _assets_in_stock(session, site_id, [item.id]).get(item.id, 0)
        return CatalogEntry(item, count, 0, level.reorder_point if level else 0)
    if level is None:
        return CatalogEntry(item)
    return CatalogEntry(item, level.on_hand, level.reserved, level.reorder_point)


def items_by_id(session: Session, ids: list[int]) -> dict[int, CatalogItem]:
    if not ids:
        return {}
    return {i.id: i for i in session.scalars(select(CatalogItem).where(CatalogItem.id.in_(ids)))}


def stock_level(session: Session, item_id: int, site_id: int) -> StockLevel | None:
    return session.scalar(
        select(StockLevel).where(StockLevel.item_id == item_id, StockLevel.site_id == site_id)
    )


@dataclass(frozen=True)
class StockRow:
    """One line of the admin list: an item and its stock at each site shown."""

    item: CatalogItem
    levels: dict[int, StockLevel]

    def low_at(self, site_id: int) -> bool:
        level = self.levels.get(site_id)
        return (
            level is not None and level.reorder_point > 0 and level.available <= level.reorder_point
        )

    @property
    def any_low(self) -> bool:
        return any(self.low_at(site_id) for site_id in self.levels)


def stock_overview(
    session: Session,
    site_ids: list[int],
    *,
    query: str = "",
    show: str = "active",
    only_id: int | None = None,
) -> list[StockRow]:
    """Every item (active, retired, low, or all) with its stock at `site_ids`: two queries."""
    statement = select(CatalogItem)
    if only_id is not None:
        statement = statement.where(CatalogItem.id == only_id)
    if show == "retired":
        statement = statement.where(CatalogItem.active.is_(False))
    elif show != "all":
        statement = statement.where(CatalogItem.active.is_(True))
    for word in (query or "").strip()[:SEARCH_MAX].split():
        statement = statement.where(
            or_(_contains(CatalogItem.name, word), _contains(CatalogItem.description, word))  # type: ignore[arg-type]
        )
    items = list(
        session.scalars(
            statement.order_by(CATEGORY_ORDER, func.lower(CatalogItem.name), CatalogItem.id)
        )
    )
    levels: dict[int, dict[int, StockLevel]] = {}
    if items and site_ids:
        for level in session.scalars(
            select(StockLevel).where(
                StockLevel.site_id.in_(site_ids),
                StockLevel.item_id.in_([i.id for i in items]),
            )
        ):
            levels.setdefault(level.item_id, {})[level.site_id] = level
    rows = [StockRow(item, levels.get(item.id, {})) for item in items]
    if show == "low":
        rows = [row for row in rows if row.any_low]
    return rows


# ---------------------------------------------------------------------------------------------
# Items


def parse_money(raw: object, field: str = "price") -> int:
    """ "12.50", "12,50", "€ 1,234.50" or "12" -> cents. Refuses negatives, fractions of a cent
    and absurd amounts with a message for the field."""
    text = str(raw if raw is not None else "").strip().replace("€", "").replace(" ", "")
    if not text:
        raise RuleViolation({field: "Enter an amount, for example 12.50."}, "money")
    if "," in text and "." in text:
        text = text.replace(",", "")  # 1,234.50
    elif "," in text:
        text = text.replace(",", ".")  # 12,50
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RuleViolation({field: "Enter an amount, for example 12.50."}, "money") from None
    if not value.is_finite():
        raise RuleViolation({field: "Enter an amount, for example 12.50."}, "money")
    if value < 0:
        raise RuleViolation({field: "The amount cannot be negative."}, "money")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise RuleViolation({field: "Use at most two decimals (whole cents)."}, "money")
    if cents > PRICE_MAX_CENTS:
        raise RuleViolation(
            {field: f"That is more than {PRICE_MAX_CENTS // 100:,}; check the amount."}, "money"
        )
    return int(cents)


def money_text(cents: int) -> str:
    """Cents back into what the form shows: 1250 -> "12.50"."""
    return f"{cents / 100:.2f}"


@dataclass(frozen=True)
class ItemDetails:
    """What the item form gives, still as text where the service must check it."""

    name: str
    category: str
    description: str = ""
    unit: str = "piece"
    price: str = "0"
    lead_time_days: int | None = 0
    approval: str = ApprovalRule.NEVER
    approval_above: str = ""
    tracked: bool = False
    max_per_request: int | None = 20
    vendor_id: int | None = None


def _checked(session: Session, details: ItemDetails, item: CatalogItem | None) -> dict[str, object]:
    errors: dict[str, str] = {}
    name = " ".join((details.name or "").split())
    if not name:
        errors["name"] = "Give the item a name."
    elif len(name) > NAME_MAX:
        errors["name"] = f"Keep the name under {NAME_MAX} characters."
    else:
        clash = session.scalar(
            select(CatalogItem.id).where(func.lower(CatalogItem.name) == name.lower())
        )
        if clash is not None and (item is None or clash != item.id):
            errors["name"] = f"There is already an item called {name}."
    if details.category not in CATEGORY_LABELS:
        errors["category"] = "Choose a category from the list."
    unit = (details.unit or "").strip()
    if not unit:
        errors["unit"] = "Say what one unit is (piece, box, pack)."
    elif len(unit) > UNIT_MAX:
        errors["unit"] = f"Keep the unit under {UNIT_MAX} characters."
    description = (details.description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = f"Keep the description under {DESCRIPTION_MAX:,} characters."
    price = 0
    try:
        price = parse_money(details.price, "price")
    except RuleViolation as violation:
        errors.update(violation.errors)
    lead = details.lead_time_days
    if lead is None or not 0 <= lead <= LEAD_TIME_MAX:
        errors["lead_time_days"] = f"Enter a number of days from 0 to {LEAD_TIME_MAX}."
    if details.approval not in APPROVAL_LABELS:
        errors["approval"] = "Choose when approval is needed."
    above = 0
    if details.approval == ApprovalRule.ABOVE:
        try:
            above = parse_money(details.approval_above, "approval_above")
            if above == 0:
                errors["approval_above"] = "Give an amount above zero, or choose “Always”."
        except RuleViolation as violation:
            errors.update(violation.errors)
    most = details.max_per_request
    if most is None or not 1 <= most <= MAX_PER_REQUEST_MAX:
        errors["max_per_request"] = f"Enter a number from 1 to {MAX_PER_REQUEST_MAX}."
    if details.vendor_id:
        vendor = session.get(Vendor, details.vendor_id)
        if vendor is None or (not vendor.active and (item is None or item.vendor_id != vendor.id)):
            errors["vendor_id"] = "Choose an active vendor from the list."
    if errors:
        raise RuleViolation(errors, "item")
    return {
        "name": name,
        "category": details.category,
        "description": description,
        "unit": unit,
        "price_cents": price,
        "lead_time_days": lead,
        "approval": details.approval,
        "approval_above_cents": above,
        "tracked": bool(details.tracked),
        "max_per_request": most,
        "vendor_id": details.vendor_id or None,
    }


def item_snapshot(item: CatalogItem) -> dict[str, object]:
    return {
        "name": item.name,
        "category": item.category,
        "unit": item.unit,
        "price_cents": item.price_cents,
        "lead_time_days": item.lead_time_days,
        "approval": item.approval,
        "approval_above_cents": item.approval_above_cents,
        "tracked": item.tracked,
        "max_per_request": item.max_per_request,
        "vendor_id": item.vendor_id,
        "active": item.active,
    }


def create_item(session: Session, actor: Actor, details: ItemDetails) -> CatalogItem:
    values = _checked(session, details, None)
    item = CatalogItem(**values)
    session.add(item)
    session.flush()
    audit.record(session, actor, "catalog_item.created", item, after=item_snapshot(item))
    return item


def update_item(session: Session, actor: Actor, item: CatalogItem, details: ItemDetails) -> None:
    values = _checked(session, details, item)
    before = item_snapshot(item)
    described = item.description
    for key, value in values.items():
        setattr(item, key, value)
    session.flush()
    after = item_snapshot(item)
    if after != before or described != item.description:
        audit.record(session, actor, "catalog_item.updated", item, before=before, after=after)


def set_active(session: Session, actor: Actor, item: CatalogItem, active: bool) -> None:
    """Retire (nobody can ask for it any more; past requests keep it) or bring it back."""
    if item.active == active:
        return
    item.active = active
    session.flush()
    audit.record(
        session,
        actor,
        "catalog_item.reactivated" if active else "catalog_item.retired",
        item,
        before={"active": not active},
        after={"active": active},
    )


def set_photo(
    session: Session, actor: Actor, item: CatalogItem, data: bytes, uploads: Path
) -> str | None:
    """Check, shrink and re-encode the photo as JPEG (metadata such as GPS is dropped), store it
    under `uploads`/catalog. Returns the replaced file's name, to remove after the commit."""
    if not data:
        raise RuleViolation({"photo": "Choose a photo."}, "photo")
    if len(data) > MAX_PHOTO_BYTES:
        size = len(data) / image_uploads.MEGABYTE
        raise RuleViolation(
            {
                "photo": f"The photo is {size:.1f} MB; the most we accept is "
                f"{MAX_PHOTO_BYTES // image_uploads.MEGABYTE} MB."
            },
            "photo",
        )
    try:
        checked = image_uploads.check_raster(
            data, formats=PHOTO_FORMATS, fit_within=PHOTO_SIZE, output="JPEG"
        )
    except image_uploads.ImageRejected as rejected:
        raise RuleViolation({"photo": str(rejected)}, "photo") from rejected
    name = image_uploads.store(uploads / PHOTOS_FOLDER, checked)
    previous = item.photo_file
    item.photo_file = name
    session.flush()
    audit.record(
        session,
        actor,
        "catalog_item.photo_uploaded",
        item,
        before={"photo_file": previous},
        after={"photo_file": name, "width": checked.width, "height": checked.height},
    )
    return previous


def remove_photo(session: Session, actor: Actor, item: CatalogItem) -> str | None:
    previous = item.photo_file
    if previous is None:
        return None
    item.photo_file = None
    session.flush()
    audit.record(
        session, actor, "catalog_item.photo_removed", item, before={"photo_file": previous}
    )
    return previous


# ---------------------------------------------------------------------------------------------
# Stock per site


def may_keep_stock(user: User, site_id: int) -> bool:
    """Coordinators keep the stock of their own sites; administrators of every site."""
    return bool(user.is_authenticated and (user.is_admin or site_id in user.coordinated_site_ids()))


def _whole(raw: object, field: str, label: str) -> int:
    text = str(raw if raw is not None else "").strip()
    if not text:
        raise RuleViolation({field: f"Enter the {label} (0 or more)."}, "stock")
    try:
        value = int(text)
    except ValueError:
        raise RuleViolation({field: "Enter a whole number, like 12."}, "stock") from None
    if value < 0:
        raise RuleViolation({field: f"The {label} cannot be negative."}, "stock")
    if value > STOCK_MAX:
        raise RuleViolation({field: f"That is more than {STOCK_MAX:,}; check it."}, "stock")
    return value


def set_stock(
    session: Session,
    actor: Actor,
    by: User,
    item: CatalogItem,
    site: Site,
    *,
    on_hand: object,
    reorder_point: object,
) -> StockLevel:
    """Count the shelf: set what `site` holds of `item` and when to reorder. What is already
    promised to approved requests stays promised, so on hand cannot drop below it; the
    UPDATE re-checks that in the database, in case an approval lands at the same moment."""
    if not may_keep_stock(by, site.id):
        raise NotFound("There is no such site.")
    counted = _whole(on_hand, "on_hand", "number on hand")
    point = _whole(reorder_point, "reorder_point", "reorder point")
    level = stock_level(session, item.id, site.id)
    if level is None:
        level = StockLevel(item_id=item.id, site_id=site.id, on_hand=0, reserved=0)
        session.add(level)
        session.flush()
    before = {
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "reorder_point": level.reorder_point,
    }
    result = session.execute(
        update(StockLevel)
        .where(StockLevel.id == level.id, StockLevel.reserved <= counted)
        .values(on_hand=counted, reorder_point=point)
        .execution_options(synchronize_session=False)
    )
    session.refresh(level)
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise RuleViolation(
            {
                "on_hand": f"{level.reserved} are promised to approved requests; on hand "
                f"cannot be less than that. Deliver or cancel those first."
            },
            "stock_reserved",
        )
    audit.record(
        session,
        actor,
        "stock.counted",
        level,
        before=before,
        after={"on_hand": counted, "reserved": level.reserved, "reorder_point": point},
    )
    return level
