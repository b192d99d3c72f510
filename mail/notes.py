"""The bodies and subjects of the desk's own mail, laid out from the core's texts.

Every sentence comes from `intake.core.texts` (so a desk's `[messages.xx]` overrides it);
this module only arranges them: paragraphs, the label table of a note, the quoted text,
the subject with its reference. The MIME message around them is `mail.compose`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime

from babel.dates import format_date

from intake.core.references import without_reference
from intake.core.sizes import file_size
from intake.core.texts import render
from mail.headertext import header_text
from mail.message import ParsedMail
from routing.desk import Desk
from routing.hours import require_aware
from routing.languages import LOCALES
from routing.wording import describe_hours, describe_moment

_MAX_QUOTED = 20_000  # characters of the patient's text quoted in a forward


def subject_text(desk: Desk, lang: str, subject: str, reference: str) -> str:
    """The subject, cleaned, without a "[HD-000123]" it already carries (a follow-up)."""
    cleaned = without_reference(header_text(subject, 1000), reference)
    return header_text(cleaned) or render(desk, "no_subject", lang)


def forward_subject(desk: Desk, lang: str, subject: str, reference: str) -> str:
    return f"[{reference}] {subject_text(desk, lang, subject, reference)}"


def acknowledgement_subject(desk: Desk, lang: str, subject: str, reference: str) -> str:
    cleaned = subject_text(desk, lang, subject, reference)
    said = render(desk, "ack_subject", lang, subject=cleaned, reference=reference)
    return f"[{reference}] {header_text(said, 1000)}"


def acknowledgement_text(
    desk: Desk, lang: str, reference: str, now: datetime, next_opening: datetime | None
) -> str:
    """Plain, warm and short; nothing the patient wrote is repeated."""
    values = {"reference": reference, "opening_hours": describe_hours(desk, lang)}
    if next_opening is not None:
        require_aware(next_opening)
        values["next_opening"] = describe_moment(next_opening.astimezone(desk.tz), now, lang)
    keys = [
        "ack_greeting",
        "ack_thanks",
        "ack_reference",
        "ack_next" if next_opening is not None else "ack_no_next",
        "ack_hours",
    ]
    if desk.website:
        keys.append("ack_website")
    keys += ["ack_medical", "ack_regards", "ack_automatic"]
    return "\n\n".join(render(desk, key, lang, **values) for key in keys) + "\n"


def forward_note(
    desk: Desk,
    lang: str,
    reference: str,
    mail: ParsedMail,
    received: datetime,
    mailbox: str | None,
) -> str:
    def say(key: str) -> str:
        return render(desk, key, lang, reference=reference)

    if mail.from_address:
        name = header_text(mail.from_name, 100)
        sender = f"{name} <{mail.from_address}>" if name else mail.from_address
    else:
        sender = f"{say('unknown')} ({say('forward_no_address')})"
    attachments = [
        f"{header_text(a.filename, 200)} ({file_size(a.size, lang)})" for a in mail.attachments
    ]
    rows = [
        (say("label_reference"), reference),
        (say("label_organisation"), _organisation(desk, mail, mailbox) or say("unknown")),
        (say("label_from"), sender),
        (say("label_received"), when(received.astimezone(desk.tz), lang)),
        (say("label_subject"), header_text(mail.subject) or say("no_subject")),
        (say("label_attachments"), ", ".join(attachments) or say("no_attachments")),
    ]
    paragraphs = [say("forward_intro"), table(rows)]
    problems = [header_text(p, 300) for p in mail.problems]
    if mail.needs_attention or not mail.from_address:
        paragraphs.append("\n".join([say("forward_attention"), *(f"- {p}" for p in problems)]))
    elif problems:
        paragraphs.append("\n".join([say("forward_remarks"), *(f"- {p}" for p in problems)]))
    hint = "forward_reply_hint" if mail.from_address else "forward_no_reply_hint"
    paragraphs += [say(hint), say("forward_original")]
    body = mail.text.strip()
    if len(body) > _MAX_QUOTED:
        body = body[:_MAX_QUOTED].rstrip() + "\n" + say("forward_cut")
    quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
    paragraphs += [say("forward_quoted"), quoted or f"> {say('forward_no_text')}"]
    return "\n\n".join(paragraphs) + "\n"


def voicemail_caller(desk: Desk, lang: str, caller: str) -> str:
    return header_text(caller, 60) or render(desk, "unknown_number", lang)


def voicemail_subject(desk: Desk, lang: str, reference: str, caller: str, organisation: str) -> str:
    said = render(
        desk,
        "voicemail_subject",
        lang,
        reference=reference,
        caller=caller,
        organisation=organisation,
    )
    return header_text(said)


def voicemail_text(
    desk: Desk,
    lang: str,
    reference: str,
    caller: str,
    organisation: str,
    started_at: datetime,
    seconds: int | None,
) -> str:
    values = {"reference": reference, "caller": caller, "organisation": organisation}

    def say(key: str) -> str:
        return render(desk, key, lang, **values)

    rows = [
        (say("label_reference"), reference),
        (say("label_organisation"), organisation),
        (say("label_caller"), caller),
        (say("label_when"), when(started_at.astimezone(desk.tz), lang)),
        (say("label_length"), _duration(seconds, lang) or say("unknown")),
    ]
    body = "\n\n".join([say("voicemail_intro"), table(rows), say("voicemail_listen")])
    return body + "\n"


def _organisation(desk: Desk, mail: ParsedMail, mailbox: str | None) -> str:
    candidates = [mailbox] if mailbox else list(mail.to)
    for address in candidates:
        found = desk.mailbox_for(address)
        if found is not None:
            return f"{found.organisation} ({found.address})"
    return header_text(mailbox, 100) if mailbox else ""


def table(rows: Sequence[tuple[str, str]]) -> str:
    """Label: value lines, the values lined up."""
    width = max(len(label) for label, _value in rows) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in rows)


def when(moment: datetime, lang: str) -> str:
    """ "maandag 23 november 2026 om 10.15 uur"; "Monday 23 November 2026 at 10:15"."""
    day = _day(moment.date(), lang)
    if lang == "nl":
        return f"{day} om {moment.hour}.{moment.minute:02d} uur"
    return f"{day} at {moment.hour}:{moment.minute:02d}"


@functools.lru_cache(maxsize=64)  # babel took a sixth of writing a forward's note
def _day(day: date, lang: str) -> str:
    return str(format_date(day, format="EEEE d MMMM y", locale=LOCALES[lang]))


def _duration(seconds: int | None, lang: str) -> str:
    """ "1 minuut en 5 seconden"; "" when the length is not known."""
    if seconds is None or seconds < 0:
        return ""
    minutes, rest = divmod(seconds, 60)
    if lang == "nl":
        parts = [f"{minutes} {'minuut' if minutes == 1 else 'minuten'}"] if minutes else []
        if rest or not minutes:
            parts.append(f"{rest} {'seconde' if rest == 1 else 'seconden'}")
        return " en ".join(parts)
    parts = [f"{minutes} {'minute' if minutes == 1 else 'minutes'}"] if minutes else []
    if rest or not minutes:
        parts.append(f"{rest} {'second' if rest == 1 else 'seconds'}")
    return " ".join(parts)
