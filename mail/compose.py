"""The messages the desk sends: forwards to colleagues, acknowledgements, voicemail notices.

This module builds the MIME; the words (a desk may override each) come from
`intake.core.texts`, laid out into subjects and bodies by `mail.notes`.

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

import binascii
import functools
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr
from typing import Any

from intake.core.addresses import plain_mailbox, strict_address
from intake.core.references import is_reference
from mail import notes
from mail.headertext import header_text
from mail.message import ParsedMail
from mail.rawheaders import REGISTRY
from routing.desk import Desk, Staff
from routing.hours import require_aware
from routing.languages import base_language

__all__ = [
    "POLICY",
    "acknowledgement",
    "as_bytes",
    "forward",
    "header_text",
    "joined",
    "new_message_id",
    "set_text",
    "voicemail_notice",
    "written_apart",
]


class _WritingPolicy(EmailPolicy):
    """`policy.SMTP`, except that a header value met before is not parsed or folded again.

    `EmailPolicy` parses every header set with the full RFC 5322 grammar, and folds it again
    when the message is written; most headers of a forward are the same from message to
    message (our From, the colleague's To, the MIME headers). Header objects are immutable,
    so the same text gives back the same object, and that object's folded form per policy.
    This was a third of the time of forwarding a patient's mail.
    """

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if name.lower() in _NEW_EACH_TIME:
            return super().header_store_parse(name, value)
        if type(value) is str and len(value.splitlines()) <= 1:  # else: refused, as ever
            return (name, _stored_header(name, value))
        if type(value) in (list, tuple) and len(value) == 1:
            value = value[0]  # one address: the same header as for the address alone
        if type(value) is Address:
            return (name, _stored_address(name, value.display_name, value.addr_spec))
        return super().header_store_parse(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded: dict[tuple[Any, ...], bytes] | None = getattr(value, "folded_by", None)
        if folded is None:
            return super().fold_binary(name, value)
        key = (name, self.linesep, self.max_line_length, self.utf8, self.cte_type)
        found = folded.get(key)
        if found is None:
            found = folded[key] = super().fold_binary(name, value)
        return found


# Headers whose value is new with nearly every message (the patient's subject and address):
# kept, they would only push the recurring ones out of the caches below. (The attachment
# named after the reference is set as text, past the policy: see `_original_part`.)
_NEW_EACH_TIME = frozenset({"subject", "reply-to"})


@functools.lru_cache(maxsize=512)
def _stored_header(name: str, value: str) -> Any:
    return _shared(REGISTRY(name, value))


@functools.lru_cache(maxsize=512)
def _stored_address(name: str, display_name: str, addr_spec: str) -> Any:
    return _shared(REGISTRY(name, _address(display_name, addr_spec)))


# `Address` parses its addr-spec when made; the desk's and the colleagues' come back with
# every message. An Address cannot be changed, so one may be shared.
@functools.lru_cache(maxsize=512)
def _address(display_name: str, addr_spec: str) -> Address:
    return Address(display_name=display_name, addr_spec=addr_spec)


def _shared(header: Any) -> Any:
    header.folded_by = {}  # the folded text per policy, filled by _WritingPolicy.fold_binary
    return header


# policy.SMTP (CRLF), and headers set raw (the Message-IDs) are never refolded.
POLICY = _WritingPolicy(linesep="\r\n", refold_source="none", header_factory=REGISTRY)

# A msg-id as we accept it in a header we write: printable ASCII, no angle brackets inside.
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,900}@[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}")
_MAX_REFERENCES = 20  # RFC 5322 allows trimming; the first and the last matter most
# RFC 5322: at most 998 octets a line. Longer lines cannot travel as 7bit/8bit.
_MAX_LINE = 998
_FOLD_AT: int = POLICY.max_line_length or 78  # a header line up to this long is written unfolded
_HEADER_LINE = re.compile(rb"[!-9;-~]{1,100}:")
_LEADING_LINE_ENDS = re.compile(rb"[\r\n]*")


def as_bytes(message: EmailMessage) -> bytes:
    """`message.as_bytes(policy=POLICY)`, with an attached original copied once, not thrice.

    The generator copies every part into a buffer of its own and then into its parent's, so
    a 20 MB original would be held three times over; here it is left out of the generated
    text and joined in at the end.
    """
    data, originals = written_apart(message)
    return joined(data, originals) if originals else data


def joined(data: bytes, originals: Sequence[tuple[int, bytes]]) -> bytes:
    """The bytes `written_apart` gave, with the originals back where they go."""
    pieces: list[bytes] = []
    done = 0
    for at, original in originals:
        pieces += [data[done:at], original]
        done = at
    return b"".join([*pieces, data[done:]])


def written_apart(message: EmailMessage) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The bytes of `message` (as `as_bytes` writes them) without its attached originals,
    and where each goes: (offset in those bytes, the original's bytes), in order.

    The outbox stores a forward so: the original is already stored, as it arrived. A part
    written beforehand (`set_text`) is joined in here.
    """
    direct = _written_directly(message)
    if direct is not None:
        return direct
    ready: list[tuple[Message, _RawText | _Prewritten]] = []
    for found in message.walk():
        payload = found.get_payload()
        if isinstance(payload, (_RawText, _Prewritten)):
            ready.append((found, payload))
    if not ready:
        return message.as_bytes(policy=POLICY), []
    markers = [f"=_written_{secrets.token_hex(16)}_{n}" for n in range(len(ready))]
    for (part, _payload), marker in zip(ready, markers, strict=True):
        part.set_payload(marker)
    try:
        data = message.as_bytes(policy=POLICY)
    finally:
        for part, payload in ready:
            part.set_payload(payload)
    pieces: list[bytes] = []
    places: list[tuple[int, bytes]] = []
    at = 0
    for marker, (_part, payload) in zip(markers, ready, strict=True):
        before, separator, data = data.partition(marker.encode("ascii"))
        if not separator:
            raise ValueError("a part written beforehand went missing while writing the message")
        at += len(before)
        pieces.append(before)
        if isinstance(payload, _RawText):
            places.append((at, payload.raw))
        else:
            at += len(payload.raw)
            pieces.append(payload.raw)
    return b"".join([*pieces, data]), places


def _written_directly(message: EmailMessage) -> tuple[bytes, list[tuple[int, bytes]]] | None:
    """`written_apart` for the messages we build, without the generator; None for others.

    A message whose parts (or itself) hold text written beforehand or an original: the
    generator would write each part's headers as the policy folds them, a blank line and
    the payload, and a multipart's parts between its boundary lines (no preamble or
    epilogue); here those pieces are joined once (the generator wrote each part into a
    buffer of its own, through a dozen calls: half the time of writing a forward out).
    """
    parts = message.get_payload() if message.is_multipart() else [message]
    if not isinstance(parts, list) or not parts:
        return None
    boundary = message.get_boundary() if message.is_multipart() else None
    if message.is_multipart() and (
        not boundary
        or not boundary.isascii()
        or message.preamble is not None
        or message.epilogue is not None
    ):
        return None
    newline = POLICY.linesep.encode("ascii")
    pieces: list[bytes] = []
    places: list[tuple[int, bytes]] = []
    at = 0

    def add(data: bytes) -> None:
        nonlocal at
        pieces.append(data)
        at += len(data)

    if boundary is not None:
        add(_headers_of(message) + b"--" + boundary.encode("ascii") + newline)
    for n, part in enumerate(parts):
        payload = getattr(part, "_payload", None)  # get_payload() would decode it
        if not isinstance(payload, (_RawText, _Prewritten)) or part.is_multipart():
            return None
        if n:
            add(newline + b"--" + boundary.encode("ascii") + newline)  # type: ignore[union-attr]
        add(_headers_of(part))
        if isinstance(payload, _RawText):
            places.append((at, payload.raw))
        else:
            add(payload.raw)
    if boundary is not None:
        add(newline + b"--" + boundary.encode("ascii") + b"--" + newline)
    return b"".join(pieces), places


def _headers_of(part: Message) -> bytes:
    """A part's header block as the generator writes it under POLICY, blank line and all."""
    folded = [POLICY.fold_binary(name, value) for name, value in part.raw_items()]
    return b"".join([*folded, POLICY.linesep.encode("ascii")])


def new_message_id(kind: str, reference: str | None, domain: str) -> str:
    """A fresh Message-ID: "<kind.HD-000123.{random hex}@domain>"; stored with the row.

    `reference` None: a message about no contact (a colleague's login), "<kind.{hex}@domain>".
    """
    kind_part = re.sub(r"[^A-Za-z0-9-]+", "-", kind).strip("-") or "mail"
    if reference is not None and not is_reference(reference):
        raise ValueError(f"not a reference: {reference!r}")
    domain = domain.strip().rstrip(".")
    if not _DOMAIN.fullmatch(domain) or len(domain) > 253:
        raise ValueError(f"not a domain name: {domain!r}")
    about = f"{reference}." if reference is not None else ""
    return f"<{kind_part}.{about}{secrets.token_hex(12)}@{domain}>"


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
    to = _address(name, address)
    message = _new_message(
        desk=desk,
        sender=sender,
        to=[to],
        subject=notes.forward_subject(desk, lang, mail.subject, reference),
        message_id=message_id,
        at=at,
    )
    if mail.from_address:
        _set_address(message, "Reply-To", mail.from_name, mail.from_address)
    _set_thread(message, mail, with_references=False)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    note = notes.forward_note(desk, lang, reference, mail, received, mailbox)
    set_text(message, note)
    message.make_mixed()
    message.attach(_original_part(raw, reference))
    # Our own boundary: otherwise the generator joins the whole message to pick one. The
    # same one all along (so the header is parsed once, not per forward: see
    # `_WritingPolicy`), unless the original holds it (our own forward, sent back to us);
    # the note is quoted-printable, which writes "=" as "=3D" and cannot hold it.
    boundary = _BOUNDARY if _BOUNDARY.encode() not in raw else _new_boundary()
    message.replace_header("Content-Type", f'multipart/mixed; boundary="{boundary}"')
    return message


def _new_boundary() -> str:
    return f"=_helpdesk_{secrets.token_hex(16)}"


_BOUNDARY = _new_boundary()


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
    message = _new_message(
        desk=desk,
        sender=sender,
        to=[Address(addr_spec=_addr_spec(to))],
        subject=notes.acknowledgement_subject(desk, lang, mail.subject, reference),
        message_id=message_id,
        at=now,
    )
    _set_thread(message, mail, with_references=True)
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    text = notes.acknowledgement_text(desk, lang, reference, now, next_opening)
    set_text(message, text)
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
    who = notes.voicemail_caller(desk, lang, caller)
    where = header_text(organisation, 100) or desk.name
    message = _new_message(
        desk=desk,
        sender=sender,
        to=[Address(addr_spec=_addr_spec(r)) for r in dict.fromkeys(recipients)],
        subject=notes.voicemail_subject(desk, lang, reference, who, where),
        message_id=message_id,
        at=started_at,
    )
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    body = notes.voicemail_text(desk, lang, reference, who, where, started_at, seconds)
    set_text(message, body)
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
    message["From"] = _address(desk_name, _addr_spec(sender))
    message["To"] = to
    _set_unstructured(message, "Subject", subject)
    # As the Date header writes a datetime (RFC 5322 date, one short line), unparsed.
    message.set_raw("Date", format_datetime(at.astimezone(desk.tz)))
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
    cleaned = header_text(display_name, 100)
    text = plain_mailbox(cleaned, address) or _encoded_mailbox(cleaned, address)
    if text is not None and len(name) + 2 + len(text) <= _FOLD_AT:
        # Plain words and a plain address on one short line: what the header object would
        # write, and it reads back as written (intake.core.addresses), without two parses.
        # A name that is not ASCII: one encoded word, as email.utils.formataddr writes it
        # (the header object took 0.7 ms to parse and fold one).
        message.set_raw(name, text)
        return
    message[name] = Address(display_name=cleaned, addr_spec=address)
    read: tuple[Address, ...] = tuple(getattr(message[name], "addresses", ()))
    if len(read) != 1 or read[0].addr_spec != address:  # the name changed how it parses
        del message[name]
        message[name] = Address(addr_spec=address)


def _encoded_mailbox(display_name: str, addr_spec: str) -> str | None:
    """`=?utf-8?q?…?= <addr>` for a name that is not ASCII, its one encoded word at most
    RFC 2047's 75 characters; None for any other name."""
    if not display_name or display_name.isascii():
        return None
    try:
        text = formataddr((display_name, addr_spec), charset="utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None
    word, _, _rest = text.partition(" <")
    return text if len(word) <= 75 and "\n" not in word else None


def _set_unstructured(message: EmailMessage, name: str, value: str) -> None:
    """An unstructured header (a subject): printable ASCII words on one short line go in as
    the text the header object would write for them; anything else through the object."""
    if (
        value.isascii()
        and value.isprintable()
        and value == value.strip()
        and "  " not in value
        and "=?" not in value
        and len(name) + 2 + len(value) <= _FOLD_AT
    ):
        message.set_raw(name, value)
    else:
        message[name] = value


def set_text(message: EmailMessage, text: str) -> None:
    """`message.set_content(text, cte="quoted-printable")`, encoded by binascii (C).

    The standard library's quoted-printable encoder goes through the text in Python, a
    character at a time: the quoted patient mail made it a twentieth of forwarding. The
    headers are the ones set_content sets; lines are folded at RFC 2045's 76 characters
    (78 with a trailing space encoded, as long as the standard library's own lines).
    """
    # The headers set_content sets, set as the same text each time (see `_WritingPolicy`):
    # set_content reads and writes Content-Type three times over.
    if message.is_multipart():
        raise TypeError("set_text is for a message that is not multipart")
    message.clear_content()
    message["Content-Type"] = 'text/plain; charset="utf-8"'
    message["Content-Transfer-Encoding"] = "quoted-printable"
    if isinstance(message, EmailMessage) and "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    lines = text.encode("utf-8").splitlines()  # as set_content splits them
    encoded = binascii.b2a_qp(b"\n".join(lines) + b"\n", istext=True)
    message.set_payload(_Prewritten(encoded.decode("ascii"), encoded.replace(b"\n", b"\r\n")))


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


def _original_part(raw: bytes, reference: str) -> EmailMessage:
    """The patient's message as it arrived, for the colleague to open or save."""
    part = EmailMessage(policy=POLICY)
    travelling = _as_message(raw)
    if travelling is not None:
        part["Content-Type"] = "message/rfc822"
        # What the header object writes for it (a reference is letters, digits and "-").
        part.set_raw("Content-Disposition", f'attachment; filename="{reference}.eml"')
        part["Content-Transfer-Encoding"] = "7bit" if travelling.isascii() else "8bit"
        # A string payload of a message/rfc822 part is written out as it is, not parsed and
        # generated again; _RawText makes the bytes come back out exactly as they went in.
        part.set_payload(_RawText(travelling))
    else:
        part.set_content(
            raw, maintype="application", subtype="octet-stream", filename="original.eml"
        )
    return part


class _RawText(str):
    """Bytes carried as a message/rfc822 payload, that encode back to the same bytes.

    The generator writes a message/rfc822 part's string payload with `payload.encode(...)`
    (email.generator.BytesGenerator._encode), never reading the text itself; this string
    answers any encoding with the bytes it was made from. Its text is empty: a copy of a
    10 MB original as text (Latin-1, and once more for the subclass) was 28 MB held for
    nothing while the forward was written.
    """

    raw: bytes

    def __new__(cls, raw: bytes) -> _RawText:
        text = super().__new__(cls, "")
        text.raw = raw
        return text

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw

    def __reduce__(self) -> tuple[type[_RawText], tuple[bytes]]:  # copy and deepcopy
        return (_RawText, (self.raw,))


class _Prewritten(str):
    """A part's text (quoted-printable: ASCII, lines ending in LF) with the bytes the
    generator would write for it under POLICY, for `written_apart` to join in.

    The generator writes a text part a line at a time, two writes a line: for the quoted
    patient mail in a forward, a quarter of the time of writing it out. The text itself is
    the part's payload for anything else that reads it.
    """

    raw: bytes

    def __new__(cls, text: str, raw: bytes) -> _Prewritten:
        written = super().__new__(cls, text)
        written.raw = raw
        return written

    def __reduce__(self) -> tuple[type[_Prewritten], tuple[str, bytes]]:  # copy and deepcopy
        return (_Prewritten, (str(self), self.raw))


def _as_message(raw: bytes) -> bytes | None:
    """`raw` as it can go as message/rfc822 (7bit/8bit): itself, or with every line end made
    CRLF; None when it cannot (not headers first, a NUL, a line longer than SMTP allows)."""
    leading = _LEADING_LINE_ENDS.match(raw)
    at = leading.end() if leading else 0
    if not _HEADER_LINE.match(raw, at, at + 1000) or b"\0" in raw or _has_long_line(raw):
        return None
    if raw.count(b"\r\n") == raw.count(b"\n") == raw.count(b"\r"):  # all CRLF, as IMAP sends
        return raw
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def _has_long_line(raw: bytes) -> bool:
    """Whether a line of `raw` holds more than _MAX_LINE bytes (the CR of CRLF not counted).

    A step goes to the last line end within _MAX_LINE + 1 bytes: the line begun there ends
    in reach, and so does every line after it up to that end. So a step covers about a
    thousand bytes, not a line (splitting a 10 MB mail into lines took 15 ms, this 3 ms).
    """
    at, size = 0, len(raw)
    while size - at > _MAX_LINE:
        end = raw.rfind(b"\n", at, at + _MAX_LINE + 1)
        if end < 0:  # no line end in reach: long, unless CR LF come right after
            if raw[at + _MAX_LINE : at + _MAX_LINE + 2] != b"\r\n":
                return True
            end = at + _MAX_LINE + 1
        at = end + 1
    return False
