"""room calendar links and synced events

Revision ID: e6c2a2b3c4d5
Revises: e6f1a2b3c4d5
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "e6c2a2b3c4d5"
down_revision: str | Sequence[str] | None = "e6f1a2b3c4d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=10), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("sync_token", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("last_synced_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_calendar_links_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_calendar_links_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_links")),
        sa.UniqueConstraint("resource_id", name=op.f("uq_calendar_links_resource_id")),
    )
    op.create_index(
        "ix_calendar_links_state_next_attempt_at",
        "calendar_links",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "synced_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("remote_id", sa.String(length=500), nullable=True),
        sa.Column("uid", sa.String(length=500), nullable=False),
        sa.Column("etag", sa.String(length=200), nullable=True),
        sa.Column("pushed_sequence", sa.Integer(), nullable=True),
        sa.Column("pushed_status", sa.String(length=20), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("declined_reason", sa.String(length=500), nullable=False),
        sa.Column("updated_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_synced_events_booking_id_bookings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["calendar_links.id"],
            name=op.f("fk_synced_events_link_id_calendar_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_synced_events")),
        sa.UniqueConstraint(
            "link_id", "booking_id", name=op.f("uq_synced_events_link_id_booking_id")
        ),
        sa.UniqueConstraint(
            "link_id", "remote_id", name=op.f("uq_synced_events_link_id_remote_id")
        ),
        sa.UniqueConstraint("link_id", "uid", name=op.f("uq_synced_events_link_id_uid")),
    )
    op.create_index(
        op.f("ix_synced_events_booking_id"), "synced_events", ["booking_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_synced_events_booking_id"), table_name="synced_events")
    op.drop_table("synced_events")
    op.drop_index("ix_calendar_links_state_next_attempt_at", table_name="calendar_links")
    op.drop_table("calendar_links")
