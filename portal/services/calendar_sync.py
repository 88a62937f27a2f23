"""Two-way sync between a room (or desk pool) and its calendar elsewhere: Foyer's bookings are pushed
to the calendar, and events someone put on that calendar are pulled in as bookings under the same
rules as any other (horizon, opening hours, conflicts), or declined with the reason mailed to their
organiser.

How a round goes (`sync_link`), committing as it goes so no transaction is open during network I/O
(on SQLite a writing transaction holds the database's only write lock):
1. claim the link: its next attempt moves a lease ahead, so two workers never sync it at once;
2. pull: the changes since the stored sync token (a full listing the first time, or when the server
   answers that the token expired); each change is applied in one transaction with the new token;
3. decline what was refused (network), push what changed in Foyer (network), recording each result;
4. record success, or the failure with the next attempt after an exponential backoff.

Decisions (also in the README):
- Who books: the organiser, matched by e-mail to an active Foyer account; an event without an
  organiser is booked in the name of whoever linked the calendar; an unknown organiser is declined.
- Pulled bookings send no Foyer e-mail: the organiser already has the event in their calendar, and
  an invitation with Foyer's own UID would show it twice there.
- Repeating events (RRULE, RDATE, moved occurrences) are declined with a reason: a series belongs
  in Foyer, where every occurrence is checked and shown before it is booked. Nothing expands a rule
  here, so an RRULE that never ends costs nothing.
- Loop prevention: what Foyer pushed is matched back by remote id, then by UID (`booking-<id>@host`),
  and the ETag the server gave for our write means "ours, unchanged".
- Foyer is the source of truth for its own bookings: an edit or a deletion on the calendar of an
  event Foyer pushed is overwritten or put back at the next push. An edit of a pulled event changes
  the booking (under the rules; a refused change is undone on the calendar and the organiser is
  told); deleting or cancelling a pulled event cancels its booking.
- Events that ended before the sync are ignored (an old calendar's history is not booked)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, event, or_, select
from sqlalchemy.orm import Session

from integrations import ical
from integrations.calendar_sync import adapters
from integrations.calendar_sync.base import Changes, Gone, RemoteCalendar, RemoteEvent, SyncError
from portal.db import db_id, utcnow
from portal.errors import NotFound, RuleViolation
from portal.models import Booking, BookingStatus, Resource, User
from portal.models.calendar_sync import CalendarLink, LinkState, Origin, Provider, SyncedEvent
from portal.services import audit, bookings, notifications, secret_box
from portal.services.audit import Actor

log = logging.getLogger("portal.calendar_sync")

PULL_EVERY = timedelta(minutes=1)
LEASE = timedelta(minutes=5)  # far longer than a round with its timeouts
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(minutes=30)
MAX_RETRY_AFTER = 6 * 3600  # seconds: a Retry-After beyond this is a server's mistake
FAILING_AFTER = 5  # consecutive transient failures before the link shows as failing
PUSH_FROM = timedelta(days=1)  # bookings that ended longer ago are history: not pushed
ACTOR = Actor.system("calendar sync")

# session.info keys: bookings of which resources a transaction touched, and (set just before its
# commit) the links to push soon; portal/jobs.py asks for a sync after the commit. A sync round
# sets SYNCING on its own session: it pushes in the same round, so it needs no extra job.
_TOUCHED = "foyer.calendar_sync_touched"
SYNC_PENDING = "foyer.calendar_sync_pending"
SYNCING = "foyer.calendar_sync_running"

AdapterFactory = Callable[[Any, bytes], RemoteCalendar]


@dataclass
class SyncResult:
    link_id: int
    ok: bool = True
    skipped: bool = False  # not due, paused, or another worker has it
    error: str = ""
    booked: int = 0
    changed: int = 0
    cancelled: int = 0
    declined: int = 0
    pushed: int = 0
    removed: int = 0
    full: bool = False
    messages: list[str] = field(default_factory=list)


# --- after-commit hook -----------------------------------------------------------------------


def _after_flush(session: Session, _context: Any) -> None:
    if session.info.get(SYNCING):
        return
    touched = {
        obj.resource_id
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, Booking) and obj.resource_id is not None
    }
    if touched:
        session.info.setdefault(_TOUCHED, set()).update(touched)


def _before_commit(session: Session) -> None:
    touched = session.info.pop(_TOUCHED, None)
    if not touched or session.info.get(SYNCING):
        return
    link_ids = session.scalars(
        select(CalendarLink.id).where(
            CalendarLink.resource_id.in_(sorted(touched)), CalendarLink.state != LinkState.PAUSED
        )
    ).all()
    if link_ids:
        session.info.setdefault(SYNC_PENDING, set()).update(link_ids)


def _after_soft_rollback(session: Session, previous: Any) -> None:
    if previous.parent is None:
        session.info.pop(_TOUCHED, None)
        session.info.pop(SYNC_PENDING, None)


event.listen(Session, "after_flush", _after_flush)
event.listen(Session, "before_commit", _before_commit)
event.listen(Session, "after_soft_rollback", _after_soft_rollback)


# --- links (the admin view's operations) -----------------------------------------------------


def links_for(session: Session, site_ids: set[int] | None) -> list[CalendarLink]:
    """Links of these sites' resources (None: all), by resource name."""
    query = select(CalendarLink).join(Resource, CalendarLink.resource_id == Resource.id)
    if site_ids is not None:
        query = query.where(Resource.site_id.in_(site_ids or {0}))
    return list(session.scalars(query.order_by(Resource.name, CalendarLink.id)))


