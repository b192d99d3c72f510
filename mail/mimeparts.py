"""The MIME structure of an incoming message: its parts, what each holds, and their sizes.

Memory matters here: the message is fed to the parser in chunks, and the size of a base64
attachment is counted from its encoded text without decoding it.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from email import errors, policy
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from typing import Any

from mail.rawheaders import REGISTRY, header_line

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
    if name.lower() == "content-type":
        text = "".join(_LINE_ENDS.split(value))  # as EmailPolicy.header_fetch_parse has it
        written = _plain_content_type(text)
        if written is not None:
            return _ContentTypeText(name, written, text)
    return EmailPolicy.header_fetch_parse(_READING, name, value)


# A Content-Type as most mailers write it: printable ASCII tokens, each parameter after ";"
# and one space or tab, its value a token or a quoted string without escapes; no comments,
# encoded words, RFC 2231 or repeated names.
_ATOM = r"[A-Za-z0-9!#$&^_.+-]+"
_PARAMETER = rf';[ \t]({_ATOM})=(?:({_ATOM})|"((?:(?!=\?)[ !#-\[\]-~])+)")'
_PLAIN_CONTENT_TYPE = re.compile(rf"({_ATOM}/{_ATOM})((?:{_PARAMETER})*)")
_PARAMETERS = re.compile(_PARAMETER)
_LINE_ENDS = re.compile(r"\r\n|\r|\n")


def _plain_content_type(text: str) -> str | None:
    """The text of the header object for a plain Content-Type `text`, else None.

    The object writes the type as it came and its parameters anew: each `; name="value"`
    (`email._header_value_parser.MimeParameters`).
    """
    found = _PLAIN_CONTENT_TYPE.fullmatch(text)
    if found is None:
        return None
    parameters = _PARAMETERS.findall(found.group(2))
    if len({name for name, _, _ in parameters}) < len(parameters):
        return None  # which one counts is the parser's to say
    return found.group(1) + "".join(f'; {n}="{token or quoted}"' for n, token, quoted in parameters)


class _ContentTypeText(str):
    """A Content-Type header read as the text the header object would have, parsed only
    when more than its text is asked for (`email.message` reads the text, every part a
    dozen times; the header grammar took a tenth of reading a plain patient mail)."""

    name: str
    source: str

    def __new__(cls, name: str, written: str, source: str) -> _ContentTypeText:
        made = super().__new__(cls, written)
        made.name, made.source = name, source
        return made

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(_full_header(self.name, self.source), attribute)


@functools.lru_cache(maxsize=64)
def _full_header(name: str, text: str) -> Any:
    return EmailPolicy.header_fetch_parse(_READING, name, text)


_READING = _ReadingPolicy(header_factory=REGISTRY)


def message_from_bytes(raw: bytes, *, headers_only: bool = False) -> EmailMessage:
    # Equivalent to email.message_from_bytes(raw, policy=policy.default), fed in chunks so
    # the whole message is never also held as one decoded string; long runs of base64 lines
    # are fed as one line each (see `_Elision`).
    if headers_only:
        ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
        raw = raw[: min(ends) + 1] if ends else raw
        elision = None
    else:
        elision = _Elision.of(raw)
    fed = raw if elision is None else elision.fed
    parser = BytesFeedParser(policy=_READING)
    for start in range(0, len(fed), _FEED_CHUNK):
        parser.feed(fed[start : start + _FEED_CHUNK])
    message = parser.close()
    assert isinstance(message, EmailMessage)
    if elision is not None:
        elision.restore(message)
    return message


# --- long base64 runs ---------------------------------------------------------------------

# Bytes of a base64 body and its line ends. A line of only these is never a header (no
# colon), never a boundary (no hyphen), never a header continuation (no leading blank).
_RUN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n"
_RUN_WINDOW = 16 * 1024  # bytes looked at a time when looking for runs
ELIDE_MIN = 64 * 1024  # a run shorter than this is fed to the parser as it is


class _Elision:
    """A message with each long run of base64 lines replaced by one marker line.

    The standard library's parser reads a body a line at a time, checking each line for a
    boundary: 0.4-1 s for a 10 MB attachment, which we never decode (its size is counted
    from the encoded text). A run of lines made only of base64 characters cannot contain a
    header, a boundary or a blank line that ends headers, so the parser makes the same
    decisions on one such line as on thousands: the structure it finds is the same. After
    parsing, a payload holding a marker becomes an `_ElidedText`, which gives back the
    original bytes whenever the standard library encodes it (to decode the payload), so
    reading a body or salvaging text sees exactly what arrived. This is a scan for runs,
    not a MIME parser: the structure is still the standard library's.
    """

    def __init__(self, raw: bytes, spans: list[tuple[int, int]]) -> None:
        self.raw = raw
        self.spans = spans
        token = secrets.token_hex(16)
        while token.encode("ascii") in raw:  # pragma: no cover - 128 random bits
            token = secrets.token_hex(16)
        self.marker = re.compile(f"{token}x([0-9]{{8}})")
        self.marker_length = len(token) + 9
        pieces: list[bytes] = []
        last = 0
        for n, (start, stop) in enumerate(spans):
            pieces += [raw[last:start], f"{token}x{n:08d}".encode("ascii")]
            last = stop
        pieces.append(raw[last:])
        self.fed = b"".join(pieces)

    @classmethod
    def of(cls, raw: bytes) -> _Elision | None:
        spans = _long_runs(raw)
        return cls(raw, spans) if spans else None

    def restore(self, message: Message) -> None:
        for part in message.walk():
            # The parser's own text (get_payload() would decode 8-bit text); set_payload keeps it.
            payload = getattr(part, "_payload", None)
            if isinstance(payload, str) and self.marker.search(payload):
                part.set_payload(_ElidedText(payload, self))

    def pieces(self, text: str) -> list[str | tuple[int, int]]:
        """`text` split into its own text and the spans of `raw` its markers stand for."""
        found: list[str | tuple[int, int]] = []
        last = 0
        for match in self.marker.finditer(text):
            found += [text[last : match.start()], self.spans[int(match.group(1))]]
            last = match.end()
        found.append(text[last:])
        return found


def _long_runs(raw: bytes) -> list[tuple[int, int]]:
    """Spans of `raw`, whole lines without the last line end, of base64 lines only."""
    if len(raw) < ELIDE_MIN:
        return []
    spans: list[tuple[int, int]] = []
    window = _RUN_WINDOW
    n = 0
    while n * window < len(raw):
        if raw[n * window : (n + 1) * window].translate(None, _RUN_BYTES):
            n += 1
            continue
        first = n
        while (n + 1) * window <= len(raw) and not raw[
            (n + 1) * window : (n + 2) * window
        ].translate(None, _RUN_BYTES):
            n += 1
        n += 1
        lo, hi = first * window, min(n * window, len(raw))
        start = raw.find(b"\n", lo, hi) + 1 if lo > 0 else 0
        while start < hi and raw[start] in b"\r\n":  # never a blank line: it may end headers
            start += 1
        stop = raw.rfind(b"\n", start, hi)
        if stop > 0 and raw[stop - 1] == 0x0D:
            stop -= 1
        if start > 0 and stop - start >= ELIDE_MIN // 2:
            spans.append((start, stop))
    return spans


class _ElidedText(str):
    """A payload with marker lines, that encodes back to the bytes that arrived.

    `Message.get_payload(decode=True)` encodes a str payload before decoding it; this
    answers with the original bytes (text with `surrogateescape`, as the parser decoded it).
    """

    elision: _Elision

    def __new__(cls, text: str, elision: _Elision) -> _ElidedText:
        made = super().__new__(cls, text)
        made.elision = elision
        return made

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        raw = self.elision.raw
        return b"".join(
            raw[p[0] : p[1]] if isinstance(p, tuple) else p.encode("ascii", "surrogateescape")
            for p in self.elision.pieces(self)
        )

    def base64_characters(self) -> int:
        """The base64 alphabet characters in the payload, counted without joining it."""
        raw, total = self.elision.raw, 0
        for piece in self.elision.pieces(self):
            if isinstance(piece, tuple):
                start, stop = piece
                ends = raw.count(b"\n", start, stop) + raw.count(b"\r", start, stop)
                padding = raw.find(b"=", start, stop)  # found at memchr speed: at the end
                padded = raw.count(b"=", padding, stop) if padding >= 0 else 0
                total += stop - start - ends - padded
            else:
                encoded = piece.encode("ascii", "ignore")
                total += len(encoded.translate(None, _BASE64_NOISE))
        return total

    def written_growth(self) -> int:
        """How much longer the generator would write this with its runs than with markers.

        The generator writes every line end as LF (policy.compat32): CRLF loses a byte.
        """
        raw, growth = self.elision.raw, 0
        for piece in self.elision.pieces(self):
            if isinstance(piece, tuple):
                start, stop = piece
                written = stop - start - raw.count(b"\r\n", start, stop)
                growth += written - self.elision.marker_length
        return growth

    def __reduce__(self) -> tuple[Any, ...]:  # copy and deepcopy: the text as it arrived
        return (str, (self.encode().decode("ascii", "surrogateescape"),))


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
                # The generator wrote each elided run as its marker line.
                counter.count += sum(
                    found.written_growth()
                    for found in (p.get_payload() for p in inner.walk())
                    if isinstance(found, _ElidedText)
                )
        return counter.count
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        # get_payload(decode=True) would hold the text, its lines, their join and the
        # result at once; counting the base64 alphabet holds one chunk.
        elided = getattr(part, "_payload", None)  # get_payload() would restore it whole
        if isinstance(elided, _ElidedText):
            return elided.base64_characters() * 3 // 4
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
