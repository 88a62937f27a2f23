"""Calendar subscription feeds: an iCalendar address per room, desk, person or site lobby that a
calendar program polls. Only the SHA-256 of each feed's token is stored."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow


class FeedKind(enum.StrEnum):
    RESOURCE = "resource"  # every booking of one room or desk
    MINE = "mine"  # the owner's own bookings and the visits they host
    VISITORS = "visitors"  # a site's expected visitors (its coordinators and admins)


class FeedPrivacy(enum.StrEnum):
    BUSY = "busy"  # every event reads "Busy"
    DETAILS = "details"  # titles and who booked, as far as the owner may see them in Foyer


class CalendarFeed(Base):
    __tablename__ = "calendar_feeds"
    __table_args__ = (Index("ix_calendar_feeds_owner", "owner_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))
    resource_id: Mapped[int | None] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    privacy: Mapped[str] = mapped_column(String(10), default=FeedPrivacy.BUSY)
    # None once revoked; a regenerated address replaces it, so the old one stops working at once.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    token_issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    owner = relationship("User", foreign_keys=[owner_id], lazy="joined")
    resource = relationship("Resource")
    site = relationship("Site")

    @property
    def active(self) -> bool:
        return self.token_hash is not None and self.revoked_at is None
