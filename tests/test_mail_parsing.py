"""Incoming mail reads as a person would see it, and no bytes whatever make parsing raise."""

from __future__ import annotations

import random
import string
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from pathlib import Path

import pytest

from intake.core.addresses import _read_address, read_address, strict_address
from mail.htmltext import html_to_text
from mail.message import Attachment, ParsedMail
from mail.parsing import parse_message
from mail.rawheaders import REGISTRY, decoded_header_line, header_line

CORPUS = Path(__file__).resolve().parent / "mail_corpus"
DESK = "helpdesk@helpdesk.example.org"


def corpus(name: str) -> ParsedMail:
    return parse_message((CORPUS / name).read_bytes())


def message(headers: str, body: str = "Hallo.\n") -> bytes:
    """A raw message from header lines ("Name: value" per line) and a body."""
    return (headers.strip("\n") + "\n\n" + body).replace("\n", "\r\n").encode("utf-8")


# --- the corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    subject: str
    from_address: str | None
    words: tuple[str, ...] = ()  # each must appear in the text
    attachments: tuple[Attachment, ...] = ()
    automatic: tuple[str, ...] = ()  # exactly these reasons
    needs_attention: bool = False
    problems: tuple[str, ...] = ()  # each must appear in one of the problems


EXPECTED: dict[str, Expected] = {
    "plain_patient.eml": Expected(
        "Inloggen lukt niet",
        "jan.devries@example.nl",
        ("niet meer inloggen op het patientenportaal", "Jan de Vries"),
    ),
    "encoded_subject_utf8_q.eml": Expected(
        "Vraag over mijn afspraak: geen bevestiging ontvangen (reëel probleem, café gesloten)",
        "m.bakker@example.com",
        ("Mijn coördinator weet het ook niet.", "Mariëlle"),
    ),
    "encoded_subject_latin1_b.eml": Expected(
        "Ziekenhuisrekening: geïnde eigen bijdrage voor één consult",
        "p.jansen@example.nl",
        ("Graag uitleg over de rekening.",),
    ),
    "latin1_body.eml": Expected(
        "Uitslag bloedonderzoek",
        "r.smit@example.nl",
        ("na één week zou staan. Is dat reëel?",),
    ),
    "windows1252_body.eml": Expected(
        "Factuur parkeren",
        "h.visser@example.nl",
        ("€ 12,50", "“geen geldig ticket”", "‘redelijk’ vinden – toch?"),
    ),
    "unknown_charset.eml": Expected(
        "Videobellen met de polikliniek",
        "k.mulder@example.org",
        ("De camera werkt wel", "coördinator mantelzorg"),
        problems=("unknown charset 'x-unknown-42'",),
    ),
    "html_only.eml": Expected(
        "Herhaalrecept bestellen",
        "anna.kok@example.nl",
        (
            "Beste helpdesk,\n\nIk wil mijn herhaalrecept bestellen via het portaal "
            "(https://portaal.example.nl/recepten),",
            "de knop Bestellen doet niets.\nDit gebeurt op:",
            "- mijn telefoon\n- mijn laptop & tablet",
            "Met vriendelijke groet,\nAnna Kok",
        ),
    ),
    "alternative_with_attachments.eml": Expected(
        "Verwijsbrief en foto van de foutmelding",
        "l.dekker@example.nl",
        ("Hierbij de verwijsbrief en een foto van de foutmelding bij het uploaden.",),
        attachments=(
            Attachment("verwijsbrief.pdf", "application/pdf", 308),
            Attachment("foutmelding röntgen.jpg", "image/jpeg", 227),
        ),
    ),
    "forwarded_rfc822.eml": Expected(
        "Fwd: Uw afspraak is verzet",
        "s.meijer@example.nl",
        ("Welke klopt?",),
        attachments=(Attachment("Uw afspraak is verzet naar 21 märz.eml", "message/rfc822", 380),),
    ),
    "no_message_id.eml": Expected(
        "hulp", "oma.pietersen@example.nl", ("ik weet het wachtwoord niet meer",)
    ),
    "no_from.eml": Expected(
        "Vraag zonder afzender",
        None,
        ("geen From-regel",),
        needs_attention=True,
        problems=("no From header",),
    ),
    "no_date.eml": Expected("Geen datum", "t.bos@example.nl", ("geen Date-regel",)),
    "broken_date.eml": Expected(
        "Kapotte datum",
        "e.vos@example.nl",
        ("onleesbaar",),
        problems=("the Date header cannot be read",),
    ),
    "broken_boundary.eml": Expected(
        "Bijlage met mijn medicatielijst",
        "d.peters@example.nl",
        ("Hierbij mijn medicatielijst voor het intakegesprek.",),
        attachments=(Attachment("medicatie.pdf", "application/pdf", 60),),
        needs_attention=True,
        problems=("the MIME boundary was never found", "the MIME structure could not be read"),
    ),
    "out_of_office.eml": Expected(
        "Afwezig: [HD-000120] Uw bericht aan de helpdesk",
        "a.deboer@example.org",
        ("Ik ben afwezig",),
        automatic=("Auto-Submitted: auto-replied", "Return-Path: <> (empty envelope sender)"),
    ),
    "out_of_office_outlook.eml": Expected(
        "Automatisch antwoord: Uw vraag over het portaal",
        "w.hendriks@example.com",
        ("bellen met de receptie.",),
        automatic=("X-Auto-Response-Suppress header",),
    ),
    "bounce_delivery_status.eml": Expected(
        "Undelivered Mail Returned to Sender",
        "MAILER-DAEMON@mail.helpdesk.example.org",
        ("could not\nbe delivered", "550 5.1.1 User"),
        attachments=(
            Attachment("attachment-1.txt", "message/delivery-status", 220),
            Attachment("attachment-2.txt", "text/rfc822-headers", 221),
        ),
        automatic=(
            "Auto-Submitted: auto-replied",
            "Return-Path: <> (empty envelope sender)",
            "Content-Type: multipart/report (report-type=delivery-status)",
            "a message/delivery-status part",
        ),
    ),
    "mailing_list.eml": Expected(
        "[zorg-ict] Onderhoud zaterdag 23 maart",
        "nieuws@zorgportaal.example.net",
        ("niet bereikbaar",),
        automatic=(
            "Precedence: list",
            "List-Id header (a mailing list)",
            "List-Unsubscribe header (a mailing list)",
            "List-Unsubscribe-Post header (a mailing list)",
        ),
    ),
    "reply_to_acknowledgement.eml": Expected(
        "Re: [HD-000123] Wij hebben uw bericht ontvangen – het is gelukt",
        "jan.devries@example.nl",
        ("het inloggen is vanochtend gelukt", "> Wij hebben uw bericht ontvangen"),
    ),
    "own_acknowledgement.eml": Expected(
        "[HD-000124] Wij hebben uw bericht ontvangen",
        DESK,
        ("onder nummer HD-000124",),
        automatic=("Auto-Submitted: auto-replied",),
    ),
    "ambiguous_from.eml": Expected(
        "Twee afzenders",
        None,
        ("Wie stuurde dit?",),
        needs_attention=True,
        problems=("From cannot be read unambiguously",),
    ),
    "header_injection.eml": Expected(
        "Hallo Bcc: victim@example.com nep tekst",
        None,
        ("Injectiepoging",),
        needs_attention=True,
        problems=("From cannot be read unambiguously",),
    ),
    "raw_8bit_headers.eml": Expected(
        "Vraag over één afspraak", "joost@example.nl", ("één afspraak is dubbel",)
    ),
}


