"""Missions keep the detail of their current status (why a mission is held, failed, ...).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("missions", sa.Column("status_detail", sa.Text(), nullable=True))
    op.create_index("ix_missions_status", "missions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_missions_status", table_name="missions")
    op.drop_column("missions", "status_detail")
