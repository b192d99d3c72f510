"""The outbox: stored with the caller's work, sent once, retried, and never lost.

Every test runs on SQLite and PostgreSQL (the `app` fixture) and sends to a real SMTP
server (tests/mailservers.py); time comes from the test's clock.
"""

from __future__ import annotations

import logging
import smtplib
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import OutboxMessage
from intake.shell.settings import from_environment
from mail.compose import acknowledgement, forward, new_message_id, voicemail_notice
from mail.outbox import FlushResult, SmtpSettings, backoff, enqueue, flush, replied_today
from mail.parsing import parse_message
from routing.desk import Desk
from tests.conftest import AMSTERDAM, local
from tests.mailservers import (
    LOCALHOST,
    SMTP_PASSWORD,
    SMTP_USER,
    ReceivedMail,
    SmtpSink,
    free_ports,
    missing_service,
    port_open,
)

CORPUS = Path(__file__).parent / "mail_corpus"
PATIENT = "jan.devries@example.nl"


# --- helpers ------------------------------------------------------------------------------


def settings_for(sink: SmtpSink) -> SmtpSettings:
    """The local server, plain SMTP (its certificate is self-signed; TLS has its own test)."""
    return SmtpSettings(host=sink.host, port=sink.port, starttls=False, timeout=5.0)


def notice(
    desk: Desk, reference: str = "HD-000001", recipients: tuple[str, ...] = ()
) -> EmailMessage:
    return voicemail_notice(
        desk=desk,
        reference=reference,
        caller="+31612345678",
        organisation="Ziekenhuis Noord",
        started_at=local("2026-11-23 10:00"),
        seconds=42,
        recipients=recipients or ("anna@example.org",),
        sender="helpdesk@example.org",
        message_id=new_message_id("voicemail", reference, "example.org"),
    )


def ack(desk: Desk, to: str, now: datetime, reference: str = "HD-000001") -> EmailMessage:
    mail = parse_message((CORPUS / "plain_patient.eml").read_bytes())
    return acknowledgement(
        desk=desk,
        reference=reference,
        mail=mail,
        to=to,
        sender="helpdesk@example.org",
        message_id=new_message_id("ack", reference, "example.org"),
        now=now,
        next_opening=None,
    )


def queue(
    app: Flask, now: datetime, *messages: EmailMessage, kind: str = "voicemail-notice"
) -> None:
    with database(app).session() as session:
        for message in messages:
            enqueue(session, message, kind=kind, contact_id=None, now=now)
        session.commit()


def queue_acknowledgement(session: Session, desk: Desk, to: str, now: datetime) -> None:
    """Queues an acknowledgement to `to` the way intake does: as an auto-reply to them."""
    enqueue(
        session,
        ack(desk, to, now),
        kind="acknowledgement",
        contact_id=None,
        now=now,
        auto_reply_to=to,
    )


def rows(app: Flask) -> list[OutboxMessage]:
    with database(app).session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def message_ids(received: list[ReceivedMail]) -> list[str]:
    return [str(m.message["Message-ID"]) for m in received]


# --- enqueue --------------------------------------------------------------------------------


def test_enqueue_stores_envelope_and_recipients_and_leaves_bcc_out_of_the_message(
    app: Flask, example_desk: Desk, clock: SimClock
) -> None:
    message = notice(example_desk, recipients=("anna@example.org", "Bram@Example.org"))
    message["Cc"] = "bram@example.org, chantal@example.org"
    message["Bcc"] = "dirk@example.org"
    with database(app).session() as session:
        row = enqueue(session, message, kind="voicemail-notice", contact_id=None, now=clock())
        # Not committed: the caller commits it with the rest of its work.
        with database(app).session() as other:
            assert other.scalars(select(OutboxMessage)).all() == []
        session.commit()
        stored = row.raw
    [row] = rows(app)
    assert row.mail_from == "helpdesk@example.org"
    assert row.recipients == [
        "anna@example.org",
        "Bram@Example.org",
        "chantal@example.org",
        "dirk@example.org",
    ]
    assert row.message_id == str(message["Message-ID"])
    assert row.next_attempt_at == clock() and row.created_at == clock()
    assert row.attempts == 0 and row.sent_at is None and row.failed_at is None
    head = stored.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"dirk@" not in head
    assert b"\r\nCc: bram@example.org, chantal@example.org" in head
    assert message["Bcc"] == "dirk@example.org"  # the caller's message is as it was


