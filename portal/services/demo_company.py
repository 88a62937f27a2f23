"""The demo company `make run` loads: two sites in different zones, rooms, desks and ~200 people.

Idempotent: everything is found by its natural key first, so running it again changes nothing."""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import Building, Desk, DeskAssignment, Floor, Role, Room, Site, User
from portal.services import access_control, accounts, booking_rules, bookings, demo_history
from portal.services.audit import Actor
from portal.timezones import to_utc

DEMO_PASSWORD = "foyer-demo"  # noqa: S105 - documented demo credential, printed by make run  # nosec B105
DEPARTMENTS = [
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "People",
    "Operations",
    "Design",
    "Customer Success",
    "Legal",
]
FIRST = [
    "Lena",
    "Jonas",
    "Maya",
    "Noah",
    "Amara",
    "Luca",
    "Sofia",
    "Elias",
    "Hana",
    "Mateo",
    "Zoe",
    "Felix",
    "Aisha",
    "Leon",
    "Ines",
    "Omar",
    "Clara",
    "Theo",
    "Priya",
    "Ben",
    "Yuki",
    "Nina",
    "Samuel",
    "Leila",
    "David",
]
LAST = [
    "Fischer",
    "Weber",
    "Johnson",
    "Okafor",
    "Rossi",
    "Garcia",
    "Schmidt",
    "Nguyen",
    "Kowalski",
    "Haddad",
    "Meyer",
    "Silva",
    "Chen",
    "Brown",
    "Novak",
    "Dubois",
]
ROOM_NAMES = [
    "Spree",
    "Havel",
    "Elbe",
    "Oder",
    "Rhein",
    "Main",
    "Mosel",
    "Isar",
    "Neckar",
    "Weser",
    "Saale",
    "Ems",
    "Lahn",
    "Ruhr",
    "Donau",
    "Inn",
    "Lech",
    "Fulda",
    "Werra",
    "Aller",
    "Leine",
    "Hudson",
    "Harlem",
    "Bronx",
    "Gowanus",
    "Astoria",
    "Chelsea",
    "Tribeca",
    "Soho",
    "Nolita",
    "Dumbo",
    "Inwood",
    "Flatiron",
    "Battery",
    "Bowery",
    "Hells Kitchen",
    "Kips Bay",
    "Murray Hill",
    "Noho",
    "Turtle Bay",
    "Yorkville",
    "Gramercy",
    "Chinatown",
    "Midtown",
    "Riverside",
    "Highline",
    "Seaport",
    "Alphabet",
    "Greenpoint",
]
EQUIPMENT = ["display", "video conferencing", "whiteboard", "step-free access", "phone"]
MEETINGS = [
    "Weekly planning",
    "1:1",
    "Design review",
    "Customer call",
    "Sprint retro",
    "Hiring panel",
    "Budget check-in",
    "Team sync",
    "Onboarding",
]
DESK_ATTRIBUTES = ["standing", "dual monitor", "docking station", "window"]


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    name: str


@dataclass(frozen=True)
class SiteSpec:
    slug: str
    name: str
    address: str
    zone: str
    building: str
    levels: tuple[int, ...]
    opens: time
    closes: time


SITES = [
    SiteSpec(
        "berlin",
        "Berlin",
        "Torstraße 140, 10119 Berlin, Germany",
        "Europe/Berlin",
        "Torhaus",
        (1, 2, 3),
        time(8, 0),
        time(19, 0),
    ),
    SiteSpec(
        "new-york",
        "New York",
        "200 Hudson Street, New York, NY 10013, USA",
        "America/New_York",
        "Hudson",
        (10, 11, 12),
        time(8, 0),
        time(19, 0),
    ),
]


def seed_demo(session: Session) -> list[DemoLogin]:
    actor = Actor.system("seed-demo")
    sites = [_site(session, spec) for spec in SITES]
    rng = random.Random(2026)  # noqa: S311 - deterministic demo data, not security  # nosec B311
    people = _people(session, actor, sites, rng)
    room_names = iter(ROOM_NAMES)
    for site, spec in zip(sites, SITES, strict=True):
        for floor in _floors(session, site, spec):
            _rooms(session, floor, room_names, rng)
            _desks(session, floor, people, rng)
    session.flush()
    logins = _logins(session, actor, sites)
    _demo_bookings(session, sites, people)
    demo_history.seed_history(session, sites, people)  # months of past bookings for dashboards
    access_control.seed_demo(session, sites[0])  # Berlin takes signed door events (README)
    _demo_feed(session, sites)
    return logins


