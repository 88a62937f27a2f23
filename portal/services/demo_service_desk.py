"""The demo company's service desk, so `make run` shows a desk in use: vendors, SLA policies, a
stocked catalog with product pictures, facility issues in every SLA state, requests in every
status (several of them Lena Fischer's, the demo employee), purchase orders, tracked assets with
their histories and loanable equipment with a loan.

Idempotent: reference data is found by its natural key, and every demo ticket carries a
`demo:` submission key, so a re-run adds nothing twice. Deterministic (names and numbers come
from fixed lists and a seeded random generator) and fast: the pictures are drawn once.

Times are real: tickets are opened at realistic moments in the past through the ticket services,
so the SLA clock (business hours of the site) puts them where the demo wants them. "Due soon"
needs a deadline within the next hours, which business time can only give while a site is open;
outside opening hours (nights, weekends) that one deadline is set directly, so every state shows."""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import (
    ApprovalRule,
    Asset,
    AssetEvent,
    AssetStatus,
    Building,
    CatalogItem,
    Desk,
    Equipment,
    EquipmentLoan,
    Floor,
    IssueFollower,
    ItemCategory,
    LineStatus,
    Notice,
    Priority,
    PurchaseOrder,
    PurchaseOrderLine,
    RequestLine,
    Resource,
    Room,
    Site,
    SlaPolicy,
    StockLevel,
    Ticket,
    TicketKind,
    TicketStatus,
    User,
    Vendor,
)
from portal.services import accounts, equipment_loans, facility_issues, sla, tickets
from portal.services.audit import Actor
from portal.services.image_uploads import CheckedImage, store, stored_path
from portal.timezones import to_utc

CATALOG_FOLDER = "catalog"
KEY = "demo:"  # prefix of every demo ticket's submission key
LENA = "lena.fischer@example.com"
JONAS = "jonas.weber@example.com"
MAYA = "maya.johnson@example.com"
AMARA = "amara.okafor@example.com"
DAY = 8 * 60  # business minutes in an SLA "day", as sla.DEFAULT_TARGETS counts them

# ---------------------------------------------------------------------------------------------
# Reference data

VENDORS = [  # name, contact, e-mail, phone, categories served (issue and item categories)
    (
        "Paperworks Office Supply",
        "Greta Lindner",
        "orders@paperworks.example.net",
        "+49 30 5550 1200",
        ["office_supplies", "welcome_kits"],
    ),
    (
        "Northwind IT Solutions",
        "Daniel Brooks",
        "sales@northwind-it.example.net",
        "+1 212 555 0148",
        ["it_peripherals", "equipment", "it_av"],
    ),
    (
        "Holzwerk Furniture",
        "Jana Richter",
        "service@holzwerk.example.net",
        "+49 30 5550 3344",
        ["furniture"],
    ),
    (
        "Brightline Building Services",
        "Marco Costa",
        "dispatch@brightline.example.net",
        "+49 30 5550 9000",
        ["plumbing", "electrical", "temperature", "safety"],
    ),
    (
        "Sparkle Facility Cleaning",
        "Rosa Alvarez",
        "team@sparkle-cleaning.example.net",
        "+1 646 555 0190",
        ["cleaning"],
    ),
]
H = 60
SLA_POLICIES = [  # kind, category, priority, first response, resolution (business minutes)
    ("issue", "", "urgent", 30, 4 * H),
    ("issue", "", "high", 2 * H, DAY),
    ("issue", "", "normal", 4 * H, 3 * DAY),
    ("issue", "", "low", DAY, 5 * DAY),
    ("issue", "safety", "", H, DAY),  # safety is never "low": stricter whatever the urgency
    ("issue", "safety", "high", 30, 4 * H),
    ("issue", "safety", "urgent", 15, 2 * H),
    ("request", "", "", DAY, 5 * DAY),
]


@dataclass(frozen=True)
class ItemSpec:
    key: str  # also the picture to draw
    name: str
    category: str
    unit: str
    price_cents: int
    lead_time_days: int
    vendor: str
    description: str
    approval: str = ApprovalRule.NEVER
    approval_above_cents: int = 0
    tracked: bool = False
    max_per_request: int = 20
    berlin: tuple[int, int] = (10, 3)  # on hand, reorder point (tracked: from the assets)
    new_york: tuple[int, int] = (10, 3)


_O, _I, _F, _E, _W = (
    ItemCategory.OFFICE_SUPPLIES,
    ItemCategory.IT_PERIPHERALS,
    ItemCategory.FURNITURE,
    ItemCategory.EQUIPMENT,
    ItemCategory.WELCOME_KITS,
)
_PAPER, _IT, _WOOD = "Paperworks Office Supply", "Northwind IT Solutions", "Holzwerk Furniture"
ITEMS = [
    ItemSpec("paper", "A4 copy paper, 5 reams", _O, "box", 2990, 2, _PAPER,
             "80 g/m², bright white, 2,500 sheets. For the floor printers and your desk.",
             berlin=(24, 10), new_york=(3, 8)),
    ItemSpec("pens", "Ballpoint pens, blue (10)", _O, "pack", 450, 2, _PAPER,
             "Smooth-writing, refillable pens with a clip.", berlin=(60, 20), new_york=(45, 20)),
    ItemSpec("sticky", "Sticky notes 76 × 76 mm (12 pads)", _O, "pack", 890, 2, _PAPER,
             "Assorted colours, 100 sheets per pad.", berlin=(8, 10), new_york=(30, 10)),
    ItemSpec("notebook", "Spiral notebook A5, dotted", _O, "piece", 349, 3, _PAPER,
             "120 pages, 90 g/m² paper that markers do not bleed through.",
             berlin=(40, 15), new_york=(0, 10)),
    ItemSpec("markers", "Whiteboard markers (4 colours)", _O, "set", 699, 2, _PAPER,
             "Chisel tip, low odour; black, blue, red and green.",
             berlin=(12, 6), new_york=(10, 6)),
    ItemSpec("stapler", "Desk stapler", _O, "piece", 1290, 3, _PAPER,
             "Staples up to 25 sheets; comes with 1,000 staples.", berlin=(6, 2), new_york=(4, 2)),
    ItemSpec("organiser", "Desk organiser", _O, "piece", 1990, 5, _PAPER,
             "A pen cup and a tray for cards and sticky notes, in recycled plastic.",
             berlin=(5, 2), new_york=(2, 2)),
    ItemSpec("monitor", '27" 4K USB-C monitor', _I, "piece", 34900, 7, _IT,
             "27-inch IPS screen, 3840 × 2160, height-adjustable stand; one USB-C cable charges "
             "your laptop and carries picture, keyboard and mouse.",
             approval=ApprovalRule.ALWAYS, tracked=True, max_per_request=2,
             berlin=(0, 2), new_york=(0, 1)),
    ItemSpec("laptop", '14" laptop (standard build)', _I, "piece", 129900, 10, _IT,
             "14-inch, 16 GB memory, 512 GB SSD, with the company's standard software. "
             "Replacements and new joiners only.",
             approval=ApprovalRule.ALWAYS, tracked=True, max_per_request=1,
             berlin=(0, 2), new_york=(0, 1)),
    ItemSpec("keyboard", "Wireless keyboard", _I, "piece", 5990, 3, _IT,
             "Quiet low-profile keys, US or German layout (say which in a comment).",
             berlin=(14, 5), new_york=(9, 5)),
    ItemSpec("mouse", "Wireless mouse", _I, "piece", 2990, 3, _IT,
             "Ergonomic, with a USB receiver and Bluetooth.", berlin=(18, 5), new_york=(3, 5)),
    ItemSpec("dock", "USB-C docking station", _I, "piece", 18900, 5, _IT,
             "Two monitors, Ethernet, four USB ports and 90 W charging over one cable.",
             approval=ApprovalRule.ABOVE, approval_above_cents=30000, max_per_request=4,
             berlin=(0, 3), new_york=(4, 2)),
    ItemSpec("headset", "Noise-cancelling headset", _I, "piece", 14900, 5, _IT,
             "Over-ear, with a boom microphone; certified for video calls.",
             approval=ApprovalRule.ABOVE, approval_above_cents=20000, max_per_request=2,
             berlin=(7, 3), new_york=(5, 3)),
    ItemSpec("webcam", "HD webcam", _I, "piece", 7900, 3, _IT,
             "1080p with autofocus and a privacy shutter.", berlin=(9, 3), new_york=(6, 3)),
    ItemSpec("adapter", "USB-C to HDMI adapter", _I, "piece", 1990, 2, _IT,
             "4K at 60 Hz, for meeting-room screens.", berlin=(25, 10), new_york=(12, 10)),
    ItemSpec("chair", "Ergonomic office chair", _F, "piece", 42900, 14, _WOOD,
             "Adjustable lumbar support, seat depth and 4D armrests; mesh back.",
             approval=ApprovalRule.ALWAYS, max_per_request=1, berlin=(0, 2), new_york=(3, 2)),
    ItemSpec("footrest", "Adjustable footrest", _F, "piece", 3990, 5, _WOOD,
             "Tilting platform with a massage surface, three heights.",
             approval=ApprovalRule.ABOVE, approval_above_cents=5000, max_per_request=2,
             berlin=(4, 2), new_york=(2, 2)),
    ItemSpec("monitor_arm", "Monitor arm, single", _F, "piece", 11900, 7, _WOOD,
             "Gas-spring arm for screens up to 32 inches and 9 kg; clamps to the desk.",
             approval=ApprovalRule.ABOVE, approval_above_cents=20000, max_per_request=2,
             berlin=(6, 2), new_york=(1, 2)),
    ItemSpec("converter", "Sit-stand desk converter", _F, "piece", 24900, 14, _WOOD,
             "Turns a fixed desk into a standing desk; lifts 15 kg, 11 heights.",
             approval=ApprovalRule.ALWAYS, max_per_request=1, berlin=(2, 1), new_york=(1, 1)),
    ItemSpec("lamp", "LED desk lamp", _F, "piece", 4990, 5, _WOOD,
             "Dimmable, warm to cool light, with a USB charging port in the base.",
             berlin=(5, 2), new_york=(3, 2)),
    ItemSpec("whiteboard", "Mobile whiteboard", _E, "piece", 18900, 10, _WOOD,
             "Double-sided, 120 × 90 cm, on lockable wheels, with a marker tray.",
             approval=ApprovalRule.ALWAYS, max_per_request=1, berlin=(2, 1), new_york=(1, 1)),
    ItemSpec("label_printer", "Label printer", _E, "piece", 8990, 5, _IT,
             "Prints names, cable labels and shelf labels from a laptop.",
             approval=ApprovalRule.ABOVE, approval_above_cents=5000, max_per_request=1,
             berlin=(2, 1), new_york=(1, 1)),
    ItemSpec("extension", "Extension lead, 5 sockets", _E, "piece", 1490, 2, _IT,
             "3 m cable with a switch and surge protection.", berlin=(15, 5), new_york=(8, 5)),
    ItemSpec("first_aid", "First-aid kit", _E, "piece", 2490, 3, _PAPER,
             "Refill-ready kit to DIN 13157 for a team's floor.", berlin=(6, 3), new_york=(2, 3)),
    ItemSpec("kit", "Welcome kit", _W, "kit", 3500, 5, _PAPER,
             "A notebook, a pen, a bottle and stickers in a gift box for a new colleague's "
             "first day.", berlin=(10, 5), new_york=(4, 5)),
    ItemSpec("hoodie", "Team hoodie", _W, "piece", 4500, 10, _PAPER,
             "Organic cotton, sizes XS–XXL (say which in a comment).",
             berlin=(30, 10), new_york=(20, 10)),
    ItemSpec("bottle", "Insulated water bottle", _W, "piece", 1890, 5, _PAPER,
             "750 ml stainless steel; keeps drinks cold for 24 hours.",
             berlin=(0, 10), new_york=(25, 10)),
]  # fmt: skip

