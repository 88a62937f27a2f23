"""What is free when: the desk map of a floor for a day, a floor's room timeline, and room search.

Each view costs a fixed number of queries, whatever the number of desks, rooms or bookings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, not_, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from portal.errors import RuleViolation
from portal.models import (
    HOLDING_STATUSES,
    Booking,
    Building,
    Desk,
    DeskAssignment,
    Floor,
    Resource,
    ResourceKind,
    Room,
    Site,
    User,
)
from portal.models.bookings import overlaps_window
from portal.services import booking_rules, page_cache
from portal.timezones import local_day_bounds, to_utc


@dataclass(frozen=True)
class DeskPlace:
    """A desk as the plan shows it: plain values, shared by every request that draws it."""

    id: int
    name: str
    zone: str
    attributes: tuple[str, ...]
    active: bool
    disabled_reason: str
    assignment: str
    assigned_user_id: int | None
    plan_x: float | None
    plan_y: float | None


@dataclass(frozen=True)
class RoomPlace:
    """A room drawn on the desk plan for orientation, or a row of the room timeline."""

    id: int
    name: str
    capacity: int
    needs_approval: bool
    buffer_minutes: int
    plan_x: float | None = None
    plan_y: float | None = None


@dataclass(frozen=True)
class Holder:
    """The booking that holds a resource in the window, and who made it."""

    booking_id: int
    resource_id: int
    user_id: int
    name: str
    department: str
    status: str
    title: str
    start_at: datetime
    end_at: datetime
    blocked_until: datetime


@dataclass(frozen=True)
class DeskState:
    desk: DeskPlace
    state: str  # free | taken | mine | unavailable
    label: str  # said in words, never by colour alone
    holder: Holder | None = None
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


def desk_state(
    desk: DeskPlace,
    holder: Holder | None,
    *,
    viewer_id: int | None,
    department: str | None,
    show_names: bool,
    past: bool,
) -> DeskState:
    """The rules that decide how one desk looks to one viewer (None: to nobody in particular)."""
    if holder is not None and holder.user_id == viewer_id:
        state, label = "mine", "Your desk"
    elif holder is not None:
        state, label = "taken", "Taken"
    elif not desk.active:
        state, label = "unavailable", f"Out of use: {desk.disabled_reason or 'disabled'}"
    elif desk.assignment == DeskAssignment.ASSIGNED and (
        desk.assigned_user_id is None or desk.assigned_user_id != viewer_id
    ):
        state, label = "unavailable", "Assigned desk"
    elif past:
        state, label = "unavailable", "In the past"
    else:
        state, label = "free", "Free"
    return DeskState(
        desk,
        state,
        label,
        holder,
        holder.name if holder is not None and show_names else None,
        same_department=bool(holder and holder.department and holder.department == department),
    )


@dataclass
class FloorDay:
    """The part of a floor's desk map for one window that is the same for everybody: built once
    per version of the data (see page_cache) and shared by the requests that show it."""

    floor_id: int
    start: datetime
    end: datetime
    show_names: bool
    past: bool
    places: list[DeskPlace]
    holders: dict[int, Holder]  # desk id -> the booking holding it
    rooms: list[RoomPlace]
    neutral: list[DeskState] = field(init=False)  # as seen by nobody in particular
    zones: list[str] = field(init=False)
    attributes: list[str] = field(init=False)
    personal: dict[int, list[int]] = field(init=False)  # user id -> indexes that differ for them
    placed: int = field(init=False)  # desks that have a place on the plan
    rendered: dict[Any, Any] = field(default_factory=dict)  # the views' memo of rendered parts
    _by_department: dict[str, dict[int, DeskState]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.neutral = [self._state(i, None, None) for i in range(len(self.places))]
        self.zones = sorted({d.zone for d in self.places if d.zone})
        self.attributes = sorted({a for d in self.places for a in d.attributes})
        self.placed = sum(1 for d in self.places if d.plan_x)
        self.personal = {}
        for i, place in enumerate(self.places):
            holder = self.holders.get(place.id)
            for user_id in (holder.user_id if holder else None, place.assigned_user_id):
                if user_id is not None:
                    self.personal.setdefault(user_id, []).append(i)

    def _state(self, index: int, viewer_id: int | None, department: str | None) -> DeskState:
        place = self.places[index]
        return desk_state(
            place,
            self.holders.get(place.id),
            viewer_id=viewer_id,
            department=department,
            show_names=self.show_names,
            past=self.past,
        )

    def team(self, department: str) -> dict[int, DeskState]:
        """The desks this department's people hold, marked as the team's: index -> state."""
        if not department:
            return {}
        states = self._by_department.get(department)
        if states is None:
            states = {
                i: replace(s, same_department=True)
                for i, s in enumerate(self.neutral)
                if s.holder is not None and s.holder.department == department
            }
            self._by_department[department] = states
        return states


@dataclass(frozen=True)
class MyDesk:
    booking_id: int
    desk_name: str


@dataclass
class DeskMap:
    """One viewer's desk map: the shared FloorDay with their own desks laid over it."""

    floor: Floor
    day: date
    slot: str
    shared: FloorDay
    desks: list[DeskState]
    personal: list[int]  # indexes of desks that look different to this viewer alone
    team: dict[int, DeskState]  # desks held by the viewer's department (shared by the team)
    my_booking: MyDesk | None = None
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = {}
        for d in self.desks:
            self.counts[d.state] = self.counts.get(d.state, 0) + 1

    @property
    def zones(self) -> list[str]:
        return self.shared.zones

    @property
    def rooms(self) -> list[RoomPlace]:
        return self.shared.rooms

    def count(self, state: str) -> int:
        return self.counts.get(state, 0)


