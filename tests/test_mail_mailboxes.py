"""A desk with a mailbox per organisation: each polled on its own, each sending as itself.

Real servers: one Dovecot with two users (two mailboxes), and two aiosmtpd servers: the
INTAKE_SMTP_* account and the second mailbox's own SMTP account.
"""

# ruff: noqa: F811  (the fixtures of two_mailboxes, imported by name, are arguments)
from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from imapclient import IMAPClient
from sqlalchemy import select

from intake import create_app
from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import SENDING, MailboxStatus, MailMessage, OutboxMessage
from intake.shell.jobs import flush_outbox, poll_mailbox, release_backlog
from mail.mailboxes import MailboxRound, poll_every_mailbox, record_round
from mail.poller import ImapSettings, connect
from routing.desk import Desk, MailServer, Signin
from tests.dovecot import IMAP_PASSWORD, Dovecot
from tests.smtpsink import SmtpSink

from .conftest import Twilio, app_config, contacts, leave_voicemail, load_desk, local
from .factories import patient_mail
from .two_mailboxes import (  # noqa: F401  (fixtures used by name)
    LINDE,
    NOORD,
    SECRETS,
    desk_app,
    linde,
    linde_mailbox,
    linde_smtp,
    linde_smtp_server,
    noord_mailbox,
    two_desk,
)

# How long a poll waits for a server that does not answer, here (60 s in production).
TIMEOUT = 4.0


def round_of_mail(app: Flask) -> None:
    poll_mailbox(app)
    release_backlog(app)
    flush_outbox(app)


def test_two_mailboxes_are_polled_each_mail_logged_once_with_its_organisation(
    desk_app: Flask, two_desk: Desk, dovecot: Dovecot, linde: Dovecot
) -> None:
    dovecot.append(patient_mail(message_id="<noord@x.nl>"))
    linde.append(patient_mail(subject="Vraag over de app", message_id="<linde@x.nl>"))

    round_of_mail(desk_app)
    round_of_mail(desk_app)

    found = sorted((c.via, c.organisation) for c in contacts(desk_app))
    assert found == [(NOORD, "Ziekenhuis Noord"), (LINDE, "Zorggroep De Linde")]


def test_each_forward_goes_out_through_its_mailboxs_account_from_its_address(
    desk_app: Flask,
    two_desk: Desk,
    dovecot: Dovecot,
    linde: Dovecot,
    smtp: SmtpSink,
    linde_smtp: SmtpSink,
    clock: SimClock,
) -> None:
    clock.moment = local("2026-11-23 10:15")  # Monday, open, a colleague on shift
    dovecot.append(patient_mail(message_id="<noord@x.nl>"))
    linde.append(patient_mail(message_id="<linde@x.nl>"))

    round_of_mail(desk_app)

    [noord_forward] = smtp.wait_for(1)
    [linde_forward] = linde_smtp.wait_for(1)
    assert noord_forward.mail_from == NOORD
    assert linde_forward.mail_from == LINDE
    assert linde_forward.login == LINDE
    assert LINDE in linde_forward.message["From"]
    with database(desk_app).session() as session:
        accounts = sorted(session.scalars(select(OutboxMessage.smtp_account)))
    assert accounts == ["", LINDE]


def test_a_mail_held_while_closed_is_forwarded_through_its_own_mailbox(
    desk_app: Flask,
    two_desk: Desk,
    linde: Dovecot,
    smtp: SmtpSink,
    linde_smtp: SmtpSink,
    clock: SimClock,
) -> None:
    clock.moment = local("2026-11-22 20:00")  # Sunday evening: acknowledged, held
    linde.append(patient_mail(message_id="<linde@x.nl>"))
    round_of_mail(desk_app)
    [ack] = linde_smtp.wait_for(1)
    assert ack.mail_from == LINDE

    clock.moment = local("2026-11-23 08:31")
    round_of_mail(desk_app)

    sent = linde_smtp.wait_for(2)
    assert sent[1].rcpt_tos == ("anna@example.org",)
    assert smtp.messages == []


