"""The mail outbox: messages are written in the same transaction as the change they announce, and
delivered after commit by a job (SMTP when configured; otherwise kept here for the admin to read)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, utcnow


class OutboxStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    KEPT = "kept"  # no SMTP server configured: readable in the admin's outbox
    FAILED = "failed"  # gave up after retries


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[str] = mapped_column(String(120), default="")
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text, default="")
    ics_body: Mapped[str | None] = mapped_column(Text)  # an iMIP invitation, when there is one
    ics_method: Mapped[str | None] = mapped_column(String(20))  # REQUEST | CANCEL
    # One attached file, e.g. the QR code of a visitor's invitation (shown inline by cid)
    attachment_name: Mapped[str | None] = mapped_column(String(100))
    attachment_type: Mapped[str | None] = mapped_column(String(60))
    attachment_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    related_type: Mapped[str] = mapped_column(String(40), default="")
    related_id: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