def test_every_corpus_file_has_expectations_and_every_expectation_a_file() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


def test_the_corpus_stays_small_on_disk() -> None:
    assert sum(p.stat().st_size for p in CORPUS.iterdir()) < 200 * 1024


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_mail_reads_as_a_person_would_see_it(name: str) -> None:
    expected = EXPECTED[name]
    raw = (CORPUS / name).read_bytes()
    mail = parse_message(raw)

    assert mail.subject == expected.subject
    assert mail.from_address == expected.from_address
    for words in expected.words:
        assert words in mail.text
    assert mail.attachments == expected.attachments
    assert mail.automatic == expected.automatic
    assert mail.needs_attention is expected.needs_attention
    for problem in expected.problems:
        assert any(problem in p for p in mail.problems), mail.problems
    if not expected.needs_attention and not expected.problems:
        assert mail.problems == ()
    # What every message gets, whatever it is:
    assert mail.size == len(raw)
    assert len(mail.sha256) == len(mail.headers_sha256) == 64
    assert mail.date is None or mail.date.tzinfo is not None
    for line in (mail.subject, mail.from_name, *mail.problems, *mail.automatic):
        assert line == line.strip()
        assert not any(c in line for c in "\r\n\t\x00")


def test_display_names_are_decoded_to_one_line() -> None:
    assert corpus("encoded_subject_utf8_q.eml").from_name == "Mariëlle Bakker"
    assert corpus("encoded_subject_latin1_b.eml").from_name == "Piët Jansen"
    assert corpus("windows1252_body.eml").from_name == "Visser, Henk"
    assert corpus("raw_8bit_headers.eml").from_name == "Joost Brouwer – thuis"
    assert corpus("no_message_id.eml").from_name == ""


