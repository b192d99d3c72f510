"""One-time links to choose a password: mailed to a new colleague or on a reset, through the
outbox, in the colleague's language; each works once, for a day, and sets the password that
then logs in."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import PasswordReset
from intake.shell.jobs import flush_outbox, purge_expired
from routing.desk import Desk

from .auth import COORDINATOR, AuthActions, csrf_token
from .conftest import PUBLIC_URL
from .factories import PASSWORD, add_user
from .logins import (
    LINK,
    NEW,
    NEW_PASSWORD,
    access_events,
    add_colleague,
    as_coordinator,
    link_in_outbox,
    login_row,
    page_text,
    path_of,
    send,
)

if TYPE_CHECKING:
    from tests.mailservers import SmtpSink


def test_a_new_colleague_is_mailed_a_link_in_their_language_that_sets_their_password(
    app: Flask, desk: Desk, auth: AuthActions, smtp: SmtpSink
) -> None:
    app.config.update(SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_STARTTLS=False)
    client = as_coordinator(auth)

    response = add_colleague(client, role="staff", language="nl")

    assert response.status_code == 302
    assert "nieuw@example.org added" in page_text(client.get("/users"))
    user = login_row(app, NEW)
    assert (user.role, user.language, user.disabled_at) == ("staff", "nl", None)
    flush_outbox(app)
    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == (NEW,)
    assert mail.message["From"].addresses[0].addr_spec == "helpdesk@example.org"
    assert mail.message["Subject"] == "Je inlog voor Helpdesk Digitale Zorg"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    body = mail.message.get_content()
    assert "Kies hier je wachtwoord" in body
    [link] = LINK.findall(body)
    assert link.startswith(f"{PUBLIC_URL}/password/")

    newcomer = app.test_client()
    form = newcomer.get(path_of(link))
    assert form.status_code == 200 and NEW in page_text(form)
    data = {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    done = send(newcomer, path_of(link), form_page=path_of(link), **data)
    assert done.status_code == 302 and done.headers["Location"] == "/login"

    assert auth.submit(NEW, NEW_PASSWORD, client=newcomer).status_code == 302
    assert newcomer.get("/").status_code == 200
    assert [(a, actor, subject) for a, actor, subject, _ in access_events(app)] == [
        ("user_added", COORDINATOR, NEW),
        ("password_reset_sent", COORDINATOR, NEW),
        ("password_set", NEW, NEW),
    ]
    assert access_events(app)[0][3] == "role=staff language=nl"


def test_a_reset_link_replaces_the_earlier_one_and_works_once(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = as_coordinator(auth)
    add_user(app, "bram@example.org")
    bram = login_row(app, "bram@example.org")
    send(client, f"/users/{bram.id}/reset")
    first = path_of(link_in_outbox(app, "bram@example.org"))

    response = send(client, f"/users/{bram.id}/reset")
    second = path_of(link_in_outbox(app, "bram@example.org"))

    assert response.status_code == 302
    assert "A link to choose a new password was mailed to bram@example.org" in (
        page_text(client.get("/users"))
    )
    colleague = app.test_client()
    assert colleague.get(first).status_code == 410
    data = {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    assert send(colleague, second, form_page=second, **data).status_code == 302
    assert colleague.get(second).status_code == 410
    assert auth.submit("bram@example.org", NEW_PASSWORD, client=colleague).status_code == 302
    assert auth.submit("bram@example.org", PASSWORD, client=app.test_client()).status_code == 401
    assert [e[0] for e in access_events(app)] == [
        "password_reset_sent",
        "password_reset_sent",
        "password_set",
    ]


def test_setting_a_password_ends_the_colleagues_other_sessions(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    elsewhere = auth.login("bram@example.org", client=app.test_client())
    client = as_coordinator(auth)
    send(client, f"/users/{login_row(app, 'bram@example.org').id}/reset")
    link = path_of(link_in_outbox(app, "bram@example.org"))
    data = {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}

    assert send(app.test_client(), link, form_page=link, **data).status_code == 302

    assert elsewhere.get("/").status_code == 302


def test_a_link_runs_out_after_a_day(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    client = as_coordinator(auth)
    add_user(app, "bram@example.org")
    send(client, f"/users/{login_row(app, 'bram@example.org').id}/reset")
    link = path_of(link_in_outbox(app, "bram@example.org"))
    colleague = app.test_client()
    token = csrf_token(colleague, link)

    clock.advance(timedelta(hours=24, seconds=1).total_seconds())
    data = {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD, "csrf_token": token}
    response = colleague.post(link, data=data)

    assert response.status_code == 410
    assert "Deze link werkt niet meer" in page_text(response)  # no login: the browser's language
    assert "password_set" not in [e[0] for e in access_events(app)]


def test_a_reset_link_is_not_sent_to_a_disabled_login_and_disabling_drops_open_links(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = as_coordinator(auth)
    add_user(app, "bram@example.org")
    bram = login_row(app, "bram@example.org")
    send(client, f"/users/{bram.id}/reset")
    link = path_of(link_in_outbox(app, "bram@example.org"))

    send(client, f"/users/{bram.id}/disable")
    refused = send(client, f"/users/{bram.id}/reset")
    send(client, f"/users/{bram.id}/enable")

    assert refused.status_code == 302
    assert app.test_client().get(link).status_code == 410
    with database(app).session() as session:
        assert session.scalars(select(PasswordReset)).all() == []


@pytest.mark.parametrize(
    ("password", "again", "field", "message"),
    [
        ("kort", "kort", "password", "Choose a password of at least 12 characters"),
        (NEW_PASSWORD, NEW_PASSWORD + "!", "password-again", "The two passwords are not the same"),
    ],
)
def test_a_password_too_short_or_typed_differently_is_refused_beside_the_field(
    app: Flask, desk: Desk, auth: AuthActions, password: str, again: str, field: str, message: str
) -> None:
    client = as_coordinator(auth)
    add_user(app, "bram@example.org")
    send(client, f"/users/{login_row(app, 'bram@example.org').id}/reset")
    link = path_of(link_in_outbox(app, "bram@example.org"))
    colleague = app.test_client()

    response = send(colleague, link, form_page=link, password=password, password_again=again)

    assert response.status_code == 400
    assert re.search(rf'id="{field}-error">{message}', page_text(response))
    assert password not in page_text(response)
    assert colleague.get(link).status_code == 200  # the link still works


def test_an_unknown_link_says_it_no_longer_works(client: FlaskClient) -> None:
    response = client.get("/password/not-a-token", headers={"Accept-Language": "en"})

    assert response.status_code == 410
    assert "Ask the coordinator for a new one" in page_text(response)


def test_the_retention_job_forgets_links_a_month_after_they_ran_out(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    client = as_coordinator(auth)
    add_user(app, "bram@example.org")
    send(client, f"/users/{login_row(app, 'bram@example.org').id}/reset")

    clock.advance(timedelta(days=30).total_seconds())
    purge_expired(app)
    kept = len(reset_links(app))
    clock.advance(timedelta(days=1, seconds=1).total_seconds())
    purge_expired(app)

    assert (kept, reset_links(app)) == (1, [])
    assert [e[0] for e in access_events(app)] == ["password_reset_sent"]  # the record stays


def reset_links(app: Flask) -> list[str]:
    with database(app).session() as session:
        return list(session.scalars(select(PasswordReset.token_hash)))
