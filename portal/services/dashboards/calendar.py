"""Open days and blackouts: what "available" means for desk-days and room hours."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Blackout, Site
from portal.services.dashboards.period import Period
from portal.timezones import to_utc


def opening_window(site: Site, day: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(site.time_zone)
    return (
        to_utc(datetime.combine(day, site.opens_at), zone),
        to_utc(datetime.combine(day, site.closes_at), zone),
    )


def open_hours(site: Site) -> float:
    """The opening hours of a day, as the clock on the wall shows them."""
    opens = site.opens_at.hour * 60 + site.opens_at.minute
    closes = site.closes_at.hour * 60 + site.closes_at.minute
    return max(closes - opens, 0) / 60


class Availability:
    """Which days are open at each site, and which resources are blacked out on which days."""

    def __init__(self, session: Session, sites: list[Site], periods: list[Period]) -> None:
        first = min(p.first for p in periods)
        last = max(p.last for p in periods)
        self.sites = {s.id: s for s in sites}
        self.site_closed: dict[int, set[date]] = defaultdict(set)
        self.resource_closed: dict[int, set[date]] = defaultdict(set)
        windows = {
            (s.id, d): opening_window(s, d) for s in sites for d in Period(first, last).each_day()
        }
        earliest = min(w[0] for w in windows.values()) - timedelta(days=1)
        latest = max(w[1] for w in windows.values()) + timedelta(days=1)
        blackouts = session.scalars(
            select(Blackout).where(
                Blackout.site_id.in_(list(self.sites)),
                Blackout.starts_at < latest,
                Blackout.ends_at > earliest,
            )
        ).all()
        for blackout in blackouts:
            site = self.sites[blackout.site_id]
            for day in Period(first, last).each_day():
                opens, closes = windows[(site.id, day)]
                if blackout.starts_at < closes and blackout.ends_at > opens:
                    target = (
                        self.site_closed[site.id]
                        if blackout.resource_id is None
                        else self.resource_closed[blackout.resource_id]
                    )
                    target.add(day)

    def is_open(self, site_id: int, day: date) -> bool:
        site = self.sites[site_id]
        return str(day.isoweekday()) in site.open_weekdays and day not in self.site_closed[site_id]

    def resource_open(self, site_id: int, resource_id: int, day: date) -> bool:
        return self.is_open(site_id, day) and day not in self.resource_closed.get(resource_id, ())
