"""Helpers shared by the desk, room and my-bookings views: parsing the day and site a person is
looking at, idempotency keys for forms, and turning refusals into form errors."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Site
from portal.services.booking_rules import policy_for


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(16)


def chosen_site(session: Session) -> Site:
    """The site in ?site=<slug>, else the person's home site, else the first site."""
    slug = request.args.get("site") or request.form.get("site")
    site = session.scalar(select(Site).where(Site.slug == slug)) if slug else None
    if site is None:
        site = current_user.home_site or session.scalar(select(Site).order_by(Site.name))
    return site


def today_at(site: Site, now: datetime) -> date:
    return now.astimezone(ZoneInfo(site.time_zone)).date()


def next_open_day(site: Site, day: date) -> date:
    for _ in range(7):
        if str(day.isoweekday()) in site.open_weekdays:
            return day
        day += timedelta(days=1)
    return day


def chosen_day(site: Site, now: datetime) -> tuple[date, str | None]:
    """The day in ?date=YYYY-MM-DD (default: today, or the next open day), and a message when the
    given value could not be used."""
    raw = request.args.get("date", "")
    today = today_at(site, now)
    if raw:
        try:
            return date.fromisoformat(raw), None
        except ValueError:
            return next_open_day(site, today), f"“{raw[:20]}” is not a date; showing today."
    return next_open_day(site, today), None


def horizon_days(session: Session, site: Site, desks: bool) -> int:
    policy = policy_for(session, site)
    return policy.desk_horizon_days if desks else policy.room_horizon_days
