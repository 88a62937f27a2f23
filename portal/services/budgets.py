"""Monthly budgets per site and catalog category, and spend against them.

Spend is what was handed over: request lines FULFILLED in the month (by their `fulfilled_at` in
the site's own zone), quantity × the unit price recorded on the line, by the item's category.
Amounts are integer cents in the installation's currency."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import CatalogItem, ItemCategory, LineStatus, RequestLine, Site, Ticket
from portal.models.budgets import Budget
from portal.services import audit
from portal.services.audit import Actor
from portal.services.vendors import ITEM_CATEGORIES
from portal.timezones import to_utc

# A budget above this (ten million in the currency) is a typo, not a plan.
MAX_CENTS = 10_000_000_00
CATEGORIES = [c.value for c in ItemCategory]


def category_label(category: str) -> str:
    return ITEM_CATEGORIES.get(category, category.replace("_", " ").capitalize())


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_from(start: date, count: int) -> list[date]:
    return [add_months(first_of_month(start), i) for i in range(count)]


def parse_amount(raw: str) -> int | None:
    """Cents from what a person types ("1200", "1,200.50", "1 200,5" is refused: ambiguous).
    None for an empty cell (no budget); ValueError with a message for anything else."""
    text = raw.strip().replace("\u00a0", "").replace(" ", "")
    for symbol in ("€", "$", "£"):
        text = text.removeprefix(symbol)
    if not text:
        return None
    if text.startswith("-") or text.startswith("−"):
        raise ValueError("A budget cannot be negative.")
    whole, _, fraction = text.replace(",", "").partition(".")
    if not whole.isdecimal() or (fraction and (not fraction.isdecimal() or len(fraction) > 2)):
        raise ValueError("Enter an amount such as 1200 or 1,200.50.")
    cents = int(whole) * 100 + int((fraction or "0").ljust(2, "0"))
    if cents > MAX_CENTS:
        raise ValueError("That is more than 10,000,000: check the amount.")
    return cents


def budgets_for(session: Session, site: Site, months: list[date]) -> dict[tuple[str, date], int]:
    rows = session.execute(
        select(Budget.category, Budget.month, Budget.amount_cents).where(
            Budget.site_id == site.id, Budget.month.in_(months)
        )
    )
    return {(category, month): cents for category, month, cents in rows}


def save_grid(
    session: Session,
    actor: Actor,
    site: Site,
    months: list[date],
    cells: dict[tuple[str, date], str],
) -> int:
    """Set every cell of the grid (category, month) -> typed amount; an empty cell removes that
    budget. All or nothing: any bad cell raises RuleViolation keyed "<category>:<YYYY-MM>".
    Returns how many budgets changed."""
    errors: dict[str, str] = {}
    wanted: dict[tuple[str, date], int | None] = {}
    for (category, month), raw in cells.items():
        key = cell_key(category, month)
        if category not in CATEGORIES or month not in months:
            errors[key] = "Unknown category or month."
            continue
        try:
            wanted[(category, month)] = parse_amount(raw)
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise RuleViolation(errors, "budget")
    existing = {
        (b.category, b.month): b
        for b in session.scalars(
            select(Budget).where(Budget.site_id == site.id, Budget.month.in_(months))
        )
    }
    changed = 0
    for (category, month), cents in sorted(wanted.items()):
        row = existing.get((category, month))
        before = row.amount_cents if row else None
        if before == cents:
            continue
        if cents is None and row is not None:
            session.delete(row)
        elif row is None:
            session.add(
                Budget(
                    site_id=site.id,
                    category=category,
                    month=month,
                    amount_cents=cents,
                    updated_by_id=actor.user_id,
                )
            )
        else:
            row.amount_cents = cents  # type: ignore[assignment] - not None here
            row.updated_by_id = actor.user_id
        changed += 1
        audit.record(
            session,
            actor,
            "budget.updated",
            site,
            before={"category": category, "month": f"{month:%Y-%m}", "cents": before},
            after={"category": category, "month": f"{month:%Y-%m}", "cents": cents},
        )
    session.flush()
    return changed


def cell_key(category: str, month: date) -> str:
    return f"{category}:{month:%Y-%m}"


# ---------------------------------------------------------------------------------------------
# Spend against budget (the spend dashboard reads this)


@dataclass(frozen=True)
class SpendRow:
    site_id: int
    month: date
    category: str
    spent_cents: int
    budget_cents: int | None  # None: no budget set

    @property
    def variance_cents(self) -> int | None:
        """Budget minus spend: negative when over budget."""
        return None if self.budget_cents is None else self.budget_cents - self.spent_cents

    @property
    def over_budget(self) -> bool:
        return self.budget_cents is not None and self.spent_cents > self.budget_cents


def spend_vs_budget(
    session: Session, site_ids: Iterable[int], months: Iterable[date]
) -> list[SpendRow]:
    """Fulfilled spend by site, month and category against the budget, for every (site, month,
    category) that has a budget or any spend; sorted by site, month, category."""
    wanted_months = sorted({first_of_month(m) for m in months})
    sites = list(session.scalars(select(Site).where(Site.id.in_(list(site_ids)))))
    if not sites or not wanted_months:
        return []
    spent: dict[tuple[int, date, str], int] = {}
    budgets: dict[tuple[int, date, str], int] = {}
    for site in sites:
        zone = ZoneInfo(site.time_zone)
        start = _local_midnight(wanted_months[0], zone)
        end = _local_midnight(add_months(wanted_months[-1], 1), zone)
        # One query per site: its month boundaries are in its own zone. The lines of the period
        # are few (handed-over goods), so they are bucketed into months here.
        lines = session.execute(
            select(
                RequestLine.fulfilled_at,
                CatalogItem.category,
                RequestLine.quantity * RequestLine.unit_price_cents,
            )
            .join(Ticket, Ticket.id == RequestLine.ticket_id)
            .join(CatalogItem, CatalogItem.id == RequestLine.item_id)
            .where(
                Ticket.site_id == site.id,
                RequestLine.status == LineStatus.FULFILLED,
                RequestLine.fulfilled_at >= start,
                RequestLine.fulfilled_at < end,
            )
        )
        for fulfilled_at, category, cents in lines:
            month = first_of_month(fulfilled_at.astimezone(zone).date())
            if month in wanted_months:
                key = (site.id, month, category)
                spent[key] = spent.get(key, 0) + int(cents)
        for category, month, cents in session.execute(
            select(Budget.category, Budget.month, Budget.amount_cents).where(
                Budget.site_id == site.id, Budget.month.in_(wanted_months)
            )
        ):
            budgets[(site.id, month, category)] = cents
    return [
        SpendRow(*key, spent_cents=spent.get(key, 0), budget_cents=budgets.get(key))
        for key in sorted(set(spent) | set(budgets))
    ]


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return to_utc(datetime.combine(day, time(0)), zone)
