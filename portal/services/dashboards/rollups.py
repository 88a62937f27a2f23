"""Filling the daily roll-ups (portal/models/kpi_rollups.py) for the days a dashboard is about to read.

Bookings of the days without a marker are read once, summed in Python by local day (zoneinfo does
the DST arithmetic the same way on SQLite and PostgreSQL), written as roll-up rows, and the days
marked done. The caller commits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import Booking, BookingStatus, Desk, Resource, ResourceKind, Site
from portal.models.kpi_rollups import KpiDeskDay, KpiRollupDay, KpiRoomDay, KpiRoomHour
from portal.timezones import local_day_bounds

# Counted as booked: everything that held (or still holds) the space. Not cancelled or declined.
BOOKED = (
    BookingStatus.PENDING,
    BookingStatus.CONFIRMED,
    BookingStatus.CHECKED_IN,
    BookingStatus.COMPLETED,
    BookingStatus.RELEASED,
)
CHECKED_IN = (BookingStatus.CHECKED_IN, BookingStatus.COMPLETED)
RELEASED_EARLY = (BookingStatus.CANCELLED, BookingStatus.COMPLETED)
_ADVISORY_NAMESPACE = 7301  # pg_advisory_xact_lock(namespace, site id): one filler per site
_MAX_RUNS = 8  # more separate stretches of missing days than this: read their whole span once


@dataclass(frozen=True)
class _Place:
    kind: str
    floor_id: int | None
    zone: str


def missing_days(session: Session, site_id: int, first: date, last: date) -> list[date]:
    done = set(
        session.scalars(
            select(KpiRollupDay.day).where(
                KpiRollupDay.site_id == site_id, KpiRollupDay.day.between(first, last)
            )
        )
    )
    return [
        d
        for d in (first + timedelta(days=n) for n in range((last - first).days + 1))
        if d not in done
    ]


def ensure(session: Session, sites: list[Site], first: date, last: date) -> int:
    """Roll up every day of [first, last] not yet rolled up at these sites; the number of days
    computed. Cheap when nothing is missing: one small query per site."""
    computed = 0
    for site in sites:
        if not missing_days(session, site.id, first, last):
            continue
        if session.get_bind().dialect.name == "postgresql":
            # Two dashboards opened at once would both fill the same days: take turns per site.
            session.execute(
                text("SELECT pg_advisory_xact_lock(:ns, :site)"),
                {"ns": _ADVISORY_NAMESPACE, "site": site.id},
            )
        days = missing_days(session, site.id, first, last)  # again, under the lock
        if days:
            _fill(session, site, days)
            computed += len(days)
    return computed


def _runs(days: list[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    if len(runs) > _MAX_RUNS:
        return [(days[0], days[-1])]
    return runs


def _fill(session: Session, site: Site, days: list[date]) -> None:
    zone = ZoneInfo(site.time_zone)
    wanted = set(days)
    for chunk_start in range(0, len(days), 500):
        chunk = days[chunk_start : chunk_start + 500]
        for model in (KpiDeskDay, KpiRoomDay, KpiRoomHour, KpiRollupDay):
            session.execute(delete(model).where(model.site_id == site.id, model.day.in_(chunk)))
    resources, desks = Resource.__table__, Desk.__table__  # plain tables: no polymorphic joins
    places = {
        row.id: _Place(row.kind, row.floor_id, row.zone or "")
        for row in session.execute(
            select(resources.c.id, resources.c.kind, resources.c.floor_id, desks.c.zone)
            .select_from(resources.outerjoin(desks, desks.c.id == resources.c.id))
            .where(
                resources.c.site_id == site.id,
                resources.c.kind.in_([ResourceKind.DESK.value, ResourceKind.ROOM.value]),
            )
        )
    }
    # (day, floor, zone) -> [booked desk ids, checked-in desk ids, no-shows, bookings]
    desk_days: dict[tuple[date, int | None, str], list] = defaultdict(lambda: [set(), set(), 0, 0])
    room_days: dict[tuple[date, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    room_hours: dict[tuple[date, int | None, int], int] = defaultdict(int)
    for run_first, run_last in _runs(days):
        start, _ = local_day_bounds(run_first, zone)
        _, end = local_day_bounds(run_last, zone)
        rows = session.execute(
            select(
                Booking.resource_id,
                Booking.start_at,
                Booking.end_at,
                Booking.status,
                Booking.checked_in_at,
            )
            .join(Resource, Resource.id == Booking.resource_id)
            .where(
                Resource.site_id == site.id,
                Booking.start_at >= start,
                Booking.start_at < end,
                Booking.status != BookingStatus.DECLINED,
            )
        )
        for resource_id, start_at, end_at, status, checked_in_at in rows:
            place = places.get(resource_id)
            if place is None:
                continue
            local_start = start_at.astimezone(zone)
            day = local_start.date()
            if day not in wanted:
                continue
            booked = status in BOOKED
            if place.kind == ResourceKind.DESK:
                entry = desk_days[(day, place.floor_id, place.zone)]
                if booked:
                    entry[0].add(resource_id)
                    entry[3] += 1
                    if status in CHECKED_IN and checked_in_at is not None:
                        entry[1].add(resource_id)
                    if status == BookingStatus.RELEASED:
                        entry[2] += 1
            else:
                entry = room_days[(day, resource_id)]
                minutes = round((end_at - start_at).total_seconds() / 60)
                if booked:
                    entry[0] += 1
                    entry[1] += minutes
                    if status == BookingStatus.RELEASED:
                        entry[2] += 1
                        entry[3] += minutes
                    _spread_hours(room_hours, day, place.floor_id, start_at, end_at, zone)
                if status in RELEASED_EARLY:
                    entry[4] += 1
    if desk_days:
        session.execute(
            insert(KpiDeskDay),
            [
                {
                    "site_id": site.id,
                    "day": day,
                    "floor_id": floor_id,
                    "zone": zone_name,
                    "booked_desk_days": len(v[0]),
                    "checked_in_desk_days": len(v[1]),
                    "no_show_bookings": v[2],
                    "bookings": v[3],
                }
                for (day, floor_id, zone_name), v in desk_days.items()
            ],
        )
    if room_days:
        session.execute(
            insert(KpiRoomDay),
            [
                {
                    "site_id": site.id,
                    "day": day,
                    "resource_id": resource_id,
                    "bookings": v[0],
                    "booked_minutes": v[1],
                    "ghost_bookings": v[2],
                    "ghost_minutes": v[3],
                    "released_bookings": v[4],
                }
                for (day, resource_id), v in room_days.items()
            ],
        )
    if room_hours:
        session.execute(
            insert(KpiRoomHour),
            [
                {
                    "site_id": site.id,
                    "day": day,
                    "floor_id": floor_id,
                    "hour": hour,
                    "booked_minutes": m,
                }
                for (day, floor_id, hour), m in room_hours.items()
            ],
        )
    now = utcnow()
    session.execute(
        insert(KpiRollupDay), [{"site_id": site.id, "day": d, "computed_at": now} for d in days]
    )


def _spread_hours(
    into: dict[tuple[date, int | None, int], int],
    day: date,
    floor_id: int | None,
    start_at: datetime,
    end_at: datetime,
    zone: ZoneInfo,
) -> None:
    """Add the booking's minutes to each local hour it covers (by real elapsed minutes, so the
    repeated hour of an autumn DST night gets both of its hours)."""
    cursor = start_at.astimezone(UTC)
    end = end_at.astimezone(UTC)
    while cursor < end:
        local = cursor.astimezone(zone)
        # Zones with half-hour offsets: the local hour ends when local minutes reach 60.
        next_hour = cursor + timedelta(
            minutes=60 - local.minute, seconds=-local.second, microseconds=-local.microsecond
        )
        step_end = min(next_hour, end)
        minutes = round((step_end - cursor).total_seconds() / 60)
        if minutes:
            into[(day, floor_id, local.hour)] += minutes
        cursor = step_end
