"""Calendar subscription feeds: who may subscribe to what, the feed's token (created, regenerated
and revoked one feed at a time), and the feed's bytes with a strong ETag, answered from a cache
checked against cheap version counters so an unchanged feed costs a few tiny queries.

A token is 32 random bytes (secrets.token_urlsafe); only its SHA-256 is stored, so the address
is shown once, when it is made. Every fetch checks again that the owner may still see what the
feed shows: an owner deactivated, a room restricted to other departments, a coordinator grant
withdrawn all answer exactly as an unknown token does."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from integrations import ical
from portal.errors import NotFound, RuleViolation
from portal.models import (
    HOLDING_STATUSES,
    Booking,
    BookingStatus,
    Resource,
    Site,
    User,
    Visit,
    VisitStatus,
)
from portal.models.bookings import overlaps_window
from portal.models.feeds import CalendarFeed, FeedKind, FeedPrivacy
from portal.services import audit, booking_rules, page_cache
from portal.services.audit import Actor
from portal.services.login_sessions import token_hash as digest  # one SHA-256 for every token

WINDOW_BACK = timedelta(days=30)
WINDOW_AHEAD = timedelta(days=180)
FETCH_NOTED_EVERY = timedelta(minutes=5)  # last_fetched_at is written at most this often
# Bookings a feed shows: cancelled, declined and released ones are left out (clients mirror the
# whole feed, and Google deletes STATUS:CANCELLED events anyway). Completed ones really happened.
SHOWN_STATUSES = (*HOLDING_STATUSES, BookingStatus.COMPLETED)
SHOWN_VISITS = (VisitStatus.EXPECTED, VisitStatus.CHECKED_IN, VisitStatus.CHECKED_OUT)
TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)

PRIVACY_LABELS = {
    FeedPrivacy.BUSY: "Busy only",
    FeedPrivacy.DETAILS: "Titles and who booked",
}


# --- who may subscribe to what -------------------------------------------------------------------


def coordinates(user: User, site_id: int | None) -> bool:
    return user.is_admin or (site_id is not None and site_id in user.coordinated_site_ids())


def may_see_resource(user: User, resource: Resource) -> bool:
    """A room or desk the person may book (or looks after): restricted ones only for their
    departments. Out-of-use ones stay visible, as on the plan."""
    if not user.active:
        return False
    allowed = resource.allowed_departments or []
    return not allowed or user.department in allowed or coordinates(user, resource.site_id)


def may_see_visitors(user: User, site_id: int | None) -> bool:
    return user.active and coordinates(user, site_id)


def may_manage(user: User, feed: CalendarFeed) -> bool:
    """The owner, and admins (who may revoke or regenerate any feed)."""
    return feed.owner_id == user.id or user.is_admin


def _owner_may_see(feed: CalendarFeed) -> bool:
    owner = feed.owner
    if owner is None or not owner.active:
        return False
    if feed.kind == FeedKind.RESOURCE:
        return feed.resource is not None and may_see_resource(owner, feed.resource)
    if feed.kind == FeedKind.VISITORS:
        return may_see_visitors(owner, feed.site_id)
    return feed.kind == FeedKind.MINE


# --- tokens --------------------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(32)


def create(
    session: Session,
    actor: Actor,
    owner: User,
    kind: str,
    *,
    privacy: str = FeedPrivacy.BUSY,
    resource: Resource | None = None,
    site: Site | None = None,
    now: datetime,
) -> tuple[CalendarFeed, str]:
    """A new feed and its token (shown once). Raises NotFound for something the owner may not see
    (the view answers 404) and RuleViolation for an unknown privacy level or a duplicate."""
    try:
        kind, privacy = FeedKind(kind), FeedPrivacy(privacy)
    except ValueError:
        raise RuleViolation({"privacy": "Choose what the feed shows."}, "feed_privacy") from None
    if kind == FeedKind.RESOURCE:
        if resource is None or not may_see_resource(owner, resource):
            raise NotFound("No such room or desk.")
        site = None
    elif kind == FeedKind.VISITORS:
        if site is None or not may_see_visitors(owner, site.id):
            raise NotFound("No such site.")
        resource = None
    else:
        resource = site = None
    same_target = [
        CalendarFeed.owner_id == owner.id,
        CalendarFeed.kind == kind,
        CalendarFeed.token_hash.is_not(None),
        CalendarFeed.resource_id == resource.id
        if resource is not None
        else CalendarFeed.resource_id.is_(None),
        CalendarFeed.site_id == site.id if site is not None else CalendarFeed.site_id.is_(None),
    ]
    duplicate = session.scalar(select(CalendarFeed.id).where(*same_target))
    if duplicate is not None:
        raise RuleViolation(
            {
                "": "You already subscribe to this calendar. Regenerate its address below to get "
                "a new one."
            },
            "feed_exists",
        )
    token = new_token()
    feed = CalendarFeed(
        owner=owner,
        owner_id=owner.id,
        kind=kind,
        resource=resource,
        site=site,
        privacy=privacy,
        token_hash=digest(token),
        created_at=now,
        token_issued_at=now,
    )
    session.add(feed)
    session.flush()
    audit.record(session, actor, "feed.created", feed, after=_snapshot(feed))
    return feed, token


def regenerate(session: Session, actor: Actor, feed: CalendarFeed, *, now: datetime) -> str:
    """A new address for the same feed; the old one answers 404 from now on."""
    if not feed.active:
        raise RuleViolation({"": "This feed is revoked. Create a new one."}, "feed_revoked")
    token = new_token()
    feed.token_hash = digest(token)
    feed.token_issued_at = now
    audit.record(session, actor, "feed.regenerated", feed, after=_snapshot(feed))
    return token


def revoke(session: Session, actor: Actor, feed: CalendarFeed, *, now: datetime) -> None:
    if not feed.active:
        return
    feed.token_hash = None
    feed.revoked_at = now
    feed.revoked_by_id = actor.user_id
    audit.record(session, actor, "feed.revoked", feed, before=_snapshot(feed))


def set_privacy(session: Session, actor: Actor, feed: CalendarFeed, privacy: str) -> None:
    try:
        value = FeedPrivacy(privacy)
    except ValueError:
        raise RuleViolation({"privacy": "Choose what the feed shows."}, "feed_privacy") from None
    before = _snapshot(feed)
    feed.privacy = value
    audit.record(session, actor, "feed.privacy_changed", feed, before=before, after=_snapshot(feed))


def _snapshot(feed: CalendarFeed) -> dict[str, object]:
    return {
        "owner_id": feed.owner_id,
        "kind": str(feed.kind),
        "resource_id": feed.resource_id,
        "site_id": feed.site_id,
        "privacy": str(feed.privacy),
    }


def get(session: Session, feed_id: int) -> CalendarFeed:
    feed = session.get(CalendarFeed, feed_id)
    if feed is None:
        raise NotFound("No such feed.")
    return feed


def for_owner(session: Session, owner: User) -> list[CalendarFeed]:
    """The person's live feeds, newest first."""
    return list(
        session.scalars(
            select(CalendarFeed)
            .where(CalendarFeed.owner_id == owner.id, CalendarFeed.token_hash.is_not(None))
            .order_by(CalendarFeed.created_at.desc(), CalendarFeed.id.desc())
        )
    )


