"""The Service desk dashboard: requests and issues opened and closed by category and site,
first-response and resolution SLA attainment, the backlog by age at the period's end and the places
with the most facility issues. SQL sums over the tickets table; each site's period starts and ends
at its own local midnight."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, false, func, literal, not_, or_, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import Floor, Resource, Ticket, TicketKind, TicketStatus
from portal.services.dashboards.period import Period
from portal.services.dashboards.scope import Scope
from portal.services.dashboards.values import Chart, DashboardData, Kpi, Series, Table, ratio
from portal.services.inbox import CATEGORY_LABELS, KIND_LABELS
from portal.timezones import local_day_bounds

LOCATIONS = 10
# Backlog age buckets: (older than this many days, label), youngest first.
AGES = (
    (0, "Under 1 day"),
    (1, "1–3 days"),
    (3, "3–7 days"),
    (7, "1–2 weeks"),
    (14, "2–4 weeks"),
    (28, "4 weeks or more"),
)
KIND_ORDER = {TicketKind.REQUEST.value: 0, TicketKind.ISSUE.value: 1, TicketKind.RETURN.value: 2}


@dataclass(frozen=True)
class _Window:
    """One site's period and comparison period as UTC instants [start, end)."""

    site_id: int
    before: datetime  # the comparison period starts
    start: datetime  # this period starts (the comparison ends)
    end: datetime  # this period ends


def _windows(scope: Scope, period: Period) -> list[_Window]:
    windows = []
    for site in scope.sites:
        zone = ZoneInfo(site.time_zone)
        windows.append(
            _Window(
                site.id,
                local_day_bounds(period.previous().first, zone)[0],
                local_day_bounds(period.first, zone)[0],
                local_day_bounds(period.last, zone)[1],
            )
        )
    return windows


def _within(windows: list[_Window], column, current: bool | None) -> ColumnElement[bool]:
    """`column` in this period (current=True), the comparison (False) or either (None), each
    site by its own bounds."""
    parts = []
    for w in windows:
        low = w.start if current else w.before
        high = w.start if current is False else w.end
        parts.append(and_(Ticket.site_id == w.site_id, column >= low, column < high))
    return or_(*parts) if parts else false()


def _finished_at() -> ColumnElement[datetime]:
    return func.coalesce(Ticket.resolved_at, Ticket.closed_at)


def category_of(kind: str, category: str) -> str:
    """ "Facility issue · Plumbing": issue and request categories share some names."""
    name = CATEGORY_LABELS.get(category, category.replace("_", " ").capitalize())
    return f"{KIND_LABELS.get(kind, kind.capitalize())} · {name}"


