"""The booking rules, all in one place. Each check raises RuleViolation naming its rule and saying
what to change; the booking operations in bookings.py call `check_request` before they write.

Rules come from the site's BookingPolicy (one row per site, defaults below) and from the resource
(disabled, restricted to departments, needs approval, buffer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import (
    HOLDING_STATUSES,
    Blackout,
    Booking,
    BookingPolicy,
    Desk,
    DeskAssignment,
    Resource,
    Room,
    Site,
    User,
)
from portal.models.bookings import overlaps_window
from portal.timezones import local_day_bounds, to_utc

# A booking may start this long before "now" (a form opened a moment ago, "book now" buttons).
PAST_TOLERANCE = timedelta(minutes=5)
WEEKDAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def policy_for(session: Session, site: Site) -> BookingPolicy:
    """The site's policy, read once per session (a request asks for it many times)."""
    cache = session.info.setdefault("booking_policies", {})
    if site.id in cache:
        return cache[site.id]
    policy = session.scalar(select(BookingPolicy).where(BookingPolicy.site_id == site.id))
    if policy is None:  # a site without its own row books under the defaults
        policy = BookingPolicy(
            site_id=site.id,
            desk_horizon_days=14,
            room_horizon_days=90,
            min_minutes=15,
            room_max_minutes=480,
            one_desk_per_day=True,
            max_upcoming_room_bookings=20,
            midday=time(13, 0),
            check_in_opens_minutes=15,
            check_in_grace_minutes=15,
            show_booker_names=True,
        )
    cache[site.id] = policy
    return policy


@dataclass(frozen=True)
class DeskSlot:
    """Desks are booked by the day, the morning or the afternoon, in the site's hours."""

    name: str  # day | morning | afternoon
    label: str

    def bounds(self, site: Site, policy: BookingPolicy, day: date) -> tuple[datetime, datetime]:
        zone = ZoneInfo(site.time_zone)
        opens, closes = site.opens_at, site.closes_at
        if self.name == "morning":
            closes = policy.midday
        elif self.name == "afternoon":
            opens = policy.midday
        return (
            to_utc(datetime.combine(day, opens), zone),
            to_utc(datetime.combine(day, closes), zone),
        )


DESK_SLOTS = {
    "day": DeskSlot("day", "All day"),
    "morning": DeskSlot("morning", "Morning"),
    "afternoon": DeskSlot("afternoon", "Afternoon"),
}


def check_request(
    session: Session,
    *,
    resource: Resource,
    booker: User,
    start: datetime,
    end: datetime,
    now: datetime,
    ignore_booking_id: int | None = None,
    check_horizon: bool = True,
) -> None:
    """Every rule a new or changed booking must pass, except the overlap itself (checked under a
    lock in bookings.py). Raises RuleViolation on the first broken rule."""
    site = resource.site
    policy = policy_for(session, site)
    zone = ZoneInfo(site.time_zone)
    is_desk = isinstance(resource, Desk)

    if not resource.active:
        reason = f": {resource.disabled_reason}" if resource.disabled_reason else ""
        raise RuleViolation({"resource": f"{resource.name} is out of use{reason}."}, "disabled")
    if end <= start:
        raise RuleViolation({"end": "The end must be after the start."}, "end_before_start")
    if end <= now or (not is_desk and start < now - PAST_TOLERANCE):
        raise RuleViolation({"start": "That time has already passed; pick a later one."}, "past")

    minutes = (end - start).total_seconds() / 60
    if not is_desk and minutes < policy.min_minutes:
        raise RuleViolation(
            {"duration": f"Bookings last at least {policy.min_minutes} minutes."}, "min_length"
        )
    if not is_desk and minutes > policy.room_max_minutes:
        hours = policy.room_max_minutes / 60
        raise RuleViolation(
            {"duration": f"Rooms can be booked for at most {hours:g} hours at a time."},
            "max_length",
        )

    horizon = policy.desk_horizon_days if is_desk else policy.room_horizon_days
    local_start = start.astimezone(zone)
    last_day = now.astimezone(zone).date() + timedelta(days=horizon)
    if check_horizon and local_start.date() > last_day:
        raise RuleViolation(
            {
                "date": f"{'Desks' if is_desk else 'Rooms'} can be booked up to {horizon} days ahead "
                f"(until {last_day:%a %-d %b})."
            },
            "horizon",
        )

    _check_business_hours(site, start, end, zone)
    _check_blackouts(session, resource, start, end, zone)

    if resource.allowed_departments and booker.department not in resource.allowed_departments:
        raise RuleViolation(
            {
                "resource": f"{resource.name} is reserved for "
                f"{', '.join(resource.allowed_departments)}."
            },
            "restricted",
        )
    if is_desk:
        _check_desk_rules(session, resource, booker, policy, start, zone, ignore_booking_id)
    elif isinstance(resource, Room):
        _check_room_quota(session, booker, policy, now, ignore_booking_id)


