"""access grants and door events

Revision ID: e6a3a2b3c4d5
Revises: e6c2a2b3c4d5
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "e6a3a2b3c4d5"
down_revision: str | Sequence[str] | None = "e6c2a2b3c4d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # PLACEHOLDER: filled in by the access_control work


def downgrade() -> None:
    pass  # PLACEHOLDER
