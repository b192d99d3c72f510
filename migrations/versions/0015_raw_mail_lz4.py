"""raw mail compressed with lz4 on PostgreSQL, not pglz

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 23:30:00.000000

PostgreSQL compresses a large value (a stored message, an outgoing one) when it is written;
its default, pglz, took most of the time of inserting a batch of mail (about 0.3 s for
1,000 patient mails of 16 KB, against 0.06 s with lz4, which PostgreSQL has offered since
version 14 and is built with on Debian). Values stored before keep their compression (both
read back the same); a server without lz4 keeps pglz. SQLite compresses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("mail_message", "raw"), ("outbox", "raw"))


def _has_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text(
            "SELECT 1 FROM pg_settings"
            " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
        )
    ).first()
    return found is not None


def upgrade() -> None:
    if _has_lz4():
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _has_lz4():
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION default")