def desk_map(
    session: Session,
    floor: Floor,
    day: date,
    slot: str,
    viewer: User,
    now: datetime,
    cache: page_cache.PageCache | None = None,
) -> DeskMap:
    """A floor's desks for a day's slot as this viewer sees them. The shared part comes from the
    cache when the floor's version counters have not moved since it was built."""
    site = floor.building.site
    policy = booking_rules.policy_for(session, site)
    start, end = booking_rules.DESK_SLOTS[slot].bounds(site, policy, day)
    # The version first, then the data: the data is never older than the version it is kept as.
    # The viewer's desk that day, wherever on the site, comes in the same round trip.
    my_desk = (
        select(Booking.id)
        .join(Desk, Desk.id == Booking.resource_id)
        .where(
            Desk.site_id == site.id,
            Booking.user_id == viewer.id,
            Booking.status.in_(HOLDING_STATUSES),
            overlaps_window(start, end),
        )
        .order_by(Booking.start_at, Booking.id)
        .limit(1)
        .scalar_subquery()
    )
    version, my_booking_id, my_desk_name = session.execute(
        select(
            page_cache.version_of(page_cache.floor_scopes(floor.id, start, end)),
            my_desk,
            select(Desk.name)
            .join(Booking, Booking.resource_id == Desk.id)
            .where(Booking.id == my_desk)
            .scalar_subquery(),
        )
    ).one()
    key = ("desks", floor.id, start, end, end <= now, policy.show_booker_names, version)

    def build() -> FloorDay:
        return _load_floor_day(session, floor.id, start, end, policy.show_booker_names, end <= now)

    shared = cache.get_or_build(key, build) if cache is not None else build()
    team = shared.team(viewer.department)
    personal = shared.personal.get(viewer.id, [])
    desks = shared.neutral
    mine = None
    if team or personal:
        desks = list(desks)
        for i, state in team.items():
            desks[i] = state
        for i in personal:
            desks[i] = shared._state(i, viewer.id, viewer.department)
            if mine is None and desks[i].state == "mine" and desks[i].holder is not None:
                mine = MyDesk(desks[i].holder.booking_id, desks[i].desk.name)
    if mine is None and my_booking_id is not None:  # my desk may be on another floor that day
        mine = MyDesk(my_booking_id, my_desk_name)
    return DeskMap(floor, day, slot, shared, desks, personal, team, mine)


