"""Badge and access-control systems: each site's settings, the time-boxed credentials (grants)
Foyer asks the site's system for, and what a door event (badge read) does in Foyer.

Grants never make anyone wait for the vendor. Inviting or checking in a visitor only writes a
`pending` grant row; revoking only moves it to `revoking`. A background job (portal/jobs.py: at
once after the commit, then every minute) claims due rows, calls the system with no transaction
open, and records the outcome; failures are retried with backoff and, after MAX_ATTEMPTS or on a
refusal that retrying cannot fix, shown to the admin as `failed` with a Retry button.

A door event's effects: an employee's badge-in checks in their booking(s) open for check-in (so it
counts toward occupancy and the roll call); an expected visitor's badge-in marks them arrived."""

from __future__ import annotations

import csv
import io
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.access_control.base import AccessError, AccessProvider, CredentialRequest
from integrations.access_control.rest import RestAccessProvider, check_base_url
from portal.errors import RuleViolation
from portal.models import Booking, BookingStatus, Resource, Site, User, Visit, VisitStatus
from portal.models.access_control import (
    AccessGrant,
    AccessSettings,
    DoorEvent,
    GrantMoment,
    GrantState,
)
from portal.services import audit, booking_rules, bookings, notices, secret_box, visitor_mail
from portal.services.audit import Actor

log = logging.getLogger("portal.access_control")

# session.info keys: the key that seals secrets (set by the app on its session factories, for
# the demo seed), and "a commit queued grant work" (the app then asks for a run at once).
SEALING_KEY = "foyer.sealing_key"
GRANTS_PENDING = "foyer.access_grants_pending"

LEASE = timedelta(minutes=2)  # far longer than one call with its timeouts
FIRST_RETRY = timedelta(seconds=30)  # then doubling, up to
LONGEST_RETRY = timedelta(minutes=30)
MAX_ATTEMPTS = 6  # about a quarter of an hour of trying, then the admin is asked
EARLY_ENTRY = timedelta(minutes=30)  # a visitor's credential works this long before the visit
LEAST_LEFT = timedelta(minutes=30)  # a late check-in still gets at least this much
DAY_PASS_LONGEST = timedelta(hours=14)
FUTURE_TOLERANCE = timedelta(minutes=5)  # door events from the future: a clock that is off
CSV_MAX_LINES = 5000
CSV_COLUMNS = ("event_id", "occurred_at", "person", "door", "direction")
LIVE = (GrantState.PENDING, GrantState.ACTIVE)

ProviderFactory = Callable[[str, str], AccessProvider]  # (base URL, API key) -> adapter


def rest_provider(base_url: str, api_key: str) -> AccessProvider:
    return RestAccessProvider(base_url, api_key)


# ---------------------------------------------------------------------------------------------
# Settings


def settings_for(session: Session, site_id: int) -> AccessSettings | None:
    return session.scalar(select(AccessSettings).where(AccessSettings.site_id == site_id))


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def update_settings(
    session: Session,
    actor: Actor,
    site: Site,
    key: bytes,
    *,
    enabled: bool,
    base_url: str,
    door_group: str,
    grant_at: str,
    api_key: str | None = None,  # None or "": keep the stored one (secrets are write-only)
    webhook_secret: str | None = None,
) -> AccessSettings:
    row = settings_for(session, site.id)
    errors: dict[str, str] = {}
    base_url = (base_url or "").strip()
    door_group = " ".join((door_group or "").split())
    api_key = (api_key or "").strip() or None
    webhook_secret = (webhook_secret or "").strip() or None
    if base_url:
        try:
            base_url = check_base_url(base_url)
        except ValueError as exc:
            errors["base_url"] = str(exc)
    elif enabled:
        errors["base_url"] = "Enter the address of the access-control system (or its bridge)."
    if len(base_url) > 300:
        errors["base_url"] = "Use at most 300 characters."
    if len(door_group) > 120:
        errors["door_group"] = "Use at most 120 characters."
    elif enabled and not door_group:
        errors["door_group"] = "Name the door group visitors may open, as the system calls it."
    if grant_at not in {m.value for m in GrantMoment}:
        errors["grant_at"] = "Choose when visitors get their credential."
    if api_key is not None and len(api_key) > 500:
        errors["api_key"] = "Use at most 500 characters."
    if enabled and api_key is None and not (row and row.api_key_sealed):
        errors["api_key"] = "Enter the API key Foyer uses with the system."
    if webhook_secret is not None and not 16 <= len(webhook_secret) <= 200:
        errors["webhook_secret"] = "Use 16 to 200 characters (a long random text)."  # noqa: S105  # nosec B105
    if errors:
        raise RuleViolation(errors, "access_settings")
    if row is None:
        row = AccessSettings(site_id=site.id)
        session.add(row)
    before = _settings_snapshot(row)
    row.enabled = enabled
    row.base_url = base_url
    row.door_group = door_group
    row.grant_at = grant_at
    row.updated_by_id = actor.user_id
    if api_key is not None:
        row.api_key_sealed = secret_box.seal(key, api_key)
    if webhook_secret is not None:
        row.webhook_secret_sealed = secret_box.seal(key, webhook_secret)
    session.flush()
    audit.record(
        session,
        actor,
        "access.settings_updated",
        row,
        before=before,
        # Never the secrets themselves: only that they changed.
        after={
            **_settings_snapshot(row),
            "api_key_changed": api_key is not None,
            "webhook_secret_changed": webhook_secret is not None,
        },
    )
    return row


