"""A fetch batch's plain mail is written a group at a time (mail.batch), with the same rows,
timeline and forwards as a message at a time; whatever is not plain goes alone, in order."""

# ruff: noqa: F811  (the fixtures of two_mailboxes, imported by name, are arguments)
from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select

from intake.core.db import LARGE_BLOB, database
from intake.core.models import Contact, MailMessage, OutboxMessage
from intake.shell.jobs import flush_outbox
from mail import batch
from mail.accounts import imap_accounts
from mail.batch import Lane
from mail.mailboxes import poll_every_mailbox, poll_one_mailbox
from mail.outbox import message_bytes
from mail.poller import poll
from routing.desk import Desk
from tests.mailservers import configure_mail

from .conftest import contacts
from .factories import DESK_ADDRESS, patient_mail
from .two_mailboxes import (  # noqa: F401  (fixtures used by name)
    desk_app,
    linde,
    linde_smtp,
    linde_smtp_server,
    two_desk,
)

if TYPE_CHECKING:
    from intake.core.clock import SimClock
    from tests.mailservers import Dovecot, SmtpSink


@pytest.fixture
def mail_app(app: Flask, desk: Desk, dovecot: Dovecot, smtp: SmtpSink) -> Iterator[Flask]:
    configure_mail(app, dovecot, smtp)
    yield app