def _site(session: Session, spec: SiteSpec) -> Site:
    site = session.scalar(select(Site).where(Site.slug == spec.slug))
    if site is None:
        site = Site(
            slug=spec.slug,
            name=spec.name,
            address=spec.address,
            time_zone=spec.zone,
            opens_at=spec.opens,
            closes_at=spec.closes,
            open_weekdays="12345",
        )
        session.add(site)
        session.flush()
    return site


def _floors(session: Session, site: Site, spec: SiteSpec) -> list[Floor]:
    building = session.scalar(select(Building).where(Building.site_id == site.id))
    if building is None:
        building = Building(site=site, name=spec.building)
        session.add(building)
        session.flush()
    floors = []
    for level in spec.levels:
        floor = session.scalar(
            select(Floor).where(Floor.building_id == building.id, Floor.level == level)
        )
        if floor is None:
            floor = Floor(building=building, level=level, name=f"Floor {level}")
            session.add(floor)
            session.flush()
        floors.append(floor)
    return floors


def _rooms(session: Session, floor: Floor, names: Iterator[str], rng: random.Random) -> None:
    existing = session.scalars(select(Room).where(Room.floor_id == floor.id)).all()
    for index in range(7):
        name = next(names)
        capacity = rng.choice([2, 4, 4, 6, 8, 10, 12, 16])
        kit = sorted(rng.sample(EQUIPMENT, rng.randint(1, 4)))
        if index < len(existing):
            continue  # names are drawn either way, so a re-run names the same rooms
        # Rooms along the top and bottom walls of the plan; the biggest need approval.
        session.add(
            Room(
                site_id=floor.building.site_id,
                floor=floor,
                name=name,
                capacity=capacity,
                equipment=kit,
                needs_approval=capacity >= 16,
                buffer_minutes=5 if capacity >= 10 else 0,
                qr_code=_qr(),
                plan_x=0.13 + (index % 4) * 0.245,
                plan_y=0.08 if index < 4 else 0.905,
            )
        )


