"""The Spend and stock dashboard: fulfilled spend by category and month against the monthly budgets
(over-budget months flagged), top items, the value of the stock on the shelves and the items at or
below their reorder point. Spend is counted in whole calendar months, like the budgets."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import CatalogItem, LineStatus, RequestLine, Ticket
from portal.models.service_desk import StockLevel
from portal.services.budgets import (
    CATEGORIES,
    SpendRow,
    add_months,
    category_label,
    first_of_month,
    spend_vs_budget,
)
from portal.services.dashboards.period import Period
from portal.services.dashboards.scope import Scope
from portal.services.dashboards.values import Chart, DashboardData, Kpi, Series, Table
from portal.timezones import local_day_bounds

TOP_ITEMS = 10
OVER = "over"


def months_of(period: Period) -> list[date]:
    """The calendar months the period touches, first days."""
    months, month = [], first_of_month(period.first)
    while month <= period.last:
        months.append(month)
        month = add_months(month, 1)
    return months


def previous_months(months: list[date]) -> list[date]:
    """As many months just before the first one."""
    return [add_months(months[0], -len(months) + i) for i in range(len(months))]


def _money(cents: int | None) -> float | None:
    return None if cents is None else round(cents / 100, 2)


def build(session: Session, scope: Scope, period: Period) -> DashboardData:
    months = months_of(period)
    before = previous_months(months)
    rows = spend_vs_budget(session, scope.site_ids, [*before, *months])
    now_rows = [r for r in rows if r.month >= months[0]]
    before_rows = [r for r in rows if r.month < months[0]]
    spent = sum(r.spent_cents for r in now_rows)
    spent_before = sum(r.spent_cents for r in before_rows)
    budget = _budget_total(now_rows)
    budget_before = _budget_total(before_rows)
    over = [r for r in now_rows if r.over_budget]
    over_before = [r for r in before_rows if r.over_budget]
    stock_cents, low = _stock(session, scope)

    month_span = (
        f"{months[0]:%b %Y}" if len(months) == 1 else f"{months[0]:%b %Y} – {months[-1]:%b %Y}"
    )
    kpis = [
        Kpi(
            "spend",
            "Fulfilled spend",
            _money(spent),
            _money(spent_before),
            "money",
            "spend_fulfilled",
            higher_is_better=False,
            detail=month_span,
        ),
        Kpi(
            "budget",
            "Budget",
            _money(budget),
            _money(budget_before),
            "money",
            "spend_budget",
            detail=_variance_text(spent, budget, now_rows),
        ),
        Kpi(
            "over_budget",
            "Over budget",
            len(over),
            len(over_before),
            "count",
            "spend_budget",
            higher_is_better=False,
            detail="category-months over their budget",
        ),
        Kpi(
            "stock_value",
            "Stock value",
            _money(stock_cents),
            None,
            "money",
            "stock_value",
            detail="on the shelves today",
        ),
        Kpi(
            "below_reorder",
            "Below reorder point",
            len(low.rows),
            None,
            "count",
            "stock_below_reorder",
            higher_is_better=False,
            detail="stock levels to reorder",
        ),
    ]

    # Spend and budget by category over the months counted; a category over budget in any
    # month says so in its label, so the flag does not rest on colour.
    by_category: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # spent, budget, overs
    for r in now_rows:
        totals = by_category[r.category]
        totals[0] += r.spent_cents
        totals[1] += r.budget_cents or 0
        totals[2] += 1 if r.over_budget else 0
    categories = [c for c in CATEGORIES if c in by_category] + sorted(
        c for c in by_category if c not in CATEGORIES
    )
    charts = [
        Chart(
            "spend_by_category",
            "Spend against budget by category",
            "bar",
            [category_label(c) + (" ▲ over" if by_category[c][2] else "") for c in categories],
            [
                Series("Fulfilled spend", [_money(by_category[c][0]) for c in categories], 0),
                Series("Budget", [_money(by_category[c][1]) for c in categories], 1),
            ],
            "money",
            "spend_budget",
            category_label="Category",
            note="▲ over: the category spent more than its budget in at least one month."
            if any(by_category[c][2] for c in categories)
            else "",
        ),
        _by_month(months, now_rows),
    ]
    tables = [_variance_table(scope, now_rows), _top_items(session, scope, months), low]
    return DashboardData(kpis, charts, tables)


def _budget_total(rows: list[SpendRow]) -> int | None:
    budgets = [r.budget_cents for r in rows if r.budget_cents is not None]
    return sum(budgets) if budgets else None


def _variance_text(spent: int, budget: int | None, rows: list[SpendRow]) -> str:
    if budget is None:
        return "No budget set for these months"
    # Variance only where a budget exists: unbudgeted spend is not "over".
    budgeted_spend = sum(r.spent_cents for r in rows if r.budget_cents is not None)
    variance = budget - budgeted_spend
    amount = f"{abs(variance) / 100:,.2f}"
    return f"▼ {amount} under budget" if variance >= 0 else f"▲ {amount} over budget"


def _by_month(months: list[date], rows: list[SpendRow]) -> Chart:
    spent: dict[date, int] = defaultdict(int)
    budget: dict[date, int] = defaultdict(int)
    for r in rows:
        spent[r.month] += r.spent_cents
        budget[r.month] += r.budget_cents or 0
    return Chart(
        "spend_by_month",
        "Fulfilled spend and budget by month",
        "bar",
        [f"{m:%b %Y}" + (" ▲ over" if spent[m] > budget[m] > 0 else "") for m in months],
        [
            Series("Fulfilled spend", [_money(spent[m]) for m in months], 0),
            Series("Budget", [_money(budget[m]) for m in months], 1),
        ],
        "money",
        "spend_fulfilled",
        category_label="Month",
    )


def _variance_table(scope: Scope, rows: list[SpendRow]) -> Table:
    names = {s.id: s.name for s in scope.sites}
    several = len(scope.sites) > 1
    body, marks = [], []
    for r in rows:
        if r.budget_cents is None:
            state = "No budget"
        elif r.over_budget:
            state = "▲ Over budget"
        else:
            state = "Within budget"
        body.append(
            [
                f"{r.month:%b %Y}",
                *([names.get(r.site_id, "")] if several else []),
                category_label(r.category),
                _money(r.spent_cents),
                _money(r.budget_cents),
                _money(r.variance_cents),
                state,
            ]
        )
        marks.append(OVER if r.over_budget else "")
    return Table(
        "budget_variance",
        "Budget variance by month and category",
        [
            "Month",
            *(["Site"] if several else []),
            "Category",
            "Spend",
            "Budget",
            "Variance",
            "State",
        ],
        body,
        "money",
        units=["text", *(["text"] if several else []), "text", "money", "money", "money", "text"],
        marks=marks,
    )


def _top_items(session: Session, scope: Scope, months: list[date]) -> Table:
    """Summed in SQL per item; each site's month boundaries are in its own zone."""
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for site in scope.sites:
        zone = ZoneInfo(site.time_zone)
        start, _ = local_day_bounds(months[0], zone)
        end, _ = local_day_bounds(add_months(months[-1], 1), zone)
        for item_id, quantity, cents in session.execute(
            select(
                RequestLine.item_id,
                func.sum(RequestLine.quantity),
                func.sum(RequestLine.quantity * RequestLine.unit_price_cents),
            )
            .join(Ticket, Ticket.id == RequestLine.ticket_id)
            .where(
                Ticket.site_id == site.id,
                RequestLine.status == LineStatus.FULFILLED,
                RequestLine.fulfilled_at >= start,
                RequestLine.fulfilled_at < end,
            )
            .group_by(RequestLine.item_id)
        ):
            totals[item_id][0] += int(quantity or 0)
            totals[item_id][1] += int(cents or 0)
    top = sorted(totals.items(), key=lambda kv: (-kv[1][1], kv[0]))[:TOP_ITEMS]
    items = {
        i.id: i
        for i in session.scalars(select(CatalogItem).where(CatalogItem.id.in_([k for k, _ in top])))
    }
    return Table(
        "top_items",
        "Top items by spend",
        ["Item", "Category", "Quantity", "Spend"],
        [
            [items[k].name, category_label(items[k].category), q, _money(c)]
            for k, (q, c) in top
            if k in items
        ],
        "money",
        units=["text", "text", "count", "money"],
    )


