"""Factories with sensible defaults, so tests say only what matters to them."""

from __future__ import annotations

import itertools
from datetime import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Building, Floor, Role, Site, User
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
