"""Typed SQLAlchemy models, one module per domain. Importing this package registers them all."""

from portal.models.audit import AuditEvent
from portal.models.bookings import (
    HOLDING_STATUSES,
    Blackout,
    Booking,
    BookingPolicy,
    BookingSeries,
    BookingStatus,
)
from portal.models.mail import OutboxMessage, OutboxStatus
from portal.models.people import ExternalIdentity, LoginSession, Role, RoleGrant, User
from portal.models.sites import Building, Floor, Site
from portal.models.spaces import Desk, DeskAssignment, Resource, ResourceKind, Room
from portal.models.visitors import (
    BadgeState,
    CheckoutMethod,
    DenyListEntry,
    KioskDevice,
    Notice,
    RollCallMark,
    Visit,
    VisitImage,
    VisitKind,
    VisitorAgreement,
    VisitStatus,
)

__all__ = [
    "HOLDING_STATUSES",
    "AuditEvent",
    "BadgeState",
    "CheckoutMethod",
    "DenyListEntry",
    "KioskDevice",
    "Notice",
    "RollCallMark",
    "Visit",
    "VisitImage",
    "VisitKind",
    "VisitStatus",
    "VisitorAgreement",
    "Blackout",
    "Booking",
    "BookingPolicy",
    "BookingSeries",
    "BookingStatus",
    "DeskAssignment",
    "Resource",
    "ResourceKind",
    "Building",
    "Desk",
    "ExternalIdentity",
    "Floor",
    "LoginSession",
    "OutboxMessage",
    "OutboxStatus",
    "Role",
    "RoleGrant",
    "Room",
    "Site",
    "User",
]
