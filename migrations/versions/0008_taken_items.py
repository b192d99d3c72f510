"""who is calling a waiting contact back ("ik bel terug"), and since when

A table of its own rather than two columns on `contact`: SQLite adds a column with a foreign
key only as an inline REFERENCES clause, which SQLAlchemy does not reflect with its ON DELETE
(so the models would never match the schema), and the other way, batch mode, copies the
contact table and drops the old one, which with foreign keys on deletes every contact's
timeline, mail and views (ON DELETE CASCADE).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import intake.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_taken",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("taken_by_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", intake.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["taken_by_id"], ["user_account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id"),
    )


def downgrade() -> None:
    op.drop_table("contact_taken")
