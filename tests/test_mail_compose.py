"""What our messages carry, checked where it counts: in what a real SMTP server received.

Messages go through the outbox (both databases, the `app` fixture) to the test SMTP server
of tests/mailservers.py, and the assertions read the message as the server parsed it.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import re
import string
from collections.abc import Sequence
from datetime import datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.sizes import file_size
from mail.compose import (
    POLICY,
    acknowledgement,
    as_bytes,
    forward,
    header_text,
    new_message_id,
    set_text,
    voicemail_notice,
)
from mail.message import ParsedMail
from mail.outbox import FlushResult, SmtpSettings, enqueue, flush
from mail.parsing import parse_message
from routing.desk import Desk, Staff
from tests.conftest import local

if TYPE_CHECKING:  # imported at run time by pytest, as a plugin
    from tests.mailservers import ReceivedMail, SmtpSink

CORPUS = Path(__file__).parent / "mail_corpus"
REFERENCE = "HD-000123"
SENDER = "helpdesk@example.org"
NOW = local("2026-11-23 10:15")
VOICEMAIL_AT = local("2026-11-23 18:05")


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def deliver(
    app: Flask, clock: SimClock, sink: SmtpSink, *messages: EmailMessage
) -> list[ReceivedMail]:
    """Through the outbox to the test SMTP server; what it received."""
    with database(app).session() as session:
        for message in messages:
            enqueue(session, message, kind="test", contact_id=None, now=clock())
        session.commit()
    settings = SmtpSettings(host=sink.host, port=sink.port, starttls=False, timeout=5.0)
    assert flush(database(app), settings, clock) == FlushResult(len(messages), 0, 0)
    return sink.wait_for(len(messages))


def colleague(desk: Desk) -> Staff:
    return desk.staff_by_id["anna"]


def forward_of(
    desk: Desk, raw: bytes, mail: ParsedMail | None = None, **extra: object
) -> EmailMessage:
    return forward(
        desk=desk,
        reference=REFERENCE,
        mail=mail or parse_message(raw),
        raw=raw,
        colleague=colleague(desk),
        sender=SENDER,
        message_id=new_message_id("forward", REFERENCE, "example.org"),
        at=NOW,
        **extra,  # type: ignore[arg-type]
    )


def acknowledgement_of(
    desk: Desk, mail: ParsedMail, now: datetime = NOW, next_opening: datetime | None = None
) -> EmailMessage:
    return acknowledgement(
        desk=desk,
        reference=REFERENCE,
        mail=mail,
        to=mail.return_path or mail.from_address or "",
        sender=SENDER,
        message_id=new_message_id("ack", REFERENCE, "example.org"),
        now=now,
        next_opening=next_opening,
    )


def voicemail_notice_of(
    desk: Desk,
    recipients: Sequence[str] = ("anna@example.org",),
    *,
    caller: str = "+31612345678",
    organisation: str = "Ziekenhuis Noord",
    started_at: datetime = VOICEMAIL_AT,
    seconds: int | None = 65,
) -> EmailMessage:
    """The notice of a voicemail, by default 65 seconds from +31612345678 for Ziekenhuis
    Noord on Monday evening; the tests change only what they are about."""
    return voicemail_notice(
        desk=desk,
        reference=REFERENCE,
        caller=caller,
        organisation=organisation,
        started_at=started_at,
        seconds=seconds,
        recipients=recipients,
        sender=SENDER,
        message_id=new_message_id("voicemail", REFERENCE, "example.org"),
    )


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    content = body.get_content()
    assert isinstance(content, str)
    return content


def header_names(received: ReceivedMail) -> list[str]:
    return [name.lower() for name, _value in received.message.items()]


def pdf_with_every_byte() -> bytes:
    return b"%PDF-1.4\n" + bytes(range(256)) * 800 + b"\n%%EOF\r\n\x00\xff"


def patient_mail_with_pdf(pdf: bytes) -> bytes:
    original = EmailMessage()
    original["From"] = "Jan de Vries <jan.devries@example.nl>"
    original["To"] = "helpdesk@example.org"
    original["Subject"] = "Mijn verwijsbrief"
    original["Message-ID"] = "<with-pdf@example.nl>"
    original["Date"] = "Mon, 23 Nov 2026 09:58:00 +0100"
    original.set_content("Goedemorgen,\n\nHierbij mijn verwijsbrief.\n.\nJan\n")
    original.add_attachment(pdf, maintype="application", subtype="pdf", filename="verwijsbrief.pdf")
    return original.as_bytes(policy=policy.SMTP)


def attachments_of(message: EmailMessage) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        content = part.get_content()
        if isinstance(content, bytes):
            found[part.get_filename() or ""] = content
    return found


def attached_original(received: ReceivedMail) -> EmailMessage:
    [part] = list(received.message.iter_attachments())
    assert part.get_content_type() == "message/rfc822"
    inner = part.get_content()
    assert isinstance(inner, EmailMessage)
    return inner


# --- header_text and Message-IDs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Inloggen lukt niet", "Inloggen lukt niet"),
        ("  Hi\r\nBcc: victim@example.org ", "Hi Bcc: victim@example.org"),
        ("tab\there\x00nul\x1bescape\x7fdel\x85nel", "tab here nul escape del nel"),
        ("line\u2028separator\u2029para", "line separator para"),
        ("lone \udcff surrogate", "lone surrogate"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # bidi override removed
        ("=?utf-8?q?Hi=0D=0ABcc:_victim@example.org?=", "Hi Bcc: victim@example.org"),
        ("=?utf-8?b?SGkNCkJjYzogdkBleGFtcGxlLm9yZw==?=", "Hi Bcc: v@example.org"),
        ("=?x-unknown?q?abc?= rest", "= ?x-unknown?q?abc?= rest"),
        ("1+1=?", "1+1= ?"),
        ("Ünïcødé — prima", "Ünïcødé — prima"),
    ],
)
def test_header_text_makes_patient_text_one_safe_line(value: str, expected: str) -> None:
    assert header_text(value) == expected


def test_header_text_cuts_long_text_with_an_ellipsis() -> None:
    assert header_text("a" * 300) == "a" * 199 + "…"
    assert header_text("word " * 10, limit=12) == "word word w…"
    assert len(header_text("x" * 50, limit=20)) == 20


def test_message_ids_are_unique_and_carry_kind_and_reference() -> None:
    ids = {new_message_id("forward", REFERENCE, "example.org") for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"<forward\.HD-000123\.[0-9a-f]{24}@example\.org>", i) for i in ids)
    with pytest.raises(ValueError):
        new_message_id("forward", REFERENCE, "example.org>\r\nBcc: x@y.z")
    with pytest.raises(ValueError):
        new_message_id("forward", "HD-1 2", "example.org")


# --- forwards -----------------------------------------------------------------------------


def test_a_forward_arrives_with_reply_to_the_patient_and_the_original_whole(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    raw = corpus("alternative_with_attachments.eml").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    message = forward_of(example_desk, raw, mailbox="helpdesk@example.org")
    [received] = deliver(app, clock, smtp, message)
    got = received.message

    assert received.rcpt_tos == ("anna@example.org",)
    assert received.mail_from == SENDER
    assert str(got["To"]) == "Anna de Vries <anna@example.org>"
    assert str(got["From"]) == "Helpdesk Digitale Zorg <helpdesk@example.org>"
    assert str(got["Subject"]) == "[HD-000123] Verwijsbrief en foto van de foutmelding"
    [reply_to] = got["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == ("Lotte Dekker", "l.dekker@example.nl")
    assert got["X-Auto-Response-Suppress"] == "All"
    assert got["Auto-Submitted"] == "auto-generated"
    assert got["In-Reply-To"] == "<alt-attach-3@example.nl>"
    assert got["References"] == "<alt-attach-3@example.nl>"
    assert got["Message-ID"] == message["Message-ID"]
    assert got["Date"].datetime == NOW

    note = text_of(got)
    for expected in (
        REFERENCE,
        "Ziekenhuis Noord (helpdesk@example.org)",
        "Lotte Dekker <l.dekker@example.nl>",
        "maandag 23 november 2026 om 10.15 uur",
        "verwijsbrief.pdf (308 bytes)",
        "foutmelding röntgen.jpg (227 bytes)",
        "> Hierbij de verwijsbrief en een foto van de foutmelding bij het uploaden.",
    ):
        assert expected in note

    # The original travels byte for byte, and so do its attachments.
    assert raw in received.raw
    inner = attached_original(received)
    assert inner["Message-ID"] == "<alt-attach-3@example.nl>"
    original = message_from_bytes(raw, policy=policy.default)
    assert isinstance(original, EmailMessage)
    assert attachments_of(inner) == attachments_of(original)


def test_a_pdf_in_the_original_arrives_byte_identical(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    pdf = pdf_with_every_byte()
    raw = patient_mail_with_pdf(pdf)
    [received] = deliver(app, clock, smtp, forward_of(example_desk, raw))
    assert attachments_of(attached_original(received)) == {"verwijsbrief.pdf": pdf}
    assert raw in received.raw  # a line "." in the patient's text survived dot-stuffing


def test_an_8bit_original_is_attached_unchanged(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    raw = corpus("windows1252_body.eml")
    assert not raw.isascii()
    [received] = deliver(app, clock, smtp, forward_of(example_desk, raw))
    assert raw in received.raw
    assert "Factuur parkeren" in str(received.message["Subject"])


def test_as_bytes_writes_what_the_email_package_writes(example_desk: Desk) -> None:
    """`as_bytes` only saves copies; the message is the same however it is written."""
    raw = corpus("windows1252_body.eml")
    message = forward_of(example_desk, raw)
    data = as_bytes(message)
    assert data == message.as_bytes(policy=POLICY) == message.as_bytes()
    assert data == as_bytes(copy.deepcopy(message))
    assert raw in data and data.count(raw) == 1


def test_every_message_we_build_is_written_as_the_email_package_writes_it(
    example_desk: Desk,
) -> None:
    """Our messages are written out without the generator; byte for byte what it writes,
    for every mail of the corpus forwarded (an original that goes as a message, or as a
    file), acknowledged, and a voicemail notice."""
    english = dataclasses.replace(example_desk, language="en")
    raws = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    raws += [b"this is no mail\x00\r\n", corpus("windows1252_body.eml").replace(b"\r\n", b"\n")]
    written = []
    for n, raw in enumerate(raws):
        desk = english if n % 2 else example_desk
        mail = parse_message(raw)
        written.append(forward_of(desk, raw, mail))
        if mail.from_address:
            written.append(acknowledgement_of(desk, mail))
    written.append(voicemail_notice_of(example_desk))
    for message in written:
        assert as_bytes(message) == message.as_bytes(policy=POLICY), message["Subject"]
    assert len(written) > len(raws) + 10


def test_our_own_forward_sent_back_to_the_desk_is_forwarded_whole_again(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    # Forwards share one boundary; one whose original holds it (a colleague sent our
    # forward back to the desk) gets another, or the original would end at its first part.
    raw = corpus("windows1252_body.eml")
    [first] = deliver(app, clock, smtp, forward_of(example_desk, raw))
    smtp.clear()
    [again] = deliver(app, clock, smtp, forward_of(example_desk, first.raw))
    assert first.message.get_boundary() != again.message.get_boundary()
    inner = attached_original(again)
    assert inner.get_boundary() == first.message.get_boundary()
    assert first.raw.strip() in again.raw
    assert len(list(inner.iter_attachments())) == 1


def test_an_original_that_cannot_travel_as_a_message_is_attached_as_a_file(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    raw = b"this is no mail\x00" + b"x" * 5000 + b"\r\n"
    [received] = deliver(app, clock, smtp, forward_of(example_desk, raw))
    [part] = list(received.message.iter_attachments())
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_filename() == "original.eml"
    assert part.get_content() == raw


@pytest.mark.parametrize(
    ("line", "travels"),
    [
        (b"x" * 998 + b"\r\n", True),  # RFC 5322's limit, CRLF not counted
        (b"x" * 998 + b"\n", True),
        (b"x" * 999 + b"\r\n", False),
        (b"x" * 999 + b"\n", False),
        (b"x" * 998 + b"\r\r\n", False),  # a bare CR is a character of the line
        (b"x" * 998, True),  # the last line, without a line end
        (b"x" * 998 + b"\r", False),
        (b"x" * 5000 + b"\r\n", False),
    ],
)
@pytest.mark.parametrize("placed", ["first", "after 1 MB of short lines"])
def test_an_original_goes_as_a_message_only_when_smtp_can_carry_its_lines(
    example_desk: Desk, line: bytes, travels: bool, placed: str
) -> None:
    before = b"" if placed == "first" else b"y" * 76 * 14_000
    before = b"\r\n".join(before[i : i + 76] for i in range(0, len(before), 76))
    raw = b"Subject: lang\r\nFrom: a@example.nl\r\n\r\n" + before + b"\r\n" * bool(before) + line
    message = forward_of(example_desk, raw)
    [part] = list(message.iter_attachments())
    expected = "message/rfc822" if travels else "application/octet-stream"
    assert part.get_content_type() == expected
    data = as_bytes(message)
    if travels:  # as it arrived, its line ends all made CRLF for SMTP
        crlf = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        assert crlf in data
        assert raw in data or raw != crlf
    else:
        assert part.get_content() == raw


def test_an_original_with_bare_line_ends_is_attached_with_crlf(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    raw = corpus("windows1252_body.eml").replace(b"\r\n", b"\n")
    raw = raw.replace(b"\n\n", b"\n\n\rbare CR\r\n", 1)
    [received] = deliver(app, clock, smtp, forward_of(example_desk, raw))
    inner = attached_original(received)
    assert "Factuur parkeren" in str(inner["Subject"])
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    assert crlf in received.raw
    assert b"\n" not in received.raw.replace(b"\r\n", b"")  # SMTP's line ends only


def test_a_forward_without_a_readable_sender_has_no_reply_to_and_says_so(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    raw = corpus("ambiguous_from.eml")
    mail = parse_message(raw)
    assert mail.from_address is None
    [received] = deliver(app, clock, smtp, forward_of(example_desk, raw, mail))
    assert received.message["Reply-To"] is None
    note = text_of(received.message)
    assert "Let op: een medewerker moet deze mail zelf bekijken." in note
    assert "het adres van de afzender is niet eenduidig te lezen" in note


def test_a_forward_lists_what_needs_attention(example_desk: Desk) -> None:
    raw = corpus("broken_boundary.eml")
    mail = dataclasses.replace(
        parse_message(raw), needs_attention=True, problems=("the MIME boundary was never found",)
    )
    note = text_of(forward_of(example_desk, raw, mail))
    assert "Let op: een medewerker moet deze mail zelf bekijken.\n- the MIME boundary" in note


@pytest.mark.parametrize(
    ("language", "subject", "expected"),
    [
        ("nl", "", "[HD-000123] (geen onderwerp)"),
        ("en", "", "[HD-000123] (no subject)"),
        ("nl", "Re: [HD-000123] Inloggen lukt niet", "[HD-000123] Re: Inloggen lukt niet"),
        ("en", "Re: [hd-000123]", "[HD-000123] Re:"),
        # Another contact's reference stays, as do this one's digits inside a longer one.
        (
            "nl",
            "Re: [ HD-000123 ] over [HD-000124] en [HD-0001234]",
            "[HD-000123] Re: over [HD-000124] en [HD-0001234]",
        ),
    ],
)
def test_a_forward_subject_carries_the_reference_once(
    example_desk: Desk, language: str, subject: str, expected: str
) -> None:
    desk = dataclasses.replace(example_desk, language=language)
    raw = corpus("plain_patient.eml")
    mail = dataclasses.replace(parse_message(raw), subject=subject)
    assert str(forward_of(desk, raw, mail)["Subject"]) == expected


def test_a_forward_in_english_for_an_english_desk(example_desk: Desk) -> None:
    desk = dataclasses.replace(example_desk, language="en")
    raw = corpus("plain_patient.eml")
    note = text_of(forward_of(desk, raw, received_at=local("2026-11-21 22:05")))
    assert "Received:     Saturday 21 November 2026 at 22:05" in note
    assert "Reply, and your answer goes to the patient. Keep [HD-000123] in the subject." in note


def test_a_long_patient_message_id_stays_intact_for_threading(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    # As Outlook writes them: longer than a header line may be before it is folded.
    long_id = (
        "<AM0PR01MB1234567890ABCDEF1234567890ABCDEF12345678901"
        "@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>"
    )
    raw = corpus("plain_patient.eml")
    mail = dataclasses.replace(parse_message(raw), message_id=long_id, references=(long_id,))
    [received] = deliver(app, clock, smtp, acknowledgement_of(example_desk, mail))
    assert received.message["In-Reply-To"] == long_id
    assert received.message["References"] == long_id
    assert b"=?utf-8?" not in received.raw.split(b"\r\n\r\n", 1)[0]


# --- acknowledgements ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "nl",
            [
                "[HD-000123] Ontvangen: Inloggen lukt niet",
                "Dank u wel voor uw e-mail aan Helpdesk Digitale Zorg.",
                "Uw bericht heeft het nummer HD-000123.",
                "Laat dit nummer dan in het onderwerp staan.",
                "Wij zijn morgen om 8.30 uur weer open.",
                "Onze openingstijden: maandag en dinsdag van 8.30 tot 17.00 uur;",
                "Op https://example.org/hulp vindt u hulp",
                "Dit is een automatisch antwoord",
            ],
        ),
        (
            "en",
            [
                "[HD-000123] Received: Inloggen lukt niet",
                "Thank you for your email to Helpdesk Digitale Zorg.",
                "Your message has the reference number HD-000123.",
                "please keep this number in the subject line",
                "We are open again tomorrow at 8:30 am.",
                "Our opening hours: Monday and Tuesday from 8:30 am to 5:00 pm;",
                "at https://example.org/hulp",
                "This is an automatic reply",
            ],
        ),
    ],
)
def test_an_acknowledgement_arrives_in_the_desks_language(
    app: Flask,
    example_desk: Desk,
    clock: SimClock,
    smtp: SmtpSink,
    language: str,
    expected: list[str],
) -> None:
    desk = dataclasses.replace(example_desk, language=language)
    mail = dataclasses.replace(
        parse_message(corpus("plain_patient.eml")),
        references=("<first@example.nl>", "<second@example.nl>"),
    )
    now = local("2026-11-23 18:05")
    message = acknowledgement_of(desk, mail, now, next_opening=local("2026-11-24 08:30"))
    [received] = deliver(app, clock, smtp, message)
    got = received.message

    assert received.rcpt_tos == ("jan.devries@example.nl",)
    assert str(got["To"]) == "jan.devries@example.nl"
    assert got["Auto-Submitted"] == "auto-replied"
    assert got["X-Auto-Response-Suppress"] == "All"
    assert got["In-Reply-To"] == "<CAF3x9pQ2-plain@mail.example.nl>"
    assert got["References"] == (
        "<first@example.nl> <second@example.nl> <CAF3x9pQ2-plain@mail.example.nl>"
    )
    assert got["Date"].datetime == now
    assert got.get_content_type() == "text/plain" and got.get_content_charset() == "utf-8"
    subject, *sentences = expected
    assert str(got["Subject"]) == subject
    text = text_of(got)
    for sentence in sentences:
        assert sentence in text


def test_an_acknowledgement_without_a_next_opening_promises_no_hour(example_desk: Desk) -> None:
    mail = parse_message(corpus("plain_patient.eml"))
    text = text_of(acknowledgement_of(example_desk, mail, next_opening=None))
    assert "Een medewerker leest het zo snel mogelijk." in text
    assert "weer open" not in text


def test_an_acknowledgement_to_mail_without_message_id_has_no_thread_headers(
    example_desk: Desk,
) -> None:
    mail = parse_message(corpus("no_message_id.eml"))
    assert mail.message_id is None
    message = acknowledgement_of(example_desk, mail)
    assert message["In-Reply-To"] is None and message["References"] is None
    assert message["Auto-Submitted"] == "auto-replied"


def test_an_acknowledgement_repeats_nothing_but_the_subject(example_desk: Desk) -> None:
    mail = dataclasses.replace(
        parse_message(corpus("plain_patient.eml")), from_name="Buy now at spam.example", text="spam"
    )
    message = acknowledgement_of(example_desk, mail)
    data = message.as_bytes(policy=POLICY)
    assert b"spam" not in data
    assert str(message["Subject"]) == "[HD-000123] Ontvangen: Inloggen lukt niet"
    assert b"Inloggen lukt niet" in data


# --- header injection -----------------------------------------------------------------------

INJECTIONS = [
    pytest.param("Hi\r\nBcc: victim@example.org", "Eve\r\nBcc: victim@example.org", id="crlf"),
    pytest.param("Hi\nBcc: victim@example.org", "Eve\rBcc: victim@example.org", id="lf-cr"),
    pytest.param(
        "=?utf-8?q?Hi=0D=0ABcc:_victim@example.org?=",
        "=?utf-8?q?Eve=0D=0ABcc:_victim@example.org?=",
        id="encoded-word-q",
    ),
    pytest.param(
        "x =?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?= y",
        '"=?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?="',
        id="encoded-word-b-quoted",
    ),
    pytest.param(
        "=?utf-8?q?=3D=3Futf-8=3Fq=3FHi=3D0D=3D0ABcc:_victim@example.org=3F=3D?=",
        "Eve\u2028Bcc: victim@example.org",
        id="double-encoded",
    ),
]


@pytest.mark.parametrize(("subject", "name"), INJECTIONS)
def test_injection_through_subject_or_name_adds_no_header_at_the_receiver(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink, subject: str, name: str
) -> None:
    raw = corpus("plain_patient.eml")
    mail = dataclasses.replace(parse_message(raw), subject=subject, from_name=name)
    messages = forward_of(example_desk, raw, mail), acknowledgement_of(example_desk, mail)
    forwarded, acknowledged = deliver(app, clock, smtp, *messages)
    for received in (forwarded, acknowledged):
        assert "bcc" not in header_names(received)
        assert not re.search(rb"(?im)^bcc:", received.raw.split(b"\r\n\r\n", 1)[0])
        assert "victim" not in " ".join(received.rcpt_tos)
        assert str(received.message["Subject"]).startswith("[HD-000123] ")
        assert "\n" not in str(received.message["Subject"])
    assert header_names(forwarded).count("reply-to") == 1
    [reply_to] = forwarded.message["Reply-To"].addresses
    assert reply_to.addr_spec == "jan.devries@example.nl"
    assert "\n" not in reply_to.display_name and "\r" not in reply_to.display_name
    assert forwarded.rcpt_tos == ("anna@example.org",)
    assert acknowledged.rcpt_tos == ("jan.devries@example.nl",)


def test_the_injection_corpus_mail_is_forwarded_harmlessly(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    raw = corpus("header_injection.eml")
    [received] = deliver(app, clock, smtp, forward_of(example_desk, raw))
    assert "bcc" not in header_names(received)
    assert str(received.message["Subject"]) == "[HD-000123] Hallo Bcc: victim@example.com nep tekst"
    assert received.rcpt_tos == ("anna@example.org",)


# --- voicemail notices ----------------------------------------------------------------------


def test_a_voicemail_notice_tells_colleagues_where_to_listen(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    message = voicemail_notice_of(example_desk, ["anna@example.org", "bram@example.org"])
    [received] = deliver(app, clock, smtp, message)
    got = received.message
    assert received.rcpt_tos == ("anna@example.org", "bram@example.org")
    assert str(got["Subject"]) == "Voicemail HD-000123 van +31612345678 voor Ziekenhuis Noord"
    assert got["Auto-Submitted"] == "auto-generated"
    assert got["X-Auto-Response-Suppress"] == "All"
    assert got["Date"].datetime == local("2026-11-23 18:05")
    text = text_of(got)
    assert "maandag 23 november 2026 om 18.05 uur" in text
    assert "1 minuut en 5 seconden" in text
    assert "dashboard" in text
    assert "http" not in text  # no recording URL: it needs Twilio credentials


@pytest.mark.parametrize(
    ("language", "seconds", "expected"),
    [
        ("nl", None, "onbekend"),
        ("nl", 1, "1 seconde"),
        ("nl", 120, "2 minuten"),
        ("en", 45, "45 seconds"),
        ("en", 61, "1 minute 1 second"),
    ],
)
def test_a_voicemail_notice_says_how_long_the_message_is(
    example_desk: Desk, language: str, seconds: int | None, expected: str
) -> None:
    message = voicemail_notice_of(
        dataclasses.replace(example_desk, language=language),
        caller="",
        organisation="",
        started_at=NOW,
        seconds=seconds,
    )
    assert re.search(rf"^(Lengte|Length): +{re.escape(expected)}$", text_of(message), re.M)
    unknown = "onbekend nummer" if language == "nl" else "unknown number"
    assert unknown in str(message["Subject"])


def test_every_message_refuses_a_naive_time_or_a_bad_message_id(example_desk: Desk) -> None:
    mail = parse_message(corpus("plain_patient.eml"))
    with pytest.raises(ValueError):
        acknowledgement_of(example_desk, mail, now=datetime(2026, 11, 23, 10, 15))
    with pytest.raises(ValueError):
        acknowledgement(
            desk=example_desk,
            reference=REFERENCE,
            mail=mail,
            to="jan.devries@example.nl",
            sender=SENDER,
            message_id="<a@b>\r\nBcc: x@y.z",
            now=NOW,
            next_opening=None,
        )


@pytest.mark.parametrize(
    ("size", "nl", "en"),
    [
        (0, "0 bytes", "0 bytes"),
        (1023, "1023 bytes", "1023 bytes"),
        (48_200, "47 KB", "47 KB"),
        (1_572_864, "1,5 MB", "1.5 MB"),
        (1_288_490_189, "1.228,8 MB", "1,228.8 MB"),
    ],
)
def test_sizes_are_written_in_the_readers_language(size: int, nl: str, en: str) -> None:
    assert (file_size(size, "nl"), file_size(size, "en")) == (nl, en)


# --- texts a desk overrides ---------------------------------------------------------------


def with_messages(desk: Desk, language: str, **texts: str) -> Desk:
    """The desk with `[messages.<language>]` overrides, as loading them would give."""
    return dataclasses.replace(desk, messages={**desk.messages, language: texts})


def test_an_overridden_acknowledgement_reaches_the_patient(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    desk = with_messages(
        example_desk,
        "nl",
        ack_subject="Wij hebben uw mail: {subject}",
        ack_thanks="Fijn dat u {desk} mailt.",
        ack_next="Vanaf {next_opening} helpen wij u graag. Tot dan, {desk}.",
    )
    mail = parse_message(corpus("plain_patient.eml"))
    message = acknowledgement_of(desk, mail, next_opening=local("2026-11-24 08:30"))

    [received] = deliver(app, clock, smtp, message)

    got = received.message
    assert str(got["Subject"]) == "[HD-000123] Wij hebben uw mail: Inloggen lukt niet"
    paragraphs = text_of(got).replace("\r\n", "\n").split("\n\n")
    assert paragraphs[:4] == [
        "Goedendag,",  # not overridden: the built-in text
        "Fijn dat u Helpdesk Digitale Zorg mailt.",
        paragraphs[2],
        "Vanaf morgen om 8.30 uur helpen wij u graag. Tot dan, Helpdesk Digitale Zorg.",
    ]
    assert paragraphs[2].startswith("Uw bericht heeft het nummer HD-000123.")
    # Another language keeps its built-in texts.
    english = acknowledgement_of(dataclasses.replace(desk, language="en"), mail)
    assert "Thank you for your email to Helpdesk Digitale Zorg." in text_of(english)


def test_an_overridden_forward_note_and_voicemail_notice_reach_the_colleague(
    app: Flask, example_desk: Desk, clock: SimClock, smtp: SmtpSink
) -> None:
    desk = with_messages(
        example_desk,
        "nl",
        forward_intro="Nieuwe mail voor {desk}.",
        forward_reply_hint="Antwoord gewoon; houd [{reference}] in het onderwerp.",
        label_from="Afzender",
        voicemail_subject="Terugbellen: {caller} ({reference})",
        voicemail_intro="{caller} heeft ingesproken voor {organisation}.",
    )
    raw = corpus("plain_patient.eml")
    notice = voicemail_notice_of(desk)

    forwarded, noticed = deliver(app, clock, smtp, forward_of(desk, raw), notice)

    note = text_of(forwarded.message).replace("\r\n", "\n")
    assert note.startswith("Nieuwe mail voor Helpdesk Digitale Zorg.\n\n")
    assert re.search(r"^Afzender: +Jan de Vries <", note, re.M)
    assert "Antwoord gewoon; houd [HD-000123] in het onderwerp." in note
    assert "De originele mail zit als bijlage bij dit bericht." in note  # built in
    assert str(noticed.message["Subject"]) == "Terugbellen: +31612345678 (HD-000123)"
    assert (
        text_of(noticed.message)
        .replace("\r\n", "\n")
        .startswith("+31612345678 heeft ingesproken voor Ziekenhuis Noord.\n\n")
    )


def test_an_overridden_text_cannot_break_a_header(example_desk: Desk) -> None:
    desk = with_messages(
        example_desk, "nl", ack_subject="Ontvangen\r\nBcc: x@example.org {subject}"
    )
    message = acknowledgement_of(desk, parse_message(corpus("plain_patient.eml")))
    assert str(message["Subject"]) == "[HD-000123] Ontvangen Bcc: x@example.org Inloggen lukt niet"
    assert "Bcc" not in message


def test_a_forward_writes_reply_to_and_date_as_the_standard_library_writes_them(
    example_desk: Desk,
) -> None:
    # A plain name and address go into Reply-To as text, and the Date as its formatted
    # datetime, without the header grammar: the lines written must be the lines the
    # standard library writes for the same name, address and moment, for plain names and
    # for every ASCII kind that is not (quoted, encoded, long). A name in other letters is
    # one encoded word (email.utils.formataddr), where the standard library encodes word by
    # word: both must read back as the same name and address, in lines of at most 78.
    raw = corpus("plain_patient.eml")
    parsed = parse_message(raw)
    names = ["Jan de Vries", "O'Brien", "Jan A. de Vries", "José Álvarez", "Jan (thuis)"]
    names += ['"Jan"', "Vries, Jan de", "x" * 60, "Jan " * 20, "=?utf-8?q?Jan?=", ""]
    names += ["a b", "Jan de Vries-van den Berg van der Heijden tot Ravenswaay"]
    names += ["Özlem Yılmaz", "Émilie El Amrani-Ørsted van der Heijden tot Ravenswaay", "李小龍"]
    rng = random.Random(2026)
    letters = string.ascii_letters + " .-'\"(),éÉöÖçßıİøæ€李\u202e"
    names += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    for name in names:
        mail = dataclasses.replace(parsed, from_name=name, from_address="jan@example.nl")
        written = as_bytes(forward_of(example_desk, raw, mail))
        expected = EmailMessage(policy=policy.SMTP)
        expected["Reply-To"] = Address(
            display_name=header_text(name, 100), addr_spec="jan@example.nl"
        )
        expected["Date"] = NOW.astimezone(example_desk.tz)
        expected["Content-Disposition"] = f'attachment; filename="{REFERENCE}.eml"'
        ours, theirs = header_fields(written), header_fields(expected.as_bytes())
        if header_text(name, 100).isascii():
            assert ours[b"reply-to"] == theirs[b"reply-to"], name
        else:
            [read] = message_from_bytes(written, policy=policy.default)["Reply-To"].addresses
            [meant] = message_from_bytes(expected.as_bytes(), policy=policy.default)[
                "Reply-To"
            ].addresses
            assert (read.display_name, read.addr_spec) == (meant.display_name, meant.addr_spec)
            assert max(map(len, ours[b"reply-to"].split(b"\r\n"))) <= 78, name
        assert ours[b"date"] == theirs[b"date"]
        attached = header_fields(written.partition(b"Content-Type: message/rfc822\r\n")[2])
        assert attached[b"content-disposition"] == theirs[b"content-disposition"]


def test_a_subject_is_written_as_the_standard_library_writes_it(example_desk: Desk) -> None:
    # A short subject of printable ASCII goes in as text, unparsed; what is written must be
    # what the standard library writes for the same subject, and for every other kind.
    raw = corpus("plain_patient.eml")
    parsed = parse_message(raw)
    subjects = ["Inloggen lukt niet", "Re: vraag", "Wachtwoord (opnieuw) ; 100% kwijt!"]
    subjects += ["Één vraag", "x" * 57, "x" * 58, "woord " * 20, "a\tb", " rand ", "a  b"]
    subjects += ["=?utf-8?q?Vraag?=", "=?", "Re: [HD-000123]", "\u202eomgekeerd", ""]
    rng = random.Random(2026)
    alphabet = string.printable + "éß€"
    subjects += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90))) for _ in range(300)
    ]
    for subject in subjects:
        message = forward_of(example_desk, raw, dataclasses.replace(parsed, subject=subject))
        expected = EmailMessage(policy=policy.SMTP)
        expected["Subject"] = str(message["Subject"])
        ours, theirs = header_fields(as_bytes(message)), header_fields(expected.as_bytes())
        assert ours[b"subject"] == theirs[b"subject"], subject


def header_fields(data: bytes) -> dict[bytes, bytes]:
    """Each header field of a written message as written, folds and all, by lower-case name."""
    fields = re.split(rb"\r\n(?![ \t])", data.partition(b"\r\n\r\n")[0])
    return {field.partition(b":")[0].lower(): field for field in fields}


def test_a_text_part_reads_back_as_the_text_and_has_set_contents_headers() -> None:
    # set_text encodes with binascii instead of the standard library's set_content: the
    # part must read back (as a mail client reads it, from the bytes) as the same text,
    # with the same headers, and no line longer than the standard library's.
    rng = random.Random(2026)
    alphabet = string.ascii_letters + "  \t\n.=>-éß€\u200b😀"
    texts = ["Beste collega,\n\nDe patiënt schreef:  \n> =?utf-8?q?x?= = 100%\t\n.\nFrom me\n"]
    texts += ["x" * 200 + "\n", "a \n", "=\n" * 80, "é" * 100, "\n\n", "laatste regel"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400))) for _ in range(300)]
    for text in texts:
        ours, theirs = EmailMessage(policy=POLICY), EmailMessage(policy=POLICY)
        set_text(ours, text)
        theirs.set_content(text, cte="quoted-printable")
        assert ours.items() == theirs.items()
        written = as_bytes(ours)
        read, expected = (
            message_from_bytes(data, policy=policy.default) for data in (written, as_bytes(theirs))
        )
        assert isinstance(read, EmailMessage) and isinstance(expected, EmailMessage)
        assert read.get_content() == expected.get_content(), text
        body = written.partition(b"\r\n\r\n")[2]
        # RFC 2045: 76; binascii may add an encoded space after it, the standard library
        # itself folds at 78. Far from the 998 an SMTP server allows either way.
        assert max(len(line) for line in body.split(b"\r\n")) <= 78
