"""Facility issues: someone reports a problem at a place (a floor, a room or a desk) with up to three
photos, others at the same place say "me too" instead of reporting it again, and everyone involved
follows it. The shared ticket machinery (status, thread, SLA, e-mails) lives in tickets.py.

Photos are checked by their content, never by name or browser type, then re-encoded as JPEG (which
drops GPS and every other piece of metadata, and any script hidden in it) and stored under a random
name outside the web root. Every photo is checked before anything is written, so a refused report
leaves neither a ticket nor a file behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from portal.errors import NotFound, RuleViolation
from portal.models import (
    FINISHED_STATUSES,
    Booking,
    Building,
    Desk,
    Floor,
    IssueCategory,
    IssueFollower,
    IssuePhoto,
    Priority,
    Resource,
    ResourceKind,
    Room,
    Site,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    User,
)
from portal.models.bookings import HOLDING_STATUSES, LONGEST_BOOKING
from portal.services import audit, image_uploads, tickets
from portal.services.audit import Actor

CATEGORY_LABELS: dict[str, str] = {
    IssueCategory.CLEANING: "Cleaning",
    IssueCategory.TEMPERATURE: "Temperature",
    IssueCategory.PLUMBING: "Plumbing",
    IssueCategory.ELECTRICAL: "Electrical",
    IssueCategory.FURNITURE: "Furniture",
    IssueCategory.IT_AV: "IT / AV",
    IssueCategory.SAFETY: "Safety",
    IssueCategory.OTHER: "Other",
}
# What each category covers, in the reporter's words (shown under the label on the form).
CATEGORY_HINTS: dict[str, str] = {
    IssueCategory.CLEANING: "Spills, bins, dirty kitchen",
    IssueCategory.TEMPERATURE: "Too hot, too cold, draught",
    IssueCategory.PLUMBING: "Leaks, taps, toilets",
    IssueCategory.ELECTRICAL: "Lights, sockets, power",
    IssueCategory.FURNITURE: "Chairs, desks, doors",
    IssueCategory.IT_AV: "Screens, Wi-Fi, video calls",
    IssueCategory.SAFETY: "Hazards, blocked exits",
    IssueCategory.OTHER: "Anything else",
}
URGENCY_HINTS: dict[str, str] = {
    Priority.LOW: "When someone has time",
    Priority.NORMAL: "It gets in the way",
    Priority.HIGH: "People cannot work",
    Priority.URGENT: "Danger or damage now",
}

DESCRIPTION_MAX = 2000
PLACE_NOTE_MAX = 200
MAX_PHOTOS = 3
MEGABYTE = image_uploads.MEGABYTE
MAX_PHOTO_BYTES = 10 * MEGABYTE
# Pillow formats accepted (a GIF keeps only its first frame); everything is stored as JPEG.
PHOTO_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
PHOTO_FIT = (2048, 2048)
PHOTOS_FOLDER = "issues"
DUPLICATES_SHOWN = 5
# A submission key is namespaced, so it can never collide with another form's key in the column.
KEY_PREFIX = "issue:"


# ---------------------------------------------------------------------------------------------
# Places


@dataclass(frozen=True)
class Place:
    """Where a problem is: a site, usually a floor, often a room or desk, and a note."""

    site: Site
    floor: Floor | None = None
    resource: Resource | None = None
    note: str = ""

    @property
    def label(self) -> str:
        """ "Room Aurora · Floor 3", "Floor 3", "Berlin" (the site only when nothing finer)."""
        parts = []
        if self.resource is not None:
            parts.append(resource_label(self.resource))
        if self.floor is not None:
            parts.append(self.floor.name)
        return " · ".join(parts) or self.site.name


def resource_label(resource: Resource) -> str:
    kind = {ResourceKind.ROOM: "Room", ResourceKind.DESK: "Desk"}.get(resource.kind, "")
    return f"{kind} {resource.name}".strip()


def place_of(ticket: Ticket) -> Place:
    return Place(ticket.site, ticket.floor, ticket.resource, ticket.place_note)


def _as_id(value: object) -> int | None:
    if value in (None, "", 0, "0"):
        return None
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return -1  # not a number: cannot exist
    return number


def resolve_place(
    session: Session,
    *,
    site_id: object,
    floor_id: object = None,
    resource_id: object = None,
    note: str = "",
) -> Place:
    """Check that the place exists and hangs together (the room is on that floor, the floor in
    that site); raises RuleViolation with a message for the field that is wrong."""
    note = (note or "").strip()
    if len(note) > PLACE_NOTE_MAX:
        raise RuleViolation(
            {"place_note": f"Keep it under {PLACE_NOTE_MAX} characters."}, "too_long"
        )
    sid = _as_id(site_id)
    site = session.get(Site, sid) if sid and sid > 0 else None
    if site is None:
        raise RuleViolation({"site": "Choose the office where the problem is."}, "no_site")
    fid = _as_id(floor_id)
    floor = session.get(Floor, fid) if fid and fid > 0 else None
    if fid is not None and (floor is None or floor.building.site_id != site.id):
        raise RuleViolation(
            {"floor": f"That floor is not in {site.name}. Choose one from the list."}, "bad_floor"
        )
    rid = _as_id(resource_id)
    resource = None
    if rid is not None:
        resource = session.get(Resource, rid) if rid > 0 else None
        if resource is None or resource.kind not in (ResourceKind.ROOM, ResourceKind.DESK):
            raise RuleViolation(
                {"resource": "There is no such room or desk. Choose one from the list."},
                "bad_resource",
            )
        if resource.site_id != site.id:
            raise RuleViolation(
                {"resource": f"{resource_label(resource)} is not in {site.name}."}, "bad_resource"
            )
        if floor is not None and resource.floor_id != floor.id:
            raise RuleViolation(
                {"resource": f"{resource_label(resource)} is not on {floor.name}."},
                "bad_resource",
            )
        floor = floor or resource.floor
    if floor is None and resource is None and not note:
        raise RuleViolation(
            {"floor": "Choose the floor, or say where exactly in “Where exactly”."}, "no_place"
        )
    return Place(site, floor, resource, note)


def partial_place(
    session: Session, *, site_id: object, floor_id: object = None, resource_id: object = None
) -> Place | None:
    """What the form shows while the reporter is still choosing: the parts that exist and fit
    together (a floor of another site, or a desk of another floor, is dropped)."""
    sid = _as_id(site_id)
    site = session.get(Site, sid) if sid and sid > 0 else None
    if site is None:
        return None
    fid = _as_id(floor_id)
    floor = session.get(Floor, fid) if fid and fid > 0 else None
    if floor is not None and floor.building.site_id != site.id:
        floor = None
    rid = _as_id(resource_id)
    resource = session.get(Resource, rid) if rid and rid > 0 else None
    if resource is not None and (
        resource.kind not in (ResourceKind.ROOM, ResourceKind.DESK)
        or floor is None
        or resource.floor_id != floor.id
    ):
        resource = None
    return Place(site, floor, resource)


def resource_by_id(session: Session, resource_id: object) -> Resource | None:
    rid = _as_id(resource_id)
    resource = session.get(Resource, rid) if rid and rid > 0 else None
    if resource is None or resource.kind not in (ResourceKind.ROOM, ResourceKind.DESK):
        return None
    return resource


def resource_by_qr(session: Session, code: str) -> Resource | None:
    resource = session.scalar(select(Resource).where(Resource.qr_code == (code or "")[:16]))
    if resource is None or resource.kind not in (ResourceKind.ROOM, ResourceKind.DESK):
        return None
    return resource


def sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).order_by(Site.name)))


def floors_in(session: Session, site: Site) -> list[Floor]:
    return list(
        session.scalars(
            select(Floor)
            .join(Building)
            .where(Building.site_id == site.id)
            .order_by(Building.name, Floor.level)
        )
    )


@dataclass
class FloorSpaces:
    rooms: list[Room] = field(default_factory=list)
    desks: list[Desk] = field(default_factory=list)


def spaces_on(session: Session, floor: Floor) -> FloorSpaces:
    """The rooms and desks of a floor that people use (disabled ones are not offered)."""
    rooms = session.scalars(
        select(Room).where(Room.floor_id == floor.id, Room.active.is_(True)).order_by(Room.name)
    )
    desks = session.scalars(
        select(Desk).where(Desk.floor_id == floor.id, Desk.active.is_(True)).order_by(Desk.name)
    )
    return FloorSpaces(list(rooms), list(desks))


def todays_desk(session: Session, user: User, now: datetime) -> Desk | None:
    """The desk the person has booked (or is checked in at) today, in its site's day."""
    rows = session.scalars(
        select(Booking)
        .join(Desk, Desk.id == Booking.resource_id)
        .where(
            Booking.user_id == user.id,
            Booking.status.in_(HOLDING_STATUSES),
            Booking.start_at > now - LONGEST_BOOKING,
            Booking.start_at < now + LONGEST_BOOKING,
        )
        .order_by(Booking.start_at)
    )
    for booking in rows:
        zone = ZoneInfo(booking.resource.site.time_zone)
        today = now.astimezone(zone).date()
        if _local_day(booking.start_at, zone) <= today <= _local_day(booking.end_at, zone):
            resource = booking.resource
            return resource if isinstance(resource, Desk) else None
    return None


