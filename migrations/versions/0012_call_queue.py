"""the call queue: callers waiting while every colleague on shift is on a call

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 17:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.core.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_queue",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.String(length=32), nullable=False),
        sa.Column("queued_at", intake.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("queue_sid", sa.String(length=64), nullable=True),
        sa.Column(
            "callback_requested_at", intake.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("left_at", intake.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("served_at", intake.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("offered_to", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id"),
    )
    op.create_index("ix_call_queue_line", "call_queue", ["line", "queued_at"])


def downgrade() -> None:
    op.drop_index("ix_call_queue_line", table_name="call_queue")
    op.drop_table("call_queue")
