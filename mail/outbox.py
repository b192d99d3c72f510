"""The outbox: outgoing mail as rows, sent by the worker with retries.

`enqueue` adds a message to the caller's transaction, so a forward or an acknowledgement
exists exactly when the contact that caused it does. `flush` sends what is due over one
SMTP connection (the session itself is mail/smtp.py) and commits after each message: a
crash resends at most the one in flight, with the same Message-ID. An SMTP outage
postpones mail and loses none; a permanent refusal marks the row failed, for a person to
see.

A forward's row holds the forward without the patient's original, which is stored once,
in mail_message, and joined in when it is sent (`outbox_row`). Memory: a row's bytes (a
forward with its original can be 20 MB) are read only when that row is sent, into one
buffer, and sent in chunks, so a flush holds about one message at a time.
Logs name rows by id and kind, never by address: addresses are patient data.
"""

from __future__ import annotations

import logging
import re
import smtplib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    case,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session

from intake.core.addresses import strict_address
from intake.core.db import LARGE_BLOB, Database, insert_many, read_blob
from intake.core.locks import ExclusiveLock
from intake.core.models import MailMessage, OutboxMessage
from mail.compose import joined, written_apart
from mail.smtp import (
    ConnectionTrouble,
    Refused,
    SmtpSettings,
    SomeRefused,
    close,
    open_session,
    refused_text,
    transaction,
)
from mail.smtp import connect as default_connect
from routing.desk import Mailbox

__all__ = [
    "DEFAULT_ACCOUNT",
    "FlushResult",
    "SmtpSettings",
    "account_of",
    "backoff",
    "due_accounts",
    "enqueue",
    "flush",
    "message_bytes",
    "replied_today",
]

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]

# The account of rows sent through the INTAKE_SMTP_* settings (every row, before there
# were several mailboxes); a [[mailbox]] with its own `smtp` is its address, lower-case.
DEFAULT_ACCOUNT = ""

MAX_BACKOFF = timedelta(minutes=60)
# A message the server keeps refusing "for now" (4xx) is given up after this long, as an
# MTA gives up a queued message. An outage (no connection at all) never gives up a row.
GIVE_UP_AFTER = timedelta(days=5)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_OUTBOX = cast(Table, OutboxMessage.__table__)
_MESSAGES = cast(Table, MailMessage.__table__)
# Built once: with small messages, building statements costs as much as sending them.
# Locked while it is sent (PostgreSQL): a second flusher skips it. With it come the sizes
# of its bytes and of a forward's original, and the bytes themselves when they are small:
# most rows take no other statement to read.
_ORIGINALS = _MESSAGES.alias("original")
_INLINE: ColumnElement[int] = literal_column(str(LARGE_BLOB))
_DUE_ROW = (
    select(
        _OUTBOX.c.kind,
        _OUTBOX.c.mail_from,
        _OUTBOX.c.recipients,
        _OUTBOX.c.created_at,
        _OUTBOX.c.attempts,
        _OUTBOX.c.original_id,
        _OUTBOX.c.original_at,
        case((func.length(_OUTBOX.c.raw) < _INLINE, _OUTBOX.c.raw)).label("raw"),
        case((func.length(_ORIGINALS.c.raw) < _INLINE, _ORIGINALS.c.raw)).label("original"),
    )
    .select_from(_OUTBOX.outerjoin(_ORIGINALS, _ORIGINALS.c.id == _OUTBOX.c.original_id))
    .where(
        _OUTBOX.c.id == bindparam("row_id"),
        _OUTBOX.c.sent_at.is_(None),
        _OUTBOX.c.failed_at.is_(None),
    )
    .with_for_update(of=_OUTBOX, skip_locked=True)
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
class FlushResult:
    sent: int
    postponed: int
    failed: int
    # How the SMTP connection went: None when nothing was due (not tried), "" when it
    # carried the mail, else why it could not (the trouble's summary, for the mailbox's state).
    connection: str | None = field(default=None, compare=False)


def account_of(mailbox: Mailbox | None) -> str:
    """The SMTP account that sends a mailbox's mail: its own when it has `smtp`."""
    if mailbox is None or mailbox.smtp is None:
        return DEFAULT_ACCOUNT
    return mailbox.address.casefold()


def due_accounts(session: Session, now: datetime) -> list[str]:
    """The SMTP accounts that have mail due now."""
    return sorted(
        session.scalars(
            select(OutboxMessage.smtp_account)
            .where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.failed_at.is_(None),
                OutboxMessage.next_attempt_at <= now,
            )
            .distinct()
        )
    )


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
    smtp_account: str = DEFAULT_ACCOUNT,
    original: MailMessage | None = None,
) -> OutboxMessage:
    """Add `message` to the outbox in `session`'s transaction (the caller commits).

    The envelope sender is `mail_from` when given ("" for the null sender), else the From
    address; the recipients are the To, Cc and Bcc addresses, and Bcc is left out of the
    stored message. `auto_reply_to` marks an acknowledgement, for `replied_today`;
    `smtp_account` says which account sends it (see `account_of`). `original`: the stored
    mail a forward attaches (flushed: it has its id), not stored a second time here.
    """
    if original is not None and original.id is None:
        raise ValueError("the original of a forward is stored (flushed) before the forward")
    values = outbox_row(
        message,
        kind=kind,
        contact_id=contact_id,
        now=now,
        auto_reply_to=auto_reply_to,
        mail_from=mail_from,
        smtp_account=smtp_account,
        original=original.raw if original is not None else None,
    )
    if values["original_at"] is not None:
        assert original is not None
        values["original_id"] = original.id
    row = OutboxMessage(**values)
    session.add(row)
    return row