def test_a_reply_to_our_acknowledgement_carries_its_message_ids_in_order() -> None:
    mail = corpus("reply_to_acknowledgement.eml")
    assert mail.message_id == "<CAF3x9pQ2-reply@mail.example.nl>"
    assert mail.in_reply_to == ("<ack-HD-000123@helpdesk.example.org>",)
    assert mail.references == (
        "<CAF3x9pQ2-plain@mail.example.nl>",
        "<ack-HD-000123@helpdesk.example.org>",
    )


def test_recipients_are_the_addresses_of_to_and_cc() -> None:
    mail = corpus("encoded_subject_utf8_q.eml")
    assert mail.to == (DESK, "team@thuiszorg.example.net")


def test_the_date_is_aware_and_none_when_missing_or_broken() -> None:
    assert corpus("plain_patient.eml").date == datetime(2024, 3, 5, 20, 14, 7, tzinfo=UTC)
    assert corpus("no_date.eml").date is None
    assert corpus("broken_date.eml").date is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 5 Mar 2024 10:00:00 -0000", datetime(2024, 3, 5, 10, 0, tzinfo=UTC)),
        ("Tue, 5 Mar 2024 10:00:00", datetime(2024, 3, 5, 10, 0, tzinfo=UTC)),
        ("5 Mar 2024 10:00 +0100 (CET)", datetime(2024, 3, 5, 9, 0, tzinfo=UTC)),
        ("Tue, 5 Mar 2024 10:00:00 +9999", None),
        ("gisteren", None),
    ],
)
def test_dates_without_a_zone_count_as_utc_and_impossible_ones_as_none(
    value: str, expected: datetime | None
) -> None:
    mail = parse_message(message(f"From: a@example.nl\nDate: {value}"))
    assert mail.date == expected
    if mail.date is not None:
        assert mail.date.tzinfo is not None


def test_the_return_path_is_the_envelope_sender_empty_for_null_and_none_when_absent() -> None:
    assert corpus("plain_patient.eml").return_path == "jan.devries@example.nl"
    assert corpus("bounce_delivery_status.eml").return_path == ""
    assert corpus("no_date.eml").return_path == "t.bos@example.nl"
    assert parse_message(message("From: a@example.nl")).return_path is None


def test_an_unreadable_return_path_is_kept_as_text_with_a_problem() -> None:
    mail = parse_message(message("Return-Path: <a@b.nl>, <c@d.nl>\nFrom: a@example.nl"))
    assert mail.return_path == "<a@b.nl>, <c@d.nl>"
    assert "the Return-Path cannot be read unambiguously" in mail.problems


# --- message ids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("<abc@example.nl>", "<abc@example.nl>"),
        ("  <abc@example.nl>  ", "<abc@example.nl>"),
        ("<abc @example.nl>", "<abc@example.nl>"),  # obsolete CFWS inside
        ("abc@example.nl", "<abc@example.nl>"),  # brackets left out by a broken mailer
        ("<abc@example.nl> (added by the relay)", "<abc@example.nl>"),
        ("", None),
        ("<>", None),
        ("no id here", None),
    ],
)
def test_message_ids_are_normalised_to_one_bracketed_token(
    header: str, expected: str | None
) -> None:
    mail = parse_message(message(f"From: a@example.nl\nMessage-ID: {header}"))
    assert mail.message_id == expected


def test_in_reply_to_skips_the_prose_old_mailers_put_around_the_id() -> None:
    raw = message(
        "From: a@example.nl\n"
        'In-Reply-To: Your message of "Tue, 5 Mar 2024" <ack-HD-000123@helpdesk.example.org>\n'
        "References: <one@x.nl>\n <two@x.nl> <one@x.nl>\n\t<three@x.nl>"
    )
    mail = parse_message(raw)
    assert mail.in_reply_to == ("<ack-HD-000123@helpdesk.example.org>",)
    assert mail.references == ("<one@x.nl>", "<two@x.nl>", "<three@x.nl>")


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "address", "name"),
    [
        ("Jan de Vries <jan@example.nl>", "jan@example.nl", "Jan de Vries"),
        ("Jan A. de Vries <jan@example.nl>", "jan@example.nl", "Jan A. de Vries"),
        ('"de Vries, Jan" <jan@example.nl>', "jan@example.nl", "de Vries, Jan"),
        ("jan@example.nl (Jan)", "jan@example.nl", ""),
        ("<jan@example.nl>", "jan@example.nl", ""),
        ("jan.de-vries+zorg@mail.example.co.uk", "jan.de-vries+zorg@mail.example.co.uk", ""),
        ("=?utf-8?q?Ren=C3=A9e?= <renee@example.nl>", "renee@example.nl", "Renée"),
        ("Jan\n <jan@example.nl>", "jan@example.nl", "Jan"),  # folded
        ('"alice@example.org" <bob@example.org>', "bob@example.org", "alice@example.org"),
    ],
)
def test_an_unambiguous_from_gives_its_address_and_name(
    header: str, address: str, name: str
) -> None:
    mail = parse_message(message(f"From: {header}"))
    assert (mail.from_address, mail.from_name) == (address, name)
    assert not mail.needs_attention


