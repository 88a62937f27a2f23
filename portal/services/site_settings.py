"""A site's own settings: its time zone, business hours, open weekdays and holidays (validated and
audited).

Holidays are not booking blackouts. A blackout (portal/services/site_rules.py, /admin/rules/) is a
period in which bookings are refused, for the whole site or one room or desk, often for
maintenance, while the office is open and the facilities team at work. A holiday is a named day the
site is closed: the SLA clock (portal/services/sla.py) does not run on it. A coordinator who wants
no bookings on a holiday adds a blackout as well."""

from __future__ import annotations

from datetime import date, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import Site
from portal.models.budgets import SiteHoliday
from portal.services import audit
from portal.services.audit import Actor

WEEKDAY_NAMES = {
    "1": "Monday",
    "2": "Tuesday",
    "3": "Wednesday",
    "4": "Thursday",
    "5": "Friday",
    "6": "Saturday",
    "7": "Sunday",
}


def valid_zone(name: str) -> bool:
    """An IANA zone name this machine knows (e.g. Europe/Berlin); not "localtime" or a path."""
    if not name or name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _snapshot(site: Site) -> dict[str, str]:
    return {
        "time_zone": site.time_zone,
        "opens_at": f"{site.opens_at:%H:%M}",
        "closes_at": f"{site.closes_at:%H:%M}",
        "open_weekdays": site.open_weekdays,
    }


def update_hours(
    session: Session,
    actor: Actor,
    site: Site,
    *,
    time_zone: str,
    opens_at: time | None,
    closes_at: time | None,
    open_weekdays: list[str],
) -> Site:
    """Change the zone, hours and open weekdays; RuleViolation names every bad field."""
    errors: dict[str, str] = {}
    time_zone = time_zone.strip()
    if not valid_zone(time_zone):
        errors["time_zone"] = (
            f"“{time_zone[:60]}” is not a time zone Foyer knows. Use an IANA name such as "
            "Europe/Berlin or America/New_York."
            if time_zone
            else "Choose the site's time zone."
        )
    if opens_at is None:
        errors["opens_at"] = "Enter the opening time, e.g. 08:00."
    if closes_at is None:
        errors["closes_at"] = "Enter the closing time, e.g. 18:00."
    if opens_at is not None and closes_at is not None and closes_at <= opens_at:
        errors["closes_at"] = f"Closing must be after opening ({opens_at:%H:%M})."
    days = sorted(set(open_weekdays))
    if not days:
        errors["open_weekdays"] = "Tick at least one day the site is open."
    elif any(d not in WEEKDAY_NAMES for d in days):
        errors["open_weekdays"] = "Choose days from Monday to Sunday."
    if errors:
        raise RuleViolation(errors, "site_hours")
    before = _snapshot(site)
    site.time_zone = time_zone
    site.opens_at = opens_at  # type: ignore[assignment] - checked above
    site.closes_at = closes_at  # type: ignore[assignment]
    site.open_weekdays = "".join(days)
    after = _snapshot(site)
    if after != before:
        audit.record(session, actor, "site.hours_updated", site, before=before, after=after)
    session.flush()
    return site


def holidays(session: Session, site: Site) -> list[SiteHoliday]:
    return list(
        session.scalars(
            select(SiteHoliday).where(SiteHoliday.site_id == site.id).order_by(SiteHoliday.day)
        )
    )


def add_holiday(
    session: Session, actor: Actor, site: Site, *, day: date | None, name: str
) -> SiteHoliday:
    name = " ".join(name.split())
    errors: dict[str, str] = {}
    if day is None:
        errors["day"] = "Enter the date, e.g. 2026-12-24."
    elif not date(2000, 1, 1) <= day <= date(2100, 12, 31):
        errors["day"] = "Enter a date between 2000 and 2100."
    if not name:
        errors["name"] = "Name the holiday, e.g. Christmas Eve."
    elif len(name) > 120:
        errors["name"] = "Use at most 120 characters."
    if not errors and session.scalar(
        select(SiteHoliday.name).where(SiteHoliday.site_id == site.id, SiteHoliday.day == day)
    ):
        errors["day"] = f"{day:%-d %B %Y} is already a holiday at {site.name}."
    if errors:
        raise RuleViolation(errors, "holiday")
    holiday = SiteHoliday(site_id=site.id, day=day, name=name)
    session.add(holiday)
    session.flush()
    session.expire(site, ["holidays"])  # the SLA clock reads Site.holidays
    audit.record(
        session, actor, "site_holiday.added", site, after={"day": day.isoformat(), "name": name}
    )
    return holiday


def remove_holiday(session: Session, actor: Actor, holiday: SiteHoliday) -> None:
    site = session.get(Site, holiday.site_id)
    audit.record(
        session,
        actor,
        "site_holiday.removed",
        object_type="sites",
        object_id=holiday.site_id,
        before={"day": holiday.day.isoformat(), "name": holiday.name},
    )
    session.delete(holiday)
    session.flush()
    if site is not None:
        session.expire(site, ["holidays"])