def _snapshot(link: CalendarLink) -> dict[str, object]:
    return {
        "resource": link.resource_id,
        "provider": link.provider,
        "settings": dict(link.settings or {}),
        "state": link.state,
        "secret_set": bool(link.secret_sealed),  # never the secret itself
    }


def clean_settings(provider: str, values: dict[str, str]) -> dict[str, str]:
    """The provider's settings, trimmed; missing required ones and bad addresses raise
    RuleViolation naming the field."""
    spec = adapters.PROVIDERS.get(provider)
    if spec is None:
        raise RuleViolation({"provider": "Choose where the calendar is."}, "provider")
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for spec_field in spec.fields:
        value = (values.get(spec_field.name) or "").strip()
        if not value and spec_field.required:
            errors[spec_field.name] = f"Enter the {spec_field.label.lower()}."
        elif value and spec_field.url and not value.lower().startswith(("http://", "https://")):
            errors[spec_field.name] = "Enter an address starting with https:// (or http://)."
        elif len(value) > 300:
            errors[spec_field.name] = "Use at most 300 characters."
        cleaned[spec_field.name] = value
    if errors:
        raise RuleViolation(errors, "settings")
    return cleaned


def save_link(
    session: Session,
    actor: Actor,
    key: bytes,
    *,
    resource: Resource,
    provider: str,
    settings: dict[str, str],
    secret: str,
    link: CalendarLink | None = None,
    now: datetime,
) -> CalendarLink:
    """Create or change a resource's link. An empty `secret` keeps the stored one (the form never
    shows it back); a new link needs one. Changing where it points starts a fresh full sync."""
    cleaned = clean_settings(provider, settings)
    spec = adapters.PROVIDERS[provider]
    if provider == Provider.GOOGLE and secret.strip():
        import json

        try:
            info = json.loads(secret)
            if not isinstance(info, dict) or "client_email" not in info:
                raise ValueError
        except ValueError:
            raise RuleViolation(
                # a help text, not a password
                {"secret": "Paste the service account's whole JSON key file."},  # nosec B105
                "secret",
            ) from None
    if link is None:
        existing = session.scalar(
            select(CalendarLink).where(CalendarLink.resource_id == resource.id)
        )
        if existing is not None:
            raise RuleViolation(
                {"resource": f"{resource.name} is already linked to a calendar: edit that link."},
                "linked",
            )
        if not secret.strip():
            raise RuleViolation({"secret": f"Enter the {spec.secret_label.lower()}."}, "secret")
        link = CalendarLink(resource=resource, created_by_id=actor.user_id)
        session.add(link)
        before = None
    else:
        before = _snapshot(link)
    target_changed = link.provider != provider or dict(link.settings or {}) != cleaned
    if target_changed and link.id is not None:
        # Another calendar: what we knew about the old one means nothing there.
        session.execute(delete(SyncedEvent).where(SyncedEvent.link_id == link.id))
    if target_changed:
        link.sync_token = None
    link.provider = provider
    link.settings = cleaned
    if secret.strip():
        link.secret_sealed = secret_box.seal(key, secret.strip())
    if link.state != LinkState.PAUSED:
        link.state = LinkState.OK
    link.failures = 0
    link.last_error = ""
    link.next_attempt_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "calendar_link.created" if before is None else "calendar_link.changed",
        link,
        before=before,
        after=_snapshot(link),
    )
    session.info.setdefault(SYNC_PENDING, set()).add(link.id)
    return link


