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

from portal.services.dashboards import desks, rollups, rooms
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
