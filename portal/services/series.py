"""Recurring bookings: preview (every occurrence, with the ones that clash), create, extend the
materialised horizon, and cancel one, this-and-following, a date range or the whole series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import HOLDING_STATUSES, Booking, BookingSeries, BookingStatus, Resource, User
from portal.services import audit, booking_rules, bookings, notifications, recurrence
from portal.services.audit import Actor
from portal.timezones import to_utc


@dataclass(frozen=True)
class PlannedOccurrence:
    local_start: datetime  # naive, in the site's zone
    start: datetime  # UTC
    end: datetime
    problem: str | None  # why it cannot be booked, or None
    later: bool = False  # beyond today's booking horizon: booked automatically when it opens


@dataclass(frozen=True)
class SeriesPlan:
    rule: str
    description: str
    occurrences: list[PlannedOccurrence]

    @property
    def conflicts(self) -> list[PlannedOccurrence]:
        return [o for o in self.occurrences if o.problem]


def plan(
    session: Session,
    resource: Resource,
    booker: User,
    first_local: datetime,
    duration: timedelta,
    repeat: recurrence.Repeat,
    *,
    now: datetime,
    skipped: set[date] | None = None,
) -> SeriesPlan:
    rule = recurrence.build_rrule(repeat, first_local)
    return plan_rule(
        session, resource, booker, rule, first_local, duration, now=now, skipped=skipped
    )


def plan_rule(
    session: Session,
    resource: Resource,
    booker: User,
    rule: str,
    first_local: datetime,
    duration: timedelta,
    *,
    now: datetime,
    skipped: set[date] | None = None,
) -> SeriesPlan:
    zone = ZoneInfo(resource.site.time_zone)
    last_day = booking_rules.horizon_end(session, resource, now)
    planned = []
    for local_start in recurrence.occurrences(rule, first_local, skipped or set()):
        start = to_utc(local_start, zone)
        end = to_utc(local_start + duration, zone)
        problem = _occurrence_problem(session, resource, booker, start, end, now)
        planned.append(
            PlannedOccurrence(local_start, start, end, problem, later=local_start.date() > last_day)
        )
    return SeriesPlan(rule, recurrence.describe(rule), planned)


def create(
    session: Session,
    actor: Actor,
    creator: User,
    *,
    resource: Resource,
    booker: User,
    title: str,
    first_local: datetime,
    duration: timedelta,
    repeat: recurrence.Repeat,
    skip: set[date],
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> BookingSeries:
    """Book a series. Occurrences the person chose to skip become EXDATEs; any other clash (new
    since the preview) refuses the whole series with the fresh plan, so nothing is half-booked."""
    now = now or utcnow()
    if idempotency_key:
        existing = session.scalar(
            select(BookingSeries).where(
                BookingSeries.created_by_id == creator.id,
                BookingSeries.idempotency_key == idempotency_key,
            )
        )
        if existing is not None:
            return existing
    return create_from_rule(
        session,
        actor,
        creator,
        resource=resource,
        booker=booker,
        title=title,
        rule=recurrence.build_rrule(repeat, first_local),
        first_local=first_local,
        duration=duration,
        skip=skip,
        idempotency_key=idempotency_key,
        now=now,
    )


def create_from_rule(
    session: Session,
    actor: Actor,
    creator: User,
    *,
    resource: Resource,
    booker: User,
    title: str,
    rule: str,
    first_local: datetime,
    duration: timedelta,
    skip: set[date],
    idempotency_key: str | None = None,
    now: datetime,
) -> BookingSeries:
    bookings.lock_for_booking(session, [resource.id], booker.id)
    fresh = plan_rule(session, resource, booker, rule, first_local, duration, now=now, skipped=skip)
    if not fresh.occurrences:
        raise RuleViolation(
            {"until": "Every occurrence is skipped; there is nothing to book."}, "series_empty"
        )
    if fresh.conflicts:
        raise RuleViolation(
            {"": f"{len(fresh.conflicts)} occurrence(s) cannot be booked; skip them to go on."},
            "series_conflicts",
            alternatives=[fresh],
        )
    series = BookingSeries(
        resource_id=resource.id,
        user_id=booker.id,
        created_by_id=creator.id,
        title=" ".join(title.split())[:200],
        time_zone=resource.site.time_zone,
        first_start_local=first_local,
        duration_minutes=int(duration.total_seconds() // 60),
        rrule=fresh.rule,
        skipped_dates=sorted(d.isoformat() for d in skip),
        idempotency_key=idempotency_key or None,
    )
    session.add(series)
    session.flush()
    created = _materialise(session, actor, series, resource, booker, creator, now)
    audit.record(
        session,
        actor,
        "series.created",
        series,
        after={
            "rule": series.rrule,
            "occurrences": len(fresh.occurrences),
            "skipped": series.skipped_dates,
            "booked_now": len(created),
        },
    )
    if created:
        notifications.booking_event(session, created[0], "created", f"Repeats {fresh.description}.")
    return series


def _materialise(
    session: Session,
    actor: Actor,
    series: BookingSeries,
    resource: Resource,
    booker: User,
    creator: User,
    now: datetime,
) -> list[Booking]:
    """Create the Booking rows of occurrences up to the booking horizon that have none yet."""
    last_day = booking_rules.horizon_end(session, resource, now)
    zone = ZoneInfo(series.time_zone)
    skipped = {date.fromisoformat(d) for d in series.skipped_dates}
    existing = set(
        session.scalars(select(Booking.occurrence_start).where(Booking.series_id == series.id))
    )
    duration = timedelta(minutes=series.duration_minutes)
    created = []
    for local_start in recurrence.occurrences(series.rrule, series.first_start_local, skipped):
        if local_start.date() > last_day:
            series.materialised_until = last_day
            break
        start = to_utc(local_start, zone)
        if start in existing or start + duration <= now:
            continue
        end = to_utc(local_start + duration, zone)
        if _occurrence_problem(session, resource, booker, start, end, now) is not None:
            # Taken, or closed (a blackout added since), before it opened: a skipped date.
            series.skipped_dates = sorted({*series.skipped_dates, local_start.date().isoformat()})
            continue
        booking = Booking(
            resource=resource,
            user=booker,
            created_by=creator,
            title=series.title,
            start_at=start,
            end_at=end,
            blocked_until=end + timedelta(minutes=resource.buffer_minutes),
            status=BookingStatus.PENDING
            if resource.needs_approval and not bookings.coordinates(creator, resource)
            else BookingStatus.CONFIRMED,
            series=series,
            occurrence_start=start,
        )
        session.add(booking)
        bookings.flush_or_taken(session, booking, [])
        created.append(booking)
    else:
        series.materialised_until = last_day
    return created


def _occurrence_problem(
    session: Session,
    resource: Resource,
    booker: User,
    start: datetime,
    end: datetime,
    now: datetime,
) -> str | None:
    """Why one occurrence cannot be booked (a rule, or someone else holds it), or None. The
    horizon is not checked: occurrences beyond it are booked later by `extend_all`."""
    try:
        booking_rules.check_request(
            session,
            resource=resource,
            booker=booker,
            start=start,
            end=end,
            now=now,
            check_horizon=False,
        )
    except RuleViolation as violation:
        return next(iter(violation.errors.values()))
    if bookings.overlapping(session, resource, start, end) is not None:
        return f"{resource.name} is already booked then"
    return None


def extend_all(session: Session, now: datetime | None = None) -> int:
    """Daily job: book each active series' occurrences that came within the horizon."""
    now = now or utcnow()
    count = 0
    actor = Actor.system("series horizon")
    for series in session.scalars(select(BookingSeries).where(BookingSeries.active.is_(True))):
        resource = session.get(Resource, series.resource_id)
        booker = session.get(User, series.user_id)
        creator = session.get(User, series.created_by_id)
        if resource is None or booker is None or creator is None or not booker.active:
            continue
        bookings.lock_for_booking(session, [resource.id], booker.id)
        count += len(_materialise(session, actor, series, resource, booker, creator, now))
    session.flush()
    return count


