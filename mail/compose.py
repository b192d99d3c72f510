"""The messages the desk sends: forwards to colleagues, acknowledgements, voicemail notices.

Standard library `email` only. Everything that came from a patient (a subject, a display
name, a file name) goes through `header_text` before it reaches a header: Python 3.11.7's
`email` package turns an encoded-word in a header *value* back into a real line break when
it writes the message, so those are defused here, not only CR and LF.

Every message is built with `POLICY` (SMTP line ends; headers we fold ourselves are left
as they are) and written by `as_bytes(message)`: `message.as_bytes(policy=POLICY)` without
the generator's extra copies of a large original. Message-IDs go in as we wrote them, so a
long patient Message-ID in `References` is never turned into an encoded-word (which would
break threading in the colleague's mail client).

The original message is attached byte for byte as a message/rfc822 part, so nothing the
patient sent is lost or re-encoded; only when it cannot travel that way (NUL bytes, lines
longer than SMTP allows, not a message at all) it goes as a base64 "original.eml".
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message

from babel.dates import format_date

from intake.core.addresses import strict_address
from intake.core.references import is_reference, without_reference
from intake.core.sizes import file_size
from mail.headertext import header_text
from mail.message import ParsedMail
from routing.desk import Desk, Staff
from routing.hours import require_aware
from routing.languages import LOCALES, base_language
from routing.wording import describe_hours, describe_moment

__all__ = [
    "POLICY",
    "acknowledgement",
    "as_bytes",
    "forward",
    "header_text",
    "new_message_id",
    "voicemail_notice",
]

# policy.SMTP (CRLF), and headers set raw (the Message-IDs) are never refolded.
POLICY = policy.SMTP.clone(refold_source="none")

# A msg-id as we accept it in a header we write: printable ASCII, no angle brackets inside.
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,900}@[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}")
_MAX_REFERENCES = 20  # RFC 5322 allows trimming; the first and the last matter most
_MAX_QUOTED = 20_000  # characters of the patient's text quoted in a forward
# RFC 5322: at most 998 octets a line. Longer lines cannot travel as 7bit/8bit.
_MAX_LINE = 998
_HEADER_LINE = re.compile(rb"[!-9;-~]{1,100}:")


def as_bytes(message: EmailMessage) -> bytes:
    """`message.as_bytes(policy=POLICY)`, with an attached original copied once, not thrice.

    The generator copies every part into a buffer of its own and then into its parent's, so
    a 20 MB original would be held three times over; here it is left out of the generated
    text and joined in at the end.
    """
    originals: list[tuple[Message, _RawText]] = []
    for found in message.walk():
        payload = found.get_payload()
        if isinstance(payload, _RawText):
            originals.append((found, payload))
    if not originals:
        return message.as_bytes(policy=POLICY)
    markers = [f"=_original_{secrets.token_hex(16)}_{n}" for n in range(len(originals))]
    for (original, _payload), marker in zip(originals, markers, strict=True):
        original.set_payload(marker)
    try:
        data = message.as_bytes(policy=POLICY)
    finally:
        for original, payload in originals:
            original.set_payload(payload)
    pieces: list[bytes] = []
    for marker, (_part, payload) in zip(markers, originals, strict=True):
        before, separator, data = data.partition(marker.encode("ascii"))
        if not separator:
            raise ValueError("an attached original went missing while writing the message")
        pieces += [before, payload.raw]
    return b"".join([*pieces, data])


def new_message_id(kind: str, reference: str, domain: str) -> str:
    """A fresh Message-ID: "<kind.HD-000123.{random hex}@domain>"; stored with the row."""
    kind_part = re.sub(r"[^A-Za-z0-9-]+", "-", kind).strip("-") or "mail"
    if not is_reference(reference):
        raise ValueError(f"not a reference: {reference!r}")
    domain = domain.strip().rstrip(".")
    if not _DOMAIN.fullmatch(domain) or len(domain) > 253:
        raise ValueError(f"not a domain name: {domain!r}")
    return f"<{kind_part}.{reference}.{secrets.token_hex(12)}@{domain}>"


def forward(
    *,
    desk: Desk,
    reference: str,
    mail: ParsedMail,
    raw: bytes,
    colleague: Staff,
    sender: str,
    message_id: str,
    at: datetime,
    received_at: datetime | None = None,
    mailbox: str | None = None,
) -> EmailMessage:
    """The patient's mail, to `colleague`: a short note, the text quoted, the original whole.

    `at` is when we forward (the Date header); `received_at` when the mail arrived (the
    note says it; default `at`). `mailbox` is the address it came in at (default: the first
    of the mail's To addresses that is one of the desk's mailboxes).
    """
    lang = base_language(desk.language)
    received = received_at or at
    require_aware(at)
    require_aware(received)
    if not colleague.email:
        raise ValueError(f"colleague {colleague.id!r} has no email address")
    name, address = header_text(colleague.name, 100), _addr_spec(colleague.email)
    to = Address(display_name=name, addr_spec=address)
    message = _new_message(
        desk=desk,
        sender=sender,
        to=[to],
        subject=_subject(reference, mail.subject, lang),
        message_id=message_id,
        at=at,
    )
    if mail.from_address:
        _set_address(message, "Reply-To", mail.from_name, mail.from_address)
    _set_thread(message, mail, with_references=False)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    note = _forward_note(desk, lang, reference, mail, received, mailbox)
    message.set_content(note, cte="quoted-printable")
    message.make_mixed()
    message.attach(_original_part(raw, reference))
    # Our own boundary: otherwise the generator joins the whole message to pick one.
    message.set_boundary(f"=_helpdesk_{secrets.token_hex(16)}")
    return message


def acknowledgement(
    *,
    desk: Desk,
    reference: str,
    mail: ParsedMail,
    to: str,
    sender: str,
    message_id: str,
    now: datetime,
    next_opening: datetime | None,
) -> EmailMessage:
    """The automatic reply to a patient who wrote while the desk is closed.

    Plain, warm and short. Nothing the patient wrote is repeated except the subject: an
    auto-reply that echoes a display name or body can be abused to send spam in our name.
    """
    require_aware(now)
    lang = base_language(desk.language)
    subject = _TEXT[lang]["received"] + _subject_text(mail.subject, reference, lang)
    message = _new_message(
        desk=desk,
        sender=sender,
        to=[Address(addr_spec=_addr_spec(to))],
        subject=f"[{reference}] {subject}",
        message_id=message_id,
        at=now,
    )
    _set_thread(message, mail, with_references=True)
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(
        _acknowledgement_text(desk, lang, reference, now, next_opening), cte="quoted-printable"
    )
    return message


def voicemail_notice(
    *,
    desk: Desk,
    reference: str,
    caller: str,
    organisation: str,
    started_at: datetime,
    seconds: int | None,
    recipients: Sequence[str],
    sender: str,
    message_id: str,
) -> EmailMessage:
    """Tells colleagues a voicemail is waiting; they listen to it in the dashboard."""
    require_aware(started_at)
    if not recipients:
        raise ValueError("a voicemail notice needs at least one recipient")
    lang = base_language(desk.language)
    text = _TEXT[lang]
    who = header_text(caller, 60) or text["unknown_number"]
    where = header_text(organisation, 100) or desk.name
    message = _new_message(
        desk=desk,
        sender=sender,
        to=[Address(addr_spec=_addr_spec(r)) for r in dict.fromkeys(recipients)],
        subject=header_text(text["voicemail_subject"].format(ref=reference, who=who, org=where)),
        message_id=message_id,
        at=started_at,
    )
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    rows = [
        (text["label_reference"], reference),
        (text["label_organisation"], where),
        (text["label_caller"], who),
        (text["label_when"], _when(started_at.astimezone(desk.tz), lang)),
        (text["label_length"], _duration(seconds, lang)),
    ]
    body = "\n\n".join([text["voicemail_intro"], _table(rows), text["voicemail_listen"]])
    message.set_content(body + "\n", cte="quoted-printable")
    return message


# --- building blocks --------------------------------------------------------------------


def _new_message(
    *,
    desk: Desk,
    sender: str,
    to: Sequence[Address],
    subject: str,
    message_id: str,
    at: datetime,
) -> EmailMessage:
    require_aware(at)
    if not _MSG_ID.fullmatch(message_id):
        raise ValueError(f"not a Message-ID we can send: {message_id!r}")
    message = EmailMessage(policy=POLICY)
    desk_name = header_text(desk.name, 100)
    message["From"] = Address(display_name=desk_name, addr_spec=_addr_spec(sender))
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = at.astimezone(desk.tz)
    message.set_raw("Message-ID", message_id)
    return message


def _addr_spec(value: str) -> str:
    """The plain address in `value` ("a@b.nl" or "Name <a@b.nl>"); ValueError otherwise."""
    address = strict_address(value)
    if address is None:
        raise ValueError(f"not an address we can send to or from: {value!r}")
    return address


def _set_address(message: EmailMessage, name: str, display_name: str, addr_spec: str) -> None:
    """An address header with a cleaned display name, checked to read back as `addr_spec`."""
    address = _addr_spec(addr_spec)
    message[name] = Address(display_name=header_text(display_name, 100), addr_spec=address)
    read: tuple[Address, ...] = tuple(getattr(message[name], "addresses", ()))
    if len(read) != 1 or read[0].addr_spec != address:  # the name changed how it parses
        del message[name]
        message[name] = Address(addr_spec=address)


def _set_thread(message: EmailMessage, mail: ParsedMail, *, with_references: bool) -> None:
    """In-Reply-To (and References) to the patient's message, so mail clients thread it."""
    if mail.message_id is None or not _MSG_ID.fullmatch(mail.message_id):
        return
    message.set_raw("In-Reply-To", mail.message_id)
    if with_references:
        chain = [i for i in mail.references if _MSG_ID.fullmatch(i) and i != mail.message_id]
        chain = list(dict.fromkeys(chain))
        if len(chain) >= _MAX_REFERENCES:  # keep the first (the thread's root) and the newest
            chain = [chain[0], *chain[-(_MAX_REFERENCES - 2) :]]
        # One id a line: each fits, and nothing needs refolding (which would encode them).
        message.set_raw("References", "\n ".join([*chain, mail.message_id]))
    else:
        message.set_raw("References", mail.message_id)