@pytest.mark.parametrize(
    "header",
    [
        '"Jan" <jan@example.nl>, evil@attacker.example',
        "jan@example.nl <evil@attacker.example>",
        "alice@example.org)<bob@example.org>",
        "alice@example.org <bob@example.org",
        "Jan <jan@example.nl",
        "=?utf-8?q?Jan=0D=0ABcc:_evil@attacker.example?= <jan@example.nl>",
        "=?utf-8?q?Jan=0A?= <jan@example.nl>",
        "=?utf-8?q?jan@example.nl?=",
        "Team: jan@example.nl;",
        "Undisclosed recipients:;",
        "jan",
        "jan@localhost",
        "<>",
        "",
        '"jan de vries"@example.nl',
        "jan@[192.0.2.1]",
        "jan..devries@example.nl",
        "jan@-example.nl",
        "x" * 65 + "@example.nl",
        "Jan <jan@example.nl> <piet@example.nl>",
    ],
)
def test_an_ambiguous_or_malformed_from_gives_no_address_and_needs_attention(header: str) -> None:
    mail = parse_message(message(f"From: {header}"))
    assert mail.from_address is None
    assert mail.from_name == ""
    assert mail.needs_attention
    assert any(p.startswith(("From cannot be read", "no From")) for p in mail.problems)


def test_two_from_headers_are_ambiguous() -> None:
    mail = parse_message(message("From: jan@example.nl\nFrom: evil@attacker.example"))
    assert mail.from_address is None
    assert "several From headers: the sender is ambiguous" in mail.problems


def test_strict_address_reads_one_plain_address_or_nothing() -> None:
    assert strict_address("Jan <jan@example.nl>") == "jan@example.nl"
    assert strict_address("jan@example.nl") == "jan@example.nl"
    assert strict_address("jan@example.nl\r\nBcc: evil@attacker.example") is None
    assert strict_address("jan@example.nl, evil@attacker.example") is None
    assert strict_address("") is None


def test_a_bare_address_is_read_as_the_two_parses_read_it() -> None:
    # `read_address` skips the header grammar for a bare plain address (or one in angle
    # brackets, after a name of plain words): what it gives must be what the two parses
    # give, for the tricky ones and for many random ones.
    alphabet = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-.@ <>\"()"
    rng = random.Random(2026)
    values = [
        "Jan@Example.NL",
        "a..b@example.nl",
        "a@b",
        "a@-b.nl",
        "a@b.nl.",
        "=?utf-8?q?x?=@example.nl",
        "é@example.nl",
        "a@ex_ample.nl",
        "a" * 64 + "@example.nl",
        "a" * 65 + "@example.nl",
        " jan@example.nl",
    ]
    values += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16)))
        + rng.choice(["@example.nl", "@a.b", "@x.co.uk", ""])
        for _ in range(3000)
    ]
    values += [f"<{value}>" for value in values]  # as in a Return-Path
    values += ["<>", "<<jan@example.nl>>", "< jan@example.nl>", "<jan@example.nl"]
    # After a display name: plain words, and names with what makes them not plain.
    names = ["Jan de Vries", "O'Brien", "Jan  de Vries", " Jan", "Jan ", "Jan A. de Vries"]
    names += ["=?utf-8?q?Jan?=", '"Jan"', "Jan (thuis)", "<Jan>", "Jan, Piet", "x" * 2100]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(3000)]
    addresses = ["jan@example.nl", "a..b@example.nl", "a@b", "=?x?=@example.nl", ""]
    values += [f"{name} <{rng.choice(addresses)}>" for name in names]
    values += [f"{name}<jan@example.nl>" for name in names[:6]]
    for value in values:
        assert read_address(value)[:2] == _read_address(value)[:2], value


