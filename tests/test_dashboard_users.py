"""The coordinator manages the logins on the Accounts page: adds a colleague, changes a
role, disables a leaver at once, enables again; each change is on the access record, which
the Access log page shows beside the contacts opened."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import select, update

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import LoginThrottle, OutboxMessage, User
from routing.desk import Desk

from .auth import COORDINATOR, STAFF, AuthActions
from .factories import PASSWORD, add_contact, add_user
from .logins import (
    NEW,
    access_events,
    add_colleague,
    as_coordinator,
    login_row,
    page_text,
    send,
    without_token,
)

if TYPE_CHECKING:
    pass

CELL = r"<td[^>]*>(.*?)</td>"


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


def test_a_coordinator_who_makes_themself_staff_lands_on_now(app: Flask, auth: AuthActions) -> None:
    client = as_coordinator(auth)
    add_user(app, "tweede@example.org", role="coordinator")

    response = send(client, f"/users/{login_row(app, COORDINATOR).id}/role", role="staff")

    assert (response.status_code, response.headers["Location"]) == (302, "/")
    assert login_row(app, COORDINATOR).role == "staff"
    assert client.get("/users").status_code == 403


def test_a_session_of_a_disabled_login_is_refused_even_if_it_was_not_ended(
    app: Flask, auth: AuthActions, clock: SimClock
) -> None:
    client = auth.login(STAFF)
    with database(app).session() as session:  # as a disable whose sessions were missed
        session.execute(update(User).where(User.email == STAFF).values(disabled_at=clock()))
        session.commit()

    response = client.get("/")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
