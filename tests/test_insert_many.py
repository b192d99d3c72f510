"""`intake.core.db.insert_many`, the batch's inserts: what goes in is what is read back, on
both databases (PostgreSQL takes the rows as arrays, a large blob apart)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from flask import Flask
from sqlalchemy import Table, select

from intake.core.db import LARGE_BLOB, database, insert_many
from intake.core.models import Contact, ContactEvent, MailMessage

from .conftest import local

_MESSAGES = cast(Table, MailMessage.__table__)
_EVENTS = cast(Table, ContactEvent.__table__)


def message_row(contact_id: int, n: int, raw: bytes, **values: Any) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "mailbox": "helpdesk@example.org@127.0.0.1/INBOX",
        "uidvalidity": 7,
        "uid": 100 + n,
        "dedupe_key": f"<m{n}@x.nl>",
        "message_id": f"<m{n}@x.nl>",
        "received_at": local("2026-11-23 10:15") + timedelta(seconds=n),
        "from_address": f"p{n}@example.nl",
        "attachments": [],
        "raw": raw,
        **values,
    }


def test_rows_read_back_as_they_went_in_with_their_ids_in_order(app: Flask) -> None:
    summer = timezone(timedelta(hours=2))
    raws = [b"small\r\n", b"\x00\xff" * (LARGE_BLOB // 2 + 3), b"", "é".encode() * 50]
    with database(app).session() as session:
        contact = Contact(channel="mail", started_at=local("2026-11-23 10:15"), outcome="received")
        session.add(contact)
        session.flush()
        rows = [
            message_row(
                contact.id,
                0,
                raws[0],
                subject="Inloggen lukt niet",
                from_name="Zoë d'Ancona",
                forwarded_to="anna",
                forwarded_at=datetime(2026, 7, 1, 12, 0, tzinfo=summer),
                attachments=[{"filename": "brief.pdf", "content_type": "application/pdf"}],
            ),
            message_row(
                contact.id,
                1,
                raws[1],
                subject="",
                from_name="",
                forwarded_to=None,
                forwarded_at=None,
            ),
            message_row(
                contact.id,
                2,
                raws[2],
                subject="Re: 予約",
                from_name="—",
                forwarded_to=None,
                forwarded_at=None,
            ),
            message_row(
                contact.id,
                3,
                raws[3],
                subject="x" * 998,
                from_name="A",
                forwarded_to="bram",
                forwarded_at=local("2026-11-23 10:16"),
            ),
        ]
        # The first row names a set of columns; text, size and needs_attention are left out
        # and take their defaults.
        ids = insert_many(session, _MESSAGES, rows, blob="raw")
        session.commit()

    assert ids == sorted(ids) and len(set(ids)) == 4
    with database(app).session() as session:
        stored = session.scalars(select(MailMessage).order_by(MailMessage.id)).all()
        assert [m.id for m in stored] == ids
        assert [bytes(m.raw) for m in stored] == raws
        assert [(m.uid, m.subject, m.from_name, m.forwarded_to) for m in stored] == [
            (100 + n, r["subject"], r["from_name"], r["forwarded_to"]) for n, r in enumerate(rows)
        ]
        assert stored[0].forwarded_at == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
        assert stored[1].forwarded_at is None
        assert stored[0].attachments == [
            {"filename": "brief.pdf", "content_type": "application/pdf"}
        ]
        assert [(m.text, m.size, m.needs_attention) for m in stored] == [("", 0, False)] * 4


def test_rows_go_in_without_their_ids_when_none_are_asked_for(app: Flask) -> None:
    at = local("2026-11-23 10:15")
    with database(app).session() as session:
        contact = Contact(channel="mail", started_at=at, outcome="received")
        session.add(contact)
        session.flush()
        steps = [
            {"contact_id": contact.id, "at": at, "kind": kind, "key": key, "detail": detail}
            for kind, key, detail in [
                ("mail", None, {"from": "p@example.nl"}),
                ("forwarded", "f1", {"to": "anna"}),
                ("follow-up", None, {}),
            ]
        ]
        assert insert_many(session, _EVENTS, steps, returning=False) == []
        session.commit()
        events = session.scalars(select(ContactEvent).order_by(ContactEvent.id)).all()

    assert [(e.kind, e.key, e.detail) for e in events] == [
        ("mail", None, {"from": "p@example.nl"}),
        ("forwarded", "f1", {"to": "anna"}),
        ("follow-up", None, {}),
    ]


def test_a_row_naming_its_own_id_is_refused_on_postgresql(app: Flask) -> None:
    if database(app).engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL takes ids from the sequence first")
    with database(app).session() as session, pytest.raises(TypeError, match="id"):
        insert_many(
            session,
            _EVENTS,
            [{"id": 5, "contact_id": 1, "at": local("2026-11-23 10:15"), "kind": "mail"}],
        )
