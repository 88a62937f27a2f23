"""Showing UTC instants in a person's or a site's zone, always with the zone named."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.models import Site, User

DEFAULT_ZONE = "UTC"


def zone_for(user: User | None, site: Site | None = None) -> ZoneInfo:
    """A site's own zone when showing that site's things; otherwise the person's preference, then
    their home site's zone."""
    if site is not None:
        return ZoneInfo(site.time_zone)
    if user is not None and getattr(user, "time_zone", None):
        return ZoneInfo(user.time_zone)
    if user is not None and getattr(user, "home_site", None) is not None:
        return ZoneInfo(user.home_site.time_zone)
    return ZoneInfo(DEFAULT_ZONE)


def format_local(instant: datetime | None, zone: ZoneInfo, with_date: bool = True) -> str:
    """E.g. "Mon 30 Nov 2026, 14:05 CET" — the abbreviation names the zone and its DST state."""
    if instant is None:
        return "—"
    local = instant.astimezone(zone)
    text = local.strftime("%a %-d %b %Y, %H:%M" if with_date else "%H:%M")
    return f"{text} {local.tzname()}"


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in `zone` as a UTC instant. In the spring-forward gap the time does not
    exist and is moved forward by the gap; in the autumn fold the first occurrence is taken."""
    # fold=0 does both: in a gap it applies the offset from before the change (moving the
    # time forward), and in a fold it picks the first of the two instants.
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which a local calendar day starts and ends (23 or 25 hours on DST days)."""
    start = to_utc(datetime.combine(day, time()), zone)
    end = to_utc(datetime.combine(day + timedelta(days=1), time()), zone)
    return start, end
