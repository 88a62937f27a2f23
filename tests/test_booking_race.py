"""Fifty people click "book" on the same desk at the same instant: exactly one wins, on each backend.

Real concurrent connections (one per thread, released together by a barrier), not the test client."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from portal.db import session_factories
from portal.errors import SlotTaken
from portal.models import HOLDING_STATUSES, Booking, Desk
from portal.services import bookings
from portal.services.audit import Actor
from portal.timezones import to_utc
from tests import factories

RACERS = 50


def next_weekday(today: date) -> date:
    day = today + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def test_fifty_concurrent_bookings_of_one_desk_have_exactly_one_winner(fresh_engine):
    _reader, writer = session_factories(fresh_engine)
    with writer() as session, session.begin():
        site = factories.site(session, "berlin")
        floor = factories.floor(session, site)
        desk = Desk(site_id=site.id, floor=floor, name="1.01", qr_code="race-desk")
        session.add(desk)
        people = [
            factories.user(session, email=f"racer{i}@example.com", password=None)
            for i in range(RACERS)
        ]
        session.flush()
        desk_id, person_ids = desk.id, [p.id for p in people]

    zone = ZoneInfo("Europe/Berlin")
    day = next_weekday(datetime.now(zone).date())
    start, end = (
        to_utc(datetime.combine(day, time(9)), zone),
        to_utc(datetime.combine(day, time(17)), zone),
    )
    barrier = threading.Barrier(RACERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(person_id: int) -> None:
        barrier.wait()  # before touching the database: on SQLite a writer holds the lock at BEGIN
        with writer() as session:
            try:
                with session.begin():
                    person = session.get(type(people[0]), person_id)
                    bookings.book(
                        session,
                        Actor.system("race"),
                        person,
                        resource_id=desk_id,
                        start=start,
                        end=end,
                    )
                result = "won"
            except SlotTaken as taken:
                result = "taken" if "taken" in taken.message or "booked" in taken.message else "?"
            except Exception as exc:  # noqa: BLE001 - any other error is a failure we count
                result = f"error: {type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(pid,)) for pid in person_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    errors = [o for o in outcomes if o.startswith("error")]
    assert errors == []
    assert outcomes.count("won") == 1
    assert outcomes.count("taken") == RACERS - 1
    with writer() as session:
        held = session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.resource_id == desk_id, Booking.status.in_(HOLDING_STATUSES))
        )
        assert held == 1
        assert (
            session.scalar(select(func.count()).select_from(Booking)) == 1
        )  # nothing half-written
    assert start.tzinfo is UTC or start.utcoffset() == timedelta(0)
