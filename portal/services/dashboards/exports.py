"""Downloads of what a dashboard shows (CSV, and XLSX with one sheet per chart or table), and the raw
bookings of a scope and period as a streamed CSV."""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import xlsxwriter
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Booking, BookingStatus, Building, Floor, Resource, User
from portal.services.dashboards.period import Period
from portal.services.dashboards.scope import Scope
from portal.services.dashboards.values import DashboardData, Table
from portal.services.spreadsheets import csv_safe
from portal.timezones import local_day_bounds

STREAM_BATCH = 2000


def _line(cells: list[object]) -> str:
    buffer = io.StringIO()
    # Numbers are written as numbers: a negative variance is not a formula.
    csv.writer(buffer).writerow(
        [c if isinstance(c, int | float) else csv_safe("" if c is None else c) for c in cells]
    )
    return buffer.getvalue()


def dashboard_csv(title: str, scope: Scope, period: Period, data: DashboardData) -> Iterator[str]:
    """Every table of the page, one after another, each under its title."""
    yield "\ufeff"  # Excel reads UTF-8 only with a BOM
    yield _line([title, scope.label, period.label()])
    for table in data.all_tables():
        yield "\r\n"
        yield _line([table.title])
        yield _line(table.columns)
        for row in table.rows:
            yield _line(row)


def _sheet_name(title: str, used: set[str]) -> str:
    name = re.sub(r"[\[\]:*?/\\]", " ", title)[:31].strip() or "Sheet"
    base, n = name, 2
    while name.lower() in used:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name


def dashboard_xlsx(title: str, scope: Scope, period: Period, data: DashboardData) -> str:
    """The path of an XLSX file (the caller streams and deletes it): one sheet per table, written
    row by row with constant memory."""
    handle, path = tempfile.mkstemp(suffix=".xlsx", prefix="foyer-dashboard-")
    os.close(handle)
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False})
    bold = book.add_format({"bold": True})
    percent = book.add_format({"num_format": "0.0"})
    used: set[str] = set()
    for table in data.all_tables():
        sheet = book.add_worksheet(_sheet_name(table.title, used))
        sheet.write_row(0, 0, [f"{title} · {table.title}", scope.label, period.label()], bold)
        sheet.write_row(1, 0, _headings(table), bold)
        sheet.set_column(0, 0, 28)
        sheet.set_column(1, len(table.columns), 16)
        for r, row in enumerate(table.rows, start=2):
            for c, value in enumerate(row):
                if isinstance(value, int | float):
                    sheet.write_number(r, c, value, percent if table.unit == "percent" else None)
                else:
                    sheet.write_string(r, c, "" if value is None else str(value))
    book.close()
    return path


def _headings(table: Table) -> list[str]:
    if table.unit == "percent":
        return [table.columns[0], *(f"{c} (%)" for c in table.columns[1:])]
    if table.unit == "hours":
        return [table.columns[0], *(f"{c} (hours)" for c in table.columns[1:])]
    return list(table.columns)


BOOKING_COLUMNS = [
    "Booking",
    "Site",
    "Floor",
    "Resource",
    "Kind",
    "Booked for",
    "Local day",
    "Start",
    "End",
    "Status",
    "Checked in",
]


@dataclass(frozen=True)
class ExportSite:
    """Plain values: the stream outlives the request's session and its ORM objects."""

    id: int
    name: str
    time_zone: str


def bookings_csv(
    open_session: Callable[[], Session],
    sites: list[ExportSite],
    period: Period,
    floor_id: int | None = None,
) -> Iterator[str]:
    """Every booking of the sites (and floor) whose start falls in the period, in start order,
    streamed in batches through a server-side cursor from a session of its own: the first bytes
    leave before the last row is read."""
    yield "\ufeff"
    yield _line(BOOKING_COLUMNS)
    session = open_session()
    try:
        for site in sites:
            yield from _site_bookings(session, site, period, floor_id)
    finally:
        session.close()


def _site_bookings(
    session: Session, site: ExportSite, period: Period, floor_id: int | None
) -> Iterator[str]:
    zone = ZoneInfo(site.time_zone)
    floors = {
        f.id: f"{f.building.name} · {f.name}"
        for f in session.scalars(
            select(Floor)
            .join(Building, Building.id == Floor.building_id)
            .where(Building.site_id == site.id)
        )
    }
    query = (
        select(
            Booking.id,
            Resource.floor_id,
            Resource.name,
            Resource.kind,
            User.name,
            Booking.start_at,
            Booking.end_at,
            Booking.status,
            Booking.checked_in_at,
        )
        .join(Resource, Resource.id == Booking.resource_id)
        .join(User, User.id == Booking.user_id)
        .where(Resource.site_id == site.id, Booking.status.in_(list(BookingStatus)))
        .order_by(Booking.start_at, Booking.id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    if floor_id:
        query = query.where(Resource.floor_id == floor_id)
    # A week at a time: each is a short range of the (status, start) index, sorted in memory
    # at once, so rows flow from the first week on rather than after sorting a whole year.
    day = period.first
    while day <= period.last:
        week_last = min(day + timedelta(days=6), period.last)
        start, _ = local_day_bounds(day, zone)
        _, end = local_day_bounds(week_last, zone)
        yield from _rows(
            session,
            query.where(Booking.start_at >= start, Booking.start_at < end),
            site,
            zone,
            floors,
        )
        day = week_last + timedelta(days=1)


def _rows(session: Session, query, site: ExportSite, zone: ZoneInfo, floors) -> Iterator[str]:
    batch: list[str] = []
    for row in session.execute(query):
        start_local = row[5].astimezone(zone)
        batch.append(
            _line(
                [
                    row[0],
                    site.name,
                    floors.get(row[1], ""),
                    row[2],
                    row[3],
                    row[4],
                    start_local.date().isoformat(),
                    start_local.strftime("%H:%M"),
                    row[6].astimezone(zone).strftime("%H:%M"),
                    str(row[7]).replace("_", " "),
                    row[8].astimezone(zone).strftime("%Y-%m-%d %H:%M") if row[8] else "",
                ]
            )
        )
        if len(batch) >= 500:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)
