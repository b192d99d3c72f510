"""The outbox: outgoing mail as rows, sent by the worker with retries.

`enqueue` adds a message to the caller's transaction, so a forward or an acknowledgement
exists exactly when the contact that caused it does. `flush` sends what is due over one
SMTP connection and commits after each message: a crash resends at most the one in
flight, with the same Message-ID. An SMTP outage postpones mail and loses none; a
permanent refusal marks the row failed, for a person to see.

Memory: a row's `raw` (a forward with the original attached can be 20 MB) is loaded only
when that row is sent and sent in chunks, so a flush holds about one message at a time.
Logs name rows by id and kind, never by address: addresses are patient data.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from intake.core.db import Database
from intake.core.locks import ExclusiveLock
from intake.core.models import OutboxMessage
from mail.compose import as_bytes

__all__ = [
    "FlushResult",
    "SmtpSettings",
    "backoff",
    "enqueue",
    "flush",
    "replied_today",
]

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]

MAX_BACKOFF = timedelta(minutes=60)
# A message the server keeps refusing "for now" (4xx) is given up after this long, as an
# MTA gives up a queued message. An outage (no connection at all) never gives up a row.
GIVE_UP_AFTER = timedelta(days=5)
_CHUNK = 1 << 20  # bytes of a message handed to the socket at a time
_ADDR_SPEC = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_OUTBOX = cast(Table, OutboxMessage.__table__)
# Built once: with small messages, building statements costs as much as sending them.
# Locked while it is sent (PostgreSQL): a second flusher skips it.
_DUE_ROW = (
    select(
        _OUTBOX.c.kind,
        _OUTBOX.c.mail_from,
        _OUTBOX.c.recipients,
        _OUTBOX.c.created_at,
        _OUTBOX.c.attempts,
        _OUTBOX.c.raw,
    )
    .where(
        _OUTBOX.c.id == bindparam("row_id"),
        _OUTBOX.c.sent_at.is_(None),
        _OUTBOX.c.failed_at.is_(None),
    )
    .with_for_update(skip_locked=True)
)
_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("row_id"))
    .values(
        attempts=bindparam("new_attempts"),
        sent_at=bindparam("new_sent_at"),
        last_error=bindparam("new_last_error"),
    )
)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    timeout: float = 30.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings | None:
        """From the app's config keys (SMTP_HOST, ...); None when no SMTP host is set."""
        host = str(config.get("SMTP_HOST") or "").strip()
        if not host:
            return None
        starttls = config.get("SMTP_STARTTLS", True)
        if isinstance(starttls, str):
            starttls = starttls.strip().lower() not in ("0", "false", "no", "off")
        return cls(
            host=host,
            port=int(config.get("SMTP_PORT") or 587),
            user=str(config.get("SMTP_USER") or ""),
            password=str(config.get("SMTP_PASSWORD") or ""),
            starttls=bool(starttls),
        )


