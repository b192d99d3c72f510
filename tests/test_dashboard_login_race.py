"""Wrong passwords sent at the same moment all count: the throttle is one upsert per counter,
decided by the database, not a read followed by a write."""

from __future__ import annotations

from hashlib import sha256

from flask import Flask
from sqlalchemy import select

from intake.core.db import database
from intake.core.models import LoginThrottle
from intake.shell.auth import FREE_ATTEMPTS

from .auth import csrf_token
from .concurrency import at_once

# As many as are free: none of them may be told to wait, so each must be counted.
AT_ONCE = FREE_ATTEMPTS


def test_wrong_passwords_sent_at_once_are_each_counted(app: Flask) -> None:
    clients = [app.test_client() for _ in range(AT_ONCE)]
    posts = [
        (
            client,
            "/login",
            {"email": "nobody@example.org", "password": "guess!", "csrf_token": csrf_token(client)},
        )
        for client in clients
    ]

    answers = at_once(posts)

    assert [getattr(answer, "status_code", answer) for answer in answers] == [401] * AT_ONCE
    with database(app).session() as session:
        counts = {row.key: row.failures for row in session.scalars(select(LoginThrottle))}
    assert counts == {
        "account:" + sha256(b"nobody@example.org").hexdigest(): AT_ONCE,
        "client:" + sha256(b"127.0.0.1").hexdigest(): AT_ONCE,
    }
