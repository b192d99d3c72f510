"""two indexes nothing reads, no longer written at every call and mail

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 20:00:00.000000

`ix_contact_message_id` served no query: a mail's thread is found through `mail_message`
and `outbox`, whose own indexes hold the Message-IDs, and a contact's first Message-ID is
only shown. `ix_contact_event_contact` repeats the first column of `uq_contact_event_key`
(contact_id, key), which serves every read of a contact's timeline and the cascade on its
removal just as well. Each was written at every new contact or event: a call's first
request updated both.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_contact_message_id", table_name="contact")
    op.drop_index("ix_contact_event_contact", table_name="contact_event")


def downgrade() -> None:
    op.create_index("ix_contact_event_contact", "contact_event", ["contact_id"], unique=False)
    op.create_index("ix_contact_message_id", "contact", ["message_id"], unique=False)
