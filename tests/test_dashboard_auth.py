"""Dashboard logins: every page behind one, CSRF on forms, and failed logins slowing down."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import check_password_hash

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import ContactView, LoginSession, LoginThrottle, User
from intake.shell.auth import create_user
from intake.shell.jobs import purge_expired
from intake.shell.sessions import end_all_sessions

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


def test_a_good_login_starts_the_accounts_count_of_failures_again(
    client: FlaskClient, auth: AuthActions
) -> None:
    auth.add_account()
    for _ in range(2):
        assert auth.submit(password="wrong password!").status_code == 401
    assert auth.submit().status_code == 302
    auth.logout()

    # Two more typing mistakes are two, not four: the right password still opens at once.
    for _ in range(2):
        assert auth.submit(password="wrong password!").status_code == 401
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


def test_a_copied_session_cookie_stops_working_after_logout(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login()
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    assert thief.get("/").status_code == 200

    auth.logout()

    assert thief.get("/").status_code == 302
    assert client.get("/").status_code == 302


def test_ending_every_session_of_a_user_logs_out_each_of_its_clients(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    laptop = auth.login(client=app.test_client())

    with database(app).session() as session:
        user = session.scalars(select(User).where(User.email == STAFF)).one()
        assert end_all_sessions(session, user.id, clock()) == 2
        session.commit()

    assert client.get("/").status_code == 302
    assert laptop.get("/").status_code == 302


def test_a_session_ends_after_a_working_day_idle_and_at_its_lifetime(
    client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    clock.advance(7 * 3600)
    assert client.get("/").status_code == 200  # 7 h idle: still on
    clock.advance(4 * 3600)
    assert client.get("/").status_code == 200  # 11 h after logging in
    clock.advance(2 * 3600)
    assert client.get("/").status_code == 302  # 13 h: past the 12 h lifetime

    auth.submit()
    clock.advance(8 * 3600 + 60)
    assert client.get("/").status_code == 302  # over 8 h without a click


def _answers(auth: AuthActions, email: str, times: int) -> list[tuple[int, str]]:
    answers = []
    for _ in range(times):
        response = auth.submit(email, "wrong password!")
        [message] = _FLASH.findall(response.get_data(as_text=True))
        answers.append((response.status_code, message))
    return answers


_FLASH = re.compile(r'<p class="flash error" role="alert">([^<]*)</p>')


def test_an_address_without_a_login_gets_the_same_answers_and_the_same_work(
    auth: AuthActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth.add_account()
    checked: list[str] = []

    def counting(pwhash: str, password: str) -> bool:
        checked.append(pwhash)
        return check_password_hash(pwhash, password)

    monkeypatch.setattr("intake.shell.auth.check_password_hash", counting)

    known = _answers(auth, STAFF, 5)
    known_checks = len(checked)
    unknown = _answers(auth, "nobody@example.org", 5)

    assert unknown == known
    assert [status for status, _ in known] == [401] * 5
    assert "Probeer het over" in known[-1][1]  # both are told to wait, alike (Dutch)
    assert known_checks == 5 and len(checked) == 10  # a hash checked every time, both


def test_many_failures_from_one_client_slow_that_client_down(
    auth: AuthActions, clock: SimClock
) -> None:
    auth.add_account()
    for number in range(20):
        # A different address each time: only the client's own counter adds up.
        assert auth.submit(f"guess{number}@example.org", "wrong password!").status_code == 401

    assert auth.submit().status_code == 401  # even the right password waits now
    clock.advance(3)
    assert auth.submit().status_code == 302


def test_the_retention_job_removes_old_sessions_and_old_failed_login_counts(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    auth.logout()  # ended now
    laptop = auth.login(client=app.test_client())  # left open, and so used up at 12 h
    auth.submit("nobody@example.org", "wrong password!")  # a count for an unknown address

    def rows() -> tuple[int, int]:
        with database(app).session() as session:
            return (
                len(session.scalars(select(LoginSession)).all()),
                len(session.scalars(select(LoginThrottle)).all()),
            )

    before = rows()
    assert before[0] == 2 and before[1] >= 1
    clock.advance(2 * 86400)
    purge_expired(app)
    assert rows() == (2, 0)  # the failures are forgotten after a day, the sessions kept

    clock.advance(29 * 86400)  # 31 days: the ended one is over 30 days gone, the open one too
    purge_expired(app)
    assert rows() == (0, 0)
    assert laptop.get("/").status_code == 302


def test_the_throttle_keeps_no_address_it_counts(app: Flask, auth: AuthActions) -> None:
    auth.add_account()
    auth.submit(STAFF, "wrong password!")
    auth.submit("j.jansen@example.nl", "wrong password!")  # a patient's, typed by mistake

    with database(app).session() as session:
        keys = session.scalars(select(LoginThrottle.key)).all()
    assert len(keys) == 3  # two typed addresses and the one client
    for key in keys:
        assert "@" not in key and "example" not in key and "127.0.0.1" not in key
