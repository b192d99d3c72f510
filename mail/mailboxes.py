"""Polling every mailbox of the desk, each on its own.

Each mailbox is polled under its own database lock with its own folder position (both are
keyed by its account: see mail/poller.py), up to PARALLEL_POLLS of them at once. One that
fails (unreachable, a refused sign-in, a secret not set) or takes its time does not hold
up the others: its failure is kept in `mailbox_status` and logged when it starts (or
changes: judged without the ids and timestamps a server puts in each refusal, such as
Entra ID's Trace ID), and once more when the mailbox works again, never at every poll. A
mailbox's own SMTP account is kept the same way by the outbox job (`record_sending`). The
state of a mailbox taken out of the definition is let go at the next round. A failure of
the database under a mailbox's poll is not the mailbox's: it is raised to the job, and the
mailbox's state is left as it was. The desk is read at every round, so a mailbox added to
the definition is polled from the next round on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from imapclient import IMAPClient
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from intake.core.db import database, is_database_failure
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError
from intake.core.models import SENDING, MailboxStatus
from routing.desk import Desk

from .accounts import ImapAccount, imap_accounts
from .poller import ImapSettings, PollResult, connect, poll

__all__ = [
    "MailboxRound",
    "failure_text",
    "forget_statuses",
    "has_own_mailboxes",
    "poll_every_mailbox",
    "poll_one_mailbox",
    "poll_the_configured_mailbox",
    "record_sending",
    "same_problem",
]

log = logging.getLogger(__name__)

# How many mailboxes one round polls at once (each on a connection of its own, and on a
# database connection of the pool while it writes).
PARALLEL_POLLS = 4


@dataclass(frozen=True)
class MailboxRound:
    """What one round did for one mailbox: its result, or the error that stopped it."""

    key: str
    name: str
    result: PollResult | None
    error: str = ""


def failure_text(exc: BaseException) -> str:
    """The error as the server or library put it; bytes from imaplib shown as text."""
    detail = exc.args[0] if len(exc.args) == 1 else exc
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    text = str(detail)
    if text[:2] in ("b'", 'b"') and text[-1:] == text[1]:  # imapclient's str() of bytes
        text = text[2:-1]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


# What changes from one try to the next in the same refusal: Entra ID ends its error with
# "Trace ID: … Correlation ID: … Timestamp: 2026-12-04 10:02:03Z", other servers name a
# session or request id. Left out when two failures are compared.
_VOLATILE = re.compile(
    r"(?:trace|correlation|request|session) id:?\s*\S+"
    r"|timestamp:?\s*\d{4}-\d{2}-\d{2}[ t]\d{2}:\d{2}:\d{2}(?:\.\d+)?z?"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\d{4}-\d{2}-\d{2}[ t]\d{2}:\d{2}:\d{2}(?:\.\d+)?z?",
    re.I,
)


def same_problem(before: str, now: str) -> bool:
    """Whether two failures are the same trouble, their ids and timestamps left out."""
    if before == now:
        return True
    return _gist(before) == _gist(now)


def _gist(error: str) -> str:
    return " ".join(_VOLATILE.sub("", error).split()).casefold()


def has_own_mailboxes(app: Flask) -> bool:
    """Whether the desk names the IMAP server of any [[mailbox]] (else: INTAKE_IMAP_*)."""
    with database(app).session() as session:
        try:
            desk = current_desk(session, app)
        except NoDeskError:
            return False
    return any(m.imap is not None for m in desk.mailboxes)


def poll_every_mailbox(
    app: Flask, *, connector: Callable[[ImapSettings], IMAPClient] = connect
) -> list[MailboxRound]:
    """One pass over every mailbox. Raises only for database trouble (everyone's)."""
    with database(app).session() as session:
        desk = current_desk(session, app)
    accounts = imap_accounts(desk, app.config)

    def one(account: ImapAccount) -> MailboxRound:
        done = _poll_one(app, account, connector)
        record_round(app, done)
        return done

    if len(accounts) < 2:
        rounds = [one(account) for account in accounts]
    else:
        # Side by side: a server that takes its time (one that drops packets holds a poll
        # for its whole timeout) holds up no other mailbox.
        workers = min(PARALLEL_POLLS, len(accounts))
        with ThreadPoolExecutor(workers, thread_name_prefix="mail-poll") as pool:
            polls = [pool.submit(one, account) for account in accounts]
        rounds = [done.result() for done in polls]  # a database failure is raised here
    forget_statuses(app, desk, [a.key for a in accounts])
    return rounds


def poll_the_configured_mailbox(app: Flask) -> PollResult:
    """The INTAKE_IMAP_* mailbox, while no [[mailbox]] names its own server: polled as it
    always was, a failure raised to the job (which pauses and logs it), and its state kept
    as every mailbox's is, for /readyz, /metrics and the Now page."""
    try:
        with database(app).session() as session:
            desk: Desk | None = current_desk(session, app)
    except NoDeskError:
        desk = None
    accounts = imap_accounts(desk, app.config) if desk is not None else []
    # Kept quietly: the job logs this mailbox's failures itself, and its recovery.
    try:
        result = poll(app)
    except Exception as exc:
        if not is_database_failure(exc):
            for account in accounts:
                failed = MailboxRound(account.key, account.name, None, failure_text(exc))
                record_round(app, failed, quiet=True)
        raise
    for account in accounts:
        record_round(app, MailboxRound(account.key, account.name, result), quiet=True)
    if desk is not None:
        forget_statuses(app, desk, [a.key for a in accounts])
    return result


def forget_statuses(app: Flask, desk: Desk, polled: Iterable[str]) -> None:
    """Let go of the state of mailboxes no longer polled or sending for (taken out of the
    definition), so one that failed before it was taken out is not shown as failing for
    ever. `polled`: the keys of the mailboxes read now."""
    sending = {SENDING + m.address.casefold() for m in desk.mailboxes if m.smtp is not None}
    keep = {key[:320] for key in polled} | {key[:320] for key in sending}
    with database(app).session() as session:
        session.execute(
            delete(MailboxStatus).where(MailboxStatus.mailbox.not_in(keep))
            if keep
            else delete(MailboxStatus)
        )
        session.commit()


def poll_one_mailbox(
    app: Flask, key: str, *, connector: Callable[[ImapSettings], IMAPClient] = connect
) -> MailboxRound | None:
    """The mailbox with this key alone, now (its IDLE connection saw new mail), kept and
    logged as in a round; None when the desk no longer has it."""
    with database(app).session() as session:
        desk = current_desk(session, app)
    for account in imap_accounts(desk, app.config):
        if account.key == key:
            done = _poll_one(app, account, connector)
            record_round(app, done)
            return done
    return None


def _poll_one(
    app: Flask, account: ImapAccount, connector: Callable[[ImapSettings], IMAPClient]
) -> MailboxRound:
    if account.settings is None:
        return MailboxRound(account.key, account.name, None, account.problem)
    try:
        result = poll(app, settings=account.settings, connector=connector)
    except Exception as exc:
        if is_database_failure(exc):
            # Everyone's trouble, not this mailbox's: nothing is kept in its state, and the
            # job that called us does it again (at once, when a connection only dropped).
            raise
        log.debug("polling %s failed", account.name, exc_info=True)
        return MailboxRound(account.key, account.name, None, failure_text(exc))
    return MailboxRound(account.key, account.name, result)


def record_round(app: Flask, done: MailboxRound, *, quiet: bool = False) -> None:
    """Keep the mailbox's state; log only when it changes (`quiet`: the caller logs)."""
    if done.result is not None and done.result.locked:
        return  # another process polls it: that one keeps its state
    error = done.error if done.result is None else None
    words = ("cannot be read", "works again")
    _record(app, done.key, done.name, error, words, quiet=quiet)


def record_sending(app: Flask, account: str, name: str, error: str | None) -> None:
    """Keep whether a mailbox's own SMTP account could send (None: it could), as its
    reading is kept: logged when that changes, shown on the Now page while it fails."""
    _record(app, SENDING + account, name, error, ("cannot send", "sends again"))


def _record(
    app: Flask,
    key: str,
    name: str,
    error: str | None,
    words: tuple[str, str],
    *,
    quiet: bool = False,
) -> None:
    failing, again = words
    now: datetime = app.config["CLOCK"]()
    ok = error is None
    error = error or ""
    key = key[:320]
    with database(app).session() as session:
        # The row is made by the database if it is not there (two workers may finish the
        # same mailbox at once), then read locked, so the change is judged by one of them.
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        made = session.execute(
            dialect.insert(MailboxStatus)
            .values(
                mailbox=key,
                ok=ok,
                error=error,
                since=now,
                checked_at=now,
                last_ok_at=now if ok else None,
                failures=0 if ok else 1,
            )
            .on_conflict_do_nothing(index_elements=["mailbox"])
            .returning(MailboxStatus.mailbox)
        ).first()
        if made is not None:
            if not ok and not quiet:
                log.error("mailbox %s %s: %s", name, failing, error)
            session.commit()
            return
        status = session.scalars(
            select(MailboxStatus).where(MailboxStatus.mailbox == key).with_for_update()
        ).one()
        changed = status.ok != ok or not same_problem(status.error, error)
        if not ok and changed and not quiet:
            log.error("mailbox %s %s: %s", name, failing, error)
        elif ok and not status.ok and not quiet:
            log.warning("mailbox %s %s (failing since %s)", name, again, status.since)
        if changed:
            status.ok, status.error, status.since = ok, error, now
        status.checked_at = now
        if ok:
            status.last_ok_at = now
        else:  # counted by the database; monitoring reads it as a counter
            session.execute(
                update(MailboxStatus)
                .where(MailboxStatus.mailbox == key)
                .values(failures=MailboxStatus.failures + 1)
            )
        session.commit()
