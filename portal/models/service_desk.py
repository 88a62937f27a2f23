"""The service desk: a catalog of things to ask for, stock per site, requests and facility issues
(one `tickets` table, so the coordinator's inbox is one indexed query), their threads, SLA policies,
vendors, purchase orders, tracked assets and loanable equipment."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow
from portal.models.spaces import Resource


class ItemCategory(enum.StrEnum):
    OFFICE_SUPPLIES = "office_supplies"
    IT_PERIPHERALS = "it_peripherals"
    FURNITURE = "furniture"
    EQUIPMENT = "equipment"
    WELCOME_KITS = "welcome_kits"


class ApprovalRule(enum.StrEnum):
    ALWAYS = "always"
    NEVER = "never"
    ABOVE = "above"  # when a request's lines of this item cost more than approval_above_cents


class IssueCategory(enum.StrEnum):
    CLEANING = "cleaning"
    TEMPERATURE = "temperature"
    PLUMBING = "plumbing"
    ELECTRICAL = "electrical"
    FURNITURE = "furniture"
    IT_AV = "it_av"
    SAFETY = "safety"
    OTHER = "other"


class TicketKind(enum.StrEnum):
    REQUEST = "request"  # supplies and equipment from the catalog
    ISSUE = "issue"  # a facility problem
    RETURN = "return"  # offboarding: collect every asset a leaver holds


class TicketStatus(enum.StrEnum):
    SUBMITTED = "submitted"  # new; nobody has answered yet
    APPROVED = "approved"  # requests: at least one line approved, being fulfilled
    DECLINED = "declined"  # requests: every line declined
    ORDERED = "ordered"  # requests: waiting for a purchase order to arrive
    READY = "ready"  # requests: ready for pick-up
    DELIVERED = "delivered"  # requests: handed over
    IN_PROGRESS = "in_progress"  # issues and return tasks: someone is on it
    WAITING = "waiting"  # waiting on the requester: the SLA clock is paused
    RESOLVED = "resolved"  # issues: fixed, the reporter may still reopen by commenting
    CLOSED = "closed"
    CANCELLED = "cancelled"  # withdrawn by the requester


# Statuses after which nothing more happens (the SLA clock has stopped for good).
FINISHED_STATUSES = (
    TicketStatus.DECLINED,
    TicketStatus.DELIVERED,
    TicketStatus.RESOLVED,
    TicketStatus.CLOSED,
    TicketStatus.CANCELLED,
)


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class LineStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the coordinator
    APPROVED = "approved"  # reserved from stock (or a tracked asset picked)
    BACKORDERED = "backordered"  # approved, but must be bought: goes onto a purchase order
    ORDERED = "ordered"  # on a purchase order
    READY = "ready"  # in hand, waiting for hand-over
    FULFILLED = "fulfilled"  # handed over; stock was decremented
    DECLINED = "declined"
    CANCELLED = "cancelled"


class AssetStatus(enum.StrEnum):
    IN_STOCK = "in_stock"
    ASSIGNED = "assigned"  # handed over, waiting for the holder to accept
    ACCEPTED = "accepted"  # the holder confirmed they have it
    RETURN_REQUESTED = "return_requested"
    LOST = "lost"
    RETIRED = "retired"


class Vendor(Base):
    """An outside supplier or contractor: receives purchase orders and assigned facility issues."""

    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    contact_name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    # Issue categories and item categories this vendor serves, for suggestions.
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CatalogItem(Base):
    __tablename__ = "catalog_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    category: Mapped[str] = mapped_column(String(30), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str] = mapped_column(String(30), default="piece")
    price_cents: Mapped[int] = mapped_column(Integer, default=0)  # in the installation's currency
    lead_time_days: Mapped[int] = mapped_column(Integer, default=0)
    approval: Mapped[str] = mapped_column(String(10), default=ApprovalRule.NEVER)
    approval_above_cents: Mapped[int] = mapped_column(Integer, default=0)
    tracked: Mapped[bool] = mapped_column(Boolean, default=False)  # an asset with a serial number
    max_per_request: Mapped[int] = mapped_column(Integer, default=20)
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id", ondelete="SET NULL"))
    # A re-encoded JPEG under the instance folder's uploads, stored under a random name.
    photo_file: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # retired items keep history
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    vendor = relationship("Vendor")


class StockLevel(Base):
    """What a site holds of an item. `reserved` is promised to approved lines not yet handed over;
    the checks make overselling impossible even when two approvals race."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("item_id", "site_id"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    reorder_point: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    item = relationship("CatalogItem", lazy="joined")
    site = relationship("Site")

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class SlaPolicy(Base):
    """Targets in business minutes of the ticket's site. The most specific match wins:
    (kind, category, priority), then (kind, category, any), (kind, any, priority), (kind, any, any)."""

    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("kind", "category", "priority"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(30), default="")  # "" = any
    priority: Mapped[str] = mapped_column(String(10), default="")  # "" = any
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)


