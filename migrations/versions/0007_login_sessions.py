"""login sessions on the server, and login throttling per typed address and per client

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", intake.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", intake.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", intake.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_login_session_user_id", "login_session", ["user_id"], unique=False)
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", intake.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    # The count moves from the account to the throttle, which unknown addresses have too.
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("last_failed_at")
        batch_op.drop_column("failed_logins")


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("last_failed_at", intake.core.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.drop_table("login_throttle")
    op.drop_index("ix_login_session_user_id", table_name="login_session")
    op.drop_table("login_session")