def _local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def default_place(session: Session, user: User, now: datetime) -> Place | None:
    """Today's booked desk, else the person's home site (with its floor if it has only one)."""
    desk = todays_desk(session, user, now)
    if desk is not None:
        return Place(desk.site, desk.floor, desk)
    site = user.home_site or next(iter(sites(session)), None)
    if site is None:
        return None
    floors = floors_in(session, site)
    return Place(site, floors[0] if len(floors) == 1 else None)


# ---------------------------------------------------------------------------------------------
# Photos


@dataclass(frozen=True)
class Upload:
    """A file as it arrived: the browser's name (only for messages) and at most the limit + 1
    bytes (enough to know it is too large)."""

    name: str
    data: bytes


def check_photos(uploads: list[Upload]) -> list[image_uploads.CheckedImage]:
    """Every photo checked and re-encoded, or a RuleViolation naming the first bad one."""
    if len(uploads) > MAX_PHOTOS:
        raise RuleViolation(
            {"photos": f"Add at most {MAX_PHOTOS} photos; you chose {len(uploads)}."},
            "too_many_photos",
        )
    checked = []
    for number, upload in enumerate(uploads, start=1):
        which = f"Photo {number}" + (f" ({upload.name[:60]})" if upload.name else "")
        if len(upload.data) > MAX_PHOTO_BYTES:
            raise RuleViolation(
                {
                    "photos": f"{which} is larger than {MAX_PHOTO_BYTES // MEGABYTE} MB. "
                    "Choose a smaller photo (or take it again at a lower resolution)."
                },
                "photo_too_large",
            )
        if not upload.data:
            raise RuleViolation({"photos": f"{which} is empty."}, "photo_empty")
        try:
            checked.append(
                image_uploads.check_raster(
                    upload.data, formats=PHOTO_FORMATS, fit_within=PHOTO_FIT, output="JPEG"
                )
            )
        except image_uploads.ImageRejected as rejected:
            message = str(rejected)
            if message.startswith("This file is not a"):
                message = "is not a photo we can open (JPEG, PNG, WebP or GIF)."
                raise RuleViolation({"photos": f"{which} {message}"}, "not_an_image") from None
            raise RuleViolation({"photos": f"{which}: {message}"}, "bad_image") from None
    return checked


