"""Spend-and-stock and Occupancy dashboards: exact numbers on a hand-made office (month edges in the
site's zone), the "no door data" state, permissions, downloads and bounded SQL; and chart geometry
that reads at phone width."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portal.models import (
    Booking,
    BookingStatus,
    CatalogItem,
    LineStatus,
    RequestLine,
    Role,
    Ticket,
    User,
)
from portal.models.access_control import AccessSettings, DoorEvent
from portal.models.budgets import Budget
from portal.models.service_desk import StockLevel
from portal.services import accounts
from portal.services.audit import Actor
from portal.services.dashboards.geometry import layout
from portal.services.dashboards.values import Chart, Series
from portal.timezones import to_utc
from tests import factories

BERLIN = ZoneInfo("Europe/Berlin")
OCTOBER = "day_from=2026-10-01&day_to=2026-10-31"
FRI, MON = date(2026, 10, 23), date(2026, 10, 26)
DOOR_RANGE = "day_from=2026-10-23&day_to=2026-10-26"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return to_utc(datetime.combine(day, time(hour, minute)), BERLIN)


def kpis(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-kpi="(\w+)">([^<]*)<', html))


@pytest.fixture
def shop(db: Session) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    paris = factories.site(db, "paris", time_zone="Europe/Paris")
    one = factories.floor(db, berlin, level=1)
    desk = factories.desk(db, one, name="1.01")
    factories.user(db, email="cora@example.com", coordinator_of=berlin)
    erin = factories.user(db, email="erin@example.com")
    chair = CatalogItem(name="Chair", category="furniture", price_cents=150_00)
    pens = CatalogItem(name="Pens", category="office_supplies", price_cents=2_50)
    db.add_all([chair, pens])
    db.flush()

    def fulfilled(site, lines, when, status=LineStatus.FULFILLED):
        ticket = Ticket(
            kind="request", site_id=site.id, requester_id=erin.id, title="x", category="furniture"
        )
        ticket.lines = [
            RequestLine(
                item_id=item.id,
                quantity=qty,
                unit_price_cents=item.price_cents,
                status=status,
                fulfilled_at=when if status == LineStatus.FULFILLED else None,
            )
            for item, qty in lines
        ]
        db.add(ticket)

    fulfilled(berlin, [(chair, 2)], at(date(2026, 10, 31), 23, 30))  # still October in Berlin
    fulfilled(berlin, [(pens, 10)], at(date(2026, 10, 2), 9))
    fulfilled(berlin, [(chair, 1)], at(date(2026, 11, 1), 0, 30))  # November: not counted
    fulfilled(berlin, [(chair, 5)], at(date(2026, 10, 5), 9), LineStatus.DECLINED)
    fulfilled(berlin, [(chair, 1)], at(date(2026, 9, 10), 9))  # September: the comparison
    fulfilled(paris, [(chair, 9)], at(date(2026, 10, 5), 9))  # another site
    for site, category, month, cents in (
        (berlin, "furniture", date(2026, 10, 1), 200_00),
        (berlin, "office_supplies", date(2026, 10, 1), 50_00),
        (berlin, "furniture", date(2026, 9, 1), 200_00),
        (paris, "furniture", date(2026, 10, 1), 1_00),
    ):
        db.add(Budget(site_id=site.id, category=category, month=month, amount_cents=cents))
    db.add_all(
        [
            StockLevel(item_id=chair.id, site_id=berlin.id, on_hand=3, reserved=2, reorder_point=2),
            StockLevel(item_id=pens.id, site_id=berlin.id, on_hand=100, reorder_point=10),
            StockLevel(item_id=chair.id, site_id=paris.id, on_hand=50, reorder_point=60),
        ]
    )
    # Door events: Berlin takes them (a webhook secret is set); Paris has no integration.
    db.add(AccessSettings(site_id=berlin.id, webhook_secret_sealed="sealed"))
    for n, (who, day, hour, minute, direction) in enumerate(
        [
            ("anna@example.com", FRI, 8, 10, "in"),
            ("Anna@example.com", FRI, 12, 30, "in"),  # the same person again: one person-day
            ("ben@example.com", FRI, 9, 5, "in"),
            ("anna@example.com", MON, 9, 20, "in"),
            ("carl@example.com", MON, 9, 40, "in"),
            ("ben@example.com", MON, 17, 0, "out"),  # leaving is not coming in
            ("dora@example.com", date(2026, 10, 20), 9, 0, "in"),  # the comparison period
        ]
    ):
        db.add(
            DoorEvent(
                site_id=berlin.id,
                event_id=f"e{n}",
                person=who,
                direction=direction,
                occurred_at=at(day, hour, minute),
                source="webhook",
            )
        )
    db.add(
        Booking(
            resource_id=desk.id,
            user_id=erin.id,
            created_by_id=erin.id,
            start_at=at(FRI, 8),
            end_at=at(FRI, 18),
            blocked_until=at(FRI, 18),
            status=BookingStatus.CHECKED_IN,
            checked_in_at=at(FRI, 8, 10),
        )
    )
    db.commit()
    return {"berlin": berlin, "paris": paris, "chair": chair, "pens": pens, "one": one}


def test_spend_numbers_are_exact_with_month_edges_in_the_sites_zone(client, shop):
    client.sign_in("cora@example.com")
    page = client.get(f"/dashboards/spend?{OCTOBER}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # October: chairs 2 x 150 (handed over 23:30 on the 31st, Berlin time) + pens 10 x 2.50.
    assert kpis(html) == {
        "spend": "€325.00",
        "budget": "€250.00",
        "over_budget": "1",
        "stock_value": "€700.00",  # 3 chairs x 150 + 100 pens x 2.50; Paris's shelves not
        "below_reorder": "1",
    }
    assert "vs €150.00 before" in html  # September's one chair
    assert "▲ 75.00 over budget" in html  # 250 budget - 325 spend
    # Over budget is said in words and marked on the row, not only coloured.
    row = re.search(r'<tr class="row-over">(.*?)</tr>', html, re.S)
    assert row and "Furniture" in row.group(1) and "▲ Over budget" in row.group(1)
    assert "−€100.00" in row.group(1)
    assert "Furniture (supply) ▲ over" in html  # the chart's category label
    assert re.search(
        r"<th scope=\"row\">Chair</th><td[^>]*>Furniture \(supply\)</td><td[^>]*>2</td>", html
    )
    # The chair at or below its reorder point: 3 on hand, 2 reserved, 1 available, point 2.
    assert re.search(r"Chair</th>(<td class=\"num\">[^<]*</td>){4}", html)


def test_occupancy_counts_people_per_day_and_the_peak_hour(client, shop):
    client.sign_in("cora@example.com")
    html = client.get(f"/dashboards/occupancy?{DOOR_RANGE}").get_data(as_text=True)
    # Fri: anna, ben; Mon: anna, carl => 4 people-days over 2 days; one desk check-in (Fri).
    assert kpis(html) == {
        "people_per_day": "2",
        "busiest_day": "2",
        "peak_hour": "3",
        "desk_ratio": "25.0%",
    }
    assert "entries 09:00–10:00" in html
    assert "No door data" not in html
    assert "vs 1 before" in html  # dora on Tuesday the 20th


def test_a_site_without_door_data_says_so_rather_than_zero(client, shop, db):
    factories.user(db, email="pia@example.com", coordinator_of=shop["paris"])
    db.commit()
    client.sign_in("pia@example.com")
    page = client.get(f"/dashboards/occupancy?{DOOR_RANGE}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "No door data: Paris has no access-control integration" in html
    assert 'data-kpi="' not in html and '<svg class="chart' not in html
    # A coordinator of both sites sees Berlin counted and Paris named.
    both = factories.user(db, email="max@example.com", coordinator_of=shop["berlin"])
    accounts.grant_role(db, Actor.system("tests"), both, Role.COORDINATOR, shop["paris"])
    db.commit()
    client.get("/sign-out")
    client.sign_in("max@example.com")
    html = client.get(f"/dashboards/occupancy?site=all&{DOOR_RANGE}").get_data(as_text=True)
    assert "No door data: Paris has no access-control integration" in html
    assert kpis(html)["people_per_day"] == "2"


def _user_id(email: str):
    return select(User.id).where(User.email == email)


def test_other_sites_are_not_found_and_employees_forbidden(client, shop, db):
    client.sign_in("cora@example.com")
    paris = shop["paris"]
    for url in (
        f"/dashboards/spend?site={paris.id}",
        f"/dashboards/occupancy?site={paris.id}",
        f"/dashboards/spend.csv?site={paris.id}",
        f"/dashboards/occupancy.xlsx?site={paris.id}",
    ):
        assert client.get(url).status_code == 404, url
    # "All my sites" for Berlin's coordinator: Paris's 9 chairs never count.
    html = client.get(f"/dashboards/spend?site=all&{OCTOBER}").get_data(as_text=True)
    assert kpis(html)["spend"] == "€325.00"
    assert client.get("/dashboards/spend?day_from=2026-10-31&day_to=2026-10-01").status_code == 422
    client.get("/sign-out")
    client.sign_in("erin@example.com")
    assert client.get("/dashboards/spend").status_code == 403
    assert client.get("/dashboards/occupancy.csv").status_code == 403


def test_downloads_hold_the_numbers(client, shop):
    client.sign_in("cora@example.com")
    response = client.get(f"/dashboards/spend.csv?{OCTOBER}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert ["Oct 2026", "Furniture (supply)", "300.0", "200.0", "-100.0", "▲ Over budget"] in rows
    assert ["Oct 2026", "Office supplies", "25.0", "50.0", "25.0", "Within budget"] in rows
    assert ["Chair", "Furniture (supply)", "2", "300.0"] in rows  # top items
    door = client.get(f"/dashboards/occupancy.csv?{DOOR_RANGE}").get_data(as_text=True)
    lines = list(csv.reader(io.StringIO(door.lstrip("\ufeff"))))
    assert ["Fri 23 Oct", "2", "1"] in lines and ["09:00", "3"] in lines
    xlsx = client.get(f"/dashboards/spend.xlsx?{OCTOBER}")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_pages_cost_a_bounded_number_of_statements(client, shop, db, connection):
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

    spend = measure(f"/dashboards/spend?{OCTOBER}")
    door = measure(f"/dashboards/occupancy?{DOOR_RANGE}")
    # Many more items, stock levels, requests and door events: the same statements.
    for n in range(15):
        item = CatalogItem(name=f"Item {n}", category="equipment", price_cents=n * 100)
        db.add(item)
        db.flush()
        db.add(StockLevel(item_id=item.id, site_id=shop["berlin"].id, on_hand=1, reorder_point=2))
        db.add(
            Ticket(
                kind="request",
                site_id=shop["berlin"].id,
                requester_id=db.scalar(_user_id("erin@example.com")),
                title="x",
                category="equipment",
                lines=[
                    RequestLine(
                        item_id=item.id,
                        quantity=1,
                        unit_price_cents=100,
                        status=LineStatus.FULFILLED,
                        fulfilled_at=at(date(2026, 10, 10), 10) + timedelta(minutes=n),
                    )
                ],
            )
        )
        db.add(
            DoorEvent(
                site_id=shop["berlin"].id,
                event_id=f"more{n}",
                person=f"p{n}@example.com",
                direction="in",
                occurred_at=at(MON, 10, n),
                source="csv",
            )
        )
    db.commit()
    assert measure(f"/dashboards/spend?{OCTOBER}") == spend
    assert measure(f"/dashboards/occupancy?{DOOR_RANGE}") == door
    assert spend <= 14 and door <= 14, (spend, door)


def test_phone_charts_are_drawn_at_phone_size_with_labels_that_fit():
    days = [f"Mon {n} Oct" for n in range(1, 24)]
    chart = Chart("d", "By day", "bar", days, [Series("Booked", list(range(23)))])
    narrow = layout(chart, narrow=True)
    assert narrow.width <= 400  # drawn near 1:1 on a 390 px phone: 12 px text stays 12 px
    # Labels never overlap: each has at least its own text's width of room.
    xs = [label.x for label in narrow.x_labels]
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert gaps and min(gaps) >= max(len(label.text) for label in narrow.x_labels) * 6.5
    # Few labelled categories become horizontal bars, each label on its own line, in full.
    zones = ["Building A · Floor 2 · North wing", "Building A · Floor 2 · South", "No zone"]
    bars = layout(Chart("z", "Zones", "bar", zones, [Series("U", [50, 20, 0])], "percent"), True)
    assert bars.horizontal and [label.text for label in bars.x_labels] == zones
    assert all(r.width <= bars.plot_width for r in bars.rects)
    wide = layout(chart)
    assert wide.width == 720 and not wide.horizontal
