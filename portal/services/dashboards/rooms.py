"""The Rooms dashboard: booked against available hours, ghost meetings, bookings released early,
capacity fit, busiest rooms and a weekday-by-hour heatmap. SQL sums over the daily roll-ups."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import Floor, Room
from portal.models.kpi_rollups import KpiRoomDay, KpiRoomHour
from portal.services.dashboards.calendar import Availability, open_hours
from portal.services.dashboards.period import Period
from portal.services.dashboards.scope import Scope
from portal.services.dashboards.values import Chart, DashboardData, Kpi, Series, Table, ratio

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SIZES = ((2, 4, "2–4 seats"), (5, 8, "5–8 seats"), (9, 12, "9–12 seats"), (13, 10_000, "13+ seats"))
BUSIEST = 10


def build(session: Session, scope: Scope, period: Period) -> DashboardData:
    previous = period.previous()
    rooms_q = select(Room).where(Room.site_id.in_(scope.site_ids), Room.active.is_(True))
    if scope.floor:
        rooms_q = rooms_q.where(Room.floor_id == scope.floor.id)
    rooms = {r.id: r for r in session.scalars(rooms_q)}
    floors = {
        f.id: f
        for f in session.scalars(
            select(Floor).where(Floor.id.in_({r.floor_id for r in rooms.values()}))
        )
    }
    sites = {s.id: s for s in scope.sites}
    availability = Availability(session, list(scope.sites), [period, previous])

    sums = (
        func.sum(KpiRoomDay.bookings),
        func.sum(KpiRoomDay.booked_minutes),
        func.sum(KpiRoomDay.ghost_bookings),
        func.sum(KpiRoomDay.ghost_minutes),
        func.sum(KpiRoomDay.released_bookings),
    )
    where = [KpiRoomDay.site_id.in_(scope.site_ids)]
    if scope.floor:
        where.append(
            KpiRoomDay.resource_id.in_(select(Room.id).where(Room.floor_id == scope.floor.id))
        )
    # One row per day (both periods) and one per room (this period): summed in SQL.
    day_rows = session.execute(
        select(KpiRoomDay.day, *sums)
        .where(*where, KpiRoomDay.day.between(previous.first, period.last))
        .group_by(KpiRoomDay.day)
    ).all()
    room_rows = session.execute(
        select(KpiRoomDay.resource_id, *sums)
        .where(*where, KpiRoomDay.day.between(period.first, period.last))
        .group_by(KpiRoomDay.resource_id)
    ).all()
    hours_q = (
        select(
            KpiRoomHour.site_id,
            KpiRoomHour.day,
            KpiRoomHour.hour,
            func.sum(KpiRoomHour.booked_minutes),
        )
        .where(
            KpiRoomHour.site_id.in_(scope.site_ids),
            KpiRoomHour.day.between(period.first, period.last),
        )
        .group_by(KpiRoomHour.site_id, KpiRoomHour.day, KpiRoomHour.hour)
    )
    if scope.floor:
        hours_q = hours_q.where(KpiRoomHour.floor_id == scope.floor.id)
    hour_rows = session.execute(hours_q).all()

    # Available hours per room and day: open days, not blacked out, times the opening hours.
    def room_available(room: Room, day: date) -> float:
        if not availability.resource_open(room.site_id, room.id, day):
            return 0.0
        return open_hours(sites[room.site_id])

    available_by_day: dict[date, float] = defaultdict(float)
    available_by_room: dict[int, float] = defaultdict(float)
    for day in [*previous.each_day(), *period.each_day()]:
        for room in rooms.values():
            hours = room_available(room, day)
            if hours:
                available_by_day[day] += hours
                if day >= period.first:
                    available_by_room[room.id] += hours

    now = dict(bookings=0, minutes=0, ghosts=0, ghost_minutes=0, released=0)
    before = dict(now)
    by_day: dict[date, list[int]] = {}
    for day, bookings, minutes, ghosts, ghost_minutes, released in day_rows:
        values = [int(v or 0) for v in (bookings, minutes, ghosts, ghost_minutes, released)]
        target = before if day < period.first else now
        for key, value in zip(target, values, strict=True):
            target[key] += value
        if day >= period.first:
            by_day[day] = values
    available_now = sum(available_by_day[d] for d in period.each_day())
    available_before = sum(available_by_day[d] for d in previous.each_day())

    kpis = [
        Kpi(
            "occupancy",
            "Room occupancy",
            ratio(now["minutes"] / 60, available_now),
            ratio(before["minutes"] / 60, available_before),
            "percent",
            "room_occupancy",
            detail=f"{now['minutes'] / 60:,.1f} of {available_now:,.0f} available hours",
        ),
        Kpi(
            "booked_hours",
            "Booked hours",
            round(now["minutes"] / 60, 1),
            round(before["minutes"] / 60, 1),
            "hours",
            "room_booked_hours",
        ),
        Kpi(
            "ghosts",
            "Ghost meetings",
            now["ghosts"],
            before["ghosts"],
            "count",
            "room_ghosts",
            higher_is_better=False,
            detail=_rate(now["ghosts"], now["bookings"], "of bookings"),
        ),
        Kpi(
            "released",
            "Released early",
            now["released"],
            before["released"],
            "count",
            "room_released",
            detail=f"{now['bookings']:,} bookings in all",
        ),
    ]

    days = [d for d in period.each_day() if available_by_day[d] or d in by_day]
    zero = [0, 0, 0, 0, 0]
    charts = [
        Chart(
            "hours_by_day",
            "Booked hours by day",
            "stacked",
            [f"{d:%a %-d %b}" for d in days],
            [
                Series(
                    "Used",
                    [
                        round((by_day.get(d, zero)[1] - by_day.get(d, zero)[3]) / 60, 1)
                        for d in days
                    ],
                    0,
                ),
                Series("Ghost", [round(by_day.get(d, zero)[3] / 60, 1) for d in days], 1),
            ],
            "hours",
            "room_booked_hours",
            category_label="Day",
        ),
        Chart(
            "occupancy_by_day",
            "Occupancy by day",
            "line",
            [f"{d:%a %-d %b}" for d in days],
            [
                Series(
                    "Occupancy",
                    [ratio(by_day.get(d, zero)[1] / 60, available_by_day[d]) for d in days],
                )
            ],
            "percent",
            "room_occupancy",
            category_label="Day",
        ),
        _heatmap(scope, period, availability, rooms, hour_rows),
    ]

    # Capacity fit: booked hours by the size of the room.
    size_minutes = [0] * len(SIZES)
    size_rooms = [0] * len(SIZES)
    for room in rooms.values():
        for i, (low, high, _label) in enumerate(SIZES):
            if low <= room.capacity <= high or (i == 0 and room.capacity < low):
                size_rooms[i] += 1
                break
    by_room = {row[0]: [int(v or 0) for v in row[1:]] for row in room_rows}
    for room_id, values in by_room.items():
        room = rooms.get(room_id)
        if room is None:
            continue
        for i, (low, high, _label) in enumerate(SIZES):
            if low <= room.capacity <= high or (i == 0 and room.capacity < low):
                size_minutes[i] += values[1]
                break
    charts.append(
        Chart(
            "capacity_fit",
            "Booked hours by room size",
            "bar",
            [
                f"{label} ({n} room{'s' if n != 1 else ''})"
                for (_l, _h, label), n in zip(SIZES, size_rooms, strict=True)
            ],
            [Series("Booked hours", [round(m / 60, 1) for m in size_minutes])],
            "hours",
            "room_capacity_fit",
            note="Foyer does not record how many people attend a booking, so this shows booked "
            "hours by room size rather than attendees against seats.",
            category_label="Room size",
        )
    )

    busiest = sorted(by_room.items(), key=lambda item: (-item[1][1], item[0]))[:BUSIEST]
    rows = []
    for room_id, values in busiest:
        room = rooms.get(room_id)
        if room is None:
            continue
        floor = floors.get(room.floor_id)
        rows.append(
            [
                room.name,
                f"{floor.building.name} · {floor.name}" if floor else "",
                room.capacity,
                values[0],
                round(values[1] / 60, 1),
                ratio(values[1] / 60, available_by_room[room_id]),
                values[2],
            ]
        )
    tables = [
        Table(
            "busiest_rooms",
            "Busiest rooms",
            ["Room", "Floor", "Seats", "Bookings", "Booked hours", "Occupancy", "Ghost meetings"],
            rows,
            units=["text", "text", "count", "count", "hours", "percent", "count"],
        )
    ]
    return DashboardData(kpis, charts, tables)


def _heatmap(scope: Scope, period: Period, availability: Availability, rooms, hour_rows) -> Chart:
    """Occupancy by weekday (rows) and local hour (columns) over the opening hours."""
    sites = {s.id: s for s in scope.sites}
    hours = sorted(
        {
            h
            for s in scope.sites
            for h in range(s.opens_at.hour, s.closes_at.hour + (1 if s.closes_at.minute else 0))
        }
    )
    rooms_per_site: dict[int, int] = defaultdict(int)
    for room in rooms.values():
        rooms_per_site[room.site_id] += 1
    # Denominator: rooms in use x 60 minutes x open days of that weekday in the period.
    capacity: dict[tuple[int, int], float] = defaultdict(float)
    weekdays_seen: set[int] = set()
    for day in period.each_day():
        for site_id, site in sites.items():
            if not availability.is_open(site_id, day):
                continue
            weekdays_seen.add(day.weekday())
            for hour in hours:
                if (
                    site.opens_at.hour
                    <= hour
                    < site.closes_at.hour + (1 if site.closes_at.minute else 0)
                ):
                    capacity[(day.weekday(), hour)] += rooms_per_site[site_id] * 60
    booked: dict[tuple[int, int], int] = defaultdict(int)
    for _site_id, day, hour, minutes in hour_rows:
        booked[(day.weekday(), hour)] += int(minutes or 0)
    weekdays = sorted(weekdays_seen | {wd for wd, _h in booked})
    return Chart(
        "heatmap",
        "Busy hours: occupancy by weekday and hour",
        "heatmap",
        [WEEKDAYS[wd] for wd in weekdays],
        [
            Series(
                f"{hour:02d}:00",
                [ratio(booked[(wd, hour)], capacity[(wd, hour)]) or 0.0 for wd in weekdays],
            )
            for hour in hours
        ],
        "percent",
        "room_heatmap",
        category_label="Weekday",
    )


def _rate(part: int, whole: int, what: str) -> str:
    value = ratio(part, whole)
    return "" if value is None else f"{value:.1f}% {what}"
