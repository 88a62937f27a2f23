"""Booking operations: book, change, cancel, check in, approve, release no-shows.

Double bookings are impossible, not unlikely. Before checking for overlap we take a lock per
resource (PostgreSQL: a transaction-scoped advisory lock; SQLite: the writing transaction began
IMMEDIATE and holds the database's write lock), so concurrent requests queue instead of racing;
the database constraint (an exclusion constraint, or triggers on SQLite) is the safety net, and
losing a race at that level is still answered "just taken". Callers own the commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.errors import Forbidden, NotFound, RuleViolation, SlotTaken
from portal.models import (
    HOLDING_STATUSES,
    Booking,
    BookingStatus,
    Desk,
    Resource,
    Room,
    User,
)
from portal.models.bookings import overlaps_window
from portal.services import audit, booking_rules, notifications
from portal.services.audit import Actor

LOCK_RESOURCE = 7301  # advisory-lock namespaces (first key of pg_advisory_xact_lock)
LOCK_PERSON = 7302
MAX_TITLE = 200


@dataclass(frozen=True)
class Alternative:
    """A nearby free option offered when a request is refused."""

    resource_id: int
    resource_name: str
    start: datetime
    end: datetime
    why: str  # e.g. "same time, next desk in the zone"


def _snapshot(booking: Booking) -> dict[str, object]:
    return {
        "resource": booking.resource_id,
        "start": booking.start_at.isoformat(),
        "end": booking.end_at.isoformat(),
        "status": booking.status,
        "user": booking.user_id,
    }


def lock_for_booking(session: Session, resource_ids: list[int], person_id: int | None) -> None:
    """Serialise writers per resource (and per person, for one-desk-a-day). Always in the same
    order — person first, then resources by id — so two transactions never wait on each other."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: the IMMEDIATE transaction already holds the only write lock
    keys = ([(LOCK_PERSON, person_id)] if person_id else []) + [
        (LOCK_RESOURCE, rid) for rid in sorted(set(resource_ids))
    ]
    # One round trip; PostgreSQL evaluates the select list left to right, keeping the order.
    calls = ", ".join(f"pg_advisory_xact_lock(:n{i}, :k{i})" for i in range(len(keys)))
    params: dict[str, int] = {}
    for i, (namespace, key) in enumerate(keys):
        params[f"n{i}"], params[f"k{i}"] = namespace, key
    session.execute(text(f"SELECT {calls}"), params)


def overlapping(
    session: Session,
    resource: Resource,
    start: datetime,
    end: datetime,
    ignore_booking_id: int | None = None,
) -> Booking | None:
    """A slot-holding booking that overlaps [start, end + buffer), the buffer on both sides."""
    buffer = timedelta(minutes=resource.buffer_minutes)
    # The id alone (the usual answer is "none"); the row is loaded only when there is one.
    found = session.scalar(
        select(Booking.id)
        .where(
            Booking.resource_id == resource.id,
            Booking.status.in_(HOLDING_STATUSES),
            overlaps_window(start, end + buffer, Booking.blocked_until),
            Booking.id != (ignore_booking_id or 0),
        )
        .limit(1)
    )
    return session.get(Booking, found) if found is not None else None


