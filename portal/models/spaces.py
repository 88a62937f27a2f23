"""Bookable resources: meeting rooms, desks (and, later, loanable equipment) share one `resources`
table, so one booking table and one double-booking constraint serve them all."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow


class ResourceKind(enum.StrEnum):
    ROOM = "room"
    DESK = "desk"


class DeskAssignment(enum.StrEnum):
    HOT = "hot"  # anyone may book it
    ASSIGNED = "assigned"  # belongs to one person, who books it implicitly


class Resource(Base):
    __tablename__ = "resources"
    __table_args__ = (UniqueConstraint("floor_id", "kind", "name"),)
    __mapper_args__ = {"polymorphic_on": "kind"}

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    floor_id: Mapped[int | None] = mapped_column(
        ForeignKey("floors.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    # Disabled resources keep their history; they are just not offered.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str] = mapped_column(String(200), default="")
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=0)
    # Departments allowed to book; empty means everyone.
    allowed_departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Where it sits on the floor plan, as fractions of the plan's width and height.
    plan_x: Mapped[float | None] = mapped_column(Float)
    plan_y: Mapped[float | None] = mapped_column(Float)
    # Printed as a QR code on the desk or room door; not a secret (check-in still needs sign-in).
    qr_code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site = relationship("Site")
    floor = relationship("Floor")


class Room(Resource):
    __tablename__ = "rooms"
    __mapper_args__ = {"polymorphic_identity": ResourceKind.ROOM.value}

    id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    capacity: Mapped[int] = mapped_column(Integer)
    equipment: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A re-encoded JPEG under the instance folder's uploads, stored under a random name.
    photo_file: Mapped[str | None] = mapped_column(String(64))


class Desk(Resource):
    __tablename__ = "desks"
    __mapper_args__ = {"polymorphic_identity": ResourceKind.DESK.value}

    id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    zone: Mapped[str] = mapped_column(String(80), default="")
    attributes: Mapped[list[str]] = mapped_column(JSON, default=list)
    assignment: Mapped[str] = mapped_column(String(10), default=DeskAssignment.HOT)
    assigned_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    assigned_user = relationship("User", foreign_keys=[assigned_user_id])
