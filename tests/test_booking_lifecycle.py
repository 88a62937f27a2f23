"""After booking: check in (portal and QR), end early, extend, move, no-shows released and kept,
series hygiene, and the database refusing overlaps by itself."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DatabaseError

from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import Booking, BookingSeries, BookingStatus
from portal.services import bookings, recurrence, series
from portal.services.audit import Actor
from tests import factories

SYSTEM = Actor.system("tests")


def direct_booking(db, resource, user, start, end, **kwargs) -> Booking:
    """A booking row as if made earlier (rules about 'now' do not apply to the past)."""
    booking = Booking(
        resource=resource,
        user=user,
        created_by=user,
        start_at=start,
        end_at=end,
        blocked_until=kwargs.pop("blocked_until", end),
        status=kwargs.pop("status", BookingStatus.CONFIRMED),
        created_at=kwargs.pop("created_at", start - timedelta(days=1)),
        **kwargs,
    )
    db.add(booking)
    db.flush()
    return booking


WORKDAYS = ("MO", "TU", "WE", "TH", "FR")


def my_series(db, person, room, first, repeat, *, minutes: int = 30, title: str = "Standup"):
    """A series the person books for themselves, starting at `first` (site wall time)."""
    return series.create(
        db,
        SYSTEM,
        person,
        resource=room,
        booker=person,
        title=title,
        first_local=first,
        duration=timedelta(minutes=minutes),
        repeat=repeat,
        skip=set(),
        now=utcnow(),
    )


@pytest.fixture
def place(db):
    site = factories.site(db, "berlin")
    floor = factories.floor(db, site)
    return (
        site,
        factories.desk(db, floor, "1.01"),
        factories.room(db, floor, "Spree", buffer_minutes=10),
    )


def test_qr_code_checks_in_my_current_booking(client, employee, place, db):
    _site, desk, _room = place
    now = utcnow()
    booking = direct_booking(
        db, desk, employee, now - timedelta(minutes=5), now + timedelta(hours=3)
    )
    db.commit()
    client.sign_in("erin@example.com")
    response = client.get(f"/q/{desk.qr_code}")
    assert response.status_code == 200
    assert "You are checked in to desk 1.01" in response.get_data(as_text=True)
    db.expire_all()
    checked = db.get(Booking, booking.id)
    assert checked.status == BookingStatus.CHECKED_IN and checked.checked_in_via == "qr"


def test_qr_code_asks_for_sign_in_first_and_unknown_codes_are_clear(client, employee, place):
    _site, desk, _room = place
    anonymous = client.get(f"/q/{desk.qr_code}")
    assert (
        anonymous.status_code == 302 and f"next=/q/{desk.qr_code}" in anonymous.headers["Location"]
    )
    client.sign_in("erin@example.com")
    unknown = client.get("/q/nope")
    assert unknown.status_code == 404 and "does not belong to any desk" in unknown.get_data(
        as_text=True
    )
    nothing = client.get(f"/q/{desk.qr_code}")
    assert "You have no booking here right now." in nothing.get_data(as_text=True)


def test_check_in_window_opens_before_and_closes_after_the_start(db, place, employee):
    _site, desk, _room = place
    start = utcnow() + timedelta(days=2)
    booking = direct_booking(db, desk, employee, start, start + timedelta(hours=8))
    with pytest.raises(RuleViolation, match="Check-in opens at"):
        bookings.check_in(db, SYSTEM, booking, now=start - timedelta(minutes=20))
    with pytest.raises(RuleViolation, match="window closed"):
        bookings.check_in(db, SYSTEM, booking, now=start + timedelta(minutes=16))
    bookings.check_in(db, SYSTEM, booking, now=start - timedelta(minutes=10))
    assert booking.status == BookingStatus.CHECKED_IN


def test_no_shows_are_released_kept_and_the_booker_told(db, place, employee):
    _site, desk, _room = place
    start = utcnow() - timedelta(minutes=30)
    booking = direct_booking(db, desk, employee, start, start + timedelta(hours=8))
    kept = direct_booking(
        db,
        factories.desk(db, desk.floor),
        employee,
        start,
        start + timedelta(hours=8),
        status=BookingStatus.CHECKED_IN,
    )
    released = bookings.release_no_shows(db)
    assert released == [booking]
    assert booking.status == BookingStatus.RELEASED and kept.status == BookingStatus.CHECKED_IN
    assert bookings.release_no_shows(db) == []  # idempotent
    assert db.get(Booking, booking.id) is not None  # never deleted
    # the desk is free again for someone else
    other = factories.user(db, email="next@example.com")
    assert bookings.overlapping(db, desk, utcnow(), utcnow() + timedelta(hours=1)) is None
    assert other.id


def test_a_late_booking_gets_its_grace_from_when_it_was_made(db, place, employee):
    _site, desk, _room = place
    start = utcnow() - timedelta(hours=2)
    booking = direct_booking(
        db,
        desk,
        employee,
        start,
        start + timedelta(hours=8),
        created_at=utcnow() - timedelta(minutes=5),
    )
    assert bookings.release_no_shows(db) == []
    assert booking.status == BookingStatus.CONFIRMED


def test_cancel_after_start_frees_the_rest_of_the_slot(db, place, employee):
    _site, _desk, room = place
    start = utcnow() - timedelta(minutes=30)
    booking = direct_booking(
        db, room, employee, start, start + timedelta(hours=2), status=BookingStatus.CHECKED_IN
    )
    bookings.cancel(db, SYSTEM, booking)
    assert booking.status == BookingStatus.COMPLETED
    assert booking.end_at <= utcnow() + timedelta(minutes=1)
    later = utcnow() + timedelta(minutes=30)
    assert bookings.overlapping(db, room, later, later + timedelta(minutes=30)) is None


def test_database_refuses_overlapping_bookings_even_without_the_service(db, place, employee):
    _site, desk, _room = place
    start = utcnow() + timedelta(days=1)
    direct_booking(db, desk, employee, start, start + timedelta(hours=4))
    savepoint = db.begin_nested()
    with pytest.raises(DatabaseError):
        direct_booking(db, desk, employee, start + timedelta(hours=1), start + timedelta(hours=2))
    savepoint.rollback()
    # back-to-back bookings touch without overlapping (half-open ranges)
    direct_booking(db, desk, employee, start + timedelta(hours=4), start + timedelta(hours=5))
    # cancelled bookings hold nothing
    direct_booking(
        db, desk, employee, start, start + timedelta(hours=1), status=BookingStatus.CANCELLED
    )


def test_room_buffer_keeps_a_gap_between_bookings(db, place, employee):
    _site, _desk, room = place  # 10-minute buffer
    start = utcnow() + timedelta(days=1)
    direct_booking(
        db,
        room,
        employee,
        start,
        start + timedelta(hours=1),
        blocked_until=start + timedelta(hours=1, minutes=10),
    )
    assert (
        bookings.overlapping(
            db, room, start + timedelta(hours=1, minutes=5), start + timedelta(hours=2)
        )
        is not None
    )
    assert (
        bookings.overlapping(
            db, room, start + timedelta(hours=1, minutes=10), start + timedelta(hours=2)
        )
        is None
    )


def test_portal_actions_extend_move_and_cancel(client, employee, place, db):
    _site, _desk, room = place
    day = factories.weekday_ahead()
    booking = bookings.book(
        db,
        SYSTEM,
        employee,
        resource_id=room.id,
        start=factories.at(day, 10),
        end=factories.at(day, 11),
    )
    db.commit()
    client.sign_in("erin@example.com")
    assert client.submit(f"/bookings/{booking.id}/extend", {"minutes": "30"}).status_code == 303
    bad = client.submit(f"/bookings/{booking.id}/extend", {"minutes": "999"})
    assert bad.status_code == 422 and "15, 30 or 60" in bad.get_data(as_text=True)
    moved = client.submit(
        f"/bookings/{booking.id}/move", {"date": day.isoformat(), "start": "14:00", "end": "15:00"}
    )
    assert moved.status_code == 303
    backwards = client.submit(
        f"/bookings/{booking.id}/move", {"date": day.isoformat(), "start": "15:00", "end": "14:00"}
    )
    assert backwards.status_code == 422 and "end must be after the start" in backwards.get_data(
        as_text=True
    )
    db.expire_all()
    fresh = db.get(Booking, booking.id)
    zone = ZoneInfo("Europe/Berlin")
    assert fresh.start_at.astimezone(zone).time() == time(14) and fresh.sequence == 2
    assert client.submit(f"/bookings/{booking.id}/cancel").status_code == 303
    db.expire_all()
    assert db.get(Booking, booking.id).status == BookingStatus.CANCELLED
    again = client.submit(f"/bookings/{booking.id}/cancel")
    assert again.status_code == 422 and "no longer active" in again.get_data(as_text=True)


def test_three_missed_occurrences_in_a_row_ask_to_end_the_series(db, place, employee):
    _site, _desk, room = place
    the_series = BookingSeries(
        resource_id=room.id,
        user_id=employee.id,
        created_by_id=employee.id,
        time_zone="Europe/Berlin",
        first_start_local=datetime(2026, 1, 5, 9),
        duration_minutes=60,
        rrule="FREQ=DAILY;COUNT=5",
    )
    db.add(the_series)
    db.flush()
    for days_ago in (3, 2, 1):
        start = utcnow() - timedelta(days=days_ago)
        direct_booking(db, room, employee, start, start + timedelta(hours=1), series=the_series)
    bookings.release_no_shows(db)
    assert the_series.missed_in_a_row == 3 and the_series.trim_suggested_at is not None


def test_cancel_a_date_range_and_this_and_following(db, place, employee):
    _site, _desk, room = place
    first = datetime.combine(factories.weekday_ahead(days=1), time(9))
    repeat = recurrence.Repeat("weekly", weekdays=WORKDAYS, count=10)
    created = my_series(db, employee, room, first, repeat, minutes=30, title="Standup")
    held = lambda: [b for b in created.bookings if b.holds_slot]  # noqa: E731
    assert len(held()) == 10
    holiday = first.date() + timedelta(days=2)
    series.cancel_range(db, SYSTEM, created, holiday, holiday + timedelta(days=1))
    assert holiday.isoformat() in created.skipped_dates
    third = sorted(held(), key=lambda b: b.start_at)[2]
    series.cancel_following(db, SYSTEM, third)
    assert "UNTIL=" in created.rrule and len(held()) == 2


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York"])
def test_weekly_series_keeps_wall_clock_time_across_both_dst_changes(zone_name):
    zone = ZoneInfo(zone_name)
    first = datetime(2026, 3, 2, 9, 0)  # before spring forward in both zones
    rule = recurrence.build_rrule(recurrence.Repeat("weekly", weekdays=("MO",), count=40), first)
    starts = recurrence.occurrences(rule, first)
    assert all(s.time() == time(9) for s in starts)
    from portal.timezones import to_utc

    offsets = {to_utc(s, zone).astimezone(zone).utcoffset() for s in starts}
    assert len(offsets) == 2  # winter and summer time both crossed, 09:00 local throughout
    assert {to_utc(s, zone).astimezone(zone).hour for s in starts} == {9}


def test_nonexistent_local_time_in_the_spring_gap_moves_forward():
    from portal.timezones import to_utc

    berlin = ZoneInfo("Europe/Berlin")
    instant = to_utc(datetime(2026, 3, 29, 2, 30), berlin)  # 02:30 does not exist that night
    assert instant.astimezone(berlin).hour == 3


def test_change_time_of_this_and_following_splits_the_series(client, employee, place, db):
    _site, _desk, room = place
    first = datetime.combine(factories.weekday_ahead(days=1), time(9))
    created = my_series(
        db,
        employee,
        room,
        first,
        recurrence.Repeat("weekly", weekdays=WORKDAYS, count=6),
        minutes=30,
        title="Standup",
    )
    db.commit()
    third = sorted(created.bookings, key=lambda b: b.start_at)[2]
    third_day = third.start_at.astimezone(ZoneInfo("Europe/Berlin")).date()
    client.sign_in("erin@example.com")
    response = client.submit(
        f"/bookings/{third.id}/move",
        {"date": third_day.isoformat(), "start": "11:00", "end": "11:45", "scope": "following"},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:400]
    db.expire_all()
    zone = ZoneInfo("Europe/Berlin")
    holding = db.scalars(
        select(Booking).where(Booking.status.in_(["confirmed"])).order_by(Booking.start_at)
    ).all()
    assert [b.start_at.astimezone(zone).time() for b in holding] == [time(9)] * 2 + [time(11)] * 4
    assert all((b.end_at - b.start_at) == timedelta(minutes=45) for b in holding[2:])
    assert db.scalar(select(func.count()).select_from(BookingSeries)) == 2


def test_move_a_desk_booking_to_another_free_desk(client, employee, place, db):
    _site, desk, _room = place
    other = factories.desk(db, desk.floor, "1.02")
    day = factories.weekday_ahead()
    booking = bookings.book(
        db,
        SYSTEM,
        employee,
        resource_id=desk.id,
        start=factories.at(day, 8),
        end=factories.at(day, 19),
    )
    db.commit()
    client.sign_in("erin@example.com")
    page = client.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert "1.02 (free then)" in page
    moved = client.submit(
        f"/bookings/{booking.id}/move",
        {"date": day.isoformat(), "start": "08:00", "end": "19:00", "resource_id": str(other.id)},
    )
    assert moved.status_code == 303
    db.expire_all()
    assert db.get(Booking, booking.id).resource_id == other.id


def test_series_occurrences_are_booked_as_they_come_within_the_horizon(db, place, employee):
    _site, _desk, room = place
    first = datetime.combine(factories.weekday_ahead(days=1), time(9))
    created = my_series(
        db,
        employee,
        room,
        first,
        recurrence.Repeat("monthly_weekday", count=6),
        minutes=30,
        title="Monthly",
    )
    booked_now = len(created.bookings)
    assert 0 < booked_now < 6  # the default room horizon is 90 days
    added = series.extend_all(db, now=utcnow() + timedelta(days=120))
    assert added > 0 and len(created.bookings) == booked_now + added
    assert series.extend_all(db, now=utcnow() + timedelta(days=120)) == 0  # idempotent


def test_a_long_daily_series_counts_once_against_the_room_quota(db, place, employee):
    _site, _desk, room = place
    first = datetime.combine(factories.weekday_ahead(days=1), time(8))
    created = my_series(
        db,
        employee,
        room,
        first,
        recurrence.Repeat("weekly", weekdays=WORKDAYS, count=60),
        minutes=15,
        title="Daily",
    )
    assert len(created.bookings) > 20  # more than the quota of 20, within the 90-day horizon
    day = factories.weekday_ahead(days=3)
    single = bookings.book(
        db,
        SYSTEM,
        employee,
        resource_id=room.id,
        start=factories.at(day, 15),
        end=factories.at(day, 16),
    )
    assert single.status == BookingStatus.CONFIRMED