def store_photos(
    session: Session,
    ticket: Ticket,
    photos: list[image_uploads.CheckedImage],
    uploads: Path,
    *,
    by: User,
    now: datetime,
) -> list[str]:
    """Write checked photos and their rows; returns the stored names (to remove them if the
    transaction fails after all)."""
    stored: list[str] = []
    try:
        for photo in photos:
            name = image_uploads.store(uploads / PHOTOS_FOLDER, photo)
            stored.append(name)
            session.add(
                IssuePhoto(
                    ticket_id=ticket.id,
                    file_name=name,
                    content_type=photo.content_type,
                    width=photo.width,
                    height=photo.height,
                    uploaded_by_id=by.id,
                    created_at=now,
                )
            )
        session.flush()
    except BaseException:
        remove_files(uploads, stored)
        raise
    return stored


def remove_files(uploads: Path, names: list[str]) -> None:
    for name in names:
        image_uploads.remove(uploads / PHOTOS_FOLDER, name)


def photos_of(session: Session, ticket: Ticket) -> list[IssuePhoto]:
    return list(
        session.scalars(
            select(IssuePhoto).where(IssuePhoto.ticket_id == ticket.id).order_by(IssuePhoto.id)
        )
    )


def photo_path(session: Session, ticket: Ticket, photo_id: object, uploads: Path) -> Path:
    """The stored file of one of this ticket's photos; NotFound for any other id."""
    pid = _as_id(photo_id)
    photo = session.get(IssuePhoto, pid) if pid and pid > 0 else None
    if photo is None or photo.ticket_id != ticket.id:
        raise NotFound("There is no such photo.")
    path = image_uploads.stored_path(uploads / PHOTOS_FOLDER, photo.file_name)
    if path is None:
        raise NotFound("There is no such photo.")
    return path


