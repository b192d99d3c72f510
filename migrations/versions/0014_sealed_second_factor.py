"""second factors sealed: the column holds a Fernet token, not the bare base32 key

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 20:55:00.000000

The keys already stored stay readable as they are and are sealed at their next use
(intake.shell.second_factor): sealing needs the app's SECRET_KEY, which a migration has not.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("second_factor", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=64), type_=sa.String(length=255)
        )


def downgrade() -> None:
    with op.batch_alter_table("second_factor", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=255), type_=sa.String(length=64)
        )
