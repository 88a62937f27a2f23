"""The visitor rules, in one place: invitations, finding an invitation at the kiosk, walk-ins, the
deny list, agreements and signatures, check-in and check-out, the end-of-day check-out, the roll
call and the erasure of visitors' personal data after the site's retention period.

Kiosk-facing refusals are RuleViolations whose `rule` names the case (e.g. "invitation_expired");
the kiosk shows its own translated sentence for each rule, never this module's English."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.errors import NotFound, RuleViolation
from portal.models import (
    BadgeState,
    Booking,
    BookingStatus,
    CheckoutMethod,
    DenyListEntry,
    KioskDevice,
    Resource,
    Role,
    RoleGrant,
    RollCallMark,
    Site,
    User,
    Visit,
    VisitImage,
    VisitKind,
    VisitorAgreement,
    VisitStatus,
)
from portal.models.access_control import DoorEvent
from portal.services import (
    access_control,
    audit,
    image_uploads,
    kiosk_devices,
    notices,
    visitor_mail,
)
from portal.services.audit import Actor
from portal.timezones import local_day_bounds, to_utc

NAME_MAX = 200
COMPANY_MAX = 200
PURPOSE_MAX = 500
NOTE_MAX = 2000
SHORTEST_VISIT = timedelta(minutes=15)
LONGEST_VISIT = timedelta(hours=14)
INVITE_AHEAD = timedelta(days=365)
SEARCH_MIN = 2  # characters before a name search answers, so nobody can list everyone
SEARCH_LIMIT = 8
SIGNATURE_MAX_BYTES = 400_000  # a data URL of a drawn signature is a few tens of kB
PHOTO_MAX_BYTES = 3_000_000
CHECKOUT_PREFIX = "FOYER-OUT:"
# session.info key: visits whose badge a printer should print once this transaction commits
BADGES_PENDING = "foyer.badges_pending"


# ---------------------------------------------------------------------------------------------
# Normalising and validating what people type


def name_key(name: str) -> str:
    """Case-, accent- and whitespace-insensitive form of a name: "  José  O’Neil" → "jose o'neil"."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = stripped.replace("’", "'").replace("‘", "'").replace("`", "'")
    return " ".join(stripped.casefold().split())[:NAME_MAX]


def email_key(email: str) -> str:
    return email.strip().casefold()[:254]


def clean_text(value: str | None) -> str:
    """Trimmed, inner whitespace runs kept, control characters removed (they would break labels
    and CSV). Length is not cut here: too-long input is refused with a message, never truncated."""
    value = value or ""
    value = "".join(c for c in value if c in "\n\t" or unicodedata.category(c) != "Cc")
    return value.strip()


@dataclass
class VisitorDetails:
    name: str
    email: str = ""
    company: str = ""
    purpose: str = ""

    @classmethod
    def from_form(
        cls, name: str | None, email: str | None, company: str | None, purpose: str | None = ""
    ) -> VisitorDetails:
        return cls(
            name=" ".join(clean_text(name).split()),
            email=clean_text(email).lower(),
            company=" ".join(clean_text(company).split()),
            purpose=clean_text(purpose),
        )

    def problems(self, *, email_required: bool = False) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not self.name:
            errors["name"] = "Enter the visitor's full name."
        elif len(self.name) > NAME_MAX:
            errors["name"] = f"Use at most {NAME_MAX} characters."
        if self.email:
            if len(self.email) > 254:
                errors["email"] = "That e-mail address is too long."
            else:
                try:
                    validate_email(self.email, check_deliverability=False)
                except EmailNotValidError:
                    errors["email"] = "Enter an e-mail address like name@example.com."
        elif email_required:
            errors["email"] = "Enter the visitor's e-mail address: the invitation goes there."
        if len(self.company) > COMPANY_MAX:
            errors["company"] = f"Use at most {COMPANY_MAX} characters."
        if len(self.purpose) > PURPOSE_MAX:
            errors["purpose"] = f"Use at most {PURPOSE_MAX} characters."
        return errors


def _short_name(name: str) -> str:
    """Enough to recognise oneself, not enough to learn who else is coming: "Anna K."."""
    parts = name.split()
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]} {parts[-1][0]}."


# ---------------------------------------------------------------------------------------------
# Invitations


def invite(
    session: Session,
    actor: Actor,
    host: User,
    *,
    site: Site,
    details: VisitorDetails,
    day: date | None,
    start_time: str,
    end_time: str,
    note: str,
    now: datetime,
) -> tuple[Visit, str]:
    """An employee invites a visitor: the visit is expected, the visitor gets an e-mail with a
    code (and its QR code). Returns the visit and the code, which is stored only as a digest."""
    errors = details.problems(email_required=True)
    note = clean_text(note)
    if len(note) > NOTE_MAX:
        errors["note"] = f"Use at most {NOTE_MAX} characters."
    zone = ZoneInfo(site.time_zone)
    start = end = None
    if day is None:
        errors["day"] = "Choose the day of the visit."
    else:
        start = _local_instant(day, start_time, zone)
        end = _local_instant(day, end_time, zone)
        if start is None:
            errors["start_time"] = "Enter the arrival time as HH:MM."
        if end is None:
            errors["end_time"] = "Enter the end time as HH:MM."
    if start is not None and end is not None:
        if end <= start:
            errors["end_time"] = "The visit must end after it starts."
        elif end - start < SHORTEST_VISIT:
            errors["end_time"] = "A visit lasts at least 15 minutes."
        elif end - start > LONGEST_VISIT:
            errors["end_time"] = "A visit lasts at most 14 hours; invite for each day instead."
        elif end <= now:
            errors["day"] = "That time has passed. Choose a time still to come."
        elif start > now + INVITE_AHEAD:
            errors["day"] = "Visitors can be invited up to a year ahead."
    if not host.active:
        errors[""] = "Only active employees can invite visitors."
    if errors:
        raise RuleViolation(errors, "invitation_form")
    assert start is not None and end is not None and day is not None

    code = kiosk_devices.new_code()
    visit = Visit(
        site_id=site.id,
        host_id=host.id,
        kind=VisitKind.INVITED,
        status=VisitStatus.EXPECTED,
        visitor_name=details.name,
        visitor_email=details.email,
        visitor_company=details.company,
        purpose=details.purpose,
        host_note=note,
        name_key=name_key(details.name),
        email_key=email_key(details.email),
        expected_start=start,
        expected_end=end,
        local_date=day,
        code_hash=kiosk_devices.digest(code),
        created_by_id=actor.user_id,
    )
    session.add(visit)
    session.flush()
    visit.site = site
    visit.host = host
    visitor_mail.invitation(session, visit, kiosk_devices.format_code(code))
    access_control.visit_invited(session, visit, now=now)  # a badge, if the site grants then
    audit.record(
        session,
        actor,
        "visit.invited",
        visit,
        after={"site": site.slug, "day": day.isoformat(), "host_id": host.id},
    )
    return visit, kiosk_devices.format_code(code)


def _local_instant(day: date, hhmm: str, zone: ZoneInfo) -> datetime | None:
    match = re.fullmatch(r"\s*([01]?\d|2[0-3]):([0-5]\d)\s*", hhmm or "")
    if not match:
        return None
    local = datetime(day.year, day.month, day.day, int(match[1]), int(match[2]))
    return to_utc(local, zone)


def cancel_invitation(session: Session, actor: Actor, visit: Visit, *, now: datetime) -> None:
    if visit.status != VisitStatus.EXPECTED:
        raise RuleViolation(
            {"": "Only an invitation the visitor has not used yet can be cancelled."},
            "invitation_not_cancellable",
        )
    visit.status = VisitStatus.CANCELLED
    visit.code_hash = None  # the code stops working at once
    visitor_mail.invitation_cancelled(session, visit)
    access_control.visit_ended(session, visit, now=now)
    audit.record(session, actor, "visit.cancelled", visit)


def visible_visit(session: Session, user: User, visit_id: int) -> Visit:
    """A visit the user may see: their own as host, or any at a site they coordinate (admins:
    all). Anything else is 'not found', so ids are not confirmed."""
    visit = session.get(Visit, visit_id)
    if visit is None or not may_manage_visit(user, visit):
        raise NotFound("No such visit.")
    return visit


def may_manage_visit(user: User, visit: Visit) -> bool:
    """The host (except for a deny-list stop: that is for the lobby to handle, and the
    visitor named the host themselves), the site's coordinators and admins."""
    if user.is_admin or visit.site_id in user.coordinated_site_ids():
        return True
    return visit.host_id == user.id and visit.status != VisitStatus.DENIED


def hosted_by(session: Session, host: User, *, now: datetime, days_back: int = 30) -> list[Visit]:
    """The host's visits from `days_back` ago on, soonest first for the future."""
    since = (now - timedelta(days=days_back)).date()
    return list(
        session.scalars(
            select(Visit)
            .where(
                Visit.host_id == host.id,
                Visit.local_date >= since,
                Visit.status != VisitStatus.DENIED,
            )
            .order_by(Visit.expected_start.desc(), Visit.id.desc())
            .limit(200)
        )
    )


def hosted_on_day(session: Session, host: User, day: date) -> list[Visit]:
    """The host's visitors on a day (for My day), cancelled ones left out."""
    return list(
        session.scalars(
            select(Visit)
            .where(
                Visit.host_id == host.id,
                Visit.local_date == day,
                Visit.status.not_in((VisitStatus.CANCELLED, VisitStatus.DENIED)),
            )
            .order_by(Visit.expected_start, Visit.id)
        )
    )


# ---------------------------------------------------------------------------------------------
# At the kiosk: finding the visitor


def today_at(site: Site, now: datetime) -> date:
    return now.astimezone(ZoneInfo(site.time_zone)).date()


def find_invitation(session: Session, site: Site, typed_code: str, *, now: datetime) -> Visit:
    """The invitation behind a typed or scanned code, if it is for this site and today."""
    code = kiosk_devices.normalise_code(typed_code)
    if len(code) != kiosk_devices.CODE_LENGTH:
        raise RuleViolation({"code": "That does not look like an invitation code."}, "code_format")
    visit = session.scalar(select(Visit).where(Visit.code_hash == kiosk_devices.digest(code)))
    if visit is None:
        raise RuleViolation({"code": "We could not find that code."}, "invitation_unknown")
    return _usable_invitation(visit, site, now)


def _usable_invitation(visit: Visit, site: Site, now: datetime) -> Visit:
    if visit.site_id != site.id:
        raise RuleViolation({"code": "This invitation is for another office."}, "invitation_site")
    if visit.status == VisitStatus.CANCELLED:
        raise RuleViolation({"code": "This invitation was cancelled."}, "invitation_cancelled")
    if visit.status in (VisitStatus.CHECKED_IN, VisitStatus.CHECKED_OUT, VisitStatus.DENIED):
        raise RuleViolation({"code": "This invitation has been used."}, "invitation_used")
    today = today_at(site, now)
    if visit.local_date < today:
        raise RuleViolation({"code": "This invitation has expired."}, "invitation_expired")
    if visit.local_date > today:
        raise RuleViolation({"code": "This invitation is for a later day."}, "invitation_later")
    return visit


def expected_invitation(session: Session, site: Site, visit_id: int, *, now: datetime) -> Visit:
    """An invitation picked from today's list (or carried between kiosk steps), checked again."""
    visit = session.get(Visit, visit_id)
    if visit is None or visit.site_id != site.id:
        raise RuleViolation({"code": "We could not find that invitation."}, "invitation_unknown")
    return _usable_invitation(visit, site, now)


@dataclass(frozen=True)
class KioskMatch:
    visit_id: int
    display_name: str  # "Anna K."
    host_display: str  # "Jonas W."
    company: str = ""


def _word_prefix(column: object, query: str) -> object:
    # name_key is folded like the query; match the start of any word
    return or_(column.like(f"{query}%"), column.like(f"% {query}%"))  # type: ignore[attr-defined]


def _like_safe(query: str) -> str:
    return re.sub(r"[%_\\]", "", query)


def expected_today(session: Session, site: Site, query: str, *, now: datetime) -> list[KioskMatch]:
    """Today's expected visitors whose name has a word starting with `query` (two characters at
    least), shown only as "Anna K." with their host, so nobody can browse the guest list."""
    key = _like_safe(name_key(query))
    if len(key) < SEARCH_MIN:
        return []
    visits = session.scalars(
        select(Visit)
        .where(
            Visit.site_id == site.id,
            Visit.local_date == today_at(site, now),
            Visit.status == VisitStatus.EXPECTED,
            _word_prefix(Visit.name_key, key),
        )
        .order_by(Visit.expected_start, Visit.id)
        .limit(SEARCH_LIMIT)
    )
    return [KioskMatch(v.id, _short_name(v.visitor_name), _short_name(v.host.name)) for v in visits]


def checked_in_now(session: Session, site: Site, query: str) -> list[KioskMatch]:
    """For checking out by name at the kiosk: visitors on site whose name matches."""
    key = _like_safe(name_key(query))
    if len(key) < SEARCH_MIN:
        return []
    visits = session.scalars(
        select(Visit)
        .where(
            Visit.site_id == site.id,
            Visit.status == VisitStatus.CHECKED_IN,
            _word_prefix(Visit.name_key, key),
        )
        .order_by(Visit.checked_in_at.desc())
        .limit(SEARCH_LIMIT)
    )
    return [KioskMatch(v.id, _short_name(v.visitor_name), _short_name(v.host.name)) for v in visits]


@dataclass(frozen=True)
class HostOption:
    id: int
    name: str
    department: str


def search_hosts(session: Session, site: Site, query: str) -> list[HostOption]:
    """Active employees of the site whose name has a word starting with `query`: name and
    department only, a handful at a time."""
    text = _like_safe(" ".join(query.casefold().split()))[:60]
    if len(text) < SEARCH_MIN:
        return []
    lowered = func.lower(User.name)
    rows = session.execute(
        select(User.id, User.name, User.department)
        .where(
            User.active.is_(True),
            User.home_site_id == site.id,
            or_(lowered.like(f"{text}%"), lowered.like(f"% {text}%")),
        )
        .order_by(User.name, User.id)
        .limit(SEARCH_LIMIT)
    )
    return [HostOption(*row) for row in rows]


def host_for_walk_in(session: Session, site: Site, host_id: int | None) -> User:
    host = session.get(User, host_id) if host_id else None
    if host is None or host.home_site_id != site.id:
        raise RuleViolation({"host": "Choose the person you are visiting."}, "host_unknown")
    if not host.active:
        raise RuleViolation(
            {"host": "That person is not available. Please see reception."}, "host_inactive"
        )
    return host


# ---------------------------------------------------------------------------------------------
# Agreements


def current_agreement(session: Session, site: Site) -> VisitorAgreement | None:
    return session.scalar(
        select(VisitorAgreement)
        .where(VisitorAgreement.site_id == site.id)
        .order_by(VisitorAgreement.version.desc())
        .limit(1)
    )


def agreement_to_sign(
    session: Session, site: Site, details: VisitorDetails
) -> VisitorAgreement | None:
    """The agreement this visitor must sign now, or None: none exists, or they signed this very
    version on an earlier visit (matched by e-mail, else by name)."""
    agreement = current_agreement(session, site)
    if agreement is None:
        return None
    same_person = (
        Visit.email_key == email_key(details.email)
        if details.email
        else and_(Visit.email_key == "", Visit.name_key == name_key(details.name))
    )
    signed_before = session.scalar(
        select(Visit.id)
        .where(
            Visit.site_id == site.id,
            same_person,
            Visit.agreement_id == agreement.id,
            Visit.signed_at.is_not(None),
            Visit.erased_at.is_(None),
        )
        .limit(1)
    )
    return None if signed_before else agreement


def publish_agreement(
    session: Session, actor: Actor, site: Site, *, title: str, body: str
) -> VisitorAgreement:
    title, body = clean_text(title), clean_text(body)
    errors = {}
    if not title or len(title) > 200:
        errors["title"] = "Give the agreement a title of at most 200 characters."
    if not body or len(body) > 20_000:
        errors["body"] = "Write the agreement's text (at most 20,000 characters)."
    if errors:
        raise RuleViolation(errors, "agreement_form")
    latest = session.scalar(
        select(func.max(VisitorAgreement.version)).where(VisitorAgreement.site_id == site.id)
    )
    agreement = VisitorAgreement(
        site_id=site.id,
        version=(latest or 0) + 1,
        title=title,
        body=body,
        created_by_id=actor.user_id,
    )
    session.add(agreement)
    session.flush()
    audit.record(
        session, actor, "agreement.published", agreement, after={"version": agreement.version}
    )
    return agreement


# ---------------------------------------------------------------------------------------------
# The deny list


def deny_match(session: Session, site_id: int, details: VisitorDetails) -> DenyListEntry | None:
    conditions = [DenyListEntry.name_key == name_key(details.name)]
    if details.email:
        conditions.append(DenyListEntry.email_key == email_key(details.email))
    return session.scalar(
        select(DenyListEntry)
        .where(
            DenyListEntry.active.is_(True),
            or_(DenyListEntry.site_id.is_(None), DenyListEntry.site_id == site_id),
            or_(*conditions),
        )
        .order_by(DenyListEntry.id)
        .limit(1)
    )


def add_deny_entry(
    session: Session,
    actor: Actor,
    *,
    site: Site | None,
    name: str,
    email: str,
    reason: str,
) -> DenyListEntry:
    details = VisitorDetails.from_form(name, email, "")
    reason = clean_text(reason)
    errors: dict[str, str] = {}
    if not details.name and not details.email:
        errors["name"] = "Enter a name, an e-mail address, or both."
    elif len(details.name) > NAME_MAX:
        errors["name"] = f"Use at most {NAME_MAX} characters."
    if details.email:
        errors.update({k: v for k, v in details.problems().items() if k == "email"})
    if len(reason) > 500:
        errors["reason"] = "Use at most 500 characters."
    if errors:
        raise RuleViolation(errors, "deny_list_form")
    entry = DenyListEntry(
        site_id=site.id if site else None,
        name=details.name,
        email=details.email,
        name_key=name_key(details.name),  # "" never matches: visitors always give a name
        email_key=email_key(details.email),  # "" is never compared (see deny_match)
        reason=reason,
        created_by_id=actor.user_id,
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        actor,
        "deny_list.added",
        entry,
        after={"site": site.slug if site else "all"},
    )
    return entry


def remove_deny_entry(session: Session, actor: Actor, entry: DenyListEntry) -> None:
    entry.active = False
    audit.record(session, actor, "deny_list.removed", entry)


def deny_entries(session: Session, site_ids: set[int] | None) -> list[DenyListEntry]:
    query = select(DenyListEntry).where(DenyListEntry.active.is_(True))
    if site_ids is not None:
        query = query.where(
            or_(DenyListEntry.site_id.is_(None), DenyListEntry.site_id.in_(site_ids))
        )
    return list(session.scalars(query.order_by(DenyListEntry.created_at.desc())))


# ---------------------------------------------------------------------------------------------
# Checking in


@dataclass
class Signing:
    """What the visitor gave at the kiosk's last step."""

    signed_name: str = ""
    signature_data_url: str = ""
    # The visitor cannot draw (WCAG 2.5.7: no dragging without an alternative): the typed name
    # alone is the signature, and no drawing is kept even if one was begun.
    typed_only: bool = False
    photo_data_url: str = ""
    submission_key: str = ""
    host_id: int | None = None  # walk-ins choose their host

    def __post_init__(self) -> None:
        self.signed_name = " ".join(clean_text(self.signed_name).split())


@dataclass
class CheckInOutcome:
    visit: Visit
    denied: bool = False  # stopped by the deny list: say only "please see reception"
    repeated: bool = False  # a double tap: the first tap's check-in
    host_unavailable: bool = False  # the invitation's host has left; reception was told
    problems: list[str] = field(default_factory=list)


def check_in_walk_in(
    session: Session,
    device: KioskDevice,
    details: VisitorDetails,
    signing: Signing,
    *,
    now: datetime,
) -> CheckInOutcome:
    site = device.site
    earlier = _by_submission_key(session, signing.submission_key)
    if earlier is not None:
        return _repeat(earlier, site)
    errors = details.problems()
    try:
        host = host_for_walk_in(session, site, signing.host_id)
    except RuleViolation as exc:
        errors.update(exc.errors)
        host = None
    if errors:
        raise RuleViolation(errors, "walk_in_form")
    assert host is not None
    # A walk-in is expected until the site closes (or for an hour, after closing time)
    zone = ZoneInfo(site.time_zone)
    closing = to_utc(datetime.combine(today_at(site, now), site.closes_at), zone)
    day_end = closing if closing > now else now + timedelta(hours=1)
    visit = Visit(
        site_id=site.id,
        host_id=host.id,
        kind=VisitKind.WALK_IN,
        status=VisitStatus.EXPECTED,
        visitor_name=details.name,
        visitor_email=details.email,
        visitor_company=details.company,
        purpose=details.purpose,
        name_key=name_key(details.name),
        email_key=email_key(details.email),
        expected_start=now,
        expected_end=day_end,
        local_date=today_at(site, now),
    )
    visit.site = site
    visit.host = host
    return _admit(session, device, visit, details, signing, now=now, new=True)


def check_in_invited(
    session: Session,
    device: KioskDevice,
    visit_id: int,
    signing: Signing,
    *,
    company: str | None = None,
    now: datetime,
) -> CheckInOutcome:
    site = device.site
    # Lock the invitation first: of two taps (or two kiosks) on one invitation, the second
    # waits here, then finds the first's check-in.
    session.get(Visit, visit_id, with_for_update={"of": Visit}, populate_existing=True)
    earlier = _by_submission_key(session, signing.submission_key)
    if earlier is not None:
        return _repeat(earlier, site)
    visit = expected_invitation(session, site, visit_id, now=now)
    if company is not None:
        company = " ".join(clean_text(company).split())
        if len(company) > COMPANY_MAX:
            raise RuleViolation({"company": f"Use at most {COMPANY_MAX} characters."}, "company")
        visit.visitor_company = company
    details = VisitorDetails(visit.visitor_name, visit.visitor_email, visit.visitor_company)
    return _admit(session, device, visit, details, signing, now=now, new=False)


def _by_submission_key(session: Session, key: str) -> Visit | None:
    if not key:
        return None
    return session.scalar(select(Visit).where(Visit.submission_key == key[:64]))


def _repeat(visit: Visit, site: Site) -> CheckInOutcome:
    if visit.site_id != site.id:  # a key from another kiosk's form: never show its visit
        raise RuleViolation({"": "Please start again."}, "submission_other_site")
    return CheckInOutcome(visit, denied=visit.status == VisitStatus.DENIED, repeated=True)


def _admit(
    session: Session,
    device: KioskDevice,
    visit: Visit,
    details: VisitorDetails,
    signing: Signing,
    *,
    now: datetime,
    new: bool,
) -> CheckInOutcome:
    site = device.site
    actor = Actor(None, f"kiosk:{device.id}")
    entry = deny_match(session, site.id, details)
    if entry is not None:

        def deny() -> None:
            visit.status = VisitStatus.DENIED
            visit.denied_by_entry_id = entry.id
            visit.checked_in_device_id = device.id
            visit.submission_key = signing.submission_key[:64] or None
            visit.code_hash = None
            if new:
                session.add(visit)

        if not _write_once(session, visit, deny):
            return _repeat(_by_submission_key(session, signing.submission_key), site)  # type: ignore[arg-type]
        _alert_coordinators(session, site, visit, now=now)
        audit.record(session, actor, "visit.denied", visit, after={"entry_id": entry.id})
        return CheckInOutcome(visit, denied=True)

    errors: dict[str, str] = {}
    agreement = agreement_to_sign(session, site, details)
    signature = None
    if agreement is not None:
        if not signing.signed_name:
            errors["signed_name"] = "Type your full name to sign."
        elif len(signing.signed_name) > NAME_MAX:
            errors["signed_name"] = f"Use at most {NAME_MAX} characters."
        if not signing.typed_only:
            try:
                signature = _image_from_data_url(
                    signing.signature_data_url, "PNG", SIGNATURE_MAX_BYTES, (1200, 600)
                )
            except image_uploads.ImageRejected:
                errors["signature"] = "Sign with your finger in the box."
    photo = None
    if site.visitor_photo and signing.photo_data_url:
        try:
            photo = _image_from_data_url(
                signing.photo_data_url, "JPEG", PHOTO_MAX_BYTES, (800, 800)
            )
        except image_uploads.ImageRejected:
            photo = None  # a broken photo never blocks the visitor; the flow goes on without it
    if errors:
        raise RuleViolation(errors, "signing_form")

    def admit() -> None:
        visit.status = VisitStatus.CHECKED_IN
        visit.checked_in_at = now
        visit.checked_in_device_id = device.id
        visit.submission_key = signing.submission_key[:64] or None
        visit.code_hash = None  # an invitation code works once
        if agreement is not None:
            visit.agreement_id = agreement.id
            visit.signed_name = signing.signed_name
            visit.signed_at = now
        visit.badge_state = BadgeState.QUEUED if device.printer_uri else BadgeState.NONE
        if new:
            session.add(visit)

    if not _write_once(session, visit, admit):
        return _repeat(_by_submission_key(session, signing.submission_key), site)  # type: ignore[arg-type]
    if signature is not None:
        session.add(VisitImage(visit_id=visit.id, kind="signature", **signature))
    if photo is not None:
        session.add(VisitImage(visit_id=visit.id, kind="photo", **photo))

    host_unavailable = not visit.host.active
    if host_unavailable:
        _alert_coordinators(session, site, visit, now=now, host_left=True)
    else:
        notices.notify(
            session,
            visit.host,
            "visitor_arrived",
            f"{visit.visitor_name}"
            + (f" ({visit.visitor_company})" if visit.visitor_company else "")
            + f" has arrived at {site.name} and is waiting in the lobby.",
            link=f"/visitors/{visit.id}",
        )
        visitor_mail.arrived(session, visit)
    if visit.badge_state == BadgeState.QUEUED:
        session.info.setdefault(BADGES_PENDING, set()).add(visit.id)
    access_control.visit_checked_in(session, visit, now=now)  # queued: the kiosk never waits
    audit.record(
        session,
        actor,
        "visit.checked_in",
        visit,
        after={
            "kind": visit.kind,
            "agreement_version": agreement.version if agreement else None,
            "signed": None if agreement is None else "typed" if signature is None else "drawn",
        },
    )
    return CheckInOutcome(visit, host_unavailable=host_unavailable)


def _write_once(session: Session, visit: Visit, change: Callable[[], None]) -> bool:
    """Make and write the check-in; False when a concurrent double tap with the same key won.
    The change is made inside the savepoint: begin_nested() flushes what is pending first, outside
    it, where the unique key's refusal would leave the whole session unusable (a 500)."""
    try:
        with session.begin_nested():
            change()
            session.flush()
    except IntegrityError:
        if visit in session:
            session.expunge(visit)
        return False
    return True


def _image_from_data_url(
    data_url: str, output: str, max_bytes: int, fit_within: tuple[int, int]
) -> dict[str, object]:
    match = re.fullmatch(r"data:image/(png|jpeg|webp);base64,([A-Za-z0-9+/=\s]+)", data_url or "")
    if not match or len(data_url) > max_bytes * 4 // 3 + 100:
        raise image_uploads.ImageRejected("not an image")
    try:
        raw = base64.b64decode(match[2], validate=False)
    except (binascii.Error, ValueError) as exc:
        raise image_uploads.ImageRejected("not an image") from exc
    checked = image_uploads.check_raster(
        raw,
        formats={"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"},
        max_pixels=4_000_000,
        fit_within=fit_within,
        output=output,
        reject_blank=output == "PNG",  # a signature pad sent without a stroke
        fast=True,  # a check-in must not spend tens of ms compressing a signature
    )
    return {"content_type": checked.content_type, "data": checked.data}


def _coordinators(session: Session, site_id: int) -> list[User]:
    people = list(
        session.scalars(
            select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(
                RoleGrant.role == Role.COORDINATOR,
                RoleGrant.site_id == site_id,
                User.active.is_(True),
            )
            .distinct()
        )
    )
    if people:
        return people
    return list(  # nobody coordinates this site: the admins hear of it
        session.scalars(
            select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(RoleGrant.role == Role.ADMIN, User.active.is_(True))
            .distinct()
        )
    )


def _alert_coordinators(
    session: Session, site: Site, visit: Visit, *, now: datetime, host_left: bool = False
) -> None:
    for coordinator in _coordinators(session, site.id):
        if host_left:
            text = (
                f"{visit.visitor_name} checked in at {site.name} for {visit.host.name}, "
                "who is no longer with the company. Please meet them in the lobby."
            )
            kind = "host_unavailable"
        else:
            text = (
                f"Deny-list match at the {site.name} kiosk: {visit.visitor_name}. "
                "The visitor was asked to see reception; nothing was printed."
            )
            kind = "deny_list_stop"
        notices.notify(session, coordinator, kind, text, link=f"/visitors/{visit.id}")
        visitor_mail.coordinator_alert(session, coordinator, visit, text)


# ---------------------------------------------------------------------------------------------
# Checking out


def checkout_code(visit: Visit, key: bytes) -> str:
    """The badge's QR value: the visit id with a MAC, so nothing needs storing and a badge
    cannot be forged for another visit."""
    mac = hmac.new(key, f"checkout:{visit.id}".encode(), hashlib.sha256).hexdigest()[:20]
    return f"{CHECKOUT_PREFIX}{visit.id}.{mac}"


def visit_for_checkout_code(session: Session, site: Site, scanned: str, key: bytes) -> Visit:
    match = re.fullmatch(
        re.escape(CHECKOUT_PREFIX) + r"(\d{1,12})\.([0-9a-f]{20})", scanned.strip()
    )
    visit = session.get(Visit, int(match[1])) if match else None
    if (
        visit is None
        or match is None
        or not hmac.compare_digest(checkout_code(visit, key), scanned.strip())
    ):
        raise RuleViolation({"code": "We could not read that badge."}, "badge_unknown")
    if visit.site_id != site.id:
        raise RuleViolation({"code": "This badge is for another office."}, "badge_site")
    if visit.status != VisitStatus.CHECKED_IN:
        raise RuleViolation({"code": "You are already checked out."}, "already_checked_out")
    return visit


def check_out(
    session: Session, actor: Actor, visit: Visit, method: CheckoutMethod, *, now: datetime
) -> bool:
    """Check a visitor out; False when they were not checked in (a repeat does nothing)."""
    done = session.execute(
        update(Visit)
        .where(Visit.id == visit.id, Visit.status == VisitStatus.CHECKED_IN)
        .values(
            status=VisitStatus.CHECKED_OUT,
            checked_out_at=now,
            checkout_method=method,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(visit)
    if done:
        audit.record(session, actor, "visit.checked_out", visit, after={"method": method})
        access_control.visit_ended(session, visit, now=now)
    return bool(done)


def check_out_at_end_of_day(session: Session, *, now: datetime) -> int:
    """Everyone still checked in after their site closed (or on an earlier day) is checked out,
    recorded as such. Someone who checked in after closing (an evening event) stays in until
    their day ends. Idempotent; run every few minutes."""
    count = 0
    for site in session.scalars(select(Site)):
        zone = ZoneInfo(site.time_zone)
        local_now = now.astimezone(zone)
        today = local_now.date()
        condition = Visit.local_date < today
        if local_now.time() >= site.closes_at:
            closed_at = to_utc(datetime.combine(today, site.closes_at), zone)
            condition = or_(
                condition,
                and_(
                    Visit.local_date == today,
                    or_(Visit.checked_in_at.is_(None), Visit.checked_in_at < closed_at),
                ),
            )
        rows = session.scalars(
            select(Visit.id).where(
                Visit.site_id == site.id, Visit.status == VisitStatus.CHECKED_IN, condition
            )
        ).all()
        if not rows:
            continue
        session.execute(
            update(Visit)
            .where(Visit.id.in_(rows), Visit.status == VisitStatus.CHECKED_IN)
            .values(
                status=VisitStatus.CHECKED_OUT,
                checked_out_at=now,
                checkout_method=CheckoutMethod.END_OF_DAY,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        audit.record(
            session,
            Actor.system("end-of-day check-out"),
            "visits.checked_out_end_of_day",
            object_type="sites",
            object_id=site.id,
            after={"count": len(rows)},
        )
        count += len(rows)
    return count


# ---------------------------------------------------------------------------------------------
# Roll call


@dataclass(frozen=True)
class OnSite:
    subject: str  # "visit:12" | "user:5"
    name: str
    detail: str  # company and host, or department and place
    since: datetime | None
    accounted: bool


@dataclass(frozen=True)
class RollCall:
    site: Site
    day: date
    visitors: list[OnSite]
    employees: list[OnSite]

    @property
    def missing(self) -> int:
        return sum(1 for p in self.visitors + self.employees if not p.accounted)


def roll_call(session: Session, site: Site, *, now: datetime) -> RollCall:
    """Who is on site now: visitors checked in, employees with a checked-in booking today."""
    day = today_at(site, now)
    marks = set(
        session.scalars(
            select(RollCallMark.subject).where(
                RollCallMark.site_id == site.id, RollCallMark.local_date == day
            )
        )
    )
    visitors = [
        OnSite(
            f"visit:{v.id}",
            v.visitor_name,
            ", ".join(p for p in (v.visitor_company, f"visiting {v.host.name}") if p),
            v.checked_in_at,
            f"visit:{v.id}" in marks,
        )
        for v in session.scalars(
            select(Visit)
            .where(Visit.site_id == site.id, Visit.status == VisitStatus.CHECKED_IN)
            .order_by(Visit.visitor_name, Visit.id)
        )
    ]
    start, end = local_day_bounds(day, ZoneInfo(site.time_zone))
    rows = session.execute(
        select(User.id, User.name, User.department, Resource.name, Booking.checked_in_at)
        .join(Booking, Booking.user_id == User.id)
        .join(Resource, Resource.id == Booking.resource_id)
        .where(
            Resource.site_id == site.id,
            Booking.status == BookingStatus.CHECKED_IN,
            Booking.start_at < end,
            Booking.end_at > start,
            Booking.start_at >= start - timedelta(hours=27),
        )
        .order_by(User.name, User.id, Booking.checked_in_at)
    )
    employees: dict[int, OnSite] = {}
    for user_id, name, department, place, since in rows:
        if user_id not in employees:
            employees[user_id] = OnSite(
                f"user:{user_id}",
                name,
                " · ".join(p for p in (department, place) if p),
                since,
                f"user:{user_id}" in marks,
            )
    # Where the doors report badge reads: whoever's last read today was "in" is inside, booking
    # or not (an evacuation counts people, not bookings).
    last_read: dict[int, tuple[str, str, str, str, datetime]] = {}
    for user_id, name, department, door, direction, at in session.execute(
        select(
            User.id,
            User.name,
            User.department,
            DoorEvent.door,
            DoorEvent.direction,
            DoorEvent.occurred_at,
        )
        .join(User, User.id == DoorEvent.user_id)
        .where(
            DoorEvent.site_id == site.id,
            DoorEvent.occurred_at >= start,
            DoorEvent.occurred_at < min(end, now),
        )
        .order_by(DoorEvent.occurred_at, DoorEvent.id)
    ):
        last_read[user_id] = (name, department, door, direction, at)
    for user_id, (name, department, door, direction, at) in sorted(
        last_read.items(), key=lambda item: (item[1][0], item[0])
    ):
        if direction == "in" and user_id not in employees:
            employees[user_id] = OnSite(
                f"user:{user_id}",
                name,
                " · ".join(
                    p for p in (department, f"badged in at {door}" if door else "badged in") if p
                ),
                at,
                f"user:{user_id}" in marks,
            )
    ordered = sorted(employees.values(), key=lambda person: (person.name, person.subject))
    return RollCall(site, day, visitors, ordered)


def mark_accounted(
    session: Session, actor: Actor, site: Site, subject: str, accounted: bool, *, now: datetime
) -> None:
    if not re.fullmatch(r"(visit|user):\d{1,12}", subject):
        raise RuleViolation({"": "Unknown person."}, "roll_call_subject")
    day = today_at(site, now)
    session.execute(
        delete(RollCallMark).where(
            RollCallMark.site_id == site.id,
            RollCallMark.local_date == day,
            RollCallMark.subject == subject,
        )
    )
    if accounted:
        session.add(
            RollCallMark(
                site_id=site.id,
                local_date=day,
                subject=subject,
                marked_by_id=actor.user_id,
                marked_at=now,
            )
        )
    session.flush()


# ---------------------------------------------------------------------------------------------
# Retention


def erase_expired(session: Session, *, now: datetime) -> int:
    """Blank visitors' personal data once a visit is older than its site's retention period,
    keeping the row for anonymous counts; one audit entry per site and run."""
    erased = 0
    for site in session.scalars(select(Site)):
        cutoff = today_at(site, now) - timedelta(days=max(site.visitor_retention_days, 1))
        ids = session.scalars(
            select(Visit.id).where(
                Visit.site_id == site.id,
                Visit.local_date < cutoff,
                Visit.erased_at.is_(None),
                Visit.status != VisitStatus.CHECKED_IN,
            )
        ).all()
        # Door reads by visitors or by people Foyer does not know carry who they were (an e-mail,
        # a name in the outcome): blanked with the same retention; the time and door stay for counts.
        session.execute(
            update(DoorEvent)
            .where(
                DoorEvent.site_id == site.id,
                DoorEvent.occurred_at < local_day_bounds(cutoff, ZoneInfo(site.time_zone))[0],
                or_(DoorEvent.visit_id.is_not(None), DoorEvent.user_id.is_(None)),
                DoorEvent.person != "",
            )
            .values(person="", outcome="")
            .execution_options(synchronize_session=False)
        )
        if not ids:
            continue
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            session.execute(delete(VisitImage).where(VisitImage.visit_id.in_(chunk)))
            session.execute(
                update(Visit)
                .where(Visit.id.in_(chunk))
                .values(
                    visitor_name="",
                    visitor_email="",
                    visitor_company="",
                    purpose="",
                    host_note="",
                    name_key="",
                    email_key="",
                    signed_name="",
                    code_hash=None,
                    submission_key=None,
                    erased_at=now,
                )
                .execution_options(synchronize_session=False)
            )
        audit.record(
            session,
            Actor.system("visitor retention"),
            "visitors.erased",
            object_type="sites",
            object_id=site.id,
            after={"count": len(ids), "older_than": cutoff.isoformat()},
        )
        erased += len(ids)
    return erased


# ---------------------------------------------------------------------------------------------
# Site settings and the log


def update_settings(
    session: Session,
    actor: Actor,
    site: Site,
    *,
    directions: str,
    photo: bool,
    retention_days: str,
) -> None:
    directions = clean_text(directions)
    errors = {}
    if len(directions) > 2000:
        errors["directions"] = "Use at most 2,000 characters."
    try:
        days = int(retention_days)
        if not 1 <= days <= 3650:
            raise ValueError
    except (TypeError, ValueError):
        errors["retention_days"] = "Enter a number of days from 1 to 3650."
        days = site.visitor_retention_days
    if errors:
        raise RuleViolation(errors, "visitor_settings")
    before = {
        "photo": site.visitor_photo,
        "retention_days": site.visitor_retention_days,
    }
    site.visitor_directions = directions
    site.visitor_photo = photo
    site.visitor_retention_days = days
    audit.record(
        session,
        actor,
        "site.visitor_settings_changed",
        site,
        before=before,
        after={"photo": photo, "retention_days": days},
    )


@dataclass(frozen=True)
class LogFilter:
    day_from: date | None = None
    day_to: date | None = None
    host: str = ""
    status: str = ""
    text: str = ""


def visitor_log(
    session: Session, site: Site, flt: LogFilter, *, limit: int = 100, offset: int = 0
) -> list[Visit]:
    query = select(Visit).where(Visit.site_id == site.id)
    if flt.day_from:
        query = query.where(Visit.local_date >= flt.day_from)
    if flt.day_to:
        query = query.where(Visit.local_date <= flt.day_to)
    if flt.status in set(VisitStatus):
        query = query.where(Visit.status == flt.status)
    if flt.text:
        key = _like_safe(name_key(flt.text))
        query = query.where(
            or_(
                Visit.name_key.like(f"%{key}%"),
                Visit.email_key.like(f"%{key}%"),
                func.lower(Visit.visitor_company).like(f"%{key}%"),
            )
        )
    if flt.host:
        host_text = _like_safe(flt.host.casefold().strip())
        query = query.join(User, User.id == Visit.host_id).where(
            func.lower(User.name).like(f"%{host_text}%")
        )
    query = query.order_by(Visit.local_date.desc(), Visit.expected_start.desc(), Visit.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))


def new_submission_key() -> str:
    return secrets.token_urlsafe(24)
