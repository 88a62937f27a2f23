"""Factories with sensible defaults, so tests say only what matters to them."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Building, Desk, Floor, Role, Room, Site, User
from portal.services import accounts
from portal.services.audit import Actor

PASSWORD = "correct horse battery"  # noqa: S105
_seq = itertools.count(1)
_hash_cache: dict[str, str] = {}


def site(session: Session, slug: str = "berlin", **kwargs: Any) -> Site:
    existing = session.scalar(select(Site).where(Site.slug == slug))
    if existing:
        return existing
    values: dict[str, Any] = {
        "name": slug.replace("-", " ").title(),
        "time_zone": "Europe/Berlin",
        "address": "Somewhere 1",
        "opens_at": time(8),
        "closes_at": time(19),
    }
    values.update(kwargs)
    new = Site(slug=slug, **values)
    session.add(new)
    session.flush()
    return new


def floor(session: Session, of_site: Site | None = None, level: int = 1) -> Floor:
    of_site = of_site or site(session)
    building = Building(site=of_site, name=f"Building {next(_seq)}")
    new = Floor(building=building, level=level, name=f"Floor {level}")
    session.add(new)
    session.flush()
    return new


def user(
    session: Session,
    *,
    name: str | None = None,
    email: str | None = None,
    password: str | None = PASSWORD,
    department: str = "Engineering",
    admin: bool = False,
    coordinator_of: Site | None = None,
    active: bool = True,
    home_site: Site | None = None,
) -> User:
    n = next(_seq)
    new = accounts.create_user(
        session,
        Actor.system("tests"),
        email=email or f"person{n}@example.com",
        name=name or f"Person {n}",
        department=department,
        home_site=home_site,
    )
    if password is not None:
        # Hashing is slow on purpose; tests reuse one hash per password.
        if password not in _hash_cache:
            _hash_cache[password] = accounts.hash_password(password)
        new.password_hash = _hash_cache[password]
    if admin:
        accounts.grant_role(session, Actor.system("tests"), new, Role.ADMIN)
    if coordinator_of is not None:
        accounts.grant_role(session, Actor.system("tests"), new, Role.COORDINATOR, coordinator_of)
    new.active = active
    session.flush()
    return new


def desk(
    session: Session, on_floor: Floor | None = None, name: str | None = None, **kwargs: Any
) -> Desk:
    on_floor = on_floor or floor(session)
    n = next(_seq)
    new = Desk(
        site_id=on_floor.building.site_id,
        floor=on_floor,
        name=name or f"D{n}",
        qr_code=f"qr-d{n}",
        plan_x=0.1 + (n % 8) * 0.1,
        plan_y=0.3,
        **kwargs,
    )
    session.add(new)
    session.flush()
    return new


def room(
    session: Session,
    on_floor: Floor | None = None,
    name: str | None = None,
    capacity: int = 6,
    **kwargs: Any,
) -> Room:
    on_floor = on_floor or floor(session)
    n = next(_seq)
    new = Room(
        site_id=on_floor.building.site_id,
        floor=on_floor,
        name=name or f"Room {n}",
        capacity=capacity,
        equipment=kwargs.pop("equipment", ["display"]),
        qr_code=f"qr-r{n}",
        **kwargs,
    )
    session.add(new)
    session.flush()
    return new


def weekday_ahead(zone_name: str = "Europe/Berlin", days: int = 1) -> date:
    """A working day `days` or more ahead in the zone (so rules about weekends never interfere)."""
    day = datetime.now(ZoneInfo(zone_name)).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0, zone_name: str = "Europe/Berlin") -> datetime:
    """A wall-clock time at the site, as the UTC instant the app stores."""
    from portal.timezones import to_utc

    return to_utc(datetime.combine(day, time(hour, minute)), ZoneInfo(zone_name))