def build(session: Session, scope: Scope, period: Period) -> DashboardData:
    windows = _windows(scope, period)
    now_utc = utcnow()
    in_scope = Ticket.site_id.in_(scope.site_ids)
    finished_at = _finished_at()
    cur_created = _within(windows, Ticket.created_at, True)
    cur_finished = _within(windows, finished_at, True)

    opened_rows = session.execute(
        select(
            Ticket.site_id,
            Ticket.kind,
            Ticket.category,
            func.count().filter(cur_created),
            func.count().filter(not_(cur_created)),
        )
        .where(in_scope, _within(windows, Ticket.created_at, None))
        .group_by(Ticket.site_id, Ticket.kind, Ticket.category)
    ).all()
    finished_rows = session.execute(
        select(
            Ticket.site_id,
            Ticket.kind,
            Ticket.category,
            func.count().filter(cur_finished),
            func.count().filter(not_(cur_finished)),
        )
        .where(in_scope, _within(windows, finished_at, None))
        .group_by(Ticket.site_id, Ticket.kind, Ticket.category)
    ).all()
    sla_rows = session.execute(_sla_query(windows, now_utc)).all()
    backlog_rows = session.execute(_backlog_query(windows)).all()
    places = _locations(session, windows)

    sites = {s.id: s.name for s in scope.sites}
    opened = _Count()
    closed = _Count()
    by_category: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    by_site: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for site_id, kind, category, now_n, before_n in opened_rows:
        opened.add(kind, int(now_n), int(before_n))
        by_category[(kind, category)][0] += int(now_n)
        by_site[site_id][0] += int(now_n)
    for site_id, kind, category, now_n, before_n in finished_rows:
        closed.add(kind, int(now_n), int(before_n))
        by_category[(kind, category)][1] += int(now_n)
        by_site[site_id][1] += int(now_n)

    # SLA: [fr met, fr missed, res met, res missed, either missed] per period
    sla_now = [0] * 5
    sla_before = [0] * 5
    sla_by_category: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 5)
    for kind, category, *values in sla_rows:
        numbers = [int(v or 0) for v in values]
        for i in range(5):
            sla_now[i] += numbers[i]
            sla_before[i] += numbers[5 + i]
            sla_by_category[(kind, category)][i] += numbers[i]

    ages = [0] * len(AGES)
    backlog_before = 0
    for index, at_end, at_previous_end in backlog_rows:
        if index is not None:
            ages[int(index)] += int(at_end or 0)
        backlog_before += int(at_previous_end or 0)
    backlog = sum(ages)

    kpis = [
        Kpi(
            "opened",
            "Opened",
            opened.now,
            opened.before,
            "count",
            "ticket_opened",
            higher_is_better=False,
            detail=opened.detail(),
        ),
        Kpi("closed", "Closed", closed.now, closed.before, "count", "ticket_closed"),
        Kpi(
            "first_response_sla",
            "First-response SLA met",
            ratio(sla_now[0], sla_now[0] + sla_now[1]),
            ratio(sla_before[0], sla_before[0] + sla_before[1]),
            "percent",
            "ticket_first_response_sla",
            detail=f"{sla_now[0]:,} met, {sla_now[1]:,} missed",
        ),
        Kpi(
            "resolution_sla",
            "Resolution SLA met",
            ratio(sla_now[2], sla_now[2] + sla_now[3]),
            ratio(sla_before[2], sla_before[2] + sla_before[3]),
            "percent",
            "ticket_resolution_sla",
            detail=f"{sla_now[2]:,} met, {sla_now[3]:,} missed",
        ),
        Kpi(
            "sla_missed",
            "Tickets that missed an SLA",
            sla_now[4],
            sla_before[4],
            "count",
            "ticket_sla_missed",
            higher_is_better=False,
            detail="first response or resolution late",
        ),
        Kpi(
            "backlog",
            "Open at the end",
            backlog,
            backlog_before,
            "count",
            "ticket_backlog",
            higher_is_better=False,
            detail=f"{ages[-1] + ages[-2]:,} older than 2 weeks" if backlog else "",
        ),
    ]

    # One chart per kind: issue and request categories share names ("Furniture"), and short
    # labels stay readable under the bars.
    charts = [
        _by_category(
            "issues_by_category",
            "Facility issues opened and closed by category",
            {kc[1]: v for kc, v in by_category.items() if kc[0] == TicketKind.ISSUE},
        ),
        _by_category(
            "requests_by_category",
            "Requests opened and closed by category",
            {
                (kc[1] if kc[0] == TicketKind.REQUEST else "return"): v
                for kc, v in by_category.items()
                if kc[0] != TicketKind.ISSUE
            },
        ),
    ]
    if len(scope.sites) > 1:
        site_ids = [s.id for s in scope.sites]
        charts.append(
            Chart(
                "by_site",
                "Opened and closed by site",
                "bar",
                [sites[s] for s in site_ids],
                [
                    Series("Opened", [by_site[s][0] for s in site_ids], 0),
                    Series("Closed", [by_site[s][1] for s in site_ids], 1),
                ],
                "count",
                "ticket_closed",
                category_label="Site",
            )
        )
    charts.append(
        Chart(
            "backlog_by_age",
            f"Open at the end of {period.last:%-d %b %Y}, by age",
            "bar",
            [label for _days, label in AGES],
            [Series("Open tickets", ages)],
            "count",
            "ticket_backlog",
            category_label="Age",
        )
    )
    sla_categories = sorted(
        (kc for kc, v in sla_by_category.items() if any(v[:4])),
        key=lambda kc: (KIND_ORDER.get(kc[0], 9), kc[1]),
    )
    tables = [
        Table(
            "sla_by_category",
            "SLA attainment by category",
            [
                "Category",
                "1st response met",
                "missed",
                "attained",
                "Resolution met",
                "missed",
                "attained",
            ],
            [
                [
                    category_of(*kc),
                    v[0],
                    v[1],
                    ratio(v[0], v[0] + v[1]),
                    v[2],
                    v[3],
                    ratio(v[2], v[2] + v[3]),
                ]
                for kc in sla_categories
                for v in [sla_by_category[kc]]
            ],
            units=["text", "count", "count", "percent", "count", "count", "percent"],
        ),
        places,
    ]
    return DashboardData(kpis, charts, tables)


