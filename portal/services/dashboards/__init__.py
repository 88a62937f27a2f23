"""Coordinator dashboards: a registry of dashboards, each one service module that sums numbers in SQL
for a scope (sites, maybe a floor) and a period, and returns KPI tiles, charts and tables.

Adding a dashboard: write portal/services/dashboards/<name>.py with
`build(session, scope, period, **options) -> DashboardData`, put its formulas in formulas.py, and add
a `Dashboard` to DASHBOARDS below; the pages, downloads and docs/kpis.md follow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from portal.services.dashboards import (
    desks,
    occupancy,
    rollups,
    rooms,
    service_desk,
    spend,
    visitors,
)
from portal.services.dashboards.period import Period
from portal.services.dashboards.scope import Scope
from portal.services.dashboards.values import DashboardData


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    summary: str
    build: Callable[..., DashboardData]
    uses_floor: bool = False  # offers the floor filter
    rollups: bool = False  # reads the booking roll-ups (filled before building)
    headline: str = ""  # the KPI shown on the hub's card


DASHBOARDS: dict[str, Dashboard] = {
    d.slug: d
    for d in (
        Dashboard(
            "desks",
            "Desks",
            "Booked, checked-in and no-show desk-days by day, floor and zone; utilisation; peak "
            "days; assigned desks nobody uses.",
            desks.build,
            uses_floor=True,
            rollups=True,
            headline="utilisation",
        ),
        Dashboard(
            "rooms",
            "Rooms",
            "Booked against available hours, ghost meetings, bookings released early, room sizes, "
            "busiest rooms and hours.",
            rooms.build,
            uses_floor=True,
            rollups=True,
            headline="occupancy",
        ),
        Dashboard(
            "service-desk",
            "Service desk",
            "Requests and issues opened and closed by category and site, first-response and "
            "resolution SLAs met and missed, the backlog by age and the top problem locations.",
            service_desk.build,
            headline="sla_missed",
        ),
        Dashboard(
            "visitors",
            "Visitors",
            "Visits by day and by host department, average visit length, pre-registered against "
            "walk-in visits, and deny-list stops at the kiosk.",
            visitors.build,
            headline="visits",
        ),
        Dashboard(
            "spend",
            "Spend and stock",
            "Fulfilled spend by category and month against the budgets, over-budget months "
            "flagged, top items, stock value and items to reorder.",
            spend.build,
            headline="spend",
        ),
        Dashboard(
            "occupancy",
            "Occupancy",
            "Who came in, from badge events: people per day, the peak hour, and badge-ins "
            "against desk check-ins. Sites with an access-control integration only.",
            occupancy.build,
            rollups=True,  # desk check-ins come from the desk roll-ups
            headline="people_per_day",
        ),
    )
}


def build(
    session: Session, dashboard: Dashboard, scope: Scope, period: Period, **options: Any
) -> DashboardData:
    """The dashboard's numbers; roll-ups it reads must be filled first (`prepare`)."""
    return dashboard.build(session, scope, period, **options)


def prepare(session: Session, dashboard: Dashboard, scope: Scope, period: Period) -> int:
    """Fill the roll-ups this dashboard reads for the period and its comparison; the caller
    commits. Returns the number of days computed."""
    if not dashboard.rollups:
        return 0
    return rollups.ensure(session, list(scope.sites), period.previous().first, period.last)
