"""Visitors: lobby kiosks, visits (invited or walk-in), visitor agreements, the deny list, roll-call
marks and the in-portal notices that tell a host their visitor has arrived."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow


class KioskDevice(Base):
    """A lobby tablet. It proves who it is with a long-lived token (only its SHA-256 is stored),
    obtained once by entering a short pairing code that expires within minutes."""

    __tablename__ = "kiosk_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    pairing_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    pairing_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The lobby's label printer: socket://host:9100 or ipp://host:631/path; "" prints in the browser
    printer_uri: Mapped[str] = mapped_column(String(300), default="")
    label_stock: Mapped[str] = mapped_column(String(10), default="62x100")

    site = relationship("Site", lazy="joined")

    @property
    def is_paired(self) -> bool:
        return self.token_hash is not None and self.revoked_at is None


class VisitStatus(enum.StrEnum):
    EXPECTED = "expected"  # invited, not arrived yet
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    CANCELLED = "cancelled"  # the host withdrew the invitation
    DENIED = "denied"  # stopped by the deny list at the kiosk


class VisitKind(enum.StrEnum):
    INVITED = "invited"
    WALK_IN = "walk_in"


class CheckoutMethod(enum.StrEnum):
    KIOSK = "kiosk"
    HOST = "host"
    COORDINATOR = "coordinator"
    END_OF_DAY = "end_of_day"  # still checked in when the site closed


class BadgeState(enum.StrEnum):
    NONE = "none"  # no badge (yet), or printing in the browser
    QUEUED = "queued"
    PRINTING = "printing"  # a worker holds it; reclaimed if that worker died
    PRINTED = "printed"
    FAILED = "failed"  # the printer did not answer; retried, and the lobby is told


class Visit(Base):
    """One person's visit to a site. Personal fields are blanked by the retention job, which sets
    erased_at and keeps the row (site, day, kind, status, host) for anonymous counts."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_site_day", "site_id", "local_date"),
        Index("ix_visits_site_status", "site_id", "status"),
        Index("ix_visits_host", "host_id", "local_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(10), default=VisitKind.INVITED)
    status: Mapped[str] = mapped_column(String(12), default=VisitStatus.EXPECTED)
    visitor_name: Mapped[str] = mapped_column(String(200), default="")
    visitor_email: Mapped[str] = mapped_column(String(254), default="")  # lower-cased
    visitor_company: Mapped[str] = mapped_column(String(200), default="")
    purpose: Mapped[str] = mapped_column(String(500), default="")
    host_note: Mapped[str] = mapped_column(Text, default="")  # the host's note to the visitor
    # Normalised forms (case, accents and spacing folded) for deny-list matches and look-ups
    name_key: Mapped[str] = mapped_column(String(200), default="", index=True)
    email_key: Mapped[str] = mapped_column(String(254), default="", index=True)
    expected_start: Mapped[datetime] = mapped_column(UTCDateTime)
    expected_end: Mapped[datetime] = mapped_column(UTCDateTime)
    local_date: Mapped[date] = mapped_column(Date)  # the visit's day in the site's zone
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)  # invitation code
    # The kiosk form's one-time key: a double tap on "check in" finds the visit it made
    submission_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_device_id: Mapped[int | None] = mapped_column(
        ForeignKey("kiosk_devices.id", ondelete="SET NULL")
    )
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checkout_method: Mapped[str | None] = mapped_column(String(12))
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("visitor_agreements.id"))
    signed_name: Mapped[str] = mapped_column(String(200), default="")
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    badge_state: Mapped[str] = mapped_column(String(10), default=BadgeState.NONE)
    badge_error: Mapped[str] = mapped_column(String(500), default="")
    badge_attempts: Mapped[int] = mapped_column(Integer, default=0)
    denied_by_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("deny_list_entries.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site = relationship("Site", lazy="joined")
    host = relationship("User", foreign_keys=[host_id], lazy="joined")
    agreement = relationship("VisitorAgreement")


class VisitImage(Base):
    """A visitor's drawn signature (PNG) or photo (JPEG), re-encoded on the way in; kept apart so
    lists of visits never load them."""

    __tablename__ = "visit_images"
    __table_args__ = (UniqueConstraint("visit_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # signature | photo
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VisitorAgreement(Base):
    """A version of a site's visitor agreement (NDA, safety notice). Versions are never edited:
    a change is a new version, and returning visitors sign again only then."""

    __tablename__ = "visitor_agreements"
    __table_args__ = (UniqueConstraint("site_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class DenyListEntry(Base):
    """A person who must not be let in without reception: matched on name or e-mail, ignoring
    case, accents and spacing. site_id None applies to every site."""

    __tablename__ = "deny_list_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    name_key: Mapped[str] = mapped_column(String(200), default="", index=True)
    email_key: Mapped[str] = mapped_column(String(254), default="", index=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    site = relationship("Site", lazy="joined")


class RollCallMark(Base):
    """During an evacuation: this person (a visit or an employee) was seen safe today."""

    __tablename__ = "roll_call_marks"
    __table_args__ = (UniqueConstraint("site_id", "local_date", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    local_date: Mapped[date] = mapped_column(Date)
    subject: Mapped[str] = mapped_column(String(40))  # "visit:12" or "user:5"
    marked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notice(Base):
    """A live notice in the portal header (a visitor arrived, a deny-list stop); the header asks
    for unread ones every few seconds, so every app instance sees them."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))  # visitor_arrived | deny_list_stop | ...
    message: Mapped[str] = mapped_column(String(400))
    link: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
