"""Helpers for the tests of the Accounts page and the one-time password links: the rows
they leave, forms sent with their token, the link in a queued mail."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from intake.core.db import database
from intake.core.models import AccessEvent, OutboxMessage, User

from .auth import COORDINATOR, AuthActions, csrf_token
from .conftest import PUBLIC_URL

NEW = "nieuw@example.org"
NEW_PASSWORD = "zes woorden op een rij"
LINK = re.compile(r"\S+/password/[A-Za-z0-9_-]+")


def login_row(app: Flask, email: str) -> User:
    with database(app).session() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        session.expunge(user)
        return user


def access_events(app: Flask) -> list[tuple[str, str, str, str]]:
    """(action, actor, subject, detail) of every access event, oldest first."""
    with database(app).session() as session:
        rows = session.scalars(select(AccessEvent).order_by(AccessEvent.id))
        return [(e.action, e.actor, e.subject, e.detail) for e in rows]


def send(client: FlaskClient, path: str, form_page: str = "/users", **data: str) -> TestResponse:
    """POST `data` to `path` with the CSRF token of the form on `form_page`."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, form_page)})


def as_coordinator(auth: AuthActions) -> FlaskClient:
    return auth.login(COORDINATOR, role="coordinator")


def page_text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def without_token(response: TestResponse) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", page_text(response))


def link_in_outbox(app: Flask, email: str) -> str:
    """The set-password link in the newest mail queued for `email`."""
    with database(app).session() as session:
        row = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "password-link")
            .order_by(OutboxMessage.id.desc())
        ).first()
        assert row is not None and row.recipients == [email]
        raw = row.raw
    body = raw.decode("utf-8", "replace").replace("=\r\n", "")
    match = LINK.search(body)
    assert match is not None, body
    return match.group(0)


def path_of(link: str) -> str:
    assert link.startswith(PUBLIC_URL + "/password/"), link
    return link.removeprefix(PUBLIC_URL)


def add_colleague(client: FlaskClient, email: str = NEW, **fields: str) -> TestResponse:
    data = {"email": email, "role": "staff", "language": "nl", **fields}
    return send(client, "/users", **data)
