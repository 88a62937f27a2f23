"""The coordinator console's own tables: monthly budgets per site and catalog category, sites'
holidays, single sign-on group-to-role mappings kept in the database, and the record of weekly
digests sent (one per coordinator per week)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from portal.db import Base, UTCDateTime, utcnow
from portal.models.sites import Site


class Budget(Base):
    """What a site plans to spend on one catalog category in one month (integer cents, in the
    installation's currency). `month` is the first day of the month."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("site_id", "category", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(30))  # an ItemCategory value
    month: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class SiteHoliday(Base):
    """A day the site is closed (a public holiday, the office's winter break): the SLA clock
    does not run on it. Booking blackouts are a different thing: see portal/services/site_settings."""

    __tablename__ = "site_holidays"
    __table_args__ = (UniqueConstraint("site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(120))

    # Site.holidays (a backref, so sites.py need not know this module): loaded once per site
    # per session, which the SLA arithmetic relies on.
    site: Mapped[Site] = relationship(
        backref=backref("holidays", order_by="SiteHoliday.day", passive_deletes=True)
    )


class SsoGroupRole(Base):
    """Members of the identity provider's `group` get `role` (admin, or coordinator of `site`)
    at every sign-in. Replaces the FOYER_OIDC_GROUP_ROLES variable once any row exists."""

    __tablename__ = "sso_group_roles"
    __table_args__ = (UniqueConstraint("group_name", "role", "site_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site | None] = relationship()


class DigestSent(Base):
    """A coordinator's weekly digest for the week starting `week_start` (a Monday) is queued:
    the unique key makes the job idempotent however often it runs."""

    __tablename__ = "digests_sent"
    __table_args__ = (UniqueConstraint("user_id", "week_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    week_start: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL")
    )
