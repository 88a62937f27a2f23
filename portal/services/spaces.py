"""Managing a site's spaces: floors, rooms and desks, their place on the floor plan, the plan image
itself and room photos. Coordinators call these through the admin views; every change is audited.

Resources are never deleted here: bookings point at them, so a room or desk is disabled (with a
reason) and keeps its history."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import (
    HOLDING_STATUSES,
    Booking,
    Building,
    Desk,
    DeskAssignment,
    Floor,
    Resource,
    Room,
    Site,
    User,
)
from portal.services import audit, image_uploads
from portal.services.audit import Actor

# What rooms and desks can offer. Keys are stored; labels are shown. Room search filters on the keys.
ROOM_EQUIPMENT = {
    "display": "Display",
    "video conferencing": "Video conferencing",
    "whiteboard": "Whiteboard",
    "phone": "Conference phone",
    "step-free access": "Step-free access",
}
DESK_ATTRIBUTES = {
    "standing": "Standing desk",
    "dual monitor": "Dual monitor",
    "docking station": "Docking station",
    "window": "By a window",
    "step-free access": "Step-free access",
}
DESK_KINDS = {DeskAssignment.HOT.value: "Hot desk", DeskAssignment.ASSIGNED.value: "Assigned"}

MAX_CAPACITY = 500
MAX_BUFFER_MINUTES = 120
MAX_PLAN_BYTES = 10 * 1024 * 1024
MAX_PHOTO_BYTES = 8 * 1024 * 1024
PLAN_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}
PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
PHOTO_SIZE = (1600, 1200)
PLANS_FOLDER = "plans"
PHOTOS_FOLDER = "room-photos"

# Names are printed on door signs and QR sheets: plain text, no markup, no control characters.
FORBIDDEN_IN_NAMES = re.compile(r"[<>\x00-\x1f\x7f]")


@dataclass
class RoomDetails:
    name: str
    capacity: int | None
    equipment: list[str] = field(default_factory=list)
    allowed_departments: list[str] = field(default_factory=list)
    needs_approval: bool = False
    buffer_minutes: int | None = 0


@dataclass
class DeskDetails:
    name: str
    zone: str = ""
    attributes: list[str] = field(default_factory=list)
    assignment: str = DeskAssignment.HOT.value
    assigned_email: str = ""


@dataclass
class FloorContents:
    floor: Floor
    rooms: list[Room]
    desks: list[Desk]

    @property
    def resources(self) -> list[Resource]:
        return [*self.rooms, *self.desks]


# ---------------------------------------------------------------------------------------------
# Reading


def coordinated_sites(session: Session, site_ids: set[int] | None) -> list[Site]:
    """The sites a person manages: `None` means every site (administrators)."""
    query = select(Site).order_by(Site.name)
    if site_ids is not None:
        query = query.where(Site.id.in_(site_ids or {-1}))
    return list(session.scalars(query))


def floors_of(session: Session, site: Site) -> list[tuple[Floor, int, int]]:
    """Every floor of the site, by building and level, with how many rooms and desks it has."""
    floors = list(
        session.scalars(
            select(Floor)
            .join(Building)
            .where(Building.site_id == site.id)
            .options(selectinload(Floor.building))
            .order_by(Building.name, Floor.level)
        )
    )
    counts: dict[tuple[int, str], int] = {
        (floor_id, kind): count
        for floor_id, kind, count in session.execute(
            select(Resource.floor_id, Resource.kind, func.count())
            .where(Resource.floor_id.in_([f.id for f in floors] or [-1]))
            .group_by(Resource.floor_id, Resource.kind)
        )
    }
    return [(f, counts.get((f.id, "room"), 0), counts.get((f.id, "desk"), 0)) for f in floors]


def floor_contents(session: Session, floor: Floor) -> FloorContents:
    rooms = session.scalars(select(Room).where(Room.floor_id == floor.id).order_by(Room.name))
    desks = session.scalars(
        select(Desk)
        .where(Desk.floor_id == floor.id)
        .options(selectinload(Desk.assigned_user))
        .order_by(Desk.name)
    )
    return FloorContents(floor, list(rooms), list(desks))


def known_departments(session: Session) -> list[str]:
    """Departments people belong to: the groups a room can be restricted to."""
    rows = session.scalars(
        select(User.department).where(User.department != "").distinct().order_by(User.department)
    )
    return list(rows)


def upcoming_bookings(session: Session, resource: Resource, now: datetime | None = None) -> int:
    """Bookings that still hold a future slot: disabling a resource leaves them in place."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(
                Booking.resource_id == resource.id,
                Booking.status.in_(HOLDING_STATUSES),
                Booking.end_at > (now or utcnow()),
            )
        )
        or 0
    )