class Ticket(Base):
    """A request, a facility issue or a return task: what the coordinator's inbox lists."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_site_status_created", "site_id", "status", "created_at"),
        Index("ix_tickets_requester_created", "requester_id", "created_at"),
        Index("ix_tickets_open_due", "closed", "resolution_due_at"),
        Index("ix_tickets_place_open", "resource_id", "closed"),
        Index("ix_tickets_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(30), index=True)
    status: Mapped[str] = mapped_column(String(20), default=TicketStatus.SUBMITTED)
    # Denormalised from status so "open" filters use an index on every backend.
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[str] = mapped_column(String(10), default=Priority.NORMAL)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id", ondelete="SET NULL"))
    # Where: a floor, and a room or desk on it; issues require a place, requests deliver there.
    floor_id: Mapped[int | None] = mapped_column(ForeignKey("floors.id", ondelete="SET NULL"))
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resources.id", ondelete="SET NULL"))
    place_note: Mapped[str] = mapped_column(String(200), default="")  # "by the lifts", "pick-up"
    delivery: Mapped[str] = mapped_column(String(10), default="")  # desk | floor | pickup
    needed_by: Mapped[date | None] = mapped_column(Date)
    total_cents: Mapped[int] = mapped_column(Integer, default=0)
    # SLA: deadlines in UTC computed from business minutes; while waiting on the requester the
    # clock is paused (paused_at set) and the deadlines move on by the paused business time.
    sla_policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL")
    )
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    me_too_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submission_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    site = relationship("Site", lazy="joined")
    requester = relationship("User", foreign_keys=[requester_id], lazy="joined")
    assignee = relationship("User", foreign_keys=[assignee_id])
    vendor = relationship("Vendor")
    floor = relationship("Floor")
    resource = relationship(Resource)
    lines: Mapped[list[RequestLine]] = relationship(
        back_populates="ticket", order_by="RequestLine.id", cascade="all, delete-orphan"
    )

    @property
    def number(self) -> str:
        prefix = {"request": "REQ", "issue": "ISS", "return": "RET"}.get(self.kind, "T")
        return f"{prefix}-{self.id:05d}"


class RequestLine(Base):
    __tablename__ = "request_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)  # the price when requested
    status: Mapped[str] = mapped_column(String(15), default=LineStatus.PENDING)
    decline_reason: Mapped[str] = mapped_column(String(500), default="")
    purchase_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="SET NULL"), index=True
    )
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship(back_populates="lines")
    item = relationship("CatalogItem", lazy="joined")


class TicketEvent(Base):
    """One entry of a ticket's thread: a comment, an internal note, or a recorded change."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(10))  # comment | note | status | assign | line
    body: Mapped[str] = mapped_column(Text, default="")
    internal: Mapped[bool] = mapped_column(Boolean, default=False)  # never shown to the requester
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author = relationship("User", lazy="joined")


class IssuePhoto(Base):
    __tablename__ = "issue_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(64))  # random, under instance/uploads/issues
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssueFollower(Base):
    """Someone who said "me too": they follow the issue and are told when it changes."""

    __tablename__ = "issue_followers"
    __table_args__ = (UniqueConstraint("ticket_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SavedView(Base):
    """A coordinator's named inbox filter (the query string of the inbox)."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    query: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PurchaseOrder(Base):
    __tablename__ = "purchase_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # PO-2026-0001
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | partial | received
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    vendor = relationship("Vendor", lazy="joined")
    site = relationship("Site")
    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        back_populates="order", order_by="PurchaseOrderLine.id", cascade="all, delete-orphan"
    )


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "received_quantity >= 0 AND received_quantity <= quantity", name="received_in_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    received_quantity: Mapped[int] = mapped_column(Integer, default=0)
    unit_price_cents: Mapped[int] = mapped_column(Integer)

    order: Mapped[PurchaseOrder] = relationship(back_populates="lines")
    item = relationship("CatalogItem", lazy="joined")


class Asset(Base):
    """One tracked piece of equipment (a laptop, a monitor): who has it and what happened to it."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id", ondelete="RESTRICT"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    asset_tag: Mapped[str] = mapped_column(String(40), unique=True)
    serial_number: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[str] = mapped_column(String(20), default=AssetStatus.IN_STOCK)
    holder_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    item = relationship("CatalogItem", lazy="joined")
    holder = relationship("User")
    site = relationship("Site")


class AssetEvent(Base):
    __tablename__ = "asset_events"
    __table_args__ = (Index("ix_asset_events_asset", "asset_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(20))  # received | assigned | accepted | ...
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor = relationship("User", foreign_keys=[actor_id])
    holder = relationship("User", foreign_keys=[holder_id])


class Equipment(Resource):
    """Loanable equipment (a projector, a camera): a resource, so loans are bookings and the
    database's no-overlap guarantee covers them. A loan is one booking per day it covers."""

    __tablename__ = "equipment"
    __mapper_args__ = {"polymorphic_identity": "equipment"}

    id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    pickup_point: Mapped[str] = mapped_column(String(200), default="")
    max_loan_days: Mapped[int] = mapped_column(Integer, default=14)


class EquipmentLoan(Base):
    """A reservation of equipment for a range of dates; its days are Booking rows."""

    __tablename__ = "equipment_loans"
    __table_args__ = (UniqueConstraint("created_by_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    purpose: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default="reserved")  # reserved | cancelled
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    equipment = relationship("Equipment", lazy="joined")
    user = relationship("User", foreign_keys=[user_id])
