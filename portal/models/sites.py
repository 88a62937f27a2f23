"""Places: sites (an office with its own time zone and hours), their buildings and floors."""

from __future__ import annotations

from datetime import time

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(500), default="")
    time_zone: Mapped[str] = mapped_column(String(64))  # IANA name, e.g. Europe/Berlin
    opens_at: Mapped[time] = mapped_column(Time, default=time(8, 0))
    closes_at: Mapped[time] = mapped_column(Time, default=time(19, 0))
    # ISO weekdays the site is open, e.g. "12345" for Monday to Friday
    open_weekdays: Mapped[str] = mapped_column(String(7), default="12345")
    # Visitors: how to find the lobby (in invitations), whether the kiosk takes a photo, and how
    # many days visitors' personal data is kept after their visit.
    visitor_directions: Mapped[str] = mapped_column(Text, default="")
    visitor_photo: Mapped[bool] = mapped_column(Boolean, default=False)
    visitor_retention_days: Mapped[int] = mapped_column(Integer, default=90)

    buildings: Mapped[list[Building]] = relationship(
        back_populates="site", order_by="Building.name", cascade="all, delete-orphan"
    )


class Building(Base):
    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))

    site: Mapped[Site] = relationship(back_populates="buildings")
    floors: Mapped[list[Floor]] = relationship(
        back_populates="building", order_by="Floor.level", cascade="all, delete-orphan"
    )


class Floor(Base):
    __tablename__ = "floors"
    __table_args__ = (UniqueConstraint("building_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[int] = mapped_column(Integer)
    # The floor plan: a re-encoded PNG/JPEG or a sanitised SVG under the instance folder's uploads,
    # stored under a random name; width and height give the aspect ratio markers are placed on.
    plan_file: Mapped[str | None] = mapped_column(String(64))
    plan_content_type: Mapped[str | None] = mapped_column(String(40))
    plan_width: Mapped[int | None] = mapped_column(Integer)
    plan_height: Mapped[int | None] = mapped_column(Integer)

    # A floor is always shown with its building ("Torhaus · Floor 1"): load them together.
    building: Mapped[Building] = relationship(back_populates="floors", lazy="joined")