def set_paused(
    session: Session, actor: Actor, link: CalendarLink, paused: bool, *, now: datetime
) -> None:
    before = _snapshot(link)
    link.state = LinkState.PAUSED if paused else LinkState.OK
    link.failures = 0
    link.next_attempt_at = now
    if not paused:
        link.last_error = ""
        session.info.setdefault(SYNC_PENDING, set()).add(link.id)
    session.flush()
    audit.record(
        session,
        actor,
        "calendar_link.paused" if paused else "calendar_link.resumed",
        link,
        before=before,
        after=_snapshot(link),
    )


def remove_link(session: Session, actor: Actor, link: CalendarLink) -> None:
    """Unlink: bookings stay in Foyer and events stay on the calendar; nothing syncs any more."""
    audit.record(session, actor, "calendar_link.removed", link, before=_snapshot(link))
    session.delete(link)
    session.flush()


def test_connection(adapter: RemoteCalendar) -> str:
    """Whether the calendar answers; returns what it said (its name) or raises SyncError."""
    check = getattr(adapter, "check", None)
    if callable(check):
        name = check()
        return f"Connected to “{name}”." if name else "Connected."
    changes = adapter.changes_since(None)
    return f"Connected: {len(changes.changed)} events on the calendar."


# --- sync rounds -----------------------------------------------------------------------------


def retry_delay(failures: int) -> timedelta:
    """30 s, 1, 2, 4, 8 ... minutes after consecutive failures, at most 30 minutes."""
    # the exponent is capped: after ~40 failures 2**n seconds no longer fits in a timedelta
    return min(FIRST_RETRY * 2 ** min(max(failures - 1, 0), 16), LONGEST_RETRY)


def sync_due(
    session: Session,
    key: bytes,
    *,
    now: datetime | None = None,
    adapter_factory: AdapterFactory = adapters.adapter_for,
    only: Iterable[int] | None = None,
    limit: int = 100,
) -> list[SyncResult]:
    """Sync every link that is due (or only these, whenever they are due). Commits as it goes:
    pass a session with no transaction open."""
    now = now or utcnow()
    if session.in_transaction():
        raise RuntimeError("sync_due commits as it goes: pass a session with no transaction")
    with session.begin():
        query = select(CalendarLink.id).where(CalendarLink.state != LinkState.PAUSED)
        if only is not None:
            query = query.where(CalendarLink.id.in_(sorted(set(only)) or [0]))
        else:
            query = query.where(CalendarLink.next_attempt_at <= now)
        link_ids = list(session.scalars(query.order_by(CalendarLink.next_attempt_at).limit(limit)))
    results = []
    for link_id in link_ids:
        result = sync_link(
            session, key, link_id, now=now, adapter_factory=adapter_factory, force=only is not None
        )
        if not result.skipped:
            results.append(result)
    return results


