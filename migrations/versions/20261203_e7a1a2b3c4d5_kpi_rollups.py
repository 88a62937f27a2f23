"""daily roll-ups for the dashboards

Revision ID: e7a1a2b3c4d5
Revises: e6d4a2b3c4d5
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "e7a1a2b3c4d5"
down_revision: str | Sequence[str] | None = "e6d4a2b3c4d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # PLACEHOLDER: filled in by the kpi_rollups work


def downgrade() -> None:
    pass  # PLACEHOLDER
