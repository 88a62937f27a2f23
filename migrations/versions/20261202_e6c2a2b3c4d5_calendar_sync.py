"""room calendar links and synced events

Revision ID: e6c2a2b3c4d5
Revises: e6f1a2b3c4d5
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "e6c2a2b3c4d5"
down_revision: str | Sequence[str] | None = "e6f1a2b3c4d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # PLACEHOLDER: filled in by the calendar_sync work


def downgrade() -> None:
    pass  # PLACEHOLDER