@dataclass(frozen=True)
class _Claim:
    link_id: int
    resource_id: int
    token: str | None
    failures: int


def sync_link(
    session: Session,
    key: bytes,
    link_id: int,
    *,
    now: datetime | None = None,
    adapter_factory: AdapterFactory = adapters.adapter_for,
    force: bool = False,
) -> SyncResult:
    """One round for one link (see the module's docstring). `force` ignores the schedule (after a
    booking changed, or "Sync now"), but never a paused link or one another worker holds."""
    now = now or utcnow()
    result = SyncResult(link_id)
    if session.in_transaction():
        raise RuntimeError("sync_link commits as it goes: pass a session with no transaction")
    session.info[SYNCING] = True
    try:
        with session.begin():
            claim, adapter = _claim(session, key, link_id, now, force, adapter_factory, result)
        if claim is None:
            return result
        assert adapter is not None
        try:
            changes = _pull(adapter, claim.token, result)
            with session.begin():
                declines = _apply(session, claim, changes, now, result)
            for remote_event, reason in declines:
                adapter.decline(remote_event, reason)
                with session.begin():
                    _record_declined(session, claim.link_id, remote_event)
            _push(session, adapter, claim, now, result)
        except SyncError as exc:
            with session.begin():
                _record_failure(session, claim, now, exc, result)
            return result
        with session.begin():
            link = session.get(CalendarLink, claim.link_id)
            if link is not None:
                if link.state != LinkState.PAUSED:
                    link.state = LinkState.OK
                link.failures = 0
                link.last_error = ""
                link.last_synced_at = now
                link.next_attempt_at = now + PULL_EVERY
                link.claimed_until = None
        return result
    finally:
        session.info.pop(SYNCING, None)


def _claim(
    session: Session,
    key: bytes,
    link_id: int,
    now: datetime,
    force: bool,
    adapter_factory: AdapterFactory,
    result: SyncResult,
) -> tuple[_Claim | None, RemoteCalendar | None]:
    link = session.scalar(
        select(CalendarLink)
        .where(CalendarLink.id == link_id)
        .with_for_update(skip_locked=True, of=CalendarLink)
    )
    if link is None or link.state == LinkState.PAUSED:
        result.skipped = True
        return None, None
    leased = link.claimed_until is not None and link.claimed_until > now
    if (not force and link.next_attempt_at > now) or leased:
        result.skipped = True  # not due, or another worker is syncing it
        return None, None
    claim = _Claim(link.id, link.resource_id, link.sync_token, link.failures)
    link.claimed_until = now + LEASE
    try:
        adapter = adapter_factory(link, key)
    except SyncError as exc:
        _fail(link, now, exc, result)
        return None, None
    except (TypeError, ValueError) as exc:  # settings an adapter cannot work with
        _fail(link, now, SyncError(str(exc), transient=False), result)
        return None, None
    return claim, adapter


def _pull(adapter: RemoteCalendar, token: str | None, result: SyncResult) -> Changes:
    try:
        changes = adapter.changes_since(token)
    except Gone:
        log.info("calendar sync token expired; listing everything")
        changes = adapter.changes_since(None)
    result.full = changes.full
    return changes


def _fail(link: CalendarLink, now: datetime, exc: SyncError, result: SyncResult) -> None:
    link.failures += 1
    link.last_error = str(exc)[:500]
    if link.state != LinkState.PAUSED:
        gives_up = not exc.transient or link.failures >= FAILING_AFTER
        link.state = LinkState.FAILING if gives_up else LinkState.RETRYING
    wait = retry_delay(link.failures)
    if exc.retry_after:  # the server said how long (429/503 Retry-After): never sooner
        wait = max(wait, timedelta(seconds=min(exc.retry_after, MAX_RETRY_AFTER)))
    link.next_attempt_at = now + wait
    link.claimed_until = None
    result.ok = False
    result.error = link.last_error
    log.warning("calendar link %s: sync failed (%s): %s", link.id, link.failures, exc)


