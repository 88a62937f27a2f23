"""The database's no-overlap constraint is the last line of defence behind the checks made under a
lock: when it refuses a booking (or a move), the person gets "just taken", never an error page, and
the transaction stays usable for the answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.db import utcnow
from portal.errors import SlotTaken
from portal.models import Booking
from portal.services import bookings
from portal.services.audit import Actor
from tests import factories


@pytest.fixture
def arranged(db, monkeypatch):
    site = factories.site(db, "berlin")
    room = factories.room(db, factories.floor(db, site), name="Spree")
    first, second = factories.user(db), factories.user(db)
    day = factories.weekday_ahead()
    start, end = factories.at(day, 10), factories.at(day, 11)
    bookings.book(db, Actor.system("tests"), first, resource_id=room.id, start=start, end=end)
    db.flush()
    # As if the checks under the lock had missed the first booking: only the constraint is left.
    monkeypatch.setattr(bookings, "overlapping", lambda *args, **kwargs: None)
    return {"room": room, "second": second, "start": start, "end": end}


def test_a_new_booking_refused_by_the_constraint_is_just_taken(db, arranged):
    with pytest.raises(SlotTaken, match="just taken"):
        bookings.book(
            db,
            Actor.system("tests"),
            arranged["second"],
            resource_id=arranged["room"].id,
            start=arranged["start"] + timedelta(minutes=30),
            end=arranged["end"] + timedelta(minutes=30),
            now=utcnow(),
        )
    assert db.scalar(select(func.count(Booking.id))) == 1  # still usable, nothing half-written


def test_a_move_refused_by_the_constraint_is_just_taken(db, arranged):
    later = bookings.book(
        db,
        Actor.system("tests"),
        arranged["second"],
        resource_id=arranged["room"].id,
        start=arranged["start"] + timedelta(hours=2),
        end=arranged["end"] + timedelta(hours=2),
    )
    db.flush()
    with pytest.raises(SlotTaken, match="just taken"):
        bookings.change(
            db,
            Actor.system("tests"),
            arranged["second"],
            later,
            start=arranged["start"],
            end=arranged["end"],
        )
    db.expire_all()
    assert db.get(Booking, later.id).start_at == arranged["start"] + timedelta(hours=2)