def test_headers_made_once_per_class_are_the_headers_the_standard_registry_makes() -> None:
    # mail.rawheaders.REGISTRY keeps each header's class; every header it makes must be the
    # one HeaderRegistry makes: the same text, kind, parts and defects.
    standard = HeaderRegistry()
    values = [
        ("Subject", "=?utf-8?q?Vraag_over_mijn_afspraak_=E2=82=AC?= en meer"),
        ("From", '"Jansen, Jan" <jan@example.nl>, piet@example.nl'),
        ("To", "undisclosed-recipients:;"),
        ("Reply-To", "<<weird>>@@example"),
        ("Content-Type", 'multipart/mixed; boundary="=_a"; charset=utf-8'),
        ("Content-Disposition", "attachment; filename*=utf-8''sc%C3%A9n.pdf"),
        ("Content-Transfer-Encoding", "Base64"),
        ("Date", "Mon, 23 Nov 2026 09:00:00 +0100"),
        ("Date", "gisteren"),
        ("Message-ID", "<a1@mail.example.nl>"),
        ("MIME-Version", "1.0"),
        ("X-Mailer", "Outlook"),
    ]
    for name, value in values:
        for _ in range(2):  # the second time from the kept class
            ours, theirs = REGISTRY(name, value), standard(name, value)
            assert str(ours) == str(theirs), (name, value)
            assert type(ours).__mro__[1:] == type(theirs).__mro__[1:], (name, value)
            assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]
            for part in ("addresses", "params", "datetime", "content_type", "cte", "max_count"):
                assert getattr(ours, part, None) == getattr(theirs, part, None), (name, part)
    assert REGISTRY["subject"] is REGISTRY["Subject"]


# --- header injection ---------------------------------------------------------------------


def test_encoded_line_breaks_in_the_subject_come_out_as_one_clean_line() -> None:
    raw = message(
        "From: jan@example.nl\n"
        "Subject: =?utf-8?q?Hallo=0D=0ABcc:_evil@attacker.example=0D=0A=0D=0Abody?=\n"
        " =?utf-8?b?IHRhYgl0YWIgbnVsAG51bA==?="  # " tab\ttab nul\x00nul"
    )
    assert parse_message(raw).subject == "Hallo Bcc: evil@attacker.example body tab tab nulnul"


def test_bidi_overrides_are_removed_from_the_subject() -> None:
    raw = message("From: jan@example.nl\nSubject: =?utf-8?q?factuur_=E2=80=AEfdp.exe?=")
    assert parse_message(raw).subject == "factuur fdp.exe"


def test_an_encoded_line_break_in_the_display_name_leaves_no_address() -> None:
    mail = corpus("header_injection.eml")
    assert mail.from_address is None
    assert mail.from_name == ""


# --- body text ------------------------------------------------------------------------------


def test_an_empty_plain_part_beside_html_gives_the_html_text() -> None:
    raw = message(
        'From: a@example.nl\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b"',
        "--b\nContent-Type: text/plain\n\n\n--b\nContent-Type: text/html\n\n"
        "<p>Echte tekst</p>\n--b--\n",
    )
    mail = parse_message(raw)
    assert mail.text == "Echte tekst"
    assert mail.attachments == ()


def test_an_html_part_without_charset_uses_its_meta_charset() -> None:
    body = '<html><head><meta charset="windows-1252"></head><p>\x80 5</p></html>'
    raw = message("From: a@example.nl\nContent-Type: text/html", "") + body.encode("latin-1")
    assert parse_message(raw).text == "€ 5"


@pytest.mark.parametrize("charset", ["x-unknown-42", "base64", "zlib", "rot13", "utf-8\x00"])
def test_a_charset_that_is_no_text_encoding_is_decoded_anyway(charset: str) -> None:
    raw = message(f'From: a@example.nl\nContent-Type: text/plain; charset="{charset}"', "")
    mail = parse_message(raw + "coördinator".encode())
    assert mail.text == "coördinator"
    assert not mail.needs_attention


def test_nul_and_control_characters_are_removed_from_the_text() -> None:
    raw = message("From: a@example.nl", "") + b"a\x00b\x07c\td\r\ne\n\n\n\nf"
    assert parse_message(raw).text == "abc\td\ne\n\nf"


