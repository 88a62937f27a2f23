"""Daily roll-ups of bookings for the dashboards, and the session events that keep them honest.

A dashboard over a quarter of a busy site would otherwise aggregate a hundred thousand bookings per
page. Instead, each (site, local day) is summed once into small tables (desks by floor and zone, rooms
by room, room minutes by floor and hour) and a row in `kpi_rollup_days` says that day is done.

Any change to a booking deletes the markers of the days it touched (its site's local days around
its start and end), in the same transaction, just before the commit; a bulk UPDATE or DELETE of
bookings, or a desk or room moved to another floor or zone, deletes every marker of the site (or of
all sites). The dashboards recompute the unmarked days of a period before reading
(portal/services/dashboards/rollups.py), so the numbers never lag behind the bookings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, bindparam, event, inspect, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.db import Base, UTCDateTime, utcnow
from portal.models.bookings import Booking
from portal.models.spaces import Desk, Room

_DIRTY = "foyer.kpi_rollups.dirty"  # session.info: {resource id: {UTC dates}}
_DIRTY_SITES = "foyer.kpi_rollups.dirty_sites"  # session.info: {site id, or 0 for every site}
_MAX_DAYS = 400  # a change spanning more days than this (none does) resets the whole site


class KpiRollupDay(Base):
    """This site's local day is summed into the roll-up tables (absent: recompute it)."""

    __tablename__ = "kpi_rollup_days"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KpiDeskDay(Base):
    """Desk bookings of one local day, per floor and zone. Desk-days count each desk once a day."""

    __tablename__ = "kpi_desk_days"
    __table_args__ = (Index("ix_kpi_desk_days_site_day", "site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    floor_id: Mapped[int | None] = mapped_column(ForeignKey("floors.id", ondelete="CASCADE"))
    zone: Mapped[str] = mapped_column(String(80), default="")
    booked_desk_days: Mapped[int] = mapped_column(Integer, default=0)
    checked_in_desk_days: Mapped[int] = mapped_column(Integer, default=0)
    no_show_bookings: Mapped[int] = mapped_column(Integer, default=0)
    bookings: Mapped[int] = mapped_column(Integer, default=0)


class KpiRoomDay(Base):
    """Room bookings of one local day, per room (minutes are planned minutes)."""

    __tablename__ = "kpi_room_days"
    __table_args__ = (Index("ix_kpi_room_days_site_day", "site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    bookings: Mapped[int] = mapped_column(Integer, default=0)
    booked_minutes: Mapped[int] = mapped_column(Integer, default=0)
    ghost_bookings: Mapped[int] = mapped_column(Integer, default=0)
    ghost_minutes: Mapped[int] = mapped_column(Integer, default=0)
    released_bookings: Mapped[int] = mapped_column(Integer, default=0)


class KpiRoomHour(Base):
    """Booked room minutes of one local day and local hour, per floor (for the heatmap)."""

    __tablename__ = "kpi_room_hours"
    __table_args__ = (Index("ix_kpi_room_hours_site_day", "site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    floor_id: Mapped[int | None] = mapped_column(ForeignKey("floors.id", ondelete="CASCADE"))
    hour: Mapped[int] = mapped_column(Integer)
    booked_minutes: Mapped[int] = mapped_column(Integer, default=0)


# ---------------------------------------------------------------------------------------------
# Keeping them honest


def _values(state: Any, name: str) -> list[Any]:
    history = state.attrs[name].load_history()
    return [v for v in (*history.added, *history.unchanged, *history.deleted) if v is not None]


def _note_booking(session: Session, booking: Booking) -> None:
    state = inspect(booking)
    instants = _values(state, "start_at") + _values(state, "end_at")
    if not instants:
        return
    # A local day is at most a day either side of a UTC date: mark the neighbours too.
    first = min(instants).astimezone(UTC).date() - timedelta(days=1)
    last = max(instants).astimezone(UTC).date() + timedelta(days=1)
    dirty = session.info.setdefault(_DIRTY, {})
    for resource_id in _values(state, "resource_id"):
        if (last - first).days > _MAX_DAYS:
            session.info.setdefault(_DIRTY_SITES, set()).add(0)
            return
        days = dirty.setdefault(resource_id, set())
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))


def _after_flush(session: Session, _context: Any) -> None:
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if isinstance(obj, Booking):
            _note_booking(session, obj)
        elif isinstance(obj, Desk | Room) and obj not in session.new:
            state = inspect(obj)
            names = ("floor_id", "zone") if isinstance(obj, Desk) else ("floor_id",)
            if obj in session.deleted or any(state.attrs[n].history.has_changes() for n in names):
                session.info.setdefault(_DIRTY_SITES, set()).add(obj.site_id)


def _do_orm_execute(state: Any) -> None:
    # A bulk UPDATE or DELETE names no rows we could follow: every day may be stale.
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper and issubclass(mapper.class_, Booking):
        state.session.info.setdefault(_DIRTY_SITES, set()).add(0)


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.flush()
    dirty: dict[int, set[date]] = session.info.pop(_DIRTY, {})
    sites: set[int] = session.info.pop(_DIRTY_SITES, set())
    if 0 in sites:
        session.execute(text("DELETE FROM kpi_rollup_days"))
        return
    if sites:
        session.execute(
            text("DELETE FROM kpi_rollup_days WHERE site_id IN :sites").bindparams(
                _expanding("sites")
            ),
            {"sites": sorted(sites)},
        )
    if dirty:
        days = sorted(set().union(*dirty.values()))
        session.execute(
            text(
                "DELETE FROM kpi_rollup_days WHERE day IN :days AND site_id IN "
                "(SELECT site_id FROM resources WHERE id IN :resources)"
            ).bindparams(_expanding("days", Date()), _expanding("resources")),
            {"days": days, "resources": sorted(dirty)},
        )


def _expanding(name: str, type_: Any = None) -> Any:
    return bindparam(name, expanding=True, type_=type_)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_DIRTY, None)
        session.info.pop(_DIRTY_SITES, None)


event.listen(Session, "after_flush", _after_flush)
event.listen(Session, "before_commit", _before_commit)
event.listen(Session, "do_orm_execute", _do_orm_execute)
event.listen(Session, "after_transaction_end", _after_transaction_end)
