"""Every recorded mission status change notifies `driftline_mission_status` with the
mission id, so the API's status streams wake at once instead of polling.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Per row: one notification per change; PostgreSQL folds duplicates within a
    # transaction, and delivers them only once it commits.
    op.execute(
        """
        CREATE FUNCTION mission_status_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('driftline_mission_status', NEW.mission_id::text);
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER mission_status_notify AFTER INSERT ON mission_status_changes "
        "FOR EACH ROW EXECUTE FUNCTION mission_status_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS mission_status_notify ON mission_status_changes")
    op.execute("DROP FUNCTION IF EXISTS mission_status_notify()")
