"""Periods: an inclusive range of local days, validated, with the equal-length period before it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from portal.errors import RuleViolation

LONGEST = timedelta(days=731)  # two years, leap day included
FUTURE_LIMIT = timedelta(days=366)  # bookings exist at most a booking horizon ahead


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Period:
        """The period of the same number of days just before this one."""
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]

    def label(self) -> str:
        if self.first == self.last:
            return self.first.strftime("%a %-d %b %Y")
        if self.first.year == self.last.year:
            return f"{self.first:%-d %b} – {self.last:%-d %b %Y}"
        return f"{self.first:%-d %b %Y} – {self.last:%-d %b %Y}"


def make_period(first: date | None, last: date | None, today: date) -> Period:
    """The period the filters ask for, or RuleViolation with a message per field."""
    errors: dict[str, str] = {}
    if first is None:
        errors["day_from"] = "Choose the first day."
    if last is None:
        errors["day_to"] = "Choose the last day."
    if first and last:
        if last < first:
            errors["day_to"] = "The last day is before the first day."
        elif last - first >= LONGEST:
            errors["day_to"] = "Choose at most two years."
        elif first > today + FUTURE_LIMIT:
            errors["day_from"] = "Choose a period that starts within a year from today."
    if errors:
        raise RuleViolation(errors, "bad_period")
    assert first and last
    return Period(first, last)


def quick_ranges(today: date) -> list[tuple[str, str, Period]]:
    """(key, label, period) for the filter bar's shortcuts."""
    week_start = today - timedelta(days=today.weekday())
    last_week = Period(week_start - timedelta(days=7), week_start - timedelta(days=1))
    month_start = today.replace(day=1)
    prev_month_end = month_start - timedelta(days=1)
    last_month = Period(prev_month_end.replace(day=1), prev_month_end)
    quarter_month = 3 * ((today.month - 1) // 3) + 1
    quarter_start = date(today.year, quarter_month, 1)
    next_quarter = (
        date(today.year + 1, 1, 1)
        if quarter_month == 10
        else date(today.year, quarter_month + 3, 1)
    )
    return [
        ("last-week", "Last week", last_week),
        ("last-month", "Last month", last_month),
        ("this-quarter", "This quarter", Period(quarter_start, next_quarter - timedelta(days=1))),
        (
            "last-90-days",
            "Last 90 days",
            Period(today - timedelta(days=90), today - timedelta(days=1)),
        ),
    ]


def default_period(today: date) -> Period:
    """Last month: what coordinators report on."""
    return quick_ranges(today)[1][2]