def _by_category(key: str, title: str, counts: dict[str, list[int]]) -> Chart:
    names = sorted(counts, key=lambda c: (c == "return", c))
    labels = [
        "Return tasks"
        if c == "return"
        else CATEGORY_LABELS.get(c, c.replace("_", " ").capitalize())
        for c in names
    ]
    return Chart(
        key,
        title,
        "bar",
        labels,
        [
            Series("Opened", [counts[c][0] for c in names], 0),
            Series("Closed", [counts[c][1] for c in names], 1),
        ],
        "count",
        "ticket_opened",
        category_label="Category",
    )


class _Count:
    def __init__(self) -> None:
        self.now = self.before = 0
        self.kinds: dict[str, int] = defaultdict(int)

    def add(self, kind: str, now: int, before: int) -> None:
        self.now += now
        self.before += before
        self.kinds[kind] += now

    def detail(self) -> str:
        parts = [
            f"{self.kinds[k]:,} {label.lower()}{'s' if self.kinds[k] != 1 else ''}"
            for k, label in KIND_LABELS.items()
            if self.kinds.get(k)
        ]
        return ", ".join(parts)


def _sla_query(windows: list[_Window], now: datetime):
    """Met and missed per target, for tickets whose deadline fell in each period. A target's
    outcome is known once it was met or its deadline passed; a ticket paused (waiting on the
    requester) has no resolution outcome yet, and one cancelled before a deadline with nothing
    due is left out of that target."""
    finished = _finished_at()
    cancelled = Ticket.status == TicketStatus.CANCELLED
    fr_due, res_due = Ticket.first_response_due_at, Ticket.resolution_due_at
    responded = Ticket.first_responded_at
    fr_met = and_(responded.is_not(None), responded <= fr_due)
    fr_missed = and_(
        fr_due < now,
        or_(
            responded > fr_due,
            and_(responded.is_(None), or_(finished.is_(None), finished > fr_due)),
        ),
    )
    res_met = and_(finished.is_not(None), finished <= res_due, not_(cancelled))
    res_missed = or_(
        and_(finished.is_not(None), finished > res_due),
        and_(finished.is_(None), Ticket.paused_at.is_(None), res_due < now),
    )
    columns = []
    for current in (True, False):
        fr_in = _within(windows, fr_due, current)
        res_in = _within(windows, res_due, current)
        columns += [
            func.count().filter(and_(fr_in, fr_met)),
            func.count().filter(and_(fr_in, fr_missed)),
            func.count().filter(and_(res_in, res_met)),
            func.count().filter(and_(res_in, res_missed)),
            func.count().filter(or_(and_(fr_in, fr_missed), and_(res_in, res_missed))),
        ]
    return (
        select(Ticket.kind, Ticket.category, *columns)
        .where(
            Ticket.site_id.in_([w.site_id for w in windows]),
            or_(_within(windows, fr_due, None), _within(windows, res_due, None)),
        )
        .group_by(Ticket.kind, Ticket.category)
    )


