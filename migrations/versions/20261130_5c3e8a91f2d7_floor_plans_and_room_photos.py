"""spaces: floor plans and room photos

Revision ID: 5c3e8a91f2d7
Revises: 1980db139820
Create Date: 2026-11-30 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c3e8a91f2d7"
down_revision: str | Sequence[str] | None = "1980db139820"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Only nullable columns: existing floors simply have no plan yet, existing rooms no photo.
    with op.batch_alter_table("floors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_file", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("plan_content_type", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("plan_width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("plan_height", sa.Integer(), nullable=True))
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("photo_file", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_column("photo_file")
    with op.batch_alter_table("floors", schema=None) as batch_op:
        batch_op.drop_column("plan_height")
        batch_op.drop_column("plan_width")
        batch_op.drop_column("plan_content_type")
        batch_op.drop_column("plan_file")
