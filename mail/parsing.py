"""Incoming mail as a person would read it: pure, no network, and never an exception.

`parse_message` takes the raw bytes the poller fetched and returns a `ParsedMail`: decoded
one-line headers, the addresses read strictly, the readable body text, the attachments by
name, type and size, why the message looks automatic, and what could not be read. Each
header is read on its own, so one broken header costs that header only; anything else that
goes wrong still yields a ParsedMail marked `needs_attention`.

Addresses are read strictly, by the core's one address check (`intake.core.addresses`):
one that is not readable unambiguously gives no address, and a problem for a person to
look at.

Memory: the message is fed to the parser in chunks, and the size of a base64 attachment is
counted from its encoded text without decoding it. Parsing a message with a 20 MB attachment
peaks near 2.8 times the message's size; `email.message_from_bytes` plus `get_content()`
would peak near 8 times.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import errors, policy
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.header import decode_header, make_header
from email.headerregistry import AddressHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime

from intake.core.addresses import MAX_ADDRESS_HEADER, read_address, strict_address
from mail.autoreply import automatic_reasons
from mail.headertext import one_line
from mail.htmltext import html_to_text
from mail.message import Attachment, ParsedMail

__all__ = ["Attachment", "ParsedMail", "parse_message"]

_FEED_CHUNK = 1 << 20  # bytes handed to the parser at a time
_COUNT_CHUNK = 1 << 20  # characters of an encoded payload counted at a time
_MAX_DEPTH = 32  # MIME nesting we follow; deeper parts are reported, not read
_SALVAGE_LIMIT = 64 * 1024  # characters of raw body shown when the structure is broken
_MAX_SUBJECT = 8 * 1024  # characters of Subject decoded
_MAX_RECIPIENTS_HEADER = 64 * 1024  # characters of To or Cc read
_REGISTRY = HeaderRegistry()

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_WHITESPACE = re.compile(r"\s+")
# C0/C1 controls, lone surrogates, and the bidi embedding/override/isolate marks that can
# make a subject or name read differently from what it is.
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
# Dropped from what the parser reads, not made a space: a NUL or an escape inside a word is
# noise that the sender's mailer let through, not a word break.
_UNSPACED_CONTROLS = re.compile(r"(?!\s)[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
# A boundary line (RFC 2046: 1-70 characters from a small set) at the start of a line.
_BOUNDARY_LINE = re.compile(rb"^--([0-9A-Za-z'()+_,./:=?-]{1,70})[ \t]*\r?$", re.MULTILINE)
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_BARE_ID = re.compile(r"[^\s<>,;()\"]+@[^\s<>,;()\"]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_FILENAME_UNSAFE = re.compile(r'[\\/:*?"<>|]+')
_BASE64_NOISE = bytes(
    sorted(
        set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    )
)
# Defects that mean the MIME structure could not be followed: a person must look.
_STRUCTURE_DEFECTS = (
    errors.StartBoundaryNotFoundDefect,
    errors.CloseBoundaryNotFoundDefect,
    errors.NoBoundaryInMultipartDefect,
    errors.MultipartInvariantViolationDefect,
)
_DEFECT_TEXT: dict[type[errors.MessageDefect], str] = {
    errors.StartBoundaryNotFoundDefect: "the MIME boundary was never found",
    errors.CloseBoundaryNotFoundDefect: "the MIME structure ends without its closing boundary",
    errors.NoBoundaryInMultipartDefect: "a multipart part has no boundary",
    errors.MultipartInvariantViolationDefect: "a multipart part has no parts",
    errors.FirstHeaderLineIsContinuationDefect: "the first header line is a continuation",
    errors.MissingHeaderBodySeparatorDefect: "a line in the headers is not a header",
    errors.MisplacedEnvelopeHeaderDefect: "a 'From ' envelope line among the headers",
    errors.InvalidBase64PaddingDefect: "base64 with bad padding",
    errors.InvalidBase64CharactersDefect: "base64 with invalid characters",
    errors.InvalidBase64LengthDefect: "base64 of an impossible length",
    errors.InvalidMultipartContentTransferEncodingDefect: "a multipart part with an encoding",
}
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
        message = _message_from_bytes(self.raw, headers_only=headers_only)
        headers = _RawHeaders(message)
        for defect in () if headers_only else message.defects:
            self.note(_describe_defect(defect), attention=isinstance(defect, _STRUCTURE_DEFECTS))

        from_address, from_name = self._from(headers)
        message_id = _first(_message_ids(v) for v in headers.all("message-id"))
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
            in_reply_to=_unique(i for v in headers.all("in-reply-to") for i in _message_ids(v)),
            references=_unique(i for v in headers.all("references") for i in _message_ids(v)),
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
            headers_sha256=_headers_digest(headers, message_id),
        )

    # --- headers ------------------------------------------------------------------------

    def _from(self, headers: _RawHeaders) -> tuple[str | None, str]:
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
        return address, _one_line(name)

    def _subject(self, headers: _RawHeaders) -> str:
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
        return _decoded_one_line(value)

    def _return_path(self, headers: _RawHeaders) -> str | None:
        # The delivering server puts the envelope sender on top; older copies may follow.
        values = headers.all("return-path")
        if not values:
            return None
        value = _one_line(values[0])
        if _WHITESPACE.sub("", value) in ("", "<>"):
            return ""
        address = strict_address(value)
        if address is None:
            self.note("the Return-Path cannot be read unambiguously")
            return value[:MAX_ADDRESS_HEADER]
        return address

    def _recipients(self, headers: _RawHeaders) -> tuple[str, ...]:
        found: list[str] = []
        for name in ("to", "cc"):
            for value in headers.all(name):
                if len(value) > _MAX_RECIPIENTS_HEADER:
                    self.note(
                        f"the {name.capitalize()} header is very long; only its start is read"
                    )
                    value = value[: value.rfind(",", 0, _MAX_RECIPIENTS_HEADER) + 1]
                try:
                    header = _REGISTRY(name, value)
                    assert isinstance(header, AddressHeader)
                    found.extend(
                        _one_line(a.addr_spec) for a in header.addresses if a.username and a.domain
                    )
                except Exception:
                    self.note(f"the {name.capitalize()} header cannot be read")
        return _unique(found)

    def _date(self, headers: _RawHeaders) -> datetime | None:
        values = headers.all("date")
        if not values:
            return None
        try:
            moment = parsedate_to_datetime(_one_line(values[0][:MAX_ADDRESS_HEADER]))
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
            recovered = _with_found_boundary(message)
            if recovered is None:
                return self._salvage(message), ()
            self.note("the parts were read with the boundary found in the body")
            message = recovered

        leaves = _leaves(message)
        body = self._body_part(message)
        body_leaf = next((leaf for leaf in leaves if leaf.part is body), None)
        alternative = body_leaf.alternative if body_leaf is not None else None
        text = self._decode_body(body_leaf) if body_leaf is not None else ""
        attachments: list[Attachment] = []
        for leaf in leaves:
            if leaf is body_leaf:
                continue
            for defect in leaf.part.defects:
                self.note(
                    _describe_defect(defect), attention=isinstance(defect, _STRUCTURE_DEFECTS)
                )
            if leaf.too_deep:
                self.note("the MIME structure is nested too deeply to read whole", attention=True)
                continue
            if _is_body_text(leaf):
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
        if not text and not attachments and any(_has_content(leaf.part) for leaf in leaves):
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

    def _decode_body(self, leaf: _Leaf) -> str:
        payload = _payload_bytes(leaf.part)
        charset = _content_charset(leaf.part)
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
                shown = _one_line(charset)[:40]
                self.note(f"unknown charset {shown!r}: decoded as UTF-8 or Windows-1252")
        return _guess_decode(payload)

    def _salvage(self, message: EmailMessage) -> str:
        payload = _payload_bytes(message)
        text = _guess_decode(payload[:_SALVAGE_LIMIT])
        if len(payload) > _SALVAGE_LIMIT:
            text += "\n[…]"
        return _clean_body(text)

    def _attachment(self, leaf: _Leaf, position: int) -> Attachment:
        part, content_type = leaf.part, leaf.content_type
        filename = ""
        try:
            filename = _clean_filename(part.get_filename() or "")
        except Exception:
            self.note("an attachment name cannot be read")
        if not filename and content_type == "message/rfc822":
            inner = _attached_message(part)
            if inner is not None:
                subject = _header(inner, "subject")[:_MAX_SUBJECT]
                subject = _clean_filename(_decoded_one_line(subject))
                filename = f"{subject[:100]}.eml" if subject else ""
        if not filename:
            filename = f"attachment-{position}{_EXTENSIONS.get(content_type, '.bin')}"
        try:
            size = _decoded_size(part)
        except Exception:
            size = 0
            self.note("the size of an attachment cannot be determined")
        return Attachment(filename=filename, content_type=content_type, size=size)


# --- raw headers ----------------------------------------------------------------------------


class _RawHeaders:
    """Header values as they arrived, unfolded, 8-bit bytes decoded; no parsing that raises."""

    def __init__(self, message: Message) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self._values.setdefault(name.lower(), []).append(_unfold(_fix_8bit(str(value))))

    def all(self, name: str) -> list[str]:
        return self._values.get(name, [])


def _message_from_bytes(raw: bytes, *, headers_only: bool = False) -> EmailMessage:
    # Equivalent to email.message_from_bytes(raw, policy=policy.default), fed in chunks so
    # the whole message is never also held as one decoded string.
    if headers_only:
        ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
        raw = raw[: min(ends) + 1] if ends else raw
    parser = BytesFeedParser(policy=policy.default)
    for start in range(0, len(raw), _FEED_CHUNK):
        parser.feed(raw[start : start + _FEED_CHUNK])
    message = parser.close()
    assert isinstance(message, EmailMessage)
    return message


def _header(message: Message, name: str) -> str:
    for key, value in message.raw_items():
        if key.lower() == name:
            return _unfold(_fix_8bit(str(value)))
    return ""


def _unfold(value: str) -> str:
    return _FOLD.sub("", value).strip()


def _fix_8bit(value: str) -> str:
    """Raw 8-bit bytes in a header (surrogate-escaped by the parser): UTF-8, else cp1252."""
    if not _SURROGATE.search(value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _one_line(value: str) -> str:
    """A header as read: controls that are not spacing dropped (as from the body), one line."""
    return one_line(_UNSPACED_CONTROLS.sub("", value))


def _decoded_one_line(value: str) -> str:
    """An unstructured header (Subject) with its encoded-words decoded, as one clean line."""
    try:
        decoded = str(_REGISTRY("subject", value))
    except Exception:
        decoded = value
    return _one_line(decoded)


def _message_ids(value: str) -> tuple[str, ...]:
    found = [re.sub(r"\s+", "", m) for m in _ANGLE_ID.findall(value)]
    if not found:
        found = _BARE_ID.findall(value)  # some mailers leave out the angle brackets
    ids = (_INVISIBLE.sub("", i) for i in found)
    return tuple(f"<{i}>" for i in ids if i)


def _first(candidates: Iterator[tuple[str, ...]]) -> str | None:
    for ids in candidates:
        if ids:
            return ids[0]
    return None


def _unique(items: Iterator[str] | list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _headers_digest(headers: _RawHeaders, message_id: str | None) -> str:
    canonical = [
        [_WHITESPACE.sub(" ", v).strip() for v in headers.all(name)]
        for name in ("from", "date", "subject", "to")
    ]
    canonical.append([message_id or ""])
    data = json.dumps(canonical, ensure_ascii=True).encode("ascii")
    return hashlib.sha256(data).hexdigest()


# --- MIME structure -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Leaf:
    """A part that is not a multipart container, with what the reading needs to know."""

    part: Message
    content_type: str
    ancestors: tuple[Message, ...]  # the multipart containers above it, outermost first
    alternative: Message | None  # the closest multipart/alternative among them
    too_deep: bool  # a container nested beyond _MAX_DEPTH, left unread


def _leaves(message: Message) -> list[_Leaf]:
    """Every non-multipart part in order; attached messages (message/*) are not opened."""
    leaves: list[_Leaf] = []
    stack: list[tuple[Message, tuple[Message, ...], Message | None]] = [(message, (), None)]
    while stack:
        part, ancestors, alternative = stack.pop()
        content_type = _content_type(part)
        children = part.get_payload() if part.is_multipart() else None
        if content_type.startswith("message/") or not isinstance(children, list):
            leaves.append(_Leaf(part, content_type, ancestors, alternative, too_deep=False))
        elif len(ancestors) >= _MAX_DEPTH:
            leaves.append(_Leaf(part, content_type, ancestors, alternative, too_deep=True))
        else:
            inner = (*ancestors, part)
            closest = part if content_type == "multipart/alternative" else alternative
            stack.extend(
                (child, inner, closest)
                for child in reversed(children)
                if isinstance(child, Message)
            )
    return leaves


def _with_found_boundary(message: EmailMessage) -> EmailMessage | None:
    """The message parsed again with the first boundary line of its body, if that has parts."""
    payload = _payload_bytes(message)
    found = _BOUNDARY_LINE.search(payload[:_SALVAGE_LIMIT])
    if found is None:
        return None
    subtype = message.get_content_subtype()
    subtype = subtype if re.fullmatch(r"[a-z0-9.+-]{1,40}", subtype) else "mixed"
    boundary = found.group(1).decode("ascii")
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
    recovered = _message_from_bytes(head.encode("ascii") + payload)
    parts = recovered.get_payload()
    return recovered if recovered.is_multipart() and isinstance(parts, list) and parts else None


def _is_body_text(leaf: _Leaf) -> bool:
    if leaf.content_type not in ("text/plain", "text/html"):
        return False
    try:
        return leaf.part.get_content_disposition() != "attachment" and not leaf.part.get_filename()
    except Exception:
        return False


def _has_content(part: Message) -> bool:
    return part.is_multipart() or bool(_payload_bytes(part).strip())


def _payload_bytes(part: Message) -> bytes:
    """The payload of a part that is not multipart, as bytes; b"" when there is none."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return b""
    return payload if isinstance(payload, bytes) else b""


def _attached_message(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _content_type(part: Message) -> str:
    try:
        return _one_line(part.get_content_type()).lower()
    except Exception:
        return "application/octet-stream"


def _content_charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        return None
    cleaned = _one_line(str(charset)) if charset else ""
    return cleaned or None


def _describe_defect(defect: errors.MessageDefect) -> str:
    text = _DEFECT_TEXT.get(type(defect))
    return f"MIME: {text}" if text else f"MIME: {type(defect).__name__}"


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
    name = _one_line(_fix_8bit(name))
    name = re.split(r"[\\/]", name)[-1].strip()  # never a directory, only the name
    name = _FILENAME_UNSAFE.sub("_", name) if name not in (".", "..") else ""
    return name.strip(" .")[:200]


# --- sizes ------------------------------------------------------------------------------------


def _decoded_size(part: Message) -> int:
    """Bytes of the decoded payload, counted from the encoded text in chunks."""
    if part.is_multipart():  # an attached message: its size as it would be written out
        counter = _ByteCounter()
        generator = BytesGenerator(counter, mangle_from_=False, policy=policy.compat32)
        for inner in part.get_payload():
            if isinstance(inner, Message):
                generator.flatten(inner)
        return counter.count
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        # get_payload(decode=True) would hold the text, its lines, their join and the
        # result at once; counting the base64 alphabet holds one chunk.
        payload = part.get_payload()
        if isinstance(payload, str):
            total = 0
            for start in range(0, len(payload), _COUNT_CHUNK):
                encoded = payload[start : start + _COUNT_CHUNK].encode("ascii", "ignore")
                total += len(encoded.translate(None, _BASE64_NOISE))
            return total * 3 // 4
    decoded = part.get_payload(decode=True)
    return len(decoded) if isinstance(decoded, bytes) else 0


class _ByteCounter:
    """A write-only binary file that keeps only the number of bytes written."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)