def _record_failure(
    session: Session, claim: _Claim, now: datetime, exc: SyncError, result: SyncResult
) -> None:
    link = session.get(CalendarLink, claim.link_id)
    if link is not None:
        _fail(link, now, exc, result)


# --- pulling ---------------------------------------------------------------------------------


def _apply(
    session: Session, claim: _Claim, changes: Changes, now: datetime, result: SyncResult
) -> list[tuple[RemoteEvent, str]]:
    """Apply one listing; returns the events to decline (after the commit: network)."""
    link = session.get(CalendarLink, claim.link_id)
    if link is None:
        return []
    declines: list[tuple[RemoteEvent, str]] = []
    seen: set[str] = set()
    for remote in changes.changed:
        seen.add(remote.remote_id)
        reason = _apply_one(session, link, remote, now, result)
        if reason:
            declines.append((remote, reason))
    gone = list(changes.deleted)
    if changes.full:
        known = session.scalars(
            select(SyncedEvent.remote_id).where(
                SyncedEvent.link_id == link.id, SyncedEvent.remote_id.is_not(None)
            )
        )
        gone += [remote_id for remote_id in known if remote_id and remote_id not in seen]
    for remote_id in gone:
        _remote_deleted(session, link, remote_id, now, result)
    link.sync_token = changes.token
    return declines


def _row_for(session: Session, link: CalendarLink, remote: RemoteEvent) -> SyncedEvent | None:
    row = session.scalar(
        select(SyncedEvent).where(
            SyncedEvent.link_id == link.id, SyncedEvent.remote_id == remote.remote_id
        )
    )
    if row is None:
        row = session.scalar(
            select(SyncedEvent).where(SyncedEvent.link_id == link.id, SyncedEvent.uid == remote.uid)
        )
    return row


def _apply_one(
    session: Session, link: CalendarLink, remote: RemoteEvent, now: datetime, result: SyncResult
) -> str:
    """Apply one remote event; returns a reason when it must be declined."""
    row = _row_for(session, link, remote)
    if row is not None and row.declined_reason:
        if row.etag == remote.etag:
            return row.declined_reason  # declining failed last time: again, without a new mail
        session.delete(row)  # the organiser changed it: judge it afresh
        session.flush()
        row = None
    if row is None:
        row = _adopt_own_event(session, link, remote)
    if row is not None:
        if row.etag == remote.etag and row.remote_id == remote.remote_id:
            return ""  # our own write coming back, or unchanged
        if row.origin == Origin.FOYER:
            # Edited on the calendar: Foyer's booking wins, the next push puts it back.
            row.remote_id, row.etag, row.pushed_sequence = remote.remote_id, remote.etag, None
            return ""
        return _remote_changed(session, link, row, remote, now, result)
    if remote.cancelled or remote.end <= now:
        return ""  # nothing to book: cancelled, or history
    return _book_remote(session, link, remote, now, result)


def _adopt_own_event(
    session: Session, link: CalendarLink, remote: RemoteEvent
) -> SyncedEvent | None:
    """An event with one of our booking UIDs but no map row (its row was lost, or the answer to
    our PUT): it is that booking's, never a new one."""
    host = notifications.sender_for(session).host
    prefix, _, rest = remote.uid.partition("-")
    booking_id, _, uid_host = rest.partition("@")
    number = db_id(booking_id)
    if prefix != "booking" or uid_host != host or number is None:
        return None
    booking = session.get(Booking, number)
    if booking is None or booking.resource_id != link.resource_id:
        return None
    row = session.scalar(
        select(SyncedEvent).where(
            SyncedEvent.link_id == link.id, SyncedEvent.booking_id == booking.id
        )
    )
    if row is None:
        row = SyncedEvent(
            link_id=link.id, booking_id=booking.id, uid=remote.uid, origin=Origin.FOYER
        )
        session.add(row)
    row.remote_id, row.etag, row.pushed_sequence = remote.remote_id, remote.etag, None
    session.flush()
    return row


