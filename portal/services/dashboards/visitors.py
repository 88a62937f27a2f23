"""The Visitors dashboard: visits by day and by host department, how long visits last,
pre-registered against walk-in visits, and deny-list stops at the kiosk. SQL sums over the visits
table, whose rows keep site, day, kind, status, host and times after the retention job erased the
visitor's personal data, so old periods still add up."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import Float, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from portal.models import User, Visit, VisitKind, VisitStatus
from portal.services.dashboards.period import Period
from portal.services.dashboards.scope import Scope
from portal.services.dashboards.values import Chart, DashboardData, Kpi, Series, Table, ratio

ARRIVED = (VisitStatus.CHECKED_IN, VisitStatus.CHECKED_OUT)
DEPARTMENTS = 12  # the chart's bars; the rest are added up as "Other departments"
NO_DEPARTMENT = "No department"
# Visit length buckets: (upper bound in minutes, label); the last one is open-ended.
LENGTHS = (
    (30, "Under 30 min"),
    (60, "30–60 min"),
    (120, "1–2 h"),
    (240, "2–4 h"),
    (480, "4–8 h"),
    (None, "8 h or more"),
)


def visit_seconds(session: Session) -> ColumnElement[float]:
    """Checked-out minus checked-in time in seconds, in the dialect's own date arithmetic."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite keeps UTC timestamps as text; julianday() reads them.
        return cast(
            (func.julianday(Visit.checked_out_at) - func.julianday(Visit.checked_in_at)) * 86400.0,
            Float,
        )
    return cast(func.extract("epoch", Visit.checked_out_at - Visit.checked_in_at), Float)


def build(session: Session, scope: Scope, period: Period) -> DashboardData:
    previous = period.previous()
    seconds = visit_seconds(session)
    arrived = Visit.status.in_(ARRIVED)
    timed = and_(
        arrived,
        Visit.checked_in_at.is_not(None),
        Visit.checked_out_at.is_not(None),
        Visit.checked_out_at >= Visit.checked_in_at,
    )
    in_scope = Visit.site_id.in_(scope.site_ids)

    # One row per (day, kind) over both periods: arrivals, deny-list stops and visit lengths.
    day_rows = session.execute(
        select(
            Visit.local_date,
            Visit.kind,
            func.count().filter(arrived),
            func.count().filter(Visit.status == VisitStatus.DENIED),
            func.count().filter(timed),
            func.coalesce(func.sum(case((timed, seconds), else_=literal(0.0))), 0.0),
        )
        .where(in_scope, Visit.local_date.between(previous.first, period.last))
        .group_by(Visit.local_date, Visit.kind)
    ).all()
    department_rows = session.execute(
        select(User.department, Visit.kind, func.count())
        .join(User, User.id == Visit.host_id)
        .where(in_scope, arrived, Visit.local_date.between(period.first, period.last))
        .group_by(User.department, Visit.kind)
    ).all()
    bucket = case(
        *(
            (seconds < upper * 60, literal(i))
            for i, (upper, _label) in enumerate(LENGTHS)
            if upper is not None
        ),
        else_=literal(len(LENGTHS) - 1),
    )
    # Bucketed in a subquery: grouping by an expression with bound values is not portable.
    lengths = (
        select(bucket.label("bucket"))
        .where(in_scope, timed, Visit.local_date.between(period.first, period.last))
        .subquery()
    )
    length_rows = session.execute(
        select(lengths.c.bucket, func.count()).group_by(lengths.c.bucket)
    ).all()

    now = _Totals()
    before = _Totals()
    by_day: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])  # invited, walk-in, denied
    for day, kind, visits, denied, timed_visits, total_seconds in day_rows:
        totals = before if day < period.first else now
        totals.add(kind, int(visits), int(denied), int(timed_visits), float(total_seconds or 0))
        if day >= period.first:
            row = by_day[day]
            row[0 if kind == VisitKind.INVITED else 1] += int(visits)
            row[2] += int(denied)

    kpis = [
        Kpi("visits", "Visits", now.visits, before.visits, "count", "visitor_visits"),
        Kpi(
            "average_length",
            "Average visit length",
            now.average_hours,
            before.average_hours,
            "hours",
            "visitor_length",
            detail=_length_detail(now),
        ),
        Kpi(
            "pre_registered",
            "Pre-registered",
            ratio(now.invited, now.visits),
            ratio(before.invited, before.visits),
            "percent",
            "visitor_pre_registered",
            detail=f"{now.invited:,} invited, {now.walk_ins:,} walk-ins",
        ),
        Kpi(
            "deny_stops",
            "Deny-list stops",
            now.denied,
            before.denied,
            "count",
            "visitor_deny_stops",
            higher_is_better=False,
            detail="stopped at the kiosk, sent to reception",
        ),
    ]

    days = period.each_day()
    charts = [
        Chart(
            "visits_by_day",
            "Visits by day",
            "stacked",
            [f"{d:%a %-d %b}" for d in days],
            [
                Series("Pre-registered", [by_day[d][0] if d in by_day else 0 for d in days], 0),
                Series("Walk-in", [by_day[d][1] if d in by_day else 0 for d in days], 1),
            ],
            "count",
            "visitor_visits",
            category_label="Day",
        ),
        _by_department(department_rows),
        Chart(
            "visit_lengths",
            "How long visits last",
            "bar",
            [label for _upper, label in LENGTHS],
            [
                Series(
                    "Visits",
                    [
                        next((int(n) for b, n in length_rows if int(b) == i), 0)
                        for i in range(len(LENGTHS))
                    ],
                )
            ],
            "count",
            "visitor_length",
            category_label="Length",
            note="Only visits with both a check-in and a check-out time; visitors still in "
            "the building are left out.",
        ),
    ]
    stops = [[f"{d:%a %-d %b %Y}", by_day[d][2]] for d in days if d in by_day and by_day[d][2]]
    tables = [
        Table(
            "deny_stops",
            "Deny-list stops by day",
            ["Day", "Stops"],
            stops,
            units=["text", "count"],
        )
    ]
    return DashboardData(kpis, charts, tables)