def every_live_feed(session: Session, limit: int = 500) -> list[CalendarFeed]:
    """For admins: every feed that still answers, by owner."""
    return list(
        session.scalars(
            select(CalendarFeed)
            .join(User, User.id == CalendarFeed.owner_id)
            .where(CalendarFeed.token_hash.is_not(None))
            .order_by(User.name, CalendarFeed.created_at, CalendarFeed.id)
            .limit(limit)
        )
    )


def feed_name(feed: CalendarFeed) -> str:
    """The calendar's name in the client, e.g. "Aurora (room) · Berlin"."""
    if feed.kind == FeedKind.RESOURCE and feed.resource is not None:
        resource = feed.resource
        return f"{resource.name} ({resource.kind}) · {resource.site.name}"
    if feed.kind == FeedKind.VISITORS and feed.site is not None:
        return f"Visitors · {feed.site.name}"
    return f"{feed.owner.name}'s bookings and visitors"


def token_path(token: str) -> str:
    return f"/feeds/{token}.ics"


# --- the feed itself -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """30 days back to 180 ahead, in whole UTC days: the same all day, so are the bytes."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime
    pivot: datetime  # the start of today: events from here on are kept first

    @classmethod
    def around(cls, now: datetime) -> Window:
        today = now.astimezone(UTC).date()
        pivot = datetime.combine(today, time(), UTC)
        start, end = pivot - WINDOW_BACK, pivot + WINDOW_AHEAD + timedelta(days=1)
        return cls(start.date(), end.date(), start, end, pivot)


@dataclass(frozen=True)
class FeedAnswer:
    body: bytes
    etag: str  # quoted, strong: a digest of exactly these bytes
    events: int


