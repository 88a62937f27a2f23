"""Room calendar links: a room (or desk pool) tied to a calendar on a CalDAV server, Microsoft 365 or
Google, its sync status, and the map between Foyer bookings and the events on that calendar."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow


class Provider(enum.StrEnum):
    CALDAV = "caldav"
    M365 = "m365"
    GOOGLE = "google"


class LinkState(enum.StrEnum):
    OK = "ok"  # the last sync worked
    RETRYING = "retrying"  # a passing failure (timeout, 5xx): retried with backoff
    FAILING = "failing"  # refused (401, malformed data) or too many failures: needs a look
    PAUSED = "paused"  # an admin stopped it; nothing is synced


class Origin(enum.StrEnum):
    FOYER = "foyer"  # booked in Foyer and pushed to the calendar
    REMOTE = "remote"  # created on the calendar and pulled in as a booking


class CalendarLink(Base):
    """One resource's calendar elsewhere. Settings that are not secret (URL, user name, mailbox,
    calendar id, base URLs) are plain JSON; the password, client secret or service-account JSON
    must be replayed, so it is sealed with the app's SECRET_KEY (portal/services/secret_box.py)."""

    __tablename__ = "calendar_links"
    __table_args__ = (Index("ix_calendar_links_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), unique=True
    )
    provider: Mapped[str] = mapped_column(String(10))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_sealed: Mapped[str] = mapped_column(Text, default="")
    sync_token: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default=LinkState.OK)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set while a worker syncs it (a lease: a crashed worker's claim runs out by itself).
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    resource = relationship("Resource", lazy="joined")
    created_by = relationship("User")


class SyncedEvent(Base):
    """One booking and its event on the linked calendar. `pushed_sequence` is the booking's
    SEQUENCE the calendar holds (None: push it again); `etag` is what the server last gave us, so
    our own writes coming back in the next listing are recognised and ignored. An event that was
    declined keeps its row (booking_id None, `declined_reason` set) so its organiser is told once."""

    __tablename__ = "synced_events"
    __table_args__ = (
        UniqueConstraint("link_id", "uid"),
        UniqueConstraint("link_id", "remote_id"),
        UniqueConstraint("link_id", "booking_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("calendar_links.id", ondelete="CASCADE"))
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="SET NULL"), index=True
    )
    remote_id: Mapped[str | None] = mapped_column(String(500))
    uid: Mapped[str] = mapped_column(String(500))
    etag: Mapped[str | None] = mapped_column(String(200))
    pushed_sequence: Mapped[int | None] = mapped_column(Integer)
    pushed_status: Mapped[str] = mapped_column(String(20), default="")
    origin: Mapped[str] = mapped_column(String(10))
    declined_reason: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    link = relationship(CalendarLink)
    booking = relationship("Booking")
