"""The MIME structure of an incoming message: its parts, what each holds, and their sizes.

Memory matters here: the message is fed to the parser in chunks, and the size of a base64
attachment is counted from its encoded text without decoding it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email import errors, policy
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from typing import Any

from mail.rawheaders import header_line

_FEED_CHUNK = 1 << 20  # bytes handed to the parser at a time
_COUNT_CHUNK = 1 << 20  # characters of an encoded payload counted at a time
_MAX_DEPTH = 32  # MIME nesting we follow; deeper parts are reported, not read
SALVAGE_LIMIT = 64 * 1024  # characters of raw body shown when the structure is broken
# A boundary line (RFC 2046: 1-70 characters from a small set) at the start of a line.
_BOUNDARY_LINE = re.compile(rb"^--([0-9A-Za-z'()+_,./:=?-]{1,70})[ \t]*\r?$", re.MULTILINE)
_BASE64_NOISE = bytes(
    sorted(
        set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    )
)
# Defects that mean the MIME structure could not be followed: a person must look.
STRUCTURE_DEFECTS = (
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


class _ReadingPolicy(EmailPolicy):
    """`policy.default`, except that a header read again is not parsed again.

    `policy.default` builds a new header object from the raw text at every read, and the
    standard library reads Content-Type a dozen times a part (the content type, its main
    type, each parameter); the objects are immutable, so the same text gives back the same
    object. This was half the time of reading a patient's mail.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        return _parsed_header(name, value)


@functools.lru_cache(maxsize=256)
def _parsed_header(name: str, value: str) -> Any:
    return policy.default.header_fetch_parse(name, value)


_READING = _ReadingPolicy()


def message_from_bytes(raw: bytes, *, headers_only: bool = False) -> EmailMessage:
    # Equivalent to email.message_from_bytes(raw, policy=policy.default), fed in chunks so
    # the whole message is never also held as one decoded string.
    if headers_only:
        ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
        raw = raw[: min(ends) + 1] if ends else raw
    parser = BytesFeedParser(policy=_READING)
    for start in range(0, len(raw), _FEED_CHUNK):
        parser.feed(raw[start : start + _FEED_CHUNK])
    message = parser.close()
    assert isinstance(message, EmailMessage)
    return message


@dataclass(frozen=True, eq=False)
class Leaf:
    """A part that is not a multipart container, with what the reading needs to know."""

    part: Message
    content_type: str
    ancestors: tuple[Message, ...]  # the multipart containers above it, outermost first
    alternative: Message | None  # the closest multipart/alternative among them
    too_deep: bool  # a container nested beyond _MAX_DEPTH, left unread


def leaves_of(message: Message) -> list[Leaf]:
    """Every non-multipart part in order; attached messages (message/*) are not opened."""
    leaves: list[Leaf] = []
    stack: list[tuple[Message, tuple[Message, ...], Message | None]] = [(message, (), None)]
    while stack:
        part, ancestors, alternative = stack.pop()
        content_type = part_content_type(part)
        children = part.get_payload() if part.is_multipart() else None
        if content_type.startswith("message/") or not isinstance(children, list):
            leaves.append(Leaf(part, content_type, ancestors, alternative, too_deep=False))
        elif len(ancestors) >= _MAX_DEPTH:
            leaves.append(Leaf(part, content_type, ancestors, alternative, too_deep=True))
        else:
            inner = (*ancestors, part)
            closest = part if content_type == "multipart/alternative" else alternative
            stack.extend(
                (child, inner, closest)
                for child in reversed(children)
                if isinstance(child, Message)
            )
    return leaves


def with_found_boundary(message: EmailMessage) -> EmailMessage | None:
    """The message parsed again with the first boundary line of its body, if that has parts."""
    payload = payload_bytes(message)
    found = _BOUNDARY_LINE.search(payload[:SALVAGE_LIMIT])
    if found is None:
        return None
    subtype = message.get_content_subtype()
    subtype = subtype if re.fullmatch(r"[a-z0-9.+-]{1,40}", subtype) else "mixed"
    boundary = found.group(1).decode("ascii")
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
    recovered = message_from_bytes(head.encode("ascii") + payload)
    parts = recovered.get_payload()
    return recovered if recovered.is_multipart() and isinstance(parts, list) and parts else None


def is_body_text(leaf: Leaf) -> bool:
    if leaf.content_type not in ("text/plain", "text/html"):
        return False
    try:
        return leaf.part.get_content_disposition() != "attachment" and not leaf.part.get_filename()
    except Exception:
        return False


def has_content(part: Message) -> bool:
    return part.is_multipart() or bool(payload_bytes(part).strip())


def payload_bytes(part: Message) -> bytes:
    """The payload of a part that is not multipart, as bytes; b"" when there is none."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return b""
    return payload if isinstance(payload, bytes) else b""


def attached_message(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def part_content_type(part: Message) -> str:
    try:
        return header_line(part.get_content_type()).lower()
    except Exception:
        return "application/octet-stream"


def part_charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        return None
    cleaned = header_line(str(charset)) if charset else ""
    return cleaned or None


def describe_defect(defect: errors.MessageDefect) -> str:
    text = _DEFECT_TEXT.get(type(defect))
    return f"MIME: {text}" if text else f"MIME: {type(defect).__name__}"


# --- sizes ------------------------------------------------------------------------------------


def decoded_size(part: Message) -> int:
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