# ---------------------------------------------------------------------------------------------
# Floors


def add_floor(
    session: Session, actor: Actor, site: Site, building_name: str, level: int | None, name: str
) -> Floor:
    building_name, name = building_name.strip(), name.strip()
    errors: dict[str, str] = {}
    if not building_name:
        errors["building"] = "Name the building this floor is in."
    elif FORBIDDEN_IN_NAMES.search(building_name):
        errors["building"] = "Names cannot contain < or > or control characters."
    if level is None:
        errors["level"] = "Enter the floor's level as a whole number (0 for the ground floor)."
    elif not -10 <= level <= 200:
        errors["level"] = "Levels go from -10 to 200."
    if FORBIDDEN_IN_NAMES.search(name):
        errors["name"] = "Names cannot contain < or > or control characters."
    if errors:
        raise RuleViolation(errors)
    assert level is not None
    building = session.scalar(
        select(Building).where(
            Building.site_id == site.id, func.lower(Building.name) == building_name.lower()
        )
    )
    if building is None:
        building = Building(site=site, name=building_name)
        session.add(building)
        session.flush()
    elif session.scalar(
        select(Floor.id).where(Floor.building_id == building.id, Floor.level == level)
    ):
        raise RuleViolation({"level": f"{building.name} already has a floor at level {level}."})
    floor = Floor(building=building, level=level, name=name or _default_floor_name(level))
    session.add(floor)
    session.flush()
    audit.record(
        session,
        actor,
        "floor.created",
        floor,
        after={"site_id": site.id, "building": building.name, "level": level, "name": floor.name},
    )
    return floor


def _default_floor_name(level: int) -> str:
    return "Ground floor" if level == 0 else f"Floor {level}"


R = TypeVar("R", Room, Desk)

# ---------------------------------------------------------------------------------------------
# Rooms and desks


def create_room(session: Session, actor: Actor, floor: Floor, details: RoomDetails) -> Room:
    values = _checked_room(session, floor, details, exclude_id=None)
    return _create(session, actor, Room, floor, values)


def update_room(session: Session, actor: Actor, room: Room, details: RoomDetails) -> Room:
    return _update(session, actor, room, _checked_room(session, room.floor, details, room.id))


def create_desk(session: Session, actor: Actor, floor: Floor, details: DeskDetails) -> Desk:
    values = _checked_desk(session, floor, details, exclude_id=None)
    return _create(session, actor, Desk, floor, values)


def update_desk(session: Session, actor: Actor, desk: Desk, details: DeskDetails) -> Desk:
    return _update(session, actor, desk, _checked_desk(session, desk.floor, details, desk.id))


def _create(
    session: Session, actor: Actor, kind: type[R], floor: Floor, values: dict[str, Any]
) -> R:
    resource = kind(
        site_id=floor.building.site_id,
        floor_id=floor.id,
        qr_code=_new_qr_code(),
        active=True,
        disabled_reason="",
        **values,
    )
    _flush_or_name_taken(session, lambda: session.add(resource))
    audit.record(
        session, actor, f"{resource.kind}.created", resource, object_type="resources", after=values
    )
    return resource