def find_live(session: Session, token: str) -> CalendarFeed | None:
    """The feed this token opens, if it exists, is live and its owner may still see it. Every
    refusal looks the same to the caller."""
    if not token or len(token) != TOKEN_LENGTH:
        return None
    feed = session.scalar(select(CalendarFeed).where(CalendarFeed.token_hash == digest(token)))
    if feed is None or not feed.active or not _owner_may_see(feed):
        return None
    return feed


def answer(
    session: Session,
    feed: CalendarFeed,
    *,
    now: datetime,
    host: str,
    cache: page_cache.PageCache | None = None,
) -> FeedAnswer:
    """The feed's bytes and ETag: from the cache when the data's version has not moved since
    they were built (a few indexed queries), otherwise rendered afresh."""
    window = Window.around(now)
    key = (feed.id, str(feed.privacy), host, window.first_day, *_version(session, feed, window))

    def build() -> FeedAnswer:
        return render(session, feed, window=window, host=host)

    return cache.get_or_build(key, build) if cache is not None else build()


def note_fetch(session: Session, feed: CalendarFeed, now: datetime) -> bool:
    """Record when a calendar last fetched the feed (at most every few minutes: a write per poll
    would cost more than the answer). True when a write is waiting to be committed."""
    if feed.last_fetched_at is not None and now - feed.last_fetched_at < FETCH_NOTED_EVERY:
        return False
    session.execute(
        update(CalendarFeed).where(CalendarFeed.id == feed.id).values(last_fetched_at=now)
    )
    return True


def _version(session: Session, feed: CalendarFeed, window: Window) -> tuple[object, ...]:
    """What the feed's bytes depend on, cheaply: the page-version counters of the resource's floor
    for a room or desk; counts and last changes of the person's or the site's rows otherwise.
    Who may see names is part of it, so a changed site setting or role shows at once."""
    owner = feed.owner
    if feed.kind == FeedKind.RESOURCE:
        resource = feed.resource
        policy = booking_rules.policy_for(session, resource.site)
        seen = (policy.show_booker_names, coordinates(owner, resource.site_id), resource.floor_id)
        if resource.floor_id is not None:
            scopes = page_cache.floor_scopes(resource.floor_id, window.start, window.end)
            return (*seen, page_cache.version(session, scopes))
        return (*seen, *_booking_marks(session, Booking.resource_id == resource.id, window))
    globals_ = page_cache.version(session, page_cache.GLOBAL_SCOPES)
    if feed.kind == FeedKind.VISITORS:
        return (globals_, *_visit_marks(session, Visit.site_id == feed.site_id, window))
    return (
        globals_,
        *_booking_marks(session, Booking.user_id == owner.id, window),
        *_visit_marks(session, Visit.host_id == owner.id, window),
    )


def _booking_marks(session: Session, where: object, window: Window) -> tuple[object, ...]:
    row = session.execute(
        select(
            func.count(), func.max(Booking.updated_at), func.coalesce(func.sum(Booking.version), 0)
        ).where(where, overlaps_window(window.start, window.end))
    ).one()
    return tuple(row)


def _visit_marks(session: Session, where: object, window: Window) -> tuple[object, ...]:
    row = session.execute(
        select(func.count(), func.max(Visit.updated_at)).where(
            where, Visit.expected_start < window.end, Visit.expected_end > window.start
        )
    ).one()
    return tuple(row)


def render(session: Session, feed: CalendarFeed, *, window: Window, host: str) -> FeedAnswer:
    if feed.kind == FeedKind.RESOURCE:
        events = _resource_events(session, feed, window, host)
    elif feed.kind == FeedKind.VISITORS:
        events = _visit_events(session, feed, Visit.site_id == feed.site_id, window, host)
    else:
        events = _own_events(session, feed, window, host)
        events += _visit_events(session, feed, Visit.host_id == feed.owner_id, window, host)
    body = ical.feed(
        events,
        name=feed_name(feed),
        first_day=window.first_day,
        last_day=window.last_day,
        pivot=window.pivot,
    )
    return FeedAnswer(body, f'"{hashlib.sha256(body).hexdigest()[:40]}"', len(events))


_BOOKING_COLUMNS = (
    Booking.id,
    Booking.user_id,
    User.name,
    Booking.title,
    Booking.status,
    Booking.start_at,
    Booking.end_at,
    Booking.sequence,
    Booking.created_at,
    Booking.updated_at,
)


