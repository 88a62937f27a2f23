"""Typed SQLAlchemy models, one module per domain. Importing this package registers them all."""

from portal.models.audit import AuditEvent
from portal.models.people import ExternalIdentity, LoginSession, Role, RoleGrant, User
from portal.models.sites import Building, Floor, Site
from portal.models.spaces import Desk, DeskKind, Room

__all__ = [
    "AuditEvent",
    "Building",
    "Desk",
    "DeskKind",
    "ExternalIdentity",
    "Floor",
    "LoginSession",
    "Role",
    "RoleGrant",
    "Room",
    "Site",
    "User",
]