def _stock(session: Session, scope: Scope) -> tuple[int, Table]:
    """Stock value today (summed in SQL) and the stock levels at or below their reorder point."""
    value = session.scalar(
        select(func.coalesce(func.sum(StockLevel.on_hand * CatalogItem.price_cents), 0))
        .join(CatalogItem, CatalogItem.id == StockLevel.item_id)
        .where(StockLevel.site_id.in_(scope.site_ids), StockLevel.on_hand > 0)
    )
    available = StockLevel.on_hand - StockLevel.reserved
    rows = session.execute(
        select(
            CatalogItem.name,
            StockLevel.site_id,
            StockLevel.on_hand,
            StockLevel.reserved,
            StockLevel.reorder_point,
        )
        .join(CatalogItem, CatalogItem.id == StockLevel.item_id)
        .where(
            StockLevel.site_id.in_(scope.site_ids),
            CatalogItem.active.is_(True),
            StockLevel.reorder_point > 0,
            available <= StockLevel.reorder_point,
        )
        .order_by(CatalogItem.name, StockLevel.site_id)
    ).all()
    names = {s.id: s.name for s in scope.sites}
    several = len(scope.sites) > 1
    table = Table(
        "below_reorder",
        "Items at or below their reorder point",
        [
            "Item",
            *(["Site"] if several else []),
            "On hand",
            "Reserved",
            "Available",
            "Reorder point",
        ],
        [
            [
                name,
                *([names.get(site_id, "")] if several else []),
                on_hand,
                reserved,
                max(on_hand - reserved, 0),
                point,
            ]
            for name, site_id, on_hand, reserved, point in rows
        ],
        units=["text", *(["text"] if several else []), "count", "count", "count", "count"],
    )
    return int(value or 0), table
