"""People: accounts, their roles, their single sign-on identities and their sign-in sessions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    """Every active user is an employee; these grants add to that."""

    COORDINATOR = "coordinator"  # approves and administers one site
    ADMIN = "admin"  # settings, users, every site


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    name: Mapped[str] = mapped_column(String(120))
    department: Mapped[str] = mapped_column(String(120), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    time_zone: Mapped[str | None] = mapped_column(String(64))  # None: the home site's zone
    home_site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    home_site = relationship("Site", lazy="joined")
    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    # Flask-Login protocol, kept here so views need no adapter class.
    @property
    def is_active(self) -> bool:
        return self.active

    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_admin(self) -> bool:
        return any(g.role == Role.ADMIN for g in self.grants)

    def coordinated_site_ids(self) -> set[int]:
        return {g.site_id for g in self.grants if g.role == Role.COORDINATOR and g.site_id}

    @property
    def role_names(self) -> list[str]:
        names = {"employee"} | {g.role for g in self.grants}
        return sorted(names)


class RoleGrant(Base):
    """A role for a user; coordinator grants name their site. `source` tells manual grants from
    ones synchronised from the identity provider's groups, so a sign-in never removes manual ones."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "role", "site_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(10), default="manual")  # manual | sso
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="grants")
    site = relationship("Site", lazy="joined")


class ExternalIdentity(Base):
    """An account at an OpenID Connect provider, keyed on (issuer, subject), never on e-mail."""

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class LoginSession(Base):
    """A server-side sign-in session. The browser's signed cookie holds only a random token whose
    SHA-256 is stored here, so sign-out, deactivation and timeouts end it for real."""

    __tablename__ = "login_sessions"
    __table_args__ = (Index("ix_login_sessions_user_open", "user_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(10))  # password | sso
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(40))
    ip_address: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    # Kept for RP-initiated logout at the provider (id_token_hint); cleared when the session ends.
    sso_id_token: Mapped[str | None] = mapped_column(String(8000))

    user: Mapped[User] = relationship()
