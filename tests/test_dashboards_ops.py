"""The Visitors and Service desk dashboards: exact numbers on a small hand-made October 2026 in
Berlin (the clocks go back on the 25th; tickets straddle both ends of the month), permissions,
bad ranges, downloads and a bounded number of SQL statements per page."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.models import Ticket, Visit
from portal.timezones import to_utc
from tests import factories

BERLIN = ZoneInfo("Europe/Berlin")
OCTOBER = "day_from=2026-10-01&day_to=2026-10-31"
UTC_ZONE = ZoneInfo("UTC")


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall-clock time as UTC."""
    return to_utc(datetime.combine(day, time(hour, minute)), BERLIN)


def kpis(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-kpi="(\w+)">([^<]*)<', html))


def ticket(db: Session, site: Any, who: Any, created: datetime, **values: Any) -> Ticket:
    """A ticket with hand-set deadlines and times, so every number below can be worked out."""
    values.setdefault("kind", "issue")
    values.setdefault("category", "plumbing")
    values.setdefault("status", "in_progress")
    new = Ticket(
        site_id=site.id,
        requester_id=who.id,
        title="Something",
        created_at=created,
        updated_at=created,
        **values,
    )
    db.add(new)
    db.flush()
    return new


def visit(db: Session, site: Any, host: Any, day: date, kind: str, status: str, **values) -> Visit:
    new = Visit(
        site_id=site.id,
        host_id=host.id,
        kind=kind,
        status=status,
        visitor_name="Ada Visitor",
        expected_start=at(day, 9),
        expected_end=at(day, 17),
        local_date=day,
        **values,
    )
    db.add(new)
    db.flush()
    return new


@pytest.fixture
def office(db: Session) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    paris = factories.site(db, "paris", time_zone="Europe/Paris")
    one = factories.floor(db, berlin, level=1)
    room = factories.room(db, one, name="Spree", capacity=6)
    desk = factories.desk(db, one, name="1.01")
    factories.user(db, email="cora@example.com", coordinator_of=berlin)
    erin = factories.user(db, email="erin@example.com", department="Engineering")
    olga = factories.user(db, email="olga@example.com", department="Sales")
    nobody = factories.user(db, email="nobody@example.com", department="")
    d = date

    # --- tickets (Berlin unless said otherwise) ----------------------------------------------
    # Opened late on 30 September (previous period), answered in time on 1 October, resolved
    # late on 3 October: closed this period, first response met, resolution missed.
    ticket(
        db, berlin, erin, at(d(2026, 9, 30), 23, 30),
        first_response_due_at=at(d(2026, 10, 1), 10), first_responded_at=at(d(2026, 10, 1), 9),
        resolution_due_at=at(d(2026, 10, 2), 12), resolved_at=at(d(2026, 10, 3), 12),
        closed=True, closed_at=at(d(2026, 10, 3), 12), status="closed",
    )  # fmt: skip
    # 01:30 on 1 October in Berlin is still 30 September in UTC: opened this period.
    ticket(
        db, berlin, erin, at(d(2026, 10, 1), 1, 30), resource_id=room.id, floor_id=one.id,
        first_response_due_at=at(d(2026, 10, 1), 10), first_responded_at=at(d(2026, 10, 1), 9),
        resolution_due_at=at(d(2026, 10, 3), 12), resolved_at=at(d(2026, 10, 2), 12),
        closed=True, closed_at=at(d(2026, 10, 4), 9), status="closed",
    )  # fmt: skip
    # 23:30 on 31 October (CET, after the change) is 22:30 UTC: still October. Open at the end.
    ticket(
        db, berlin, olga, at(d(2026, 10, 31), 23, 30), floor_id=one.id, status="submitted",
        first_response_due_at=at(d(2026, 11, 2), 12), resolution_due_at=at(d(2026, 11, 4), 12),
    )  # fmt: skip
    # 00:30 on 1 November in Berlin is 31 October 23:30 UTC: next period, never counted here.
    ticket(
        db, berlin, olga, at(d(2026, 11, 1), 0, 30), status="submitted",
        first_response_due_at=at(d(2026, 11, 2), 12), resolution_due_at=at(d(2026, 11, 4), 12),
    )  # fmt: skip
    # A request answered late but delivered in time.
    ticket(
        db, berlin, olga, at(d(2026, 10, 10), 10), kind="request", category="furniture",
        status="delivered",
        first_response_due_at=at(d(2026, 10, 10), 14), first_responded_at=at(d(2026, 10, 10), 16),
        resolution_due_at=at(d(2026, 10, 15), 12), resolved_at=at(d(2026, 10, 12), 12),
    )  # fmt: skip
    # Never answered, still open: misses both targets (one ticket); open 11 days at the end.
    ticket(
        db, berlin, olga, at(d(2026, 10, 20), 9), category="electrical", status="submitted",
        resource_id=room.id, floor_id=one.id,
        first_response_due_at=at(d(2026, 10, 20), 12), resolution_due_at=at(d(2026, 10, 22), 9),
    )  # fmt: skip
    # Waiting on the requester: first response met, resolution paused (neither).
    ticket(
        db, berlin, olga, at(d(2026, 10, 5), 9), category="cleaning", status="waiting",
        resource_id=desk.id, floor_id=one.id, paused_at=at(d(2026, 10, 6), 9),
        first_response_due_at=at(d(2026, 10, 5), 12), first_responded_at=at(d(2026, 10, 5), 10),
        resolution_due_at=at(d(2026, 10, 8), 12),
    )  # fmt: skip
    # Withdrawn unanswered before both deadlines: closed, but no SLA outcome.
    ticket(
        db, berlin, olga, at(d(2026, 10, 12), 9), kind="request", category="office_supplies",
        status="cancelled", closed=True, closed_at=at(d(2026, 10, 12), 11),
        resolved_at=at(d(2026, 10, 12), 11),
        first_response_due_at=at(d(2026, 10, 12), 15), resolution_due_at=at(d(2026, 10, 17), 12),
    )  # fmt: skip
    # September (the comparison): opened, answered and resolved in time.
    ticket(
        db, berlin, erin, at(d(2026, 9, 1), 9), status="resolved",
        first_response_due_at=at(d(2026, 9, 1), 12), first_responded_at=at(d(2026, 9, 1), 11),
        resolution_due_at=at(d(2026, 9, 3), 12), resolved_at=at(d(2026, 9, 2), 12),
    )  # fmt: skip
    # August: still open at the end of both periods, its missed deadline in neither.
    ticket(
        db, berlin, erin, at(d(2026, 8, 15), 9), category="temperature",
        first_response_due_at=at(d(2026, 8, 15), 12), first_responded_at=at(d(2026, 8, 15), 10),
        resolution_due_at=at(d(2026, 8, 20), 12),
    )  # fmt: skip
    # Paris: another site, never counted for Berlin's coordinator.
    ticket(
        db, paris, erin, at(d(2026, 10, 10), 9),
        first_response_due_at=at(d(2026, 10, 10), 10), resolution_due_at=at(d(2026, 10, 11), 9),
    )  # fmt: skip

    # --- visits --------------------------------------------------------------------------------
    visit(
        db, berlin, erin, d(2026, 10, 1), "invited", "checked_out",
        checked_in_at=at(d(2026, 10, 1), 9), checked_out_at=at(d(2026, 10, 1), 11),
    )  # fmt: skip
    # The night the clocks go back: 01:30 CEST to 02:30 CET is two hours of visit.
    visit(
        db, berlin, olga, d(2026, 10, 25), "walk_in", "checked_out",
        checked_in_at=datetime(2026, 10, 24, 23, 30, tzinfo=UTC_ZONE),
        checked_out_at=datetime(2026, 10, 25, 1, 30, tzinfo=UTC_ZONE),
    )  # fmt: skip
    visit(
        db, berlin, nobody, d(2026, 10, 1), "walk_in", "checked_out",
        checked_in_at=at(d(2026, 10, 1), 14), checked_out_at=at(d(2026, 10, 1), 14, 30),
    )  # fmt: skip
    visit(
        db,
        berlin,
        erin,
        d(2026, 10, 31),
        "invited",
        "checked_in",
        checked_in_at=at(d(2026, 10, 31), 10),
    )  # still in the building: a visit, but no length
    visit(db, berlin, erin, d(2026, 10, 20), "walk_in", "denied")
    visit(db, berlin, erin, d(2026, 10, 20), "invited", "denied")
    visit(db, berlin, erin, d(2026, 10, 15), "invited", "expected")  # nobody came
    visit(db, berlin, erin, d(2026, 10, 16), "invited", "cancelled")
    visit(
        db, berlin, erin, d(2026, 9, 30), "invited", "checked_out",
        checked_in_at=at(d(2026, 9, 30), 9), checked_out_at=at(d(2026, 9, 30), 9, 20),
    )  # fmt: skip
    visit(
        db, paris, erin, d(2026, 10, 10), "walk_in", "checked_out",
        checked_in_at=at(d(2026, 10, 10), 9), checked_out_at=at(d(2026, 10, 10), 10),
    )  # fmt: skip
    db.commit()
    return {"berlin": berlin, "paris": paris, "one": one, "erin": erin, "room": room}


def test_service_desk_numbers_are_exact_at_the_month_edges_and_dst(client, office):
    client.sign_in("cora@example.com")
    page = client.get(f"/dashboards/service-desk?{OCTOBER}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert kpis(html) == {
        "opened": "6",  # 1 October 01:30 and 31 October 23:30 local count; 1 November does not
        "closed": "4",
        "first_response_sla": "60.0%",  # 3 met, 2 missed
        "resolution_sla": "50.0%",  # 2 met, 2 missed; paused and withdrawn are neither
        "sla_missed": "3",
        "backlog": "4",
    }
    assert "3 met, 2 missed" in html and "2 met, 2 missed" in html
    assert "2 requests, 4 facility issues" in html
    # September: one ticket, in time; at its end the August ticket and the one opened at
    # 23:30 on 30 September were open.
    assert "vs 100.0% before" in html and "vs 2 before" in html


def test_service_desk_tables_and_csv_hold_the_numbers(client, office):
    client.sign_in("cora@example.com")
    response = client.get(f"/dashboards/service-desk.csv?{OCTOBER}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    # Opened, closed by category (the September ticket closed in October counts as closed).
    assert ["Plumbing", "2", "2"] in rows and ["Electrical", "1", "0"] in rows
    assert ["Office supplies", "1", "1"] in rows and ["Furniture", "1", "1"] in rows
    assert not any(r[:1] == ["Paris"] for r in rows)
    # Backlog by age at the end of 31 October.
    assert ["Under 1 day", "1"] in rows and ["1–2 weeks", "1"] in rows
    assert ["2–4 weeks", "1"] in rows and ["4 weeks or more", "1"] in rows
    # SLA by category: met, missed, attainment for each target.
    assert ["Facility issue · Electrical", "0", "1", "0.0", "0", "1", "0.0"] in rows
    assert ["Request · Furniture", "0", "1", "0.0", "1", "0", "100.0"] in rows
    assert ["Facility issue · Plumbing", "2", "0", "100.0", "1", "1", "50.0"] in rows
    # Problem locations: the room twice (one still open), the floor alone once.
    spree = next(r for r in rows if r[:1] == ["Room Spree"])
    assert spree[1].endswith("· Floor 1") and spree[2:] == ["2", "1"]
    assert any(r[:1] == ["Elsewhere on the floor"] and r[2:] == ["1", "1"] for r in rows)
    assert any(r[:1] == ["Desk 1.01"] and r[2:] == ["1", "1"] for r in rows)


def test_visitor_numbers_are_exact_across_the_dst_night(client, office):
    client.sign_in("cora@example.com")
    page = client.get(f"/dashboards/visitors?{OCTOBER}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # 4 arrived (2 invited, 2 walk-ins); lengths 2 h, 2 h (over the DST night) and 30 min.
    assert kpis(html) == {
        "visits": "4",
        "average_length": "1.5 h",
        "pre_registered": "50.0%",
        "deny_stops": "2",
    }
    assert "1 h 30 min over 3 visits" in html
    assert "2 invited, 2 walk-ins" in html
    response = client.get(f"/dashboards/visitors.csv?{OCTOBER}")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert ["Sun 25 Oct", "0", "1"] in rows  # the walk-in on the night of the change
    assert ["Thu 1 Oct", "1", "1"] in rows
    assert ["Engineering", "2", "0"] in rows
    assert ["Sales", "0", "1"] in rows and ["No department", "0", "1"] in rows
    assert ["30–60 min", "1"] in rows and ["2–4 h", "2"] in rows
    assert ["Tue 20 Oct 2026", "2"] in rows  # deny-list stops by day


def test_missed_slas_last_month_two_clicks_from_the_hub(client, office):
    client.sign_in("cora@example.com")
    hub = client.get("/dashboards/").get_data(as_text=True)
    assert 'href="/dashboards/service-desk?range=last-month"' in hub
    assert 'href="/dashboards/visitors?range=last-month"' in hub
    page = client.get("/dashboards/service-desk?range=last-month")
    assert page.status_code == 200
    assert "Tickets that missed an SLA" in page.get_data(as_text=True)
    assert "sla_missed" in kpis(page.get_data(as_text=True))


def test_other_sites_are_not_found_and_bad_ranges_refused(client, office, db):
    client.sign_in("cora@example.com")
    paris = office["paris"]
    for slug in ("service-desk", "visitors"):
        for url in (
            f"/dashboards/{slug}?site={paris.id}",
            f"/dashboards/{slug}?site=999999",
            f"/dashboards/{slug}.csv?site={paris.id}",
            f"/dashboards/{slug}.xlsx?site={paris.id}",
        ):
            assert client.get(url).status_code == 404, url
        for query, message in (
            ("day_from=2026-10-31&day_to=2026-10-01", "The last day is before the first day."),
            ("day_from=2016-01-01&day_to=2026-01-01", "Choose at most two years."),
            ("day_from=soon&day_to=2026-10-23", "Enter a date as YYYY-MM-DD."),
        ):
            page = client.get(f"/dashboards/{slug}?{query}")
            assert page.status_code == 422 and message in page.get_data(as_text=True)
            assert client.get(f"/dashboards/{slug}.csv?{query}").status_code == 422
    # "All my sites" for Berlin's coordinator is Berlin alone.
    html = client.get(f"/dashboards/visitors?site=all&{OCTOBER}").get_data(as_text=True)
    assert kpis(html)["visits"] == "4"


def test_a_page_costs_a_bounded_number_of_statements(client, office, db, connection):
    client.sign_in("cora@example.com")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            statements.append(statement)

    def measure(url: str) -> int:
        client.get(url)
        statements.clear()
        event.listen(connection, "before_cursor_execute", count)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(connection, "before_cursor_execute", count)
        return len(statements)

    desk_page, visitor_page = (
        measure(f"/dashboards/service-desk?{OCTOBER}"),
        measure(f"/dashboards/visitors?{OCTOBER}"),
    )
    berlin, erin, one = office["berlin"], office["erin"], office["one"]
    for n in range(15):  # more tickets at more places, more visits of more departments
        place = factories.desk(db, one, name=f"X{n}")
        ticket(
            db, berlin, erin, at(date(2026, 10, 2 + n), 9), resource_id=place.id,
            first_response_due_at=at(date(2026, 10, 2 + n), 12),
            resolution_due_at=at(date(2026, 10, 3 + n), 12),
        )  # fmt: skip
        host = factories.user(db, department=f"Team {n}")
        visit(db, berlin, host, date(2026, 10, 2 + n), "walk_in", "checked_in")
    db.commit()
    assert measure(f"/dashboards/service-desk?{OCTOBER}") == desk_page
    assert measure(f"/dashboards/visitors?{OCTOBER}") == visitor_page
    assert desk_page <= 12 and visitor_page <= 8, (desk_page, visitor_page)
    html = client.get(f"/dashboards/visitors?{OCTOBER}").get_data(as_text=True)
    assert "Other departments (6)" in html  # 18 departments: 12 shown, the rest added up
    assert kpis(html)["visits"] == "19"


def test_every_dashboard_formula_is_published():
    from portal.services.dashboards import DASHBOARDS
    from portal.services.dashboards.formulas import BY_ID

    assert {"service-desk", "visitors"} <= set(DASHBOARDS)
    for formula_id in (
        "ticket_first_response_sla",
        "ticket_resolution_sla",
        "ticket_backlog",
        "visitor_length",
        "visitor_deny_stops",
    ):
        assert BY_ID[formula_id].text
