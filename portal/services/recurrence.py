"""Recurring bookings as RFC 5545 RRULEs in the site's zone: building them from what a person
chose, checking their size, and expanding them into wall-clock occurrences (DST-safe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dateutil.rrule import rrulestr

from portal.errors import RuleViolation

MAX_OCCURRENCES = 200
MAX_SPAN_DAYS = 366
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}


@dataclass(frozen=True)
class Repeat:
    """What the booking form asks: how often, on which days, until when."""

    frequency: str  # daily | weekly | monthly_date | monthly_weekday
    interval: int = 1
    weekdays: tuple[str, ...] = field(default_factory=tuple)  # for weekly: MO..SU
    until: date | None = None
    count: int | None = None


def build_rrule(repeat: Repeat, first: datetime) -> str:
    """The RRULE text for a Repeat starting at `first` (local wall time); RuleViolation if unusable."""
    errors: dict[str, str] = {}
    if repeat.frequency not in {"daily", "weekly", "monthly_date", "monthly_weekday"}:
        errors["frequency"] = "Choose how often the booking repeats."
    if not 1 <= repeat.interval <= 12:
        errors["interval"] = "Repeat every 1 to 12 days, weeks or months."
    if repeat.frequency == "weekly":
        bad = [d for d in repeat.weekdays if d not in WEEKDAYS]
        if bad or not repeat.weekdays:
            errors["weekdays"] = "Pick at least one weekday."
    if (repeat.until is None) == (repeat.count is None):
        errors["until"] = "Say when the series ends: on a date or after a number of times."
    if repeat.count is not None and not 1 <= repeat.count <= MAX_OCCURRENCES:
        errors["count"] = f"A series can have at most {MAX_OCCURRENCES} occurrences."
    if repeat.until is not None:
        if repeat.until < first.date():
            errors["until"] = "The end date is before the first occurrence."
        elif (repeat.until - first.date()).days > MAX_SPAN_DAYS:
            errors["until"] = "A series can run for at most a year; book again next year."
    if errors:
        raise RuleViolation(errors, rule="recurrence")

    parts = []
    if repeat.frequency == "daily":
        parts.append("FREQ=DAILY")
    elif repeat.frequency == "weekly":
        ordered = [d for d in WEEKDAYS if d in repeat.weekdays]
        parts += ["FREQ=WEEKLY", "BYDAY=" + ",".join(ordered)]
    elif repeat.frequency == "monthly_date":
        parts += ["FREQ=MONTHLY", f"BYMONTHDAY={first.day}"]
    else:
        ordinal = (first.day - 1) // 7 + 1
        if (first + timedelta(days=7)).month != first.month:
            ordinal = -1  # "last Friday" rather than a fifth that most months lack
        parts += ["FREQ=MONTHLY", f"BYDAY={ordinal}{WEEKDAYS[first.weekday()]}"]
    if repeat.interval > 1:
        parts.append(f"INTERVAL={repeat.interval}")
    if repeat.count is not None:
        parts.append(f"COUNT={repeat.count}")
    else:
        assert repeat.until is not None
        parts.append(f"UNTIL={repeat.until.strftime('%Y%m%d')}T235959")
    rule = ";".join(parts)
    occurrences(rule, first, limit=MAX_OCCURRENCES + 1)  # raises when too many
    return rule


def occurrences(
    rule: str,
    first: datetime,
    skipped: set[date] | frozenset[date] = frozenset(),
    *,
    after: datetime | None = None,
    until: datetime | None = None,
    limit: int = MAX_OCCURRENCES,
) -> list[datetime]:
    """Wall-clock starts (naive, in the series' zone) of the occurrences, in order."""
    try:
        expanded = rrulestr(rule, dtstart=first)
    except (ValueError, TypeError) as exc:
        raise RuleViolation(
            {"frequency": f"That repeat pattern is not valid ({exc})."}, rule="recurrence"
        ) from exc
    result = []
    for index, start in enumerate(expanded):
        if index >= limit:
            raise RuleViolation(
                {
                    "count": f"That would make more than {MAX_OCCURRENCES} bookings; shorten the series."
                },
                rule="recurrence",
            )
        if until is not None and start > until:
            break
        if start.date() in skipped or (after is not None and start < after):
            continue
        result.append(start)
    return result


def describe(rule: str) -> str:
    """A short human description, e.g. "every 2 weeks on Mon, Wed, 10 times"."""
    fields = dict(part.split("=", 1) for part in rule.split(";") if "=" in part)
    interval = int(fields.get("INTERVAL", "1"))
    unit = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month"}.get(fields.get("FREQ", ""), "")
    text = f"every {interval} {unit}s" if interval > 1 else f"every {unit}"
    names = {
        "MO": "Mon",
        "TU": "Tue",
        "WE": "Wed",
        "TH": "Thu",
        "FR": "Fri",
        "SA": "Sat",
        "SU": "Sun",
    }
    if "BYDAY" in fields:
        days = fields["BYDAY"].split(",")
        if fields.get("FREQ") == "MONTHLY":
            day = days[0]
            ordinal = int(day[:-2])
            text += f" on the {ORDINALS.get(ordinal, str(ordinal))} {names[day[-2:]]}"
        else:
            text += " on " + ", ".join(names[d] for d in days)
    if "BYMONTHDAY" in fields:
        text += f" on day {fields['BYMONTHDAY']}"
    if "COUNT" in fields:
        text += f", {fields['COUNT']} times"
    elif "UNTIL" in fields:
        until = datetime.strptime(fields["UNTIL"][:8], "%Y%m%d").date()
        text += f", until {until:%-d %b %Y}"
    return text