def _subject(reference: str, subject: str, lang: str) -> str:
    return f"[{reference}] {_subject_text(subject, reference, lang)}"


def _subject_text(subject: str, reference: str, lang: str) -> str:
    """The subject, cleaned, without a "[HD-000123]" it already carries (a follow-up)."""
    cleaned = header_text(subject, 1000)
    cleaned = without_reference(cleaned, reference)
    return header_text(cleaned) or _TEXT[lang]["no_subject"]


def _original_part(raw: bytes, reference: str) -> EmailMessage:
    """The patient's message as it arrived, for the colleague to open or save."""
    part = EmailMessage(policy=POLICY)
    if _travels_as_message(raw):
        if not raw.count(b"\r\n") == raw.count(b"\n") == raw.count(b"\r"):  # not all CRLF
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        part["Content-Type"] = "message/rfc822"
        part["Content-Disposition"] = f'attachment; filename="{reference}.eml"'
        part["Content-Transfer-Encoding"] = "7bit" if raw.isascii() else "8bit"
        # A string payload of a message/rfc822 part is written out as it is, not parsed and
        # generated again; _RawText makes the bytes come back out exactly as they went in.
        part.set_payload(_RawText(raw))
    else:
        part.set_content(
            raw, maintype="application", subtype="octet-stream", filename="original.eml"
        )
    return part


