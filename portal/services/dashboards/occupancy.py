"""The Occupancy dashboard: who actually came in, from the door events of sites whose access-control
integration is set up: distinct people badged in per day, the peak hour, and badge-ins against desk
check-ins. Sites without door data are named as such, never counted as empty."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from portal.models import Site
from portal.models.access_control import AccessSettings, DoorEvent
from portal.models.kpi_rollups import KpiDeskDay
from portal.services.dashboards.calendar import Availability
from portal.services.dashboards.period import Period
from portal.services.dashboards.scope import Scope
from portal.services.dashboards.values import Chart, DashboardData, Kpi, Series, ratio
from portal.timezones import local_day_bounds

NO_DOOR_DATA = (
    "No door data: {names} {verb} no access-control integration set up, so Foyer does not know "
    "who came in. An admin connects it under Admin › Access control (signed webhooks or a CSV "
    "import of door events)."
)


def sites_with_door_data(session: Session, sites: list[Site]) -> list[Site]:
    """Sites whose access-control integration is set up (a webhook secret, or grants on), or
    that have imported door events."""
    ids = [s.id for s in sites]
    configured = set(
        session.scalars(
            select(AccessSettings.site_id).where(
                AccessSettings.site_id.in_(ids),
                or_(
                    AccessSettings.enabled.is_(True),
                    AccessSettings.webhook_secret_sealed != "",  # "" = no secret  # nosec B105
                ),
            )
        )
    )
    rest = [i for i in ids if i not in configured]
    if rest:
        configured |= set(
            session.scalars(
                select(DoorEvent.site_id)
                .where(DoorEvent.site_id.in_(rest))
                .group_by(DoorEvent.site_id)
            )
        )
    return [s for s in sites if s.id in configured]


def build(session: Session, scope: Scope, period: Period) -> DashboardData:
    sites = sites_with_door_data(session, list(scope.sites))
    missing = [s.name for s in scope.sites if s not in sites]
    notice = (
        NO_DOOR_DATA.format(names=", ".join(missing), verb="has" if len(missing) == 1 else "have")
        if missing
        else ""
    )
    if not sites:
        return DashboardData([], [], notice=notice)
    previous = period.previous()

    # (day, person) pairs and entries by hour, bucketed in each site's zone.
    people: dict[date, set[tuple[int, str]]] = defaultdict(set)
    by_hour: Counter[int] = Counter()
    for site in sites:
        zone = ZoneInfo(site.time_zone)
        start, _ = local_day_bounds(previous.first, zone)
        _, end = local_day_bounds(period.last, zone)
        for person, occurred_at in session.execute(
            select(DoorEvent.person, DoorEvent.occurred_at).where(
                DoorEvent.site_id == site.id,
                DoorEvent.direction == "in",
                DoorEvent.occurred_at >= start,
                DoorEvent.occurred_at < end,
            )
        ):
            local = occurred_at.astimezone(zone)
            people[local.date()].add((site.id, person.lower()))
            if local.date() >= period.first:
                by_hour[local.hour] += 1

    desk_rows = session.execute(
        select(KpiDeskDay.day, func.sum(KpiDeskDay.checked_in_desk_days))
        .where(
            KpiDeskDay.site_id.in_([s.id for s in sites]),
            KpiDeskDay.day.between(previous.first, period.last),
        )
        .group_by(KpiDeskDay.day)
    ).all()
    desks = {day: int(n or 0) for day, n in desk_rows}

    def person_days(days: list[date]) -> tuple[int, int]:
        counts = [len(people[d]) for d in days if people.get(d)]
        return sum(counts), len(counts)

    now_total, now_days = person_days(period.each_day())
    before_total, before_days = person_days(previous.each_day())
    desk_now = sum(desks.get(d, 0) for d in period.each_day())
    desk_before = sum(desks.get(d, 0) for d in previous.each_day())
    busiest = max(period.each_day(), key=lambda d: (len(people.get(d, ())), -d.toordinal()))
    peak_hour = max(by_hour, key=lambda h: (by_hour[h], -h)) if by_hour else None

    kpis = [
        Kpi(
            "people_per_day",
            "People in per day",
            round(now_total / now_days, 1) if now_days else None,
            round(before_total / before_days, 1) if before_days else None,
            "count",
            "occupancy_people",
            detail=f"{now_total:,} people-days over {now_days} days with entries",
        ),
        Kpi(
            "busiest_day",
            "Busiest day",
            len(people.get(busiest, ())) if now_days else None,
            None,
            "count",
            "occupancy_people",
            detail=f"{busiest:%a %-d %b}: people badged in" if now_days else "",
        ),
        Kpi(
            "peak_hour",
            "Peak hour",
            by_hour[peak_hour] if peak_hour is not None else None,
            None,
            "count",
            "occupancy_peak_hour",
            detail=f"entries {peak_hour:02d}:00–{peak_hour + 1:02d}:00"
            if peak_hour is not None
            else "",
        ),
        Kpi(
            "desk_ratio",
            "Desk check-ins per person in",
            ratio(desk_now, now_total),
            ratio(desk_before, before_total),
            "percent",
            "occupancy_desk_ratio",
            detail=f"{desk_now:,} checked-in desk-days",
        ),
    ]

    availability = Availability(session, sites, [period])
    days = [
        d
        for d in period.each_day()
        if people.get(d) or desks.get(d) or any(availability.is_open(s.id, d) for s in sites)
    ]
    hours = sorted(by_hour) if by_hour else []
    if hours:
        hours = list(range(hours[0], hours[-1] + 1))
    charts = [
        Chart(
            "people_by_day",
            "People badged in and desk check-ins by day",
            "bar",
            [f"{d:%a %-d %b}" for d in days],
            [
                Series("People badged in", [len(people.get(d, ())) for d in days], 0),
                Series("Checked-in desk-days", [desks.get(d, 0) for d in days], 1),
            ],
            "count",
            "occupancy_desk_ratio",
            category_label="Day",
        ),
        Chart(
            "entries_by_hour",
            "Entries by hour of the day",
            "bar",
            [f"{h:02d}:00" for h in hours],
            [Series("Entries", [by_hour[h] for h in hours], 0)],
            "count",
            "occupancy_peak_hour",
            category_label="Hour",
        ),
    ]
    return DashboardData(kpis, charts, notice=notice)
