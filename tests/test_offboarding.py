"""Offboarding: an administrator deactivates a leaver and, in the same transaction, their future
bookings and equipment loans are cancelled (the history stays), their assigned desk becomes a hot
desk, and a return task lists every asset they hold. The admin sees what was done."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import (
    Asset,
    AssetStatus,
    AuditEvent,
    Booking,
    BookingStatus,
    Desk,
    DeskAssignment,
    Equipment,
    EquipmentLoan,
    OutboxMessage,
    Ticket,
    TicketKind,
    User,
)
from portal.services import assets, bookings, equipment_loans, offboarding
from portal.services.audit import Actor
from tests import factories
from tests import service_desk_factories as sd

ADMIN = "ada@example.com"
LEAVER = "lea@example.com"
SYSTEM = Actor.system("tests")


def browser(app: Flask, email: str) -> Any:
    from tests.conftest import Browser

    app.test_client_class = Browser
    client = app.test_client()
    client.sign_in(email)
    return client


@pytest.fixture
def office(db: Session) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    floor = factories.floor(db, berlin)
    coordinator = factories.user(db, name="Cora Coordinator", coordinator_of=berlin)
    leaver = factories.user(db, name="Lea Leaver", email=LEAVER, home_site=berlin)
    people = {
        "berlin": berlin,
        "floor": floor,
        "coordinator": coordinator,
        "leaver": leaver,
        "admin": factories.user(db, name="Ada Admin", email=ADMIN, admin=True),
        "colleague": factories.user(db, name="Carl Colleague", home_site=berlin),
        "room": factories.room(db, floor, name="Aurora"),
        "hot_desk": factories.desk(db, floor, name="D-07"),
        "own_desk": factories.desk(
            db,
            floor,
            name="D-12",
            assignment=DeskAssignment.ASSIGNED,
            assigned_user_id=leaver.id,
        ),
        "laptop": sd.item(db, "Laptop 14", tracked=True),
        "monitor": sd.item(db, "Monitor 27", tracked=True),
        "projector": Equipment(
            site_id=berlin.id, name="Projector 1", qr_code="off-proj", max_loan_days=5
        ),
    }
    db.add(people["projector"])
    db.commit()
    return people


def asset(db: Session, office: dict[str, Any], item: str, tag: str, serial: str = "") -> Asset:
    new = assets.add_asset(
        db,
        SYSTEM,
        office["coordinator"],
        office["berlin"],
        assets.NewAsset(item_id=office[item].id, asset_tag=tag, serial_number=serial),
        now=utcnow(),
    )
    db.flush()
    return new


def give(db: Session, office: dict[str, Any], item: str, tag: str, serial: str = "") -> Asset:
    new = asset(db, office, item, tag, serial)
    assets.hand_over(db, SYSTEM, new, office["leaver"], by=office["coordinator"], now=utcnow())
    return new


def book(
    db: Session, who: User, resource: Any, days: int, start: int = 9, end: int = 11
) -> Booking:
    day = factories.weekday_ahead(days=days)
    return bookings.book(
        db,
        SYSTEM,
        who,
        resource_id=resource.id,
        start=factories.at(day, start),
        end=factories.at(day, end),
        notify=False,
    )


def test_deactivating_a_leaver_cancels_frees_and_opens_a_return_task(app, db, office):
    leaver = office["leaver"]
    room_booking = book(db, leaver, office["room"], 2)
    desk_booking = book(db, leaver, office["hot_desk"], 3, 8, 17)
    past = Booking(
        resource_id=office["room"].id,
        user_id=leaver.id,
        created_by_id=leaver.id,
        start_at=utcnow() - timedelta(days=3),
        end_at=utcnow() - timedelta(days=3) + timedelta(hours=1),
        blocked_until=utcnow() - timedelta(days=3) + timedelta(hours=1),
        status=BookingStatus.COMPLETED,
    )
    db.add(past)
    colleagues = book(db, office["colleague"], office["room"], 4)
    first = factories.weekday_ahead(days=5)
    loan = equipment_loans.reserve(
        db,
        SYSTEM,
        leaver,
        equipment_id=office["projector"].id,
        first_day=first,
        last_day=first + timedelta(days=1),
        now=utcnow(),
    )
    laptop = give(db, office, "laptop", "IT-0042", "C02XK1")
    assets.accept(db, SYSTEM, laptop, leaver, utcnow())
    monitor = give(db, office, "monitor", "MON-7")
    spare = asset(db, office, "laptop", "IT-0043")
    db.commit()

    ada = browser(app, ADMIN)
    response = ada.submit(f"/admin/people/{leaver.id}/deactivate", {})
    assert response.status_code == 303
    db.expire_all()
    assert leaver.active is False

    # Bookings: the future ones are cancelled (kept, with when), the past one and a colleague's stay.
    for booking in (room_booking, desk_booking):
        assert booking.status == BookingStatus.CANCELLED and booking.cancelled_at is not None
        assert "Lea Leaver has left" in booking.status_reason
    assert past.status == BookingStatus.COMPLETED
    assert colleagues.status == BookingStatus.CONFIRMED
    cancellations = list(
        db.scalars(
            select(OutboxMessage).where(
                OutboxMessage.to_address == LEAVER, OutboxMessage.ics_method == "CANCEL"
            )
        )
    )
    assert (
        len(cancellations) == 2
    )  # the calendar invitations are withdrawn, as bookings.cancel does

    # The loan and its days.
    assert loan.status == "cancelled"
    loan_days = list(db.scalars(select(Booking).where(Booking.loan_id == loan.id)))
    assert len(loan_days) == 2 and all(b.status == BookingStatus.CANCELLED for b in loan_days)

    # The desk.
    desk = db.get(Desk, office["own_desk"].id)
    assert desk.assignment == DeskAssignment.HOT and desk.assigned_user_id is None
    assert db.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "desk.unassigned", AuditEvent.object_id == str(desk.id)
        )
    )

    # The return task lists every asset they hold; those assets are asked back.
    task = db.scalar(select(Ticket).where(Ticket.kind == TicketKind.RETURN))
    assert task is not None
    assert task.title == "Return equipment: Lea Leaver" and task.category == "offboarding"
    assert task.site_id == office["berlin"].id and task.requester_id == leaver.id
    assert "IT-0042 · Laptop 14 · S/N C02XK1" in task.description
    assert "MON-7 · Monitor 27" in task.description and "IT-0043" not in task.description
    for held in (laptop, monitor):
        assert held.status == AssetStatus.RETURN_REQUESTED and held.holder_id == leaver.id
    assert spare.status == AssetStatus.IN_STOCK
    history = assets.history(db, laptop)
    assert history[0].action == "return_requested" and task.number in history[0].note

    # What the admin is told.
    page = ada.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        "2 future bookings cancelled, 1 equipment loan cancelled, desk D-12 freed, "
        f"return task {task.number} opened for 2 assets" in page
    )
    offboarded = db.scalar(select(AuditEvent).where(AuditEvent.action == "user.offboarded"))
    assert offboarded is not None and offboarded.after["return_task"] == task.number

    # Deactivating again does nothing more.
    assert ada.submit(f"/admin/people/{leaver.id}/deactivate", {}).status_code == 303
    assert len(list(db.scalars(select(Ticket).where(Ticket.kind == TicketKind.RETURN)))) == 1


def test_a_leaver_with_nothing_is_simply_deactivated(app, db, office):
    person = factories.user(db, name="Nina Nothing", email="nina@example.com")
    db.commit()
    ada = browser(app, ADMIN)
    response = ada.submit(f"/admin/people/{person.id}/deactivate", {})
    page = ada.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nina Nothing is deactivated and signed out everywhere." in page
    assert "Offboarding:" not in page
    assert db.scalar(select(Ticket)) is None


def test_a_refused_deactivation_offboards_nothing(app, db, office):
    admin = office["admin"]
    booking = book(db, admin, office["room"], 2)
    db.commit()
    ada = browser(app, ADMIN)
    response = ada.submit(f"/admin/people/{admin.id}/deactivate", {})
    assert response.status_code == 303
    assert "You cannot deactivate your own account" in ada.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    db.expire_all()
    assert admin.active and booking.status == BookingStatus.CONFIRMED


def test_only_admins_can_deactivate(app, db, office):
    book(db, office["leaver"], office["room"], 2)
    db.commit()
    colleague = factories.user(db, name="Cole", email="cole@example.com")
    db.commit()
    assert (
        browser(app, "cole@example.com")
        .submit(f"/admin/people/{office['leaver'].id}/deactivate", {})
        .status_code
        == 403
    )
    db.expire_all()
    assert office["leaver"].active
    assert colleague.active


def test_without_a_home_site_the_task_goes_to_the_assets_site(db, office):
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    coordinator = factories.user(db, name="Nate", coordinator_of=new_york)
    roamer = factories.user(db, name="Rita Roamer")
    phone = assets.add_asset(
        db,
        SYSTEM,
        coordinator,
        new_york,
        assets.NewAsset(item_id=office["laptop"].id, asset_tag="NY-1"),
        now=utcnow(),
    )
    assets.hand_over(db, SYSTEM, phone, roamer, by=coordinator, now=utcnow())
    summary = offboarding.offboard(db, SYSTEM, roamer, utcnow())
    assert summary.return_task is not None and summary.return_task.site_id == new_york.id
    assert summary.sentence() == f"return task {summary.return_task.number} opened for 1 asset"
    # Running it again finds nothing left to do.
    again = offboarding.offboard(db, SYSTEM, roamer, utcnow())
    assert again.sentence() == "" and again.return_task is None
    assert db.scalar(select(EquipmentLoan)) is None