def _backlog_query(windows: list[_Window]):
    """Tickets open at the end of this period (by age bucket) and at the end of the comparison."""
    finished = _finished_at()

    def open_at(attr: str) -> ColumnElement[bool]:
        return or_(
            *(
                and_(
                    Ticket.site_id == w.site_id,
                    Ticket.created_at < getattr(w, attr),
                    or_(finished.is_(None), finished >= getattr(w, attr)),
                )
                for w in windows
            )
        )

    at_end = open_at("end")
    age = case(
        *(
            (
                and_(
                    Ticket.site_id == w.site_id, Ticket.created_at <= w.end - timedelta(days=days)
                ),
                literal(len(AGES) - 1 - i),
            )
            for i, (days, _label) in enumerate(reversed(AGES))
            if days
            for w in windows
        ),
        else_=literal(0),
    )
    # Bucketed in a subquery: grouping by an expression with bound values is not portable.
    rows = (
        select(
            case((at_end, age), else_=None).label("bucket"),
            case((at_end, 1), else_=0).label("at_end"),
            case((open_at("start"), 1), else_=0).label("at_previous_end"),
        )
        .where(
            Ticket.site_id.in_([w.site_id for w in windows]),
            or_(at_end, open_at("start")),
        )
        .subquery()
    )
    return select(
        rows.c.bucket, func.sum(rows.c.at_end), func.sum(rows.c.at_previous_end)
    ).group_by(rows.c.bucket)


def _locations(session: Session, windows: list[_Window]) -> Table:
    """The rooms, desks and floors with the most facility issues reported in the period."""
    created = _within(windows, Ticket.created_at, True)
    finished = _finished_at()
    end_of = case(*((Ticket.site_id == w.site_id, literal(w.end)) for w in windows), else_=None)
    still_open = or_(finished.is_(None), finished >= end_of)
    rows = session.execute(
        select(
            Ticket.floor_id,
            Ticket.resource_id,
            func.count(),
            func.count().filter(still_open),
        )
        .where(Ticket.kind == TicketKind.ISSUE, created)
        .group_by(Ticket.floor_id, Ticket.resource_id)
        .order_by(func.count().desc(), Ticket.floor_id, Ticket.resource_id)
        .limit(LOCATIONS)
    ).all()
    resource_ids = {r for _f, r, _n, _o in rows if r is not None}
    floor_ids = {f for f, _r, _n, _o in rows if f is not None}
    resources = {}
    if resource_ids:
        resources = {
            r.id: (r.name, r.kind, r.floor_id)
            for r in session.execute(
                select(Resource.id, Resource.name, Resource.kind, Resource.floor_id).where(
                    Resource.id.in_(resource_ids)
                )
            )
        }
        floor_ids |= {f for _n, _k, f in resources.values() if f is not None}
    floors = {}
    if floor_ids:
        floors = {
            f.id: f"{f.building.name} · {f.name}"
            for f in session.scalars(select(Floor).where(Floor.id.in_(floor_ids)))
        }
    body = []
    for floor_id, resource_id, count, open_count in rows:
        if resource_id in resources:
            name, kind, resource_floor = resources[resource_id]
            place = f"{kind.capitalize()} {name}"
            floor_id = resource_floor or floor_id
        else:
            place = "Elsewhere on the floor" if floor_id else "No place given"
        body.append([place, floors.get(floor_id, "—"), int(count), int(open_count)])
    return Table(
        "problem_locations",
        "Top problem locations",
        ["Place", "Floor", "Issues reported", "Still open at the end"],
        body,
        units=["text", "text", "count", "count"],
    )
