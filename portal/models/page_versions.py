"""Version counters for what the desk plan and room timeline show, bumped in the same transaction
as every change to it, so a cached page can be checked against the database in one tiny query.

A counter row per scope: `b:<floor id>:<UTC date>` (bookings of a floor's resources touching that
UTC date), `r:<floor id>` (the floor's desks and rooms), `spaces` (sites, buildings, floors,
booking policies), `people` (names and departments) and `all` (a bulk UPDATE or DELETE of any of
these through the ORM, whose rows we cannot see). Counters only ever grow, so the sum of a page's
counters changes whenever anything the page shows changes.

The changes are collected as the session flushes and written in one sorted upsert just before the
commit: the row locks are taken last and in one order, so two bookings never wait on each other
here, and a rolled-back transaction bumps nothing."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, event, inspect, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.db import Base
from portal.models.bookings import Booking, BookingPolicy
from portal.models.people import User
from portal.models.sites import Building, Floor, Site
from portal.models.spaces import Resource

PENDING = "foyer.page_versions"  # session.info: scopes to bump at commit
_RESOURCE_DAYS = "foyer.page_versions.resource_days"  # session.info: {resource id: {UTC dates}}
_MAX_DAYS = 400  # a booking longer than this (none is) bumps the floor's resource scope instead


class PageVersion(Base):
    __tablename__ = "page_versions"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


def booking_scope(floor_id: int, day: date) -> str:
    return f"b:{floor_id}:{day.isoformat()}"


def resource_scope(floor_id: int) -> str:
    return f"r:{floor_id}"


def utc_dates(start: datetime, end: datetime) -> list[date]:
    """The UTC dates an interval [start, end) touches (at least the start's)."""
    first = start.astimezone(UTC).date()
    last = max(end.astimezone(UTC) - timedelta(microseconds=1), start).astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _values(state: Any, name: str) -> list[Any]:
    """The attribute's current value and, for a changed row, the value it had."""
    history = state.attrs[name].load_history()
    values = [*history.added, *history.unchanged, *history.deleted]
    return [v for v in values if v is not None]


def _note_booking(session: Session, booking: Booking) -> None:
    state = inspect(booking)
    starts = _values(state, "start_at")
    ends = _values(state, "end_at") + _values(state, "blocked_until")
    if not starts or not ends:
        return
    days: set[date] = set()
    start, end = min(starts), max(ends)
    if (end - start).days > _MAX_DAYS:
        session.info.setdefault(PENDING, set()).add("all")
        return
    days.update(utc_dates(start, end))
    by_resource = session.info.setdefault(_RESOURCE_DAYS, {})
    for resource_id in _values(state, "resource_id"):
        by_resource.setdefault(resource_id, set()).update(days)


def _after_flush(session: Session, _context: Any) -> None:
    pending: set[str] = session.info.setdefault(PENDING, set())
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if isinstance(obj, Booking):
            _note_booking(session, obj)
        elif isinstance(obj, Resource):
            floors = _values(inspect(obj), "floor_id")
            pending.update(resource_scope(f) for f in floors)
        elif isinstance(obj, Site | Building | Floor | BookingPolicy):
            pending.add("spaces")
        elif isinstance(obj, User):
            state = inspect(obj)
            changed = any(state.attrs[n].history.has_changes() for n in ("name", "department"))
            if changed or obj in session.deleted:
                pending.add("people")


_TRACKED = (Booking, Resource, Site, Building, Floor, BookingPolicy, User)


def _do_orm_execute(state: Any) -> None:
    # A bulk UPDATE or DELETE names no rows we could follow: every page is out of date.
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper and issubclass(mapper.class_, _TRACKED):
        state.session.info.setdefault(PENDING, set()).add("all")


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: its changes are bumped with the whole transaction's
    session.flush()  # the last changes: their scopes are noted by _after_flush
    pending: set[str] = session.info.pop(PENDING, set())
    by_resource: dict[int, set[date]] = session.info.pop(_RESOURCE_DAYS, {})
    if by_resource:
        floors = _floors_of(session, list(by_resource))
        for resource_id, days in by_resource.items():
            floor_id = floors.get(resource_id)
            if floor_id is not None:
                pending.update(booking_scope(floor_id, d) for d in days)
    if pending:
        bump(session, sorted(pending))


def _floors_of(session: Session, resource_ids: list[int]) -> dict[int, int | None]:
    floors: dict[int, int | None] = {}
    missing = []
    for resource_id in resource_ids:
        resource = session.identity_map.get(session.identity_key(Resource, resource_id))
        if resource is not None and "floor_id" in inspect(resource).dict:
            floors[resource_id] = resource.floor_id
        else:
            missing.append(resource_id)
    if missing:
        rows = session.execute(
            Resource.__table__.select()
            .with_only_columns(Resource.__table__.c.id, Resource.__table__.c.floor_id)
            .where(Resource.__table__.c.id.in_(missing))
        )
        floors.update({row.id: row.floor_id for row in rows})
    return floors


def bump(session: Session, keys: list[str]) -> None:
    """Raise each counter (creating it), in one statement, in sorted order. By a random step, not
    by one: after a database is restored from a backup, new changes cannot bring a counter back to
    a value some process cached for other data."""
    step = secrets.randbelow(2**31) + 1
    ordered = sorted(set(keys))
    # Plain SQL both databases share (PostgreSQL 9.5+, SQLite 3.24+): compiled once, not per call.
    values = ", ".join(f"(:k{i}, :step)" for i in range(len(ordered)))
    params: dict[str, object] = {f"k{i}": key for i, key in enumerate(ordered)}
    params["step"] = step
    session.execute(
        text(
            f"INSERT INTO page_versions (key, version) VALUES {values} "  # noqa: S608 - placeholders  # nosec B608
            "ON CONFLICT (key) DO UPDATE SET version = page_versions.version + excluded.version"
        ),
        params,
    )


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the whole transaction is over: nothing more to bump
        session.info.pop(PENDING, None)
        session.info.pop(_RESOURCE_DAYS, None)


event.listen(Session, "after_flush", _after_flush)
event.listen(Session, "before_commit", _before_commit)
event.listen(Session, "do_orm_execute", _do_orm_execute)
event.listen(Session, "after_transaction_end", _after_transaction_end)