@pytest.fixture(params=["in groups", "one at a time"])
def taken(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What the lane said of each message; "one at a time" makes it take none, the way
    every message was ingested before the lane, which the results must equal."""
    said: list[bool] = []
    take = Lane.take

    def recorded(lane: Lane, fetched: Any) -> bool:
        took = request.param == "in groups" and take(lane, fetched)
        said.append(took)
        return took

    monkeypatch.setattr(Lane, "take", recorded)
    return said


def timeline(app: Flask) -> list[tuple[str, str, str | None, list[str]]]:
    """Per contact, oldest first: who wrote, the outcome, to whom it went, its steps."""
    return [
        (
            c.caller,
            c.outcome,
            c.forwarded_to,
            [e.kind for e in sorted(c.events, key=lambda e: e.id)],
        )
        for c in contacts(app)
    ]


def forwards_agree(app: Flask) -> None:
    """Each forwarded contact names the colleague and moment of its newest forward, as the
    stored messages have them, and waits for nobody."""
    with database(app).session() as session:
        for contact in session.scalars(select(Contact).where(Contact.forwarded_to.is_not(None))):
            newest = session.execute(
                select(MailMessage.forwarded_to, MailMessage.forwarded_at)
                .where(MailMessage.contact_id == contact.id, MailMessage.forwarded_to.is_not(None))
                .order_by(MailMessage.id.desc())
                .limit(1)
            ).one()
            assert (contact.forwarded_to, contact.forwarded_at) == tuple(newest)
            assert not contact.forward_pending


def stored(app: Flask) -> list[tuple[int, str | None, int]]:
    """Each stored message by UID: to whom it went, and the how-many-th contact it is on."""
    with database(app).session() as session:
        order = {
            cid: n for n, cid in enumerate(session.scalars(select(Contact.id).order_by(Contact.id)))
        }
        rows = session.execute(
            select(MailMessage.uid, MailMessage.forwarded_to, MailMessage.contact_id).order_by(
                MailMessage.uid
            )
        )
        return [(uid, to, order[cid]) for uid, to, cid in rows]


def outbox(app: Flask) -> list[tuple[str, list[str], str]]:
    with database(app).session() as session:
        rows = session.execute(
            select(OutboxMessage.kind, OutboxMessage.recipients, Contact.caller)
            .join(Contact, Contact.id == OutboxMessage.contact_id)
            .order_by(OutboxMessage.id)
        )
        return [(kind, list(recipients), caller) for kind, recipients, caller in rows]


def test_a_mixed_batch_is_logged_as_one_message_at_a_time_would_log_it(
    mail_app: Flask, dovecot: Dovecot, taken: list[bool]
) -> None:
    dovecot.append(patient_mail(sender="e@example.nl", message_id="<e0@x.nl>"))
    poll(mail_app)  # a thread from an earlier poll: E, to anna
    [earlier] = contacts(mail_app)
    taken.clear()

    mails = [
        patient_mail(sender="a@example.nl", message_id="<m0@x.nl>"),  # new: A
        patient_mail(sender="b@example.nl", message_id="<m1@x.nl>"),  # new: B
        # A again, answering its first mail in this same batch: on the thread the lane started
        patient_mail(sender="a@example.nl", message_id="<m2@x.nl>", In_Reply_To="<m0@x.nl>"),
        patient_mail(sender="b@example.nl", message_id="<m1@x.nl>"),  # B's mail twice: once
        patient_mail(
            sender="c@example.nl", message_id="<m4@x.nl>", Auto_Submitted="auto-replied"
        ),  # an out-of-office: logged, nothing sent
        patient_mail(sender="d@example.nl", message_id=None),  # no Message-ID: D
        patient_mail(sender="e@example.nl", message_id="<m6@x.nl>", In_Reply_To="<e0@x.nl>"),
        # E again, by the reference in the subject: on E as the lane just wrote it
        patient_mail(
            subject=f"Re: [{earlier.reference}] inloggen",
            sender="e@example.nl",
            message_id="<m7@x.nl>",
        ),
        patient_mail(sender="f@example.nl", message_id="<m8@x.nl>"),  # new: F
    ]
    for raw in mails:
        dovecot.append(raw)

    result = poll(mail_app)

    assert (result.fetched, result.logged, result.duplicates) == (9, 8, 1)
    assert timeline(mail_app) == [
        (
            "e@example.nl",
            "forwarded",
            "anna",
            ["mail", "forwarded"] + ["follow-up", "forwarded"] * 2,
        ),
        ("a@example.nl", "forwarded", "bram", ["mail", "forwarded", "follow-up", "forwarded"]),
        ("b@example.nl", "forwarded", "anna", ["mail", "forwarded"]),
        ("c@example.nl", "automatic", None, ["mail", "automatic"]),
        ("d@example.nl", "forwarded", "anna", ["mail", "forwarded"]),
        ("f@example.nl", "forwarded", "bram", ["mail", "forwarded"]),
    ]
    first = min(uid for uid, _, _ in stored(mail_app))
    # B's mail, seen again at UID 5, is noted where it is now.
    assert [(uid - first + 1, to, n) for uid, to, n in stored(mail_app)] == [
        (1, "anna", 0),
        (2, "bram", 1),
        (4, "bram", 1),
        (5, "anna", 2),
        (6, None, 3),
        (7, "anna", 4),
        (8, "anna", 0),
        (9, "anna", 0),
        (10, "bram", 5),
    ]
    assert [(to, caller) for _, [to], caller in outbox(mail_app)] == [
        ("anna@example.org", "e@example.nl"),
        ("bram@example.org", "a@example.nl"),
        ("anna@example.org", "b@example.nl"),
        ("bram@example.org", "a@example.nl"),
        ("anna@example.org", "d@example.nl"),
        ("anna@example.org", "e@example.nl"),
        ("anna@example.org", "e@example.nl"),
        ("bram@example.org", "f@example.nl"),
    ]
    forwards_agree(mail_app)
    if taken and any(taken):
        # New threads and the follow-ups on A and E went in groups; the rest alone.
        assert taken == [True, True, True, False, False, True, True, True, True]


def test_follow_ups_on_threads_of_the_same_batch_are_logged_as_one_at_a_time(
    mail_app: Flask, dovecot: Dovecot, taken: list[bool]
) -> None:
    mails = [
        patient_mail(sender="a@example.nl", message_id="<a0@x.nl>"),  # new: A
        patient_mail(sender="a@example.nl", message_id="<a1@x.nl>", In_Reply_To="<a0@x.nl>"),
        # A a third time, on its first mail again: on the thread as the lane wrote it
        patient_mail(sender="a@example.nl", message_id="<a2@x.nl>", In_Reply_To="<a0@x.nl>"),
        patient_mail(
            sender="c@example.nl", message_id="<c0@x.nl>", Auto_Submitted="auto-replied"
        ),  # automatic, alone
        # answering a message the lane did not take: alone
        patient_mail(sender="c@example.nl", message_id="<c1@x.nl>", In_Reply_To="<c0@x.nl>"),
        patient_mail(sender="b@example.nl", message_id="<b0@x.nl>"),  # new: B
        # answering both A's and B's threads: ambiguous, alone (where the first one found wins)
        patient_mail(
            sender="b@example.nl", message_id="<b1@x.nl>", References="<a0@x.nl> <b0@x.nl>"
        ),
        patient_mail(sender="d@example.nl", message_id="<d0@x.nl>"),  # new: D
        patient_mail(sender="d@example.nl", message_id="<d1@x.nl>", References="<d0@x.nl>"),
        # on D's follow-up, which is on D's thread
        patient_mail(sender="d@example.nl", message_id="<d2@x.nl>", In_Reply_To="<d1@x.nl>"),
    ]
    for raw in mails:
        dovecot.append(raw)

    result = poll(mail_app)

    assert (result.fetched, result.logged, result.duplicates) == (10, 10, 0)
    assert timeline(mail_app) == [
        (
            "a@example.nl",
            "forwarded",
            "anna",
            ["mail", "forwarded"] + ["follow-up", "forwarded"] * 3,
        ),
        # the answer to C's out-of-office is on its contact, as one at a time puts it
        ("c@example.nl", "automatic", "bram", ["mail", "automatic", "follow-up", "forwarded"]),
        ("b@example.nl", "forwarded", "anna", ["mail", "forwarded"]),
        (
            "d@example.nl",
            "forwarded",
            "bram",
            ["mail", "forwarded"] + ["follow-up", "forwarded"] * 2,
        ),
    ]
    assert [(to, caller) for _, [to], caller in outbox(mail_app)] == [
        ("anna@example.org", "a@example.nl"),
        ("anna@example.org", "a@example.nl"),
        ("anna@example.org", "a@example.nl"),
        ("bram@example.org", "c@example.nl"),
        ("anna@example.org", "b@example.nl"),
        ("anna@example.org", "a@example.nl"),  # B's second mail, on A's thread
        ("bram@example.org", "d@example.nl"),
        ("bram@example.org", "d@example.nl"),
        ("bram@example.org", "d@example.nl"),
    ]
    forwards_agree(mail_app)
    if taken and any(taken):
        assert taken == [True, True, True, False, False, True, False, True, True, True]


def test_follow_ups_go_on_from_where_the_lane_left_the_thread(
    mail_app: Flask, dovecot: Dovecot, clock: SimClock, taken: list[bool]
) -> None:
    dovecot.append(patient_mail(sender="e@example.nl", message_id="<e0@x.nl>"))
    poll(mail_app)  # Monday 10:15: E's thread goes to Anna
    taken.clear()
    clock.advance(3 * 3600)  # 13:15: Anna's shift is over; Bram and Chantal are on
    for n in (1, 2, 3):
        answered = f"<e{n - 1}@x.nl>"
        dovecot.append(
            patient_mail(sender="e@example.nl", message_id=f"<e{n}@x.nl>", In_Reply_To=answered)
        )

    poll(mail_app)

    # The first follow-up goes to whoever is next; the others stay with that colleague, as
    # they would if each were read back from the database before the next.
    [(_, _, to, steps)] = timeline(mail_app)
    assert steps == ["mail", "forwarded"] + ["follow-up", "forwarded"] * 3
    recipients = [to for _, [to], _ in outbox(mail_app)]
    assert recipients[0] == "anna@example.org"
    assert recipients[1] != "anna@example.org"
    assert recipients[1:] == [recipients[1]] * 3
    assert f"{to}@example.org" == recipients[1]
    if taken and any(taken):
        assert taken == [True, True, True]


def test_a_forward_the_lane_cannot_make_is_made_alone_and_logged_once(
    mail_app: Flask, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = batch.forward

    def failing(**kwargs: Any) -> Any:
        if kwargs["mail"].from_address == "b@example.nl":
            raise ValueError("cannot be written")
        return made(**kwargs)

    monkeypatch.setattr(batch, "forward", failing)
    for n, sender in enumerate(["a@example.nl", "b@example.nl", "c@example.nl"]):
        dovecot.append(patient_mail(sender=sender, message_id=f"<f{n}@x.nl>"))

    result = poll(mail_app)

    assert (result.fetched, result.logged) == (3, 3)
    # b's contact the lane made was taken back: one contact each, all forwarded once
    # (alone, mail.ingest makes b's forward), and b's after the others.
    assert [(c.caller, c.outcome) for c in contacts(mail_app)] == [
        ("a@example.nl", "forwarded"),
        ("c@example.nl", "forwarded"),
        ("b@example.nl", "forwarded"),
    ]
    assert sorted(caller for _, _, caller in outbox(mail_app)) == [
        "a@example.nl",
        "b@example.nl",
        "c@example.nl",
    ]


def test_a_forward_the_lane_cannot_make_takes_what_follows_on_its_thread_alone_with_it(
    mail_app: Flask, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.append(patient_mail(sender="e@example.nl", message_id="<e0@x.nl>"))
    poll(mail_app)  # a thread from an earlier poll: E
    made = batch.forward

    def failing(**kwargs: Any) -> Any:
        if kwargs["mail"].message_id in ("<b0@x.nl>", "<e1@x.nl>"):
            raise ValueError("cannot be written")
        return made(**kwargs)

    monkeypatch.setattr(batch, "forward", failing)
    mails = [
        patient_mail(sender="b@example.nl", message_id="<b0@x.nl>"),  # its forward fails
        patient_mail(sender="b@example.nl", message_id="<b1@x.nl>", In_Reply_To="<b0@x.nl>"),
        patient_mail(sender="e@example.nl", message_id="<e1@x.nl>", In_Reply_To="<e0@x.nl>"),
        patient_mail(sender="e@example.nl", message_id="<e2@x.nl>", In_Reply_To="<e1@x.nl>"),
        patient_mail(sender="c@example.nl", message_id="<c0@x.nl>"),
        patient_mail(sender="c@example.nl", message_id="<c1@x.nl>", In_Reply_To="<c0@x.nl>"),
    ]
    for raw in mails:
        dovecot.append(raw)

    result = poll(mail_app)

    assert (result.fetched, result.logged) == (6, 6)
    # C's thread was written with the group; B's mails and E's follow-ups were handed back
    # and made alone after it, each in its mailbox's order, on one thread each.
    follow_up = ["follow-up", "forwarded"]
    assert [(caller, outcome, steps) for caller, outcome, _, steps in timeline(mail_app)] == [
        ("e@example.nl", "forwarded", ["mail", "forwarded", *follow_up, *follow_up]),
        ("c@example.nl", "forwarded", ["mail", "forwarded", *follow_up]),
        ("b@example.nl", "forwarded", ["mail", "forwarded", *follow_up]),
    ]
    with database(mail_app).session() as session:
        written = session.execute(
            select(MailMessage.message_id, Contact.caller)
            .join(Contact, Contact.id == MailMessage.contact_id)
            .order_by(MailMessage.id)
        ).all()
    assert [tuple(row) for row in written] == [
        ("<e0@x.nl>", "e@example.nl"),
        ("<c0@x.nl>", "c@example.nl"),
        ("<c1@x.nl>", "c@example.nl"),
        ("<b0@x.nl>", "b@example.nl"),
        ("<b1@x.nl>", "b@example.nl"),
        ("<e1@x.nl>", "e@example.nl"),
        ("<e2@x.nl>", "e@example.nl"),
    ]


def test_large_mail_in_a_batch_is_stored_and_forwarded_byte_for_byte(
    mail_app: Flask, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    # On SQLite a mail of LARGE_BLOB or more (and its forward) is written through blob I/O,
    # not bound: what is stored and what the colleague gets must be the mail exactly.
    scan = random.Random(7).randbytes(LARGE_BLOB + 12345)
    for n in range(4):
        message = EmailMessage()
        message["From"] = f"patient{n}@example.nl"
        message["To"] = DESK_ADDRESS
        message["Subject"] = f"Scan {n}"
        message["Message-ID"] = f"<large{n}@example.nl>"
        message.set_content("Hierbij de scan van mijn brief.")
        if n in (1, 2):  # two large among small ones, in one fetch batch
            message.add_attachment(
                scan[n:], maintype="application", subtype="pdf", filename="scan.pdf"
            )
        dovecot.append(message.as_bytes(policy=SMTP))

    assert poll(mail_app).logged == 4
    with database(mail_app).session() as session:
        stored = session.scalars(select(MailMessage).order_by(MailMessage.id)).all()
        assert [m.raw for m in stored] == [dovecot.fetch(uid) for uid in dovecot.uids()]
        assert [m.subject for m in stored] == ["Scan 0", "Scan 1", "Scan 2", "Scan 3"]
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        # Each original is stored once: the forward's row points at it, without its bytes.
        assert [row.original_id for row in rows] == [m.id for m in stored]
        assert all(len(row.raw) < 10_000 for row in rows)
        forwards = {row.message_id: bytes(message_bytes(session, row.id)) for row in rows}
    flush_outbox(mail_app)
    sent = sorted(smtp.wait_for(4), key=lambda m: str(m.message["Subject"]))
    for n, mail in enumerate(sent):
        assert mail.raw == forwards[mail.message["Message-ID"]], n  # sent as it was queued
        [original] = [
            p for p in mail.message.iter_attachments() if p.get_content_type() == "message/rfc822"
        ]
        [inner] = original.get_payload()
        attached = [p.get_content() for p in inner.iter_attachments()]
        assert attached == ([scan[n:]] if n in (1, 2) else []), n


def test_two_mailboxes_following_up_one_thread_at_once_both_log_and_forward(
    desk_app: Flask, two_desk: Desk, dovecot: Dovecot, linde: Dovecot
) -> None:
    # The patient's thread, from Noord; then a follow-up on it in each mailbox, both polled
    # at once: each lane reads the thread under a row lock, the second after the first.
    dovecot.append(patient_mail(sender="e@example.nl", message_id="<e0@x.nl>"))
    poll_every_mailbox(desk_app)
    for n, box in enumerate((dovecot, linde)):
        box.append(
            patient_mail(
                sender="e@example.nl", message_id=f"<e{n + 1}@x.nl>", In_Reply_To="<e0@x.nl>"
            )
        )
    keys = [a.key for a in imap_accounts(two_desk, desk_app.config)]
    barrier = threading.Barrier(len(keys))
    rounds: list[Any] = []

    def worker(key: str) -> None:
        barrier.wait(10)
        rounds.append(poll_one_mailbox(desk_app, key))

    threads = [threading.Thread(target=worker, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(r.result.logged for r in rounds if r.result is not None) == [1, 1]
    [thread] = contacts(desk_app)
    assert (thread.outcome, thread.forwarded_to) == ("forwarded", "anna")
    assert [e.kind for e in sorted(thread.events, key=lambda e: e.id)] == [
        "mail",
        "forwarded",
        "follow-up",
        "forwarded",
        "follow-up",
        "forwarded",
    ]
    assert [to for _, [to], _ in outbox(desk_app)] == ["anna@example.org"] * 3