def _settings_snapshot(row: AccessSettings) -> dict[str, object]:
    return {
        "enabled": bool(row.enabled),
        "base_url": row.base_url,
        "door_group": row.door_group,
        "grant_at": row.grant_at,
    }


def webhook_secret(row: AccessSettings | None, key: bytes) -> str | None:
    """The site's webhook secret, or None when it has none (or it cannot be read)."""
    if row is None or not row.webhook_secret_sealed:
        return None
    try:
        return secret_box.unseal(key, row.webhook_secret_sealed)
    except secret_box.SecretUnreadable:
        log.warning("site %s: the webhook secret was sealed with another key", row.site_id)
        return None


# ---------------------------------------------------------------------------------------------
# Grants: asked for in the visitor's transaction, carried out by the job


def _queue(session: Session) -> None:
    session.info[GRANTS_PENDING] = True


def _enabled_settings(session: Session, site_id: int) -> AccessSettings | None:
    row = settings_for(session, site_id)
    return row if row is not None and row.enabled else None


def _live_grants(session: Session, **by: int) -> list[AccessGrant]:
    query = select(AccessGrant).where(AccessGrant.state.in_(LIVE))
    for column, value in by.items():
        query = query.where(getattr(AccessGrant, column) == value)
    return list(session.scalars(query.order_by(AccessGrant.id)))


def _grant(
    session: Session,
    row: AccessSettings,
    *,
    starts: datetime,
    ends: datetime,
    now: datetime,
    **holder: Any,
) -> AccessGrant:
    grant = AccessGrant(
        site_id=row.site_id,
        starts_at=starts,
        ends_at=ends,
        door_group=row.door_group,
        state=GrantState.PENDING,
        next_attempt_at=now,  # at once: the system mails the visitor their credential
        **holder,
    )
    session.add(grant)
    session.flush()
    _queue(session)
    return grant


def visit_invited(session: Session, visit: Visit, *, now: datetime) -> AccessGrant | None:
    """At invitation time, for sites that grant then."""
    row = _enabled_settings(session, visit.site_id)
    if row is None or row.grant_at != GrantMoment.INVITATION:
        return None
    return _grant(
        session,
        row,
        starts=visit.expected_start - EARLY_ENTRY,
        ends=max(visit.expected_end, now + LEAST_LEFT),
        now=now,
        visit_id=visit.id,
    )


def visit_checked_in(session: Session, visit: Visit, *, now: datetime) -> AccessGrant | None:
    """At check-in (kiosk or badge), unless the invitation already brought a live grant."""
    row = _enabled_settings(session, visit.site_id)
    if row is None or _live_grants(session, visit_id=visit.id):
        return None
    return _grant(
        session,
        row,
        starts=now,
        ends=max(visit.expected_end, now + LEAST_LEFT),
        now=now,
        visit_id=visit.id,
    )


def visit_ended(session: Session, visit: Visit, *, now: datetime) -> int:
    """Checked out or cancelled: its credentials are revoked."""
    grants = _live_grants(session, visit_id=visit.id)
    for grant in grants:
        request_revoke(session, grant, now=now)
    return len(grants)