class _RawText(str):
    """Bytes carried as text, one character a byte, that encode back to the same bytes.

    The generator writes a message/rfc822 part's string payload with `payload.encode("ascii")`
    (email.generator.BytesGenerator._encode), which would refuse 8-bit mail; this string
    answers any encoding with the bytes it was made from. Latin-1 keeps it at one byte a
    character in memory (surrogateescape would double that).
    """

    raw: bytes

    def __new__(cls, raw: bytes) -> _RawText:
        text = super().__new__(cls, raw.decode("latin-1"))
        text.raw = raw
        return text

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw

    def __reduce__(self) -> tuple[type[_RawText], tuple[bytes]]:  # copy and deepcopy
        return (_RawText, (self.raw,))


def _travels_as_message(raw: bytes) -> bool:
    """Whether `raw` can go as message/rfc822 (7bit/8bit): headers first, no NUL, short lines."""
    head = raw.lstrip(b"\r\n")[:1000]
    if not _HEADER_LINE.match(head) or b"\0" in raw:
        return False
    # A loop over line ends: a regex for long lines is 100 times slower on a 20 MB message.
    start, find = 0, raw.find
    while (end := find(b"\n", start)) >= 0:
        if end - start - (raw[end - 1] == 0x0D) > _MAX_LINE:  # the CR of CRLF not counted
            return False
        start = end + 1
    return len(raw) - start <= _MAX_LINE


# --- texts --------------------------------------------------------------------------------

