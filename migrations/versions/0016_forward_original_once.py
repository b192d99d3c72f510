"""a forward's original stored once: in mail_message, not again in its outbox row

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 14:00:00.000000

A forward carries the patient's message whole; its outbox row held those bytes a second
time beside the stored message, which doubled what ingest writes. A new forward's row now
holds the forward without its original and says where it goes (`original_at`) and which
stored message it is (`original_id`); rows made before keep their bytes whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("original_at", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "outbox_original_id_fkey", "mail_message", ["original_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index(batch_op.f("ix_outbox_original_id"), ["original_id"], unique=False)


def downgrade() -> None:
    # The rows that point at their original get their bytes whole again first, one at a
    # time (an original can be 20 MB).
    bind = op.get_bind()
    ids = bind.execute(sa.text("SELECT id FROM outbox WHERE original_id IS NOT NULL")).scalars()
    for row_id in ids.all():
        raw, at, original = bind.execute(
            sa.text(
                "SELECT outbox.raw, outbox.original_at, mail_message.raw FROM outbox"
                " JOIN mail_message ON mail_message.id = outbox.original_id"
                " WHERE outbox.id = :id"
            ),
            {"id": row_id},
        ).one()
        whole = bytes(raw[:at]) + bytes(original) + bytes(raw[at:])
        del original
        bind.execute(
            sa.text("UPDATE outbox SET raw = :raw WHERE id = :id").bindparams(
                sa.bindparam("raw", type_=sa.LargeBinary)
            ),
            {"raw": whole, "id": row_id},
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_original_id"))
        batch_op.drop_constraint("outbox_original_id_fkey", type_="foreignkey")
        batch_op.drop_column("original_at")
        batch_op.drop_column("original_id")