def test_inline_text_parts_around_an_image_all_reach_the_text() -> None:
    raw = message(
        'From: a@example.nl\nContent-Type: multipart/mixed; boundary="b"',
        "--b\nContent-Type: text/plain\n\nVoor de foto.\n"
        '--b\nContent-Type: image/png\nContent-Disposition: inline; filename="scherm.png"\n'
        "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
        "--b\nContent-Type: text/plain\n\nNa de foto.\n--b--\n",
    )
    mail = parse_message(raw)
    assert mail.text == "Voor de foto.\n\nNa de foto."
    assert mail.attachments == (Attachment("scherm.png", "image/png", 8),)


def test_a_text_attachment_is_an_attachment_not_the_body() -> None:
    raw = message(
        'From: a@example.nl\nContent-Type: multipart/mixed; boundary="b"',
        "--b\nContent-Type: text/plain\n\nZie bijlage.\n"
        '--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename="log.txt"\n\n'
        "regel 1\n--b--\n",
    )
    mail = parse_message(raw)
    assert mail.text == "Zie bijlage."
    assert mail.attachments == (Attachment("log.txt", "text/plain", len("regel 1")),)


def test_a_structure_with_no_boundary_at_all_still_shows_its_text() -> None:
    raw = message("From: a@example.nl\nContent-Type: multipart/mixed", "Alleen tekst.\n")
    mail = parse_message(raw)
    assert "Alleen tekst." in mail.text
    assert mail.needs_attention


def test_a_part_with_no_readable_content_needs_attention() -> None:
    raw = message(
        'From: a@example.nl\nContent-Type: multipart/mixed; boundary="b"',
        "--b\nContent-Type: multipart/alternative\n\nx\n--b--\n",
    )
    mail = parse_message(raw)
    assert mail.needs_attention


# --- attachments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\Users\\\\jan\\\\uitslag.pdf"', "uitslag.pdf"),
        ('attachment; filename="=?utf-8?b?w6lsw6lu?=.pdf"', "élén.pdf"),
        ("attachment; filename*=iso-8859-1''caf%E9.pdf", "café.pdf"),
        ('attachment; filename="a\tb.pdf"', "a b.pdf"),
        ('attachment; filename=".."', "attachment-1.pdf"),
        ("attachment", "attachment-1.pdf"),
    ],
)
def test_attachment_names_are_decoded_one_line_names_without_directories(
    disposition: str, filename: str
) -> None:
    raw = message(
        'From: a@example.nl\nContent-Type: multipart/mixed; boundary="b"',
        "--b\nContent-Type: text/plain\n\nZie bijlage.\n"
        f"--b\nContent-Type: application/pdf\nContent-Disposition: {disposition}\n"
        "Content-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n",
    )
    assert parse_message(raw).attachments == (Attachment(filename, "application/pdf", 5),)


def test_attachment_sizes_are_of_the_decoded_payload() -> None:
    data = bytes(range(256)) * 40
    outer = EmailMessage()
    outer["From"] = "a@example.nl"
    outer.set_content("Drie bijlagen.")
    outer.add_attachment(data, maintype="application", subtype="octet-stream", filename="a.bin")
    outer.add_attachment(data, maintype="application", subtype="octet-stream", filename="b.bin",
                         cte="quoted-printable")  # fmt: skip
    outer.add_attachment("één\n" * 100, subtype="plain", filename="c.txt", cte="8bit")
    mail = parse_message(outer.as_bytes(policy=policy.SMTP))
    assert [(a.filename, a.size) for a in mail.attachments] == [
        ("a.bin", len(data)),
        ("b.bin", len(data)),
        ("c.txt", len("één\r\n".encode()) * 100),  # 8bit text keeps the CRLF it arrived with
    ]


# --- hashes ---------------------------------------------------------------------------------


def test_hashes_are_stable_across_a_refetch_of_the_same_bytes() -> None:
    raw = (CORPUS / "no_message_id.eml").read_bytes()
    first, again = parse_message(raw), parse_message(bytes(raw))
    assert (first.sha256, first.headers_sha256) == (again.sha256, again.headers_sha256)


def test_the_headers_hash_ignores_trace_headers_and_body_but_not_the_subject() -> None:
    base = "From: a@example.nl\nTo: desk@x.nl\nDate: Tue, 5 Mar 2024 10:00:00 +0100\n"
    one = parse_message(message(base + "Subject: Vraag", "tekst"))
    relayed = parse_message(message("Received: from mx2\n" + base + "Subject: Vraag", "tekst\n"))
    other = parse_message(message(base + "Subject: Andere vraag", "tekst"))
    assert one.headers_sha256 == relayed.headers_sha256
    assert one.sha256 != relayed.sha256
    assert one.headers_sha256 != other.headers_sha256


