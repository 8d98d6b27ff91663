"""Indexes on the time columns the housekeeping loop prunes by, so each batch is a short
index range scan instead of a full table scan.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ("ix_outbox_published_at", "outbox", "published_at", "published_at IS NOT NULL"),
    ("ix_processed_events_processed_at", "processed_events", "processed_at", None),
    ("ix_idempotency_keys_created_at", "idempotency_keys", "created_at", None),
    ("ix_mission_status_changes_at", "mission_status_changes", "at", None),
    ("ix_webhook_deliveries_updated_at", "webhook_deliveries", "updated_at", None),
]


def upgrade() -> None:
    for name, table, column, where in INDEXES:
        op.create_index(
            name, table, [column], postgresql_where=sa.text(where) if where else None
        )


def downgrade() -> None:
    for name, table, _column, _where in INDEXES:
        op.drop_index(name, table_name=table)
