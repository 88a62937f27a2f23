"""Bookings of rooms and desks, recurring series, and the rules each site books under."""

from __future__ import annotations

import enum
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    and_,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow


class BookingStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for a coordinator's approval; holds the slot
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"  # checked in and ended early; the rest of the slot was freed
    CANCELLED = "cancelled"
    DECLINED = "declined"  # a coordinator said no
    RELEASED = "released"  # a no-show, released automatically; kept for the numbers


# Statuses that hold their time slot. The database constraint uses the same list.
HOLDING_STATUSES = (BookingStatus.PENDING, BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN)
# No booking is longer than this (the rules keep each within one local day, 25 hours on a DST
# day, and buffers are at most two hours). Window queries use it as a lower bound on start_at so
# they read one day of the index, not a resource's whole history.
LONGEST_BOOKING = timedelta(hours=27)


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("created_by_id", "idempotency_key"),
        Index("ix_bookings_resource_start", "resource_id", "start_at"),
        Index("ix_bookings_user_start", "user_id", "start_at"),
        Index("ix_bookings_status_start", "status", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # whose booking it is
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # differs when on behalf
    title: Mapped[str] = mapped_column(String(200), default="")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # end_at plus the resource's buffer: what the no-overlap constraint compares.
    blocked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=BookingStatus.CONFIRMED)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_via: Mapped[str | None] = mapped_column(String(20))  # portal | qr | kiosk | badge
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("booking_series.id", ondelete="SET NULL"), index=True
    )
    # The occurrence's original start (RECURRENCE-ID), even after it is moved.
    occurrence_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    # An equipment loan's days are bookings of the equipment; cancelling the loan cancels them.
    loan_id: Mapped[int | None] = mapped_column(
        ForeignKey("equipment_loans.id", ondelete="SET NULL"), index=True
    )
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # iCalendar SEQUENCE
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}

    resource = relationship("Resource", lazy="joined")
    user = relationship("User", foreign_keys=[user_id], lazy="joined")
    created_by = relationship("User", foreign_keys=[created_by_id])
    series = relationship("BookingSeries", back_populates="bookings")

    @property
    def holds_slot(self) -> bool:
        return self.status in HOLDING_STATUSES


class BookingSeries(Base):
    """A recurring booking: an RRULE in the site's zone plus skipped dates (lossless with calendars).

    Occurrences are materialised as Booking rows up to `materialised_until` (a rolling horizon)."""

    __tablename__ = "booking_series"
    __table_args__ = (UniqueConstraint("created_by_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200), default="")
    time_zone: Mapped[str] = mapped_column(String(64))
    first_start_local: Mapped[datetime] = mapped_column()  # naive, in time_zone (DTSTART)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    rrule: Mapped[str] = mapped_column(String(500))  # e.g. FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10
    skipped_dates: Mapped[list[str]] = mapped_column(JSON, default=list)  # EXDATE, ISO dates
    materialised_until: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    missed_in_a_row: Mapped[int] = mapped_column(Integer, default=0)
    trim_suggested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    resource = relationship("Resource")
    user = relationship("User", foreign_keys=[user_id])
    bookings: Mapped[list[Booking]] = relationship(back_populates="series")


class BookingPolicy(Base):
    """A site's booking rules. One row per site; the defaults are what most offices use."""

    __tablename__ = "booking_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), unique=True)
    desk_horizon_days: Mapped[int] = mapped_column(Integer, default=14)
    room_horizon_days: Mapped[int] = mapped_column(Integer, default=90)
    min_minutes: Mapped[int] = mapped_column(Integer, default=15)
    room_max_minutes: Mapped[int] = mapped_column(Integer, default=8 * 60)
    one_desk_per_day: Mapped[bool] = mapped_column(Boolean, default=True)
    max_upcoming_room_bookings: Mapped[int] = mapped_column(Integer, default=20)
    midday: Mapped[time] = mapped_column(Time, default=time(13, 0))  # splits morning/afternoon
    check_in_opens_minutes: Mapped[int] = mapped_column(Integer, default=15)  # before the start
    check_in_grace_minutes: Mapped[int] = mapped_column(Integer, default=15)  # after the start
    show_booker_names: Mapped[bool] = mapped_column(Boolean, default=True)


class Blackout(Base):
    """A period when a site (or one resource) cannot be booked: holidays, maintenance."""

    __tablename__ = "blackouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")


def overlaps_window(start: datetime, end: datetime, until: Any = None) -> ColumnElement[bool]:
    """SQL: the booking's [start_at, until) overlaps [start, end); `until` defaults to end_at
    (pass Booking.blocked_until to include buffers)."""
    until = Booking.end_at if until is None else until
    return and_(Booking.start_at < end, until > start, Booking.start_at > start - LONGEST_BOOKING)