# Tracked assets: tag, item, site, story, holder ("" nobody, "lena", or an index into the site's
# employees), days ago it arrived. Stories: stock, held, pending, returned, return_requested,
# lost, retired.
ASSETS = [
    ("BER-LAP-0001", "laptop", "berlin", "held", "lena", 420),
    ("BER-LAP-0002", "laptop", "berlin", "held", 0, 300),
    ("BER-LAP-0003", "laptop", "berlin", "return_requested", 1, 300),
    ("BER-LAP-0004", "laptop", "berlin", "returned", 2, 300),
    ("BER-LAP-0005", "laptop", "berlin", "lost", 3, 420),
    ("BER-LAP-0006", "laptop", "berlin", "retired", 4, 900),
    ("BER-LAP-0007", "laptop", "berlin", "stock", "", 60),
    ("BER-MON-0001", "monitor", "berlin", "held", 0, 300),
    ("BER-MON-0002", "monitor", "berlin", "held", 5, 300),
    ("BER-MON-0003", "monitor", "berlin", "held", 6, 200),
    ("BER-MON-0004", "monitor", "berlin", "returned", 7, 420),
    ("BER-MON-0005", "monitor", "berlin", "stock", "", 33),
    ("BER-MON-0006", "monitor", "berlin", "stock", "", 33),
    ("BER-MON-0007", "monitor", "berlin", "stock", "", 33),
    ("BER-MON-0008", "monitor", "berlin", "pending", "lena", 33),
    ("NY-LAP-0001", "laptop", "new-york", "held", 0, 250),
    ("NY-LAP-0002", "laptop", "new-york", "stock", "", 40),
    ("NY-MON-0001", "monitor", "new-york", "held", 1, 92),
    ("NY-MON-0002", "monitor", "new-york", "stock", "", 90),
    ("NY-MON-0003", "monitor", "new-york", "stock", "", 90),
]
EQUIPMENT = [  # site, name, description, pick-up point, longest loan in days
    (
        "berlin",
        "Portable projector",
        "Full-HD laser projector with HDMI and USB-C cables, a remote and a carry bag.",
        "Reception, floor 1",
        5,
    ),
    (
        "berlin",
        "Camera kit",
        "Mirrorless camera with a 16–50 mm lens, tripod, clip-on microphone and two batteries.",
        "Reception, floor 1",
        7,
    ),
    (
        "berlin",
        "Conference speakerphone",
        "360° speaker and microphone for up to 12 people; USB and Bluetooth.",
        "Reception, floor 1",
        14,
    ),
    (
        "new-york",
        "Portable projector",
        "Full-HD laser projector with HDMI and USB-C cables and a carry bag.",
        "Front desk, 10th floor",
        5,
    ),
]


@dataclass(frozen=True)
class ServiceDeskSummary:
    items: int
    issues: int
    requests: int
    assets: int


@dataclass
class Cast:
    berlin: Site
    new_york: Site
    lena: User
    jonas: User
    maya: User
    amara: User
    berliners: list[User]  # employees at Berlin other than the demo logins
    new_yorkers: list[User]

    def coordinator(self, site: Site) -> User:
        return self.jonas if site.id == self.berlin.id else self.maya

    def site(self, slug: str) -> Site:
        return self.berlin if slug == "berlin" else self.new_york


# ---------------------------------------------------------------------------------------------
# Entry point


def seed_service_desk(session: Session, now: datetime, uploads: Path) -> ServiceDeskSummary | None:
    """Load the service desk into the demo company (run demo_company.seed_demo first); `uploads`
    is the instance folder's uploads directory (catalog pictures and issue photos go there)."""
    cast = _cast(session)
    if cast is None:
        return None
    actor = Actor.system("seed-demo")
    vendors = _vendors(session)
    _policies(session)
    items = _catalog(session, vendors, uploads)
    assets = _assets(session, cast, items, now)
    _stock(session, cast, items, assets)
    done = set(
        session.scalars(
            select(Ticket.submission_key).where(
                or_(
                    Ticket.submission_key.like(KEY + "%"),
                    Ticket.submission_key.like(f"{facility_issues.KEY_PREFIX}%:demo-%"),
                )
            )
        )
    )
    story = Story(session, actor, cast, vendors, items, assets, uploads, now, done)
    story.issues()
    story.requests()
    _equipment(session, actor, cast, now)
    _quiet_old_notices(session, now)
    session.flush()
    return ServiceDeskSummary(
        items=len(items),
        issues=_count(session, TicketKind.ISSUE),
        requests=_count(session, TicketKind.REQUEST),
        assets=len(assets),
    )


def _count(session: Session, kind: str) -> int:
    return session.scalar(select(func.count(Ticket.id)).where(Ticket.kind == kind)) or 0


def _cast(session: Session) -> Cast | None:
    sites = {s.slug: s for s in session.scalars(select(Site))}
    people = {email: accounts.find_by_email(session, email) for email in (LENA, JONAS, MAYA, AMARA)}
    if "berlin" not in sites or "new-york" not in sites or None in people.values():
        return None
    logins = {p.id for p in people.values() if p is not None}

    def staff_of(site: Site) -> list[User]:
        return [
            u
            for u in session.scalars(
                select(User)
                .where(User.home_site_id == site.id, User.active.is_(True))
                .order_by(User.id)
                .limit(40)
            )
            if u.id not in logins
        ]

    return Cast(
        sites["berlin"],
        sites["new-york"],
        people[LENA],  # type: ignore[arg-type]
        people[JONAS],  # type: ignore[arg-type]
        people[MAYA],  # type: ignore[arg-type]
        people[AMARA],  # type: ignore[arg-type]
        staff_of(sites["berlin"]),
        staff_of(sites["new-york"]),
    )


def _vendors(session: Session) -> dict[str, Vendor]:
    found = {v.name: v for v in session.scalars(select(Vendor))}
    for name, contact, email, phone, categories in VENDORS:
        if name not in found:
            found[name] = Vendor(
                name=name, contact_name=contact, email=email, phone=phone, categories=categories
            )
            session.add(found[name])
    session.flush()
    return found


def _policies(session: Session) -> None:
    have = {(p.kind, p.category, p.priority) for p in session.scalars(select(SlaPolicy))}
    for kind, category, priority, first, resolution in SLA_POLICIES:
        if (kind, category, priority) not in have:
            session.add(
                SlaPolicy(
                    kind=kind,
                    category=category,
                    priority=priority,
                    first_response_minutes=first,
                    resolution_minutes=resolution,
                )
            )
    session.flush()