def test_a_refused_password_leaves_the_other_mailbox_working_and_is_logged_once(
    desk_app: Flask,
    two_desk: Desk,
    dovecot: Dovecot,
    linde: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    desk_app.config["MAILBOX_ENVIRONMENT"] = {**SECRETS, "INTAKE_MAILBOX_NOORD_PASSWORD": "wrong"}
    linde.append(patient_mail(message_id="<linde@x.nl>"))

    with caplog.at_level(logging.INFO, logger="mail"):
        rounds = [poll_every_mailbox(desk_app) for _ in range(3)]
        linde.append(patient_mail(message_id="<linde-2@x.nl>"))
        rounds.append(poll_every_mailbox(desk_app))

    failing = [r for done in rounds for r in done if r.result is None]
    assert [r.key for r in failing] == [NOORD] * 4
    assert "AUTHENTICATIONFAILED" in failing[0].error or "failed" in failing[0].error.lower()
    assert [c.via for c in contacts(desk_app)] == [LINDE, LINDE]
    refusals = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(refusals) == 1
    assert NOORD in refusals[0].getMessage()
    with database(desk_app).session() as session:
        status = session.get(MailboxStatus, NOORD)
        assert status is not None and not status.ok

    desk_app.config["MAILBOX_ENVIRONMENT"] = dict(SECRETS)
    with caplog.at_level(logging.INFO, logger="mail"):
        poll_every_mailbox(desk_app)
    assert any("works again" in r.getMessage() for r in caplog.records)
    with database(desk_app).session() as session:
        status = session.get(MailboxStatus, NOORD)
        assert status is not None and status.ok and status.error == ""


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A server that takes the connection and never says a word, as one behind a firewall
    that drops packets: a poll of it waits for its whole timeout."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listening:
        yield "127.0.0.1", listening.getsockname()[1]


def test_a_server_that_never_answers_holds_up_no_other_mailbox(
    desk_app: Flask,
    example_desk: Desk,
    dovecot: Dovecot,
    linde: Dovecot,
    linde_smtp: SmtpSink,
    silent_server: tuple[str, int],
) -> None:
    host, port = silent_server
    silent = dataclasses.replace(
        noord_mailbox(dovecot), imap=MailServer(host=host, port=port, tls="ssl")
    )
    # Noord first: polled one after the other, Linde would wait for Noord's timeout.
    load_desk(
        desk_app,
        dataclasses.replace(example_desk, mailboxes=(silent, linde_mailbox(dovecot, linde_smtp))),
    )
    linde.append(patient_mail(message_id="<linde@x.nl>"))

    def patient(settings: ImapSettings) -> IMAPClient:
        return connect(dataclasses.replace(settings, timeout=TIMEOUT))

    rounds: list[MailboxRound] = []
    polling = threading.Thread(
        target=lambda: rounds.extend(poll_every_mailbox(desk_app, connector=patient))
    )
    started = time.monotonic()
    polling.start()
    try:
        while not contacts(desk_app) and time.monotonic() - started < TIMEOUT:
            time.sleep(0.05)
        logged_after = time.monotonic() - started
        still_waiting = polling.is_alive()
    finally:
        polling.join(timeout=3 * TIMEOUT)

    assert [c.via for c in contacts(desk_app)] == [LINDE]
    assert still_waiting and logged_after < TIMEOUT  # Linde's mail, while Noord's poll waits
    assert {r.key: r.result is None for r in rounds} == {NOORD: True, LINDE: False}


def test_a_password_kept_in_a_file_is_read_again_at_each_round(
    desk_app: Flask, example_desk: Desk, dovecot: Dovecot, tmp_path: Path
) -> None:
    """A secrets file instead of an environment variable: replaced (a password changed),
    it is used from the next round, with no restart; an empty one is a secret not set."""
    secret = tmp_path / "noord-password"
    secret.write_text("not-the-password\n")
    mailbox = dataclasses.replace(noord_mailbox(dovecot), signin=Signin(password_file=str(secret)))
    load_desk(desk_app, dataclasses.replace(example_desk, mailboxes=(mailbox,)))
    desk_app.config["MAILBOX_ENVIRONMENT"] = {}  # nothing from the environment
    dovecot.append(patient_mail(message_id="<noord-file@x.nl>"))

    [refused] = poll_every_mailbox(desk_app)
    secret.write_text("")
    [empty] = poll_every_mailbox(desk_app)
    secret.write_text(IMAP_PASSWORD + "\n")  # the line's end is not part of it
    [read] = poll_every_mailbox(desk_app)

    assert refused.result is None and "AUTHENTICATIONFAILED" in refused.error
    assert empty.error == f"{secret} is empty (the secret of {NOORD})"
    assert read.error == "" and [c.via for c in contacts(desk_app)] == [NOORD]


def test_a_mailbox_added_to_the_definition_is_polled_the_next_round(
    desk_app: Flask, example_desk: Desk, dovecot: Dovecot, linde: Dovecot, linde_smtp: SmtpSink
) -> None:
    load_desk(desk_app, dataclasses.replace(example_desk, mailboxes=(noord_mailbox(dovecot),)))
    linde.append(patient_mail(message_id="<linde@x.nl>"))
    assert [r.key for r in poll_every_mailbox(desk_app)] == [NOORD]
    assert contacts(desk_app) == []

    load_desk(
        desk_app,
        dataclasses.replace(
            example_desk, mailboxes=(noord_mailbox(dovecot), linde_mailbox(dovecot, linde_smtp))
        ),
    )
    round_of_mail(desk_app)

    assert [c.organisation for c in contacts(desk_app)] == ["Zorggroep De Linde"]


def test_a_missing_secret_fails_that_mailbox_alone(
    desk_app: Flask, example_desk: Desk, dovecot: Dovecot, linde: Dovecot, linde_smtp: SmtpSink
) -> None:
    microsoft = dataclasses.replace(
        noord_mailbox(dovecot),
        address="zorg@example.org",
        signin=Signin(method="microsoft", tenant_id="t", client_id="c", client_secret_env="X"),
    )
    load_desk(
        desk_app,
        dataclasses.replace(
            example_desk, mailboxes=(microsoft, linde_mailbox(dovecot, linde_smtp))
        ),
    )
    desk_app.config["MAILBOX_ENVIRONMENT"] = {}  # neither secret is set on this worker
    linde.append(patient_mail(message_id="<linde@x.nl>"))

    rounds = {r.key: r for r in poll_every_mailbox(desk_app)}

    assert rounds["zorg@example.org"].error == "X is not set (the secret of zorg@example.org)"
    assert "INTAKE_MAILBOX_LINDE_PASSWORD is not set" in rounds[LINDE].error
    assert contacts(desk_app) == []


@pytest.fixture
def linde_notice(desk_app: Flask, two_desk: Desk, twilio: Twilio) -> None:
    """A voicemail on Zorggroep De Linde's line: its notice waits to go out as Linde,
    through Linde's own SMTP account."""
    twilio.called = "+31857654321"
    leave_voicemail(twilio)


def assert_linde_sends_again(
    app: Flask, linde_smtp: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """The next outbox run sends Linde's waiting notice as Linde, and says it sends again."""
    with caplog.at_level(logging.INFO, logger="mail"):
        flush_outbox(app)
    [notice] = linde_smtp.wait_for(1)
    assert notice.mail_from == LINDE
    assert any("sends again" in r.getMessage() for r in caplog.records)
    with database(app).session() as session:
        status = session.get(MailboxStatus, SENDING + LINDE)
        assert status is not None and status.ok


def test_a_mailbox_whose_smtp_secret_is_missing_keeps_its_mail_and_says_so_once(
    desk_app: Flask,
    linde_notice: None,
    linde_smtp: SmtpSink,
    clock: SimClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    desk_app.config["MAILBOX_ENVIRONMENT"] = {
        k: v for k, v in SECRETS.items() if k != "INTAKE_MAILBOX_LINDE_PASSWORD"
    }

    with caplog.at_level(logging.INFO, logger="mail"):
        for _ in range(3):  # the outbox job runs every 30 seconds
            flush_outbox(desk_app)
            clock.advance(30)

    said = [r for r in caplog.records if "cannot send" in r.getMessage()]
    assert len(said) == 1 and "INTAKE_MAILBOX_LINDE_PASSWORD is not set" in said[0].getMessage()
    assert linde_smtp.messages == []
    with database(desk_app).session() as session:
        status = session.get(MailboxStatus, SENDING + LINDE)
        assert status is not None and not status.ok and status.since == local("2026-11-23 10:15")
        [waiting] = session.scalars(select(OutboxMessage)).all()
        assert waiting.sent_at is None and waiting.failed_at is None

    desk_app.config["MAILBOX_ENVIRONMENT"] = dict(SECRETS)
    assert_linde_sends_again(desk_app, linde_smtp, caplog)


def test_a_mailbox_whose_smtp_server_is_down_is_logged_once_and_shown_until_it_sends(
    desk_app: Flask,
    linde_notice: None,
    linde_smtp: SmtpSink,
    clock: SimClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    linde_smtp.stop()
    try:
        with caplog.at_level(logging.INFO, logger="mail"):
            for _ in range(4):  # each retry after its backoff, 1, 2, 4 minutes
                flush_outbox(desk_app)
                clock.advance(5 * 60)
        with database(desk_app).session() as session:
            status = session.get(MailboxStatus, SENDING + LINDE)
            assert status is not None and not status.ok
            assert "no connection to the SMTP server" in status.error
    finally:
        linde_smtp.start()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage().split(":")[0] for r in errors] == [
        f"mailbox {LINDE} (Zorggroep De Linde) cannot send"
    ]
    clock.advance(60 * 60)  # past the backoff of the last try
    assert_linde_sends_again(desk_app, linde_smtp, caplog)


def test_a_mailbox_taken_out_of_the_definition_is_no_longer_counted_as_failing(
    desk_app: Flask, example_desk: Desk, two_desk: Desk, dovecot: Dovecot, linde_smtp: SmtpSink
) -> None:
    desk_app.config["MAILBOX_ENVIRONMENT"] = {**SECRETS, "INTAKE_MAILBOX_NOORD_PASSWORD": "wrong"}
    poll_every_mailbox(desk_app)
    with database(desk_app).session() as session:
        assert sorted((s.mailbox, s.ok) for s in session.scalars(select(MailboxStatus))) == sorted(
            [(NOORD, False), (LINDE, True)]
        )

    # The coordinator takes Noord's mailbox out: its failure is not shown for ever.
    load_desk(
        desk_app, dataclasses.replace(example_desk, mailboxes=(linde_mailbox(dovecot, linde_smtp),))
    )
    poll_every_mailbox(desk_app)

    with database(desk_app).session() as session:
        assert [(s.mailbox, s.ok) for s in session.scalars(select(MailboxStatus))] == [
            (LINDE, True)
        ]


def test_a_voicemail_for_an_organisation_with_its_own_smtp_is_noticed_through_it(
    desk_app: Flask, two_desk: Desk, twilio: Twilio, smtp: SmtpSink, linde_smtp: SmtpSink
) -> None:
    twilio.called = "+31857654321"  # Zorggroep De Linde's line
    leave_voicemail(twilio)

    flush_outbox(desk_app)

    [notice] = linde_smtp.wait_for(1)
    assert notice.mail_from == LINDE
    assert sorted(notice.rcpt_tos) == ["anna@example.org", "bram@example.org"]
    assert smtp.messages == []


def test_two_workers_polling_the_same_mailboxes_at_once_log_each_mail_once(
    desk_app: Flask,
    two_desk: Desk,
    dovecot: Dovecot,
    linde: Dovecot,
    database_url: str,
    clock: SimClock,
    tmp_path: Path,
) -> None:
    """Two workers share the mailboxes: each mailbox's lock lets one of them poll it at a
    time, whichever it is, and the other goes on to the next mailbox."""
    for n in range(6):
        dovecot.append(patient_mail(message_id=f"<noord-{n}@x.nl>"))
        linde.append(patient_mail(message_id=f"<linde-{n}@x.nl>"))
    mail_settings = {
        k: desk_app.config[k]
        for k in ("MAILBOX_ENVIRONMENT", "SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "SMTP_FROM")
    }
    other = create_app(app_config(database_url, clock, tmp_path / "other", **mail_settings))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(app: Flask) -> None:
        try:
            start.wait(10)
            for _ in range(3):
                poll_every_mailbox(app)
        except BaseException as exc:  # what the test is looking for
            errors.append(exc)

    try:
        threads = [threading.Thread(target=worker, args=(a,)) for a in (desk_app, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        database(other).engine.dispose()

    assert errors == []
    found = sorted(c.via for c in contacts(desk_app))
    assert found == sorted([NOORD] * 6 + [LINDE] * 6)
    with database(desk_app).session() as session:
        stored = session.scalars(select(MailMessage.message_id)).all()
    assert sorted(stored) == sorted(
        [f"<noord-{n}@x.nl>" for n in range(6)] + [f"<linde-{n}@x.nl>" for n in range(6)]
    )


def test_workers_failing_on_the_same_mailbox_at_once_log_it_once(
    desk_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The status row is made by the database and read locked: no read-then-insert race."""
    failed = MailboxRound(NOORD, NOORD, None, "LoginError: [AUTHENTICATIONFAILED]")
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait(10)
            record_round(desk_app, failed)
        except BaseException as exc:  # what the test is looking for
            errors.append(exc)

    with caplog.at_level(logging.INFO, logger="mail"):
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert errors == []
    refusals = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(refusals) == 1
    with database(desk_app).session() as session:
        rows = session.scalars(select(MailboxStatus).where(MailboxStatus.mailbox == NOORD)).all()
    assert [(row.ok, row.mailbox) for row in rows] == [(False, NOORD)]
