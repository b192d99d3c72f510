"""Header values of an incoming message as they arrived, read without anything that raises.

Each header is read on its own (`RawHeaders`), unfolded, 8-bit bytes decoded, and made one
clean line by the parser's rule: controls that are not spacing are dropped, then
`mail.headertext.one_line`. Also the Message-ID lists and the digest that finds a
message again when it arrives twice under another Message-ID.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from email.message import Message

from intake.core.addresses import HeaderClasses
from mail.headertext import one_line

REGISTRY = HeaderClasses()
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_WHITESPACE = re.compile(r"\s+")
# C0/C1 controls, lone surrogates, and the bidi embedding/override/isolate marks that can
# make a subject or name read differently from what it is.
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
# Dropped from what the parser reads, not made a space: a NUL or an escape inside a word is
# noise that the sender's mailer let through, not a word break.
_UNSPACED_CONTROLS = re.compile(r"(?!\s)[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_ANY_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_BARE_ID = re.compile(r"[^\s<>,;()\"]+@[^\s<>,;()\"]+")


class RawHeaders:
    """Header values as they arrived, unfolded, 8-bit bytes decoded; no parsing that raises."""

    def __init__(self, message: Message) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self._values.setdefault(name.lower(), []).append(unfold(fix_8bit(str(value))))

    def all(self, name: str) -> list[str]:
        return self._values.get(name, [])


def first_header(message: Message, name: str) -> str:
    for key, value in message.raw_items():
        if key.lower() == name:
            return unfold(fix_8bit(str(value)))
    return ""


def unfold(value: str) -> str:
    return _FOLD.sub("", value).strip()


def fix_8bit(value: str) -> str:
    """Raw 8-bit bytes in a header (surrogate-escaped by the parser): UTF-8, else cp1252."""
    if not _SURROGATE.search(value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def header_line(value: str) -> str:
    """A header as read: controls that are not spacing dropped (as from the body), one line."""
    return one_line(_UNSPACED_CONTROLS.sub("", value))


def decoded_header_line(value: str) -> str:
    """An unstructured header (Subject) with its encoded-words decoded, as one clean line."""
    if "=?" not in value and not _ANY_SURROGATE.search(value):
        # Nothing to decode: the header grammar gives the text back as it is (a surrogate,
        # an undecodable byte, it gives as U+FFFD), and the line is cleaned the same.
        return header_line(value)
    try:
        decoded = str(REGISTRY("subject", value))
    except Exception:
        decoded = value
    return header_line(decoded)


def message_ids(value: str) -> tuple[str, ...]:
    found = [re.sub(r"\s+", "", m) for m in _ANGLE_ID.findall(value)]
    if not found:
        found = _BARE_ID.findall(value)  # some mailers leave out the angle brackets
    ids = (_INVISIBLE.sub("", i) for i in found)
    return tuple(f"<{i}>" for i in ids if i)


def first_of(candidates: Iterator[tuple[str, ...]]) -> str | None:
    for ids in candidates:
        if ids:
            return ids[0]
    return None


def unique(items: Iterator[str] | list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def headers_digest(headers: RawHeaders, message_id: str | None) -> str:
    canonical = [
        [_WHITESPACE.sub(" ", v).strip() for v in headers.all(name)]
        for name in ("from", "date", "subject", "to")
    ]
    canonical.append([message_id or ""])
    data = json.dumps(canonical, ensure_ascii=True).encode("ascii")
    return hashlib.sha256(data).hexdigest()