def _resource_events(
    session: Session, feed: CalendarFeed, window: Window, host: str
) -> list[ical.CalendarEvent]:
    """Every booking of the room or desk; titles and bookers only where the owner would see them
    in Foyer: their own, all of a site they coordinate, or where the site shows who booked."""
    resource = feed.resource
    owner = feed.owner
    zone = resource.site.time_zone
    location = ical.booking_location(_Located(resource))
    details = feed.privacy == FeedPrivacy.DETAILS
    sees_all = details and (
        booking_rules.policy_for(session, resource.site).show_booker_names
        or coordinates(owner, resource.site_id)
    )
    rows = session.execute(
        select(*_BOOKING_COLUMNS)
        .join(User, User.id == Booking.user_id)
        .where(
            Booking.resource_id == resource.id,
            Booking.status.in_(SHOWN_STATUSES),
            overlaps_window(window.start, window.end),
        )
        .order_by(Booking.start_at, Booking.id)
    )
    events = []
    for row in rows:
        if details and (sees_all or row.user_id == owner.id):
            summary = f"{row.title or 'Booked'} · {row.name}"
            description = f"Booked by {row.name}"
        else:
            summary, description = "Busy", ""
        events.append(
            ical.CalendarEvent(
                uid=ical.booking_uid(row.id, host),
                sequence=row.sequence or 0,
                stamp=row.updated_at,
                created=row.created_at,
                start=row.start_at,
                end=row.end_at,
                time_zone=zone,
                summary=summary,
                location=location,
                description=description,
                status=_booking_status(row.status),
            )
        )
    return events


def _own_events(
    session: Session, feed: CalendarFeed, window: Window, host: str
) -> list[ical.CalendarEvent]:
    details = feed.privacy == FeedPrivacy.DETAILS
    bookings = session.scalars(
        select(Booking)
        .where(
            Booking.user_id == feed.owner_id,
            Booking.status.in_(SHOWN_STATUSES),
            overlaps_window(window.start, window.end),
        )
        .order_by(Booking.start_at, Booking.id)
    )
    events = []
    for booking in bookings:
        event = ical.event_for_booking(booking, host=host)
        events.append(
            ical.CalendarEvent(
                uid=event.uid,
                sequence=event.sequence,
                stamp=event.stamp,
                created=event.created,
                start=event.start,
                end=event.end,
                time_zone=event.time_zone,
                summary=event.summary if details else "Busy",
                location=event.location,
                status=_booking_status(booking.status),
            )
        )
    return events


def _visit_events(
    session: Session, feed: CalendarFeed, where: object, window: Window, host: str
) -> list[ical.CalendarEvent]:
    """Visits: the person's own (as host) or a site's (for its coordinators)."""
    details = feed.privacy == FeedPrivacy.DETAILS
    visits = session.scalars(
        select(Visit)
        .where(
            where,
            Visit.status.in_(SHOWN_VISITS),
            Visit.expected_start < window.end,
            Visit.expected_end > window.start,
        )
        .order_by(Visit.expected_start, Visit.id)
    )
    events = []
    for visit in visits:
        if visit.expected_end <= visit.expected_start:
            continue  # nothing a calendar could show
        who = visit.visitor_name or "A visitor"  # blank once the retention job erased it
        if visit.visitor_company:
            who += f" ({visit.visitor_company})"
        if not details:
            summary = "Visitor"
        elif feed.kind == FeedKind.VISITORS:
            summary = f"Visitor: {who} · host {visit.host.name}"
        else:
            summary = f"Visitor: {who}"
        events.append(
            ical.CalendarEvent(
                uid=f"visit-{visit.id}@{host}",
                # Visits carry no SEQUENCE of their own: seconds since creation grow with every
                # change, which is all RFC 5545 asks of it.
                sequence=min(int((visit.updated_at - visit.created_at).total_seconds()), 2**31 - 1),
                stamp=visit.updated_at,
                created=visit.created_at,
                start=visit.expected_start,
                end=visit.expected_end,
                time_zone=visit.site.time_zone,
                summary=summary,
                location=f"Lobby, {visit.site.name}",
                status=ical.EventStatus.CONFIRMED,
            )
        )
    return events


def _booking_status(status: str) -> ical.EventStatus:
    return (
        ical.EventStatus.TENTATIVE
        if status == BookingStatus.PENDING
        else ical.EventStatus.CONFIRMED
    )


@dataclass(frozen=True)
class _Located:
    """booking_location() takes a booking; a feed of one resource has the same place throughout."""

    resource: Resource
