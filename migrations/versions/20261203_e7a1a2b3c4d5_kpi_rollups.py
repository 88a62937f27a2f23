"""daily roll-ups for the dashboards

Revision ID: e7a1a2b3c4d5
Revises: e6d4a2b3c4d5
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "e7a1a2b3c4d5"
down_revision: str | Sequence[str] | None = "e6d4a2b3c4d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kpi_rollup_days",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("computed_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_kpi_rollup_days_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("site_id", "day", name=op.f("pk_kpi_rollup_days")),
    )
    op.create_table(
        "kpi_desk_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("floor_id", sa.Integer(), nullable=True),
        sa.Column("zone", sa.String(length=80), nullable=False),
        sa.Column("booked_desk_days", sa.Integer(), nullable=False),
        sa.Column("checked_in_desk_days", sa.Integer(), nullable=False),
        sa.Column("no_show_bookings", sa.Integer(), nullable=False),
        sa.Column("bookings", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["floor_id"],
            ["floors.id"],
            name=op.f("fk_kpi_desk_days_floor_id_floors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_kpi_desk_days_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_desk_days")),
    )
    op.create_index("ix_kpi_desk_days_site_day", "kpi_desk_days", ["site_id", "day"], unique=False)
    op.create_table(
        "kpi_room_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("bookings", sa.Integer(), nullable=False),
        sa.Column("booked_minutes", sa.Integer(), nullable=False),
        sa.Column("ghost_bookings", sa.Integer(), nullable=False),
        sa.Column("ghost_minutes", sa.Integer(), nullable=False),
        sa.Column("released_bookings", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_kpi_room_days_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_kpi_room_days_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_room_days")),
    )
    op.create_index("ix_kpi_room_days_site_day", "kpi_room_days", ["site_id", "day"], unique=False)
    op.create_table(
        "kpi_room_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("floor_id", sa.Integer(), nullable=True),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("booked_minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["floor_id"],
            ["floors.id"],
            name=op.f("fk_kpi_room_hours_floor_id_floors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_kpi_room_hours_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_room_hours")),
    )
    op.create_index(
        "ix_kpi_room_hours_site_day", "kpi_room_hours", ["site_id", "day"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_kpi_room_hours_site_day", table_name="kpi_room_hours")
    op.drop_table("kpi_room_hours")
    op.drop_index("ix_kpi_room_days_site_day", table_name="kpi_room_days")
    op.drop_table("kpi_room_days")
    op.drop_index("ix_kpi_desk_days_site_day", table_name="kpi_desk_days")
    op.drop_table("kpi_desk_days")
    op.drop_table("kpi_rollup_days")
