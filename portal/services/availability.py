"""What is free when: the desk map of a floor for a day, a floor's room timeline, and room search.

Each view costs a fixed number of queries, whatever the number of desks, rooms or bookings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, not_, select
from sqlalchemy.orm import Session, contains_eager, joinedload, lazyload, selectinload

from portal.errors import RuleViolation
from portal.models import (
    HOLDING_STATUSES,
    Booking,
    Building,
    Desk,
    DeskAssignment,
    Floor,
    Room,
    Site,
    User,
)
from portal.models.bookings import overlaps_window
from portal.services import booking_rules
from portal.timezones import local_day_bounds, to_utc

# On a floor's map the resources are loaded already and only the booker's name and department
# are shown: load just those (a user row carries a password hash nobody needs here).
_LIGHT_BOOKING = (
    lazyload(Booking.resource),
    joinedload(Booking.user).load_only(User.id, User.name, User.department),
)


@dataclass
class DeskState:
    desk: Desk
    state: str  # free | taken | mine | unavailable
    label: str  # said in words, never by colour alone
    booking: Booking | None = None
    booker_name: str | None = None  # only where the site shows names
    same_department: bool = False

    @property
    def mark(self) -> str:
        """The short text under the desk's name on the plan: never colour alone."""
        if self.state == "taken":
            return "".join(part[:1] for part in (self.booker_name or "").split()) or "taken"
        return {"free": "free", "mine": "✓ you", "unavailable": "×"}[self.state]

    @property
    def plan_position(self) -> tuple[float, float]:
        """Where it sits in the plan's 1000 x 640 drawing."""
        return round((self.desk.plan_x or 0) * 1000, 1), round((self.desk.plan_y or 0) * 640, 1)


@dataclass
class DeskMap:
    floor: Floor
    day: date
    slot: str
    desks: list[DeskState]
    zones: list[str]
    rooms: list[Room] = field(default_factory=list)  # drawn on the plan for orientation
    my_booking: Booking | None = None

    def count(self, state: str) -> int:
        return sum(1 for d in self.desks if d.state == state)


def desk_map(
    session: Session, floor: Floor, day: date, slot: str, viewer: User, now: datetime
) -> DeskMap:
    site = floor.building.site
    policy = booking_rules.policy_for(session, site)
    start, end = booking_rules.DESK_SLOTS[slot].bounds(site, policy, day)
    desks = list(session.scalars(select(Desk).where(Desk.floor_id == floor.id).order_by(Desk.name)))
    held = (
        {
            b.resource_id: b
            for b in session.scalars(
                select(Booking)
                .options(*_LIGHT_BOOKING)
                .where(
                    Booking.resource_id.in_([d.id for d in desks]),
                    Booking.status.in_(HOLDING_STATUSES),
                    overlaps_window(start, end),
                )
            )
        }
        if desks
        else {}
    )
    states = []
    mine = None
    for desk in desks:
        booking = held.get(desk.id)
        if booking is not None and booking.user_id == viewer.id:
            state, label, mine = "mine", "Your desk", booking
        elif booking is not None:
            state, label = "taken", "Taken"
        elif not desk.active:
            state, label = "unavailable", f"Out of use: {desk.disabled_reason or 'disabled'}"
        elif desk.assignment == DeskAssignment.ASSIGNED and desk.assigned_user_id != viewer.id:
            state, label = "unavailable", "Assigned desk"
        elif end <= now:
            state, label = "unavailable", "In the past"
        else:
            state, label = "free", "Free"
        name = booking.user.name if booking is not None and policy.show_booker_names else None
        states.append(
            DeskState(
                desk,
                state,
                label,
                booking,
                name,
                same_department=bool(
                    booking
                    and booking.user.department
                    and booking.user.department == viewer.department
                ),
            )
        )
    if mine is None:  # my desk may be on another floor that day
        mine = session.scalar(
            select(Booking)
            .join(Desk, Desk.id == Booking.resource_id)
            .where(
                Desk.site_id == site.id,
                Booking.user_id == viewer.id,
                Booking.status.in_(HOLDING_STATUSES),
                overlaps_window(start, end),
            )
        )
    zones = sorted({d.zone for d in desks if d.zone})
    rooms = list(session.scalars(select(Room).where(Room.floor_id == floor.id)))
    return DeskMap(floor, day, slot, states, zones, rooms, mine)


@dataclass
class TimelineBlock:
    booking: Booking
    start_minute: int  # minutes after the site opens
    end_minute: int
    label: str


@dataclass(frozen=True)
class FreeSlot:
    quarter: int  # quarter-hours after opening
    label: str  # local wall time, e.g. "14:30"


@dataclass
class TimelineRow:
    room: Room
    blocks: list[TimelineBlock] = field(default_factory=list)
    free_slots: list[FreeSlot] = field(default_factory=list)  # bookable half-hours


@dataclass(frozen=True)
class _Slot:
    start: datetime
    free: FreeSlot