# --- never raises ---------------------------------------------------------------------------


def _garbage() -> list[bytes]:
    rng = random.Random(20240305)
    blobs = [
        b"",
        b"\r\n",
        b"\x00" * 1000,
        bytes(range(256)) * 8,
        b"From: \xff\xfe\r\n\r\n\xff",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
        b"Content-Type: text/plain; charset=\x00\r\n\r\n\xe9",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
        b"Content-Transfer-Encoding: base64\r\nContent-Type: application/pdf\r\n\r\n=====",
        b":\r\n:\r\n: :\r\n\r\n",
        b"From: " + b"(" * 5000 + b"\r\n\r\n",
        b"Subject: " + b"=?utf-8?q?a?= " * 20000 + b"\r\n\r\n",
    ]
    blobs += [rng.randbytes(rng.randrange(1, 4000)) for _ in range(20)]
    # Every corpus file cut short and with bytes flipped, as a broken transfer leaves them.
    for path in sorted(CORPUS.glob("*.eml")):
        raw = bytearray(path.read_bytes())
        blobs.append(bytes(raw[: rng.randrange(len(raw))]))
        for _ in range(5):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        blobs.append(bytes(raw))
    return blobs


@pytest.mark.parametrize("raw", _garbage(), ids=lambda raw: f"{len(raw)}-bytes")
def test_parsing_never_raises_whatever_the_bytes(raw: bytes) -> None:
    mail = parse_message(raw)
    assert mail.size == len(raw)
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert mail.from_address is None or strict_address(mail.from_address) == mail.from_address


def test_an_empty_message_needs_attention() -> None:
    mail = parse_message(b"")
    assert mail.from_address is None
    assert mail.needs_attention
    assert mail.text == ""


def test_mime_nested_past_the_parsers_recursion_still_gives_the_headers() -> None:
    nested = b"".join(
        b"--%d\nContent-Type: multipart/mixed; boundary=%d\n\n" % (i, i + 1) for i in range(3000)
    )
    raw = b"From: jan@example.nl\nSubject: diep\nContent-Type: multipart/mixed; boundary=0\n\n"
    mail = parse_message(raw + nested)
    assert (mail.from_address, mail.subject) == ("jan@example.nl", "diep")
    assert mail.needs_attention
    assert mail.problems[0].startswith("the message could not be parsed")


# --- a 20 MB attachment ---------------------------------------------------------------------

BIG = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def big_message() -> bytes:
    outer = EmailMessage()
    outer["From"] = "Jan de Vries <jan.devries@example.nl>"
    outer["To"] = DESK
    outer["Subject"] = "Scan van mijn dossier"
    outer["Message-ID"] = "<big-scan@example.nl>"
    outer.set_content("Zie de bijlage.")
    data = bytes(range(256)) * (BIG // 256)
    outer.add_attachment(data, maintype="application", subtype="pdf", filename="dossier.pdf")
    return outer.as_bytes(policy=policy.SMTP)


def test_a_20_mb_attachment_is_listed_with_its_size(big_message: bytes) -> None:
    mail = parse_message(big_message)
    assert mail.text == "Zie de bijlage."
    assert mail.attachments == (Attachment("dossier.pdf", "application/pdf", BIG),)
    assert not mail.needs_attention


def test_parsing_a_20_mb_attachment_stays_within_four_times_its_size(big_message: bytes) -> None:
    tracemalloc.start()
    try:
        parse_message(big_message)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(big_message), f"peak {peak / len(big_message):.1f}x the message"


# --- HTML to text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>een</p><p>twee</p>", "een\n\ntwee"),
        ("een<br>twee<br/><br>drie", "een\ntwee\n\ndrie"),
        ("<div>een</div><div>twee</div>", "een\ntwee"),
        ("<ul><li>een</li><li>twee</li></ul>", "- een\n- twee"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ('<a href="https://x.nl/a">hier</a>', "hier (https://x.nl/a)"),
        ('<a href="https://x.nl/">https://x.nl</a>', "https://x.nl"),
        ('<a href="mailto:jan@x.nl">jan@x.nl</a>', "jan@x.nl"),
        ('<a href="#top">boven</a>', "boven"),
        ("<head><title>t</title></head><style>p{}</style><script>x()</script>ok", "ok"),
        ('<span style="display: none">verborgen</span>zichtbaar', "zichtbaar"),
        ("caf&eacute; &amp; &#8364;&nbsp;5 &lt;b&gt;", "café & € 5 <b>"),
        ("a\n\n\n   b", "a b"),
        ("<p>a</p><br><br><br><br><p>b</p>", "a\n\nb"),
        ("<pre>  twee\n    spaties</pre>", "  twee\n    spaties"),
        ("<p>niet gesloten<div><b>vet", "niet gesloten\nvet"),
        ("<img alt='logo'>tekst", "[logo]tekst"),
        ("", ""),
    ],
)
def test_html_becomes_readable_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_dropped_elements_nest_and_unbalanced_end_tags_do_not_leak() -> None:
    html = "<style><p>x</p></style><div hidden><div>a</div></span>b</div>zichtbaar"
    assert html_to_text(html) == "zichtbaar"