_TEXT: Mapping[str, Mapping[str, str]] = {
    "nl": {
        "no_subject": "(geen onderwerp)",
        "received": "Ontvangen: ",
        "unknown_number": "onbekend nummer",
        "unknown": "onbekend",
        "forward_intro": "Een patiënt heeft de helpdesk gemaild. Deze mail is voor jou.",
        "label_reference": "Referentie",
        "label_organisation": "Organisatie",
        "label_from": "Van",
        "label_received": "Ontvangen",
        "label_subject": "Onderwerp",
        "label_attachments": "Bijlagen",
        "label_caller": "Beller",
        "label_when": "Wanneer",
        "label_length": "Lengte",
        "no_attachments": "geen",
        "no_address": "het adres van de afzender is niet eenduidig te lezen",
        "attention": "Let op: een medewerker moet deze mail zelf bekijken.",
        "remarks": "Opmerkingen bij het lezen van de mail:",
        "reply_hint": (
            "Met Beantwoorden gaat je antwoord naar de patiënt. "
            "Laat [{ref}] in het onderwerp staan."
        ),
        "no_reply_hint": (
            "Beantwoorden gaat niet vanzelf naar de patiënt: het afzenderadres is niet "
            "eenduidig te lezen. Kijk in de bijgevoegde originele mail."
        ),
        "original": "De originele mail zit als bijlage bij dit bericht.",
        "quoted": "De tekst van de patiënt:",
        "no_text": "(geen tekst)",
        "cut": "[… de rest staat in de bijgevoegde originele mail]",
        "voicemail_subject": "Voicemail {ref} van {who} voor {org}",
        "voicemail_intro": "Er is een voicemail ingesproken op de helpdesklijn.",
        "voicemail_listen": (
            "Je kunt de voicemail beluisteren in het dashboard van de helpdesk. "
            "Bel de patiënt terug en markeer het contact daarna als afgehandeld."
        ),
    },
    "en": {
        "no_subject": "(no subject)",
        "received": "Received: ",
        "unknown_number": "unknown number",
        "unknown": "unknown",
        "forward_intro": "A patient has emailed the helpdesk. This mail is for you.",
        "label_reference": "Reference",
        "label_organisation": "Organisation",
        "label_from": "From",
        "label_received": "Received",
        "label_subject": "Subject",
        "label_attachments": "Attachments",
        "label_caller": "Caller",
        "label_when": "When",
        "label_length": "Length",
        "no_attachments": "none",
        "no_address": "the sender's address cannot be read unambiguously",
        "attention": "Please note: someone needs to look at this mail in person.",
        "remarks": "Remarks from reading the mail:",
        "reply_hint": "Reply, and your answer goes to the patient. Keep [{ref}] in the subject.",
        "no_reply_hint": (
            "Replying does not reach the patient by itself: the sender's address cannot be "
            "read unambiguously. See the original mail attached."
        ),
        "original": "The original mail is attached to this message.",
        "quoted": "The patient's text:",
        "no_text": "(no text)",
        "cut": "[… the rest is in the original mail attached]",
        "voicemail_subject": "Voicemail {ref} from {who} for {org}",
        "voicemail_intro": "A voicemail has been left on the helpdesk line.",
        "voicemail_listen": (
            "You can listen to it in the helpdesk dashboard. Call the patient back, then "
            "mark the contact as handled."
        ),
    },
}

_ACK: Mapping[str, Mapping[str, str]] = {
    "nl": {
        "greeting": "Goedendag,",
        "thanks": "Dank u wel voor uw e-mail aan {desk}. Wij hebben uw bericht goed ontvangen.",
        "reference": (
            "Uw bericht heeft het nummer {ref}. Schrijft u ons nog een keer over deze vraag? "
            "Laat dit nummer dan in het onderwerp staan. Dan vinden wij uw bericht snel terug."
        ),
        "next": (
            "Wij zijn nu gesloten. Wij zijn {next} weer open. Dan leest een medewerker uw "
            "bericht. Wij antwoorden u zo snel mogelijk."
        ),
        "no_next": (
            "Op dit moment kan niemand uw bericht lezen. Een medewerker leest het zo snel "
            "mogelijk. Wij antwoorden u dan."
        ),
        "hours": "Onze openingstijden: {hours}.",
        "website": "Op {website} vindt u hulp bij veelgestelde vragen.",
        "medical": (
            "Heeft u een medische vraag? Neem dan contact op met uw huisarts of met de "
            "afdeling waar u onder behandeling bent. Bij levensgevaar belt u 112."
        ),
        "regards": "Met vriendelijke groet,",
        "automatic": (
            "Dit is een automatisch antwoord op uw e-mail. U hoeft hier niet op te antwoorden."
        ),
    },
    "en": {
        "greeting": "Hello,",
        "thanks": "Thank you for your email to {desk}. We have received your message.",
        "reference": (
            "Your message has the reference number {ref}. If you write to us again about "
            "this question, please keep this number in the subject line. That helps us find "
            "your message quickly."
        ),
        "next": (
            "We are closed at the moment. We are open again {next}. A member of our team "
            "will then read your message, and we will reply as soon as we can."
        ),
        "no_next": (
            "No one can read your message right now. A member of our team will read it as "
            "soon as possible, and we will reply to you then."
        ),
        "hours": "Our opening hours: {hours}.",
        "website": "You can find help with common questions at {website}.",
        "medical": (
            "Do you have a medical question? Please contact your GP or the department that "
            "is treating you. In an emergency, call 112."
        ),
        "regards": "Kind regards,",
        "automatic": "This is an automatic reply to your email. You do not need to reply to it.",
    },
}