@dataclass(frozen=True)
class FlushResult:
    sent: int
    postponed: int
    failed: int


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed try: 1, 2, 4, 8 … minutes, at most 60."""
    minutes = 2 ** (min(max(attempts, 1), 7) - 1)
    return min(timedelta(minutes=minutes), MAX_BACKOFF)


def enqueue(
    session: Session,
    message: EmailMessage,
    *,
    kind: str,
    contact_id: int | None,
    now: datetime,
    auto_reply_to: str | None = None,
    mail_from: str | None = None,
) -> OutboxMessage:
    """Add `message` to the outbox in `session`'s transaction (the caller commits).

    The envelope sender is `mail_from` when given ("" for the null sender), else the From
    address; the recipients are the To, Cc and Bcc addresses, and Bcc is left out of the
    stored message. `auto_reply_to` marks an acknowledgement, for `replied_today`.
    """
    message_id = str(message.get("Message-ID", "")).strip()
    if not message_id:
        raise ValueError("an outgoing message needs a Message-ID")
    recipients = _recipients(message)
    if not recipients:
        raise ValueError("an outgoing message needs at least one recipient")
    if mail_from is None:
        senders = _addresses(message, "From")
        if len(senders) != 1:
            raise ValueError("an outgoing message needs one From address (or a mail_from)")
        mail_from = senders[0]
    elif mail_from:
        mail_from = _checked_address(mail_from)
    row = OutboxMessage(
        contact_id=contact_id,
        kind=kind,
        message_id=message_id,
        mail_from=mail_from,
        recipients=recipients,
        auto_reply_to=_checked_address(auto_reply_to).lower() if auto_reply_to else None,
        raw=_serialise(message),
        created_at=now,
        next_attempt_at=now,
        attempts=0,
        last_error="",
    )
    session.add(row)
    return row


def replied_today(session: Session, address: str, now: datetime, tz: tzinfo) -> bool:
    """Whether an acknowledgement to `address` was queued on `now`'s calendar day in `tz`.

    Sent, waiting or refused: any of them counts, so a sender gets at most one a day.
    """
    day = now.astimezone(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    query = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.auto_reply_to == address.strip().lower(),
            OutboxMessage.created_at >= start,
            OutboxMessage.created_at < end,
        )
        .limit(1)
    )
    return session.scalar(query) is not None


def flush(
    session_factory: SessionFactory | Database,
    settings: SmtpSettings,
    now: Callable[[], datetime],
    *,
    connect: Callable[[SmtpSettings], smtplib.SMTP] | None = None,
    limit: int = 500,
) -> FlushResult:
    """Send the due messages, oldest first, over one connection. Never raises for SMTP
    trouble: it is logged, and the rows say what happened. Database errors do raise."""
    sessions = session_factory.session if isinstance(session_factory, Database) else session_factory
    # One sender at a time across processes: SQLite has no SKIP LOCKED, and two flushes
    # side by side would send the same rows twice.
    lock = (
        ExclusiveLock(session_factory.engine, "outbox", now)
        if isinstance(session_factory, Database)
        else None
    )
    if lock is not None and not lock.acquire():
        log.info("outbox: another process is sending")
        return FlushResult(0, 0, 0)
    try:
        return _flush(sessions, settings, now, connect=connect, limit=limit, lock=lock)
    finally:
        if lock is not None:
            lock.release()


def _flush(
    sessions: SessionFactory,
    settings: SmtpSettings,
    now: Callable[[], datetime],
    *,
    connect: Callable[[SmtpSettings], smtplib.SMTP] | None,
    limit: int,
    lock: ExclusiveLock | None,
) -> FlushResult:
    with sessions() as session:
        due = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.failed_at.is_(None),
                    OutboxMessage.next_attempt_at <= now(),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            )
        )
    if not due:
        return FlushResult(0, 0, 0)
    counts = {"sent": 0, "postponed": 0, "failed": 0}
    try:
        smtp = _open(connect or _connect, settings)
    except _ConnectionTrouble as trouble:
        log.log(trouble.level, "outbox: cannot send: %s", trouble.summary)
        _charge(sessions, due[0], str(trouble), now, rest=due[1:])
        return FlushResult(0, len(due), 0)
    try:
        for position, row_id in enumerate(due):
            try:
                outcome = _send_one(sessions, smtp, row_id, now)
            except _ConnectionTrouble as trouble:
                left = len(due) - position
                log.warning("outbox: connection lost (%s); %d for later", trouble.summary, left)
                _charge(sessions, row_id, str(trouble), now, rest=due[position + 1 :])
                counts["postponed"] += left
                break
            if outcome is not None:
                counts[outcome] += 1
            if lock is not None and not lock.renew():
                log.error("outbox: lost the sending lock; stopping this flush")
                counts["postponed"] += len(due) - position - 1
                break
    finally:
        _close(smtp)
    result = FlushResult(**counts)
    log.info("outbox: %(sent)d sent, %(postponed)d postponed, %(failed)d failed", counts)
    return result


# --- sending ----------------------------------------------------------------------------


class _ConnectionTrouble(Exception):
    """The connection cannot carry mail now: stop this flush, try again later.

    `summary` is for the log: the stage and code, without the server's words, which often
    repeat an address.
    """

    def __init__(
        self, text: str, level: int = logging.WARNING, *, summary: str | None = None
    ) -> None:
        super().__init__(text)
        self.level = level
        self.summary = summary or text


class _Refused(Exception):
    """The server refused this one message (4xx: for now; 5xx: for good)."""

    def __init__(self, text: str, *, permanent: bool, summary: str) -> None:
        super().__init__(text)
        self.permanent = permanent
        self.summary = summary
        self.given_up = False  # refused for now, but for too long


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.port == 465:  # implicit TLS ("submissions", RFC 8314)
        return smtplib.SMTP_SSL(
            settings.host,
            settings.port,
            timeout=settings.timeout,
            context=ssl.create_default_context(),
        )
    return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)


def _open(connect: Callable[[SmtpSettings], smtplib.SMTP], settings: SmtpSettings) -> smtplib.SMTP:
    """A connection ready to send: EHLO, STARTTLS when asked (and not already on TLS), login."""
    try:
        smtp = connect(settings)
    except (smtplib.SMTPException, OSError) as exc:
        raise _ConnectionTrouble(f"no connection to the SMTP server ({_describe(exc)})") from exc
    try:
        smtp.ehlo()
        if settings.starttls and not isinstance(smtp.sock, ssl.SSLSocket):
            if not smtp.has_extn("starttls"):
                raise _ConnectionTrouble(
                    "the SMTP server does not offer STARTTLS; not sending in the clear",
                    logging.ERROR,
                )
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.user:
            try:
                smtp.login(settings.user, settings.password)
            except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as exc:
                # A setting to fix, not a passing fault: an error in the log.
                text = f"SMTP login refused ({_describe(exc)})"
                raise _ConnectionTrouble(text, logging.ERROR) from exc
    except _ConnectionTrouble:
        _close(smtp)
        raise
    except (smtplib.SMTPException, OSError) as exc:
        _close(smtp)
        raise _ConnectionTrouble(f"SMTP connection failed ({_describe(exc)})") from exc
    return smtp


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _send_one(
    sessions: SessionFactory, smtp: smtplib.SMTP, row_id: int, now: Callable[[], datetime]
) -> str | None:
    """Send one row and record the outcome; which outcome, or None when it was not due.

    Plain SELECT and UPDATE statements, not the ORM's unit of work: with small messages the
    bookkeeping would otherwise cost more than sending them.
    """
    with sessions() as session:
        row = session.execute(_DUE_ROW, {"row_id": row_id}).one_or_none()
        if row is None:  # sent or refused meanwhile, or being sent by another flush
            return None
        kind, created_at, attempts = row.kind, row.created_at, row.attempts + 1
        try:
            refused = _transaction(smtp, row.mail_from, list(row.recipients), row.raw)
        except _Refused as refusal:
            del row  # the message's bytes: not held a moment longer than needed
            _record_refusal(session, row_id, kind, created_at, attempts, refusal, now())
            session.commit()
            return "failed" if refusal.permanent or refusal.given_up else "postponed"
        del row
        if refused:
            log.warning("outbox: %s %d sent, %d recipients refused", kind, row_id, len(refused))
        session.execute(
            _MARK_SENT,
            {
                "row_id": row_id,
                "new_attempts": attempts,
                "new_sent_at": now(),
                "new_last_error": _refused_text(refused),
            },
        )
        session.commit()
        return "sent"


def _record_refusal(
    session: Session,
    row_id: int,
    kind: str,
    created_at: datetime,
    attempts: int,
    refusal: _Refused,
    at: datetime,
) -> None:
    values: dict[str, Any] = {"attempts": attempts, "last_error": str(refusal)[:2000]}
    if isinstance(refusal, _SomeRefused) and refusal.keep:
        values["recipients"] = refusal.keep  # those refused for good are not tried again
    refusal.given_up = not refusal.permanent and at - created_at >= GIVE_UP_AFTER
    if refusal.permanent or refusal.given_up:
        values["failed_at"] = at
        log.error("outbox: %s %d refused for good: %s", kind, row_id, refusal.summary)
    else:
        values["next_attempt_at"] = at + backoff(attempts)
        log.warning(
            "outbox: %s %d refused for now (%s); again in %s",
            kind,
            row_id,
            refusal.summary,
            backoff(attempts),
        )
    session.execute(update(_OUTBOX).where(_OUTBOX.c.id == row_id).values(**values))


def _charge(
    sessions: SessionFactory,
    row_id: int,
    error: str,
    now: Callable[[], datetime],
    *,
    rest: Sequence[int] = (),
) -> None:
    """Count a failed try against the row that was in flight, and wait before the next.

    The connection failed, not the other messages: `rest` wait as long as the row in
    flight, without an attempt counted against them, so an outage backs off however much
    mail is waiting.
    """
    with sessions() as session:
        row = session.get(OutboxMessage, row_id, with_for_update={"skip_locked": True})
        if row is None or row.sent_at is not None or row.failed_at is not None:
            return
        row.attempts += 1
        row.next_attempt_at = now() + backoff(row.attempts)
        row.last_error = error[:2000]
        if rest:
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(list(rest)),
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.next_attempt_at < row.next_attempt_at,
                )
                .values(next_attempt_at=row.next_attempt_at)
            )
        session.commit()


class _SomeRefused(_Refused):
    """Every recipient refused; `keep` are those refused only for now (to try again)."""

    def __init__(self, text: str, *, permanent: bool, summary: str, keep: list[str]) -> None:
        super().__init__(text, permanent=permanent, summary=summary)
        self.keep = keep


def _transaction(
    smtp: smtplib.SMTP, mail_from: str, recipients: list[str], raw: bytes
) -> dict[str, tuple[int, bytes]]:
    """MAIL, RCPT, DATA for one message; the recipients refused when others accepted it.

    What `smtplib.SMTP.sendmail` does, except that the message goes out in chunks instead
    of as one dot-stuffed copy (two copies of a 20 MB forward otherwise).
    """
    try:
        smtp.ehlo_or_helo_if_needed()
        options: list[str] = []
        if smtp.does_esmtp:
            if smtp.has_extn("size"):
                options.append(f"SIZE={len(raw)}")
            if not raw.isascii() and smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
        code, reply = smtp.mail(mail_from, options)
        if code != 250:
            _refused(smtp, code, reply, "MAIL FROM")
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
                if code == 421:
                    _refused(smtp, code, reply, "RCPT TO")
        if len(refused) == len(recipients):
            _reset(smtp)
            keep = [r for r, (code, _reply) in refused.items() if code < 500]
            codes = ", ".join(str(code) for code, _reply in refused.values())
            raise _SomeRefused(
                "every recipient refused: " + _refused_text(refused),
                permanent=not keep,
                summary=f"RCPT TO: {codes}",
                keep=keep if len(keep) < len(recipients) else [],
            )
        code, reply = _data(smtp, raw)
        if code != 250:
            _refused(smtp, code, reply, "DATA")
        return refused
    except smtplib.SMTPResponseException as exc:
        # e.g. a HELO refused: nothing to do with this message.
        raise _ConnectionTrouble(_describe(exc)) from exc
    except (smtplib.SMTPException, OSError) as exc:  # disconnected, timed out, reset
        raise _ConnectionTrouble(_describe(exc)) from exc


def _refused(smtp: smtplib.SMTP, code: int, reply: bytes, stage: str) -> None:
    text, summary = f"{stage}: {code} {_reply_text(reply)}", f"{stage}: {code}"
    if code == 421 or code < 400:  # the server is closing, or talks nonsense
        smtp.close()
        raise _ConnectionTrouble(text, summary=summary)
    _reset(smtp)
    raise _Refused(text, permanent=code >= 500, summary=summary)


def _reset(smtp: smtplib.SMTP) -> None:
    # As smtplib does: a server already gone shows up at the next command.
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def _data(smtp: smtplib.SMTP, raw: bytes) -> tuple[int, bytes]:
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        return code, reply
    for chunk in _dot_stuffed(raw):
        smtp.send(chunk)
    return smtp.getreply()


def _dot_stuffed(raw: bytes) -> Iterator[bytes]:
    """`raw` in pieces of about _CHUNK bytes, cut after a line end, a leading "." doubled;
    the last ends with the end-of-data line (in the same write: a small write of its own
    waits for the server's delayed ACK, 40 ms a message)."""
    start = 0
    while True:
        end = raw.find(b"\n", start + _CHUNK)
        end = len(raw) if end < 0 else end + 1
        chunk = _LEADING_DOT.sub(b"..", raw[start:end])
        if end < len(raw):
            yield chunk
            start = end
            continue
        yield chunk + (b".\r\n" if chunk.endswith(b"\r\n") or not chunk else b"\r\n.\r\n")
        return


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_reply_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:500]