def _future_bookings(
    session: Session, series: BookingSeries, from_start: datetime
) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(
                Booking.series_id == series.id,
                Booking.status.in_(HOLDING_STATUSES),
                Booking.end_at > from_start,
            )
            .order_by(Booking.start_at)
        )
    )


def cancel_occurrence(session: Session, actor: Actor, booking: Booking) -> None:
    series = booking.series
    bookings.cancel(session, actor, booking)
    if series is not None and booking.occurrence_start is not None:
        day = booking.occurrence_start.astimezone(ZoneInfo(series.time_zone)).date()
        series.skipped_dates = sorted({*series.skipped_dates, day.isoformat()})


def cancel_range(
    session: Session,
    actor: Actor,
    series: BookingSeries,
    first: date,
    last: date,
    now: datetime | None = None,
) -> int:
    """Cancel every occurrence from `first` to `last` (holidays), booked already or not."""
    now = now or utcnow()
    if last < first:
        raise RuleViolation({"last": "The end of the range is before its start."}, "range")
    zone = ZoneInfo(series.time_zone)
    cancelled = 0
    for booking in _future_bookings(session, series, now):
        day = booking.start_at.astimezone(zone).date()
        if first <= day <= last:
            bookings.cancel(session, actor, booking, now=now, notify=False)
            cancelled += 1
    skipped = {date.fromisoformat(d) for d in series.skipped_dates}
    for local_start in recurrence.occurrences(series.rrule, series.first_start_local, skipped):
        if first <= local_start.date() <= last:
            skipped.add(local_start.date())
    series.skipped_dates = sorted(d.isoformat() for d in skipped)
    audit.record(
        session,
        actor,
        "series.range_cancelled",
        series,
        after={"first": first.isoformat(), "last": last.isoformat(), "count": cancelled},
    )
    return cancelled


