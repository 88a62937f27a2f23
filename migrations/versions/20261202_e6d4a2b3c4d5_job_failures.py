"""dead-lettered background jobs and per-task heartbeats

Revision ID: e6d4a2b3c4d5
Revises: e6a3a2b3c4d5
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "e6d4a2b3c4d5"
down_revision: str | Sequence[str] | None = "e6a3a2b3c4d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_name", sa.String(length=120), nullable=False),
        sa.Column("task_path", sa.String(length=250), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("replayable", sa.Boolean(), nullable=False),
        # The digest of task and arguments while unresolved, NULL once resolved: one open row each.
        sa.Column("open_key", sa.String(length=64), nullable=True),
        sa.Column("error_type", sa.String(length=200), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("times_failed", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("retried_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retried_by", sa.String(length=254), nullable=False),
        sa.Column("resolved_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=254), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_failures")),
        sa.UniqueConstraint("open_key", name=op.f("uq_job_failures_open_key")),
    )
    with op.batch_alter_table("job_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_failures_task_name"), ["task_name"], unique=False)
        batch_op.create_index(
            "ix_job_failures_state_last_failed", ["state", "last_failed_at"], unique=False
        )

    op.create_table(
        "job_heartbeats",
        sa.Column("task_name", sa.String(length=120), nullable=False),
        sa.Column("last_success_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("successes", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("task_name", name=op.f("pk_job_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("job_heartbeats")
    with op.batch_alter_table("job_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_job_failures_state_last_failed")
        batch_op.drop_index(batch_op.f("ix_job_failures_task_name"))
    op.drop_table("job_failures")
