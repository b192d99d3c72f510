"""A second factor for local logins: enrolling an authenticator app by its QR code, a code
after the password, recovery codes, and the coordinator's rule that every login needs one.

Codes are made here as the colleague's phone makes them (`pyotp`, from the key the page
shows), at the injected clock's time."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import LoginSession, SecondFactor, User

from .auth import COORDINATOR, STAFF, AuthActions, csrf_token
from .concurrency import at_once

Intake = Callable[..., tuple[int, str, str]]


def shown_key(page: str) -> str:
    match = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page)
    assert match is not None, "no key on the enrolment page"
    return match.group(1).replace(" ", "")


def code_at(key: str, moment: datetime) -> str:
    return pyotp.TOTP(key).at(moment)


def send_code(client: FlaskClient, path: str, code: str) -> TestResponse:
    return client.post(path, data={"code": code, "csrf_token": csrf_token(client, path)})


def enrol(client: FlaskClient, clock: SimClock) -> tuple[str, list[str]]:
    """Set up the app from the account page; the key and the recovery codes shown."""
    page = client.get("/account/second-factor").get_data(as_text=True)
    assert "<svg" in page  # the QR code to scan
    key = shown_key(page)
    answer = send_code(client, "/account/second-factor", code_at(key, clock()))
    assert answer.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-f-]+)</code></li>", answer.get_data(as_text=True))
    assert len(codes) == 10
    return key, codes


def session_rows(app: Flask, email: str) -> list[LoginSession]:
    with database(app).session() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return list(
            session.scalars(
                select(LoginSession).where(
                    LoginSession.user_id == user.id, LoginSession.ended_at.is_(None)
                )
            )
        )


def test_after_enrolling_a_login_needs_the_apps_code_and_never_shows_the_key_again(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    key, _ = enrol(client, clock)
    assert "<svg" not in client.get("/account/second-factor").get_data(as_text=True)
    auth.logout()
    clock.advance(60)

    # The right password alone opens nothing yet: the next step asks for the code.
    answer = auth.submit()
    assert answer.headers["Location"] == "/login/code"
    assert client.get("/").status_code == 302
    assert session_rows(app, STAFF) == []
    assert send_code(client, "/login/code", "000000").status_code == 401
    answer = send_code(client, "/login/code", code_at(key, clock()))
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_wrong_code_does_not_confirm_the_app(
    client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    page = client.get("/account/second-factor").get_data(as_text=True)
    key = shown_key(page)

    answer = send_code(client, "/account/second-factor", "123456")

    assert answer.status_code == 422
    assert "That code is not right" in answer.get_data(as_text=True)
    assert shown_key(answer.get_data(as_text=True)) == key  # the same key, to try again
    assert "You log in with your password alone." in client.get("/account").get_data(as_text=True)


def test_a_code_opens_one_login_only(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    key, _ = enrol(client, clock)
    auth.logout()
    clock.advance(60)
    code = code_at(key, clock())
    auth.submit()
    assert send_code(client, "/login/code", code).status_code == 302

    # Someone who saw the code over a shoulder, with the password, a moment later.
    other = app.test_client()
    auth.submit(client=other)
    assert send_code(other, "/login/code", code).status_code == 401


def test_two_logins_with_one_code_at_once_open_one(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    key, _ = enrol(client, clock)
    auth.logout()
    clock.advance(60)
    clients = [app.test_client() for _ in range(2)]
    for other in clients:
        assert auth.submit(client=other).headers["Location"] == "/login/code"
    code = code_at(key, clock())
    posts = [
        (other, "/login/code", {"code": code, "csrf_token": csrf_token(other, "/login/code")})
        for other in clients
    ]

    answers = at_once(posts)

    assert sorted(getattr(answer, "status_code", answer) for answer in answers) == [302, 401]
    assert len(session_rows(app, STAFF)) == 1


def test_a_recovery_code_logs_in_once(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    _, codes = enrol(client, clock)
    auth.logout()

    auth.submit()
    assert send_code(client, "/login/code", codes[3].upper()).status_code == 302
    assert "9 recovery codes left." in client.get("/account").get_data(as_text=True)
    auth.logout()
    auth.submit()
    assert send_code(client, "/login/code", codes[3]).status_code == 401


def test_wrong_codes_are_throttled_like_wrong_passwords(
    client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    key, _ = enrol(client, clock)
    auth.logout()
    clock.advance(60)
    auth.submit()
    for _ in range(3):
        assert send_code(client, "/login/code", "000000").status_code == 401

    answer = send_code(client, "/login/code", code_at(key, clock()))
    assert answer.status_code == 401
    assert "Too many failed attempts" in answer.get_data(as_text=True)  # in her language
    clock.advance(3)
    assert send_code(client, "/login/code", code_at(key, clock())).status_code == 302


def test_the_step_after_the_password_lapses_after_a_few_minutes(
    client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    key, _ = enrol(client, clock)
    auth.logout()
    auth.submit()
    token = csrf_token(client, "/login/code")  # the form open, then left for six minutes
    clock.advance(6 * 60)

    answer = client.post("/login/code", data={"code": code_at(key, clock()), "csrf_token": token})

    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_when_the_coordinator_requires_it_every_login_enrols_before_it_gets_in(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    staff = app.test_client()
    auth.login(STAFF, client=staff)  # logged in on a password alone, before the rule
    coordinator = auth.login(COORDINATOR, role="coordinator")
    policy = {"required": "1", "csrf_token": csrf_token(coordinator, "/account")}
    # Not before the coordinator's own app is set up: nobody locks the desk out.
    coordinator.post("/account/policy", data=policy)
    assert "Every login needs a second factor." not in coordinator.get("/account").get_data(
        as_text=True
    )
    enrol(coordinator, clock)
    policy["csrf_token"] = csrf_token(coordinator, "/account")
    answer = coordinator.post("/account/policy", data=policy, follow_redirects=True)
    assert "1 sessions without one were ended" in answer.get_data(as_text=True)

    # Anna's open session ended; logging in again she must set up the app first.
    assert staff.get("/").status_code == 302
    assert auth.submit(client=staff).headers["Location"] == "/login/enrol"
    assert staff.get("/").status_code == 302
    page = staff.get("/login/enrol").get_data(as_text=True)
    key = shown_key(page)
    answer = send_code(staff, "/login/enrol", code_at(key, clock()))
    assert answer.status_code == 200 and "Recovery codes" in answer.get_data(as_text=True)
    assert staff.get("/").status_code == 200
    with database(app).session() as session:
        rows = session.scalars(select(SecondFactor)).all()
        assert len(rows) == 2 and all(row.confirmed_at is not None for row in rows)


def test_only_a_coordinator_sets_the_rule(client: FlaskClient, auth: AuthActions) -> None:
    auth.login()
    answer = client.post(
        "/account/policy", data={"required": "1", "csrf_token": csrf_token(client, "/account")}
    )
    assert answer.status_code == 403


def test_log_out_everywhere_ends_every_session(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    other = app.test_client()
    auth.login(client=other)
    auth.login()
    assert len(session_rows(app, STAFF)) == 2

    client.post("/account/log-out-everywhere", data={"csrf_token": csrf_token(client, "/account")})

    assert session_rows(app, STAFF) == []
    assert other.get("/").status_code == 302


def test_setting_up_the_app_and_the_rule_are_on_the_access_record(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    coordinator = auth.login(COORDINATOR, role="coordinator")
    enrol(coordinator, clock)
    policy = {"required": "1", "csrf_token": csrf_token(coordinator, "/account")}
    coordinator.post("/account/policy", data=policy)

    page = coordinator.get("/access-log").get_data(as_text=True)

    assert "authenticator app set up" in page
    assert "a second factor required of every login; sessions without one ended: 0" in page


def test_a_lost_phone_is_reset_on_the_command_line_and_the_login_enrols_again(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock, intake: Intake
) -> None:
    auth.login()
    enrol(client, clock)

    code, out, _ = intake("users", "reset-second-factor", STAFF)

    assert code == 0 and "sets up an authenticator app again" in out
    assert client.get("/").status_code == 302  # the session with the lost phone ended
    assert auth.submit().headers["Location"] == "/"  # no code asked: nothing to ask it of
    assert intake("users", "reset-second-factor", STAFF)[1].strip().endswith("nothing changed")


def test_a_login_disabled_between_password_and_code_gets_no_session(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock, intake: Intake
) -> None:
    auth.login()
    key, _ = enrol(client, clock)
    auth.logout()
    clock.advance(60)
    auth.submit()
    token = csrf_token(client, "/login/code")
    assert intake("users", "disable", STAFF)[0] == 0

    answer = client.post("/login/code", data={"code": code_at(key, clock()), "csrf_token": token})

    assert answer.headers["Location"] == "/login"
    assert session_rows(app, STAFF) == []


def test_the_enrolment_page_opened_twice_at_once_shows_one_key(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    other = app.test_client()
    auth.login(client=other)
    auth.login()

    answers = at_once(
        [(client, "/account/second-factor", None), (other, "/account/second-factor", None)]
    )

    assert [getattr(answer, "status_code", answer) for answer in answers] == [200, 200]
    keys = {shown_key(answer.get_data(as_text=True)) for answer in answers}
    assert len(keys) == 1


# --- the key, sealed in the database ------------------------------------------------------


def stored_secret(app: Flask) -> str:
    with database(app).session() as session:
        return session.scalars(select(SecondFactor.secret)).one()


def set_stored_secret(app: Flask, value: str) -> None:
    with database(app).session() as session:
        session.execute(update(SecondFactor).values(secret=value))
        session.commit()


def logs_in_with(client: FlaskClient, auth: AuthActions, code: str) -> bool:
    auth.submit()
    return send_code(client, "/login/code", code).status_code == 302


def test_the_database_holds_the_key_sealed_not_as_the_app_shows_it(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    key, _ = enrol(client, clock)

    stored = stored_secret(app)

    assert stored.startswith("fernet:") and key not in stored
    assert pyotp.random_base32() not in stored  # (and not any other bare base32 key)


def test_a_key_stored_before_sealing_still_opens_and_is_sealed_at_its_next_use(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    key, _ = enrol(client, clock)
    auth.logout()
    set_stored_secret(app, key)  # as a login enrolled before sealing came in has it
    clock.advance(60)

    assert logs_in_with(client, auth, code_at(key, clock()))
    assert stored_secret(app).startswith("fernet:")


def test_a_new_secret_key_keeps_second_factors_with_the_old_one_as_a_fallback(
    app: Flask, client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.login()
    key, _ = enrol(client, clock)
    auth.logout()
    before = stored_secret(app)
    app.config.update(SECRET_KEY="the new key", SECRET_KEY_FALLBACKS=["test"])
    clock.advance(60)

    assert logs_in_with(client, auth, code_at(key, clock()))
    assert stored_secret(app) != before  # sealed again, under the new key
    auth.logout()
    app.config.update(SECRET_KEY_FALLBACKS=[])  # the old key retired
    clock.advance(60)
    assert logs_in_with(client, auth, code_at(key, clock()))


def test_without_the_old_key_the_app_code_fails_and_a_recovery_code_still_logs_in(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    clock: SimClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth.login()
    key, codes = enrol(client, clock)
    auth.logout()
    app.config.update(SECRET_KEY="the new key")
    clock.advance(60)

    assert not logs_in_with(client, auth, code_at(key, clock()))
    assert "INTAKE_SECRET_KEY_FALLBACKS" in caplog.text
    assert send_code(client, "/login/code", codes[0]).status_code == 302