def _update(session: Session, actor: Actor, resource: R, values: dict[str, Any]) -> R:
    before = {key: _plain(getattr(resource, key)) for key in values}

    def apply() -> None:
        for key, value in values.items():
            setattr(resource, key, value)

    _flush_or_name_taken(session, apply)
    changed = {k: v for k, v in values.items() if before[k] != v}
    if changed:
        audit.record(
            session,
            actor,
            f"{resource.kind}.updated",
            resource,
            object_type="resources",
            before={k: before[k] for k in changed},
            after=changed,
        )
    return resource


def disable_resource(session: Session, actor: Actor, resource: Resource, reason: str) -> int:
    """Take a room or desk out of service; its row and bookings stay. Returns how many upcoming
    bookings still hold it, so the coordinator can tell those people."""
    reason = reason.strip()
    if not reason:
        raise RuleViolation({"reason": "Say why, so people know (e.g. “Broken chair”)."})
    if len(reason) > 200:
        raise RuleViolation({"reason": "Keep the reason under 200 characters."})
    if FORBIDDEN_IN_NAMES.search(reason):
        raise RuleViolation({"reason": "The reason cannot contain < or > or control characters."})
    before = {"active": resource.active, "disabled_reason": resource.disabled_reason}
    resource.active = False
    resource.disabled_reason = reason
    session.flush()
    audit.record(
        session,
        actor,
        f"{resource.kind}.disabled",
        resource,
        object_type="resources",
        before=before,
        after={"active": False, "disabled_reason": reason},
    )
    return upcoming_bookings(session, resource)


def enable_resource(session: Session, actor: Actor, resource: Resource) -> None:
    if resource.active:
        return
    before = {"active": False, "disabled_reason": resource.disabled_reason}
    resource.active = True
    resource.disabled_reason = ""
    session.flush()
    audit.record(
        session,
        actor,
        f"{resource.kind}.enabled",
        resource,
        object_type="resources",
        before=before,
        after={"active": True, "disabled_reason": ""},
    )


