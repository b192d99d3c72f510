"""Patient mail, end to end: a real Dovecot mailbox in, a real SMTP server out."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from intake.core.clock import SimClock
from intake.core.db import database, make_engine
from intake.core.models import Contact, MailboxState, MailMessage, OutboxMessage
from intake.shell.jobs import flush_outbox, purge_expired, release_backlog
from mail import poller
from mail.poller import LOGGED_KEYWORD, poll
from routing.desk import Desk
from tests.mailservers import configure_mail

from .conftest import contacts, local
from .factories import PATIENT, patient_mail

if TYPE_CHECKING:
    from tests.mailservers import Dovecot, ReceivedMail, SmtpSink


@pytest.fixture
def mail_app(app: Flask, desk: Desk, dovecot: Dovecot, smtp: SmtpSink) -> Iterator[Flask]:
    configure_mail(app, dovecot, smtp)
    yield app


def poll_and_send(app: Flask) -> None:
    result = poll(app)
    assert not result.locked
    release_backlog(app)
    flush_outbox(app)


def acknowledged_on_sunday_evening(
    app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock
) -> ReceivedMail:
    """The patient mails while the desk is closed and intake answers; that acknowledgement."""
    clock.moment = local("2026-11-22 20:00")
    dovecot.append(patient_mail())
    poll_and_send(app)
    [ack] = smtp.wait_for(1)
    return ack


def test_mail_during_opening_hours_goes_to_the_colleague_on_shift(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    uid = dovecot.append(patient_mail())

    poll_and_send(mail_app)

    [contact] = contacts(mail_app)
    assert contact.channel == "mail"
    assert contact.caller == PATIENT
    assert contact.organisation == "Ziekenhuis Noord"
    assert contact.outcome == "forwarded"
    assert contact.forwarded_to == "anna"
    [sent] = smtp.wait_for(1)
    assert sent.rcpt_tos == ("anna@example.org",)
    assert sent.message["Reply-To"].addresses[0].addr_spec == PATIENT
    assert f"[{contact.reference}]" in sent.message["Subject"]
    assert sent.message["X-Auto-Response-Suppress"] == "All"
    attached = [
        p for p in sent.message.iter_attachments() if p.get_content_type() == "message/rfc822"
    ]
    assert len(attached) == 1
    # Logged, flagged, and still in the mailbox: nothing is deleted.
    assert dovecot.uids() == [uid]
    assert {"\\Seen", LOGGED_KEYWORD} <= dovecot.flags(uid)


def test_round_robin_shares_mails_among_colleagues_on_shift(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock
) -> None:
    for n in range(4):
        dovecot.append(patient_mail(sender=f"p{n}@example.nl", message_id=f"<rr{n}@x.nl>"))

    for _ in range(4):
        poll_and_send(mail_app)
        clock.advance(60)

    assert sorted(c.forwarded_to or "" for c in contacts(mail_app)) == [
        "anna",
        "anna",
        "bram",
        "bram",
    ]


def test_mail_while_closed_is_acknowledged_and_forwarded_when_the_shift_starts(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock
) -> None:
    clock.moment = local("2026-11-22 20:00")  # Sunday evening
    dovecot.append(patient_mail())

    poll_and_send(mail_app)

    [contact] = contacts(mail_app)
    assert contact.outcome == "acknowledged"
    assert contact.forward_pending
    [ack] = smtp.wait_for(1)
    assert ack.rcpt_tos == (PATIENT,)
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert ack.message["In-Reply-To"] == "<a1@mail.example.nl>"
    assert contact.reference in ack.message["Subject"]
    assert "8.30" in ack.message.get_body(("plain",)).get_content()

    clock.moment = local("2026-11-23 08:31")  # Monday, the shift has started
    poll_and_send(mail_app)

    sent = smtp.wait_for(2)
    assert sent[1].rcpt_tos == ("anna@example.org",)
    [contact] = contacts(mail_app)
    assert contact.outcome == "forwarded"
    assert not contact.forward_pending


def test_at_most_one_acknowledgement_per_sender_per_day(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock
) -> None:
    clock.moment = local("2026-11-22 20:00")
    dovecot.append(patient_mail(message_id="<one@x.nl>"))
    poll_and_send(mail_app)
    dovecot.append(patient_mail(subject="Nog een vraag", message_id="<two@x.nl>"))
    poll_and_send(mail_app)

    assert len(smtp.messages) == 1
    assert len(contacts(mail_app)) == 2


def test_a_reply_to_our_acknowledgement_joins_its_contact(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock
) -> None:
    ack = acknowledged_on_sunday_evening(mail_app, dovecot, smtp, clock)

    dovecot.append(
        patient_mail(
            subject=f"Re: {ack.message['Subject']}",
            message_id="<a2@mail.example.nl>",
            In_Reply_To=ack.message["Message-ID"],
            References=ack.message["Message-ID"],
        )
    )
    poll_and_send(mail_app)

    [contact] = contacts(mail_app)
    assert [e.kind for e in contact.events].count("follow-up") == 1
    assert len(smtp.messages) == 1  # no second acknowledgement that day


def test_a_follow_up_at_the_start_of_the_shift_brings_the_held_mail_with_it(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock
) -> None:
    ack = acknowledged_on_sunday_evening(mail_app, dovecot, smtp, clock)
    clock.moment = local("2026-11-23 08:31")  # the shift has started, the backlog not yet sent
    dovecot.append(
        patient_mail(
            subject=f"Re: {ack.message['Subject']}",
            message_id="<a2@mail.example.nl>",
            In_Reply_To=ack.message["Message-ID"],
            References=ack.message["Message-ID"],
        )
    )

    poll_and_send(mail_app)  # the poll, which sees the follow-up, runs before the backlog

    forwards = smtp.wait_for(3)[1:]
    assert [m.rcpt_tos for m in forwards] == [("anna@example.org",)] * 2
    with database(mail_app).session() as session:
        messages = session.scalars(select(MailMessage).order_by(MailMessage.id)).all()
        assert [(m.message_id, m.forwarded_to) for m in messages] == [
            ("<a1@mail.example.nl>", "anna"),
            ("<a2@mail.example.nl>", "anna"),
        ]
        originals = [m.raw for m in messages]
        # Each original is stored once: the forward's row points at it, without its bytes.
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "forward").order_by(OutboxMessage.id)
        ).all()
        assert [r.original_id for r in rows] == [m.id for m in messages]
        assert not any(original in r.raw for r, original in zip(rows, originals, strict=True))
    assert [original in m.raw for m, original in zip(forwards, originals, strict=True)] == [
        True,
        True,
    ]
    [contact] = contacts(mail_app)
    assert contact.outcome == "forwarded"
    assert not contact.forward_pending


def test_retention_removes_a_mail_and_its_forward_with_the_contact(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock
) -> None:
    dovecot.append(patient_mail())
    poll_and_send(mail_app)
    smtp.wait_for(1)
    clock.advance(366 * 24 * 3600)

    assert purge_expired(mail_app) == 1

    with database(mail_app).session() as session:
        assert session.scalars(select(MailMessage)).all() == []
        assert session.scalars(select(OutboxMessage)).all() == []


def test_the_reference_in_the_subject_joins_the_contact(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    dovecot.append(patient_mail())
    poll_and_send(mail_app)
    [first] = contacts(mail_app)

    dovecot.append(patient_mail(subject=f"Over {first.reference}", message_id="<new@x.nl>"))
    poll_and_send(mail_app)

    assert len(contacts(mail_app)) == 1
    # The follow-up goes to the colleague who had the first mail.
    assert [m.rcpt_tos for m in smtp.wait_for(2)] == [("anna@example.org",)] * 2


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"List_Id": "<nieuws.example.nl>"},
        {"X_Auto_Response_Suppress": "All"},
    ],
)
def test_automatic_mail_is_logged_but_never_answered_or_forwarded(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock, headers: dict[str, str]
) -> None:
    clock.moment = local("2026-11-22 20:00")
    dovecot.append(patient_mail(**headers))

    poll_and_send(mail_app)

    [contact] = contacts(mail_app)
    assert contact.outcome == "automatic"
    assert smtp.messages == []


def test_our_own_acknowledgement_fed_back_gets_no_reply(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock
) -> None:
    ack = acknowledged_on_sunday_evening(mail_app, dovecot, smtp, clock)

    dovecot.append(ack.raw)
    poll_and_send(mail_app)

    assert len(smtp.messages) == 1


def test_polling_again_logs_nothing_twice(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    dovecot.append(patient_mail(message_id="<x1@x.nl>"))
    dovecot.append(patient_mail(message_id=None, subject="Zonder Message-ID"))
    poll_and_send(mail_app)
    poll_and_send(mail_app)

    assert len(contacts(mail_app)) == 2


def test_a_uidvalidity_change_resyncs_without_duplicates(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    dovecot.append(patient_mail(message_id="<v1@x.nl>"))
    dovecot.append(patient_mail(message_id=None, subject="Zonder Message-ID"))
    poll_and_send(mail_app)
    new_validity = dovecot.reset_uidvalidity()
    dovecot.append(patient_mail(message_id="<v3@x.nl>", subject="Nieuw"))

    poll_and_send(mail_app)

    assert len(contacts(mail_app)) == 3
    with database(mail_app).session() as session:
        [state] = session.scalars(select(MailboxState)).all()
        assert state.uidvalidity == new_validity
        assert state.last_uid == max(dovecot.uids())
    assert len(smtp.wait_for(3)) == 3


def test_processed_mail_moves_but_mail_needing_a_person_stays(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    mail_app.config["IMAP_PROCESSED_FOLDER"] = "Verwerkt"
    dovecot.append(patient_mail())
    unreadable = dovecot.append(b"This is not a mail at all\x00\xff\r\n")

    poll_and_send(mail_app)

    assert dovecot.uids("INBOX") == [unreadable]
    assert dovecot.message_count("Verwerkt") == 1
    attention = [c for c in contacts(mail_app) if c.needs_attention]
    assert len(attention) == 1


def test_a_strange_mail_is_still_logged_and_kept(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    uid = dovecot.append(b"\r\n\r\n--broken--\r\n")

    poll_and_send(mail_app)

    [contact] = contacts(mail_app)
    assert contact.needs_attention
    assert dovecot.uids() == [uid]
    with database(mail_app).session() as session:
        [stored] = session.scalars(select(MailMessage)).all()
        assert stored.raw == dovecot.fetch(uid)


def test_the_mail_itself_never_reaches_the_log_even_at_debug_level(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    # imapclient hands imaplib's protocol trace, fetched mail included, to a logger: an
    # administrator who turns on DEBUG to see why a mailbox fails must not get patient mail.
    body = "Mijn BSN staat in de bijlage, de app weigert mijn DigiD-code"
    dovecot.append(patient_mail(subject="Vraag over mijn dossier", body=body))

    with caplog.at_level(logging.DEBUG):
        poll_and_send(mail_app)

    [contact] = contacts(mail_app)
    assert contact.outcome == "forwarded"
    assert any(r.name.startswith("imapclient") for r in caplog.records)  # the trace was on
    ours = [r for r in caplog.records if r.name != "mail.log"]  # not the test's SMTP server's
    logged = "\n".join(r.getMessage() for r in ours)
    assert "DigiD-code" not in logged
    assert "dossier" not in logged


def test_mail_over_ssl(mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink) -> None:
    mail_app.config.update(IMAP_PORT=dovecot.ssl_port, IMAP_SSL=True)
    dovecot.append(patient_mail())

    assert poll(mail_app).logged == 1


def test_an_smtp_outage_delays_mail_and_loses_none(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink, clock: SimClock
) -> None:
    dovecot.append(patient_mail())
    smtp.stop()
    try:
        poll_and_send(mail_app)
        with database(mail_app).session() as session:
            [queued] = session.scalars(select(OutboxMessage)).all()
            # Tried once, while the server was down, and kept for later.
            assert (queued.attempts, queued.sent_at, queued.failed_at) == (1, None, None)
            assert queued.last_error != ""
            assert queued.next_attempt_at > clock()
    finally:
        smtp.start()
    clock.advance(3600)

    flush_outbox(mail_app)

    [sent] = smtp.wait_for(1)
    [contact] = contacts(mail_app)
    assert sent.rcpt_tos == ("anna@example.org",)
    assert f"[{contact.reference}]" in sent.message["Subject"]
    with database(mail_app).session() as session:
        [queued] = session.scalars(select(OutboxMessage)).all()
        assert (queued.attempts, queued.sent_at) == (2, clock())


def test_the_imap_server_down_stops_the_poll_and_loses_nothing(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    dovecot.append(patient_mail())
    with dovecot.down():
        with pytest.raises(OSError):
            poll(mail_app)
        assert contacts(mail_app) == []

    assert poll(mail_app).logged == 1


def test_mail_contacts_are_in_the_log_with_their_message_id(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    dovecot.append(patient_mail())

    poll_and_send(mail_app)

    with database(mail_app).session() as session:
        contact = session.scalars(select(Contact)).one()
        assert contact.message_id == "<a1@mail.example.nl>"
        assert contact.subject == "Ik kan niet inloggen op het patiëntportaal"


def test_a_webhook_can_write_while_the_poller_parses_its_mail(
    mail_app: Flask, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's transaction starts after its mail is parsed: on SQLite it holds the one
    write lock from its first statement, and a call's webhook would wait for the parsing."""
    for n in range(3):
        dovecot.append(patient_mail(message_id=f"<parse{n}@x.nl>"))
    other = make_engine(database(mail_app).engine.url.render_as_string(hide_password=False))
    wrote: list[bool] = []
    parse = poller.parse_message

    def parsing(raw: bytes) -> Any:
        if not wrote:  # the first message: a webhook writes a contact now
            with other.connect() as connection:
                if connection.dialect.name == "sqlite":
                    connection.exec_driver_sql("PRAGMA busy_timeout = 200")
                else:
                    connection.exec_driver_sql("SET lock_timeout = '200ms'")
                try:  # in the transaction the line above began, rolled back below
                    connection.execute(
                        insert(Contact).values(
                            channel="call",
                            started_at=local("2026-11-23 10:15"),
                            outcome="in-progress",
                        )
                    )
                    wrote.append(True)
                except OperationalError:
                    wrote.append(False)
                finally:
                    connection.rollback()
        return parse(raw)

    monkeypatch.setattr(poller, "parse_message", parsing)
    try:
        result = poll(mail_app)
    finally:
        other.dispose()

    assert wrote == [True]
    assert result.logged == 3
