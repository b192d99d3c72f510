"""`intake users` and `intake create-user`: the logins from the command line, on the record."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select

from intake.core.db import database
from intake.core.models import AccessEvent, User

from .auth import STAFF, AuthActions
from .factories import PASSWORD, add_user

Intake = Callable[..., tuple[int, str, str]]


def events(app: Flask) -> list[tuple[str, str, str, str]]:
    with database(app).session() as session:
        rows = session.scalars(select(AccessEvent).order_by(AccessEvent.id))
        return [(e.action, e.actor, e.subject, e.detail) for e in rows]


def login(app: Flask, email: str) -> User:
    with database(app).session() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        session.expunge(user)
        return user


def test_users_list_shows_each_login_on_one_line(
    intake: Intake, app: Flask, auth: AuthActions
) -> None:
    auth.login(STAFF, role="coordinator")  # 10:15 in Amsterdam; no desk loaded, so UTC
    add_user(app, "bram@example.org", language="nl")
    assert intake("users", "disable", "bram@example.org")[0] == 0

    code, out, err = intake("users", "list")

    assert (code, err) == (0, "")
    assert [line.split() for line in out.splitlines()] == [
        ["anna@example.org", "coordinator", "en", "2026-11-23", "09:15", "active"],
        ["bram@example.org", "staff", "nl", "never", "disabled"],
    ]


def test_users_list_says_when_there_are_none(intake: Intake, app: Flask) -> None:
    code, out, _ = intake("users", "list")

    assert code == 0
    assert "no logins yet" in out


def test_users_disable_ends_the_open_session_and_is_recorded_as_the_cli(
    intake: Intake, app: Flask, auth: AuthActions
) -> None:
    client = auth.login(STAFF)
    assert client.get("/").status_code == 200

    code, out, err = intake("users", "disable", "Anna@Example.org")

    assert (code, err) == (0, "")
    assert out == "anna@example.org is disabled; 1 open session(s) ended\n"
    assert client.get("/").status_code == 302
    assert auth.submit(STAFF, PASSWORD, client=app.test_client()).status_code == 401
    assert events(app) == [("disabled", "cli", STAFF, "sessions_ended=1")]
    with database(app).session() as session:
        [event] = session.scalars(select(AccessEvent)).all()
        assert event.actor_id is None and event.subject_user_id == login(app, STAFF).id


def test_users_enable_lets_the_login_in_again(
    intake: Intake, app: Flask, auth: AuthActions
) -> None:
    auth.add_account()
    intake("users", "disable", STAFF)

    code, out, _ = intake("users", "enable", STAFF)
    again = intake("users", "enable", STAFF)

    assert (code, out) == (0, "anna@example.org can log in again\n")
    assert again[:2] == (0, "anna@example.org was not disabled\n")
    assert auth.submit().status_code == 302
    assert [event[0] for event in events(app)] == ["disabled", "enabled"]


def test_users_disable_refuses_the_last_active_coordinator(intake: Intake, app: Flask) -> None:
    add_user(app, "coordinator@example.org", role="coordinator")

    code, out, err = intake("users", "disable", "coordinator@example.org")

    assert code == 1 and out == ""
    assert err == "intake: coordinator@example.org is the last active coordinator\n"
    assert login(app, "coordinator@example.org").disabled_at is None
    assert events(app) == []


@pytest.mark.parametrize("command", ["disable", "enable"])
def test_users_disable_and_enable_name_an_unknown_address(
    intake: Intake, app: Flask, command: str
) -> None:
    code, out, err = intake("users", command, "niemand@example.org")

    assert code == 1 and out == ""
    assert err == "intake: there is no login niemand@example.org\n"


def test_create_user_still_makes_a_login_and_records_it(
    intake: Intake, app: Flask, auth: AuthActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))

    code, out, _ = intake("create-user", STAFF, "--role", "coordinator", "--password-stdin")

    assert (code, out) == (0, "anna@example.org can log in as coordinator\n")
    assert auth.submit().status_code == 302
    assert events(app) == [("user_added", "cli", STAFF, "role=coordinator language=nl")]


def test_create_user_for_an_existing_login_records_a_password_set(
    intake: Intake, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(app, STAFF)
    monkeypatch.setattr("sys.stdin", io.StringIO("een nieuw wachtwoord\n"))

    code, _, _ = intake("create-user", STAFF, "--language", "en", "--password-stdin")

    assert code == 0
    assert events(app) == [("password_set", "cli", STAFF, "role=staff language=en via=cli")]