class _Totals:
    """Counts for one period."""

    def __init__(self) -> None:
        self.invited = self.walk_ins = self.denied = self.timed = 0
        self.seconds = 0.0

    def add(self, kind: str, visits: int, denied: int, timed: int, seconds: float) -> None:
        if kind == VisitKind.INVITED:
            self.invited += visits
        else:
            self.walk_ins += visits
        self.denied += denied
        self.timed += timed
        self.seconds += seconds

    @property
    def visits(self) -> int:
        return self.invited + self.walk_ins

    @property
    def average_hours(self) -> float | None:
        return round(self.seconds / self.timed / 3600, 2) if self.timed else None


def _length_detail(totals: _Totals) -> str:
    if not totals.timed:
        return "no visit with a check-out yet"
    minutes = round(totals.seconds / totals.timed / 60)
    hours, rest = divmod(minutes, 60)
    shown = f"{hours} h {rest} min" if hours else f"{rest} min"
    return f"{shown} over {totals.timed:,} visit{'s' if totals.timed != 1 else ''}"


def _by_department(rows: list) -> Chart:
    """Arrived visits per host department, biggest first; the long tail added up."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for department, kind, n in rows:
        name = (department or "").strip() or NO_DEPARTMENT
        counts[name][0 if kind == VisitKind.INVITED else 1] += int(n)
    ranked = sorted(counts.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    shown, rest = ranked[:DEPARTMENTS], ranked[DEPARTMENTS:]
    if rest:
        shown.append(
            (
                f"Other departments ({len(rest)})",
                [sum(v[0] for _k, v in rest), sum(v[1] for _k, v in rest)],
            )
        )
    return Chart(
        "visits_by_department",
        "Visits by host department",
        "stacked",
        [name for name, _v in shown],
        [
            Series("Pre-registered", [v[0] for _n, v in shown], 0),
            Series("Walk-in", [v[1] for _n, v in shown], 1),
        ],
        "count",
        "visitor_departments",
        category_label="Host department",
    )