def _is_constraint_race(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in {"23P01", "40P01"} or "ex_bookings_no_overlap" in str(exc.orig)


@contextmanager
def taking_slot(
    session: Session, resource_name: str, alternatives: list[Alternative]
) -> Iterator[None]:
    """Make the changes that take a slot inside this block: they are flushed inside a savepoint,
    so losing a race at the no-overlap constraint answers SlotTaken and leaves the transaction
    usable. (begin_nested() flushes what is pending first, so the savepoint must come before the
    booking is added or moved, not after.)"""
    savepoint = session.begin_nested()
    try:
        yield
        session.flush()
    except DBAPIError as exc:
        savepoint.rollback()
        if _is_constraint_race(exc):
            raise SlotTaken(
                {"resource": f"{resource_name} was just taken for that time."},
                "overlap",
                alternatives,
            ) from exc
        raise
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()


def flush_or_taken(session: Session, booking: Booking, alternatives: list[Alternative]) -> None:
    """Flush a new booking inside a savepoint (see `taking_slot`); one already added but not yet
    flushed is taken out of the session first, so it is written inside the savepoint. Not an
    occurrence of a series: its series still holds it (expunging it would break that cascade), so
    it is written just before the savepoint, under the same per-resource lock."""
    if booking in session.new and booking.series is None:
        session.expunge(booking)
    with taking_slot(session, booking.resource.name, alternatives):
        session.add(booking)


def _clean_title(title: str) -> str:
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise RuleViolation({"title": f"Keep the title under {MAX_TITLE} characters."}, "title")
    return title


def find_by_idempotency_key(session: Session, creator: User, key: str | None) -> Booking | None:
    if not key:
        return None
    found = session.scalar(
        select(Booking.id).where(
            Booking.created_by_id == creator.id, Booking.idempotency_key == key
        )
    )
    return session.get(Booking, found) if found is not None else None


def book(
    session: Session,
    actor: Actor,
    creator: User,
    *,
    resource_id: int,
    start: datetime,
    end: datetime,
    title: str = "",
    on_behalf_of: User | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    notify: bool = True,
) -> Booking:
    """Book a room or desk. A repeated idempotency key returns the first booking unchanged."""
    now = now or utcnow()
    resource = session.get(Resource, resource_id)
    if resource is None:
        raise NotFound("There is no such room or desk.")
    booker = on_behalf_of or creator
    if not booker.active:
        raise RuleViolation(
            {"on_behalf_of": f"{booker.name} no longer has an account."}, "inactive"
        )
    title = _clean_title(title)

    lock_for_booking(session, [resource.id], booker.id)
    # Looked up under the lock only: a retry (or a twin that just finished) waits for the first
    # to commit and then finds it; looking before the lock as well would cost every booking a query.
    previous = find_by_idempotency_key(session, creator, idempotency_key)
    if previous is not None:
        return previous
    booking_rules.check_request(
        session, resource=resource, booker=booker, start=start, end=end, now=now
    )
    if overlapping(session, resource, start, end) is not None:
        raise SlotTaken(
            {"resource": f"{resource.name} is already booked then."},
            "overlap",
            nearest_alternatives(session, resource, booker, start, end, now),
        )
    needs_approval = resource.needs_approval and not coordinates(creator, resource)
    booking = Booking(
        resource=resource,
        user=booker,
        created_by=creator,
        title=title,
        start_at=start,
        end_at=end,
        blocked_until=end + timedelta(minutes=resource.buffer_minutes),
        status=BookingStatus.PENDING if needs_approval else BookingStatus.CONFIRMED,
        idempotency_key=idempotency_key or None,
    )
    session.add(booking)
    flush_or_taken(session, booking, [])
    audit.record(session, actor, "booking.created", booking, after=_snapshot(booking))
    if notify:
        notifications.booking_event(session, booking, "pending" if needs_approval else "created")
    return booking


def coordinates(user: User, resource: Resource) -> bool:
    return user.is_admin or resource.site_id in user.coordinated_site_ids()


def may_manage(user: User, booking: Booking) -> bool:
    """The booker, whoever booked it for them, and the site's coordinators."""
    return user.id in (booking.user_id, booking.created_by_id) or coordinates(
        user, booking.resource
    )


def cancel(
    session: Session,
    actor: Actor,
    booking: Booking,
    *,
    now: datetime | None = None,
    reason: str = "",
    notify: bool = True,
) -> Booking:
    """Cancel; a booking already under way ends now and the rest of its slot is freed."""
    now = now or utcnow()
    if not booking.holds_slot:
        raise RuleViolation({"": "This booking is no longer active."}, "not_active")
    if booking.end_at <= now:
        raise RuleViolation({"": "This booking is already over."}, "over")
    before = _snapshot(booking)
    if booking.start_at < now:
        booking.end_at = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        booking.blocked_until = booking.end_at
        booking.status = (
            BookingStatus.COMPLETED
            if booking.status == BookingStatus.CHECKED_IN
            else BookingStatus.CANCELLED
        )
    else:
        booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = now
    booking.status_reason = reason[:500]
    booking.sequence += 1
    session.flush()
    audit.record(
        session, actor, "booking.cancelled", booking, before=before, after=_snapshot(booking)
    )
    if notify:
        notifications.booking_event(session, booking, "cancelled", reason)
    return booking


def change(
    session: Session,
    actor: Actor,
    changer: User,
    booking: Booking,
    *,
    resource_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    title: str | None = None,
    now: datetime | None = None,
) -> Booking:
    """Move, extend or retitle a booking under the same rules as a new one."""
    now = now or utcnow()
    if not booking.holds_slot:
        raise RuleViolation({"": "Only active bookings can be changed."}, "not_active")
    resource = session.get(Resource, resource_id) if resource_id else booking.resource
    if resource is None:
        raise NotFound("There is no such room or desk.")
    if type(resource) is not type(booking.resource):
        raise RuleViolation(
            {
                "resource": "A desk booking can only move to another desk, "
                "a room booking to another room."
            },
            "kind",
        )
    start = start or booking.start_at
    end = end or booking.end_at
    before = _snapshot(booking)
    lock_for_booking(session, [booking.resource_id, resource.id], booking.user_id)
    started = booking.start_at <= now
    if started and start != booking.start_at:
        raise RuleViolation(
            {"start": "This booking has started; only its end can change."}, "started"
        )
    check_start = max(start, now) if started else start  # an extension of a running booking
    booking_rules.check_request(
        session,
        resource=resource,
        booker=booking.user,
        start=check_start,
        end=end,
        now=now,
        ignore_booking_id=booking.id,
    )
    if overlapping(session, resource, start, end, ignore_booking_id=booking.id) is not None:
        raise SlotTaken(
            {"resource": f"{resource.name} is already booked then."},
            "overlap",
            nearest_alternatives(session, resource, booking.user, start, end, now),
        )
    new_title = _clean_title(title) if title is not None else booking.title
    with taking_slot(session, resource.name, []):
        booking.resource = resource
        booking.start_at, booking.end_at = start, end
        booking.blocked_until = end + timedelta(minutes=resource.buffer_minutes)
        booking.title = new_title
        if (
            resource.needs_approval
            and not coordinates(changer, resource)
            and (resource.id != before["resource"])
        ):
            booking.status = BookingStatus.PENDING
        booking.sequence += 1
    audit.record(
        session, actor, "booking.changed", booking, before=before, after=_snapshot(booking)
    )
    notifications.booking_event(session, booking, "changed")
    return booking


def check_in(
    session: Session,
    actor: Actor,
    booking: Booking,
    *,
    via: str = "portal",
    now: datetime | None = None,
) -> Booking:
    now = now or utcnow()
    if booking.status == BookingStatus.CHECKED_IN:
        return booking
    if booking.status == BookingStatus.PENDING:
        raise RuleViolation({"": "This booking is still waiting for approval."}, "pending")
    if booking.status != BookingStatus.CONFIRMED:
        raise RuleViolation({"": "This booking is no longer active."}, "not_active")
    policy = booking_rules.policy_for(session, booking.resource.site)
    opens, closes = booking_rules.check_in_window(policy, booking)
    zone = ZoneInfo(booking.resource.site.time_zone)
    if now < opens:
        raise RuleViolation(
            {
                "": f"Check-in opens at {opens.astimezone(zone):%H:%M %Z}, "
                f"{policy.check_in_opens_minutes} minutes before the start."
            },
            "check_in_early",
        )
    if now > closes:
        raise RuleViolation(
            {"": f"The check-in window closed at {closes.astimezone(zone):%H:%M %Z}."},
            "check_in_late",
        )
    booking.status = BookingStatus.CHECKED_IN
    booking.checked_in_at = now
    booking.checked_in_via = via
    if booking.series is not None:
        booking.series.missed_in_a_row = 0
    session.flush()
    audit.record(session, actor, "booking.checked_in", booking, after={"via": via})
    return booking


def decide(
    session: Session,
    actor: Actor,
    coordinator: User,
    booking: Booking,
    *,
    approve: bool,
    reason: str = "",
    expected_version: int | None = None,
) -> Booking:
    """A coordinator approves or declines a pending booking of a restricted room."""
    if not coordinates(coordinator, booking.resource):
        raise Forbidden("Only this site's coordinators can decide on this booking.")
    if expected_version is not None and booking.version != expected_version:
        raise RuleViolation(
            {"": "Someone changed this request meanwhile; here is its current state."}, "stale"
        )
    if booking.status != BookingStatus.PENDING:
        raise RuleViolation({"": f"This request was already {booking.status}."}, "decided")
    reason = reason.strip()[:500]
    if not approve and not reason:
        raise RuleViolation({"reason": "Say why, so the person can plan around it."}, "reason")
    before = _snapshot(booking)
    booking.status = BookingStatus.CONFIRMED if approve else BookingStatus.DECLINED
    booking.status_reason = reason
    booking.sequence += 1
    session.flush()
    audit.record(
        session,
        actor,
        "booking.approved" if approve else "booking.declined",
        booking,
        before=before,
        after={**_snapshot(booking), "reason": reason},
    )
    notifications.booking_event(session, booking, "approved" if approve else "declined", reason)
    return booking


def release_no_shows(session: Session, now: datetime | None = None) -> list[Booking]:
    """Release confirmed bookings whose check-in window has closed; kept as RELEASED for the
    numbers, never deleted. Idempotent: a second run finds nothing more to release."""
    now = now or utcnow()
    released = []
    candidates = session.scalars(
        select(Booking)
        .where(
            Booking.status == BookingStatus.CONFIRMED,
            Booking.start_at < now,
            Booking.loan_id.is_(None),  # an equipment loan's days need no check-in
        )
        .order_by(Booking.start_at)
        .with_for_update(skip_locked=True, of=Booking)
    )
    actor = Actor.system("no-show release")
    for booking in candidates:
        policy = booking_rules.policy_for(session, booking.resource.site)
        _opens, closes = booking_rules.check_in_window(policy, booking)
        if closes >= now:
            continue
        booking.status = BookingStatus.RELEASED
        booking.status_reason = "No check-in before the window closed."
        booking.sequence += 1
        audit.record(session, actor, "booking.released", booking, after=_snapshot(booking))
        notifications.booking_event(
            session, booking, "released", "Nobody checked in, so the space was freed for others."
        )
        if booking.series is not None:
            booking.series.missed_in_a_row += 1
            if booking.series.missed_in_a_row >= 3 and booking.series.trim_suggested_at is None:
                booking.series.trim_suggested_at = now
                notifications.booking_event(
                    session,
                    booking,
                    "series_trim",
                    "The last three occurrences were not used. End the series in My bookings "
                    "if you no longer need it.",
                )
        released.append(booking)
    session.flush()
    return released


def nearest_alternatives(
    session: Session,
    resource: Resource,
    booker: User,
    start: datetime,
    end: datetime,
    now: datetime,
    limit: int = 3,
) -> list[Alternative]:
    """Free options near a refused request: same time elsewhere (same floor and zone first),
    then the same resource at the nearest free time that day."""
    found: list[Alternative] = []
    kind = Desk if isinstance(resource, Desk) else Room
    query = select(kind).where(
        kind.site_id == resource.site_id, kind.active.is_(True), kind.id != resource.id
    )
    if isinstance(resource, Room):
        query = query.where(Room.capacity >= resource.capacity).order_by(Room.capacity)
    candidates = list(session.scalars(query))
    candidates.sort(
        key=lambda r: (
            r.floor_id != resource.floor_id,
            getattr(r, "zone", "") != getattr(resource, "zone", ""),
            r.name,
        )
    )
    busy = _busy_resource_ids(session, [c.id for c in candidates], start, end)
    for other in candidates:
        if len(found) >= limit - 1:
            break
        if other.id in busy:
            continue
        try:
            booking_rules.check_request(
                session, resource=other, booker=booker, start=start, end=end, now=now
            )
        except RuleViolation:
            continue
        where = "same floor" if other.floor_id == resource.floor_id else "another floor"
        found.append(Alternative(other.id, other.name, start, end, f"same time, {where}"))
    duration = end - start
    for step in range(1, 17):  # up to four hours either side, nearest first
        for direction in (1, -1):
            shift = timedelta(minutes=15 * step * direction)
            if isinstance(resource, Desk) or len(found) >= limit:
                break
            s, e = start + shift, start + shift + duration
            if overlapping(session, resource, s, e) is not None:
                continue
            try:
                booking_rules.check_request(
                    session, resource=resource, booker=booker, start=s, end=e, now=now
                )
            except RuleViolation:
                continue
            found.append(Alternative(resource.id, resource.name, s, e, "same room, nearest time"))
            break
        if len(found) >= limit:
            break
    return found


def _busy_resource_ids(
    session: Session, ids: list[int], start: datetime, end: datetime
) -> set[int]:
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Booking.resource_id).where(
                Booking.resource_id.in_(ids),
                Booking.status.in_(HOLDING_STATUSES),
                overlaps_window(start, end, Booking.blocked_until),
            )
        )
    )


def free_alternatives_for(session: Session, booking: Booking, limit: int = 40) -> list[Resource]:
    """Other desks (or rooms) on the same floor that are free for this booking's time: the
    choices offered when someone wants to move a booking."""
    resource = booking.resource
    kind = Desk if isinstance(resource, Desk) else Room
    candidates = list(
        session.scalars(
            select(kind)
            .where(
                kind.floor_id == resource.floor_id, kind.active.is_(True), kind.id != resource.id
            )
            .order_by(kind.name)
        )
    )
    busy = _busy_resource_ids(session, [c.id for c in candidates], booking.start_at, booking.end_at)
    return [c for c in candidates if c.id not in busy][:limit]