def _check_business_hours(site: Site, start: datetime, end: datetime, zone: ZoneInfo) -> None:
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    hours = f"{site.opens_at:%H:%M}–{site.closes_at:%H:%M}"
    if str(local_start.isoweekday()) not in site.open_weekdays:
        raise RuleViolation(
            {"date": f"{site.name} is closed on {WEEKDAY_NAMES[local_start.weekday()]}s."},
            "business_hours",
        )
    if (
        local_start.date() != local_end.date()
        or local_start.time() < site.opens_at
        or local_end.time() > site.closes_at
    ):
        raise RuleViolation(
            {"start": f"{site.name} is open {hours} ({zone.key}); book within those hours."},
            "business_hours",
        )


def _check_blackouts(
    session: Session, resource: Resource, start: datetime, end: datetime, zone: ZoneInfo
) -> None:
    # The id alone (the usual answer is "none"); the row is loaded only when there is one.
    found = session.scalar(
        select(Blackout.id)
        .where(
            Blackout.site_id == resource.site_id,
            (Blackout.resource_id.is_(None)) | (Blackout.resource_id == resource.id),
            Blackout.starts_at < end,
            start < Blackout.ends_at,
        )
        .limit(1)
    )
    if found is not None:
        blackout = session.get_one(Blackout, found)
        until = blackout.ends_at.astimezone(zone)
        raise RuleViolation(
            {"date": f"Not bookable until {until:%a %-d %b %H:%M}: {blackout.reason or 'closed'}."},
            "blackout",
        )


def _check_desk_rules(
    session: Session,
    desk: Desk,
    booker: User,
    policy: BookingPolicy,
    start: datetime,
    zone: ZoneInfo,
    ignore_booking_id: int | None,
) -> None:
    if desk.assignment == DeskAssignment.ASSIGNED and desk.assigned_user_id != booker.id:
        raise RuleViolation({"resource": f"Desk {desk.name} is assigned to someone."}, "assigned")
    if not policy.one_desk_per_day:
        return
    day_start, day_end = local_day_bounds(start.astimezone(zone).date(), zone)
    found = session.scalar(
        select(Booking.id)
        .join(Desk, Desk.id == Booking.resource_id)
        .where(
            Booking.user_id == booker.id,
            Booking.status.in_(HOLDING_STATUSES),
            overlaps_window(day_start, day_end),
            Booking.id != (ignore_booking_id or 0),
        )
        .limit(1)
    )
    if found is not None:
        other = session.get_one(Booking, found)
        raise RuleViolation(
            {
                "resource": f"{booker.name} already has desk {other.resource.name} that day; "
                "change or cancel that booking instead."
            },
            "one_desk_per_day",
        )


def _check_room_quota(
    session: Session,
    booker: User,
    policy: BookingPolicy,
    now: datetime,
    ignore_booking_id: int | None,
) -> None:
    """A recurring series counts once: the quota is against hoarding, not against a standup."""
    upcoming = session.execute(
        select(
            func.count().filter(Booking.series_id.is_(None)),
            func.count(func.distinct(Booking.series_id)),
        )
        .select_from(Booking)
        .join(Room, Room.id == Booking.resource_id)
        .where(
            Booking.user_id == booker.id,
            Booking.status.in_(HOLDING_STATUSES),
            Booking.end_at > now,
            Booking.id != (ignore_booking_id or 0),
        )
    ).one()
    held = upcoming[0] + upcoming[1]
    if held >= policy.max_upcoming_room_bookings:
        raise RuleViolation(
            {
                "resource": f"You already hold {held} upcoming room bookings, the most allowed; "
                "cancel one you no longer need."
            },
            "room_quota",
        )


def horizon_end(session: Session, resource: Resource, now: datetime) -> date:
    """The last local day bookable today: series are materialised up to here."""
    policy = policy_for(session, resource.site)
    days = policy.desk_horizon_days if isinstance(resource, Desk) else policy.room_horizon_days
    return now.astimezone(ZoneInfo(resource.site.time_zone)).date() + timedelta(days=days)


def check_in_window(policy: BookingPolicy, booking: Booking) -> tuple[datetime, datetime]:
    """When check-in is possible: from a little before the start until the grace period after it
    (measured from the booking's creation when it was made after its start)."""
    opens = booking.start_at - timedelta(minutes=policy.check_in_opens_minutes)
    anchor = max(booking.start_at, booking.created_at)
    return opens, min(anchor + timedelta(minutes=policy.check_in_grace_minutes), booking.end_at)