def _checked_room(
    session: Session, floor: Floor, details: RoomDetails, exclude_id: int | None
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = _check_name(session, floor, details.name, exclude_id, errors)
    if details.capacity is None:
        errors["capacity"] = "Enter how many people the room seats."
    elif not 1 <= details.capacity <= MAX_CAPACITY:
        errors["capacity"] = f"A room seats between 1 and {MAX_CAPACITY} people."
    unknown = [e for e in details.equipment if e not in ROOM_EQUIPMENT]
    if unknown:
        errors["equipment"] = "Choose equipment from the list."
    if details.buffer_minutes is None:
        errors["buffer_minutes"] = "Enter the minutes to keep free between bookings (0 for none)."
    elif not 0 <= details.buffer_minutes <= MAX_BUFFER_MINUTES:
        errors["buffer_minutes"] = f"The buffer is between 0 and {MAX_BUFFER_MINUTES} minutes."
    departments = sorted({d.strip() for d in details.allowed_departments if d.strip()})
    if any(len(d) > 120 or FORBIDDEN_IN_NAMES.search(d) for d in departments):
        errors["allowed_departments"] = "Choose departments from the list."
    if errors:
        raise RuleViolation(errors)
    return {
        "name": name,
        "capacity": details.capacity,
        "equipment": sorted(set(details.equipment)),
        "allowed_departments": departments,
        "needs_approval": bool(details.needs_approval),
        "buffer_minutes": details.buffer_minutes,
    }


def _checked_desk(
    session: Session, floor: Floor, details: DeskDetails, exclude_id: int | None
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = _check_name(session, floor, details.name, exclude_id, errors)
    zone = details.zone.strip()
    if len(zone) > 80:
        errors["zone"] = "Keep the zone under 80 characters."
    elif FORBIDDEN_IN_NAMES.search(zone):
        errors["zone"] = "Zones cannot contain < or > or control characters."
    if any(a not in DESK_ATTRIBUTES for a in details.attributes):
        errors["attributes"] = "Choose attributes from the list."
    assigned_user: User | None = None
    if details.assignment not in DESK_KINDS:
        errors["assignment"] = "Choose hot or assigned."
    elif details.assignment == DeskAssignment.ASSIGNED:
        email = details.assigned_email.strip().lower()
        if not email:
            errors["assigned_email"] = "Enter the e-mail of the person this desk belongs to."
        else:
            assigned_user = session.scalar(select(User).where(User.email == email))
            if assigned_user is None or not assigned_user.active:
                errors["assigned_email"] = "No active person has that e-mail address."
            else:
                other = session.scalar(
                    select(Desk).where(
                        Desk.assigned_user_id == assigned_user.id,
                        Desk.assignment == DeskAssignment.ASSIGNED.value,
                        Desk.id != (exclude_id or -1),
                    )
                )
                if other is not None:
                    errors["assigned_email"] = (
                        f"{assigned_user.name} already has desk {other.name} assigned."
                    )
    if errors:
        raise RuleViolation(errors)
    return {
        "name": name,
        "zone": zone,
        "attributes": sorted(set(details.attributes)),
        "assignment": details.assignment,
        "assigned_user_id": assigned_user.id if assigned_user else None,
    }


def _check_name(
    session: Session, floor: Floor, raw: str, exclude_id: int | None, errors: dict[str, str]
) -> str:
    name = " ".join(raw.split())
    if not name:
        errors["name"] = "Give it a name."
    elif len(name) > 120:
        errors["name"] = "Keep the name under 120 characters."
    elif FORBIDDEN_IN_NAMES.search(name):
        errors["name"] = "Names cannot contain < or > or control characters."
    else:
        # One name per floor across rooms and desks, so signs and QR sheets are unambiguous.
        clash = session.scalar(
            select(Resource).where(
                Resource.floor_id == floor.id,
                # exact too: SQLite's lower() folds ASCII only, so "Ä" never equals "ä" there
                or_(Resource.name == name, func.lower(Resource.name) == name.lower()),
                Resource.id != (exclude_id or -1),
            )
        )
        if clash is not None:
            errors["name"] = f"{floor.name} already has a {clash.kind} called {clash.name}."
    return name


def _flush_or_name_taken(session: Session, change: Callable[[], None]) -> None:
    """The unique constraint settles a race between two coordinators naming the same thing.
    The change is made inside the savepoint: begin_nested() first flushes whatever is pending,
    outside the savepoint, where a failure would leave the whole session unusable (a 500)."""
    try:
        with session.begin_nested():
            change()
            session.flush()
    except IntegrityError as exc:
        raise RuleViolation({"name": "That name was just taken on this floor."}) from exc


def _new_qr_code() -> str:
    return secrets.token_urlsafe(6)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# ---------------------------------------------------------------------------------------------
# The floor plan and placing things on it


def place_on_plan(
    session: Session,
    actor: Actor,
    floor: Floor,
    resource_id: int | None,
    x_percent: float | None,
    y_percent: float | None,
) -> Resource:
    """Put a room or desk of this floor at (x, y), given as percentages of the plan's size."""
    errors: dict[str, str] = {}
    resource = session.get(Resource, resource_id) if resource_id is not None else None
    if resource is None or resource.floor_id != floor.id:
        errors["resource"] = "Choose a room or desk on this floor."
    for key, value in (("x", x_percent), ("y", y_percent)):
        if value is None:
            errors[key] = "Click on the plan, or enter a position from 0 to 100 %."
        elif not 0 <= value <= 100:
            errors[key] = "The position is a percentage from 0 to 100."
    if errors:
        raise RuleViolation(errors)
    assert resource is not None and x_percent is not None and y_percent is not None
    before = {"plan_x": resource.plan_x, "plan_y": resource.plan_y}
    resource.plan_x = round(x_percent / 100, 4)
    resource.plan_y = round(y_percent / 100, 4)
    session.flush()
    audit.record(
        session,
        actor,
        f"{resource.kind}.placed",
        resource,
        object_type="resources",
        before=before,
        after={"plan_x": resource.plan_x, "plan_y": resource.plan_y},
    )
    return resource


def remove_from_plan(session: Session, actor: Actor, resource: Resource) -> None:
    if resource.plan_x is None and resource.plan_y is None:
        return
    before = {"plan_x": resource.plan_x, "plan_y": resource.plan_y}
    resource.plan_x = resource.plan_y = None
    session.flush()
    audit.record(
        session,
        actor,
        f"{resource.kind}.unplaced",
        resource,
        object_type="resources",
        before=before,
        after={"plan_x": None, "plan_y": None},
    )


def store_floor_plan(
    session: Session, actor: Actor, floor: Floor, data: bytes, uploads: Path
) -> str | None:
    """Check, clean and store a new plan for the floor. Returns the file name of the plan it
    replaces, for the caller to remove once the change is committed."""
    checked = _checked_plan(data)
    name = image_uploads.store(uploads / PLANS_FOLDER, checked)
    previous = floor.plan_file
    before = {"plan_file": previous}
    floor.plan_file = name
    floor.plan_content_type = checked.content_type
    floor.plan_width = checked.width
    floor.plan_height = checked.height
    session.flush()
    audit.record(
        session,
        actor,
        "floor.plan_uploaded",
        floor,
        before=before,
        after={
            "plan_file": name,
            "content_type": checked.content_type,
            "width": checked.width,
            "height": checked.height,
            "bytes": len(checked.data),
        },
    )
    return previous


def _checked_plan(data: bytes) -> image_uploads.CheckedImage:
    if not data:
        raise RuleViolation({"plan": "The file is empty. Choose a PNG, JPEG or SVG image."})
    if len(data) > MAX_PLAN_BYTES:
        raise RuleViolation({"plan": _too_big(len(data), MAX_PLAN_BYTES)})
    try:
        if image_uploads.looks_like_svg(data):
            return image_uploads.sanitise_svg(data)
        return image_uploads.check_raster(data, formats=PLAN_FORMATS)
    except image_uploads.ImageRejected as rejected:
        message = str(rejected)
        if message.startswith("This file is not a"):
            message = "This file is not a PNG, JPEG or SVG image."
        raise RuleViolation({"plan": message}) from rejected


def set_room_photo(
    session: Session, actor: Actor, room: Room, data: bytes, uploads: Path
) -> str | None:
    """Check, shrink and re-encode a room photo as JPEG (dropping GPS and other metadata).
    Returns the replaced file's name, for the caller to remove after the commit."""
    if len(data) > MAX_PHOTO_BYTES:
        raise RuleViolation({"photo": _too_big(len(data), MAX_PHOTO_BYTES)})
    try:
        checked = image_uploads.check_raster(
            data, formats=PHOTO_FORMATS, fit_within=PHOTO_SIZE, output="JPEG"
        )
    except image_uploads.ImageRejected as rejected:
        raise RuleViolation({"photo": str(rejected)}) from rejected
    name = image_uploads.store(uploads / PHOTOS_FOLDER, checked)
    previous = room.photo_file
    room.photo_file = name
    session.flush()
    audit.record(
        session,
        actor,
        "room.photo_uploaded",
        room,
        object_type="resources",
        before={"photo_file": previous},
        after={"photo_file": name, "width": checked.width, "height": checked.height},
    )
    return previous


def _too_big(size: int, limit: int) -> str:
    return (
        f"The file is {size / image_uploads.MEGABYTE:.1f} MB; "
        f"the most we accept is {limit // image_uploads.MEGABYTE} MB."
    )
