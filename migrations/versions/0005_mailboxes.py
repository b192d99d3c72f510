"""several mailboxes: the SMTP account of each outgoing message, and each mailbox's status

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows queued before this migration went through the one INTAKE_SMTP_* account: "".
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("smtp_account", sa.String(length=320), server_default="", nullable=False)
        )
    op.create_table(
        "mailbox_status",
        sa.Column("mailbox", sa.String(length=320), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("since", intake.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_at", intake.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox"),
    )


def downgrade() -> None:
    op.drop_table("mailbox_status")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("smtp_account")