def _booker(session: Session, link: CalendarLink, remote: RemoteEvent) -> tuple[User | None, str]:
    if remote.organizer_email:
        user = session.scalar(
            select(User).where(User.email == remote.organizer_email.strip().lower())
        )
        if user is None or not user.active:
            return None, (
                f"{remote.organizer_email} has no Foyer account, and only Foyer accounts "
                f"can book {link.resource.name}."
            )
        return user, ""
    owner = session.get(User, link.created_by_id) if link.created_by_id else None
    if owner is None or not owner.active:
        return None, "The event has no organiser, so there is nobody to book it for."
    return owner, ""


def _refusal(violation: RuleViolation) -> str:
    return " ".join(message for message in violation.errors.values() if message) or str(violation)


def _book_remote(
    session: Session, link: CalendarLink, remote: RemoteEvent, now: datetime, result: SyncResult
) -> str:
    reason = ""
    if remote.recurrence:
        reason = (
            "Repeating events cannot book this room from a calendar. Book the series in Foyer, "
            "where every occurrence is checked before it is booked."
        )
    booker: User | None = None
    if not reason:
        booker, reason = _booker(session, link, remote)
    booking = None
    if not reason:
        assert booker is not None
        try:
            booking = bookings.book(
                session,
                ACTOR,
                booker,
                resource_id=link.resource_id,
                start=remote.start,
                end=remote.end,
                title=" ".join(remote.summary.split())[: bookings.MAX_TITLE],
                now=now,
                notify=False,  # the organiser has the event already (see the module docstring)
            )
        except (RuleViolation, NotFound) as refusal:
            reason = _refusal(refusal) if isinstance(refusal, RuleViolation) else refusal.message
    if booking is None:
        _queue_decline(session, link, remote, reason, result)
        return reason
    session.add(
        SyncedEvent(
            link_id=link.id,
            booking_id=booking.id,
            remote_id=remote.remote_id,
            uid=remote.uid,
            etag=remote.etag,
            pushed_sequence=booking.sequence,
            pushed_status=booking.status,
            origin=Origin.REMOTE,
        )
    )
    session.flush()
    result.booked += 1
    return ""


def _queue_decline(
    session: Session, link: CalendarLink, remote: RemoteEvent, reason: str, result: SyncResult
) -> None:
    """Remember the refusal (so its organiser is told once) and mail them why."""
    row = SyncedEvent(
        link_id=link.id,
        booking_id=None,
        remote_id=remote.remote_id,
        uid=remote.uid,
        etag=remote.etag,
        origin=Origin.REMOTE,
        declined_reason=reason[:500],
    )
    session.add(row)
    session.flush()
    _mail_organiser(
        session, link, remote, "Declined", reason, "The room did not accept your event."
    )
    audit.record(
        session,
        ACTOR,
        "calendar_link.declined",
        link,
        after={"uid": remote.uid[:200], "reason": reason[:300]},
    )
    result.declined += 1
    result.messages.append(f"declined {remote.summary!r}: {reason}")


