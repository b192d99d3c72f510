"""Dashboard logins: every page behind one, CSRF on forms, and failed logins slowing down."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from intake.core.clock import SimClock
from intake.core.db import database
from intake.shell.auth import create_user

PASSWORD = "correct horse battery"


def add_user(app: Flask, email: str = "anna@example.org", role: str = "staff") -> None:
    with database(app).session() as session:
        create_user(session, email, PASSWORD, role=role, language="nl", now=app.config["CLOCK"]())
        session.commit()


def csrf(client: FlaskClient, path: str = "/login") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match is not None
    return match.group(1)


def log_in(client: FlaskClient, email: str = "anna@example.org", password: str = PASSWORD) -> int:
    token = csrf(client)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    return response.status_code


@pytest.mark.parametrize("path", ["/", "/contacts/1"])
def test_pages_need_a_login(app: Flask, path: str) -> None:
    response = app.test_client().get(path)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_the_right_password_logs_in_and_the_wrong_one_does_not(app: Flask) -> None:
    add_user(app)
    client = app.test_client()

    assert log_in(client, password="wrong password!") == 401
    assert client.get("/").status_code == 302
    assert log_in(client) == 302
    assert client.get("/").status_code == 200


def test_a_form_without_its_csrf_token_is_refused(app: Flask) -> None:
    add_user(app)
    client = app.test_client()

    response = client.post("/login", data={"email": "anna@example.org", "password": PASSWORD})

    assert response.status_code == 400


def test_repeated_failed_logins_slow_down(app: Flask, clock: SimClock) -> None:
    add_user(app)
    client = app.test_client()
    for _ in range(3):
        assert log_in(client, password="wrong password!") == 401

    # Now even the right password waits: the account is throttled for a while.
    assert log_in(client) == 401
    clock.advance(3)
    assert log_in(client) == 302


def test_session_cookie_is_httponly_samesite_and_secure_behind_https(app: Flask) -> None:
    add_user(app)
    client = app.test_client()
    token = csrf(client)

    response = client.post(
        "/login", data={"email": "anna@example.org", "password": PASSWORD, "csrf_token": token}
    )

    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the test app's public URL is https


def test_login_never_redirects_off_site(app: Flask) -> None:
    add_user(app)
    client = app.test_client()
    token = csrf(client)

    response = client.post(
        "/login?next=//evil.example/x",
        data={"email": "anna@example.org", "password": PASSWORD, "csrf_token": token},
    )

    assert response.headers["Location"] == "/"


def test_viewing_a_contact_is_recorded(app: Flask) -> None:
    from sqlalchemy import select

    from intake.core.models import Contact, ContactView

    add_user(app)
    with database(app).session() as session:
        contact = Contact(channel="walk-in", started_at=app.config["CLOCK"](), outcome="handled")
        session.add(contact)
        session.commit()
        contact_id = contact.id
    client = app.test_client()
    log_in(client)

    assert client.get(f"/contacts/{contact_id}").status_code == 200
    assert client.get("/contacts/999999").status_code == 404

    with database(app).session() as session:
        [view] = session.scalars(select(ContactView)).all()
        assert view.contact_id == contact_id
