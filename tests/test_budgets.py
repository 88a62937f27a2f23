"""Budgets: a grid of months × catalog categories per site, validated all-or-nothing and audited,
and spend against budget computed from what was really handed over, to the cent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, CatalogItem, LineStatus, RequestLine, Ticket
from portal.models.budgets import Budget
from portal.services import budgets
from portal.services.audit import Actor
from tests import factories

NOV, DEC, JAN = date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)


def item(db: Any, name: str, category: str, price_cents: int) -> CatalogItem:
    new = CatalogItem(name=name, category=category, price_cents=price_cents)
    db.add(new)
    db.flush()
    return new


def handed_over(
    db: Any, site: Any, person: Any, lines: list[tuple[CatalogItem, int, int, str, datetime | None]]
) -> None:
    """One request with these lines: (item, quantity, unit price, status, fulfilled at)."""
    ticket = Ticket(
        kind="request", site_id=site.id, requester_id=person.id, title="Order", category="x"
    )
    db.add(ticket)
    db.flush()
    for catalog_item, quantity, price, status, when in lines:
        db.add(
            RequestLine(
                ticket_id=ticket.id,
                item_id=catalog_item.id,
                quantity=quantity,
                unit_price_cents=price,
                status=status,
                fulfilled_at=when,
            )
        )
    db.flush()


def test_spend_vs_budget_counts_fulfilled_lines_by_local_month_to_the_cent(db):
    berlin = factories.site(db, "berlin")
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    person = factories.user(db)
    paper = item(db, "Paper", "office_supplies", 450)
    mouse = item(db, "Mouse", "it_peripherals", 2999)
    fulfilled = LineStatus.FULFILLED
    handed_over(
        db,
        berlin,
        person,
        [
            (paper, 10, 450, fulfilled, datetime(2026, 11, 10, 9, tzinfo=UTC)),  # 45.00
            # 23:30 on 30 Nov in Berlin: still November there
            (paper, 3, 400, fulfilled, datetime(2026, 11, 30, 22, 30, tzinfo=UTC)),  # 12.00
            # 00:30 on 1 Dec in Berlin (still 30 Nov in UTC): December
            (mouse, 2, 2999, fulfilled, datetime(2026, 11, 30, 23, 30, tzinfo=UTC)),  # 59.98
            (mouse, 1, 2999, LineStatus.APPROVED, None),  # not handed over: no spend
            (paper, 1, 450, LineStatus.CANCELLED, None),
        ],
    )
    handed_over(  # another site's spend is its own
        db, new_york, person, [(paper, 100, 450, fulfilled, datetime(2026, 11, 12, tzinfo=UTC))]
    )
    tests = Actor.system("tests")
    budgets.save_grid(
        db,
        tests,
        berlin,
        [NOV, DEC],
        {
            ("office_supplies", NOV): "50",
            ("it_peripherals", DEC): "59.97",
            ("furniture", DEC): "1,200.50",
        },
    )

    rows = budgets.spend_vs_budget(db, [berlin.id], [NOV, DEC])

    table = [
        (r.month, r.category, r.spent_cents, r.budget_cents, r.variance_cents, r.over_budget)
        for r in rows
    ]
    assert table == [
        (NOV, "office_supplies", 5700, 5000, -700, True),
        (DEC, "furniture", 0, 120050, 120050, False),
        (DEC, "it_peripherals", 5998, 5997, -1, True),
    ]
    assert {r.site_id for r in rows} == {berlin.id}
    both = budgets.spend_vs_budget(db, [berlin.id, new_york.id], [NOV])
    assert [(r.site_id, r.spent_cents, r.budget_cents) for r in both] == [
        (berlin.id, 5700, 5000),
        (new_york.id, 45000, None),
    ]
    assert budgets.spend_vs_budget(db, [berlin.id], [JAN]) == []


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("1200", 120000), ("1,200.5", 120050), ("€ 99.99", 9999), ("0", 0), ("", None)],
)
def test_amounts_people_type(typed, cents):
    assert budgets.parse_amount(typed) == cents


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("-5", "cannot be negative"),
        ("twelve", "Enter an amount"),
        ("1.234", "Enter an amount"),
        ("99999999999", "more than 10,000,000"),
        ("1e9", "Enter an amount"),
    ],
)
def test_amounts_refused_with_a_reason(typed, message):
    with pytest.raises(ValueError, match=message):
        budgets.parse_amount(typed)


def berlin_world(db: Any) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    factories.user(db, email="jonas@example.com", coordinator_of=berlin)
    db.commit()
    return {"berlin": berlin, "new_york": new_york}


def test_the_grid_refuses_bad_cells_all_or_nothing_and_saves_good_ones_audited(client, db):
    world = berlin_world(db)
    client.sign_in("jonas@example.com")
    url = f"/admin/settings/budgets/sites/{world['berlin'].id}"
    page = client.get(url + "?from=2026-11").get_data(as_text=True)
    assert "Nov 2026" in page and "Apr 2027" in page and "Office supplies" in page

    bad = client.submit(
        url,
        {
            "from": "2026-11",
            "office_supplies:2026-11": "500",
            "it_peripherals:2026-11": "-20",
            "furniture:2026-12": "lots",
            "equipment:2027-01": "5000000000",
        },
        htmx=True,
    )
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert text.lstrip().startswith('<form id="budget-grid"')
    assert "A budget cannot be negative." in text
    assert "Enter an amount such as 1200 or 1,200.50." in text
    assert "That is more than 10,000,000: check the amount." in text
    assert 'value="lots"' in text  # what was typed stays, to be corrected
    assert db.scalars(select(Budget)).all() == []  # nothing half-saved

    good = client.submit(
        url, {"from": "2026-11", "office_supplies:2026-11": "500", "furniture:2026-12": "1,250.75"}
    )
    assert good.status_code == 303
    saved = {(b.category, b.month): b.amount_cents for b in db.scalars(select(Budget))}
    assert saved == {("office_supplies", NOV): 50000, ("furniture", DEC): 125075}
    assert "2 budgets of Berlin saved." in client.get(good.headers["Location"]).get_data(
        as_text=True
    )
    # Spend shows under its month; over budget is said in words, not colour alone
    person = factories.user(db)
    paper = item(db, "Paper", "office_supplies", 450)
    when = datetime(2026, 11, 10, 9, tzinfo=UTC)
    handed_over(db, world["berlin"], person, [(paper, 200, 450, LineStatus.FULFILLED, when)])
    db.commit()
    page = client.get(url + "?from=2026-11").get_data(as_text=True)
    assert 'spent €900.00<br><strong class="budget-over">Over by €400.00' in page  # 200 × €4.50
    # Emptying a cell removes that budget; both changes are in the audit log
    client.submit(url, {"from": "2026-11", "furniture:2026-12": ""})
    assert [b.category for b in db.scalars(select(Budget))] == ["office_supplies"]
    audited = db.scalars(select(AuditEvent).where(AuditEvent.action == "budget.updated")).all()
    assert [(e.before["cents"], e.after["cents"]) for e in audited] == [
        (None, 125075),
        (None, 50000),
        (125075, None),
    ]


def test_another_sites_budgets_are_not_there_for_a_coordinator(client, db):
    world = berlin_world(db)
    client.sign_in("jonas@example.com")
    other = f"/admin/settings/budgets/sites/{world['new_york'].id}"
    assert client.get(other).status_code == 404
    assert client.submit(other, {"office_supplies:2026-11": "1"}).status_code == 404
    assert db.scalars(select(Budget)).all() == []


def test_a_month_out_of_range_or_garbage_falls_back_to_recent_months(client, db):
    world = berlin_world(db)
    client.sign_in("jonas@example.com")
    url = f"/admin/settings/budgets/sites/{world['berlin'].id}"
    for value in ("9999-99", "1800-01", "<script>"):
        response = client.get(url, query_string={"from": value})
        assert response.status_code == 200
        assert 'name="from" value="9999' not in response.get_data(as_text=True)
        assert 'name="from" value="1800' not in response.get_data(as_text=True)
