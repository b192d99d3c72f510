"""Changes to logins sent at the same moment are decided by the database.

One link used twice at once changes the password once; two coordinators disabling each
other at once leave one of them active. Each pair is sent together (two threads, two
database connections, released by a barrier), over several rounds.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from werkzeug.security import check_password_hash

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import AccessEvent, User
from intake.shell.password_links import issue

from .auth import AuthActions, csrf_token
from .concurrency import at_once
from .factories import add_user

ROUNDS = 4
FIRST, SECOND = "een heel lang wachtwoord", "een ander lang wachtwoord"


def status_of(answer: object) -> object:
    return getattr(answer, "status_code", answer)


def test_one_link_used_twice_at_once_sets_one_password(app: Flask, clock: SimClock) -> None:
    add_user(app, "bram@example.org")
    for n in range(ROUNDS):
        with app.test_request_context(), database(app).session() as session:
            bram = session.scalars(select(User).where(User.email == "bram@example.org")).one()
            token = issue(session, bram, clock())
            session.commit()
        path = f"/password/{token}"
        clients = [app.test_client(), app.test_client()]
        posts = [
            (
                client,
                path,
                {"password": word, "password_again": word, "csrf_token": csrf_token(client, path)},
            )
            for client, word in zip(clients, (f"{FIRST} {n}", f"{SECOND} {n}"), strict=True)
        ]

        answers = at_once(posts)

        assert sorted(status_of(a) for a in answers) == [302, 410], answers
        with database(app).session() as session:
            bram = session.scalars(select(User).where(User.email == "bram@example.org")).one()
            winner = next(i for i, a in enumerate(answers) if status_of(a) == 302)
            words = posts[winner][2]["password"]
            assert check_password_hash(bram.password_hash, words)
            loser = posts[1 - winner][2]["password"]
            assert not check_password_hash(bram.password_hash, loser)
            sets = session.scalars(
                select(AccessEvent).where(AccessEvent.action == "password_set")
            ).all()
            assert len(sets) == n + 1


def test_two_coordinators_disabling_each_other_at_once_leave_one_active(
    app: Flask, auth: AuthActions
) -> None:
    for n in range(ROUNDS):
        a, b = f"a{n}@example.org", f"b{n}@example.org"
        # Every earlier round's pair is made staff, so these two are the only coordinators.
        with database(app).session() as session:
            for user in session.scalars(select(User).where(User.role == "coordinator")):
                user.role = "staff"
            session.commit()
        auth.add_account(a, role="coordinator")
        auth.add_account(b, role="coordinator")
        clients = {
            a: auth.login(a, client=app.test_client()),
            b: auth.login(b, client=app.test_client()),
        }
        with database(app).session() as session:
            ids = {
                u.email: u.id for u in session.scalars(select(User).where(User.email.in_([a, b])))
            }
        posts = [
            (
                clients[a],
                f"/users/{ids[b]}/disable",
                {"csrf_token": csrf_token(clients[a], "/users")},
            ),
            (
                clients[b],
                f"/users/{ids[a]}/disable",
                {"csrf_token": csrf_token(clients[b], "/users")},
            ),
        ]

        answers = at_once(posts)

        assert [status_of(answer) for answer in answers] == [302, 302], answers
        with database(app).session() as session:
            disabled = session.scalars(
                select(User.email).where(User.email.in_([a, b]), User.disabled_at.is_not(None))
            ).all()
            events = session.scalars(
                select(AccessEvent).where(
                    AccessEvent.action == "disabled", AccessEvent.subject.in_([a, b])
                )
            ).all()
        assert len(disabled) == 1, disabled
        assert [event.subject for event in events] == disabled
        kept = b if disabled == [a] else a
        assert clients[kept].get("/users").status_code == 200