def issue_day_pass(
    session: Session, actor: Actor, site: Site, email: str, *, now: datetime
) -> AccessGrant:
    """A temporary credential for an employee (a forgotten badge), until the site closes."""
    row = _enabled_settings(session, site.id)
    if row is None:
        raise RuleViolation(
            {"email": "Switch on the access-control system for this site first."}, "disabled"
        )
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        raise RuleViolation({"email": "No active employee has this e-mail address."}, "unknown")
    zone = ZoneInfo(site.time_zone)
    closing = datetime.combine(now.astimezone(zone).date(), site.closes_at, zone).astimezone(UTC)
    ends = (
        closing
        if now + LEAST_LEFT <= closing <= now + DAY_PASS_LONGEST
        else now + timedelta(hours=2)
    )
    grant = _grant(session, row, starts=now, ends=ends, now=now, user_id=user.id)
    audit.record(session, actor, "access.day_pass_issued", grant, after={"user_id": user.id})
    return grant


def user_deactivated(session: Session, actor: Actor, user: User, *, now: datetime) -> int:
    """Offboarding: every credential the person holds is revoked."""
    grants = _live_grants(session, user_id=user.id)
    for grant in grants:
        request_revoke(session, grant, now=now)
    if grants:
        audit.record(
            session, actor, "access.grants_revoked", user, after={"grants": [g.id for g in grants]}
        )
    return len(grants)


def request_revoke(session: Session, grant: AccessGrant, *, now: datetime) -> None:
    """A created credential is revoked by the job; one never created just stops being wanted.
    A create in flight that lands later sees the grant is no longer pending and revokes it."""
    if grant.state in (GrantState.REVOKING, GrantState.REVOKED):
        return
    if grant.credential_id:
        grant.state = GrantState.REVOKING
        grant.attempts = 0
        grant.next_attempt_at = now
        _queue(session)
    else:
        grant.state = GrantState.REVOKED
        grant.revoked_at = now
    session.flush()


def expire(session: Session, *, now: datetime) -> int:
    """Revoke grants whose window ended or whose visit is over (checked out at the end of the
    day, cancelled, stopped). Idempotent; the job runs it every minute."""
    over = (
        select(AccessGrant)
        .outerjoin(Visit, Visit.id == AccessGrant.visit_id)
        .where(
            AccessGrant.state.in_(LIVE),
            or_(
                AccessGrant.ends_at <= now,
                Visit.status.in_(
                    [VisitStatus.CHECKED_OUT, VisitStatus.CANCELLED, VisitStatus.DENIED]
                ),
            ),
        )
        .with_for_update(skip_locked=True, of=AccessGrant)
    )
    grants = list(session.scalars(over))
    for grant in grants:
        request_revoke(session, grant, now=now)
    return len(grants)


def retry(session: Session, actor: Actor, grant: AccessGrant, *, now: datetime) -> None:
    """The admin fixed the cause (the key, the door group, the server): try again at once."""
    if grant.state != GrantState.FAILED:
        raise RuleViolation({"": "Only a failed delivery can be retried."}, "not_failed")
    wanted = grant.ends_at > now and (
        grant.visit is None or grant.visit.status in (VisitStatus.EXPECTED, VisitStatus.CHECKED_IN)
    )
    if grant.credential_id:  # only a revoke fails after the credential exists: revoke again
        grant.state = GrantState.REVOKING
    else:  # creating failed: create again, unless the visit is over by now
        grant.state = GrantState.PENDING if wanted else GrantState.REVOKED
    grant.attempts = 0
    grant.last_error = ""
    grant.next_attempt_at = now
    if grant.state in (GrantState.PENDING, GrantState.REVOKING):
        _queue(session)
    session.flush()
    audit.record(session, actor, "access.grant_retried", grant, after={"state": grant.state})


@dataclass
class ProcessCounts:
    created: int = 0
    revoked: int = 0
    retrying: int = 0
    failed: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.created + self.revoked + self.retrying + self.failed + self.expired


@dataclass(frozen=True)
class _Claim:
    grant_id: int
    attempt: int
    revoking: bool
    base_url: str
    api_key: str
    credential: CredentialRequest | None
    credential_id: str | None


