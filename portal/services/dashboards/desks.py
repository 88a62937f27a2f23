"""The Desks dashboard: booked, checked-in and no-show desk-days by day, floor and zone; utilisation;
peak days; assigned desks nobody has used for a while. SQL sums over the daily roll-ups."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import Booking, Desk, DeskAssignment, Floor, User
from portal.models.kpi_rollups import KpiDeskDay
from portal.services.dashboards.calendar import Availability
from portal.services.dashboards.period import Period
from portal.services.dashboards.rollups import CHECKED_IN
from portal.services.dashboards.scope import Scope
from portal.services.dashboards.values import Chart, DashboardData, Kpi, Series, Table, ratio

UNUSED_CHOICES = (14, 30, 60)


@dataclass
class _Totals:
    booked: int = 0
    checked_in: int = 0
    no_shows: int = 0
    bookings: int = 0
    available: int = 0

    def add(self, booked: int, checked_in: int, no_shows: int, bookings: int) -> None:
        self.booked += booked
        self.checked_in += checked_in
        self.no_shows += no_shows
        self.bookings += bookings


def build(
    session: Session, scope: Scope, period: Period, unused_days: int = 30, floor_link=None
) -> DashboardData:
    previous = period.previous()
    floor_id = scope.floor.id if scope.floor else None

    rollup = select(
        KpiDeskDay.site_id,
        KpiDeskDay.day,
        KpiDeskDay.floor_id,
        KpiDeskDay.zone,
        func.sum(KpiDeskDay.booked_desk_days),
        func.sum(KpiDeskDay.checked_in_desk_days),
        func.sum(KpiDeskDay.no_show_bookings),
        func.sum(KpiDeskDay.bookings),
    ).where(
        KpiDeskDay.site_id.in_(scope.site_ids),
        KpiDeskDay.day.between(previous.first, period.last),
    )
    if floor_id:
        rollup = rollup.where(KpiDeskDay.floor_id == floor_id)
    rows = session.execute(
        rollup.group_by(KpiDeskDay.site_id, KpiDeskDay.day, KpiDeskDay.floor_id, KpiDeskDay.zone)
    ).all()

    desks_q = select(
        Desk.id,
        Desk.site_id,
        Desk.floor_id,
        Desk.zone,
        Desk.assignment,
        Desk.assigned_user_id,
        Desk.name,
    ).where(Desk.site_id.in_(scope.site_ids), Desk.active.is_(True))
    if floor_id:
        desks_q = desks_q.where(Desk.floor_id == floor_id)
    desks = session.execute(desks_q).all()
    floors = {
        f.id: f
        for f in session.scalars(
            select(Floor).where(Floor.id.in_({d.floor_id for d in desks} | {r[2] for r in rows}))
        )
    }
    availability = Availability(session, list(scope.sites), [period, previous])

    # Available desk-days per (site, floor, zone) and day: open days times desks in use,
    # less the desks blacked out that day.
    groups: Counter[tuple[int, int | None, str]] = Counter(
        (d.site_id, d.floor_id, d.zone or "") for d in desks
    )
    closed_desks: dict[date, Counter] = defaultdict(Counter)
    for d in desks:
        for day in availability.resource_closed.get(d.id, ()):
            closed_desks[day][(d.site_id, d.floor_id, d.zone or "")] += 1

    def available(day: date, key: tuple[int, int | None, str]) -> int:
        if not availability.is_open(key[0], day):
            return 0
        return groups[key] - closed_desks[day][key]

    now_totals, before_totals = _Totals(), _Totals()
    by_day: dict[date, _Totals] = defaultdict(_Totals)
    by_floor: dict[int | None, _Totals] = defaultdict(_Totals)
    by_zone: dict[tuple[int | None, str], _Totals] = defaultdict(_Totals)
    for _site_id, day, f_id, zone, booked, checked_in, no_shows, bookings in rows:
        values = (int(booked or 0), int(checked_in or 0), int(no_shows or 0), int(bookings or 0))
        if day < period.first:
            before_totals.add(*values)
            continue
        now_totals.add(*values)
        by_day[day].add(*values)
        by_floor[f_id].add(*values)
        by_zone[(f_id, zone)].add(*values)
    for day in previous.each_day():
        before_totals.available += sum(available(day, key) for key in groups)
    for day in period.each_day():
        for key in groups:
            count = available(day, key)
            if count:
                now_totals.available += count
                by_day[day].available += count
                by_floor[key[1]].available += count
                by_zone[(key[1], key[2])].available += count

    # Chart labels are short: the building is named only where floors of several are shown.
    several_buildings = len({f.building_id for f in floors.values()}) > 1

    def floor_name(f_id: int | None) -> str:
        floor = floors.get(f_id) if f_id else None
        if floor is None:
            return "No floor"
        return f"{floor.building.name} · {floor.name}" if several_buildings else floor.name

    kpis = [
        Kpi(
            "utilisation",
            "Desk utilisation",
            ratio(now_totals.checked_in, now_totals.available),
            ratio(before_totals.checked_in, before_totals.available),
            "percent",
            "desk_utilisation",
            detail=f"{now_totals.checked_in:,} of {now_totals.available:,} available desk-days",
        ),
        Kpi(
            "booked",
            "Booked desk-days",
            now_totals.booked,
            before_totals.booked,
            "count",
            "desk_booked",
        ),
        Kpi(
            "checked_in",
            "Checked-in desk-days",
            now_totals.checked_in,
            before_totals.checked_in,
            "count",
            "desk_checked_in",
        ),
        Kpi(
            "no_shows",
            "No-shows",
            now_totals.no_shows,
            before_totals.no_shows,
            "count",
            "desk_no_shows",
            higher_is_better=False,
            detail=_rate_text(now_totals.no_shows, now_totals.bookings, "of bookings"),
        ),
    ]

    days = [d for d in period.each_day() if by_day[d].available or by_day[d].booked]
    charts = [
        Chart(
            "by_day",
            "Desk-days by day",
            "bar",
            [f"{d:%a %-d %b}" for d in days],
            [
                Series("Booked", [by_day[d].booked for d in days], 1),
                Series("Checked in", [by_day[d].checked_in for d in days], 0),
                Series("No-shows", [by_day[d].no_shows for d in days], 2),
            ],
            "count",
            "desk_booked",
            category_label="Day",
        ),
        Chart(
            "utilisation_by_day",
            "Utilisation by day",
            "line",
            [f"{d:%a %-d %b}" for d in days],
            [
                Series(
                    "Utilisation", [ratio(by_day[d].checked_in, by_day[d].available) for d in days]
                )
            ],
            "percent",
            "desk_utilisation",
            category_label="Day",
        ),
    ]
    floor_ids = sorted(
        by_floor,
        key=lambda f: (floors[f].building.name, floors[f].level) if f in floors else ("", 0),
    )
    if not scope.floor:
        charts.append(
            Chart(
                "by_floor",
                "Utilisation by floor",
                "bar",
                [floor_name(f) for f in floor_ids],
                [
                    Series(
                        "Utilisation",
                        [ratio(by_floor[f].checked_in, by_floor[f].available) for f in floor_ids],
                    )
                ],
                "percent",
                "desk_utilisation",
                category_label="Floor",
                links=[floor_link(f) if floor_link and f else None for f in floor_ids],
            )
        )
    zones = sorted(by_zone, key=lambda k: (floor_name(k[0]), k[1]))
    charts.append(
        Chart(
            "by_zone",
            "Utilisation by zone",
            "bar",
            [
                f"{floor_name(f)} · {z or 'No zone'}" if not scope.floor else (z or "No zone")
                for f, z in zones
            ],
            [
                Series(
                    "Utilisation",
                    [ratio(by_zone[k].checked_in, by_zone[k].available) for k in zones],
                ),
            ],
            "percent",
            "desk_utilisation",
            category_label="Zone",
        )
    )

    peak = sorted(
        (d for d in period.each_day() if by_day[d].checked_in),
        key=lambda d: (-by_day[d].checked_in, d),
    )[:5]
    tables = [
        Table(
            "by_floor_zone",
            "Desk-days by floor and zone",
            ["Floor · zone", "Booked", "Checked in", "No-shows", "Available", "Utilisation"],
            [
                [
                    f"{floor_name(f)} · {z or 'No zone'}",
                    by_zone[(f, z)].booked,
                    by_zone[(f, z)].checked_in,
                    by_zone[(f, z)].no_shows,
                    by_zone[(f, z)].available,
                    ratio(by_zone[(f, z)].checked_in, by_zone[(f, z)].available),
                ]
                for f, z in zones
            ],
            units=["text", "count", "count", "count", "count", "percent"],
        ),
        Table(
            "peak_days",
            "Peak days",
            ["Day", "Checked-in desk-days", "Available desk-days", "Utilisation"],
            [
                [
                    f"{d:%a %-d %b %Y}",
                    by_day[d].checked_in,
                    by_day[d].available,
                    ratio(by_day[d].checked_in, by_day[d].available),
                ]
                for d in peak
            ],
            units=["text", "count", "count", "percent"],
        ),
        _assigned_unused(session, scope, period, desks, floor_name, unused_days),
    ]
    if peak:
        top = peak[0]
        kpis.append(
            Kpi(
                "peak",
                "Peak day",
                by_day[top].checked_in,
                None,
                "count",
                "desk_peak",
                detail=f"{top:%a %-d %b}: {_percent(ratio(by_day[top].checked_in, by_day[top].available))} used",
            )
        )
    return DashboardData(kpis, charts, tables)


def _assigned_unused(session, scope, period, desks, floor_name, unused_days: int) -> Table:
    assigned = {d.id: d for d in desks if d.assignment == DeskAssignment.ASSIGNED}
    since = period.last - timedelta(days=unused_days - 1)
    last_use: dict[int, object] = {}
    if assigned:
        lookback = period.last - timedelta(days=365)
        last_use = dict(
            session.execute(
                select(Booking.resource_id, func.max(Booking.start_at))
                .where(
                    Booking.resource_id.in_(list(assigned)),
                    Booking.status.in_(CHECKED_IN),
                    Booking.start_at >= _utc_midnight(lookback),
                    Booking.start_at < _utc_midnight(period.last + timedelta(days=2)),
                )
                .group_by(Booking.resource_id)
            ).all()
        )
    people = (
        {
            u.id: u.name
            for u in session.execute(
                select(User.id, User.name).where(
                    User.id.in_(
                        {d.assigned_user_id for d in assigned.values() if d.assigned_user_id}
                    )
                )
            )
        }
        if assigned
        else {}
    )
    rows = []
    for desk in sorted(assigned.values(), key=lambda d: d.name):
        used = last_use.get(desk.id)
        site = next(s for s in scope.sites if s.id == desk.site_id)
        used_day = used.astimezone(ZoneInfo(site.time_zone)).date() if used else None
        if used_day is None or used_day < since:
            rows.append(
                [
                    desk.name,
                    floor_name(desk.floor_id),
                    people.get(desk.assigned_user_id, "Nobody"),
                    used_day.isoformat() if used_day else "Not in the last year",
                ]
            )
    return Table(
        "assigned_unused",
        f"Assigned desks unused for {unused_days} days",
        ["Desk", "Floor", "Assigned to", "Last checked in"],
        rows,
        units=["text", "text", "text", "text"],
    )


def _utc_midnight(day: date):
    return datetime.combine(day, time(), tzinfo=UTC)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _rate_text(part: int, whole: int, what: str) -> str:
    value = ratio(part, whole)
    return "" if value is None else f"{value:.1f}% {what}"
