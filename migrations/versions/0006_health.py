"""health and metrics: each job's last success, and each mailbox's last good poll and failures

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_heartbeat",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("finished_at", intake.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # A mailbox that read fine at its last check had its last good poll then.
    with op.batch_alter_table("mailbox_status", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_ok_at", intake.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("failures", sa.Integer(), server_default="0", nullable=False))
    op.execute("UPDATE mailbox_status SET last_ok_at = checked_at WHERE ok")


def downgrade() -> None:
    with op.batch_alter_table("mailbox_status", schema=None) as batch_op:
        batch_op.drop_column("failures")
        batch_op.drop_column("last_ok_at")
    op.drop_table("job_heartbeat")