def process_due(
    session: Session,
    key: bytes,
    *,
    now: datetime,
    provider_for: ProviderFactory = rest_provider,
    limit: int = 200,
) -> ProcessCounts:
    """Create and revoke due credentials. Safe in several workers at once; it commits as it goes,
    so pass a session with no transaction open."""
    if session.in_transaction():
        raise RuntimeError("process_due commits as it goes: pass a session with no transaction")
    counts = ProcessCounts()
    with session.begin():
        counts.expired = expire(session, now=now)
    for _ in range(limit):
        claim = _claim_next(session, key, now)
        if claim is None:
            break
        if not claim.base_url:  # not set up, or the key is unreadable: the claim recorded why
            counts.failed += 1
            continue
        try:
            provider = provider_for(claim.base_url, claim.api_key)
            if claim.revoking:
                assert claim.credential_id is not None
                provider.revoke_credential(claim.credential_id)
                credential_id = claim.credential_id
            else:
                assert claim.credential is not None
                credential_id = provider.create_credential(claim.credential)
        except AccessError as exc:
            gave_up = _record_failure(session, claim, now, exc)
            counts.failed += gave_up
            counts.retrying += not gave_up
            continue
        except ValueError as exc:  # a stored base URL that no longer parses
            _record_failure(session, claim, now, AccessError(str(exc), transient=False))
            counts.failed += 1
            continue
        _record_success(session, claim, now, credential_id)
        if claim.revoking:
            counts.revoked += 1
        else:
            counts.created += 1
    if counts.total:
        log.info("access grants: %s", counts)
    return counts


def _claim_next(session: Session, key: bytes, now: datetime) -> _Claim | None:
    """Take the next due grant: count the attempt and lease it, committed."""
    with session.begin():
        while True:
            grant = session.scalar(
                select(AccessGrant)
                .where(
                    AccessGrant.state.in_([GrantState.PENDING, GrantState.REVOKING]),
                    AccessGrant.next_attempt_at <= now,
                )
                .order_by(AccessGrant.next_attempt_at, AccessGrant.id)
                .limit(1)
                .with_for_update(skip_locked=True, of=AccessGrant)
            )
            if grant is None:
                return None
            revoking = grant.state == GrantState.REVOKING
            if not (revoking and not grant.credential_id):
                break
            grant.state, grant.revoked_at = GrantState.REVOKED, now  # nothing was ever created
            session.flush()
        grant.attempts += 1
        grant.next_attempt_at = now + LEASE
        row = settings_for(session, grant.site_id)
        api_key, problem = "", ""
        if row is None or not row.base_url or not row.api_key_sealed:
            problem = "the site has no access-control system set up"
        else:
            try:
                api_key = secret_box.unseal(key, row.api_key_sealed)
            except secret_box.SecretUnreadable:
                problem = "the stored API key cannot be read with this SECRET_KEY: enter it again"
        if problem:
            grant.state = GrantState.FAILED
            grant.last_error = problem
            grant.next_attempt_at = now
            return _Claim(grant.id, grant.attempts, revoking, "", "", None, None)
        assert row is not None
        return _Claim(
            grant.id,
            grant.attempts,
            revoking,
            row.base_url,
            api_key,
            None if revoking else _credential_request(grant),
            grant.credential_id,
        )


def _credential_request(grant: AccessGrant) -> CredentialRequest:
    if grant.visit is not None:
        name, email, kind = grant.visit.visitor_name, grant.visit.visitor_email, "visitor"
    elif grant.user is not None:
        name, email, kind = grant.user.name, grant.user.email, "employee"
    else:
        name, email, kind = "", "", "visitor"
    return CredentialRequest(
        reference=f"foyer-grant-{grant.id}",
        person_name=name,
        person_email=email,
        person_kind=kind,
        door_group=grant.door_group,
        valid_from=grant.starts_at,
        valid_until=grant.ends_at,
    )


def _locked(session: Session, claim: _Claim) -> AccessGrant | None:
    grant = session.get(
        AccessGrant, claim.grant_id, with_for_update={"of": AccessGrant}, populate_existing=True
    )
    if grant is None or grant.attempts != claim.attempt:
        log.warning("access grant %s: the claim expired before the answer", claim.grant_id)
        return None
    return grant


