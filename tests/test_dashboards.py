"""Coordinator dashboards: exact numbers on a small hand-made office (across the October DST change),
permissions, bad ranges, downloads, roll-ups kept correct, bounded SQL, and the published formulas."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import Blackout, Booking, BookingStatus
from portal.services.dashboards import DASHBOARDS, build
from portal.services.dashboards.formulas import FORMULAS, kpis_markdown
from portal.services.dashboards.geometry import layout, ticks_for
from portal.services.dashboards.period import Period, make_period
from portal.services.dashboards.scope import resolve_scope
from portal.services.dashboards.values import Chart, Series
from portal.timezones import to_utc
from tests import factories

BERLIN = ZoneInfo("Europe/Berlin")
# Friday 23 October and Monday 26 October 2026: the clocks go back on Sunday the 25th.
FRI, MON = date(2026, 10, 23), date(2026, 10, 26)
RANGE = "day_from=2026-10-23&day_to=2026-10-26"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return to_utc(datetime.combine(day, time(hour, minute)), BERLIN)


def book(
    db: Session, resource: Any, who: Any, start: datetime, end: datetime, status: str
) -> Booking:
    booking = Booking(
        resource_id=resource.id,
        user_id=who.id,
        created_by_id=who.id,
        start_at=start,
        end_at=end,
        blocked_until=end,
        status=status,
        checked_in_at=start + timedelta(minutes=5)
        if status in (BookingStatus.CHECKED_IN, BookingStatus.COMPLETED)
        else None,
    )
    db.add(booking)
    db.flush()
    return booking


@pytest.fixture
def office(db: Session) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    paris = factories.site(db, "paris", time_zone="Europe/Paris")
    one = factories.floor(db, berlin, level=1)
    two = factories.floor(db, berlin, level=2)
    d1 = factories.desk(db, one, name="1.01", zone="North")
    d2 = factories.desk(db, one, name="1.02", zone="North")
    d3 = factories.desk(db, one, name="1.03", zone="South")
    d4 = factories.desk(db, two, name="2.01", zone="North")
    factories.desk(db, two, name="2.02", active=False, disabled_reason="Broken")
    room = factories.room(db, one, name="Spree", capacity=6)
    paris_desk = factories.desk(db, factories.floor(db, paris), name="P1")
    cora = factories.user(db, email="cora@example.com", coordinator_of=berlin)
    erin = factories.user(db, email="erin@example.com")
    olga = factories.user(db, email="olga@example.com")
    db.add(
        Blackout(site_id=berlin.id, resource_id=d4.id, starts_at=at(MON, 0), ends_at=at(MON, 23))
    )
    C, R = BookingStatus.CHECKED_IN, BookingStatus.RELEASED
    book(db, d1, erin, at(FRI, 8), at(FRI, 18), C)
    book(db, d2, olga, at(FRI, 8), at(FRI, 18), R)  # a no-show
    book(db, d3, cora, at(FRI, 8), at(FRI, 18), BookingStatus.CONFIRMED)
    # 00:30 on Monday in Berlin is still Sunday in UTC (23:30): it counts on Monday.
    book(db, d2, erin, at(MON, 0, 30), at(MON, 8), C)
    book(db, d3, olga, at(MON, 8), at(MON, 18), BookingStatus.CANCELLED)
    book(db, d1, erin, at(MON, 8), at(MON, 12), C)
    book(db, d1, olga, at(MON, 13), at(MON, 18), BookingStatus.COMPLETED)  # same desk-day
    book(db, paris_desk, erin, at(FRI, 8), at(FRI, 18), C)  # another site: never counted
    book(db, room, erin, at(FRI, 9), at(FRI, 10), C)
    book(db, room, erin, at(FRI, 15), at(FRI, 16), BookingStatus.CANCELLED)
    book(db, room, erin, at(MON, 9, 30), at(MON, 11), C)
    book(db, room, olga, at(MON, 14), at(MON, 15), R)  # a ghost meeting
    db.commit()
    return {"berlin": berlin, "paris": paris, "one": one, "two": two, "d3": d3, "room": room}


def kpis(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-kpi="(\w+)">([^<]*)<', html))


def test_desk_numbers_are_exact_across_the_dst_change(client, office, db):
    client.sign_in("cora@example.com")
    page = client.get(f"/dashboards/desks?{RANGE}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # 4 desks in use x 2 open days, less desk 2.01's blackout on Monday: 7 available desk-days.
    # Checked in: 1.01 on Friday, 1.02 (00:30, DST night) and 1.01 (twice, one desk-day) on Monday.
    assert kpis(html) == {
        "utilisation": "42.9%",
        "booked": "5",
        "checked_in": "3",
        "no_shows": "1",
        "peak": "2",
    }
    assert "3 of 7 available desk-days" in html
    # By floor: floor 1 has 3 of 6, floor 2 none of 1; each floor links to its own dashboard.
    floor_link = f"floor={office['one'].id}"
    assert re.search(
        rf'href="[^"]*{floor_link}[^"]*">[^<]*Floor 1</a></th><td class="num">50.0%', html
    )
    assert re.search(r'Floor 2</a></th><td class="num">0.0%', html)
    # Booked, checked in and no-shows by floor and zone, beside the utilisation charts.
    by_zone = re.findall(
        r'<th scope="row">([^<]+)</th>((?:<td class="num">[^<]*</td>){5})',
        html.split("Desk-days by floor and zone", 1)[1].split("</table>", 1)[0],
    )
    cells = {name: re.findall(r">([^<]*)</td>", row) for name, row in by_zone}
    assert sum(int(c[0]) for c in cells.values()) == 5  # booked, as the tile says
    assert sum(int(c[1]) for c in cells.values()) == 3  # checked in
    assert sum(int(c[2]) for c in cells.values()) == 1  # no-shows


def test_desk_utilisation_on_floor_two_clicks_from_the_hub(client, office):
    client.sign_in("cora@example.com")
    hub = client.get("/dashboards/").get_data(as_text=True)
    assert 'href="/dashboards/desks?range=last-month"' in hub
    page = client.get(
        f"/dashboards/desks?site={office['berlin'].id}&floor={office['one'].id}&{RANGE}"
    )
    assert kpis(page.get_data(as_text=True))["utilisation"] == "50.0%"


def test_room_numbers_and_heatmap_cells_are_exact(client, office, db):
    client.sign_in("cora@example.com")
    html = client.get(f"/dashboards/rooms?{RANGE}").get_data(as_text=True)
    # 1 + 1.5 + 1 (the ghost) booked hours of 2 days x 11 opening hours.
    assert kpis(html) == {
        "occupancy": "15.9%",
        "booked_hours": "3.5 h",
        "ghosts": "1",
        "released": "1",
    }
    scope = resolve_scope([office["berlin"]], str(office["berlin"].id))
    data = build(db, DASHBOARDS["rooms"], scope, Period(FRI, MON))
    heat = next(c for c in data.charts if c.key == "heatmap")
    cells = {
        (row, s.name): s.values[i] for s in heat.series for i, row in enumerate(heat.categories)
    }
    assert cells[("Mon", "09:00")] == 50.0  # 9:30-10:00 of one room-hour
    assert cells[("Mon", "10:00")] == 100.0
    assert cells[("Mon", "14:00")] == 100.0  # ghost meetings held the room too
    assert cells[("Fri", "09:00")] == 100.0
    assert cells[("Fri", "15:00")] == 0.0  # cancelled
    assert "Foyer does not record how many people attend a booking" in html


def test_rollups_follow_changes_to_old_bookings(client, office, db):
    client.sign_in("cora@example.com")
    assert (
        kpis(client.get(f"/dashboards/desks?{RANGE}").get_data(as_text=True))["utilisation"]
        == "42.9%"
    )
    late = db.query(Booking).filter_by(resource_id=office["d3"].id, status="confirmed").one()
    late.status, late.checked_in_at = BookingStatus.CHECKED_IN, late.start_at
    db.commit()
    assert (
        kpis(client.get(f"/dashboards/desks?{RANGE}").get_data(as_text=True))["utilisation"]
        == "57.1%"
    )


def test_other_sites_and_people_without_a_site_get_nothing(client, office, db):
    client.sign_in("cora@example.com")
    paris, berlin = office["paris"], office["berlin"]
    paris_floor = factories.floor(db, paris, level=3)
    db.commit()
    for url in (
        f"/dashboards/desks?site={paris.id}",
        f"/dashboards/desks?site={berlin.id}&floor={paris_floor.id}",
        "/dashboards/desks?site=999999",
        "/dashboards/desks?floor=abc",
        f"/dashboards/rooms.csv?site={paris.id}",
        f"/dashboards/desks.xlsx?site={paris.id}",
        f"/dashboards/bookings.csv?site={paris.id}",
        "/dashboards/visitors-of-mars",
    ):
        assert client.get(url).status_code == 404, url
    # "All my sites" for Berlin's coordinator is Berlin alone: Paris's desk never counts.
    html = client.get(f"/dashboards/desks?site=all&{RANGE}").get_data(as_text=True)
    assert kpis(html)["checked_in"] == "3"
    client.get("/sign-out")
    other = second_browser(client)
    factories.user(db, email="eve@example.com")
    db.commit()
    other.sign_in("eve@example.com")
    for url in ("/dashboards/", "/dashboards/desks", "/dashboards/desks.csv"):
        assert other.get(url).status_code == 403, url


def second_browser(client: Any) -> Any:  # a second browser on the same app
    return client.application.test_client()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("day_from=2026-10-26&day_to=2026-10-23", "The last day is before the first day."),
        ("day_from=2016-01-01&day_to=2026-01-01", "Choose at most two years."),
        ("day_from=2040-01-01&day_to=2040-01-02", "Choose a period that starts within a year"),
        ("day_from=soon&day_to=2026-10-23", "Enter a date as YYYY-MM-DD."),
        ("day_from=&day_to=", "Choose the first day."),
    ],
)
def test_bad_ranges_are_refused_with_a_message(client, office, query, message):
    client.sign_in("cora@example.com")
    page = client.get(f"/dashboards/desks?{query}")
    assert page.status_code == 422
    assert message in page.get_data(as_text=True)
    fragment = client.get(f"/dashboards/rooms?{query}", headers={"HX-Request": "true"})
    assert fragment.status_code == 422 and "<html" not in fragment.get_data(as_text=True)
    assert client.get(f"/dashboards/desks.csv?{query}").status_code == 422


def test_downloads_hold_the_numbers_shown(client, office):
    client.sign_in("cora@example.com")
    response = client.get(f"/dashboards/desks.csv?{RANGE}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert ["Fri 23 Oct", "3", "1", "1"] in rows  # booked, checked in, no-shows
    assert ["Mon 26 Oct", "2", "2", "0"] in rows
    assert any(r[:1] == ["Fri 23 Oct 2026"] and r[1:] == ["1", "4", "25.0"] for r in rows)
    # The tiles come first, each with its unit: what the page says, ready for a report.
    assert rows[2] == ["Key figures"]
    assert rows[4][:3] == ["Desk utilisation", "percent", "42.9"]

    xlsx = client.get(f"/dashboards/rooms.xlsx?{RANGE}")
    assert xlsx.status_code == 200
    book = zipfile.ZipFile(io.BytesIO(xlsx.get_data()))
    workbook = book.read("xl/workbook.xml").decode()
    names = re.findall(r'<sheet name="([^"]+)"', workbook)
    assert names[:2] == ["Key figures", "Booked hours by day"] and "Busiest rooms" in names
    busiest = book.read(f"xl/worksheets/sheet{names.index('Busiest rooms') + 1}.xml").decode()
    shared = "xl/sharedStrings.xml"
    strings = book.read(shared).decode() if shared in book.namelist() else ""
    assert "Spree" in busiest + strings
    assert "<v>3.5</v>" in busiest and "<v>15.9</v>" in busiest  # booked hours, occupancy

    raw = client.get(f"/dashboards/bookings.csv?{RANGE}")
    lines = list(csv.reader(io.StringIO(raw.get_data(as_text=True).lstrip("\ufeff"))))
    assert lines[0][0] == "Booking" and len(lines) == 1 + 11  # Berlin's 11 bookings, not Paris's
    assert any(line[6] == "2026-10-26" and line[7] == "00:30" for line in lines)


def test_a_page_costs_a_bounded_number_of_statements(client, office, db, connection):
    client.sign_in("cora@example.com")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            statements.append(statement)

    def measure(url: str) -> int:
        client.get(url)  # warm: roll-ups filled, sign-in state
        statements.clear()
        event.listen(connection, "before_cursor_execute", count)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(connection, "before_cursor_execute", count)
        return len(statements)

    desks, rooms = measure(f"/dashboards/desks?{RANGE}"), measure(f"/dashboards/rooms?{RANGE}")
    for n in range(20):
        factories.desk(db, office["one"], name=f"X{n}", zone=f"Z{n % 5}")
    db.commit()
    assert measure(f"/dashboards/desks?{RANGE}") == desks
    assert measure(f"/dashboards/rooms?{RANGE}") == rooms
    assert desks <= 14 and rooms <= 14, (desks, rooms)


def test_docs_kpis_md_is_the_formulas_module():
    docs = Path(__file__).resolve().parents[1] / "docs" / "kpis.md"
    assert docs.read_text(encoding="utf-8") == kpis_markdown()
    assert len({f.id for f in FORMULAS}) == len(FORMULAS)


def test_periods_and_chart_geometry():
    period = make_period(date(2026, 10, 1), date(2026, 10, 31), date(2026, 11, 30))
    assert period.previous() == Period(date(2026, 8, 31), date(2026, 9, 30))
    with pytest.raises(RuleViolation) as refused:
        make_period(date(2026, 10, 2), date(2026, 10, 1), date(2026, 11, 30))
    assert refused.value.errors == {"day_to": "The last day is before the first day."}
    for maximum in (0, 1, 7, 46, 99.5, 1234):
        ticks = ticks_for(maximum)
        assert ticks[0] == 0 and ticks[-1] >= maximum and len(ticks) <= 7
    chart = Chart("c", "C", "stacked", ["a", "b"], [Series("x", [1, 3]), Series("y", [2, None])])
    plot = layout(chart)
    tallest = max(r.y + r.height for r in plot.rects) - min(r.y for r in plot.rects)
    assert round(tallest) == round(plot.plot_height * 3 / plot.ticks[-1].value)
    assert all(r.height > 0 for r in plot.rects) and len(plot.rects) == 3