def _refused_text(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{r}: {code} {_reply_text(reply)}" for r, (code, reply) in refused.items())


# --- storing ------------------------------------------------------------------------------


def _serialise(message: EmailMessage) -> bytes:
    """The bytes to send: SMTP line ends, no Bcc; refused if a header would split in two."""
    hidden = message.get_all("Bcc") or []
    del message["Bcc"]
    try:
        data = as_bytes(message)
    except MessageError as exc:  # newer Pythons check headers themselves (HeaderWriteError)
        raise ValueError(f"the message cannot be written: {exc}") from exc
    finally:
        for value in hidden:
            message["Bcc"] = value
    _check_headers(data, len(message) - len(hidden))
    return data


def _check_headers(data: bytes, expected: int) -> None:
    """As many header fields in `data` as the message has: no value turned into a header.

    Defence in depth: Python before 3.11.10 does not check what it writes (gh-121650).
    """
    end = _HEADER_END.search(data)
    block = data[: end.start()] if end else data
    fields = sum(1 for line in block.splitlines() if line and line[:1] not in (b" ", b"\t"))
    if fields != expected:
        raise ValueError(f"the message's headers do not write out as {expected} fields")


def _recipients(message: EmailMessage) -> list[str]:
    found = [a for name in ("To", "Cc", "Bcc") for a in _addresses(message, name)]
    unique: dict[str, str] = {}
    for address in found:
        unique.setdefault(address.lower(), address)
    return list(unique.values())


def _addresses(message: EmailMessage, name: str) -> list[str]:
    found: list[str] = []
    for value in message.get_all(name) or []:
        addresses = getattr(value, "addresses", None)
        if addresses is not None:
            found += [_checked_address(a.addr_spec) for a in addresses]
        else:
            found += [_checked_address(a) for _name, a in getaddresses([str(value)]) if a]
    return found


def _checked_address(address: str) -> str:
    """A plain ASCII addr-spec, safe in an SMTP command; ValueError for anything else."""
    if not _ADDR_SPEC.fullmatch(address):
        raise ValueError(f"not an address we can send to: {address!r}")
    return address