def _record_success(session: Session, claim: _Claim, now: datetime, credential_id: str) -> None:
    with session.begin():
        grant = _locked(session, claim)
        if grant is None:
            if not claim.revoking:
                # Never lose a created credential: park it for revoking if nobody owns it.
                session.execute(
                    update(AccessGrant)
                    .where(AccessGrant.id == claim.grant_id, AccessGrant.credential_id.is_(None))
                    .values(credential_id=credential_id)
                )
            return
        grant.last_error = ""
        if claim.revoking:
            grant.state = GrantState.REVOKED
            grant.revoked_at = now
            return
        grant.credential_id = credential_id
        if grant.state == GrantState.PENDING:
            grant.state = GrantState.ACTIVE
        else:  # revoked (or failed) meanwhile: the credential just made must go again
            grant.state = GrantState.REVOKING
            grant.revoked_at = None
            grant.attempts = 0
            grant.next_attempt_at = now


def _record_failure(session: Session, claim: _Claim, now: datetime, exc: AccessError) -> bool:
    """Schedule the next attempt with backoff, or give up; True when it gave up."""
    final = not exc.transient or claim.attempt >= MAX_ATTEMPTS
    what = "revoking" if claim.revoking else "creating"
    message = f"{what} the credential: {exc}"
    with session.begin():
        grant = _locked(session, claim)
        if grant is None:
            return False
        grant.last_error = message[:500]
        if final:
            grant.state = GrantState.FAILED
            grant.next_attempt_at = now
        else:
            delay = retry_delay(claim.attempt)
            if exc.retry_after is not None:
                delay = max(delay, timedelta(seconds=exc.retry_after))
            grant.next_attempt_at = now + delay
    log.warning(
        "access grant %s attempt %s failed%s: %s",
        claim.grant_id,
        claim.attempt,
        " for good" if final else "",
        message,
    )
    return final


def retry_delay(attempt: int) -> timedelta:
    """30 s, then 1, 2, 4, 8 ... minutes after the attempt that failed, at most 30 minutes."""
    return min(FIRST_RETRY * 2 ** max(attempt - 1, 0), LONGEST_RETRY)


def deliveries(
    session: Session, site_ids: set[int] | None, *, state: str = "", limit: int = 100
) -> list[AccessGrant]:
    """The newest grants of these sites (None: all), failures first when asked for."""
    query = select(AccessGrant).order_by(AccessGrant.created_at.desc(), AccessGrant.id.desc())
    if site_ids is not None:
        query = query.where(AccessGrant.site_id.in_(site_ids or {0}))
    if state:
        query = query.where(AccessGrant.state == state)
    return list(session.scalars(query.limit(limit)))


def holder_name(grant: AccessGrant) -> str:
    if grant.visit is not None:
        return grant.visit.visitor_name or "(erased visitor)"
    if grant.user is not None:
        return grant.user.name
    return "(removed)"


# ---------------------------------------------------------------------------------------------
# Door events


@dataclass(frozen=True)
class DoorEventData:
    event_id: str
    person: str
    door: str
    direction: str  # in | out
    occurred_at: datetime


