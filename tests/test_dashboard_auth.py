"""Dashboard logins: every page behind one, CSRF on forms, and failed logins slowing down."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import ContactView
from intake.shell.auth import create_user

from .auth import STAFF, AuthActions
from .factories import PASSWORD, add_contact


@pytest.mark.parametrize("path", ["/", "/contacts/1"])
def test_pages_need_a_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_the_right_password_logs_in_and_the_wrong_one_does_not(
    client: FlaskClient, auth: AuthActions
) -> None:
    auth.add_account()

    assert auth.submit(password="wrong password!").status_code == 401
    assert client.get("/").status_code == 302
    assert auth.submit().status_code == 302
    assert client.get("/").status_code == 200


def test_an_account_made_by_create_user_logs_in_with_its_password(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    # The other tests' accounts have a quick hash; this one has the production setting.
    with database(app).session() as session:
        create_user(
            session, STAFF, PASSWORD, role="staff", language="nl", now=app.config["CLOCK"]()
        )
        session.commit()

    assert auth.submit(password="wrong password!").status_code == 401
    assert auth.submit().status_code == 302
    assert client.get("/").status_code == 200


def test_logging_out_ends_the_session(client: FlaskClient, auth: AuthActions) -> None:
    auth.login()

    response = auth.logout()

    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient, auth: AuthActions) -> None:
    auth.add_account()

    response = client.post("/login", data={"email": STAFF, "password": PASSWORD})

    assert response.status_code == 400


def test_repeated_failed_logins_slow_down(auth: AuthActions, clock: SimClock) -> None:
    auth.add_account()
    for _ in range(3):
        assert auth.submit(password="wrong password!").status_code == 401

    # Now even the right password waits: the account is throttled for a while.
    assert auth.submit().status_code == 401
    clock.advance(3)
    assert auth.submit().status_code == 302


def test_session_cookie_is_httponly_samesite_and_secure_behind_https(auth: AuthActions) -> None:
    auth.add_account()

    response = auth.submit()

    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the test app's public URL is https


def test_login_never_redirects_off_site(auth: AuthActions) -> None:
    auth.add_account()

    response = auth.submit(path="/login?next=//evil.example/x")

    assert response.headers["Location"] == "/"


def test_viewing_a_contact_is_recorded(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    contact_id = add_contact(app, channel="walk-in")
    auth.login()

    assert client.get(f"/contacts/{contact_id}").status_code == 200
    assert client.get("/contacts/999999").status_code == 404

    with database(app).session() as session:
        [view] = session.scalars(select(ContactView)).all()
        assert view.contact_id == contact_id