# ---------------------------------------------------------------------------------------------
# Reporting


def by_submission_key(session: Session, reporter: User, key: str) -> Ticket | None:
    if not key:
        return None
    return session.scalar(
        select(Ticket).where(
            Ticket.submission_key == submission_key(reporter, key),
            Ticket.requester_id == reporter.id,
        )
    )


def submission_key(reporter: User, key: str) -> str:
    return f"{KEY_PREFIX}{reporter.id}:{key[:40]}"


# What the short heading calls each kind of problem ("Plumbing problem in Kitchen").
CATEGORY_NOUNS: dict[str, str] = {
    IssueCategory.CLEANING: "Cleaning needed",
    IssueCategory.TEMPERATURE: "Temperature problem",
    IssueCategory.PLUMBING: "Plumbing problem",
    IssueCategory.ELECTRICAL: "Electrical problem",
    IssueCategory.FURNITURE: "Furniture problem",
    IssueCategory.IT_AV: "IT / AV problem",
    IssueCategory.SAFETY: "Safety hazard",
    IssueCategory.OTHER: "Problem",
}


def heading_for(category: str | None, place: Place) -> str:
    """ "Plumbing problem in Aurora", "Electrical problem at desk 1.07", "Temperature problem on
    Floor 3": what and where, short enough for one line on a phone. The floor, the office and the
    reporter's own words are shown beside it, not repeated in it."""
    what = CATEGORY_NOUNS.get(category or "", "Problem")
    if place.resource is not None:
        if place.resource.kind == ResourceKind.DESK:
            return f"{what} at desk {place.resource.name}"
        return f"{what} in {place.resource.name}"
    if place.floor is not None:
        return f"{what} on {place.floor.name}"
    return f"{what} in {place.site.name}"


def title_for(category: str, place: Place) -> str:
    """A new issue's ticket title (the inbox's and the e-mails' one line): the short heading.
    The reporter's description is the ticket's description."""
    return heading_for(category, place)


@dataclass(frozen=True)
class Aim:
    """When an open issue should be fixed by, and whether that moment has passed."""

    due_at: datetime
    late: bool


def aim_of(ticket: Ticket, now: datetime) -> Aim | None:
    """The fix-by promise shown to the reporter: none once it is finished or while the team
    waits for the reporter's answer (the clock is paused then)."""
    if not is_open(ticket) or ticket.status == TicketStatus.WAITING:
        return None
    if ticket.resolution_due_at is None:
        return None
    return Aim(ticket.resolution_due_at, ticket.resolution_due_at < now)


