"""Months of past bookings for the demo, with check-ins, no-shows, cancellations and early ends, so
the dashboards have something to say. Bulk-inserted in one statement per table chunk (fast)."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import Booking, BookingStatus, Desk, DeskAssignment, Room, Site, User
from portal.timezones import to_utc

DAYS = 120
KEY_PREFIX = "history-"


def seed_history(session: Session, sites: list[Site], people: list[User], days: int = DAYS) -> int:
    """Bookings for the `days` days before today at each site; nothing if already there.
    Returns the number of bookings added."""
    if session.scalar(
        select(Booking.id).where(Booking.idempotency_key.like(KEY_PREFIX + "%")).limit(1)
    ):
        return 0
    rng = random.Random(7)  # noqa: S311 - deterministic demo data, not security
    now = utcnow()
    rows: list[dict] = []
    for site in sites:
        zone = ZoneInfo(site.time_zone)
        today = now.astimezone(zone).date()
        desks = session.scalars(
            select(Desk).where(Desk.site_id == site.id, Desk.active.is_(True))
        ).all()
        rooms = session.scalars(
            select(Room).where(
                Room.site_id == site.id, Room.active.is_(True), Room.needs_approval.is_(False)
            )
        ).all()
        local_people = [p for p in people if p.home_site_id == site.id] or people
        # One assigned desk stays unused, so "assigned desks unused" has something to show.
        idle = next((d.id for d in desks if d.assignment == DeskAssignment.ASSIGNED), None)
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            if str(day.isoweekday()) not in site.open_weekdays:
                continue
            # Busier mid-week, and a slow ramp up over the months.
            busy = {0: 0.45, 1: 0.7, 2: 0.75, 3: 0.65, 4: 0.35}.get(day.weekday(), 0.1)
            busy *= 0.8 + 0.25 * (days - back) / days
            for desk in desks:
                if desk.id == idle:
                    continue
                if desk.assignment == DeskAssignment.ASSIGNED:
                    if rng.random() < 0.7:
                        rows.append(_desk(rng, desk, desk.assigned_user_id, day, zone, now, 0.95))
                elif rng.random() < busy:
                    who = rng.choice(local_people).id
                    rows.append(_desk(rng, desk, who, day, zone, now, 0.84))
            for room in rooms:
                minute = 8 * 60 + rng.choice((0, 30, 60))
                while minute < 17 * 60:
                    if rng.random() < busy * 0.8:
                        length = rng.choice((30, 30, 60, 60, 60, 90, 120))
                        who = rng.choice(local_people).id
                        rows.append(_room(rng, room, who, day, minute, length, zone, now))
                        minute += length + room.buffer_minutes + rng.choice((0, 0, 30, 60))
                    else:
                        minute += rng.choice((30, 60, 90))
    for n, row in enumerate(rows):
        row["idempotency_key"] = f"{KEY_PREFIX}{n}"
    for start in range(0, len(rows), 2000):
        session.execute(insert(Booking.__table__), rows[start : start + 2000])
    return len(rows)


def _row(
    resource_id: int, user_id: int, start: datetime, end: datetime, status: str, buffer: int, now
) -> dict:
    return {
        "resource_id": resource_id,
        "user_id": user_id,
        "created_by_id": user_id,
        "title": "",
        "start_at": start,
        "end_at": end,
        "blocked_until": end + timedelta(minutes=buffer),
        "status": status,
        "checked_in_at": None,
        "checked_in_via": None,
        "cancelled_at": None,
        "status_reason": "",
        "sequence": 0,
        "version": 1,
        "created_at": start - timedelta(days=3),
        "updated_at": now,
    }


def _desk(rng, desk: Desk, user_id, day: date, zone, now, show_rate: float) -> dict:
    start = to_utc(datetime.combine(day, time(8)), zone)
    end = to_utc(datetime.combine(day, time(18)), zone)
    roll = rng.random()
    row = _row(desk.id, user_id, start, end, BookingStatus.COMPLETED, 0, now)
    if roll < show_rate:
        row["checked_in_at"] = start + timedelta(minutes=rng.randint(20, 100))
        row["checked_in_via"] = rng.choice(("portal", "qr", "qr", "badge"))
        row["status"] = BookingStatus.CHECKED_IN  # a past desk day stays "checked in"
    elif roll < show_rate + 0.05:
        row["status"] = BookingStatus.CANCELLED
        row["cancelled_at"] = start - timedelta(hours=rng.randint(2, 40))
    else:
        row["status"] = BookingStatus.RELEASED
        row["status_reason"] = "No check-in before the window closed."
    return row


def _room(rng, room: Room, user_id, day: date, minute: int, length: int, zone, now) -> dict:
    start = to_utc(datetime.combine(day, time(minute // 60, minute % 60)), zone)
    end = start + timedelta(minutes=length)
    row = _row(room.id, user_id, start, end, BookingStatus.CHECKED_IN, room.buffer_minutes, now)
    roll = rng.random()
    if roll < 0.12:
        row["status"] = BookingStatus.RELEASED
        row["status_reason"] = "No check-in before the window closed."
    elif roll < 0.2:
        row["status"] = BookingStatus.CANCELLED
        row["cancelled_at"] = start - timedelta(hours=rng.randint(1, 48))
    else:
        row["checked_in_at"] = start + timedelta(minutes=rng.randint(0, 8))
        row["checked_in_via"] = rng.choice(("portal", "qr", "kiosk"))
        if roll > 0.93:  # ended early: the rest of the slot was given back
            row["status"] = BookingStatus.COMPLETED
            row["end_at"] = start + timedelta(minutes=max(15, length // 2))
            row["blocked_until"] = row["end_at"]
    return row
