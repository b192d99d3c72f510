"""The Now page tells coordinators which mailbox cannot be read or send, and since when."""

from __future__ import annotations

import dataclasses

from flask import Flask
from flask.testing import FlaskClient

from intake.core.db import database
from intake.core.models import SENDING, MailboxStatus
from routing.desk import Desk, Mailbox

from .auth import COORDINATOR, AuthActions
from .conftest import load_desk, local


def status(app: Flask, mailbox: str, *, ok: bool, error: str, since: str) -> None:
    with database(app).session() as session:
        moment = local(since)
        session.add(
            MailboxStatus(mailbox=mailbox, ok=ok, error=error, since=moment, checked_at=moment)
        )
        session.commit()


def with_linde(app: Flask, example_desk: Desk) -> None:
    """The example desk with a second organisation's mailbox, Zorggroep De Linde's."""
    linde = Mailbox(address="helpdesk@delinde.nl", organisation="Zorggroep De Linde")
    load_desk(app, dataclasses.replace(example_desk, mailboxes=(*example_desk.mailboxes, linde)))


def test_a_failing_mailbox_is_shown_with_its_organisation_and_since_when(
    app: Flask, example_desk: Desk, client: FlaskClient, auth: AuthActions
) -> None:
    with_linde(app, example_desk)
    status(
        app,
        "helpdesk@delinde.nl",
        ok=False,
        error="LoginError: [AUTHENTICATIONFAILED] Authentication failed.",
        since="2026-11-23 10:02",
    )
    status(app, "helpdesk@example.org", ok=True, error="", since="2026-11-23 09:00")
    auth.login(COORDINATOR, role="coordinator")

    page = client.get("/").get_data(as_text=True)

    assert "Mailbox of Zorggroep De Linde: sign-in refused since 10:02" in page
    assert "Ziekenhuis Noord: " not in page


def test_a_refused_oauth2_sign_in_and_a_mailbox_that_cannot_send_are_each_named(
    app: Flask, example_desk: Desk, client: FlaskClient, auth: AuthActions
) -> None:
    with_linde(app, example_desk)
    status(
        app,
        "helpdesk@delinde.nl",
        ok=False,
        error="SignInError: helpdesk@delinde.nl: signing in with Microsoft 365 failed: "
        "AADSTS7000215: Invalid client secret provided.",
        since="2026-11-23 10:02",
    )
    status(
        app,
        SENDING + "helpdesk@example.org",
        ok=False,
        error="SMTP login refused (535 5.7.139 Authentication unsuccessful)",
        since="2026-11-23 10:05",
    )
    auth.login(COORDINATOR, role="coordinator")

    page = client.get("/").get_data(as_text=True)

    assert "Mailbox of Zorggroep De Linde: sign-in refused since 10:02" in page
    assert "Mailbox of Ziekenhuis Noord: mail cannot be sent since 10:05" in page


def test_a_volunteer_is_not_shown_the_mailboxes_trouble(
    app: Flask, desk: Desk, client: FlaskClient, auth: AuthActions
) -> None:
    status(app, "helpdesk@example.org", ok=False, error="TimeoutError", since="2026-11-23 10:02")
    auth.login()  # staff

    page = client.get("/").get_data(as_text=True)

    assert "Mailbox of" not in page


def test_no_trouble_no_notice(
    app: Flask, desk: Desk, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login()

    page = client.get("/").get_data(as_text=True)

    assert "Mailbox of" not in page