_HOLDER_COLUMNS = (
    Booking.id,
    Booking.resource_id,
    Booking.user_id,
    User.name,
    User.department,
    Booking.status,
    Booking.title,
    Booking.start_at,
    Booking.end_at,
    Booking.blocked_until,
)


def _holders(
    session: Session, resource_ids: list[int], start: datetime, end: datetime
) -> list[Holder]:
    if not resource_ids:
        return []
    rows = session.execute(
        select(*_HOLDER_COLUMNS)
        .join(User, User.id == Booking.user_id)
        .where(
            Booking.resource_id.in_(resource_ids),
            Booking.status.in_(HOLDING_STATUSES),
            overlaps_window(start, end),
        )
        .order_by(Booking.start_at, Booking.id)
    )
    return [Holder(*row) for row in rows]


def _load_floor_day(
    session: Session, floor_id: int, start: datetime, end: datetime, show_names: bool, past: bool
) -> FloorDay:
    # Desks and rooms in one statement: the resources of the floor with either kind's columns.
    resources, desks, rooms_table = Resource.__table__, Desk.__table__, Room.__table__
    rows = session.execute(
        select(
            resources.c.id,
            resources.c.kind,
            resources.c.name,
            resources.c.active,
            resources.c.disabled_reason,
            resources.c.needs_approval,
            resources.c.buffer_minutes,
            resources.c.plan_x,
            resources.c.plan_y,
            desks.c.zone,
            desks.c.attributes,
            desks.c.assignment,
            desks.c.assigned_user_id,
            rooms_table.c.capacity,
        )
        .select_from(resources.outerjoin(desks).outerjoin(rooms_table))
        .where(resources.c.floor_id == floor_id)
        .order_by(resources.c.name, resources.c.id)
    ).all()
    places = [
        DeskPlace(
            row.id,
            row.name,
            row.zone or "",
            tuple(row.attributes or ()),
            row.active,
            row.disabled_reason or "",
            row.assignment,
            row.assigned_user_id,
            row.plan_x,
            row.plan_y,
        )
        for row in rows
        if row.kind == ResourceKind.DESK and row.zone is not None
    ]
    rooms = [
        RoomPlace(
            row.id,
            row.name,
            row.capacity,
            row.needs_approval,
            row.buffer_minutes,
            row.plan_x,
            row.plan_y,
        )
        for row in rows
        if row.kind == ResourceKind.ROOM and row.capacity is not None
    ]
    holders = {h.resource_id: h for h in _holders(session, [d.id for d in places], start, end)}
    return FloorDay(floor_id, start, end, show_names, past, places, holders, rooms)


@dataclass(frozen=True)
class TimelineBlock:
    holder: Holder
    start_minute: int  # minutes after the site opens
    end_minute: int
    label: str
    mine: bool = False


@dataclass(frozen=True)
class FreeSlot:
    quarter: int  # quarter-hours after opening
    label: str  # local wall time, e.g. "14:30"


@dataclass(frozen=True)
class TimelineRow:
    room: RoomPlace
    blocks: tuple[TimelineBlock, ...] = ()
    free_slots: tuple[FreeSlot, ...] = ()  # bookable half-hours


@dataclass
class FloorTimeline:
    """The part of a floor's room timeline for a day that is the same for everybody."""

    floor_id: int
    rows: list[TimelineRow]  # as seen by nobody in particular
    personal: dict[int, list[int]]  # user id -> rows holding one of their bookings
    show_names: bool
    rendered: dict[Any, Any] = field(default_factory=dict)  # the views' memo of rendered parts


