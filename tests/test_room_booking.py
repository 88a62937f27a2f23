"""Rooms: search with reasons, the day timeline, booking (also on behalf), approvals, series."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.models import Booking, BookingSeries, BookingStatus, OutboxMessage
from portal.services import bookings as booking_service
from portal.services.audit import Actor
from tests import factories
from tests.conftest import Browser


@pytest.fixture
def rooms(db):
    site = factories.site(db, "berlin")
    floor = factories.floor(db, site, level=1)
    small = factories.room(db, floor, "Spree", capacity=4, equipment=["display"])
    big = factories.room(
        db, floor, "Havel", capacity=12, equipment=["display", "video conferencing"]
    )
    boardroom = factories.room(db, floor, "Board", capacity=20, needs_approval=True)
    db.commit()
    return site, floor, small, big, boardroom


def count(db, model=Booking) -> int:
    return db.scalar(select(func.count()).select_from(model))


def book_form(client, room, day, start="10:00", duration=60, **extra):
    page = client.get(f"/rooms/{room.id}/book?date={day}&start={start}&duration={duration}")
    key = re.search(
        r'name="idempotency_key" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )
    data = {
        "date": day.isoformat(),
        "start": start,
        "duration": str(duration),
        "repeat": "none",
        "idempotency_key": key.group(1),
        "interval": "1",
        "ends": "count",
        "count": "4",
    }
    data.update(extra)
    return data


def test_search_offers_rooms_that_fit_and_says_why_others_do_not(client, employee, rooms):
    _site, _floor, small, big, _board = rooms
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    response = client.get(
        f"/rooms/?date={day}&start=10:00&duration=60&attendees=6&equipment=video+conferencing"
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Book Havel" in body
    assert "too small: seats 4" in body and "no video conferencing" in body
    outside = client.get(f"/rooms/?date={day}&start=21:00&duration=60&attendees=2").get_data(
        as_text=True
    )
    assert "outside opening hours" in outside


def test_book_a_room_then_see_it_in_the_timeline_and_my_bookings(client, employee, rooms, db):
    _site, floor, small, _big, _board = rooms
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    response = client.submit(
        f"/rooms/{small.id}/book",
        book_form(client, small, day, title="<script>alert(1)</script> Planning"),
    )
    assert response.status_code == 303
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Booked Spree" in detail
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt; Planning" in detail and "<script>alert" not in detail
    )
    timeline = client.get(f"/rooms/timeline?floor={floor.id}&date={day}").get_data(as_text=True)
    assert "✓ You" in timeline
    mine = client.get("/bookings/").get_data(as_text=True)
    assert "Spree" in mine
    assert db.scalar(select(OutboxMessage.subject)).startswith("Booked: Spree")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"duration": "0"}, "Between 15 minutes and a day."),
        ({"duration": "600000"}, "Between 15 minutes and a day."),
        ({"duration": "600"}, "at most 8 hours"),
        ({"start": "25:99"}, "Pick a start time."),
        ({"date": ""}, "Pick a day."),
        ({"title": "x" * 500}, "Field cannot be longer than 200 characters."),
        ({"on_behalf_of": "nobody@example.com"}, "No colleague with that e-mail"),
    ],
)
def test_bad_room_input_is_explained_and_nothing_is_saved(
    client, employee, rooms, db, overrides, message
):
    _site, _floor, small, _big, _board = rooms
    client.sign_in("erin@example.com")
    data = book_form(client, small, factories.weekday_ahead())
    data.update(overrides)
    response = client.submit(f"/rooms/{small.id}/book", data, htmx=True)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(db) == 0


def test_end_before_start_and_past(client, employee, rooms, db):
    from datetime import date

    _site, _floor, small, _big, _board = rooms
    client.sign_in("erin@example.com")
    past = client.submit(
        f"/rooms/{small.id}/book", book_form(client, small, date.today() - timedelta(days=2))
    )
    assert past.status_code == 422 and "already passed" in past.get_data(as_text=True)
    assert count(db) == 0


def test_book_on_behalf_of_a_colleague(client, employee, rooms, db):
    _site, _floor, small, _big, _board = rooms
    boss = factories.user(db, email="boss@example.com", name="Bea Boss")
    db.commit()
    client.sign_in("erin@example.com")
    response = client.submit(
        f"/rooms/{small.id}/book",
        book_form(client, small, factories.weekday_ahead(), on_behalf_of="boss@example.com"),
    )
    assert response.status_code == 303
    booking = db.scalar(select(Booking))
    assert booking.user_id == boss.id and booking.created_by.email == "erin@example.com"
    # both may see and manage it; a third person may not even see it
    assert client.get(f"/bookings/{booking.id}").status_code == 200
    factories.user(db, email="third@example.com")
    db.commit()
    client.submit("/sign-out")
    client.sign_in("third@example.com")
    assert client.get(f"/bookings/{booking.id}").status_code == 404
    assert client.submit(f"/bookings/{booking.id}/cancel").status_code == 404


def test_restricted_room_needs_approval_and_both_sides_are_told(app, client, employee, rooms, db):
    site, _floor, _small, _big, board = rooms
    factories.user(db, email="coord@example.com", coordinator_of=site)
    db.commit()
    client.sign_in("erin@example.com")
    assert (
        client.submit(
            f"/rooms/{board.id}/book", book_form(client, board, factories.weekday_ahead())
        ).status_code
        == 303
    )
    booking = db.scalar(select(Booking))
    assert booking.status == BookingStatus.PENDING

    app.test_client_class = Browser
    coordinator = app.test_client()
    coordinator.sign_in("coord@example.com")
    page = coordinator.get("/approvals/").get_data(as_text=True)
    assert "Board" in page and "Erin Employee" in page
    no_reason = coordinator.submit(
        f"/approvals/{booking.id}",
        {"decision": "decline", "version": booking.version},
        follow_redirects=True,
    )
    assert "Say why" in no_reason.get_data(as_text=True)
    declined = coordinator.submit(
        f"/approvals/{booking.id}",
        {"decision": "decline", "reason": "Board meeting", "version": booking.version},
    )
    assert declined.status_code == 303
    db.expire_all()
    assert db.get(Booking, booking.id).status == BookingStatus.DECLINED
    subjects = list(db.scalars(select(OutboxMessage.subject).order_by(OutboxMessage.id)))
    assert subjects[0].startswith("Waiting for approval") and subjects[-1].startswith("Declined")
    # employees cannot reach approvals
    assert client.get("/approvals/").status_code == 403


def test_weekly_series_shows_conflicts_and_skips_them(client, employee, rooms, db):
    _site, _floor, small, _big, _board = rooms
    day = factories.weekday_ahead(days=2)
    clash_day = day + timedelta(days=14)
    other = factories.user(db, email="o@example.com")
    booking_service.book(
        db,
        Actor.system("t"),
        other,
        resource_id=small.id,
        start=factories.at(clash_day, 10),
        end=factories.at(clash_day, 11),
    )
    db.commit()
    client.sign_in("erin@example.com")
    weekday = ["MO", "TU", "WE", "TH", "FR"][day.weekday()]
    data = book_form(
        client, small, day, repeat="weekly", weekdays=weekday, count="4", title="Weekly sync"
    )
    preview = client.submit(f"/rooms/{small.id}/book", data, htmx=True)
    body = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "4 occurrences" in body and "1 clash" in body and "already booked then" in body
    assert count(db, BookingSeries) == 0  # a preview books nothing

    confirmed = client.submit(
        f"/rooms/{small.id}/book", {**data, "confirm": "yes", "skip": clash_day.isoformat()}
    )
    assert confirmed.status_code == 303
    series = db.scalar(select(BookingSeries))
    assert series.rrule.startswith("FREQ=WEEKLY;BYDAY=") and series.skipped_dates == [
        clash_day.isoformat()
    ]
    mine = db.scalars(select(Booking).where(Booking.series_id == series.id)).all()
    assert len(mine) == 3


def test_series_confirm_without_skipping_a_clash_books_nothing(client, employee, rooms, db):
    _site, _floor, small, _big, _board = rooms
    day = factories.weekday_ahead(days=2)
    other = factories.user(db, email="o2@example.com")
    booking_service.book(
        db,
        Actor.system("t"),
        other,
        resource_id=small.id,
        start=factories.at(day + timedelta(days=7), 10),
        end=factories.at(day + timedelta(days=7), 11),
    )
    db.commit()
    before = count(db)
    client.sign_in("erin@example.com")
    weekday = ["MO", "TU", "WE", "TH", "FR"][day.weekday()]
    data = book_form(
        client, small, day, repeat="weekly", weekdays=weekday, count="3", confirm="yes"
    )
    response = client.submit(f"/rooms/{small.id}/book", data)
    assert response.status_code == 422
    assert "cannot be booked; skip them" in response.get_data(as_text=True)
    assert count(db) == before and count(db, BookingSeries) == 0


def test_series_of_ten_thousand_or_malformed_is_refused(client, employee, rooms, db):
    _site, _floor, small, _big, _board = rooms
    client.sign_in("erin@example.com")
    day = factories.weekday_ahead()
    huge = client.submit(
        f"/rooms/{small.id}/book", book_form(client, small, day, repeat="daily", count="10000")
    )
    assert huge.status_code == 422 and "at most 200 occurrences" in huge.get_data(as_text=True)
    bad = client.submit(
        f"/rooms/{small.id}/book", book_form(client, small, day, repeat="weekly", weekdays="XX")
    )
    assert bad.status_code == 422
    assert count(db) == 0


def test_a_double_submitted_room_form_books_once(client, employee, rooms, db):
    _site, _floor, small, _big, _board = rooms
    client.sign_in("erin@example.com")
    data = book_form(client, small, factories.weekday_ahead())
    first = client.submit(f"/rooms/{small.id}/book", data)
    second = client.submit(f"/rooms/{small.id}/book", data)
    assert first.headers["Location"] == second.headers["Location"]
    assert count(db) == 1