def outbox_row(
    message: EmailMessage,
    *,
    kind: str,
    contact_id: int | None,
    now: datetime,
    auto_reply_to: str | None = None,
    mail_from: str | None = None,
    smtp_account: str = DEFAULT_ACCOUNT,
    original: bytes | None = None,
) -> dict[str, Any]:
    """The outbox row of `message`, checked and written out, as column values (`enqueue`
    adds it through the ORM; a batch of mail inserts many at once, `insert_rows`).

    `original`: the bytes of a stored message that `message` attaches whole (a forward).
    They are left out of the row's `raw`, and `original_at` says where they go; the caller
    sets `original_id`, the stored message's id. When the message attaches them changed
    (its line ends made CRLF, say), or not at all, the row holds every byte itself.
    """
    # As it is written out (ours are set as text, `set_raw`): not parsed again to read it.
    message_id = next(
        (str(v) for k, v in message.raw_items() if k.lower() == "message-id"), ""
    ).strip()
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
    raw, original_at = _serialise(message, original)
    return {
        "contact_id": contact_id,
        "kind": kind,
        "message_id": message_id,
        "mail_from": mail_from,
        "smtp_account": smtp_account,
        "recipients": recipients,
        "auto_reply_to": _checked_address(auto_reply_to).lower() if auto_reply_to else None,
        "raw": raw,
        "original_id": None,
        "original_at": original_at,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
        "last_error": "",
    }


def insert_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add the outbox rows made by `outbox_row`, in one statement, in `session`'s transaction."""
    if any(row["original_at"] is not None and row["original_id"] is None for row in rows):
        raise ValueError("a forward without its original needs the stored message's id")
    insert_many(session, _OUTBOX, rows, blob="raw")


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
    account: str | None = None,
    quiet: bool = False,
) -> FlushResult:
    """Send the due messages, oldest first, over one connection. Never raises for SMTP
    trouble: it is logged, and the rows say what happened. Database errors do raise.

    `account`: only the rows of that SMTP account (each account has its own lock); None:
    every row, through `settings` (the one-account desk). `quiet`: the caller keeps the
    connection's state (`FlushResult.connection`) and logs its changes, so a connection
    that cannot be had is logged here at INFO only.
    """
    sessions = session_factory.session if isinstance(session_factory, Database) else session_factory
    # One sender at a time across processes: SQLite has no SKIP LOCKED, and two flushes
    # side by side would send the same rows twice.
    lock_name = "outbox" if not account else f"outbox:{account}"[:100]
    lock = (
        ExclusiveLock(session_factory.engine, lock_name, now)
        if isinstance(session_factory, Database)
        else None
    )
    if lock is not None and not lock.acquire():
        log.info("outbox: another process is sending")
        return FlushResult(0, 0, 0)
    try:
        return _flush(
            sessions,
            settings,
            now,
            connect=connect,
            limit=limit,
            lock=lock,
            account=account,
            quiet=quiet,
        )
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
    account: str | None = None,
    quiet: bool = False,
) -> FlushResult:
    query = select(OutboxMessage.id).where(
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed_at.is_(None),
        OutboxMessage.next_attempt_at <= now(),
    )
    if account is not None:
        query = query.where(OutboxMessage.smtp_account == account)
    with sessions() as session:
        due = list(session.scalars(query.order_by(OutboxMessage.id).limit(limit)))
    if not due:
        return FlushResult(0, 0, 0)
    counts = {"sent": 0, "postponed": 0, "failed": 0}
    try:
        smtp = open_session(connect or default_connect, settings)
    except ConnectionTrouble as trouble:
        log.log(
            logging.INFO if quiet else trouble.level, "outbox: cannot send: %s", trouble.summary
        )
        _charge(sessions, due[0], str(trouble), now, rest=due[1:])
        return FlushResult(0, len(due), 0, connection=trouble.summary)
    connection = ""
    try:
        for position, row_id in enumerate(due):
            try:
                outcome = _send_one(sessions, smtp, row_id, now)
            except ConnectionTrouble as trouble:
                left = len(due) - position
                log.warning("outbox: connection lost (%s); %d for later", trouble.summary, left)
                _charge(sessions, row_id, str(trouble), now, rest=due[position + 1 :])
                counts["postponed"] += left
                connection = trouble.summary
                break
            if outcome is not None:
                counts[outcome] += 1
            if lock is not None and not lock.renew():
                log.error("outbox: lost the sending lock; stopping this flush")
                counts["postponed"] += len(due) - position - 1
                break
    finally:
        close(smtp)
    result = FlushResult(**counts, connection=connection)
    log.info("outbox: %(sent)d sent, %(postponed)d postponed, %(failed)d failed", counts)
    return result