def test_enqueue_takes_an_envelope_sender_given_apart_from_from(
    app: Flask, example_desk: Desk, clock: SimClock
) -> None:
    with database(app).session() as session:
        enqueue(
            session,
            notice(example_desk),
            kind="voicemail-notice",
            contact_id=None,
            now=clock(),
            mail_from="bounces@example.org",
        )
        session.commit()
    assert rows(app)[0].mail_from == "bounces@example.org"


def test_enqueue_refuses_an_address_that_could_smuggle_an_smtp_command(
    app: Flask, example_desk: Desk, clock: SimClock
) -> None:
    message = notice(example_desk)
    with database(app).session() as session, pytest.raises(ValueError):
        enqueue(
            session,
            message,
            kind="voicemail-notice",
            contact_id=None,
            now=clock(),
            mail_from="a@example.org>\r\nRCPT TO:<victim@example.net",
        )


def test_enqueue_refuses_a_message_whose_header_would_split_in_two(
    app: Flask, example_desk: Desk, clock: SimClock
) -> None:
    message = notice(example_desk)
    # Set past header_text: Python 3.11.7 writes this encoded-word out as a real line break.
    del message["Subject"]
    message["Subject"] = "=?utf-8?q?Hi=0D=0ABcc:_victim@example.org?="
    with database(app).session() as session, pytest.raises(ValueError):
        enqueue(session, message, kind="voicemail-notice", contact_id=None, now=clock())


# --- flush --------------------------------------------------------------------------------


