"""The demo's service desk (`make run`): a coordinator opening the inbox sees issues in every SLA
state, the catalog is stocked and pictured, requests sit in every status, and the numbers add up
(stock is never negative; what is reserved is exactly what approved, undelivered lines hold).

The demo company itself (200 people, a week of bookings) is slow to build, so these tests seed the
service desk into a small company with the same sites, people and places."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import (
    Asset,
    AssetEvent,
    AssetStatus,
    CatalogItem,
    EquipmentLoan,
    IssuePhoto,
    LineStatus,
    PurchaseOrder,
    RequestLine,
    SlaPolicy,
    StockLevel,
    Ticket,
    TicketEvent,
    TicketKind,
    User,
    Vendor,
)
from portal.services import notices, sla, tickets
from portal.services.demo_service_desk import (
    AMARA,
    JONAS,
    LENA,
    MAYA,
    seed_service_desk,
)
from tests import factories

SLA_STATES = {"overdue", "soon", "on_track", "paused", "met", "breached"}
HOLDING = (LineStatus.APPROVED, LineStatus.READY)
PLACES = {  # site: {level: (rooms, desks)}
    "berlin": {
        1: (["Spree", "Havel", "Elbe", "Oder"], ["1.01"]),
        2: (["Isar"], ["2.12", "2.14", "2.30"]),
        3: (["Donau"], ["3.07", "3.21"]),
    },
    "new-york": {
        10: (["Bronx", "Chelsea"], ["10.17"]),
        11: (["Dumbo"], ["11.04"]),
        12: (["Noho"], ["12.08"]),
    },
}


def small_company(db: Session) -> None:
    """Berlin and New York with the demo's sign-ins, staff and the places the demo names."""
    berlin = factories.site(db, "berlin", name="Berlin")
    new_york = factories.site(db, "new-york", name="New York", time_zone="America/New_York")
    sites = {"berlin": berlin, "new-york": new_york}
    for slug, floors in PLACES.items():
        for level, (rooms, desks) in floors.items():
            floor = factories.floor(db, sites[slug], level=level)
            for name in rooms:
                factories.room(db, floor, name=name)
            for name in desks:
                factories.desk(db, floor, name=name)
    factories.user(db, email=LENA, name="Lena Fischer", home_site=berlin, password=None)
    factories.user(db, email=JONAS, name="Jonas Weber", home_site=berlin, coordinator_of=berlin)
    factories.user(db, email=MAYA, name="Maya Johnson", home_site=new_york, coordinator_of=new_york)
    factories.user(db, email=AMARA, name="Amara Okafor", home_site=berlin, admin=True)
    for n in range(25):
        factories.user(db, name=f"Berliner {n}", home_site=berlin, password=None)
    for n in range(12):
        factories.user(db, name=f"New Yorker {n}", home_site=new_york, password=None)
    db.flush()


@pytest.fixture
def seeded(db: Session, tmp_path: Path) -> Path:
    small_company(db)
    assert seed_service_desk(db, utcnow(), tmp_path / "uploads") is not None
    db.flush()
    return tmp_path / "uploads"


def counts(db: Session) -> dict[str, int]:
    models = (
        Vendor, SlaPolicy, CatalogItem, StockLevel, Ticket, RequestLine, TicketEvent,
        IssuePhoto, PurchaseOrder, Asset, AssetEvent, EquipmentLoan,
    )  # fmt: skip
    return {m.__name__: db.scalar(select(func.count()).select_from(m)) or 0 for m in models}


def files(uploads: Path) -> list[str]:
    return sorted(str(p.relative_to(uploads)) for p in uploads.rglob("*") if p.is_file())


def test_seeding_twice_adds_nothing_and_keeps_the_numbers(db, seeded):
    before, stored = counts(db), files(seeded)
    stock = {
        (s.item_id, s.site_id): (s.on_hand, s.reserved) for s in db.scalars(select(StockLevel))
    }
    assert seed_service_desk(db, utcnow() + timedelta(minutes=5), seeded) is not None
    db.flush()
    assert counts(db) == before
    assert files(seeded) == stored
    assert {
        (s.item_id, s.site_id): (s.on_hand, s.reserved) for s in db.scalars(select(StockLevel))
    } == stock
    # And what there is, is a service desk: five vendors, a catalog of every category, a few
    # purchase orders, assets and a loan.
    assert before["Vendor"] == 5 and before["CatalogItem"] >= 25
    assert len(set(db.scalars(select(CatalogItem.category)))) == 5
    assert before["PurchaseOrder"] == 2 and before["Asset"] >= 15
    assert before["EquipmentLoan"] == 1 and before["IssuePhoto"] == 2


def test_without_the_demo_company_it_does_nothing(db, tmp_path):
    assert seed_service_desk(db, utcnow(), tmp_path) is None
    assert counts(db)["Ticket"] == 0


def sla_states(db: Session, now: datetime) -> Counter[str]:
    issues = db.scalars(select(Ticket).where(Ticket.kind == TicketKind.ISSUE))
    return Counter(sla.state_of(t, now).state for t in issues)


def test_every_sla_state_is_in_the_inbox(db, seeded):
    now = utcnow()
    states = sla_states(db, now)
    assert set(states) >= SLA_STATES, states
    for state in SLA_STATES:  # the inbox's SQL filter finds the same ones
        found = db.scalar(
            select(func.count(Ticket.id)).where(
                Ticket.kind == TicketKind.ISSUE, sla.filter_clause(state, now)
            )
        )
        assert found == states[state], state


