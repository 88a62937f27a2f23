"""calendar feed tokens

Revision ID: e6f1a2b3c4d5
Revises: 7a1e4c9b2f30
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "e6f1a2b3c4d5"
down_revision: str | Sequence[str] | None = "7a1e4c9b2f30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # PLACEHOLDER: filled in by the feeds work


def downgrade() -> None:
    pass  # PLACEHOLDER