def check_report(category: str, priority: str, description: str) -> str:
    """Shape and choices of a report; returns the cleaned description."""
    errors = {}
    if category not in CATEGORY_LABELS:
        errors["category"] = "Choose what kind of problem it is."
    if priority not in tickets.PRIORITY_LABELS:
        errors["priority"] = "Choose how urgent it is."
    text = (description or "").strip()
    if not text:
        errors["description"] = "Describe the problem in a few words, so someone can fix it."
    elif len(text) > DESCRIPTION_MAX:
        errors["description"] = (
            f"Keep it under {DESCRIPTION_MAX:,} characters (you wrote {len(text):,})."
        )
    if errors:
        raise RuleViolation(errors, "invalid_report")
    return text


def report_issue(
    session: Session,
    actor: Actor,
    *,
    reporter: User,
    category: str,
    place: Place,
    description: str,
    priority: str,
    photos: list[image_uploads.CheckedImage],
    uploads: Path,
    key: str,
    now: datetime,
) -> tuple[Ticket, list[str]]:
    """Open the issue with its photos (already checked). Returns the ticket and the stored file
    names; the caller commits, and removes those files if the commit fails."""
    text = check_report(category, priority, description)
    if len(photos) > MAX_PHOTOS:
        raise RuleViolation({"photos": f"Add at most {MAX_PHOTOS} photos."}, "too_many_photos")
    ticket = tickets.open_ticket(
        session,
        actor,
        kind=TicketKind.ISSUE,
        site=place.site,
        requester=reporter,
        title=title_for(category, place),
        category=category,
        priority=priority,
        description=text,
        now=now,
        floor_id=place.floor.id if place.floor else None,
        resource_id=place.resource.id if place.resource else None,
        place_note=place.note,
        submission_key=submission_key(reporter, key) if key else None,
    )
    stored = store_photos(session, ticket, photos, uploads, by=reporter, now=now)
    return ticket, stored


# ---------------------------------------------------------------------------------------------
# Duplicates and "me too"


def open_at(session: Session, place: Place, limit: int = DUPLICATES_SHOWN) -> list[Ticket]:
    """Open issues at the same room or desk, or (when no room or desk is chosen) on the same
    floor: what the reporter sees before submitting a duplicate."""
    query = select(Ticket).where(
        Ticket.kind == TicketKind.ISSUE,
        Ticket.closed == false(),
        Ticket.status.not_in(FINISHED_STATUSES),
    )
    if place.resource is not None:
        query = query.where(Ticket.resource_id == place.resource.id)
    elif place.floor is not None:
        query = query.where(Ticket.floor_id == place.floor.id)
    else:
        return []
    return list(session.scalars(query.order_by(Ticket.created_at.desc()).limit(limit)))


def followed_among(session: Session, user: User, among: list[Ticket]) -> set[int]:
    """Which of these issues `user` already said "me too" on."""
    if not among:
        return set()
    return set(
        session.scalars(
            select(IssueFollower.ticket_id).where(
                IssueFollower.user_id == user.id,
                IssueFollower.ticket_id.in_([t.id for t in among]),
            )
        )
    )


def may_join(ticket: Ticket) -> bool:
    """Anyone may say "me too" on an open facility issue (the form shows them to everyone who
    picks that place); not on requests, return tasks or finished issues."""
    return (
        ticket.kind == TicketKind.ISSUE
        and not ticket.closed
        and (ticket.status not in FINISHED_STATUSES)
    )


def joinable_issue(session: Session, ticket_id: object) -> Ticket:
    tid = _as_id(ticket_id)
    ticket = session.get(Ticket, tid) if tid and tid > 0 else None
    if ticket is None or not may_join(ticket):
        raise NotFound("There is no such open issue.")
    return ticket