def _mail_organiser(
    session: Session,
    link: CalendarLink,
    remote: RemoteEvent,
    verb: str,
    reason: str,
    headline: str,
) -> None:
    resource = link.resource
    address, name = remote.organizer_email, remote.organizer_name
    if not address:
        owner = session.get(User, link.created_by_id) if link.created_by_id else None
        if owner is None:
            return
        address, name = owner.email, owner.name
    zone = ZoneInfo(resource.site.time_zone)
    when = _when(remote.start, remote.end, zone)
    notifications.queue_message(
        session,
        to_address=address,
        to_name=name or address,
        subject=f"{verb}: {remote.summary or 'your event'} – {resource.name}",
        headline=headline,
        facts=[
            ("What", remote.summary or "(no title)"),
            ("When", when),
            ("Where", ical.booking_location(SimpleNamespace(resource=resource))),
            ("Reason", reason),
        ],
        notes=[f"Book {resource.name} in Foyer to see free times and the site's rules."],
        related=("calendar_link", link.id),
    )


def _when(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    same_day = local_start.date() == local_end.date()
    end_text = local_end.strftime("%H:%M") if same_day else local_end.strftime("%a %d %b %Y, %H:%M")
    return f"{local_start.strftime('%a %d %b %Y, %H:%M')}–{end_text} {local_start.tzname()}"


def _remote_changed(
    session: Session,
    link: CalendarLink,
    row: SyncedEvent,
    remote: RemoteEvent,
    now: datetime,
    result: SyncResult,
) -> str:
    """A pulled event changed on the calendar: change or cancel its booking."""
    row.remote_id, row.etag = remote.remote_id, remote.etag
    booking = session.get(Booking, row.booking_id) if row.booking_id else None
    if booking is None or not booking.holds_slot:
        return ""  # cancelled in Foyer: the push removes the event
    if remote.cancelled:
        if booking.end_at > now:
            bookings.cancel(
                session, ACTOR, booking, now=now, reason="Cancelled in the calendar.", notify=False
            )
            result.cancelled += 1
        row.pushed_sequence, row.pushed_status = booking.sequence, booking.status
        return ""
    title = " ".join(remote.summary.split())[: bookings.MAX_TITLE]
    if (remote.start, remote.end, title) == (booking.start_at, booking.end_at, booking.title):
        return ""
    refusal = ""
    if remote.recurrence:
        refusal = (
            "Repeating events cannot book this room from a calendar; the booking stays as it was."
        )
    else:
        try:
            with session.begin_nested():
                bookings.change(
                    session,
                    ACTOR,
                    booking.user,
                    booking,
                    start=remote.start if booking.start_at > now else None,
                    end=remote.end,
                    title=title,
                    now=now,
                )
            result.changed += 1
            row.pushed_sequence, row.pushed_status = booking.sequence, booking.status
            return ""
        except RuleViolation as violation:
            refusal = _refusal(violation)
    # Refused: the booking stays, and the next push puts Foyer's version back on the calendar.
    row.pushed_sequence = None
    _mail_organiser(
        session,
        link,
        remote,
        "Change not accepted",
        refusal,
        "The room kept your booking as it was: the change could not be accepted.",
    )
    result.messages.append(f"change of {remote.summary!r} refused: {refusal}")
    return ""


def _remote_deleted(
    session: Session, link: CalendarLink, remote_id: str, now: datetime, result: SyncResult
) -> None:
    row = session.scalar(
        select(SyncedEvent).where(
            SyncedEvent.link_id == link.id, SyncedEvent.remote_id == remote_id
        )
    )
    if row is None:
        return
    if row.declined_reason or row.booking_id is None:
        session.delete(row)
        return
    if row.origin == Origin.FOYER:
        row.remote_id, row.etag, row.pushed_sequence = None, None, None  # put it back
        return
    booking = session.get(Booking, row.booking_id)
    if booking is not None and booking.holds_slot and booking.end_at > now:
        bookings.cancel(
            session, ACTOR, booking, now=now, reason="Removed from the calendar.", notify=False
        )
        result.cancelled += 1
    session.delete(row)


def _record_declined(session: Session, link_id: int, remote: RemoteEvent) -> None:
    """The event is off the calendar: its row stays (with the reason) until the deletion comes
    back in the next listing, so a repeat of the same version is recognised."""
    row = session.scalar(
        select(SyncedEvent).where(
            SyncedEvent.link_id == link_id, SyncedEvent.remote_id == remote.remote_id
        )
    )
    if row is not None:
        row.etag = remote.etag


# --- pushing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PushOp:
    booking_id: int
    row_id: int | None
    remote_id: str | None
    etag: str | None
    sequence: int
    status: str
    event: ical.CalendarEvent | None  # None: delete the event


def _push(
    session: Session, adapter: RemoteCalendar, claim: _Claim, now: datetime, result: SyncResult
) -> None:
    with session.begin():
        ops = _plan_push(session, claim, now)
    for op in ops:
        if op.event is None:
            assert op.remote_id is not None
            adapter.delete(op.remote_id, op.etag)
            with session.begin():
                row = session.get(SyncedEvent, op.row_id)
                if row is not None:
                    session.delete(row)
            result.removed += 1
            continue
        remote_id, etag = adapter.put(op.event, op.remote_id, op.etag)
        with session.begin():
            row = session.get(SyncedEvent, op.row_id) if op.row_id else None
            if row is None:
                row = SyncedEvent(
                    link_id=claim.link_id,
                    booking_id=op.booking_id,
                    uid=op.event.uid,
                    origin=Origin.FOYER,
                )
                session.add(row)
            row.remote_id, row.etag = remote_id, etag or None
            row.pushed_sequence, row.pushed_status = op.sequence, op.status
        result.pushed += 1


PUSHED_STATUSES = (
    BookingStatus.PENDING,
    BookingStatus.CONFIRMED,
    BookingStatus.CHECKED_IN,
    BookingStatus.COMPLETED,  # ended early: the calendar keeps it with its new end
)


def _plan_push(session: Session, claim: _Claim, now: datetime) -> list[_PushOp]:
    """Bookings whose calendar copy is missing or behind, and rows of bookings that no longer
    hold their slot (to delete). One query; unchanged bookings are filtered out in SQL."""
    sender = notifications.sender_for(session)
    row = SyncedEvent
    on_calendar = Booking.status.in_(PUSHED_STATUSES)
    stale = or_(
        row.id.is_(None),
        row.remote_id.is_(None),
        row.pushed_sequence.is_(None),
        row.pushed_sequence != Booking.sequence,
        row.pushed_status != Booking.status,
    )
    pairs = session.execute(
        select(Booking, row)
        .outerjoin(row, and_(row.booking_id == Booking.id, row.link_id == claim.link_id))
        .where(
            Booking.resource_id == claim.resource_id,
            Booking.end_at > now - PUSH_FROM,
            row.declined_reason.is_(None) | (row.declined_reason == ""),
            stale,
            or_(on_calendar, row.remote_id.is_not(None)),
        )
        .order_by(Booking.start_at, Booking.id)
    ).all()
    ops: list[_PushOp] = []
    for booking, synced in pairs:
        if booking.status not in PUSHED_STATUSES:
            if synced is not None and synced.remote_id:
                ops.append(
                    _PushOp(
                        booking.id,
                        synced.id,
                        synced.remote_id,
                        synced.etag,
                        booking.sequence,
                        booking.status,
                        None,
                    )
                )
            continue
        if synced is None and booking.end_at <= now:
            continue  # over before it was ever pushed: history
        calendar_event = ical.event_for_booking(
            booking,
            host=sender.host,
            organizer=ical.Person(sender.address, sender.name),
            description=f"Booked in Foyer: {sender.base_url}",
        )
        if synced is not None and synced.origin == Origin.REMOTE:
            # The organiser's own event: keep its UID, so their calendar matches it.
            calendar_event = replace(calendar_event, uid=synced.uid)
        ops.append(
            _PushOp(
                booking.id,
                synced.id if synced is not None else None,
                synced.remote_id if synced is not None else None,
                synced.etag if synced is not None else None,
                booking.sequence,
                booking.status,
                calendar_event,
            )
        )
    return ops
