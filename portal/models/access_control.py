"""Badge and access-control systems: each site's connection to its access-control system, the
time-boxed credentials (grants) Foyer asks it for, and the door events it reports back."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow


class GrantMoment(enum.StrEnum):
    INVITATION = "invitation"  # the credential is created when the visitor is invited
    CHECK_IN = "check_in"  # ... or only once they checked in at the kiosk


class AccessSettings(Base):
    """A site's access-control system. The API key and the webhook secret must be replayed, so
    they are sealed with the app's SECRET_KEY (portal/services/secret_box.py), never shown again."""

    __tablename__ = "access_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)  # grants for visitors
    base_url: Mapped[str] = mapped_column(String(300), default="")
    api_key_sealed: Mapped[str] = mapped_column(Text, default="")
    webhook_secret_sealed: Mapped[str] = mapped_column(Text, default="")
    door_group: Mapped[str] = mapped_column(String(120), default="")
    grant_at: Mapped[str] = mapped_column(String(12), default=GrantMoment.CHECK_IN)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    site = relationship("Site", lazy="joined")


class GrantState(enum.StrEnum):
    PENDING = "pending"  # to be created at the access-control system
    ACTIVE = "active"  # created; credential_id is the system's id
    REVOKING = "revoking"  # to be revoked there
    REVOKED = "revoked"  # done (or never created: nothing to revoke)
    FAILED = "failed"  # gave up, or refused for good; an admin retries once the cause is fixed


class AccessGrant(Base):
    """One time-boxed credential for a visit (or an employee) at a site. Workers claim a due grant
    by counting the attempt and moving next_attempt_at a lease ahead, then call the system with no
    transaction open (see portal/services/access_control.py)."""

    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("visits.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    door_group: Mapped[str] = mapped_column(String(120), default="")
    state: Mapped[str] = mapped_column(String(10), default=GrantState.PENDING)
    credential_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site = relationship("Site", lazy="joined")
    visit = relationship("Visit")
    user = relationship("User")


class DoorEvent(Base):
    """A badge read reported by the site's system (webhook or CSV import). The system's event id
    is unique per site, so a replayed or re-imported event is recognised and does nothing."""

    __tablename__ = "door_events"
    __table_args__ = (
        UniqueConstraint("site_id", "event_id"),
        Index("ix_door_events_site_id_occurred_at", "site_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    person: Mapped[str] = mapped_column(String(254))  # an e-mail or a credential id Foyer issued
    door: Mapped[str] = mapped_column(String(200), default="")
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(10))  # webhook | csv
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(300), default="")  # what it did, in words

    user = relationship("User")