def me_too(session: Session, actor: Actor, ticket: Ticket, user: User, *, now: datetime) -> bool:
    """`user` has the same problem: they follow the issue (its page and its e-mails) and the
    count goes up. Saying it twice, or about one's own report, changes nothing. Returns whether
    something changed."""
    if not may_join(ticket):
        raise NotFound("There is no such open issue.")
    if ticket.requester_id == user.id or tickets.is_follower(session, user, ticket):
        return False
    session.add(IssueFollower(ticket_id=ticket.id, user_id=user.id, created_at=now))
    ticket.me_too_count = (ticket.me_too_count or 0) + 1
    ticket.updated_at = now
    tickets.record(session, ticket, user, f"{user.name} has this problem too", now=now)
    audit.record(session, actor, "issue.me_too", ticket, after={"user_id": user.id})
    session.flush()
    return True


# ---------------------------------------------------------------------------------------------
# Reading


def mine(session: Session, user: User) -> list[Ticket]:
    """Issues the person reported or said "me too" on, newest first."""
    followed = select(IssueFollower.ticket_id).where(IssueFollower.user_id == user.id)
    return list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.kind == TicketKind.ISSUE,
                or_(Ticket.requester_id == user.id, Ticket.id.in_(followed)),
            )
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(200)
        )
    )


def is_open(ticket: Ticket) -> bool:
    return not ticket.closed and ticket.status not in FINISHED_STATUSES


@dataclass(frozen=True)
class Step:
    """One stage of an issue's progress, as the reporter sees it."""

    title: str
    when: datetime | None
    detail: str = ""
    tone: str = "done"  # done | current | todo | problem
    late: bool = False  # a step still to come whose aimed-for moment has passed


def progress(session: Session, ticket: Ticket, now: datetime | None = None) -> list[Step]:
    """Reported, picked up, fixed: the stages with when they happened, from the public status
    changes in the thread. A fix-by moment already past (as of `now`) is said to be late."""
    reached: dict[str, datetime] = {}
    for event in session.scalars(
        select(TicketEvent)
        .where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.kind == "status",
            TicketEvent.internal.is_(False),
        )
        .order_by(TicketEvent.id)
    ):
        for status, label in tickets.STATUS_LABELS.items():
            if event.body == label or event.body.startswith(label + ":"):
                reached[status] = event.created_at
    status = ticket.status
    steps = [Step("Reported", ticket.created_at, f"by {ticket.requester.name}")]
    if status == TicketStatus.CANCELLED:
        steps.append(Step("Cancelled", ticket.closed_at, "Withdrawn; nobody will work on it."))
        return steps
    picked = ticket.first_responded_at or reached.get(TicketStatus.IN_PROGRESS)
    if status == TicketStatus.SUBMITTED:
        steps.append(Step("Being looked at", None, "Waiting for a coordinator", "current"))
    else:
        steps.append(Step("Picked up", picked, _who(ticket), "done"))
    if status == TicketStatus.WAITING:
        steps.append(
            Step(
                "Waiting for a reply",
                reached.get(TicketStatus.WAITING),
                "The coordinator asked something: answer in the conversation below.",
                "problem",
            )
        )
    elif status == TicketStatus.IN_PROGRESS:
        steps.append(Step("Being fixed", reached.get(TicketStatus.IN_PROGRESS), "", "current"))
    if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        fixed = ticket.resolved_at or reached.get(TicketStatus.RESOLVED)
        steps.append(Step("Fixed", fixed, "", "done"))
        if status == TicketStatus.CLOSED:
            steps.append(Step("Closed", ticket.closed_at, "", "done"))
    else:
        aim = ticket.resolution_due_at
        late = aim is not None and now is not None and aim < now
        steps.append(Step("Fixed", aim, "", "todo", late=late))
    return steps


def _who(ticket: Ticket) -> str:
    if ticket.vendor is not None:
        return f"handed to {ticket.vendor.name}"
    if ticket.assignee is not None:
        return f"by {ticket.assignee.name}"
    return ""