def _catalog(session: Session, vendors: dict[str, Vendor], uploads: Path) -> dict[str, CatalogItem]:
    found = {i.name: i for i in session.scalars(select(CatalogItem))}
    items = {}
    for spec in ITEMS:
        item = found.get(spec.name)
        if item is None:
            item = CatalogItem(
                name=spec.name,
                category=spec.category,
                description=spec.description,
                unit=spec.unit,
                price_cents=spec.price_cents,
                lead_time_days=spec.lead_time_days,
                approval=spec.approval,
                approval_above_cents=spec.approval_above_cents,
                tracked=spec.tracked,
                max_per_request=spec.max_per_request,
                vendor_id=vendors[spec.vendor].id,
            )
            session.add(item)
        folder = uploads / CATALOG_FOLDER
        if item.photo_file is None or stored_path(folder, item.photo_file) is None:
            picture = illustration(spec.key, spec.category)
            item.photo_file = store(folder, CheckedImage(picture, "image/jpeg", ".jpg", 600, 450))
        items[spec.key] = item
    session.flush()
    return items


def _stock(
    session: Session, cast: Cast, items: dict[str, CatalogItem], assets: dict[str, Asset]
) -> None:
    """Shelves as counted today (deliveries already taken off); reservations for approved lines
    are added when those requests are created."""
    have = {(s.item_id, s.site_id) for s in session.scalars(select(StockLevel))}
    for spec in ITEMS:
        item = items[spec.key]
        for site, (on_hand, reorder) in (
            (cast.berlin, spec.berlin),
            (cast.new_york, spec.new_york),
        ):
            if (item.id, site.id) in have:
                continue
            if spec.tracked:  # what is on the shelf is the tagged assets in stock
                on_hand = sum(
                    1
                    for a in assets.values()
                    if a.item_id == item.id
                    and a.site_id == site.id
                    and a.status == AssetStatus.IN_STOCK
                )
            session.add(
                StockLevel(item_id=item.id, site_id=site.id, on_hand=on_hand, reorder_point=reorder)
            )
    session.flush()


