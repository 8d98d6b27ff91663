"""Webhook deliveries are scheduled and retried by their own loop; every attempt is recorded.

`webhook_deliveries` keeps the body it sends and a state (`pending`, `delivered`,
`failed`) with the time of its next attempt, instead of a single `delivered` flag;
`webhook_attempts` holds one row per attempt. Rows written before this revision become
`delivered` or `failed` (their body was not kept, so they cannot be redelivered).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def upgrade() -> None:
    table = "webhook_deliveries"
    op.add_column(table, sa.Column("payload", sa.Text(), nullable=True))
    op.add_column(table, sa.Column("state", sa.String(16), nullable=False, server_default="failed"))
    op.add_column(
        table, sa.Column("schedule_step", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(table, sa.Column("next_attempt_at", sa.DateTime(timezone=True)))
    op.add_column(
        table,
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.add_column(table, sa.Column("delivered_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE webhook_deliveries SET created_at = at, "
        "state = CASE WHEN delivered THEN 'delivered' ELSE 'failed' END, "
        "delivered_at = CASE WHEN delivered THEN at END"
    )
    op.alter_column(table, "state", server_default=None)
    op.alter_column(table, "attempts", server_default="0")
    op.alter_column(table, "at", new_column_name="updated_at")
    op.drop_column(table, "delivered")
    op.create_index(op.f("ix_webhook_deliveries_mission_id"), table, ["mission_id"])
    op.create_index(
        "ix_webhook_deliveries_due",
        table,
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.String(length=100), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhook_deliveries.webhook_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_webhook_attempts_webhook_id"), "webhook_attempts", ["webhook_id"])


def downgrade() -> None:
    table = "webhook_deliveries"
    op.drop_index(op.f("ix_webhook_attempts_webhook_id"), table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_due", table_name=table)
    op.drop_index(op.f("ix_webhook_deliveries_mission_id"), table_name=table)
    op.add_column(
        table, sa.Column("delivered", sa.Boolean(), nullable=False, server_default="false")
    )
    op.execute("UPDATE webhook_deliveries SET delivered = (state = 'delivered')")
    op.alter_column(table, "delivered", server_default=None)
    op.alter_column(table, "attempts", server_default=None)
    op.alter_column(table, "updated_at", new_column_name="at")
    for column in ("delivered_at", "created_at", "next_attempt_at", "schedule_step", "state"):
        op.drop_column(table, column)
    op.drop_column(table, "payload")