def _desks(session: Session, floor: Floor, people: list[User], rng: random.Random) -> None:
    existing = session.scalars(select(Desk.id).where(Desk.floor_id == floor.id)).all()
    zones = rng.sample(DEPARTMENTS, 4)
    assignees = rng.sample(people, 3)
    for number in range(len(existing) + 1, 51):
        # Five rows of ten across the middle band of the plan; zones are column groups.
        row, col = divmod(number - 1, 10)
        desk = Desk(
            site_id=floor.building.site_id,
            floor=floor,
            name=f"{floor.level}.{number:02d}",
            zone=zones[min(col // 3, 3)],
            attributes=sorted(rng.sample(DESK_ATTRIBUTES, rng.randint(0, 2))),
            assignment=DeskAssignment.HOT,
            qr_code=_qr(),
            plan_x=0.06 + col * 0.098,
            plan_y=0.26 + row * 0.12,
        )
        if number % 23 == 0:
            desk.assignment = DeskAssignment.ASSIGNED
            desk.assigned_user_id = assignees[number // 23].id
        elif number == 50:
            desk.active = False
            desk.disabled_reason = "Broken chair, replacement ordered"
        session.add(desk)


def _demo_bookings(session: Session, sites: list[Site], people: list[User]) -> None:
    """A lived-in week: about half the desks and a few meetings per room on each working day.
    Keys make it idempotent; whatever a rule refuses (e.g. a slot already past) is left out."""
    now = utcnow()
    for site in sites:
        zone = ZoneInfo(site.time_zone)
        policy = booking_rules.policy_for(session, site)
        locals_ = [p for p in people if p.home_site_id == site.id]
        day = now.astimezone(zone).date()
        for _ in range(7):
            if day.isoweekday() <= 5:
                # One generator per site and day, so a re-run draws (and skips) the same bookings.
                rng = random.Random(f"{site.slug}-{day}")  # noqa: S311 - demo data  # nosec B311
                _book_day(session, site, day, policy, locals_, rng, now)
            day += timedelta(days=1)


def _book_day(
    session: Session,
    site: Site,
    day: date,
    policy: object,
    people: list[User],
    rng: random.Random,
    now: datetime,
) -> None:
    zone = ZoneInfo(site.time_zone)
    desks = session.scalars(
        select(Desk).where(Desk.site_id == site.id, Desk.active.is_(True))
    ).all()
    sitters = iter(rng.sample(people, len(people)))
    for desk in desks:
        if desk.assignment != DeskAssignment.HOT or rng.random() > 0.45:
            continue
        person = next(sitters, None)
        if person is None:
            break
        slot = rng.choice(["day", "day", "morning", "afternoon"])
        start, end = booking_rules.DESK_SLOTS[slot].bounds(site, policy, day)  # type: ignore[arg-type]
        _try_book(session, person, desk.id, start, end, "", f"demo-{day}-{desk.id}", now)
    for room in session.scalars(select(Room).where(Room.site_id == site.id)).all():
        # Whole hours and meetings under an hour never clash, even with a room's buffer.
        meetings = 1 if room.needs_approval else 3  # a short approvals queue, not a wall
        for meeting, hour in enumerate(sorted(rng.sample([9, 10, 11, 13, 14, 15, 16], meetings))):
            start = to_utc(datetime.combine(day, time(hour)), zone)
            end = start + timedelta(minutes=rng.choice([30, 45, 50]))
            title = rng.choice(MEETINGS)
            _try_book(
                session,
                rng.choice(people),
                room.id,
                start,
                end,
                title,
                f"demo-{day}-{room.id}-{meeting}",
                now,
            )


def _try_book(
    session: Session,
    person: User,
    resource_id: int,
    start: datetime,
    end: datetime,
    title: str,
    key: str,
    now: datetime,
) -> None:
    # Taken, past or outside the rules: the demo simply has one booking fewer.
    with contextlib.suppress(RuleViolation):
        bookings.book(
            session,
            Actor.system("seed-demo"),
            person,
            resource_id=resource_id,
            start=start,
            end=end,
            title=title,
            idempotency_key=key,
            now=now,
            notify=False,
        )


def _qr() -> str:
    return secrets.token_urlsafe(6)


def _people(session: Session, actor: Actor, sites: list[Site], rng: random.Random) -> list[User]:
    people = []
    for index in range(200):
        first, last = FIRST[index % len(FIRST)], LAST[(index * 7 + index // 25) % len(LAST)]
        if f"{first} {last}" in DEMO_LOGIN_NAMES:  # one Lena Fischer, so the demo host is clear
            last = LAST[(index * 7 + index // 25 + 1) % len(LAST)]
        email = f"{first}.{last}{'' if index < len(FIRST) else index}@example.com".lower()
        user = accounts.find_by_email(session, email)
        if user is None:
            user = accounts.create_user(
                session,
                actor,
                email=email,
                name=f"{first} {last}",
                department=DEPARTMENTS[index % len(DEPARTMENTS)],
                home_site=sites[index % 2],
            )
        people.append(user)
    return people


DEMO_LOGIN_NAMES = {"Lena Fischer", "Jonas Weber", "Maya Johnson", "Amara Okafor"}


def _logins(session: Session, actor: Actor, sites: list[Site]) -> list[DemoLogin]:
    specs = [
        ("employee", "lena.fischer@example.com", "Lena Fischer", None, sites[0]),
        ("coordinator (Berlin)", "jonas.weber@example.com", "Jonas Weber", sites[0], sites[0]),
        ("coordinator (New York)", "maya.johnson@example.com", "Maya Johnson", sites[1], sites[1]),
        ("admin", "amara.okafor@example.com", "Amara Okafor", None, sites[0]),
    ]
    logins = []
    for role, email, name, coordinated, home in specs:
        user = accounts.find_by_email(session, email)
        if user is None:
            user = accounts.create_user(
                session, actor, email=email, name=name, department="Operations", home_site=home
            )
        if user.password_hash is None:
            user.password_hash = accounts.hash_password(DEMO_PASSWORD)
        if coordinated is not None:
            accounts.grant_role(session, actor, user, Role.COORDINATOR, coordinated)
        if role == "admin":
            accounts.grant_role(session, actor, user, Role.ADMIN)
        logins.append(DemoLogin(role, email, name))
    return logins


def _demo_feed(session: Session, sites: list[Site]) -> None:
    """Lena Fischer follows a Berlin room in her calendar, so her Calendar feeds page is not empty
    (its address was never shown: "New address" gives her one; "Subscribe to my bookings" is a
    single click)."""
    from portal.models.feeds import CalendarFeed
    from portal.services import feeds

    lena = session.scalar(select(User).where(User.email == "lena.fischer@example.com"))
    room = session.scalar(select(Room).where(Room.site_id == sites[0].id).order_by(Room.name))
    if lena is None or room is None:
        return
    if session.scalar(select(CalendarFeed.id).where(CalendarFeed.owner_id == lena.id)):
        return
    feeds.create(
        session,
        Actor.system("seed-demo"),
        lena,
        "resource",
        privacy="details",
        resource=room,
        now=utcnow(),
    )
