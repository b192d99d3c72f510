"""An incoming mail as read: what the parser gives and every mail rule reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Attachment:
    filename: str  # decoded, one line, without directories; a placeholder when it had none
    content_type: str
    size: int  # bytes of the decoded payload


@dataclass(frozen=True)
class ParsedMail:
    """One incoming mail as read; every text field is decoded and safe to show.

    Message ids are normalised to "<local@domain>". Subject, from_name, problems and
    automatic are single clean lines (no CR/LF, tabs or control characters). from_address
    and the addresses in `to` were read strictly; from_address is None when From is
    missing or not readable unambiguously. return_path is the envelope sender's addr-spec,
    "" for "<>", the cleaned raw text when it cannot be read (reply_address then refuses
    it), and None when there is no Return-Path header. text is the plain body, or the HTML
    body as text, with CRLF made LF and runs of blank lines collapsed. needs_attention is
    True when a person should look: no usable From, a MIME structure that could not be
    followed, or a message that could not be parsed whole.
    """

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_address: str | None
    from_name: str
    return_path: str | None  # addr-spec; "" for "<>"; the raw text when unreadable; None: absent
    to: tuple[str, ...]
    date: datetime | None
    text: str
    attachments: tuple[Attachment, ...]
    automatic: tuple[str, ...]
    problems: tuple[str, ...]
    needs_attention: bool
    size: int
    sha256: str
    headers_sha256: str
