"""Incoming mail as a person would read it: pure, no network, and never an exception.

`parse_message` takes the raw bytes the poller fetched and returns a `ParsedMail`: decoded
one-line headers, the addresses read strictly, the readable body text, the attachments by
name, type and size, why the message looks automatic, and what could not be read. Each
header is read on its own, so one broken header costs that header only; anything else that
goes wrong still yields a ParsedMail marked `needs_attention`.

Addresses are read strictly, by the core's one address check (`intake.core.addresses`):
one that is not readable unambiguously gives no address, and a problem for a person to
look at.

Reading the headers as they arrived is `mail.rawheaders`' job; the MIME structure, its
parts and their sizes are `mail.mimeparts`'. Memory and time: the message is fed to the
parser in chunks, a long run of base64 lines as one marker line (the parser then never
holds an attachment it was not asked to decode), and the size of a base64 attachment is
counted from its encoded text without decoding it. Parsing a message with a 10 MB
attachment takes about 0.1 s and under 1 MB besides the message (it was 0.8 s and 2.8 times
the message's size; `email.message_from_bytes` plus `get_content()` peaks near 8 times).
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime

from intake.core.addresses import MAX_ADDRESS_HEADER, read_address, strict_address
from mail.autoreply import automatic_reasons
from mail.htmltext import html_to_text
from mail.message import Attachment, ParsedMail
from mail.mimeparts import (
    SALVAGE_LIMIT,
    STRUCTURE_DEFECTS,
    Leaf,
    attached_message,
    decoded_size,
    describe_defect,
    has_content,
    is_body_text,
    leaves_of,
    message_from_bytes,
    part_charset,
    payload_bytes,
    with_found_boundary,
)
from mail.rawheaders import (
    REGISTRY,
    RawHeaders,
    decoded_header_line,
    first_header,
    first_of,
    fix_8bit,
    header_line,
    headers_digest,
    message_ids,
    unique,
)

__all__ = ["Attachment", "ParsedMail", "parse_message"]

_MAX_SUBJECT = 8 * 1024  # characters of Subject decoded
_MAX_RECIPIENTS_HEADER = 64 * 1024  # characters of To or Cc read
_WHITESPACE = re.compile(r"\s+")
_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_FILENAME_UNSAFE = re.compile(r'[\\/:*?"<>|]+')
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "message/rfc822": ".eml",
    "message/delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "text/rfc822-headers": ".txt",
}
_LATIN1_LABELS = frozenset({"latin_1", "iso8859-1", "iso8859_1"})


def parse_message(raw: bytes) -> ParsedMail:
    """Read one raw message; never raises, whatever the bytes."""
    size = len(raw)
    digest = hashlib.sha256(raw).hexdigest()
    try:
        return _Reader(raw, size, digest).read()
    except Exception as error:  # the contract: a person gets to see whatever arrived
        failure = f"the message could not be parsed ({type(error).__name__})"
    try:
        # e.g. MIME nested thousands deep exhausts the parser's recursion: keep the headers.
        mail = _Reader(raw, size, digest).read(headers_only=True)
        return replace(mail, problems=(failure, *mail.problems))
    except Exception:
        return ParsedMail(
            message_id=None,
            in_reply_to=(),
            references=(),
            subject="",
            from_address=None,
            from_name="",
            return_path=None,
            to=(),
            date=None,
            text="",
            attachments=(),
            automatic=(),
            problems=(failure,),
            needs_attention=True,
            size=size,
            sha256=digest,
            headers_sha256=digest,
        )


# --- reading ----------------------------------------------------------------------------


class _Reader:
    """One parse: the message, and the problems noted while reading it."""

    def __init__(self, raw: bytes, size: int, digest: str) -> None:
        self.raw = raw
        self.size = size
        self.digest = digest
        self.problems: list[str] = []
        self.attention = False

    def note(self, problem: str, *, attention: bool = False) -> None:
        if problem not in self.problems:
            self.problems.append(problem)
        self.attention = self.attention or attention

    def read(self, *, headers_only: bool = False) -> ParsedMail:
        message = message_from_bytes(self.raw, headers_only=headers_only)
        headers = RawHeaders(message)
        for defect in () if headers_only else message.defects:
            self.note(describe_defect(defect), attention=isinstance(defect, STRUCTURE_DEFECTS))

        from_address, from_name = self._from(headers)
        message_id = first_of(message_ids(v) for v in headers.all("message-id"))
        subject = self._subject(headers)
        text = ""
        attachments: tuple[Attachment, ...] = ()
        if headers_only:
            self.note("the body could not be read", attention=True)
        else:
            text, attachments = self._content(message)
        try:
            automatic = automatic_reasons(message)
        except Exception:  # fail closed: never answer what we could not check
            automatic = ("the headers that mark an automatic message could not be read",)
            self.note(automatic[0])
        return ParsedMail(
            message_id=message_id,
            in_reply_to=unique(i for v in headers.all("in-reply-to") for i in message_ids(v)),
            references=unique(i for v in headers.all("references") for i in message_ids(v)),
            subject=subject,
            from_address=from_address,
            from_name=from_name,
            return_path=self._return_path(headers),
            to=self._recipients(headers),
            date=self._date(headers),
            text=text,
            attachments=attachments,
            automatic=automatic,
            problems=tuple(self.problems),
            needs_attention=self.attention,
            size=self.size,
            sha256=self.digest,
            headers_sha256=headers_digest(headers, message_id),
        )

    # --- headers ------------------------------------------------------------------------

    def _from(self, headers: RawHeaders) -> tuple[str | None, str]:
        values = headers.all("from")
        if not values:
            self.note("no From header", attention=True)
            return None, ""
        if len(values) > 1:
            self.note("several From headers: the sender is ambiguous", attention=True)
            return None, ""
        address, name, problem = read_address(values[0])
        if address is None:
            self.note(f"From cannot be read unambiguously: {problem}", attention=True)
            return None, ""
        return address, header_line(name)

    def _subject(self, headers: RawHeaders) -> str:
        values = headers.all("subject")
        if not values:
            return ""
        if len(values) > 1:
            self.note("several Subject headers; the first is used")
        value = values[0]
        if len(value) > _MAX_SUBJECT:
            # Decoding thousands of encoded-words takes the stdlib quadratic time.
            self.note(f"the Subject is longer than {_MAX_SUBJECT} characters; it was cut")
            value = value[:_MAX_SUBJECT]
        return decoded_header_line(value)

    def _return_path(self, headers: RawHeaders) -> str | None:
        # The delivering server puts the envelope sender on top; older copies may follow.
        values = headers.all("return-path")
        if not values:
            return None
        value = header_line(values[0])
        if _WHITESPACE.sub("", value) in ("", "<>"):
            return ""
        address = strict_address(value)
        if address is None:
            self.note("the Return-Path cannot be read unambiguously")
            return value[:MAX_ADDRESS_HEADER]
        return address

    def _recipients(self, headers: RawHeaders) -> tuple[str, ...]:
        found: list[str] = []
        for name in ("to", "cc"):
            for value in headers.all(name):
                if len(value) > _MAX_RECIPIENTS_HEADER:
                    self.note(
                        f"the {name.capitalize()} header is very long; only its start is read"
                    )
                    value = value[: value.rfind(",", 0, _MAX_RECIPIENTS_HEADER) + 1]
                addresses = _addresses_in(name, value)
                if addresses is None:
                    self.note(f"the {name.capitalize()} header cannot be read")
                else:
                    found.extend(addresses)
        return unique(found)

    def _date(self, headers: RawHeaders) -> datetime | None:
        values = headers.all("date")
        if not values:
            return None
        try:
            moment = parsedate_to_datetime(header_line(values[0][:MAX_ADDRESS_HEADER]))
        except (TypeError, ValueError, IndexError, OverflowError):
            self.note("the Date header cannot be read")
            return None
        # "-0000" (and a date without a zone) parse as naive: RFC 5322 says that means UTC.
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    # --- body and attachments -----------------------------------------------------------

    def _content(self, message: EmailMessage) -> tuple[str, tuple[Attachment, ...]]:
        if message.get_content_maintype() == "multipart" and not message.is_multipart():
            # The parser found no parts (no boundary, or never the boundary it announced).
            # A person must look; meanwhile try the boundary the body itself uses.
            self.note("the MIME structure could not be read", attention=True)
            recovered = with_found_boundary(message)
            if recovered is None:
                return self._salvage(message), ()
            self.note("the parts were read with the boundary found in the body")
            message = recovered

        leaves = leaves_of(message)
        body = self._body_part(message)
        body_leaf = next((leaf for leaf in leaves if leaf.part is body), None)
        alternative = body_leaf.alternative if body_leaf is not None else None
        text = self._decode_body(body_leaf) if body_leaf is not None else ""
        attachments: list[Attachment] = []
        for leaf in leaves:
            if leaf is body_leaf:
                continue
            for defect in leaf.part.defects:
                self.note(describe_defect(defect), attention=isinstance(defect, STRUCTURE_DEFECTS))
            if leaf.too_deep:
                self.note("the MIME structure is nested too deeply to read whole", attention=True)
                continue
            if is_body_text(leaf):
                if alternative is not None and any(a is alternative for a in leaf.ancestors):
                    continue  # another version of the body (the HTML beside the plain text)
                if body_leaf is not None and leaf.content_type == "text/plain":
                    # Apple Mail splits a body around an inline image into several parts.
                    extra = self._decode_body(leaf)
                    text = f"{text}\n\n{extra}".strip("\n") if extra else text
                    continue
            if leaf.content_type.startswith("multipart/"):
                self.note("a multipart part could not be read", attention=True)
                continue
            attachments.append(self._attachment(leaf, len(attachments) + 1))
        if not text and not attachments and any(has_content(leaf.part) for leaf in leaves):
            self.note("no readable text in the message", attention=True)
        return text, tuple(attachments)

    def _body_part(self, message: EmailMessage) -> Message | None:
        try:
            body = message.get_body(preferencelist=("plain", "html"))
            if body is not None and body.get_content_subtype() == "plain":
                # Some mailers send an empty text/plain beside the real HTML.
                payload = body.get_payload(decode=True)
                if isinstance(payload, bytes) and not payload.strip():
                    html = message.get_body(preferencelist=("html",))
                    body = html if html is not None else body
        except Exception:
            self.note("the body could not be found", attention=True)
            return None
        return body

    def _decode_body(self, leaf: Leaf) -> str:
        payload = payload_bytes(leaf.part)
        charset = part_charset(leaf.part)
        if leaf.content_type == "text/html":
            if charset is None:
                sniffed = _META_CHARSET.search(payload[:4096])
                charset = sniffed.group(1).decode("ascii").lower() if sniffed else None
            text = self._decode(payload, charset)
            try:
                text = html_to_text(text)
            except Exception:
                self.note("the HTML body could not be turned into text")
        else:
            text = self._decode(payload, charset)
        return _clean_body(text)

    def _decode(self, payload: bytes, charset: str | None) -> str:
        if charset:
            try:
                name = codecs.lookup(charset).name
                if name == "ascii":
                    return _guess_decode(payload)
                if name in _LATIN1_LABELS:
                    # As browsers do: mail labelled ISO-8859-1 is often Windows-1252 (€, “ ”).
                    return payload.decode("cp1252", errors="replace")
                return payload.decode(charset, errors="replace")
            except (LookupError, ValueError, TypeError):
                shown = header_line(charset)[:40]
                self.note(f"unknown charset {shown!r}: decoded as UTF-8 or Windows-1252")
        return _guess_decode(payload)

    def _salvage(self, message: EmailMessage) -> str:
        payload = payload_bytes(message)
        text = _guess_decode(payload[:SALVAGE_LIMIT])
        if len(payload) > SALVAGE_LIMIT:
            text += "\n[…]"
        return _clean_body(text)

    def _attachment(self, leaf: Leaf, position: int) -> Attachment:
        part, content_type = leaf.part, leaf.content_type
        filename = ""
        try:
            filename = _clean_filename(part.get_filename() or "")
        except Exception:
            self.note("an attachment name cannot be read")
        if not filename and content_type == "message/rfc822":
            inner = attached_message(part)
            if inner is not None:
                subject = first_header(inner, "subject")[:_MAX_SUBJECT]
                subject = _clean_filename(decoded_header_line(subject))
                filename = f"{subject[:100]}.eml" if subject else ""
        if not filename:
            filename = f"attachment-{position}{_EXTENSIONS.get(content_type, '.bin')}"
        try:
            size = decoded_size(part)
        except Exception:
            size = 0
            self.note("the size of an attachment cannot be determined")
        return Attachment(filename=filename, content_type=content_type, size=size)


@functools.lru_cache(maxsize=1024)
def _addresses_in(name: str, value: str) -> tuple[str, ...] | None:
    """The addr-specs of an address header (To, Cc); None when it cannot be read.

    Kept for the values seen last: reading an address list with the standard library's
    header parser was a fifth of the time of reading a patient's mail, and most mail to a
    desk carries the same few To headers.
    """
    try:
        header = REGISTRY(name, value)
        assert isinstance(header, AddressHeader)
        return tuple(header_line(a.addr_spec) for a in header.addresses if a.username and a.domain)
    except Exception:
        return None


# --- text -------------------------------------------------------------------------------------


def _guess_decode(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")


def _clean_body(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _BODY_CONTROLS.sub("", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _clean_filename(name: str) -> str:
    if "=?" in name:
        # Encoded-words inside a quoted filename: not standard, but sent by many mailers.
        with contextlib.suppress(Exception):
            name = str(make_header(decode_header(name)))
    name = header_line(fix_8bit(name))
    name = re.split(r"[\\/]", name)[-1].strip()  # never a directory, only the name
    name = _FILENAME_UNSAFE.sub("_", name) if name not in (".", "..") else ""
    return name.strip(" .")[:200]
