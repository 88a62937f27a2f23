"""Loanable equipment: a coordinator offers a projector, an employee sees it is free and reserves it
for a few days (one booking per day, so the booking engine's no-double-booking guarantee holds),
a colleague who wants overlapping days is told which days are taken and the nearest free range,
and a loan can be cancelled by its owner or a coordinator. Two people reserving at the same instant
on a real database: exactly one wins."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.db import session_factories, utcnow
from portal.errors import NotFound, RuleViolation, SlotTaken
from portal.models import (
    HOLDING_STATUSES,
    Booking,
    BookingPolicy,
    BookingStatus,
    Equipment,
    EquipmentLoan,
    OutboxMessage,
    User,
)
from portal.services import bookings, equipment_loans
from portal.services.audit import Actor
from portal.timezones import local_day_bounds
from tests import factories

BERLIN = ZoneInfo("Europe/Berlin")
COORDINATOR = "cora@example.com"
BORROWER = "bea@example.com"
OTHER = "otto@example.com"
NY_COORDINATOR = "nate@example.com"


def today() -> date:
    return datetime.now(BERLIN).date()


def iso(day: date) -> str:
    return day.isoformat()


def make_projector(
    session: Session, site: Any, name: str = "Projector 1", **kwargs: Any
) -> Equipment:
    values: dict[str, Any] = {"pickup_point": "Reception", "max_loan_days": 5}
    values.update(kwargs)
    equipment = Equipment(site_id=site.id, name=name, qr_code=f"eq-{name[-6:]}-{site.id}", **values)
    session.add(equipment)
    session.flush()
    return equipment


@pytest.fixture
def office(db: Session) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    people = {
        "berlin": berlin,
        "new_york": new_york,
        "projector": make_projector(db, berlin),
        "coordinator": factories.user(
            db, name="Cora Coordinator", email=COORDINATOR, coordinator_of=berlin
        ),
        "borrower": factories.user(db, name="Bea Borrower", email=BORROWER, home_site=berlin),
        "other": factories.user(db, name="Otto Other", email=OTHER, home_site=berlin),
        "ny_coordinator": factories.user(
            db, name="Nate Coordinator", email=NY_COORDINATOR, coordinator_of=new_york
        ),
    }
    db.commit()
    return people


def browser(app: Flask, email: str) -> Any:
    from tests.conftest import Browser

    app.test_client_class = Browser
    client = app.test_client()
    client.sign_in(email)
    return client


def reserve(db: Session, who: User, equipment: Equipment, first: date, last: date) -> EquipmentLoan:
    loan = equipment_loans.reserve(
        db,
        Actor.system("tests"),
        who,
        equipment_id=equipment.id,
        first_day=first,
        last_day=last,
        now=utcnow(),
    )
    db.commit()
    return loan


def holding(db: Session, equipment: Equipment) -> list[Booking]:
    return list(
        db.scalars(
            select(Booking)
            .where(Booking.resource_id == equipment.id, Booking.status.in_(HOLDING_STATUSES))
            .order_by(Booking.start_at)
        )
    )


# ---------------------------------------------------------------------------------------------
# Offering equipment


def test_a_coordinator_offers_equipment_and_edits_it(app, db, office):
    cora = browser(app, COORDINATOR)
    response = cora.submit(
        "/assets/loanable/new",
        {
            "site_id": office["berlin"].id,
            "name": "  Camera   Sony A7 ",
            "description": "Body and two lenses.",
            "pickup_point": "IT desk, floor 2",
            "max_loan_days": "7",
            "active": "y",
        },
    )
    assert response.status_code == 303
    camera = db.scalar(select(Equipment).where(Equipment.name == "Camera Sony A7"))
    assert (
        camera is not None and camera.kind == "equipment" and camera.site_id == office["berlin"].id
    )
    assert camera.max_loan_days == 7 and camera.active and len(camera.qr_code) >= 6
    assert "Camera Sony A7" in cora.get("/assets/loanable").get_data(as_text=True)

    response = cora.submit(
        f"/assets/loanable/{camera.id}",
        {"name": "Camera Sony A7 IV", "pickup_point": "Reception", "max_loan_days": "3"},
    )
    assert response.status_code == 303
    db.expire_all()
    assert camera.name == "Camera Sony A7 IV" and camera.max_loan_days == 3
    assert not camera.active  # the box was unticked: no longer offered
    bea = browser(app, BORROWER)
    assert "Camera Sony A7" not in bea.get("/equipment/borrow?site=berlin").get_data(as_text=True)
    assert bea.get(f"/equipment/borrow/{camera.id}").status_code == 404


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": ""}, "Give it a name"),
        ({"name": "Projector 1"}, "already has equipment called Projector 1"),
        ({"name": "<b>x</b>"}, "cannot contain &lt; or &gt;"),
        ({"max_loan_days": "0"}, "Between 1 and 90 days"),
        ({"max_loan_days": "500"}, "Between 1 and 90 days"),
        ({"max_loan_days": "abc"}, "Enter a whole number"),
        ({"max_loan_days": ""}, "Between 1 and 90 days"),
        ({"pickup_point": "x" * 201}, "under 200 characters"),
    ],
)
def test_bad_equipment_is_refused_beside_the_field(app, db, office, values, message):
    data = {"site_id": office["berlin"].id, "name": "Camera", "max_loan_days": "7", "active": "y"}
    data.update(values)
    response = browser(app, COORDINATOR).submit("/assets/loanable/new", data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Equipment)) == 1


# ---------------------------------------------------------------------------------------------
# Borrowing


def test_an_employee_sees_what_is_free_and_reserves_it_for_three_days(app, db, office):
    projector = office["projector"]
    first = factories.weekday_ahead(days=3)
    last = first + timedelta(days=2)
    bea = browser(app, BORROWER)
    page = bea.get(f"/equipment/borrow?site=berlin&first={iso(first)}&last={iso(last)}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Projector 1" in text and "Free" in text
    form = bea.get(f"/equipment/borrow/{projector.id}?first={iso(first)}&last={iso(last)}")
    assert form.status_code == 200 and "Reserve Projector 1" in form.get_data(as_text=True)

    response = bea.submit(
        f"/equipment/borrow/{projector.id}",
        {
            "first_day": iso(first),
            "last_day": iso(last),
            "purpose": "Offsite",
            "idempotency_key": "k1",
        },
    )
    assert response.status_code == 303
    loan = db.scalar(select(EquipmentLoan))
    assert loan is not None
    assert (loan.first_day, loan.last_day, loan.status, loan.purpose) == (
        first,
        last,
        "reserved",
        "Offsite",
    )
    days = holding(db, projector)
    assert len(days) == 3
    for n, booking in enumerate(days):
        start, end = local_day_bounds(first + timedelta(days=n), BERLIN)
        assert (booking.start_at, booking.end_at, booking.blocked_until) == (start, end, end)
        assert booking.loan_id == loan.id and booking.status == BookingStatus.CONFIRMED
        assert booking.title == "Loan: Projector 1" and booking.user_id == office["borrower"].id
    mail = db.scalar(select(OutboxMessage).where(OutboxMessage.to_address == BORROWER))
    assert mail is not None and "Projector 1" in mail.subject and "Reception" in mail.text_body

    mine = bea.get("/equipment").get_data(as_text=True)
    assert "Projector 1" in mine and "Offsite" in mine and "Reserved" in mine
    # The browse page now says the days are taken, and the calendar marks them.
    text = bea.get(f"/equipment/borrow?site=berlin&first={iso(first)}&last={iso(last)}").get_data(
        as_text=True
    )
    assert "Taken 3 of 3 days" in text
    cal = bea.get(f"/equipment/borrow/{projector.id}?first={iso(first)}").get_data(as_text=True)
    assert cal.count("eq-day eq-day-taken") == 3


def test_overlapping_days_are_refused_naming_them_and_the_nearest_free_range(app, db, office):
    projector = office["projector"]
    first = factories.weekday_ahead(days=7)
    reserve(db, office["borrower"], projector, first, first + timedelta(days=1))
    otto = browser(app, OTHER)
    response = otto.submit(
        f"/equipment/borrow/{projector.id}",
        {
            "first_day": iso(first + timedelta(days=1)),
            "last_day": iso(first + timedelta(days=2)),
            "idempotency_key": "o1",
        },
    )
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    taken = first + timedelta(days=1)
    assert f"already lent out on {taken:%a %-d %b}" in text
    suggestion_start = first + timedelta(days=2)
    assert (
        f"Nearest free: {suggestion_start:%a %-d %b} – {suggestion_start + timedelta(days=1):%a %-d %b}"
        in text
    )
    assert db.scalar(select(func.count()).select_from(EquipmentLoan)) == 1
    assert len(holding(db, projector)) == 2
    # htmx gets the form fragment with the same message, ready for another try.
    response = otto.submit(
        f"/equipment/borrow/{projector.id}",
        {"first_day": iso(first), "last_day": iso(first), "idempotency_key": "o2"},
        htmx=True,
    )
    fragment = response.get_data(as_text=True)
    assert response.status_code == 409 and fragment.lstrip().startswith('<form id="loan-form"')
    assert "already lent out" in fragment


@pytest.mark.parametrize(
    ("offset_first", "offset_last", "message"),
    [
        (-1, 0, "That day is in the past"),
        (3, 1, "The last day is before the first day"),
        (1, 6, "at most 5 days; you chose 6 days"),
        (100, 101, "Loans can be reserved up to"),
        (None, 1, "Choose the first day"),
        (1, None, "Choose the last day"),
    ],
)
def test_bad_loan_dates_are_explained(app, db, office, offset_first, offset_last, message):
    projector = office["projector"]

    def day(offset: int | None) -> str:
        return "" if offset is None else iso(today() + timedelta(days=offset))

    response = browser(app, BORROWER).submit(
        f"/equipment/borrow/{projector.id}",
        {"first_day": day(offset_first), "last_day": day(offset_last), "idempotency_key": "x"},
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(EquipmentLoan)) == 0
    assert holding(db, projector) == []


def test_the_horizon_is_the_sites_room_booking_horizon(app, db, office):
    db.add(BookingPolicy(site_id=office["berlin"].id, room_horizon_days=10))
    db.commit()
    bea = browser(app, BORROWER)
    response = bea.submit(
        f"/equipment/borrow/{office['projector'].id}",
        {
            "first_day": iso(today() + timedelta(days=10)),
            "last_day": iso(today() + timedelta(days=11)),
            "idempotency_key": "h",
        },
    )
    assert response.status_code == 422
    horizon = today() + timedelta(days=10)
    assert f"up to {horizon:%a %-d %b %Y}" in response.get_data(as_text=True)


def test_unparseable_dates_and_unknown_equipment(app, db, office):
    bea = browser(app, BORROWER)
    response = bea.submit(
        f"/equipment/borrow/{office['projector'].id}", {"first_day": "tomorrow", "last_day": "x"}
    )
    assert response.status_code == 422
    assert "Not a valid date value" in response.get_data(as_text=True)
    assert bea.get("/equipment/borrow/999999").status_code == 404
    assert bea.submit("/equipment/borrow/999999", {"first_day": iso(today())}).status_code == 404
    # A desk is a resource too, but not loanable equipment.
    desk = factories.desk(db)
    db.commit()
    assert bea.get(f"/equipment/borrow/{desk.id}").status_code == 404
    with pytest.raises(NotFound):
        equipment_loans.reserve(
            db,
            Actor.system("t"),
            office["borrower"],
            equipment_id=desk.id,
            first_day=today(),
            last_day=today(),
            now=utcnow(),
        )
    # The browse page survives nonsense in its query string.
    page = bea.get("/equipment/borrow?site=nowhere&first=2001-01-01&last=garbage")
    assert page.status_code == 200 and "Projector 1" in page.get_data(as_text=True)


def test_a_double_click_reserves_once(app, db, office):
    bea = browser(app, BORROWER)
    first = factories.weekday_ahead(days=2)
    data = {"first_day": iso(first), "last_day": iso(first), "idempotency_key": "same-key"}
    url = f"/equipment/borrow/{office['projector'].id}"
    assert bea.submit(url, data).status_code == 303
    assert bea.submit(url, data).status_code == 303
    assert db.scalar(select(func.count()).select_from(EquipmentLoan)) == 1
    assert len(holding(db, office["projector"])) == 1


def test_losing_at_the_database_constraint_is_still_a_clear_refusal(db, office, monkeypatch):
    """If the overlap check were ever skipped, the no-overlap constraint decides: nothing is
    written and the answer is "just reserved by someone else"."""
    first = factories.weekday_ahead(days=4)
    reserve(db, office["borrower"], office["projector"], first, first)
    monkeypatch.setattr(bookings, "overlapping", lambda *args, **kwargs: None)
    with pytest.raises(SlotTaken) as refused:
        equipment_loans.reserve(
            db,
            Actor.system("t"),
            office["other"],
            equipment_id=office["projector"].id,
            first_day=first - timedelta(days=1),
            last_day=first,
            now=utcnow(),
        )
    assert "just reserved by someone else" in refused.value.message
    db.commit()  # the transaction is still usable and nothing of the loser is in it
    assert db.scalar(select(func.count()).select_from(EquipmentLoan)) == 1
    assert len(holding(db, office["projector"])) == 1


# ---------------------------------------------------------------------------------------------
# Cancelling


def test_the_borrower_cancels_and_the_days_are_free_again(app, db, office):
    first = factories.weekday_ahead(days=3)
    loan = reserve(db, office["borrower"], office["projector"], first, first + timedelta(days=1))
    bea = browser(app, BORROWER)
    assert bea.submit(f"/equipment/loans/{loan.id}/cancel", {}).status_code == 303
    db.expire_all()
    assert loan.status == "cancelled"
    days = list(db.scalars(select(Booking).where(Booking.loan_id == loan.id)))
    assert len(days) == 2
    assert all(b.status == BookingStatus.CANCELLED and b.cancelled_at is not None for b in days)
    page = bea.get("/equipment").get_data(as_text=True)
    assert "Past and cancelled loans (1)" in page and "Cancelled" in page
    # Someone else can have those days now.
    reserve(db, office["other"], office["projector"], first, first + timedelta(days=1))
    assert bea.submit(f"/equipment/loans/{loan.id}/cancel", {}).status_code == 303
    assert "already cancelled" in bea.get("/equipment").get_data(as_text=True)


def test_a_loan_under_way_ends_today_and_frees_the_days_ahead(db, office):
    loan = reserve(
        db, office["borrower"], office["projector"], today(), today() + timedelta(days=2)
    )
    freed = equipment_loans.cancel_loan(
        db, Actor.system("t"), loan, office["borrower"], now=utcnow()
    )
    assert freed == 3
    assert holding(db, office["projector"]) == []
    assert (
        equipment_loans.taken_days(
            db, office["projector"], today() + timedelta(days=1), today() + timedelta(days=2)
        )
        == set()
    )


def test_a_coordinator_cancels_a_loan_from_the_equipment_page(app, db, office):
    first = factories.weekday_ahead(days=3)
    loan = reserve(db, office["borrower"], office["projector"], first, first)
    cora = browser(app, COORDINATOR)
    page = cora.get(f"/assets/loanable/{office['projector'].id}").get_data(as_text=True)
    assert "Bea Borrower" in page
    back = f"/assets/loanable/{office['projector'].id}"
    response = cora.submit(f"/equipment/loans/{loan.id}/cancel", {"next": back})
    assert response.status_code == 303 and response.headers["Location"].endswith(back)
    db.expire_all()
    assert loan.status == "cancelled"
    told = list(db.scalars(select(OutboxMessage).where(OutboxMessage.to_address == BORROWER)))
    assert any("Cora Coordinator cancelled your loan" in m.text_body for m in told)


def test_other_people_get_404_on_every_loan_and_equipment_route(app, db, office):
    first = factories.weekday_ahead(days=3)
    loan = reserve(db, office["borrower"], office["projector"], first, first)
    otto = browser(app, OTHER)
    assert otto.submit(f"/equipment/loans/{loan.id}/cancel", {}).status_code == 404
    assert otto.get(f"/assets/loanable/{office['projector'].id}").status_code == 403
    nate = browser(app, NY_COORDINATOR)
    assert nate.submit(f"/equipment/loans/{loan.id}/cancel", {}).status_code == 404
    assert nate.get(f"/assets/loanable/{office['projector'].id}").status_code == 404
    assert (
        nate.submit(
            f"/assets/loanable/{office['projector'].id}", {"name": "Mine now", "max_loan_days": "3"}
        ).status_code
        == 404
    )
    assert nate.submit("/equipment/loans/999999/cancel", {}).status_code == 404
    db.expire_all()
    assert loan.status == "reserved" and office["projector"].name == "Projector 1"
    with pytest.raises(NotFound):
        equipment_loans.cancel_loan(db, Actor.system("t"), loan, office["other"], now=utcnow())


# ---------------------------------------------------------------------------------------------
# The day-bookings on the existing booking pages


def test_booking_pages_show_loan_days_without_trouble(app, db, office):
    loan = reserve(
        db, office["borrower"], office["projector"], today(), today() + timedelta(days=1)
    )
    bea = browser(app, BORROWER)
    mine = bea.get("/bookings/")
    assert mine.status_code == 200 and "Projector 1" in mine.get_data(as_text=True)
    day = db.scalar(select(Booking).where(Booking.loan_id == loan.id).order_by(Booking.start_at))
    assert bea.get(f"/bookings/{day.id}").status_code == 200
    assert bea.get("/my-day").status_code == 200


def test_the_no_show_release_leaves_loan_days_alone(db, office):
    reserve(db, office["borrower"], office["projector"], today(), today() + timedelta(days=1))
    released = bookings.release_no_shows(db, utcnow() + timedelta(hours=2))
    assert released == []


def test_a_reservation_of_a_second_site_uses_that_sites_zone(db, office):
    lens = make_projector(db, office["new_york"], "Lens kit")
    db.commit()
    ny = ZoneInfo("America/New_York")
    first = datetime.now(ny).date() + timedelta(days=2)
    loan = reserve(db, office["borrower"], lens, first, first)
    booking = db.scalar(select(Booking).where(Booking.loan_id == loan.id))
    assert (booking.start_at, booking.end_at) == local_day_bounds(first, ny)


def test_a_rule_violation_never_half_writes(db, office):
    with pytest.raises(RuleViolation):
        equipment_loans.reserve(
            db,
            Actor.system("t"),
            office["borrower"],
            equipment_id=office["projector"].id,
            first_day=today(),
            last_day=today() + timedelta(days=30),
            now=utcnow(),
        )
    assert db.scalar(select(func.count()).select_from(Booking)) == 0


# ---------------------------------------------------------------------------------------------
# The race


RACERS = 12


def test_people_reserving_overlapping_days_at_the_same_instant_have_exactly_one_winner(
    fresh_engine,
):
    _reader, writer = session_factories(fresh_engine)
    with writer() as session, session.begin():
        site = factories.site(session, "berlin")
        equipment = make_projector(session, site, "Race projector")
        people = [
            factories.user(session, email=f"racer{i}@example.com", password=None)
            for i in range(RACERS)
        ]
        session.flush()
        equipment_id, person_ids = equipment.id, [p.id for p in people]

    common = factories.weekday_ahead(days=5)
    # Every range covers `common`; they start one or two days either side.
    ranges = [
        (common - timedelta(days=i % 3), common + timedelta(days=(i + 1) % 3))
        for i in range(RACERS)
    ]
    barrier = threading.Barrier(RACERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(index: int) -> None:
        barrier.wait()
        with writer() as session:
            try:
                with session.begin():
                    person = session.get(User, person_ids[index])
                    equipment_loans.reserve(
                        session,
                        Actor.system("race"),
                        person,
                        equipment_id=equipment_id,
                        first_day=ranges[index][0],
                        last_day=ranges[index][1],
                        idempotency_key=f"race-{index}",
                        now=utcnow(),
                    )
                result = "won"
            except SlotTaken as taken:
                result = (
                    "taken"
                    if "lent out" in taken.message or "just reserved" in taken.message
                    else "?"
                )
            except Exception as exc:  # noqa: BLE001 - any other error is a failure we count
                result = f"error: {type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [o for o in outcomes if o.startswith("error") or o == "?"] == []
    assert outcomes.count("won") == 1
    assert outcomes.count("taken") == RACERS - 1
    with writer() as session:
        loans = list(session.scalars(select(EquipmentLoan)))
        assert len(loans) == 1  # nothing half-written by the losers
        winner = loans[0]
        days = list(
            session.scalars(
                select(Booking).where(
                    Booking.resource_id == equipment_id, Booking.status.in_(HOLDING_STATUSES)
                )
            )
        )
        assert len(days) == (winner.last_day - winner.first_day).days + 1
        assert all(b.loan_id == winner.id for b in days)
        assert session.scalar(select(func.count()).select_from(Booking)) == len(days)
