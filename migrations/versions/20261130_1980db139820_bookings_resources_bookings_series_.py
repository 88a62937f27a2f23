"""bookings: resources, bookings, series, policies, outbox

Revision ID: 1980db139820
Revises: d0da164b6b34
Create Date: 2026-11-30 09:48:40.628885
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "1980db139820"
down_revision: str | Sequence[str] | None = "d0da164b6b34"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Pre-release change of shape: rooms and desks become subtypes of one `resources` table so that one
    # bookings table and one no-overlap constraint serve every bookable thing. No bookings existed
    # before this revision; the demo's rooms and desks are recreated by `seed-demo`.
    with op.batch_alter_table("desks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desks_floor_id"))
    op.drop_table("desks")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rooms_floor_id"))
    op.drop_table("rooms")
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("to_name", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("ics_body", sa.Text(), nullable=True),
        sa.Column("ics_method", sa.String(length=20), nullable=True),
        sa.Column("related_type", sa.String(length=40), nullable=False),
        sa.Column("related_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_messages_status_next", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "booking_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("desk_horizon_days", sa.Integer(), nullable=False),
        sa.Column("room_horizon_days", sa.Integer(), nullable=False),
        sa.Column("min_minutes", sa.Integer(), nullable=False),
        sa.Column("room_max_minutes", sa.Integer(), nullable=False),
        sa.Column("one_desk_per_day", sa.Boolean(), nullable=False),
        sa.Column("max_upcoming_room_bookings", sa.Integer(), nullable=False),
        sa.Column("midday", sa.Time(), nullable=False),
        sa.Column("check_in_opens_minutes", sa.Integer(), nullable=False),
        sa.Column("check_in_grace_minutes", sa.Integer(), nullable=False),
        sa.Column("show_booker_names", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_booking_policies_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_policies")),
        sa.UniqueConstraint("site_id", name=op.f("uq_booking_policies_site_id")),
    )
    op.create_table(
        "resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("floor_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=200), nullable=False),
        sa.Column("needs_approval", sa.Boolean(), nullable=False),
        sa.Column("buffer_minutes", sa.Integer(), nullable=False),
        sa.Column("allowed_departments", sa.JSON(), nullable=False),
        sa.Column("plan_x", sa.Float(), nullable=True),
        sa.Column("plan_y", sa.Float(), nullable=True),
        sa.Column("qr_code", sa.String(length=16), nullable=False),
        sa.Column("created_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["floor_id"],
            ["floors.id"],
            name=op.f("fk_resources_floor_id_floors"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_resources_site_id_sites"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resources")),
        sa.UniqueConstraint(
            "floor_id", "kind", "name", name=op.f("uq_resources_floor_id_kind_name")
        ),
        sa.UniqueConstraint("qr_code", name=op.f("uq_resources_qr_code")),
    )
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_resources_floor_id"), ["floor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_resources_site_id"), ["site_id"], unique=False)

    op.create_table(
        "rooms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("equipment", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"], ["resources.id"], name=op.f("fk_rooms_id_resources"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rooms")),
    )
    op.create_table(
        "desks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=80), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("assignment", sa.String(length=10), nullable=False),
        sa.Column("assigned_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assigned_user_id"],
            ["users.id"],
            name=op.f("fk_desks_assigned_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["id"], ["resources.id"], name=op.f("fk_desks_id_resources"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desks")),
    )
    op.create_table(
        "blackouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_blackouts_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_blackouts_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blackouts")),
    )
    with op.batch_alter_table("blackouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blackouts_site_id"), ["site_id"], unique=False)

    op.create_table(
        "booking_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("first_start_local", sa.DateTime(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("rrule", sa.String(length=500), nullable=False),
        sa.Column("skipped_dates", sa.JSON(), nullable=False),
        sa.Column("materialised_until", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("missed_in_a_row", sa.Integer(), nullable=False),
        sa.Column("trim_suggested_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_booking_series_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_booking_series_resource_id_resources"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_booking_series_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_series")),
        sa.UniqueConstraint(
            "created_by_id",
            "idempotency_key",
            name=op.f("uq_booking_series_created_by_id_idempotency_key"),
        ),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("start_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("checked_in_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked_in_via", sa.String(length=20), nullable=True),
        sa.Column("cancelled_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status_reason", sa.String(length=500), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("occurrence_start", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_bookings_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_bookings_resource_id_resources"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["booking_series.id"],
            name=op.f("fk_bookings_series_id_booking_series"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_bookings_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
        sa.UniqueConstraint(
            "created_by_id",
            "idempotency_key",
            name=op.f("uq_bookings_created_by_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bookings_resource_start", ["resource_id", "start_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_bookings_series_id"), ["series_id"], unique=False)
        batch_op.create_index("ix_bookings_status_start", ["status", "start_at"], unique=False)
        batch_op.create_index("ix_bookings_user_start", ["user_id", "start_at"], unique=False)

    # ### end Alembic commands ###
    _forbid_overlapping_bookings()


# Must match portal.models.bookings.HOLDING_STATUSES.
HOLDING = "('pending', 'confirmed', 'checked_in')"


def _forbid_overlapping_bookings() -> None:
    """The database itself refuses two slot-holding bookings of one resource whose [start,
    blocked_until) ranges overlap. Half-open ranges let back-to-back bookings touch."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist "
            "(resource_id WITH =, tstzrange(start_at, blocked_until, '[)') WITH &&) "
            f"WHERE (status IN {HOLDING})"
        )
        return
    # SQLite: triggers play the constraint's part (timestamps are stored as sortable text).
    overlap = (
        "SELECT RAISE(ABORT, 'ex_bookings_no_overlap') WHERE EXISTS (SELECT 1 FROM bookings b "
        "WHERE b.resource_id = NEW.resource_id AND b.id IS NOT NEW.id "
        f"AND b.status IN {HOLDING} AND b.start_at < NEW.blocked_until "
        "AND NEW.start_at < b.blocked_until)"
    )
    op.execute(
        "CREATE TRIGGER bookings_no_overlap_insert BEFORE INSERT ON bookings "
        f"WHEN NEW.status IN {HOLDING} BEGIN {overlap}; END"
    )
    op.execute(
        "CREATE TRIGGER bookings_no_overlap_update BEFORE UPDATE OF resource_id, start_at, "
        f"blocked_until, status ON bookings WHEN NEW.status IN {HOLDING} BEGIN {overlap}; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
    for table in (
        "bookings",
        "booking_series",
        "blackouts",
        "desks",
        "rooms",
        "resources",
        "booking_policies",
        "outbox_messages",
    ):
        op.drop_table(table)
    op.create_table(
        "rooms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("floor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("equipment", sa.JSON(), nullable=False),
        sa.Column("needs_approval", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["floor_id"], ["floors.id"], name=op.f("fk_rooms_floor_id_floors"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rooms")),
        sa.UniqueConstraint("floor_id", "name", name=op.f("uq_rooms_floor_id_name")),
    )
    op.create_index(op.f("ix_rooms_floor_id"), "rooms", ["floor_id"])
    op.create_table(
        "desks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("floor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("zone", sa.String(length=80), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("assigned_user_id", sa.Integer(), nullable=True),
        sa.Column("disabled_reason", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_user_id"],
            ["users.id"],
            name=op.f("fk_desks_assigned_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["floor_id"], ["floors.id"], name=op.f("fk_desks_floor_id_floors"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desks")),
        sa.UniqueConstraint("floor_id", "name", name=op.f("uq_desks_floor_id_name")),
    )
    op.create_index(op.f("ix_desks_floor_id"), "desks", ["floor_id"])