def _acknowledgement_text(
    desk: Desk, lang: str, reference: str, now: datetime, next_opening: datetime | None
) -> str:
    text = _ACK[lang]
    if next_opening is not None:
        require_aware(next_opening)
        moment = describe_moment(next_opening.astimezone(desk.tz), now, lang)
        when = text["next"].format(next=moment)
    else:
        when = text["no_next"]
    paragraphs = [
        text["greeting"],
        text["thanks"].format(desk=desk.name),
        text["reference"].format(ref=reference),
        when,
        text["hours"].format(hours=describe_hours(desk, lang)),
    ]
    if desk.website:
        paragraphs.append(text["website"].format(website=desk.website))
    paragraphs += [text["medical"], f"{text['regards']}\n{desk.name}", text["automatic"]]
    return "\n\n".join(paragraphs) + "\n"


def _forward_note(
    desk: Desk,
    lang: str,
    reference: str,
    mail: ParsedMail,
    received: datetime,
    mailbox: str | None,
) -> str:
    text = _TEXT[lang]
    if mail.from_address:
        name = header_text(mail.from_name, 100)
        sender = f"{name} <{mail.from_address}>" if name else mail.from_address
    else:
        sender = f"{text['unknown']} ({text['no_address']})"
    attachments = [
        f"{header_text(a.filename, 200)} ({file_size(a.size, lang)})" for a in mail.attachments
    ]
    rows = [
        (text["label_reference"], reference),
        (text["label_organisation"], _organisation(desk, mail, mailbox) or text["unknown"]),
        (text["label_from"], sender),
        (text["label_received"], _when(received.astimezone(desk.tz), lang)),
        (text["label_subject"], header_text(mail.subject) or text["no_subject"]),
        (text["label_attachments"], ", ".join(attachments) or text["no_attachments"]),
    ]
    paragraphs = [text["forward_intro"], _table(rows)]
    problems = [header_text(p, 300) for p in mail.problems]
    if mail.needs_attention or not mail.from_address:
        paragraphs.append("\n".join([text["attention"], *(f"- {p}" for p in problems)]))
    elif problems:
        paragraphs.append("\n".join([text["remarks"], *(f"- {p}" for p in problems)]))
    hint = text["reply_hint"] if mail.from_address else text["no_reply_hint"]
    paragraphs += [hint.format(ref=reference), text["original"]]
    body = mail.text.strip()
    if len(body) > _MAX_QUOTED:
        body = body[:_MAX_QUOTED].rstrip() + "\n" + text["cut"]
    quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
    paragraphs += [text["quoted"], quoted or f"> {text['no_text']}"]
    return "\n\n".join(paragraphs) + "\n"


def _organisation(desk: Desk, mail: ParsedMail, mailbox: str | None) -> str:
    candidates = [mailbox] if mailbox else list(mail.to)
    for address in candidates:
        found = desk.mailbox_for(address)
        if found is not None:
            return f"{found.organisation} ({found.address})"
    return header_text(mailbox, 100) if mailbox else ""


def _table(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(label) for label, _value in rows) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in rows)


def _when(moment: datetime, lang: str) -> str:
    """ "maandag 23 november 2026 om 10.15 uur"; "Monday 23 November 2026 at 10:15"."""
    day = str(format_date(moment.date(), format="EEEE d MMMM y", locale=LOCALES[lang]))
    if lang == "nl":
        return f"{day} om {moment.hour}.{moment.minute:02d} uur"
    return f"{day} at {moment.hour}:{moment.minute:02d}"


def _duration(seconds: int | None, lang: str) -> str:
    if seconds is None or seconds < 0:
        return _TEXT[lang]["unknown"]
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