@dataclass
class RoomTimeline:
    floor: Floor
    day: date
    opens: datetime
    closes: datetime
    rows: list[TimelineRow]
    hours: list[datetime]
    shared: FloorTimeline
    personal: list[int]  # rows that look different to this viewer

    @property
    def total_minutes(self) -> int:
        return int((self.closes - self.opens).total_seconds() // 60)


def timeline_block(
    holder: Holder, opens: datetime, closes: datetime, viewer_id: int | None, show_names: bool
) -> TimelineBlock:
    """How one booking reads on the timeline: its own booker sees the title; others see who
    holds it only where the site shows names."""
    mine = holder.user_id == viewer_id
    if mine:
        label = holder.title
    elif show_names:
        label = f"{holder.title or 'Booked'} · {holder.name}"
    else:
        label = ""
    return TimelineBlock(
        holder,
        int((max(holder.start_at, opens) - opens).total_seconds() // 60),
        int((min(holder.end_at, closes) - opens).total_seconds() // 60),
        label or "Booked",
        mine,
    )


def room_timeline(
    session: Session,
    floor: Floor,
    day: date,
    viewer: User,
    now: datetime,
    cache: page_cache.PageCache | None = None,
) -> RoomTimeline:
    site = floor.building.site
    zone = ZoneInfo(site.time_zone)
    opens = to_utc(datetime.combine(day, site.opens_at), zone)
    closes = to_utc(datetime.combine(day, site.closes_at), zone)
    policy = booking_rules.policy_for(session, site)
    # The half-hours of the day, labelled once (not once per room).
    slots = []
    moment = opens
    while moment < closes:
        quarter = int((moment - opens).total_seconds() // 900)
        slots.append(_Slot(moment, FreeSlot(quarter, moment.astimezone(zone).strftime("%H:%M"))))
        moment += timedelta(minutes=30)
    # Half-hours already past are not offered: how many is part of what the page shows.
    passed = sum(1 for s in slots if s.start < now - booking_rules.PAST_TOLERANCE)
    version = page_cache.version(session, page_cache.floor_scopes(floor.id, opens, closes))
    key = ("rooms", floor.id, opens, closes, passed, policy.show_booker_names, version)

    def build() -> FloorTimeline:
        return _load_timeline(
            session, floor.id, opens, closes, slots[passed:], policy.show_booker_names
        )

    shared = cache.get_or_build(key, build) if cache is not None else build()
    personal = shared.personal.get(viewer.id, [])
    rows = shared.rows
    if personal:
        rows = list(rows)
        for i in personal:
            rows[i] = replace(
                rows[i],
                blocks=tuple(
                    timeline_block(b.holder, opens, closes, viewer.id, shared.show_names)
                    for b in rows[i].blocks
                ),
            )
    hours = []
    hour = opens
    while hour < closes:
        hours.append(hour)
        hour += timedelta(hours=1)
    return RoomTimeline(floor, day, opens, closes, rows, hours, shared, personal)


@dataclass(frozen=True)
class _Slot:
    start: datetime
    free: FreeSlot


def _load_timeline(
    session: Session,
    floor_id: int,
    opens: datetime,
    closes: datetime,
    slots: list[_Slot],
    show_names: bool,
) -> FloorTimeline:
    rooms = [
        RoomPlace(*row)
        for row in session.execute(
            select(Room.id, Room.name, Room.capacity, Room.needs_approval, Room.buffer_minutes)
            .where(Room.floor_id == floor_id, Room.active.is_(True))
            .order_by(Room.name)
        )
    ]
    by_room: dict[int, list[Holder]] = {r.id: [] for r in rooms}
    for holder in _holders(session, list(by_room), opens, closes):
        by_room[holder.resource_id].append(holder)
    rows = []
    personal: dict[int, list[int]] = {}
    for index, room in enumerate(rooms):
        held = by_room[room.id]
        buffer = timedelta(minutes=room.buffer_minutes)
        free = tuple(
            slot.free
            for slot in slots
            if not any(
                h.start_at < slot.start + timedelta(minutes=30) + buffer
                and slot.start < h.blocked_until
                for h in held
            )
        )
        blocks = tuple(timeline_block(h, opens, closes, None, show_names) for h in held)
        for user_id in {h.user_id for h in held}:
            personal.setdefault(user_id, []).append(index)
        rows.append(TimelineRow(room, blocks, free))
    return FloorTimeline(floor_id, rows, personal, show_names)


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