def parse_event(data: Any, *, now: datetime) -> DoorEventData:
    """One event as the webhook's JSON or a CSV line carries it; ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("the event must be a JSON object")
    problems = []
    event_id = str(data.get("event_id") or "").strip()
    if not event_id or len(event_id) > 200 or not event_id.isprintable():
        problems.append("event_id: 1 to 200 printable characters")
    person = str(data.get("person") or "").strip()
    if not person or len(person) > 254 or not person.isprintable():
        problems.append("person: an e-mail address or a credential id, at most 254 characters")
    door = " ".join(str(data.get("door") or "").split())[:200]
    direction = str(data.get("direction") or "in").strip().lower()
    if direction not in ("in", "out"):
        problems.append("direction: in or out")
    occurred_at = _instant(data.get("occurred_at"))
    if occurred_at is None:
        problems.append("occurred_at: an ISO 8601 time with a zone, e.g. 2026-12-02T08:55:00Z")
    elif occurred_at > now + FUTURE_TOLERANCE:
        problems.append("occurred_at: in the future")
    if problems:
        raise ValueError("; ".join(problems))
    assert occurred_at is not None
    return DoorEventData(event_id, person, door, direction, occurred_at)


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        instant = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    if instant.tzinfo is None:
        return None  # a zone-less time would be read in the wrong zone
    return instant.astimezone(UTC)


def record_door_event(
    session: Session, actor: Actor, site: Site, data: DoorEventData, *, source: str, now: datetime
) -> DoorEvent | None:
    """Store the event and act on it; None when this event id was seen before (nothing done)."""
    if _seen(session, site.id, data.event_id):
        return None
    event = DoorEvent(
        site_id=site.id,
        event_id=data.event_id,
        person=data.person,
        door=data.door,
        direction=data.direction,
        occurred_at=data.occurred_at,
        received_at=now,
        source=source,
    )
    try:
        with session.begin_nested():
            session.add(event)
            session.flush()
    except IntegrityError:  # the same event arriving twice at once: the other one won
        return None
    event.outcome = _act_on(session, actor, site, event, now=now)[:300]
    session.flush()
    return event


def _seen(session: Session, site_id: int, event_id: str) -> bool:
    return (
        session.scalar(
            select(DoorEvent.id).where(DoorEvent.site_id == site_id, DoorEvent.event_id == event_id)
        )
        is not None
    )


def _act_on(session: Session, actor: Actor, site: Site, event: DoorEvent, *, now: datetime) -> str:
    grant = session.scalar(
        select(AccessGrant)
        .where(AccessGrant.site_id == site.id, AccessGrant.credential_id == event.person)
        .limit(1)
    )
    user: User | None = None
    visit: Visit | None = None
    if grant is not None:
        user, visit = grant.user, grant.visit
    elif "@" in event.person:
        email = event.person.lower()
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            visit = _expected_visit_by_email(session, site, email, event.occurred_at)
    event.user_id = user.id if user is not None else None
    event.visit_id = visit.id if visit is not None else None
    if user is None and visit is None:
        return "Unknown badge holder: nothing done."
    if event.direction == "out":
        return "Exit recorded."
    if user is not None:
        if not user.active:
            return f"{user.name} is deactivated: nothing checked in."
        return _check_in_bookings(session, actor, site, user, event.occurred_at)
    assert visit is not None
    return _visitor_arrived(session, actor, visit, event.occurred_at, now=now)


def _expected_visit_by_email(
    session: Session, site: Site, email: str, occurred_at: datetime
) -> Visit | None:
    day = occurred_at.astimezone(ZoneInfo(site.time_zone)).date()
    return session.scalar(
        select(Visit)
        .where(
            Visit.site_id == site.id,
            Visit.visitor_email == email,
            Visit.local_date == day,
            Visit.status.in_([VisitStatus.EXPECTED, VisitStatus.CHECKED_IN]),
        )
        .order_by(Visit.expected_start)
        .limit(1)
    )


def _check_in_bookings(session: Session, actor: Actor, site: Site, user: User, at: datetime) -> str:
    """Check in every booking of theirs at this site whose check-in window holds `at`."""
    policy = booking_rules.policy_for(session, site)
    reach = timedelta(minutes=policy.check_in_opens_minutes)
    candidates = session.scalars(
        select(Booking)
        .join(Resource, Resource.id == Booking.resource_id)
        .where(
            Booking.user_id == user.id,
            Resource.site_id == site.id,
            Booking.status.in_([BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN]),
            Booking.start_at <= at + reach,
            Booking.end_at > at,
            Booking.loan_id.is_(None),
        )
        .order_by(Booking.start_at, Booking.id)
    ).all()
    done, already, refused = [], [], []
    for booking in candidates:
        name = booking.resource.name
        if booking.status == BookingStatus.CHECKED_IN:
            already.append(name)
            continue
        try:
            bookings.check_in(session, actor, booking, via="badge", now=at)
        except RuleViolation as exc:
            refused.append(f"{name} ({exc})")
        else:
            done.append(name)
    if done:
        return f"Checked in {user.name}: " + ", ".join(done) + "."
    if already:
        return f"{user.name} was already checked in: " + ", ".join(already) + "."
    if refused:
        return f"{user.name}: not checked in: " + "; ".join(refused)
    return f"{user.name} has no booking open for check-in."


def _visitor_arrived(
    session: Session, actor: Actor, visit: Visit, at: datetime, *, now: datetime
) -> str:
    if visit.status == VisitStatus.CHECKED_IN:
        return f"{visit.visitor_name} was already checked in."
    if visit.status != VisitStatus.EXPECTED:
        return f"{visit.visitor_name}'s visit is {visit.status.replace('_', ' ')}: nothing done."
    if visit.local_date != at.astimezone(ZoneInfo(visit.site.time_zone)).date():
        return f"{visit.visitor_name} is expected on another day: nothing done."
    visit.status = VisitStatus.CHECKED_IN
    visit.checked_in_at = at
    visit.code_hash = None  # the invitation code has done its work
    session.flush()
    if visit.host.active:
        notices.notify(
            session,
            visit.host,
            "visitor_arrived",
            f"{visit.visitor_name} badged in at {visit.site.name}.",
            link=f"/visitors/{visit.id}",
        )
        visitor_mail.arrived(session, visit)
    visit_checked_in(session, visit, now=now)
    audit.record(session, actor, "visit.checked_in", visit, after={"via": "badge"})
    return f"{visit.visitor_name} arrived (badge); {visit.host.name} was told."


def recent_events(
    session: Session, site_ids: set[int] | None, *, limit: int = 50
) -> list[DoorEvent]:
    query = select(DoorEvent).order_by(DoorEvent.occurred_at.desc(), DoorEvent.id.desc())
    if site_ids is not None:
        query = query.where(DoorEvent.site_id.in_(site_ids or {0}))
    return list(session.scalars(query.limit(limit)))


# ---------------------------------------------------------------------------------------------
# CSV import


@dataclass
class ImportReport:
    recorded: int = 0
    duplicates: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)
    outcomes: list[tuple[int, str]] = field(default_factory=list)


def import_csv(
    session: Session, actor: Actor, site: Site, content: bytes, *, now: datetime
) -> ImportReport:
    """Door events from a CSV file (header `event_id,occurred_at,person,door,direction`). Good
    lines are recorded and acted on like webhook events; each bad line is reported by number."""
    report = ImportReport()
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.errors.append((0, "The file is not UTF-8 text."))
        return report
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_COLUMNS[:3] if c not in header]
    if missing:
        report.errors.append(
            (1, "The first line must name the columns: " + ",".join(CSV_COLUMNS) + ".")
        )
        return report
    reader.fieldnames = header
    seen: set[str] = set()
    for number, line in enumerate(reader, start=2):
        if number > CSV_MAX_LINES + 1:
            report.errors.append((number, f"Only {CSV_MAX_LINES} lines are read per file."))
            break
        if not any((v or "").strip() for k, v in line.items() if k):
            continue  # a blank line
        if None in line:
            report.errors.append((number, "More cells than columns."))
            continue
        try:
            data = parse_event({k: (v or "") for k, v in line.items()}, now=now)
        except ValueError as exc:
            report.errors.append((number, str(exc)))
            continue
        if data.event_id in seen:
            report.duplicates += 1
            continue
        seen.add(data.event_id)
        event = record_door_event(session, actor, site, data, source="csv", now=now)
        if event is None:
            report.duplicates += 1
        else:
            report.recorded += 1
            report.outcomes.append((number, event.outcome))
    if report.recorded:
        audit.record(
            session,
            actor,
            "access.door_events_imported",
            object_type="sites",
            object_id=site.id,
            after={"recorded": report.recorded, "duplicates": report.duplicates},
        )
    return report


# ---------------------------------------------------------------------------------------------
# The demo


DEMO_WEBHOOK_SECRET = "foyer-demo-badge-webhook-secret"  # noqa: S105 - documented demo value  # nosec B105
DEMO_API_KEY = "foyer-demo-api-key"  # noqa: S105 - the demo system is not reachable anyway


def seed_demo(session: Session, site: Site) -> AccessSettings | None:
    """The demo's Berlin site takes signed door events with a documented secret. Grants stay off
    (there is no access-control system to talk to). Needs the app's sealing key on the session."""
    key = session.info.get(SEALING_KEY)
    if key is None or settings_for(session, site.id) is not None:
        return None
    row = AccessSettings(
        site_id=site.id,
        enabled=False,
        base_url="http://127.0.0.1:8700",
        api_key_sealed=secret_box.seal(key, DEMO_API_KEY),
        webhook_secret_sealed=secret_box.seal(key, DEMO_WEBHOOK_SECRET),
        door_group="Berlin visitors",
        grant_at=GrantMoment.CHECK_IN,
    )
    session.add(row)
    session.flush()
    return row
