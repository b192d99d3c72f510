"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy.orm import Session

from intake.core.db import Base, database, make_engine
from intake.core.models import Contact, MailMessage, OutboxMessage
from intake.core.schema import alembic_config, is_current, upgrade

from .conftest import local


def test_migrations_match_the_models(app: Flask) -> None:
    engine = database(app).engine
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_init_twice_is_harmless(app: Flask) -> None:
    engine = database(app).engine
    upgrade(engine)
    upgrade(engine)

    assert is_current(engine)


def test_upgrading_sqlite_keeps_the_rows_that_refer_to_a_rebuilt_table(tmp_path: Path) -> None:
    # 0007 rebuilds user_account (batch mode: copy, drop, rename); with foreign keys on, the
    # drop deleted every contact_view row, the record of who opened which contact.
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0006")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO user_account (id, email, password_hash, role, language, created_at, "
            "failed_logins) VALUES (1, 'anna@example.org', 'x', 'staff', 'nl', "
            "'2026-11-23 09:00:00', 0)"
        )
        connection.exec_driver_sql(
            "INSERT INTO contact (id, channel, via, organisation, caller, started_at, outcome, "
            "subject, needs_attention, forward_pending, note) VALUES (1, 'call', '', '', "
            "'+31612345678', '2026-11-23 09:00:00', 'voicemail', '', 0, 0, '')"
        )
        connection.exec_driver_sql(
            "INSERT INTO contact_view (contact_id, user_id, at) "
            "VALUES (1, 1, '2026-11-23 09:05:00')"
        )

    upgrade(engine)

    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM contact_view").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # on again
    assert is_current(engine)
    engine.dispose()


def store_mail(session: Session, raw: bytes) -> MailMessage:
    """A mail contact with its stored message `raw`, flushed (not committed)."""
    contact = Contact(channel="mail", started_at=local("2026-11-23 10:15"), outcome="received")
    session.add(contact)
    session.flush()
    stored = MailMessage(
        contact_id=contact.id,
        mailbox="helpdesk@example.org",
        uidvalidity=1,
        uid=1,
        dedupe_key="<stored@x.nl>",
        received_at=local("2026-11-23 10:15"),
        raw=raw,
    )
    session.add(stored)
    session.flush()
    return stored


def test_stored_mail_is_compressed_with_lz4_on_postgresql(app: Flask) -> None:
    engine = database(app).engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite compresses no values")
    text = ("Beste helpdesk, ik kan niet inloggen op het portaal. " * 400).encode()
    with database(app).session() as session:
        store_mail(session, text)
        session.commit()
        method, stored = session.execute(
            sa.text("SELECT pg_column_compression(raw), raw FROM mail_message")
        ).one()
    assert (method, bytes(stored)) == ("lz4", text)


def test_downgrading_joins_a_forwards_original_back_into_its_row(app: Flask) -> None:
    engine = database(app).engine
    original = b"From: patient@example.nl\r\nSubject: Inloggen\r\n\r\nHet lukt niet.\r\n"
    with database(app).session() as session:
        stored = store_mail(session, original)
        session.add(
            OutboxMessage(
                contact_id=stored.contact_id,
                kind="forward",
                message_id="<forward@example.org>",
                mail_from="helpdesk@example.org",
                recipients=["anna@example.org"],
                raw=b"note\r\n--b\r\n\r\n--b--\r\n",
                original_id=stored.id,
                original_at=len(b"note\r\n--b\r\n\r\n"),
                created_at=local("2026-11-23 10:15"),
                next_attempt_at=local("2026-11-23 10:15"),
            )
        )
        session.commit()
    config = alembic_config()
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":  # as `upgrade` does: batch mode rebuilds
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            config.attributes["connection"] = connection
            command.downgrade(config, "0015")
        raw = connection.exec_driver_sql("SELECT raw FROM outbox").scalar_one()

    assert bytes(raw) == b"note\r\n--b\r\n\r\n" + original + b"--b--\r\n"
    upgrade(engine)
    assert is_current(engine)