@dataclass
class RoomTimeline:
    floor: Floor
    day: date
    opens: datetime
    closes: datetime
    rows: list[TimelineRow]
    hours: list[datetime]

    @property
    def total_minutes(self) -> int:
        return int((self.closes - self.opens).total_seconds() // 60)


def room_timeline(
    session: Session, floor: Floor, day: date, viewer: User, now: datetime
) -> RoomTimeline:
    site = floor.building.site
    zone = ZoneInfo(site.time_zone)
    opens = to_utc(datetime.combine(day, site.opens_at), zone)
    closes = to_utc(datetime.combine(day, site.closes_at), zone)
    policy = booking_rules.policy_for(session, site)
    rooms = list(
        session.scalars(
            select(Room).where(Room.floor_id == floor.id, Room.active.is_(True)).order_by(Room.name)
        )
    )
    by_room: dict[int, list[Booking]] = {r.id: [] for r in rooms}
    if rooms:
        for booking in session.scalars(
            select(Booking)
            .options(*_LIGHT_BOOKING)
            .where(
                Booking.resource_id.in_(list(by_room)),
                Booking.status.in_(HOLDING_STATUSES),
                overlaps_window(opens, closes),
            )
            .order_by(Booking.start_at)
        ):
            by_room[booking.resource_id].append(booking)
    # The half-hours of the day, labelled once (not once per room).
    slots = []
    moment = opens
    while moment < closes:
        quarter = int((moment - opens).total_seconds() // 900)
        slots.append(_Slot(moment, FreeSlot(quarter, moment.astimezone(zone).strftime("%H:%M"))))
        moment += timedelta(minutes=30)
    rows = []
    for room in rooms:
        row = TimelineRow(room)
        for booking in by_room[room.id]:
            s = max(booking.start_at, opens)
            e = min(booking.end_at, closes)
            label = (
                booking.title if booking.user_id == viewer.id or policy.show_booker_names else ""
            )
            if policy.show_booker_names and booking.user_id != viewer.id:
                label = f"{booking.title or 'Booked'} · {booking.user.name}"
            row.blocks.append(
                TimelineBlock(
                    booking,
                    int((s - opens).total_seconds() // 60),
                    int((e - opens).total_seconds() // 60),
                    label or "Booked",
                )
            )
        buffer = timedelta(minutes=room.buffer_minutes)
        for slot in slots:
            slot_end = slot.start + timedelta(minutes=30)
            clash = any(
                b.start_at < slot_end + buffer and slot.start < b.blocked_until
                for b in by_room[room.id]
            )
            if not clash and slot.start >= now - booking_rules.PAST_TOLERANCE:
                row.free_slots.append(slot.free)
        rows.append(row)
    hours = []
    hour = opens
    while hour < closes:
        hours.append(hour)
        hour += timedelta(hours=1)
    return RoomTimeline(floor, day, opens, closes, rows, hours)


@dataclass
class RoomOption:
    room: Room
    fits: bool
    reasons: list[str]  # why it is not offered, when it almost fits


def search_rooms(
    session: Session,
    site: Site,
    viewer: User,
    start: datetime,
    end: datetime,
    *,
    attendees: int,
    equipment: list[str],
    now: datetime,
) -> list[RoomOption]:
    """Every room of the site, those that fit first; the others say why not."""
    rooms = list(
        session.scalars(
            select(Room)
            .where(Room.site_id == site.id, Room.active.is_(True))
            .options(selectinload(Room.floor))
            .order_by(Room.capacity, Room.name)
        )
    )
    buffers = {r.id: timedelta(minutes=r.buffer_minutes) for r in rooms}
    widest = max(buffers.values(), default=timedelta(0))
    nearby = (
        session.scalars(
            select(Booking).where(
                Booking.resource_id.in_(list(buffers)),
                Booking.status.in_(HOLDING_STATUSES),
                overlaps_window(start, end + widest, Booking.blocked_until),
            )
        )
        if rooms
        else []
    )
    # Each room's own buffer decides whether a nearby booking is too close.
    busy = {b.resource_id for b in nearby if b.start_at < end + buffers[b.resource_id]}
    options = []
    for room in rooms:
        reasons = []
        if room.capacity < attendees:
            reasons.append(f"too small: seats {room.capacity}")
        missing = [e for e in equipment if e not in room.equipment]
        if missing:
            reasons.append("no " + ", ".join(missing))
        if room.id in busy:
            reasons.append("booked then")
        if not reasons:
            try:
                booking_rules.check_request(
                    session, resource=room, booker=viewer, start=start, end=end, now=now
                )
            except RuleViolation as violation:
                reasons.append(_short(violation))
        if room.needs_approval and not reasons:
            options.append(RoomOption(room, True, ["needs a coordinator's approval"]))
            continue
        options.append(RoomOption(room, not reasons, reasons))
    options.sort(key=lambda o: (not o.fits, abs(o.room.capacity - attendees), o.room.name))
    return options


def _short(violation: RuleViolation) -> str:
    message = next(iter(violation.errors.values()), "")
    return {
        "business_hours": "outside opening hours",
        "restricted": "restricted",
        "horizon": "too far ahead",
        "blackout": "closed then",
    }.get(violation.rule, message)


def my_bookings(
    session: Session, user: User, now: datetime, *, past: bool = False, limit: int = 50
) -> list[Booking]:
    """Upcoming: still holding their slot and not over. Past: over, or cancelled, declined or
    released (those are history even when their time is still ahead)."""
    query = select(Booking).where(Booking.user_id == user.id)
    upcoming = and_(Booking.end_at > now, Booking.status.in_(HOLDING_STATUSES))
    if past:
        query = query.where(not_(upcoming)).order_by(Booking.start_at.desc())
    else:
        query = query.where(upcoming).order_by(Booking.start_at)
    return list(session.scalars(query.options(selectinload(Booking.series)).limit(limit)))


def bookings_on_day(session: Session, user: User, day: date, zone: ZoneInfo) -> list[Booking]:
    start, end = local_day_bounds(day, zone)
    return list(
        session.scalars(
            select(Booking)
            .where(
                Booking.user_id == user.id,
                Booking.start_at < end,
                start < Booking.end_at,
                Booking.status.in_([*HOLDING_STATUSES, "completed"]),
            )
            .order_by(Booking.start_at)
        )
    )


def floors_of_site(session: Session, site: Site) -> list[Floor]:
    return list(
        session.scalars(
            select(Floor)
            .join(Building)
            .where(Building.site_id == site.id)
            .options(contains_eager(Floor.building))
            .order_by(Building.name, Floor.level)
        )
    )