def cancel_following(
    session: Session, actor: Actor, booking: Booking, now: datetime | None = None
) -> int:
    """Cancel this occurrence and every later one: the series now ends the day before."""
    now = now or utcnow()
    series = booking.series
    if series is None:
        raise RuleViolation({"": "This booking is not part of a series."}, "not_series")
    zone = ZoneInfo(series.time_zone)
    day = (booking.occurrence_start or booking.start_at).astimezone(zone).date()
    cancelled = 0
    for other in _future_bookings(session, series, now):
        if other.start_at.astimezone(zone).date() >= day:
            bookings.cancel(session, actor, other, now=now, notify=False)
            cancelled += 1
    end = day - timedelta(days=1)
    series.rrule = _with_until(series.rrule, end)
    if end < series.first_start_local.date():
        series.active = False
    notifications.booking_event(
        session,
        booking,
        "cancelled",
        f"This and the following occurrences were cancelled ({cancelled}).",
    )
    audit.record(
        session,
        actor,
        "series.ended_from",
        series,
        after={"from": day.isoformat(), "count": cancelled},
    )
    return cancelled


def cancel_series(
    session: Session, actor: Actor, series: BookingSeries, now: datetime | None = None
) -> int:
    now = now or utcnow()
    future = _future_bookings(session, series, now)
    for booking in future:
        bookings.cancel(session, actor, booking, now=now, notify=False)
    series.active = False
    if future:
        notifications.booking_event(
            session,
            future[0],
            "cancelled",
            f"The whole series was cancelled ({len(future)} bookings).",
        )
    audit.record(session, actor, "series.cancelled", series, after={"count": len(future)})
    return len(future)


def _with_until(rule: str, last_day: date) -> str:
    parts = [p for p in rule.split(";") if not p.startswith(("COUNT=", "UNTIL="))]
    return ";".join([*parts, f"UNTIL={last_day:%Y%m%d}T235959"])


def retime_following(
    session: Session,
    actor: Actor,
    changer: User,
    booking: Booking,
    *,
    start: time,
    duration: timedelta,
    now: datetime | None = None,
) -> BookingSeries:
    """Move this occurrence and every later one to a new time: the series is split in two at
    this date (the old part keeps its history), and the new part is checked like a new series."""
    now = now or utcnow()
    old = booking.series
    if old is None:
        raise RuleViolation({"": "This booking is not part of a series."}, "not_series")
    zone = ZoneInfo(old.time_zone)
    day = (booking.occurrence_start or booking.start_at).astimezone(zone).date()
    fields = dict(part.split("=", 1) for part in old.rrule.split(";"))
    before = [o for o in recurrence.occurrences(old.rrule, old.first_start_local) if o.date() < day]
    pattern = [p for p in old.rrule.split(";") if not p.startswith(("COUNT=", "UNTIL="))]
    if "COUNT" in fields:
        remaining = int(fields["COUNT"]) - len(before)
        pattern.append(f"COUNT={max(remaining, 1)}")
    else:
        pattern.append(f"UNTIL={fields['UNTIL']}")
    skipped = {date.fromisoformat(d) for d in old.skipped_dates if d >= day.isoformat()}
    resource = session.get(Resource, old.resource_id)
    booker = session.get(User, old.user_id)
    assert resource is not None and booker is not None
    for other in _future_bookings(session, old, now):
        if other.start_at.astimezone(zone).date() >= day:
            bookings.cancel(session, actor, other, now=now, notify=False)
    old.rrule = _with_until(old.rrule, day - timedelta(days=1))
    if day <= old.first_start_local.date():
        old.active = False
    session.flush()
    new = create_from_rule(
        session,
        actor,
        changer,
        resource=resource,
        booker=booker,
        title=old.title,
        rule=";".join(pattern),
        first_local=datetime.combine(day, start),
        duration=duration,
        skip=skipped,
        now=now,
    )
    audit.record(
        session,
        actor,
        "series.retimed",
        new,
        after={"from": day.isoformat(), "start": start.isoformat(), "split_from": old.id},
    )
    return new