def test_due_soon_shows_even_when_seeded_on_a_sunday_night(db, tmp_path):
    small_company(db)
    sunday_night = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # both sites closed for hours
    seed_service_desk(db, sunday_night, tmp_path)
    assert set(sla_states(db, sunday_night)) >= SLA_STATES


def test_issues_are_at_real_places_with_a_conversation(db, seeded):
    issues = list(db.scalars(select(Ticket).where(Ticket.kind == TicketKind.ISSUE)))
    assert len({t.category for t in issues}) >= 6
    assert all(t.floor_id is not None for t in issues)
    assert sum(t.resource_id is not None for t in issues) >= 8
    assert any(t.vendor_id for t in issues) and any(t.assignee_id for t in issues)
    events = list(db.scalars(select(TicketEvent)))
    assert any(e.internal and e.kind == "note" for e in events)
    assert sum(e.kind == "comment" for e in events) >= 5
    assert any(t.me_too_count >= 2 for t in issues)
    # What was reported days ago was reported on a working day, in office hours.
    for t in issues:
        if t.created_at < utcnow() - timedelta(days=1):
            local = t.created_at.astimezone(ZoneInfo(t.site.time_zone))
            assert local.weekday() < 5 and t.site.opens_at <= local.time() <= t.site.closes_at
    # The coordinator's bell counts only what arrived today, not the demo's backlog.
    jonas = db.scalar(select(User).where(User.email == JONAS))
    unread = notices.unread(db, jonas.id)
    fresh = {
        tickets.ticket_path(t)
        for t in db.scalars(select(Ticket))
        if t.created_at > utcnow() - timedelta(hours=8)
    }
    assert unread and {n.link for n in unread} <= fresh


def test_requests_in_every_status_some_of_them_lenas(db, seeded):
    requests = list(db.scalars(select(Ticket).where(Ticket.kind == TicketKind.REQUEST)))
    assert {t.status for t in requests} >= {
        "submitted", "approved", "ordered", "ready", "delivered", "declined", "cancelled",
    }  # fmt: skip
    lenas = [t for t in requests if t.requester.email == LENA]
    assert len(lenas) >= 4
    partly = [t for t in lenas if {ln.status for ln in t.lines} >= {"approved", "declined"}]
    assert partly and all(ln.decline_reason for ln in partly[0].lines if ln.status == "declined")
    lines = [ln for t in requests for ln in t.lines]
    assert any(ln.status == LineStatus.BACKORDERED for ln in lines)
    assert any(ln.status == LineStatus.ORDERED and ln.purchase_order_id for ln in lines)
    assert all(t.total_cents == sum(ln.quantity * ln.unit_price_cents for ln in t.lines)
               for t in requests)  # fmt: skip


def test_stock_is_never_negative_and_reserved_is_what_approved_lines_hold(db, seeded):
    held: Counter[tuple[int, int]] = Counter()
    for line in db.scalars(select(RequestLine).where(RequestLine.status.in_(HOLDING))):
        if not line.item.tracked:  # tracked items: an asset in stock is picked at hand-over
            held[(line.item_id, line.ticket.site_id)] += line.quantity
    levels = list(db.scalars(select(StockLevel)))
    assert levels and all(0 <= s.reserved <= s.on_hand for s in levels)
    assert {(s.item_id, s.site_id): s.reserved for s in levels if s.reserved} == dict(held)
    assert any(s.on_hand == 0 for s in levels)  # out of stock somewhere
    assert any(0 < s.on_hand - s.reserved <= s.reorder_point for s in levels)  # running low
    # A tracked item's shelf is its tagged assets in stock.
    for level in levels:
        if level.item.tracked:
            in_stock = db.scalar(
                select(func.count(Asset.id)).where(
                    Asset.item_id == level.item_id,
                    Asset.site_id == level.site_id,
                    Asset.status == AssetStatus.IN_STOCK,
                )
            )
            assert level.on_hand == in_stock, level.item.name


def test_catalog_pictures_are_stored_jpegs(db, seeded):
    for item in db.scalars(select(CatalogItem)):
        path = seeded / "catalog" / item.photo_file
        with Image.open(io.BytesIO(path.read_bytes())) as picture:
            assert (picture.format, picture.size) == ("JPEG", (600, 450))


def test_lena_holds_equipment_and_every_asset_has_its_history(db, seeded):
    lena = db.scalar(select(Asset.holder_id).where(Asset.asset_tag == "BER-LAP-0001"))
    held = {a.asset_tag: a.status for a in db.scalars(select(Asset).where(Asset.holder_id == lena))}
    assert held == {"BER-LAP-0001": AssetStatus.ACCEPTED, "BER-MON-0008": AssetStatus.ASSIGNED}
    last_action = {"in_stock": {"received", "returned"}, "assigned": {"assigned"},
                   "accepted": {"accepted"}, "return_requested": {"return_requested"},
                   "lost": {"lost"}, "retired": {"retired"}}  # fmt: skip
    for asset in db.scalars(select(Asset)):
        history = list(
            db.scalars(
                select(AssetEvent).where(AssetEvent.asset_id == asset.id).order_by(AssetEvent.id)
            )
        )
        assert history[0].action == "received"
        assert history[-1].action in last_action[asset.status], asset.asset_tag
    loan = db.scalars(select(EquipmentLoan)).one()
    assert loan.user_id == lena and loan.equipment.name == "Portable projector"