def test_flush_sends_due_messages_oldest_first_exactly_once(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    first, second = notice(example_desk, "HD-000001"), notice(example_desk, "HD-000002")
    later = notice(example_desk, "HD-000003")
    queue(app, clock(), first, second)
    queue(app, clock() + timedelta(minutes=5), later)

    assert flush(database(app), settings_for(smtp), clock) == FlushResult(2, 0, 0)
    assert message_ids(smtp.wait_for(2)) == [str(first["Message-ID"]), str(second["Message-ID"])]
    assert flush(database(app), settings_for(smtp), clock) == FlushResult(0, 0, 0)

    clock.advance(5 * 60)
    assert flush(database(app), settings_for(smtp), clock) == FlushResult(1, 0, 0)
    received = smtp.wait_for(3)
    assert len(received) == 3
    assert [r.sent_at for r in rows(app)] == [
        clock() - timedelta(minutes=5),
        clock() - timedelta(minutes=5),
        clock(),
    ]
    assert received[0].mail_from == "helpdesk@example.org"
    assert received[0].rcpt_tos == ("anna@example.org",)


def test_nothing_due_opens_no_connection(app: Flask, clock: SimClock) -> None:
    def connect(_settings: SmtpSettings) -> smtplib.SMTP:
        raise AssertionError("connected with nothing to send")

    settings = SmtpSettings(host="127.0.0.1", port=1)
    assert flush(database(app), settings, clock, connect=connect) == FlushResult(0, 0, 0)


def test_an_smtp_outage_delays_mail_and_loses_none(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    messages = [notice(example_desk, f"HD-00000{n}") for n in (1, 2, 3)]
    queue(app, clock(), *messages)
    smtp.stop()

    assert flush(database(app), settings_for(smtp), clock) == FlushResult(0, 3, 0)
    waiting = rows(app)
    assert all(r.sent_at is None and r.failed_at is None for r in waiting)
    # The try is counted against the first only; the others were never tried.
    assert [r.attempts for r in waiting] == [1, 0, 0]
    assert "ConnectionRefusedError" in waiting[0].last_error
    assert waiting[0].next_attempt_at == clock() + backoff(1)

    smtp.start()
    clock.advance(backoff(1).total_seconds())
    assert flush(database(app), settings_for(smtp), clock) == FlushResult(3, 0, 0)
    assert flush(database(app), settings_for(smtp), clock) == FlushResult(0, 0, 0)
    received = smtp.wait_for(3)
    assert sorted(message_ids(received)) == sorted(str(m["Message-ID"]) for m in messages)
    assert len(received) == 3
    assert all(r.sent_at == clock() and r.last_error == "" for r in rows(app))


def test_a_connection_dropped_mid_flush_charges_only_the_message_in_flight(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    queue(app, clock(), *(notice(example_desk, f"HD-00000{n}") for n in (1, 2, 3)))
    smtp.refuse(421, at="MAIL", times=1)  # "service not available, closing channel"

    assert flush(database(app), settings_for(smtp), clock) == FlushResult(0, 3, 0)
    assert [r.attempts for r in rows(app)] == [1, 0, 0]
    assert "421" in rows(app)[0].last_error

    clock.advance(60)
    assert flush(database(app), settings_for(smtp), clock) == FlushResult(3, 0, 0)
    assert len(smtp.wait_for(3)) == 3


def test_a_temporary_refusal_is_retried_with_growing_backoff(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    queue(app, clock(), notice(example_desk))
    smtp.refuse(451, at="DATA")
    settings = settings_for(smtp)

    waits = []
    for attempt in (1, 2, 3, 4):
        assert flush(database(app), settings, clock) == FlushResult(0, 1, 0)
        [row] = rows(app)
        assert row.attempts == attempt
        assert "451" in row.last_error
        waits.append(row.next_attempt_at - clock())
        clock.advance(30)  # not yet due: nothing is tried
        assert flush(database(app), settings, clock) == FlushResult(0, 0, 0)
        clock.advance(waits[-1].total_seconds() - 30)
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert smtp.refusals == 4

    smtp.accept()
    assert flush(database(app), settings, clock) == FlushResult(1, 0, 0)
    assert len(smtp.wait_for(1)) == 1
    [row] = rows(app)
    assert row.sent_at == clock() and row.attempts == 5 and row.last_error == ""


def test_a_message_refused_for_now_for_days_is_given_up(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    queue(app, clock() - timedelta(days=5, minutes=1), notice(example_desk))
    smtp.refuse(452, at="RCPT")
    assert flush(database(app), settings_for(smtp), clock) == FlushResult(0, 0, 1)
    assert rows(app)[0].failed_at == clock()


def test_a_permanent_refusal_marks_the_message_failed(
    app: Flask,
    example_desk: Desk,
    clock: SimClock,
    smtp: SmtpSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue(app, clock(), notice(example_desk))
    smtp.refuse(550, at="RCPT")
    with caplog.at_level(logging.ERROR, logger="mail.outbox"):
        assert flush(database(app), settings_for(smtp), clock) == FlushResult(0, 0, 1)
    [row] = rows(app)
    assert row.failed_at == clock() and row.sent_at is None
    assert "550" in row.last_error and "anna@example.org" in row.last_error
    errors = [r.message for r in caplog.records if r.levelno == logging.ERROR]
    assert any("refused for good" in m and "550" in m for m in errors)
    assert "anna@example.org" not in caplog.text  # addresses stay out of the log
    # Never again.
    clock.advance(24 * 3600)
    assert flush(database(app), settings_for(smtp), clock) == FlushResult(0, 0, 0)
    assert smtp.refusals == 1 and smtp.messages == []


def test_a_recipient_refused_does_not_stop_the_others(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    queue(app, clock(), notice(example_desk, recipients=("anna@example.org", "bram@example.org")))
    smtp.refuse(550, at="RCPT", times=1)
    assert flush(database(app), settings_for(smtp), clock) == FlushResult(1, 0, 0)
    [received] = smtp.wait_for(1)
    assert received.rcpt_tos == ("bram@example.org",)
    [row] = rows(app)
    assert row.sent_at == clock()
    assert "anna@example.org: 550" in row.last_error


class SimulatedCrash(Exception):
    """The process died between sending a message and committing that it was sent."""


def crashing_sessions(app: Flask) -> Callable[[], AbstractContextManager[Session]]:
    @contextmanager
    def sessions() -> Iterator[Session]:
        with database(app).session() as session:

            def crash() -> None:
                raise SimulatedCrash

            session.commit = crash  # type: ignore[method-assign]
            yield session

    return sessions


def test_a_message_sent_but_not_committed_goes_again_with_the_same_message_id(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    first, second = notice(example_desk, "HD-000001"), notice(example_desk, "HD-000002")
    queue(app, clock(), first, second)
    with pytest.raises(SimulatedCrash):
        flush(crashing_sessions(app), settings_for(smtp), clock)
    assert len(smtp.wait_for(1)) == 1
    assert all(r.sent_at is None and r.attempts == 0 for r in rows(app))

    assert flush(database(app), settings_for(smtp), clock) == FlushResult(2, 0, 0)
    received = smtp.wait_for(3)
    assert message_ids(received) == [str(first["Message-ID"])] * 2 + [str(second["Message-ID"])]
    assert received[0].raw == received[1].raw  # the very same message, recognisable as such


def test_starttls_and_login_when_configured(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:

    def connect(settings: SmtpSettings) -> smtplib.SMTP:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        client.starttls(context=smtp.ssl_context())  # trusts the test server's certificate
        return client

    settings = SmtpSettings(
        host=smtp.host, port=smtp.port, user=SMTP_USER, password=SMTP_PASSWORD, timeout=5.0
    )
    queue(app, clock(), notice(example_desk))
    assert flush(database(app), settings, clock, connect=connect) == FlushResult(1, 0, 0)
    [received] = smtp.wait_for(1)
    assert received.tls and received.login == SMTP_USER


def test_a_certificate_that_cannot_be_verified_sends_nothing_in_the_clear(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    settings = SmtpSettings(host=smtp.host, port=smtp.port, starttls=True, timeout=5.0)
    queue(app, clock(), notice(example_desk))
    assert flush(database(app), settings, clock) == FlushResult(0, 1, 0)
    assert smtp.messages == []
    assert "CERTIFICATE_VERIFY_FAILED" in rows(app)[0].last_error


def test_a_wrong_password_postpones_and_is_logged_as_an_error(
    app: Flask,
    example_desk: Desk,
    clock: SimClock,
    smtp: SmtpSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = SmtpSettings(
        host=smtp.host,
        port=smtp.port,
        user="intake@example.org",
        password="wrong",
        starttls=False,
        timeout=5.0,
    )
    queue(app, clock(), notice(example_desk))
    with caplog.at_level(logging.WARNING, logger="mail.outbox"):
        assert flush(database(app), settings, clock) == FlushResult(0, 1, 0)
    assert any(r.levelno == logging.ERROR and "login" in r.message for r in caplog.records)
    assert "wrong" not in caplog.text  # the password is never logged
    assert smtp.messages == []


@pytest.mark.parametrize(
    ("attempts", "minutes"),
    [(0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (7, 60), (8, 60), (1000, 60)],
)
def test_backoff_doubles_up_to_an_hour(attempts: int, minutes: int) -> None:
    assert backoff(attempts) == timedelta(minutes=minutes)


def test_smtp_settings_come_from_the_app_config(tmp_path: Path) -> None:
    env = {
        "INTAKE_INSTANCE_PATH": str(tmp_path),
        "INTAKE_SECRET_KEY": "x",
        "INTAKE_SMTP_HOST": "smtp.example.org",
        "INTAKE_SMTP_PORT": "2525",
        "INTAKE_SMTP_USER": "intake",
        "INTAKE_SMTP_PASSWORD": "geheim",
        "INTAKE_SMTP_STARTTLS": "0",
    }
    settings = SmtpSettings.from_config(from_environment(env))
    assert settings == SmtpSettings(
        host="smtp.example.org", port=2525, user="intake", password="geheim", starttls=False
    )
    assert "geheim" not in repr(settings)
    no_host = {**env, "INTAKE_SMTP_HOST": ""}
    assert SmtpSettings.from_config(from_environment(no_host)) is None
    assert SmtpSettings.from_config({"SMTP_HOST": "smtp.example.org"}) == SmtpSettings(
        host="smtp.example.org"
    )


# --- at most one acknowledgement a day ------------------------------------------------------


@pytest.mark.parametrize(
    ("queued", "asked", "expected"),
    [
        ("2026-11-23 23:50", "2026-11-23 23:59", True),
        ("2026-11-23 23:50", "2026-11-24 00:05", False),  # midnight in Amsterdam
        ("2026-11-24 00:30", "2026-11-24 23:30", True),  # 23:30 UTC the day before
        ("2026-11-23 08:00", "2026-11-24 00:30", False),  # same UTC day, not the same here
        ("2026-03-29 00:30", "2026-03-29 23:30", True),  # a 23-hour day (summer time)
        ("2026-10-25 00:30", "2026-10-25 23:59", True),  # a 25-hour day
        ("2026-10-24 23:59", "2026-10-25 00:00", False),
    ],
)
def test_replied_today_follows_the_calendar_day_of_the_desk(
    app: Flask, example_desk: Desk, queued: str, asked: str, expected: bool
) -> None:
    with database(app).session() as session:
        queue_acknowledgement(session, example_desk, PATIENT, local(queued))
        session.commit()
    with database(app).session() as session:
        assert replied_today(session, PATIENT, local(asked), AMSTERDAM) is expected


def test_replied_today_ignores_case_and_counts_only_acknowledgements(
    app: Flask, example_desk: Desk, clock: SimClock
) -> None:
    with database(app).session() as session:
        queue_acknowledgement(session, example_desk, "Jan.DeVries@Example.NL", clock())
        # A forward or notice to someone is no auto-reply to them.
        enqueue(
            session,
            notice(example_desk, recipients=("other@example.net",)),
            kind="voicemail-notice",
            contact_id=None,
            now=clock(),
        )
        session.commit()
    with database(app).session() as session:
        assert replied_today(session, "jan.devries@example.nl", clock(), AMSTERDAM)
        assert not replied_today(session, "other@example.net", clock(), AMSTERDAM)


# --- memory -----------------------------------------------------------------------------------


@pytest.fixture
def separate_smtp_server() -> Iterator[tuple[str, int]]:
    """An SMTP server in a process of its own, so its buffers do not count in ours."""

    port = free_ports(1)[0]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"{LOCALHOST}:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(LOCALHOST, port):
            if server.poll() is not None or time.monotonic() > deadline:
                missing_service("a separate aiosmtpd server did not start")
            time.sleep(0.05)
        yield LOCALHOST, port
    finally:
        server.terminate()
        server.wait(timeout=10)


def big_forward(desk: Desk, number: int, payload: bytes) -> EmailMessage:
    original = EmailMessage()
    original["From"] = "Jan de Vries <jan.devries@example.nl>"
    original["To"] = "helpdesk@example.org"
    original["Subject"] = f"Scan {number}"
    original["Message-ID"] = f"<scan-{number}@example.nl>"
    original.set_content("Hierbij de scan.")
    original.add_attachment(payload, maintype="application", subtype="pdf", filename="scan.pdf")
    raw = original.as_bytes(policy=original.policy.clone(linesep="\r\n"))
    reference = f"HD-{number:06d}"
    return forward(
        desk=desk,
        reference=reference,
        mail=parse_message(raw),
        raw=raw,
        colleague=desk.staff[0],
        sender="helpdesk@example.org",
        message_id=new_message_id("forward", reference, "example.org"),
        at=local("2026-11-23 10:15"),
    )


def test_flushing_10_mb_messages_holds_about_one_at_a_time(
    app: Flask, example_desk: Desk, clock: SimClock, separate_smtp_server: tuple[str, int]
) -> None:
    payload = bytes(range(256)) * (7_500_000 // 256)  # base64: a message of about 10 MB
    queue(app, clock(), *(big_forward(example_desk, n, payload) for n in (1, 2, 3)), kind="forward")
    del payload
    with database(app).session() as session:
        largest = max(len(raw) for raw in session.scalars(select(OutboxMessage.raw)))
    assert largest > 10_000_000
    host, port = separate_smtp_server

    tracemalloc.start()
    try:
        result = flush(database(app), SmtpSettings(host=host, port=port, starttls=False), clock)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == FlushResult(3, 0, 0)
    # Well under 3x: the row's bytes and a chunk on its way (smtplib.sendmail's dot-stuffed
    # copy of the whole message alone would make it 2x).
    assert peak < 1.5 * largest, f"peak {peak / 1e6:.1f} MB for messages of {largest / 1e6:.1f} MB"