def test_a_subject_without_encoded_words_is_read_as_the_header_grammar_reads_it() -> None:
    # decoded_header_line skips the header grammar when there is nothing to decode; the
    # line it gives must be the one the grammar gives, for whitespace, controls, bidi
    # marks, other scripts and undecodable bytes (surrogates) alike.
    rng = random.Random(2026)
    alphabet = string.printable + 'éß€\u00a0\u200b\u202e\u2028\x00\x7f\x85\udc80\ud800()<>"\\'
    values = ["Inloggen lukt niet", "  Re:\r\n\tvraag ", "a\udce9b", "=?", "Vraag =?x"]
    values += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5000)
    ]
    for value in values:
        try:
            expected = header_line(str(REGISTRY("subject", value)))
        except Exception:
            expected = header_line(value)
        assert decoded_header_line(value) == expected, value


def _content_type(rng: random.Random) -> str:
    """A Content-Type value as mailers write them (half of them), and as they get it wrong."""
    tidy = rng.random() < 0.5

    def token() -> str:
        return "".join(
            rng.choice(string.ascii_letters + string.digits + "-.+_=")
            for _ in range(rng.randint(1, 12))
        )

    def gap() -> str:
        return rng.choice(["", " ", " ", "  ", "\t", "\r\n\t", "\r\n "])

    kinds = ["text/plain", "TEXT/HTML", "multipart/mixed", "multipart/alternative"]
    kind = rng.choice(
        [*kinds, "application/pdf", "message/rfc822", "image/x-png", token() + "/" + token()]
    )
    params = []
    for _ in range(rng.randint(0, 3)):
        name = rng.choice(["charset", "boundary", "name", "format", "Charset", token()])
        inside = string.ascii_letters + string.digits + " ()<>@,;:/[]?=.'+_-"
        if rng.random() < 0.3:
            value = token()
        elif tidy:
            value = '"' + "".join(rng.choice(inside) for _ in range(rng.randint(1, 30))) + '"'
        else:
            inside += '\\"é=?'
            value = '"' + "".join(rng.choice(inside) for _ in range(rng.randint(0, 30))) + '"'
        if rng.random() < 0.05 and not tidy:
            name += "*"  # RFC 2231
        if tidy:
            params.append(";" + rng.choice([" ", "\t", "\r\n\t", "\r\n "]) + f"{name}={value}")
        else:
            params.append(f"{gap()};{gap()}{name}={value}")
    tail = "" if tidy else rng.choice(["", "", ";", " ", " (comment)", "; x=(y)"])
    return kind + "".join(params) + tail


def test_a_content_type_reads_as_the_standard_header_object_reads_it() -> None:
    """A plain Content-Type is read without the header grammar: what every reading of it
    gives (its text, type, parameters, boundary, charset, the header's own attributes) is
    what the standard library gives, for plain values and for every other kind."""
    from email import message_from_bytes as standard_message

    from mail.mimeparts import _ContentTypeText, message_from_bytes

    rng = random.Random(20261202)
    plain = 0
    for _ in range(4000):
        value = _content_type(rng)
        raw = f"From: a@example.nl\r\nContent-Type: {value}\r\n\r\nHallo.\r\n".encode()
        ours, theirs = message_from_bytes(raw), standard_message(raw, policy=policy.default)
        header, expected = ours["Content-Type"], theirs["Content-Type"]
        plain += isinstance(header, _ContentTypeText)
        assert str(header) == str(expected), value
        assert ours.get_content_type() == theirs.get_content_type(), value
        assert ours.get_params() == theirs.get_params(), value
        assert ours.get_boundary() == theirs.get_boundary(), value
        assert ours.get_content_charset() == theirs.get_content_charset(), value
        assert header.content_type == expected.content_type, value
        assert header.params == expected.params, value
        assert [type(d) for d in header.defects] == [type(d) for d in expected.defects], value
    assert 1000 < plain < 3500  # both ways were taken, often