def _assets(
    session: Session, cast: Cast, items: dict[str, CatalogItem], now: datetime
) -> dict[str, Asset]:
    found = {a.asset_tag: a for a in session.scalars(select(Asset))}
    rng = random.Random(55)  # noqa: S311 - deterministic demo serial numbers  # nosec B311
    for tag, item_key, slug, story, holder_key, days in ASSETS:
        serial = f"{'CN' if item_key == 'monitor' else 'PF'}{rng.randrange(10**7, 10**8)}"
        if tag in found:
            continue
        site = cast.site(slug)
        staff = cast.berliners if slug == "berlin" else cast.new_yorkers
        holder = cast.lena if holder_key == "lena" else None
        if isinstance(holder_key, int):
            holder = staff[holder_key]
        coordinator = cast.coordinator(site)
        arrived = now - timedelta(days=days)
        asset = Asset(
            item_id=items[item_key].id,
            site_id=site.id,
            asset_tag=tag,
            serial_number=serial,
            status=AssetStatus.IN_STOCK,
            created_at=arrived,
        )
        session.add(asset)
        session.flush()
        events: list[tuple[str, datetime, User | None, str]] = [("received", arrived, None, "")]
        if story != "stock":
            handed = (
                arrived + timedelta(days=1)
                if story != "pending"
                else _office_hours(site, now - timedelta(days=1), now)  # as the request says
            )
            note = "Replacement for the old 24-inch screen" if story == "pending" else ""
            events.append(("assigned", handed, holder, note))
            asset.status, asset.holder_id, asset.assigned_at = (
                AssetStatus.ASSIGNED,
                holder.id if holder else None,
                handed,
            )
            if story != "pending":
                accepted = handed + timedelta(hours=3)
                events.append(("accepted", accepted, holder, ""))
                asset.status, asset.accepted_at = AssetStatus.ACCEPTED, accepted
            later = handed + timedelta(days=max(days // 2, 2))
            if story == "return_requested":
                events.append(("return_requested", now - timedelta(days=2), holder,
                               "Leaving the company at the end of the month"))  # fmt: skip
                asset.status = AssetStatus.RETURN_REQUESTED
            elif story in ("returned", "retired"):
                events.append(("returned", later, holder, "Swapped for a newer model"))
                asset.status, asset.holder_id = AssetStatus.IN_STOCK, None
                asset.assigned_at = asset.accepted_at = None
            elif story == "lost":
                events.append(("lost", later, holder, "Left on a train; reported to the police"))
                asset.status, asset.holder_id = AssetStatus.LOST, None
            if story == "retired":
                events.append(("retired", later + timedelta(days=1), None, "Battery swollen"))
                asset.status = AssetStatus.RETIRED
        for action, when, who, note in events:
            by = who if action in ("accepted", "return_requested") else coordinator
            session.add(
                AssetEvent(
                    asset_id=asset.id,
                    action=action,
                    actor_id=by.id if by else None,
                    holder_id=who.id if who else None,
                    note=note,
                    created_at=when,
                )
            )
        found[tag] = asset
    session.flush()
    return {tag: found[tag] for tag, *_ in ASSETS}


def _equipment(session: Session, actor: Actor, cast: Cast, now: datetime) -> None:
    for slug, name, description, pickup, max_days in EQUIPMENT:
        site = cast.site(slug)
        existing = session.scalar(
            select(Equipment).where(Equipment.site_id == site.id, Equipment.name == name)
        )
        if existing is None:
            equipment_loans.create_equipment(
                session,
                actor,
                cast.amara,
                site,
                equipment_loans.EquipmentDetails(
                    name=name, description=description, pickup_point=pickup, max_loan_days=max_days
                ),
            )
    projector = session.scalar(
        select(Equipment).where(
            Equipment.site_id == cast.berlin.id, Equipment.name == "Portable projector"
        )
    )
    if projector is None or session.scalar(select(EquipmentLoan.id).limit(1)) is not None:
        return
    first = _working_day(equipment_loans.today_at(cast.berlin, now) + timedelta(days=2))
    with contextlib.suppress(RuleViolation), session.begin_nested():
        equipment_loans.reserve(
            session,
            actor,
            cast.lena,
            equipment_id=projector.id,
            first_day=first,
            last_day=first + timedelta(days=1),
            purpose="Customer workshop in the Havel room",
            idempotency_key="demo-loan-projector",
            now=now,
        )


def _office_hours(site: Site, when: datetime, now: datetime) -> datetime:
    """Something reported days ago was reported on a working day, in office hours: move `when`
    back to the last such moment (never forward, so nothing gets younger). Recent moments stay
    as they are."""
    zone = ZoneInfo(site.time_zone)
    local = when.astimezone(zone)
    in_hours = local.weekday() < 5 and site.opens_at <= local.time() <= site.closes_at
    if when > now - timedelta(days=1) or in_hours:
        return when
    day = local.date()
    if local.time() < site.opens_at:
        day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    late_afternoon = (datetime.combine(day, site.closes_at) - timedelta(hours=2, minutes=30)).time()
    return to_utc(datetime.combine(day, late_afternoon), zone)


def _working_day(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _quiet_old_notices(session: Session, now: datetime) -> None:
    """Opening demo tickets told the coordinators about each; only today's count as new."""
    session.flush()
    old_paths = [
        tickets.ticket_path(t)
        for t in session.scalars(
            select(Ticket).where(
                or_(
                    Ticket.submission_key.like(KEY + "%"),
                    Ticket.submission_key.like(f"{facility_issues.KEY_PREFIX}%:demo-%"),
                ),
                Ticket.created_at < now - timedelta(hours=8),
            )
        )
    ]
    if old_paths:
        session.execute(
            update(Notice)
            .where(Notice.read_at.is_(None), Notice.link.in_(old_paths))
            .values(read_at=now)
            .execution_options(synchronize_session=False)
        )


# ---------------------------------------------------------------------------------------------
# Tickets: facility issues and requests, each opened in the past and moved along step by step

Step = tuple[timedelta, str, object]  # when (>= 0: after opening; < 0: before now), what, detail


class Story:
    def __init__(
        self,
        session: Session,
        actor: Actor,
        cast: Cast,
        vendors: dict[str, Vendor],
        items: dict[str, CatalogItem],
        assets: dict[str, Asset],
        uploads: Path,
        now: datetime,
        done: set[str | None],
    ) -> None:
        self.s, self.actor, self.cast, self.vendors = session, actor, cast, vendors
        self.items, self.assets, self.uploads, self.now, self.done = (
            items,
            assets,
            uploads,
            now,
            done,
        )

    # -- places ------------------------------------------------------------------------------
    def room(self, site: Site, name: str) -> Resource:
        found = self.s.scalar(select(Room).where(Room.site_id == site.id, Room.name == name))
        return found or self._any(Room, site)

    def desk(self, site: Site, name: str) -> Resource:
        found = self.s.scalar(select(Desk).where(Desk.site_id == site.id, Desk.name == name))
        return found or self._any(Desk, site)

    def _any(self, kind: type[Resource], site: Site) -> Resource:
        return self.s.scalars(
            select(kind).where(kind.site_id == site.id).order_by(kind.id)  # type: ignore[attr-defined]
        ).first()

    def floor(self, site: Site, level: int) -> Floor:
        floors = list(
            self.s.scalars(
                select(Floor)
                .join(Building, Building.id == Floor.building_id)
                .where(Building.site_id == site.id)
                .order_by(Floor.level)
            )
        )
        return next((f for f in floors if f.level == level), floors[0])

    # -- shared steps ------------------------------------------------------------------------
    def _when(self, site: Site, created: datetime, offset: timedelta) -> datetime:
        at = (
            created + offset
            if offset >= timedelta(0)
            else _office_hours(site, self.now + offset, self.now)
        )
        return min(max(at, created + timedelta(minutes=1)), self.now - timedelta(minutes=1))

    def play(self, ticket: Ticket, site: Site, steps: list[Step]) -> None:
        coordinator = self.cast.coordinator(site)
        for offset, what, detail in steps:
            at = self._when(site, ticket.created_at, offset)
            if what == "assign":
                vendor = self.vendors.get(detail) if isinstance(detail, str) else None
                tickets.assign(
                    self.s, self.actor, ticket, by=coordinator, now=at,
                    assignee=coordinator, vendor=vendor,
                )  # fmt: skip
            elif what == "reply":  # a public answer from the coordinator
                tickets.record(self.s, ticket, coordinator, str(detail), now=at, kind="comment")
                tickets.mark_responded(ticket, at)
                ticket.updated_at = at
            elif what == "note":
                tickets.record(
                    self.s, ticket, coordinator, str(detail), now=at, kind="note", internal=True
                )
            elif what == "comment":  # the requester writes
                tickets.add_comment(
                    self.s, self.actor, ticket, ticket.requester, str(detail), now=at
                )
            elif what == "status":
                status, note = detail if isinstance(detail, tuple) else (detail, "")
                tickets.change_status(
                    self.s, self.actor, ticket, status, by=coordinator, now=at, note=note,
                    notify=False,
                )  # fmt: skip
            elif what == "cancel":
                tickets.cancel(self.s, self.actor, ticket, ticket.requester, now=at)
                for line in ticket.lines:
                    if line.status == LineStatus.PENDING:
                        line.status = LineStatus.CANCELLED
            elif what == "follow":
                for person in detail:  # type: ignore[attr-defined]
                    self.s.add(IssueFollower(ticket_id=ticket.id, user_id=person.id, created_at=at))
                    ticket.me_too_count += 1
                    tickets.record(self.s, ticket, person, f"{person.name} has this problem too",
                                   now=at)  # fmt: skip
            elif callable(detail):
                detail(ticket, at)
        self.s.flush()

    def soon(self, site: Site, minutes: int) -> datetime | None:
        """An opening time whose deadline `minutes` of business time later falls one to three
        hours from now; None while the site is closed for longer than that."""
        for quarter in range(1, 5 * 24 * 4):
            created = self.now - timedelta(minutes=15 * quarter)
            due = sla.add_business_minutes(site, created, minutes)
            if due < self.now + timedelta(minutes=60):
                return None
            if due <= self.now + timedelta(hours=3):
                return created
        return None

    # -- facility issues -----------------------------------------------------------------------
    def issue(
        self,
        key: str,
        *,
        site: Site,
        reporter: User,
        category: str,
        priority: str,
        place: tuple[Floor, Resource | None, str],
        description: str,
        ago: timedelta | None = None,
        soon_minutes: int | None = None,
        steps: list[Step] = (),  # type: ignore[assignment]
        photo: str | None = None,
    ) -> Ticket | None:
        """Open an issue `ago` (or, for "due soon", when its deadline falls in the next hours)
        and play its steps. `place` is (floor, room or desk, note)."""
        full_key = facility_issues.submission_key(reporter, f"demo-{key}")
        if full_key in self.done:
            return None
        created = _office_hours(site, self.now - (ago or timedelta(minutes=40)), self.now)
        fallback = False
        if soon_minutes is not None:
            found = self.soon(site, soon_minutes)
            fallback = found is None
            created = found or self.now - timedelta(minutes=40)
        floor, resource, note = place
        if resource is not None and resource.floor is not None:
            floor = resource.floor
        photos = [_photo_of(photo)] if photo else []
        ticket, _stored = facility_issues.report_issue(
            self.s,
            self.actor,
            reporter=reporter,
            category=category,
            place=facility_issues.Place(site, floor, resource, note),
            description=description,
            priority=priority,
            photos=photos,
            uploads=self.uploads,
            key=f"demo-{key}",
            now=created,
        )
        self.play(ticket, site, steps)
        if fallback:  # the site is closed for hours: set the one deadline "due soon" shows
            due = self.now + timedelta(hours=2)
            if ticket.first_responded_at is None:
                ticket.first_response_due_at = due
                ticket.resolution_due_at = max(ticket.resolution_due_at or due, due)
            else:
                ticket.resolution_due_at = due
            self.s.flush()
        return ticket

    def issues(self) -> None:
        c, b, ny = self.cast, self.cast.berlin, self.cast.new_york
        bx, nx = c.berliners, c.new_yorkers
        d, hr, mn = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
        F = Priority
        # Open: overdue
        self.issue(
            "radiator", site=b, reporter=bx[8], category="temperature", priority=F.NORMAL,
            place=(self.floor(b, 1), self.room(b, "Spree"), ""),
            description="The radiator under the window stays cold all day. It is 17 °C in the "
            "room by 10:00 and people are wearing coats in meetings.",
            ago=8 * d, photo="radiator",
            steps=[
                (40 * mn, "assign", "Brightline Building Services"),
                (45 * mn, "reply", "Thanks for reporting it. Brightline will look at the "
                 "heating on Thursday morning; until then there is a fan heater at reception."),
                (45 * mn, "status", TicketStatus.IN_PROGRESS),
                (2 * d, "note", "Brightline: the thermostatic valve is stuck and needs "
                 "replacing; the part is on order (about two weeks). Second time this winter — "
                 "ask about replacing all valves on floor 1."),
                (3 * d, "follow", [bx[9], c.lena]),
                (-d, "comment", "Still cold today; we moved the 10:00 stand-up to Havel."),
            ],
        )  # fmt: skip
        self.issue(
            "blind", site=ny, reporter=nx[3], category="furniture", priority=F.NORMAL,
            place=(self.floor(ny, 11), self.room(ny, "Dumbo"), ""),
            description="The window blind is stuck halfway down. In the afternoon the sun "
            "shines straight onto the screen, so nobody can see the slides.",
            ago=9 * d,
            steps=[(2 * d, "follow", [nx[4], nx[5]])],
        )  # fmt: skip
        self.issue(
            "toilet", site=ny, reporter=nx[6], category="plumbing", priority=F.HIGH,
            place=(self.floor(ny, 11), None, "Restrooms by the elevators"),
            description="The left toilet keeps running after flushing; the tank never fills.",
            ago=9 * d + 3 * hr,
            steps=[
                (30 * mn, "assign", "Brightline Building Services"),
                (35 * mn, "reply", "Brightline's plumber is booked; the stall is closed until "
                 "then."),
                (35 * mn, "status", TicketStatus.IN_PROGRESS),
                (3 * d, "note", "Plumber came, needs a new fill valve; second visit not yet "
                 "scheduled. Chase Brightline."),
            ],
        )  # fmt: skip
        # Open: due soon
        self.issue(
            "sockets", site=b, reporter=bx[10], category="electrical", priority=F.HIGH,
            place=(self.floor(b, 3), self.desk(b, "3.07"), ""),
            description="The floor sockets at desks 3.07 to 3.10 have no power since this "
            "morning. Laptops are running on battery.",
            soon_minutes=2 * H,
        )  # fmt: skip
        self.issue(
            "fire-door", site=b, reporter=bx[11], category="safety", priority=F.URGENT,
            place=(self.floor(b, 2), None, "Stairwell B"),
            description="The fire door to stairwell B does not close by itself any more; "
            "someone wedged it open with a chair.",
            soon_minutes=2 * H,
            steps=[
                (5 * mn, "assign", "Brightline Building Services"),
                (6 * mn, "reply", "Thank you — the chair is gone and the door is taped shut "
                 "until the closer is fixed. Brightline is on the way."),
                (6 * mn, "status", TicketStatus.IN_PROGRESS),
                (8 * mn, "note", "Fire-safety officer informed (Marta, ext. 212)."),
            ],
        )  # fmt: skip
        # Open: on track
        self.issue(
            "display", site=b, reporter=bx[12], category="it_av", priority=F.NORMAL,
            place=(self.floor(b, 1), self.room(b, "Havel"), ""),
            description="The big display in Havel flickers every few seconds when a laptop "
            "is connected over HDMI.",
            ago=3 * hr,
            steps=[
                (20 * mn, "assign", "Northwind IT Solutions"),
                (25 * mn, "reply", "We'll swap the HDMI cable first; if that does not help, "
                 "Northwind will check the display."),
                (25 * mn, "status", TicketStatus.IN_PROGRESS),
            ],
        )  # fmt: skip
        self.issue(
            "bins", site=b, reporter=bx[13], category="cleaning", priority=F.LOW,
            place=(self.floor(b, 3), None, "Kitchen"),
            description="The recycling bins in the floor 3 kitchen were not emptied "
            "yesterday evening and are overflowing.",
            ago=20 * mn,
        )  # fmt: skip
        self.issue(
            "lights", site=b, reporter=bx[14], category="electrical", priority=F.NORMAL,
            place=(self.floor(b, 1), None, "Corridor by the lifts"),
            description="Two ceiling lights in the corridor by the lifts flicker and buzz.",
            ago=d,
            steps=[
                (hr, "assign", None),
                (hr, "reply", "Noted — the caretaker will replace the tubes this week."),
                (hr, "status", TicketStatus.IN_PROGRESS),
            ],
        )  # fmt: skip
        self.issue(
            "wobbly-desk", site=ny, reporter=nx[7], category="furniture", priority=F.LOW,
            place=(self.floor(ny, 12), self.desk(ny, "12.08"), ""),
            description="Desk 12.08 wobbles when you type; one leg seems shorter.",
            ago=2 * hr,
        )  # fmt: skip
        # Open: paused, waiting on the reporter
        self.issue(
            "too-warm", site=b, reporter=c.lena, category="temperature", priority=F.NORMAL,
            place=(self.floor(b, 1), self.room(b, "Elbe"), ""),
            description="Elbe gets very warm in the afternoons, over 26 °C with six people.",
            ago=2 * d,
            steps=[
                (hr, "assign", None),
                (hr, "status", TicketStatus.IN_PROGRESS),
                (-3 * hr, "reply", "Could you tell us on which days it happens, and what the "
                 "thermostat by the door shows then? Then we can ask the building to adjust "
                 "the schedule."),
                (-3 * hr, "status", TicketStatus.WAITING),
            ],
        )  # fmt: skip
        self.issue(
            "phone", site=ny, reporter=nx[8], category="it_av", priority=F.NORMAL,
            place=(self.floor(ny, 10), self.room(ny, "Bronx"), ""),
            description="The conference phone in Bronx has no dial tone.",
            ago=d + 2 * hr,
            steps=[
                (hr, "assign", None),
                (hr, "reply", "Is the phone's display on at all? A photo of it would help."),
                (hr, "status", TicketStatus.WAITING),
            ],
        )  # fmt: skip
        # Closed: met and missed, and one withdrawn
        self.issue(
            "towels", site=b, reporter=c.lena, category="cleaning", priority=F.NORMAL,
            place=(self.floor(b, 1), None, "Washroom"),
            description="No paper towels left in the floor 1 washroom.",
            ago=5 * d,
            steps=[
                (20 * mn, "reply", "Refilled — thanks for telling us!"),
                (50 * mn, "status", TicketStatus.RESOLVED),
                (d, "status", TicketStatus.CLOSED),
            ],
        )  # fmt: skip
        self.issue(
            "projector", site=b, reporter=bx[15], category="it_av", priority=F.HIGH,
            place=(self.floor(b, 1), self.room(b, "Oder"), ""),
            description="The projector in Oder does not turn on; the standby light blinks red.",
            ago=12 * d,
            steps=[
                (30 * mn, "assign", "Northwind IT Solutions"),
                (30 * mn, "reply", "Northwind is sending a replacement lamp today."),
                (30 * mn, "status", TicketStatus.IN_PROGRESS),
                (3 * hr, "status", (TicketStatus.RESOLVED, "New lamp fitted, tested with HDMI")),
                (2 * d, "status", TicketStatus.CLOSED),
            ],
        )  # fmt: skip
        self.issue(
            "ceiling", site=b, reporter=bx[16], category="plumbing", priority=F.HIGH,
            place=(self.floor(b, 2), self.desk(b, "2.30"), ""),
            description="Water drips from a ceiling tile above desk 2.30; there is a brown "
            "stain on the tile.",
            ago=15 * d, photo="ceiling",
            steps=[
                (hr, "assign", "Brightline Building Services"),
                (hr, "reply", "Bucket is in place and the desk is blocked; Brightline is "
                 "looking for the leak upstairs."),
                (hr, "status", TicketStatus.IN_PROGRESS),
                (4 * d, "note", "Leak is in the floor 3 kitchen drain; Brightline needs the "
                 "landlord's permission to open the wall."),
                (9 * d, "status", (TicketStatus.RESOLVED, "Drain pipe replaced, tile swapped")),
                (10 * d, "status", TicketStatus.CLOSED),
            ],
        )  # fmt: skip
        self.issue(
            "heating-noise", site=ny, reporter=nx[9], category="temperature", priority=F.NORMAL,
            place=(self.floor(ny, 10), self.room(ny, "Chelsea"), ""),
            description="The heating in Chelsea makes a loud knocking noise every few minutes.",
            ago=20 * d,
            steps=[
                (2 * hr, "assign", "Brightline Building Services"),
                (2 * hr, "reply", "We have asked the building engineer to bleed the system."),
                (2 * hr, "status", TicketStatus.IN_PROGRESS),
                (10 * d, "status", (TicketStatus.RESOLVED, "System bled; no knocking since")),
            ],
        )  # fmt: skip
        self.issue(
            "squeak", site=b, reporter=bx[17], category="furniture", priority=F.LOW,
            place=(self.floor(b, 2), self.desk(b, "2.14"), ""),
            description="The chair at desk 2.14 squeaks loudly.",
            ago=4 * d,
            steps=[(2 * hr, "cancel", None)],
        )  # fmt: skip

    # -- requests ------------------------------------------------------------------------------
    def request(
        self,
        key: str,
        *,
        site: Site,
        requester: User,
        lines: list[tuple[str, int]],
        ago: timedelta,
        delivery: str,
        where: tuple[Floor | None, Resource | None, str] = (None, None, ""),
        note: str = "",
        needed_in_days: int | None = None,
        steps: list[Step] = (),  # type: ignore[assignment]
    ) -> Ticket | None:
        if KEY + "request:" + key in self.done:
            return None
        created = _office_hours(site, self.now - ago, self.now)
        items = [self.items[item_key] for item_key, _ in lines]
        # Titled as requests.py titles a request: "Monitor ×1, Keyboard ×2".
        title = ", ".join(f"{i.name} ×{q}" for i, (_, q) in zip(items, lines, strict=True))
        floor, resource, place_note = where
        ticket = tickets.open_ticket(
            self.s,
            self.actor,
            kind=TicketKind.REQUEST,
            site=site,
            requester=requester,
            title=title,
            category=items[0].category,
            description=note,
            now=created,
            delivery=delivery,
            floor_id=floor.id if floor else (resource.floor_id if resource else None),
            resource_id=resource.id if resource else None,
            place_note=place_note,
            needed_by=(created + timedelta(days=needed_in_days)).date() if needed_in_days else None,
            total_cents=sum(i.price_cents * q for i, (_, q) in zip(items, lines, strict=True)),
            submission_key=KEY + "request:" + key,
        )
        for item, (_, quantity) in zip(items, lines, strict=True):
            ticket.lines.append(
                RequestLine(item_id=item.id, quantity=quantity, unit_price_cents=item.price_cents)
            )
        self.s.flush()
        self.play(ticket, site, steps)
        return ticket

    def line(self, index: int, status: str, reason: str = "", **extra: object) -> Callable:
        """A step deciding or moving one request line (and the stock it holds)."""

        def apply(ticket: Ticket, at: datetime) -> None:
            line = ticket.lines[index]
            level = self.s.scalar(
                select(StockLevel).where(
                    StockLevel.item_id == line.item_id, StockLevel.site_id == ticket.site_id
                )
            )
            # As requests.py keeps stock: approved consumables are set aside on the shelf;
            # tracked items are not (an asset in stock is picked at hand-over).
            holds = (LineStatus.APPROVED, LineStatus.READY)
            if level is not None and not line.item.tracked:
                if status in holds and line.status not in holds:
                    level.reserved += line.quantity
                if status == LineStatus.FULFILLED and line.status in holds:
                    # The shelves are counted as of today (deliveries already taken off), so
                    # handing over only ends the promise.
                    level.reserved -= line.quantity
            coordinator = self.cast.coordinator(ticket.site)
            what = f"{line.item.name} ×{line.quantity}"
            text = {
                LineStatus.APPROVED: f"Approved: {what}"
                + (
                    " (an asset is handed over on delivery)"
                    if line.item.tracked
                    else ", set aside from stock"
                ),
                LineStatus.DECLINED: f"Declined: {what} — {reason}",
                LineStatus.BACKORDERED: f"Approved: {what}. Only {level.available if level else 0}"
                " left in stock: it goes onto the next purchase order",
                LineStatus.ORDERED: f"Ordered: {what}" + (f" on {reason}" if reason else ""),
            }.get(status)
            if status == LineStatus.DECLINED:
                line.decline_reason = reason
            if status in (LineStatus.APPROVED, LineStatus.DECLINED, LineStatus.BACKORDERED):
                line.decided_at = at
            if status == LineStatus.FULFILLED:
                line.fulfilled_at = at
            for name, value in extra.items():
                setattr(line, name, value)
            line.status = status
            if text:  # readiness and hand-over show as the request's status changes
                tickets.record(self.s, ticket, coordinator, text, now=at)
            tickets.mark_responded(ticket, at)

        return apply

    def requests(self) -> None:
        c, b, ny = self.cast, self.cast.berlin, self.cast.new_york
        bx, nx = c.berliners, c.new_yorkers
        d, hr = timedelta(days=1), timedelta(hours=1)
        A, L = TicketStatus, LineStatus
        self._received_order()
        reception = (self.floor(b, 1), None, "Reception, floor 1")
        lena_desk = (None, self.desk(b, "2.12"), "")
        # Lena's: waiting for approval, partly approved, ready, delivered
        self.request(
            "lena-chair", site=b, requester=c.lena, lines=[("chair", 1)], ago=hr * 5,
            delivery="desk", where=lena_desk, needed_in_days=14,
            note="My chair's gas lift is broken: it sinks slowly during the day.",
        )  # fmt: skip
        self.request(
            "lena-desk-setup", site=b, requester=c.lena,
            lines=[("converter", 1), ("monitor_arm", 1), ("keyboard", 1)], ago=3 * d,
            delivery="desk", where=lena_desk,
            note="Setting up my desk to stand for part of the day.",
            steps=[
                (2 * hr, "line", self.line(1, L.APPROVED)),
                (2 * hr, "line", self.line(2, L.APPROVED)),
                (2 * hr, "line", self.line(0, L.DECLINED, "Floor 2 has standing desks you can "
                                           "book; converters are for medical needs — talk "
                                           "to People if that applies.")),
                (2 * hr, "status", A.APPROVED),
                (3 * hr, "comment", "Thanks! Fine for me, I'll book the standing desks."),
            ],
        )  # fmt: skip
        self.request(
            "lena-headset", site=b, requester=c.lena, lines=[("headset", 1)], ago=2 * d,
            delivery="pickup", where=reception,
            steps=[
                (hr, "line", self.line(0, L.APPROVED)),
                (hr, "status", A.APPROVED),
                (d, "line", self.line(0, L.READY)),
                (d, "status", (A.READY, "At reception, floor 1: ask for Jonas")),
            ],
        )  # fmt: skip
        monitor = self.assets["BER-MON-0008"]
        self.request(
            "lena-monitor", site=b, requester=c.lena, lines=[("monitor", 1), ("adapter", 1)],
            ago=9 * d, delivery="desk", where=lena_desk,
            note="My 24-inch screen has a dead stripe down the middle.",
            steps=[
                (3 * hr, "reply", "Sorry about the screen — a new 27-inch is on its way."),
                (3 * hr, "line", self.line(0, L.APPROVED)),
                (3 * hr, "line", self.line(1, L.APPROVED)),
                (3 * hr, "status", A.APPROVED),
                (-d, "line", self.line(0, L.FULFILLED, asset_id=monitor.id)),
                (-d, "line", self.line(1, L.FULFILLED)),
                (-d, "status", (A.DELIVERED, "Set up at desk 2.12 (asset BER-MON-0008)")),
            ],
        )  # fmt: skip
        # Colleagues': backordered, ordered on a purchase order, cancelled, declined, approved
        self.request(
            "chair-backorder", site=b, requester=bx[18], lines=[("chair", 1)], ago=4 * d,
            delivery="desk", where=(None, self.desk(b, "3.21"), ""),
            note="Back pain; my doctor recommends a chair with lumbar support.",
            steps=[
                (hr, "line", self.line(0, L.BACKORDERED)),
                (hr, "status", (A.APPROVED, "Approved; we are out of chairs, so it is ordered "
                                "(about two weeks)")),
            ],
        )  # fmt: skip
        order = self._open_order()
        self.request(
            "docks", site=b, requester=bx[19], lines=[("dock", 2)], ago=5 * d,
            delivery="floor", where=(self.floor(b, 3), None, "Team area by the windows"),
            note="For the two new hot desks in the data team's area.",
            steps=[
                (hr, "line", self.line(0, L.BACKORDERED)),
                (hr, "status", A.APPROVED),
                (2 * d, "line", self.line(0, L.ORDERED, order.number if order else "",
                                          purchase_order_id=order.id if order else None)),
                (2 * d, "status", A.ORDERED),
            ],
        )  # fmt: skip
        self.request(
            "paper", site=b, requester=bx[20], lines=[("paper", 2), ("pens", 1)], ago=6 * d,
            delivery="floor", where=(self.floor(b, 2), None, "Printer corner"),
            steps=[(hr, "cancel", None)],
        )  # fmt: skip
        self.request(
            "whiteboard", site=b, requester=bx[21], lines=[("whiteboard", 1)], ago=7 * d,
            delivery="floor", where=(self.floor(b, 3), None, "Project corner"),
            steps=[
                (4 * hr, "line", self.line(0, L.DECLINED, "The project corner already has a "
                                           "wall whiteboard; borrow the mobile one from "
                                           "reception when you need a second.")),
                (4 * hr, "status", A.DECLINED),
            ],
        )  # fmt: skip
        self.request(
            "welcome", site=b, requester=bx[22], lines=[("kit", 3), ("hoodie", 3)], ago=d,
            delivery="pickup", where=reception, needed_in_days=6,
            note="Three new joiners in Design start on Monday.",
            steps=[
                (hr, "line", self.line(0, L.APPROVED)),
                (hr, "line", self.line(1, L.APPROVED)),
                (hr, "status", A.APPROVED),
            ],
        )  # fmt: skip
        self.request(
            "ny-laptop", site=ny, requester=nx[10], lines=[("laptop", 1), ("mouse", 1)],
            ago=6 * hr, delivery="desk", where=(None, self.desk(ny, "11.04"), ""),
            note="New joiner starting next week (Sam Ortiz, Sales).",
        )  # fmt: skip
        ny_monitor = self.assets["NY-MON-0001"]
        self.request(
            "ny-monitor", site=ny, requester=nx[1], lines=[("monitor", 1)], ago=95 * d,
            delivery="desk", where=(None, self.desk(ny, "10.17"), ""),
            steps=[
                (2 * hr, "line", self.line(0, L.APPROVED)),
                (2 * hr, "status", A.APPROVED),
                (4 * d, "line", self.line(0, L.FULFILLED, asset_id=ny_monitor.id)),
                (4 * d, "status", A.DELIVERED),
                (6 * d, "status", A.CLOSED),
            ],
        )  # fmt: skip

    # -- purchase orders -------------------------------------------------------------------------
    def _number(self, when: datetime) -> str:
        prefix = f"PO-{when.year}-"
        last = self.s.scalar(
            select(func.max(PurchaseOrder.number)).where(PurchaseOrder.number.like(prefix + "%"))
        )
        return f"{prefix}{int(last[len(prefix) :]) + 1 if last else 1:04d}"

    def _open_order(self) -> PurchaseOrder | None:
        """Docking stations from the IT reseller: two for a request, two to restock."""
        if KEY + "request:docks" in self.done:
            return None
        created = self.now - timedelta(days=3)
        order = PurchaseOrder(
            number=self._number(created),
            vendor_id=self.vendors["Northwind IT Solutions"].id,
            site_id=self.cast.berlin.id,
            status="open",
            created_by_id=self.cast.jonas.id,
            created_at=created,
        )
        dock = self.items["dock"]
        order.lines.append(PurchaseOrderLine(item_id=dock.id, quantity=4, unit_price_cents=16500))
        self.s.add(order)
        self.s.flush()
        return order

    def _received_order(self) -> None:
        """The monitors now in stock (and Lena's new one) came on this order five weeks ago."""
        vendor = self.vendors["Northwind IT Solutions"]
        received = self.s.scalar(
            select(PurchaseOrder.id).where(
                PurchaseOrder.vendor_id == vendor.id, PurchaseOrder.status == "received"
            )
        )
        if received is not None:
            return
        created = self.now - timedelta(days=40)
        order = PurchaseOrder(
            number=self._number(created),
            vendor_id=vendor.id,
            site_id=self.cast.berlin.id,
            status="received",
            created_by_id=self.cast.jonas.id,
            created_at=created,
            received_at=self.now - timedelta(days=33),
        )
        for key, quantity, price in (("monitor", 4, 31900), ("webcam", 6, 6900)):
            order.lines.append(
                PurchaseOrderLine(
                    item_id=self.items[key].id,
                    quantity=quantity,
                    received_quantity=quantity,
                    unit_price_cents=price,
                )
            )
        self.s.add(order)
        self.s.flush()


# ---------------------------------------------------------------------------------------------
# Pictures: flat product illustrations for the catalog and two "photos" for issues

W, H2 = 1200, 900  # drawn at twice the stored size, then halved (smooth edges)
INK = (44, 55, 72)
INK_SOFT = (84, 98, 120)
PAPER = (255, 255, 255)
STEEL = (176, 186, 200)
PALETTES = {  # background, accent
    "office_supplies": ((252, 240, 221), (232, 140, 48)),
    "it_peripherals": ((223, 234, 250), (58, 108, 204)),
    "furniture": ((226, 242, 232), (52, 140, 98)),
    "equipment": ((238, 231, 249), (122, 86, 196)),
    "welcome_kits": ((252, 230, 236), (210, 72, 108)),
}


def _rr(d, box, r, fill, outline=None, width=0):
    d.rounded_rectangle(box, radius=r, fill=fill, outline=outline, width=width)


def _monitor(d, a):
    _rr(d, (300, 170, 900, 560), 28, INK)
    _rr(d, (326, 196, 874, 520), 10, a)
    d.polygon([(326, 196), (600, 196), (420, 520), (326, 520)], fill=_mix(a, PAPER, 0.18))
    d.rectangle((570, 560, 630, 660), fill=INK_SOFT)
    _rr(d, (450, 650, 750, 690), 18, INK)


def _laptop(d, a):
    _rr(d, (360, 200, 840, 540), 26, INK)
    _rr(d, (384, 224, 816, 516), 8, a)
    d.polygon([(384, 224), (560, 224), (450, 516), (384, 516)], fill=_mix(a, PAPER, 0.18))
    d.polygon([(300, 556), (900, 556), (960, 640), (240, 640)], fill=STEEL)
    _rr(d, (240, 630, 960, 660), 14, INK_SOFT)
    _rr(d, (540, 566, 660, 590), 10, _mix(STEEL, INK, 0.25))


def _keyboard(d, a):
    _rr(d, (220, 330, 980, 600), 34, INK)
    for row in range(3):
        for col in range(12):
            x = 262 + col * 58
            y = 366 + row * 60
            _rr(d, (x, y, x + 46, y + 46), 9, PAPER if (row + col) % 7 else a)
    _rr(d, (400, 546, 800, 584), 10, PAPER)


def _mouse(d, a):
    d.ellipse((470, 210, 730, 700), fill=INK)
    d.line((600, 214, 600, 420), fill=INK_SOFT, width=10)
    d.line((476, 420, 724, 420), fill=INK_SOFT, width=8)
    _rr(d, (584, 270, 616, 350), 14, a)


def _dock(d, a):
    _rr(d, (300, 400, 900, 580), 30, INK)
    for x in (360, 430, 500):
        _rr(d, (x, 470, x + 48, 500), 6, STEEL)
    _rr(d, (600, 462, 700, 508), 8, STEEL)
    d.ellipse((800, 474, 830, 504), fill=a)
    d.line([(600, 400), (600, 330), (680, 260), (820, 240)], fill=INK_SOFT, width=18, joint="curve")


def _headset(d, a):
    d.arc((340, 170, 860, 700), 180, 360, fill=INK, width=46)
    _rr(d, (300, 420, 420, 620), 40, a)
    _rr(d, (780, 420, 900, 620), 40, a)
    _rr(d, (330, 440, 390, 600), 24, _mix(a, INK, 0.3))
    _rr(d, (810, 440, 870, 600), 24, _mix(a, INK, 0.3))
    d.line([(360, 620), (380, 680), (520, 700)], fill=INK, width=16, joint="curve")
    d.ellipse((504, 684, 544, 724), fill=INK)


def _webcam(d, a):
    d.ellipse((440, 190, 760, 510), fill=INK)
    d.ellipse((510, 260, 690, 440), fill=a)
    d.ellipse((560, 310, 640, 390), fill=INK)
    d.ellipse((576, 322, 604, 350), fill=PAPER)
    d.polygon([(560, 500), (640, 500), (700, 640), (500, 640)], fill=INK_SOFT)
    _rr(d, (440, 630, 760, 670), 16, INK)


def _adapter(d, a):
    _rr(d, (300, 380, 560, 520), 36, INK)
    _rr(d, (560, 420, 620, 480), 8, STEEL)
    d.line([(300, 450), (220, 450), (200, 360), (260, 260)], fill=INK, width=20, joint="curve")
    _rr(d, (640, 400, 900, 500), 24, a)
    _rr(d, (900, 420, 960, 480), 6, STEEL)


def _chair(d, a):
    _rr(d, (420, 130, 780, 440), 70, a)
    _rr(d, (446, 156, 754, 414), 56, _mix(a, PAPER, 0.15))
    d.rectangle((585, 430, 615, 470), fill=INK)
    _rr(d, (380, 460, 820, 540), 36, a)
    d.rectangle((584, 540, 616, 660), fill=INK_SOFT)
    for dx, dy in ((-200, 40), (200, 40), (-110, 70), (110, 70), (0, 80)):
        d.line((600, 660, 600 + dx, 660 + dy), fill=INK, width=22)
        d.ellipse((600 + dx - 22, 660 + dy - 4, 600 + dx + 22, 660 + dy + 40), fill=INK)


def _footrest(d, a):
    d.polygon([(300, 520), (880, 420), (900, 470), (320, 580)], fill=a)
    for x in range(360, 860, 70):
        y = 520 - (x - 300) * 100 / 580
        d.line((x, y + 10, x + 30, y + 5), fill=_mix(a, PAPER, 0.4), width=10)
    d.line((440, 540, 400, 680), fill=INK, width=24)
    d.line((760, 480, 800, 680), fill=INK, width=24)
    _rr(d, (330, 670, 870, 700), 14, INK)


def _monitor_arm(d, a):
    _rr(d, (250, 640, 950, 680), 10, _mix(STEEL, PAPER, 0.3))  # the desk edge
    _rr(d, (300, 600, 380, 720), 12, INK)
    d.line([(340, 600), (340, 430), (560, 330), (760, 360)], fill=INK_SOFT, width=34, joint="curve")
    for x, y in ((340, 430), (560, 330)):
        d.ellipse((x - 30, y - 30, x + 30, y + 30), fill=a)
    _rr(d, (750, 200, 800, 520), 14, INK)
    _rr(d, (800, 180, 860, 540), 10, INK)


def _converter(d, a):
    _rr(d, (300, 250, 900, 300), 16, a)
    _rr(d, (360, 380, 840, 420), 14, _mix(a, PAPER, 0.35))
    d.line((380, 300, 820, 640), fill=INK, width=24)
    d.line((820, 300, 380, 640), fill=INK, width=24)
    _rr(d, (300, 630, 900, 670), 16, INK)
    _rr(d, (480, 200, 720, 250), 10, INK_SOFT)


def _lamp(d, a):
    d.polygon([(560, 330), (760, 380), (720, 700), (360, 700)], fill=_mix(a, PAPER, 0.72))
    _rr(d, (340, 660, 560, 700), 18, INK)
    d.line([(450, 670), (380, 440), (600, 250)], fill=INK, width=22, joint="curve")
    d.ellipse((356, 416, 404, 464), fill=a)
    d.polygon([(560, 200), (760, 300), (700, 390), (520, 270)], fill=a)
    d.ellipse((640, 340, 700, 390), fill=(255, 232, 150))


def _whiteboard(d, a):
    _rr(d, (280, 150, 920, 560), 16, STEEL)
    _rr(d, (300, 170, 900, 540), 8, PAPER)
    d.line([(360, 260), (430, 230), (500, 270), (580, 220)], fill=a, width=12, joint="curve")
    d.line([(360, 340), (620, 340)], fill=INK_SOFT, width=10)
    d.line([(360, 400), (540, 400)], fill=INK_SOFT, width=10)
    d.ellipse((660, 300, 820, 460), outline=a, width=12)
    d.line((380, 560, 330, 700), fill=INK, width=18)
    d.line((820, 560, 870, 700), fill=INK, width=18)
    for x in (330, 870):
        d.ellipse((x - 24, 690, x + 24, 738), fill=INK)


def _label_printer(d, a):
    _rr(d, (340, 330, 860, 640), 44, INK)
    _rr(d, (400, 380, 800, 430), 10, INK_SOFT)
    _rr(d, (450, 180, 750, 400), 10, PAPER)
    for y in (230, 280, 330):
        _rr(d, (490, y, 710 - (y - 230), y + 22), 8, a if y == 230 else STEEL)
    d.ellipse((760, 560, 800, 600), fill=a)


def _extension(d, a):
    _rr(d, (240, 430, 880, 560), 50, PAPER, outline=STEEL, width=6)
    for x in range(300, 800, 110):
        d.ellipse((x, 450, x + 90, 540), fill=_mix(STEEL, PAPER, 0.4))
        d.ellipse((x + 24, 486, x + 38, 500), fill=INK)
        d.ellipse((x + 52, 486, x + 66, 500), fill=INK)
    d.ellipse((820, 470, 860, 510), fill=a)
    d.line([(880, 500), (960, 500), (980, 620), (880, 680)], fill=INK, width=18, joint="curve")


def _first_aid(d, a):
    _rr(d, (480, 190, 720, 290), 30, None, outline=INK, width=26)
    _rr(d, (300, 250, 900, 660), 46, a)
    _rr(d, (550, 330, 650, 590), 14, PAPER)
    _rr(d, (470, 410, 730, 510), 14, PAPER)


def _paper(d, a):
    _rr(d, (300, 400, 900, 680), 18, _mix(a, PAPER, 0.25))
    d.rectangle((300, 470, 900, 500), fill=_mix(a, INK, 0.2))
    for i, y in enumerate((330, 270, 210)):
        d.polygon(
            [
                (350 + i * 10, y),
                (850 - i * 6, y - 14),
                (870 - i * 6, y + 60),
                (330 + i * 10, y + 74),
            ],
            fill=PAPER,
            outline=STEEL,
        )


def _pens(d, a):
    colours = [a, INK, (58, 108, 204), (210, 72, 108)]
    for i, colour in enumerate(colours):
        x = 380 + i * 120
        _rr(d, (x, 200, x + 64, 600), 22, colour)
        d.polygon([(x + 6, 600), (x + 58, 600), (x + 32, 690)], fill=_mix(STEEL, PAPER, 0.4))
        d.polygon([(x + 24, 664), (x + 40, 664), (x + 32, 690)], fill=INK)
        _rr(d, (x + 40, 220, x + 54, 380), 6, STEEL)


def _sticky(d, a):
    for i, colour in enumerate([(255, 214, 102), (255, 170, 140), _mix(a, PAPER, 0.3)]):
        x, y = 360 + i * 70, 160 + i * 70
        d.rectangle((x, y, x + 400, y + 400), fill=colour)
    d.polygon([(720, 620), (800, 620), (800, 540)], fill=_mix(a, INK, 0.2))
    d.line((540, 420, 720, 420), fill=INK_SOFT, width=10)
    d.line((540, 480, 680, 480), fill=INK_SOFT, width=10)


def _notebook(d, a):
    _rr(d, (360, 150, 840, 740), 24, a)
    _rr(d, (420, 150, 840, 740), 24, _mix(a, PAPER, 0.1))
    for y in range(190, 720, 60):
        d.ellipse((340, y, 390, y + 30), outline=INK, width=8)
    _rr(d, (500, 260, 780, 330), 10, PAPER)
    _rr(d, (770, 150, 800, 560), 4, _mix(a, INK, 0.35))


def _markers(d, a):
    colours = [(214, 64, 64), (58, 108, 204), (52, 140, 98), INK]
    for i, colour in enumerate(colours):
        x = 370 + i * 120
        _rr(d, (x, 280, x + 84, 660), 20, PAPER, outline=STEEL, width=6)
        _rr(d, (x, 200, x + 84, 330), 22, colour)
        _rr(d, (x, 580, x + 84, 620), 4, colour)


def _stapler(d, a):
    _rr(d, (280, 600, 920, 660), 24, INK)
    d.polygon([(300, 600), (860, 470), (920, 520), (920, 600)], fill=INK_SOFT)
    d.polygon([(290, 560), (850, 420), (930, 470), (930, 520), (300, 610)], fill=a)
    d.ellipse((260, 540, 340, 620), fill=INK)


def _organiser(d, a):
    for x, h, colour in ((430, 430, a), (500, 470, INK), (560, 410, (58, 108, 204))):
        d.line((x + 60, 620, x + 20, 620 - h), fill=colour, width=20)
    _rr(d, (400, 380, 660, 700), 30, INK)
    _rr(d, (660, 520, 880, 700), 26, _mix(a, INK, 0.15))
    _rr(d, (690, 480, 850, 540), 6, PAPER)


def _kit(d, a):
    _rr(d, (320, 360, 880, 700), 20, a)
    _rr(d, (290, 300, 910, 390), 16, _mix(a, INK, 0.12))
    d.rectangle((570, 300, 630, 700), fill=PAPER)
    d.ellipse((470, 200, 600, 310), outline=PAPER, width=26)
    d.ellipse((600, 200, 730, 310), outline=PAPER, width=26)


def _hoodie(d, a):
    d.polygon(
        [
            (480, 180),
            (720, 180),
            (900, 300),
            (960, 560),
            (860, 580),
            (820, 420),
            (820, 720),
            (380, 720),
            (380, 420),
            (340, 580),
            (240, 560),
            (300, 300),
        ],
        fill=a,
    )
    d.ellipse((500, 150, 700, 330), fill=_mix(a, INK, 0.3))
    d.ellipse((540, 170, 660, 300), fill=_mix(a, INK, 0.5))
    _rr(d, (480, 520, 720, 640), 24, _mix(a, INK, 0.15))
    d.line((575, 300, 565, 420), fill=PAPER, width=8)
    d.line((625, 300, 635, 420), fill=PAPER, width=8)


def _bottle(d, a):
    _rr(d, (490, 160, 710, 250), 24, INK)
    _rr(d, (520, 240, 680, 290), 10, INK_SOFT)
    _rr(d, (460, 280, 740, 730), 70, a)
    _rr(d, (500, 400, 560, 640), 28, _mix(a, PAPER, 0.35))
    _rr(d, (460, 450, 740, 520), 4, _mix(a, INK, 0.2))


def _projector(d, a):
    _rr(d, (280, 360, 920, 620), 50, INK)
    d.ellipse((320, 400, 520, 600), fill=INK_SOFT)
    d.ellipse((360, 440, 480, 560), fill=a)
    d.ellipse((400, 480, 440, 520), fill=PAPER)
    for x in range(600, 860, 40):
        d.line((x, 440, x, 540), fill=INK_SOFT, width=14)
    d.polygon([(330, 360), (200, 180), (560, 180), (470, 360)], fill=_mix(a, PAPER, 0.75))


def _mix(c1, c2, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(c1, c2, strict=True))


ICONS = {
    "monitor": _monitor, "laptop": _laptop, "keyboard": _keyboard, "mouse": _mouse,
    "dock": _dock, "headset": _headset, "webcam": _webcam, "adapter": _adapter,
    "chair": _chair, "footrest": _footrest, "monitor_arm": _monitor_arm,
    "converter": _converter, "lamp": _lamp, "whiteboard": _whiteboard,
    "label_printer": _label_printer, "extension": _extension, "first_aid": _first_aid,
    "paper": _paper, "pens": _pens, "sticky": _sticky, "notebook": _notebook,
    "markers": _markers, "stapler": _stapler, "organiser": _organiser, "kit": _kit,
    "hoodie": _hoodie, "bottle": _bottle, "projector": _projector,
}  # fmt: skip


def illustration(icon: str, category: str) -> bytes:
    """A flat product illustration: the object on a soft coloured stage, 600 x 450 JPEG."""
    background, accent = PALETTES[category]
    image = _stage(background).copy()
    ICONS[icon](ImageDraw.Draw(image), accent)
    buffer = io.BytesIO()
    image.reduce(2).save(buffer, "JPEG", quality=86)
    return buffer.getvalue()


_STAGES: dict[tuple[int, int, int], Image.Image] = {}


def _stage(background: tuple[int, int, int]) -> Image.Image:
    """The soft backdrop (a lighter disc and a blurred floor shadow), drawn once per colour."""
    if background not in _STAGES:
        image = Image.new("RGB", (W, H2), background)
        stage = Image.new("L", (W, H2), 0)
        ImageDraw.Draw(stage).ellipse((230, 90, 970, 830), fill=255)
        image.paste(_mix(background, PAPER, 0.45), mask=stage)
        shadow = Image.new("L", (W // 4, H2 // 4), 0)
        ImageDraw.Draw(shadow).ellipse((75, 175, 225, 195), fill=70)
        shadow = shadow.filter(ImageFilter.GaussianBlur(4)).resize((W, H2))
        image.paste(_mix(background, INK, 0.35), mask=shadow)
        _STAGES[background] = image
    return _STAGES[background]


def _photo_of(subject: str) -> CheckedImage:
    """A plain snapshot-like picture of the problem, as a phone would send it."""
    image = Image.new("RGB", (800, 600), (226, 219, 204))
    d = ImageDraw.Draw(image)
    if subject == "radiator":
        for y in range(0, 600, 4):  # a wall lit from the window
            shade = 236 - y // 12
            d.rectangle((0, y, 800, y + 4), fill=(shade, shade - 6, shade - 20))
        d.rectangle((0, 500, 800, 600), fill=(120, 96, 74))
        d.rectangle((180, 30, 620, 250), fill=(250, 250, 250))
        d.rectangle((200, 50, 600, 230), fill=(186, 214, 236))
        d.line((400, 50, 400, 230), fill=(250, 250, 250), width=10)
        d.rectangle((140, 300, 660, 470), fill=(244, 244, 240), outline=(200, 200, 196))
        for x in range(160, 650, 26):
            d.line((x, 310, x, 460), fill=(214, 214, 208), width=6)
        d.rectangle((660, 420, 700, 440), fill=(210, 210, 205))
        d.ellipse((690, 395, 750, 465), fill=(238, 238, 234), outline=(180, 180, 176), width=3)
    else:  # a stained ceiling tile
        image.paste((236, 236, 232), (0, 0, 800, 600))
        for x in range(0, 801, 200):
            d.line((x, 0, x, 600), fill=(190, 190, 186), width=8)
        for y in range(0, 601, 200):
            d.line((0, y, 800, y), fill=(190, 190, 186), width=8)
        stain = Image.new("L", (800, 600), 0)
        ImageDraw.Draw(stain).ellipse((260, 220, 540, 400), fill=170)
        ImageDraw.Draw(stain).ellipse((330, 260, 480, 360), fill=220)
        image.paste((150, 112, 70), mask=stain.filter(ImageFilter.GaussianBlur(22)))
        d.ellipse((392, 420, 412, 446), fill=(170, 196, 214))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=82)
    return CheckedImage(buffer.getvalue(), "image/jpeg", ".jpg", 800, 600)
