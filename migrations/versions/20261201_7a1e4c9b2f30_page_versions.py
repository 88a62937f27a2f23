"""page versions: counters that say when a desk plan or room timeline changed

Revision ID: 7a1e4c9b2f30
Revises: d7c5a6516ae9
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a1e4c9b2f30"
down_revision: str | Sequence[str] | None = "d7c5a6516ae9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No rows: a counter is created by the first change in its scope.
    op.create_table(
        "page_versions",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_page_versions")),
    )


def downgrade() -> None:
    op.drop_table("page_versions")
