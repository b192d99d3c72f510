"""Fixtures for a desk with two mailboxes: Noord's, and De Linde's with its own SMTP server."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from flask import Flask

from routing.desk import Desk, Mailbox, MailServer, Signin
from tests.dovecot import IMAP_PASSWORD, SECOND_PASSWORD, SECOND_USER, Dovecot
from tests.smtpsink import SmtpSink

from .conftest import load_desk

NOORD = "helpdesk@example.org"
LINDE = SECOND_USER
SECRETS = {
    "INTAKE_MAILBOX_NOORD_PASSWORD": IMAP_PASSWORD,
    "INTAKE_MAILBOX_LINDE_PASSWORD": SECOND_PASSWORD,
}


@pytest.fixture(scope="module")
def linde_smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink(user=LINDE, password=SECOND_PASSWORD)
    sink.start()
    try:
        yield sink
    finally:
        sink.close()


@pytest.fixture
def linde_smtp(linde_smtp_server: SmtpSink) -> SmtpSink:
    linde_smtp_server.accept()
    linde_smtp_server.clear()
    return linde_smtp_server


@pytest.fixture
def linde(dovecot: Dovecot) -> Dovecot:
    """The second mailbox on the test Dovecot, emptied."""
    other = dovecot.as_user()
    other.clear()
    return other


def imap_of(dovecot: Dovecot) -> MailServer:
    return MailServer(host=dovecot.host, port=dovecot.port, tls="starttls", cafile=dovecot.cafile)


def noord_mailbox(dovecot: Dovecot) -> Mailbox:
    return Mailbox(
        address=NOORD,
        organisation="Ziekenhuis Noord",
        imap=imap_of(dovecot),
        signin=Signin(password_env="INTAKE_MAILBOX_NOORD_PASSWORD"),
    )


def linde_mailbox(dovecot: Dovecot, smtp: SmtpSink) -> Mailbox:
    return Mailbox(
        address=LINDE,
        organisation="Zorggroep De Linde",
        imap=imap_of(dovecot),
        smtp=MailServer(host=smtp.host, port=smtp.port, tls="none"),
        signin=Signin(password_env="INTAKE_MAILBOX_LINDE_PASSWORD"),
    )


@pytest.fixture
def two_desk(
    app: Flask, example_desk: Desk, dovecot: Dovecot, linde: Dovecot, linde_smtp: SmtpSink
) -> Desk:
    desk = dataclasses.replace(
        example_desk, mailboxes=(noord_mailbox(dovecot), linde_mailbox(dovecot, linde_smtp))
    )
    return load_desk(app, desk)


@pytest.fixture
def desk_app(app: Flask, smtp: SmtpSink) -> Flask:
    """No INTAKE_IMAP_*: the mailboxes come from the definition; INTAKE_SMTP_* is the sink."""
    app.config.update(
        MAILBOX_ENVIRONMENT=dict(SECRETS),
        SMTP_HOST=smtp.host,
        SMTP_PORT=smtp.port,
        SMTP_STARTTLS=False,
        SMTP_FROM=NOORD,
    )
    return app
