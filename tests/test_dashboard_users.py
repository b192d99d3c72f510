"""The coordinator manages the logins on the Accounts page: adds a colleague (who is mailed a
one-time link to choose a password), changes a role, disables a leaver at once, enables
again, sends a reset link; each change is on the access record."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import AccessEvent, LoginThrottle, OutboxMessage, PasswordReset, User
from intake.shell.jobs import flush_outbox, purge_expired
from routing.desk import Desk

from .auth import COORDINATOR, STAFF, AuthActions, csrf_token
from .conftest import PUBLIC_URL
from .factories import PASSWORD, add_contact, add_user

if TYPE_CHECKING:
    from tests.mailservers import SmtpSink

NEW = "nieuw@example.org"
NEW_PASSWORD = "zes woorden op een rij"
LINK = re.compile(r"\S+/password/[A-Za-z0-9_-]+")
CELL = r"<td[^>]*>(.*?)</td>"


# --- helpers -----------------------------------------------------------------------------


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


# --- who may --------------------------------------------------------------------------------


COORDINATOR_PAGES = [
    ("GET", "/users"),
    ("POST", "/users"),
    ("POST", "/users/{id}/role"),
    ("GET", "/users/{id}/disable"),
    ("POST", "/users/{id}/disable"),
    ("POST", "/users/{id}/enable"),
    ("POST", "/users/{id}/reset"),
    ("GET", "/access-log"),
]


@pytest.mark.parametrize(("method", "path"), COORDINATOR_PAGES)
def test_staff_are_refused_every_coordinator_page(
    app: Flask, auth: AuthActions, method: str, path: str
) -> None:
    client = auth.login(STAFF)
    add_user(app, "bram@example.org")
    target = path.format(id=login_row(app, "bram@example.org").id)

    if method == "GET":
        response = client.get(target)
    else:  # a form token from a page staff may open, so only the role can refuse it
        response = send(client, target, form_page="/", role="coordinator")

    assert response.status_code == 403
    assert login_row(app, "bram@example.org").role == "staff"
    assert access_events(app) == []


def test_the_accounts_page_lists_every_login_with_role_language_last_login_and_state(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    add_user(app, "bram@example.org", language="nl")
    add_user(app, "dirk@example.org")
    client = as_coordinator(auth)  # logged in at 10:15 Amsterdam time
    send(client, f"/users/{login_row(app, 'dirk@example.org').id}/disable")

    page = page_text(client.get("/users"))

    rows = re.findall(r'<tr data-email="([^"]+)">(.*?)</tr>', page, re.S)
    cells = {
        email: [re.sub(r"<[^>]+>", " ", cell).split() for cell in re.findall(CELL, row, re.S)]
        for email, row in rows
    }
    assert list(cells) == ["bram@example.org", COORDINATOR, "dirk@example.org"]  # disabled last
    assert cells[COORDINATOR][2:5] == [["English"], ["23-11-2026", "10:15"], ["active"]]
    assert cells["bram@example.org"][2:5] == [["Nederlands"], ["never"], ["active"]]
    assert cells["dirk@example.org"][4] == ["disabled"]
    assert 'value="coordinator" selected' in rows[1][1]


# --- adding a colleague -----------------------------------------------------------------------


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


def test_an_address_that_has_a_login_is_refused_beside_the_field_and_the_form_kept(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    add_user(app, NEW)
    client = as_coordinator(auth)

    response = add_colleague(client, " Nieuw@Example.org ", role="coordinator", language="en")

    assert response.status_code == 400
    page = page_text(response)
    assert 'value="Nieuw@Example.org"' in page
    assert re.search(r'<option value="coordinator" selected>', page.split("add-user")[1])
    assert re.search(r'<option value="en" selected>', page.split("add-user")[1])
    assert 'id="email-error">This address has a login already.<' in page
    assert login_row(app, NEW).role == "staff"
    assert access_events(app) == []


def test_a_mistyped_address_is_refused_beside_the_field(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = as_coordinator(auth)

    response = add_colleague(client, "nieuw@example")

    assert response.status_code == 400
    assert 'value="nieuw@example"' in page_text(response)
    assert 'id="email-error">Type one mail address' in page_text(response)
    with database(app).session() as session:
        assert session.scalars(select(User.email).where(User.email == "nieuw@example")).all() == []


# --- roles ------------------------------------------------------------------------------------


def test_a_role_change_is_made_and_recorded(app: Flask, auth: AuthActions) -> None:
    add_user(app, "bram@example.org")
    client = as_coordinator(auth)
    bram = login_row(app, "bram@example.org")

    response = send(client, f"/users/{bram.id}/role", role="coordinator")

    assert response.status_code == 302
    assert login_row(app, "bram@example.org").role == "coordinator"
    assert access_events(app) == [
        ("role_changed", COORDINATOR, "bram@example.org", "old=staff new=coordinator")
    ]


def test_the_last_active_coordinator_cannot_be_made_staff_or_disabled(
    app: Flask, auth: AuthActions
) -> None:
    client = as_coordinator(auth)
    me = login_row(app, COORDINATOR)
    add_user(app, "oud@example.org", role="coordinator")  # a coordinator who left
    send(client, f"/users/{login_row(app, 'oud@example.org').id}/disable")
    events_before = access_events(app)

    response = send(client, f"/users/{me.id}/role", role="staff")

    assert response.status_code == 302
    page = page_text(client.get("/users"))
    assert "is the last active coordinator: make someone else coordinator first" in page
    assert login_row(app, COORDINATOR).role == "coordinator"
    assert access_events(app) == events_before


def test_a_coordinator_cannot_disable_their_own_login(app: Flask, auth: AuthActions) -> None:
    client = as_coordinator(auth)
    add_user(app, "tweede@example.org", role="coordinator")
    me = login_row(app, COORDINATOR)

    confirm = client.get(f"/users/{me.id}/disable")
    response = send(client, f"/users/{me.id}/disable")

    assert "You cannot disable your own login" in page_text(confirm)
    assert "disable-confirm" not in page_text(confirm)
    assert response.status_code == 302
    assert "You cannot disable your own login" in page_text(client.get("/users"))
    assert login_row(app, COORDINATOR).disabled_at is None
    assert client.get("/").status_code == 200


# --- disabling and enabling ---------------------------------------------------------------------


def test_disabling_a_leaver_ends_their_open_session_and_stops_their_login(
    app: Flask, auth: AuthActions
) -> None:
    leaver = auth.login(STAFF, client=app.test_client())
    assert leaver.get("/").status_code == 200
    client = as_coordinator(auth)
    anna = login_row(app, STAFF)

    confirm = client.get(f"/users/{anna.id}/disable")
    assert confirm.status_code == 200 and "disable-confirm" in page_text(confirm)
    assert leaver.get("/").status_code == 200  # the confirm step changed nothing
    response = send(client, f"/users/{anna.id}/disable")

    assert response.status_code == 302
    assert "anna@example.org is disabled and can no longer log in; 1 open session ended." in (
        page_text(client.get("/users"))
    )
    next_request = leaver.get("/contacts")
    assert next_request.status_code == 302
    assert next_request.headers["Location"].startswith("/login")
    assert login_row(app, STAFF).disabled_at is not None
    assert access_events(app) == [("disabled", COORDINATOR, STAFF, "sessions_ended=1")]


def test_a_disabled_login_is_answered_as_a_wrong_password_and_counted(
    app: Flask, auth: AuthActions
) -> None:
    client = as_coordinator(auth)
    add_user(app, "bram@example.org")
    send(client, f"/users/{login_row(app, 'bram@example.org').id}/disable")
    stranger = app.test_client()

    disabled = auth.submit("bram@example.org", PASSWORD, client=stranger)
    wrong = auth.submit("bram@example.org", "not the password", client=stranger)

    assert disabled.status_code == wrong.status_code == 401
    assert "Dit e-mailadres en wachtwoord passen niet bij elkaar." in page_text(disabled)
    assert without_token(disabled) == without_token(wrong)
    with database(app).session() as session:
        rows = session.scalars(select(LoginThrottle))
        counts = {row.key.split(":")[0]: row.failures for row in rows}
    assert counts == {"account": 2, "client": 2}


def test_an_enabled_login_logs_in_again_with_its_old_password(
    app: Flask, auth: AuthActions
) -> None:
    client = as_coordinator(auth)
    add_user(app, "bram@example.org")
    bram = login_row(app, "bram@example.org")
    send(client, f"/users/{bram.id}/disable")

    response = send(client, f"/users/{bram.id}/enable")

    assert response.status_code == 302
    assert login_row(app, "bram@example.org").disabled_at is None
    assert auth.submit("bram@example.org", client=app.test_client()).status_code == 302
    assert [event[0] for event in access_events(app)] == ["disabled", "enabled"]


def test_logging_in_notes_the_last_login_and_forgets_the_failed_attempts(
    app: Flask, auth: AuthActions, clock: SimClock
) -> None:
    auth.add_account()
    for _ in range(2):
        assert auth.submit(password="wrong password!").status_code == 401

    assert auth.submit().status_code == 302
    auth.logout()
    assert auth.submit(password="wrong password!").status_code == 401

    # Two failures before and one after the login would be three: the next would wait.
    assert auth.submit().status_code == 302
    assert login_row(app, STAFF).last_login_at == clock.moment


# --- reset links ------------------------------------------------------------------------------


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


# --- the access log ---------------------------------------------------------------------------


def test_the_access_log_shows_changes_to_logins_and_contacts_opened_newest_first(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    contact_id = add_contact(app, channel="walk-in")
    client = as_coordinator(auth)
    add_user(app, "bram@example.org")
    bram = login_row(app, "bram@example.org")
    client.get(f"/contacts/{contact_id}")
    send(client, f"/users/{bram.id}/role", role="coordinator")
    clock.advance(60)
    send(client, f"/users/{bram.id}/disable")

    page = page_text(client.get("/access-log"))

    events = page.split('class="access-events"')[2].split("</table>")[0]
    rows = re.findall(r'<tr data-action="([^"]+)">(.*?)</tr>', events, re.S)
    assert [action for action, _ in rows] == ["disabled", "role_changed"]
    assert "role changed from Staff to Coordinator" in rows[1][1]
    assert COORDINATOR in rows[0][1] and "bram@example.org" in rows[0][1]
    views = page.split('class="contact-views"')[2]
    assert f"HD-{contact_id:06d}" in views and COORDINATOR in views


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


def test_without_a_sender_address_no_colleague_is_added_and_the_form_is_kept(
    app: Flask, auth: AuthActions
) -> None:
    # No desk loaded and no INTAKE_SMTP_FROM: the link could not be mailed.
    client = as_coordinator(auth)

    response = add_colleague(client, role="coordinator")

    assert response.status_code == 400
    assert "No mail can be sent yet: the desk has no sender address." in page_text(response)
    assert f'value="{NEW}"' in page_text(response)
    with database(app).session() as session:
        assert session.scalars(select(User.email).where(User.email == NEW)).all() == []
        assert session.scalars(select(OutboxMessage)).all() == []
    assert access_events(app) == []
