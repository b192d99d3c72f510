"""Two colleagues press "I'll call back" on one item at the same moment: one of them has it.

Both have the Now page open and send the form together (two browsers, two threads, each
request on a database connection of its own, released by a barrier), over several items.
One is sent back to the board holding the item; the other is asked whether to take it over
from the one who won, and the row names the winner. And a colleague marking an item handled
while another takes it: the item ends handled, held by nobody.
"""

from __future__ import annotations

import html

from flask import Flask
from sqlalchemy import select

from intake.core.db import database
from intake.core.models import Contact, ContactTaken, User
from routing.desk import Desk

from .auth import STAFF, AuthActions, csrf_token
from .concurrency import at_once
from .factories import add_contact

ROUNDS = 6
BRAM = "bram@example.org"
NAMES = {STAFF: "Anna de Vries", BRAM: "Bram Jansen"}  # as the example desk lists them


def holder(app: Flask, contact_id: int) -> list[str]:
    with database(app).session() as session:
        return list(
            session.scalars(
                select(User.email)
                .join(ContactTaken, ContactTaken.taken_by_id == User.id)
                .where(ContactTaken.contact_id == contact_id)
            )
        )


def test_two_colleagues_taking_one_item_at_once_leave_it_with_one_and_ask_the_other(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    clients = {STAFF: auth.login(), BRAM: auth.login(BRAM, client=app.test_client())}
    for _ in range(ROUNDS):
        contact_id = add_contact(app, outcome="voicemail")
        posts = [
            (client, f"/now/take/{contact_id}", {"csrf_token": csrf_token(client, "/")})
            for client in clients.values()
        ]

        answers = at_once(posts)

        codes = [getattr(a, "status_code", a) for a in answers]
        assert sorted(codes) == [302, 409], codes
        holders = holder(app, contact_id)
        assert len(holders) == 1
        winner = holders[0]
        emails = list(clients)
        assert codes[emails.index(winner)] == 302
        loser = next(e for e in emails if e != winner)
        question = html.unescape(answers[emails.index(loser)].get_data(as_text=True))
        assert (
            f"{NAMES[winner]} is already calling HD-{contact_id:06d} back (since 10:15). "
            "Take it over anyway?" in question
        )


def test_an_item_taken_while_a_colleague_marks_it_handled_ends_handled_and_held_by_nobody(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    anna, bram = auth.login(), auth.login(BRAM, client=app.test_client())
    for _ in range(ROUNDS):
        contact_id = add_contact(app, outcome="missed")
        path = f"/contacts/{contact_id}"
        posts = [
            (anna, f"/now/take/{contact_id}", {"csrf_token": csrf_token(anna, "/")}),
            (
                bram,
                f"{path}/handled",
                {
                    "action": "handled",
                    "topic": "Anders",
                    "note": "teruggebeld",
                    "csrf_token": csrf_token(bram, path),
                },
            ),
        ]

        answers = at_once(posts)

        assert [getattr(a, "status_code", a) for a in answers] == [302, 302]
        with database(app).session() as session:
            row = session.get(Contact, contact_id)
            assert row is not None and row.handled_by == BRAM
        assert holder(app, contact_id) == []
