"""Two colleagues mark one contact handled at the same moment: the first one's record stands.

Both have the contact's page open and send the form together (two browsers, two threads,
each request on a database connection of its own, released by a barrier), over several
contacts. One is told the contact is marked handled, and the row and the timeline hold
their record only; the other is told who was first, and nothing of theirs is written.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from intake.core.db import database
from intake.core.models import Contact, ContactEvent
from routing.desk import Desk

from .auth import STAFF, AuthActions, csrf_token
from .concurrency import at_once
from .factories import add_contact

ROUNDS = 6
BRAM = "bram@example.org"


def test_two_colleagues_marking_a_contact_handled_at_once_keep_one_record(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    clients = {STAFF: auth.login(), BRAM: auth.login(BRAM, client=app.test_client())}
    for _ in range(ROUNDS):
        contact_id = add_contact(app, outcome="voicemail")
        path = f"/contacts/{contact_id}"
        posts = [
            (
                client,
                f"{path}/handled",
                {
                    "action": "handled",
                    "topic": "Anders",
                    "note": f"gedaan door {who}",
                    "csrf_token": csrf_token(client, path),
                },
            )
            for who, client in clients.items()
        ]

        answers = at_once(posts)

        assert [getattr(a, "status_code", a) for a in answers] == [302, 302]
        with database(app).session() as session:
            row = session.get(Contact, contact_id)
            assert row is not None
            handled = session.scalars(
                select(ContactEvent).where(
                    ContactEvent.contact_id == contact_id, ContactEvent.kind == "handled"
                )
            ).all()
        assert row.handled_by in clients
        assert row.note == f"gedaan door {row.handled_by}"
        assert [e.detail["by"] for e in handled] == [row.handled_by]
        for who, client in clients.items():
            page = client.get(path).get_data(as_text=True)
            if who == row.handled_by:
                assert f"HD-{contact_id:06d} is marked handled." in page
            else:
                assert f"HD-{contact_id:06d} was already handled by {row.handled_by}." in page