# --- sending and recording what happened -------------------------------------------------


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
        raw = _bytes_of(session, row_id, row)
        try:
            refused = transaction(smtp, row.mail_from, list(row.recipients), raw)
        except Refused as refusal:
            del raw  # the message's bytes: not held a moment longer than needed
            outcome = _record_refusal(session, row_id, kind, created_at, attempts, refusal, now())
            session.commit()
            return outcome
        del raw
        if refused:
            log.warning("outbox: %s %d sent, %d recipients refused", kind, row_id, len(refused))
        session.execute(
            _MARK_SENT,
            {
                "row_id": row_id,
                "new_attempts": attempts,
                "new_sent_at": now(),
                "new_last_error": refused_text(refused),
            },
        )
        session.commit()
        return "sent"


def message_bytes(session: Session, row_id: int) -> bytes | bytearray:
    """The bytes a row sends, a forward's original joined in (see `outbox_row`)."""
    original_id, original_at = session.execute(
        select(_OUTBOX.c.original_id, _OUTBOX.c.original_at).where(_OUTBOX.c.id == row_id)
    ).one()
    return _raw_of(session, row_id, original_id, original_at)


def _bytes_of(session: Session, row_id: int, row: Any) -> bytes | bytearray:
    """A due row's bytes (`row`, from `_DUE_ROW`), from what came with it when small."""
    if row.raw is not None and row.original_id is None:
        return bytes(row.raw)
    if row.raw is not None and row.original is not None:
        return joined(row.raw, [(row.original_at, row.original)])
    return _raw_of(session, row_id, row.original_id, row.original_at)


def _raw_of(
    session: Session, row_id: int, original_id: int | None, original_at: int | None
) -> bytes | bytearray:
    """A row's bytes, read in the transaction that locked the row, in one buffer: a 20 MB
    forward is held once (`read_blob`)."""
    data = read_blob(session, _OUTBOX, row_id, blob="raw")
    if original_id is None or original_at is None:
        return data
    before, after = bytes(data[:original_at]), bytes(data[original_at:])
    del data
    try:
        return read_blob(session, _MESSAGES, original_id, blob="raw", before=before, after=after)
    except LookupError:  # removed with its contact, and the row with it: not reached
        raise LookupError(f"the original of outbox row {row_id} is no longer stored") from None


def _record_refusal(
    session: Session,
    row_id: int,
    kind: str,
    created_at: datetime,
    attempts: int,
    refusal: Refused,
    at: datetime,
) -> str:
    """Record the refusal on the row; "failed" when it is for good (or has gone on too
    long), "postponed" when the row is tried again later."""
    values: dict[str, Any] = {"attempts": attempts, "last_error": str(refusal)[:2000]}
    if isinstance(refusal, SomeRefused) and refusal.keep:
        values["recipients"] = refusal.keep  # those refused for good are not tried again
    given_up = not refusal.permanent and at - created_at >= GIVE_UP_AFTER
    outcome = "failed" if refusal.permanent or given_up else "postponed"
    if outcome == "failed":
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
    return outcome


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


# --- storing ------------------------------------------------------------------------------


def _serialise(message: EmailMessage, original: bytes | None) -> tuple[bytes, int | None]:
    """The bytes to send: SMTP line ends, no Bcc; refused if a header would split in two.

    With `original` (see `outbox_row`): the bytes without it and where it goes, when the
    message attaches it as it is; else every byte, and None.
    """
    hidden = message.get_all("Bcc") or []
    del message["Bcc"]
    try:
        data, originals = written_apart(message)
    except MessageError as exc:  # newer Pythons check headers themselves (HeaderWriteError)
        raise ValueError(f"the message cannot be written: {exc}") from exc
    finally:
        for value in hidden:
            message["Bcc"] = value
    _check_headers(data, len(message) - len(hidden))
    left_out: int | None = None
    if original is not None and len(originals) == 1:
        at, attached = originals[0]
        if attached is original or attached == original:
            left_out, originals = at, []
    if originals:
        data = joined(data, originals)
    return data, left_out


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
    if strict_address(address) != address:
        raise ValueError(f"not an address we can send to: {address!r}")
    return address
