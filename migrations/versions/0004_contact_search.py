"""contact search: indexes for the dashboard's Contacts page

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Each filter of the Contacts page, newest first, reads only the rows it shows; a number
    # or address searched for in full is found on the caller index.
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.create_index("ix_contact_channel_started", ["channel", "started_at"], unique=False)
        batch_op.create_index(
            "ix_contact_organisation_started", ["organisation", "started_at"], unique=False
        )
        batch_op.create_index("ix_contact_outcome_started", ["outcome", "started_at"], unique=False)
        batch_op.create_index(
            "ix_contact_unhandled",
            ["started_at"],
            unique=False,
            sqlite_where=sa.text("handled_at IS NULL"),
            postgresql_where=sa.text("handled_at IS NULL"),
        )
        batch_op.create_index("ix_contact_caller", ["caller"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_caller")
        batch_op.drop_index("ix_contact_unhandled")
        batch_op.drop_index("ix_contact_outcome_started")
        batch_op.drop_index("ix_contact_organisation_started")
        batch_op.drop_index("ix_contact_channel_started")
