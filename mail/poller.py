"""The IMAP poller: every message in the helpdesk folder becomes a contact, exactly once.

Per folder the database keeps its UIDVALIDITY and the last UID finished. Messages are
fetched with BODY.PEEK[] (nothing is marked read before it is processed), in batches
bounded by size and count; a batch is finished in one transaction together with the new
last UID, each message in a savepoint of its own. Only then are its messages flagged (and
moved, when a processed folder is set); a crash between the two is mended at the next
poll. Nothing is ever deleted.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from imapclient import IMAPClient
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from intake.core import lifecycle
from intake.core.db import database
from intake.core.deskstore import current_desk
from intake.core.locks import ExclusiveLock, holder_name
from intake.core.models import MailboxState, MailMessage
from mail.message import ParsedMail
from mail.parsing import parse_message
from routing.desk import Desk, Mailbox

from .batch import Fetched, Lane
from .ingest import Ingested, Outgoing, RoundRobin, dedupe_key, ingest
from .oauth import Tokens, imap_sign_in
from .outbox import account_of

log = logging.getLogger(__name__)

LOGGED_KEYWORD = "$HelpdeskLogged"
FETCH_BYTES = 16 * 1024 * 1024  # one FETCH of bodies carries at most about this much
# A fetch batch is one transaction, with a cost of its own (what the batch is judged on, the
# position, the commit, the flags): 100 messages logged mail 10-15% faster than 50. On SQLite
# a batch holds the database's one write lock until its commit, so a call's webhook may wait
# for it: bench/mail.py prints the longest, 150-200 ms, as with 50 (a batch with large mail,
# bounded by FETCH_BYTES); the median went from about 45 to 65-90 ms.
FETCH_COUNT = 100


@dataclass(frozen=True)
class ImapSettings:
    host: str
    user: str
    password: str = field(repr=False)  # left out of repr(): never in a log line
    port: int = 993
    ssl: bool = True
    starttls: bool = True  # when not ssl: upgrade the plain connection (0 for plain only)
    folder: str = "INBOX"
    processed_folder: str = ""
    cafile: str = ""
    timeout: float = 60.0
    # The [[mailbox]] this connection reads (None: the INTAKE_IMAP_* mailbox) and how it
    # signs in; the secret of a password sign-in is `password`.
    mailbox: Mailbox | None = field(default=None, compare=False)
    signin: str = "password"
    # OAuth2 sign-in (microsoft, google): XOAUTH2 with these tokens instead of the password.
    # Compared as the provider itself: one is kept per credential (mail/credentials.py), so
    # a rotated client secret or a replaced key file makes other settings, and an IDLE
    # connection follows them as it follows a changed password.
    tokens: Tokens | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """The address patients write to here: the mailbox's, else the login when it is one."""
        if self.mailbox is not None:
            return self.mailbox.address
        return self.user if "@" in self.user else ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ImapSettings | None:
        if not config.get("IMAP_HOST"):
            return None
        return cls(
            host=config["IMAP_HOST"],
            user=config.get("IMAP_USER", ""),
            password=config.get("IMAP_PASSWORD", ""),
            port=int(config.get("IMAP_PORT", 993)),
            ssl=bool(config.get("IMAP_SSL", True)),
            starttls=bool(config.get("IMAP_STARTTLS", True)),
            folder=config.get("IMAP_FOLDER", "INBOX") or "INBOX",
            processed_folder=config.get("IMAP_PROCESSED_FOLDER", ""),
            cafile=config.get("IMAP_CAFILE", ""),
        )

    @property
    def account(self) -> str:
        """The key of this folder's position in the database."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"[:320]


def connect(settings: ImapSettings) -> IMAPClient:
    context = ssl.create_default_context(cafile=settings.cafile or None)
    if settings.ssl:
        client = IMAPClient(
            settings.host,
            port=settings.port,
            ssl=True,
            ssl_context=context,
            timeout=settings.timeout,
        )
    else:
        client = IMAPClient(settings.host, port=settings.port, ssl=False, timeout=settings.timeout)
    # imapclient sets imaplib's debug level to its most verbose (5) and hands the messages to
    # its "imapclient.imaplib" logger, but imaplib writes each message out before a logger
    # can drop it: every FETCH's mail, attachments and all, through repr(), once per message
    # and once for the whole batch. That was a fifth of the poll's time (2 s of 2,000 mails),
    # a copy of each batch held twice over, and patient mail in the log of anyone who turns
    # DEBUG on. imapclient's own lines ("> UID FETCH ...") stay.
    client._imap.debug = 0
    try:
        if not settings.ssl and settings.starttls:
            client.starttls(context)
        sign_in(client, settings)
    except BaseException:
        _close(client)
        raise
    return client


def sign_in(client: IMAPClient, settings: ImapSettings) -> None:
    """Sign a connected client in as the mailbox: XOAUTH2 with a token (Microsoft 365,
    Google Workspace: `settings.tokens`), else LOGIN with the password."""
    if settings.tokens is not None:
        imap_sign_in(client, settings.user, settings.tokens)
    else:
        client.login(settings.user, settings.password)


def _close(client: IMAPClient) -> None:
    """Log out politely; when the connection is already gone, close the socket anyway."""
    try:
        client.logout()
    except Exception:
        log.debug("IMAP logout failed; closing the socket", exc_info=True)
        with contextlib.suppress(Exception):
            client.shutdown()


@dataclass
class PollResult:
    fetched: int = 0
    logged: int = 0  # new contacts and follow-ups
    duplicates: int = 0  # seen before (a re-sync)
    locked: bool = False  # another process is polling
    disabled: bool = False  # no IMAP host configured
    attention: list[int] = field(default_factory=list)  # UIDs left in the folder for a person


def outgoing_for(app: Flask, desk: Desk, settings: ImapSettings) -> Outgoing:
    """A mailbox with its own SMTP account answers from its own address, through it;
    any other through the INTAKE_SMTP_* account, as INTAKE_SMTP_FROM (or the desk)."""
    mailbox = desk.mailbox_for(settings.address) if settings.address else None
    own_smtp = mailbox is not None and mailbox.smtp is not None
    sender = (
        settings.address if own_smtp else app.config.get("SMTP_FROM") or desk.email or settings.user
    )
    own = {sender, desk.email, settings.user, *(m.address for m in desk.mailboxes)}
    return Outgoing(
        sender=sender,
        own_addresses=frozenset(a.casefold() for a in own if a),
        smtp_account=account_of(mailbox),
    )


STOPPING = "mail.stopping"


def stop_between_batches(app: Flask) -> None:
    """The worker is stopping (SIGTERM): every poll under way ends after the batch in hand,
    committed and flagged, instead of reading the rest of its folder first."""
    app.extensions.setdefault(STOPPING, threading.Event()).set()


def stopping(app: Flask) -> bool:
    event: threading.Event | None = app.extensions.get(STOPPING)
    return event is not None and event.is_set()


def poll(
    app: Flask,
    *,
    settings: ImapSettings | None = None,
    connector: Callable[[ImapSettings], IMAPClient] = connect,
) -> PollResult:
    """One pass over the folder. Raises on IMAP or database trouble (the job retries)."""
    settings = settings or ImapSettings.from_config(app.config)
    if settings is None:
        return PollResult(disabled=True)
    clock: Callable[[], datetime] = app.config["CLOCK"]
    db = database(app)
    # The holder names the thread too: the scheduled poll and the one an IDLE connection
    # wakes run in one process, and a SQLite lease must keep those apart as well.
    holder = f"{holder_name()}:{threading.get_ident()}"
    lock = ExclusiveLock(db.engine, f"mail-poller:{settings.account}", clock, holder=holder)
    if not lock.acquire():
        log.info("another process is polling %s", settings.account)
        return PollResult(locked=True)
    try:
        client = connector(settings)
        try:
            return _poll_folder(app, client, settings, lock)
        finally:
            _close(client)
    finally:
        lock.release()


def _poll_folder(
    app: Flask, client: IMAPClient, settings: ImapSettings, lock: ExclusiveLock
) -> PollResult:
    clock: Callable[[], datetime] = app.config["CLOCK"]
    db = database(app)
    result = PollResult()
    info = client.select_folder(settings.folder)
    uidvalidity = int(info[b"UIDVALIDITY"])
    with db.session() as session:
        state = session.get(MailboxState, settings.account)
        if state is None:
            state = MailboxState(
                mailbox=settings.account, uidvalidity=uidvalidity, last_uid=0, updated_at=clock()
            )
            session.add(state)
        elif state.uidvalidity != uidvalidity:
            # The server renumbered the folder: read it all again; messages already logged
            # are recognised by their Message-ID (or content hash) and not logged twice.
            log.warning(
                "UIDVALIDITY of %s changed from %s to %s: re-syncing",
                settings.account,
                state.uidvalidity,
                uidvalidity,
            )
            state.uidvalidity, state.last_uid, state.updated_at = uidvalidity, 0, clock()
        last_uid = state.last_uid
        session.commit()

    _mend_marks(app, client, settings, uidvalidity, last_uid)
    uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
    batches = _batches(client, uids)
    batch = next(batches, None)
    if batch is None:
        return result
    # The next batch is read while this one is logged: the server's sending, TLS and the
    # network's latency (a hosted mailbox is far away) overlap the parsing and the writes.
    # The connection is only ever used by one thread at a time: the read ahead is waited
    # for before anything else is asked of the server. Nothing is marked by a read
    # (BODY.PEEK), so a poll that stops with a batch read ahead loses nothing.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap-read-ahead") as ahead:
        coming: Future[dict[int, dict[bytes, Any]]] | None = ahead.submit(_bodies, client, batch)
        while batch is not None and coming is not None:
            if stopping(app):  # the worker is stopping: the rest waits for the next poll
                log.info("mail poll stops between batches: the worker is stopping")
                break
            bodies = coming.result()
            # The lease is renewed between batches: on SQLite a renewal is a write, which
            # would wait for the batch's own transaction.
            if not lock.renew():
                raise RuntimeError("lost the poller lock; stopping this poll")
            following = next(batches, None)  # may ask the server the next sizes
            coming = ahead.submit(_bodies, client, following) if following else None
            done, attention = _finish_batch(app, settings, uidvalidity, batch, bodies, result)
            del bodies
            if coming is not None:
                futures.wait([coming])  # its failure is raised by result(), after the flags
            _mark(client, settings, done, attention)
            result.attention.extend(attention)
            batch = following
    return result


def _bodies(client: IMAPClient, batch: list[int]) -> dict[int, dict[bytes, Any]]:
    bodies: dict[int, dict[bytes, Any]] = client.fetch(batch, ["BODY.PEEK[]"])
    return bodies


def _finish_batch(
    app: Flask,
    settings: ImapSettings,
    uidvalidity: int,
    batch: list[int],
    bodies: dict[int, dict[bytes, Any]],
    result: PollResult,
) -> tuple[list[int], list[int]]:
    """Log the messages of one fetch batch and move the position past it, in one transaction.

    A message counts as finished exactly when its contact is committed with the position:
    the batch commits once, at the end, each message inside a savepoint of its own (a
    message that fails is rolled back alone and logged bare). A poll killed mid-batch has
    committed none of it, and the next poll fetches the batch again; one killed after the
    commit, before the flags, has its flags set by the next poll (`_mend_marks`).
    What was finished (all of `batch`) and what is left for a person.
    """
    attention: list[int] = []
    clock: Callable[[], datetime] = app.config["CLOCK"]
    # Parsed before the transaction: on SQLite the batch holds the database's one write
    # lock from its first statement, and a webhook that writes waits for it meanwhile.
    fetched: list[Fetched] = []
    for uid in batch:
        raw = bodies.pop(uid, {}).get(b"BODY[]")
        if raw is None:
            log.warning("message %s of %s vanished before it was read", uid, settings.account)
            continue
        fetched.append(Fetched(uid, raw, parse_message(raw), clock()))
        del raw
    with database(app).session() as session:
        # A write first: it opens the transaction (on SQLite the pysqlite driver starts one
        # only at a write, and a first SAVEPOINT outside one would commit on release) and
        # takes the database's write lock for the batch before any work is done.
        _move_position(session, app, settings, batch[0] - 1)
        state = _BatchState.read(app, session, settings, uidvalidity)
        lane = Lane.open(
            session,
            desk=state.desk,
            account=settings.account,
            uidvalidity=uidvalidity,
            mailbox_address=_mailbox_address(settings, state.desk),
            outgoing=state.outgoing,
            round_robin=state.round_robin,
            mails=[f.mail for f in fetched],
        )

        def alone(message: Fetched) -> None:
            done = _finish(session, state, message.uid, message.raw, message.mail, message.now)
            if done is not None and done.duplicate:
                result.duplicates += 1
            else:
                result.logged += 1
            lane.touched_alone(done.contact_id if done is not None else None)

        fetched.reverse()  # popped from the end: each message is let go once it is written
        while fetched:
            message = fetched.pop()
            result.fetched += 1
            if message.mail.needs_attention:
                attention.append(message.uid)
            if lane.take(message):
                result.logged += 1
                if lane.full:
                    _alone_again(lane.write(), alone, result)
                continue
            _alone_again(lane.write(), alone, result)
            alone(message)
            del message
        _alone_again(lane.write(), alone, result)
        _move_position(session, app, settings, batch[-1])
        session.commit()
    return batch, attention


def _alone_again(
    failed: list[Fetched], alone: Callable[[Fetched], None], result: PollResult
) -> None:
    """Messages the lane took and could not write: each ingested alone after all."""
    for message in failed:
        result.logged -= 1  # counted when taken; `alone` counts it again
        alone(message)


@dataclass
class _BatchState:
    """What every message of a fetch batch is ingested with, read once for the batch."""

    settings: ImapSettings
    uidvalidity: int
    desk: Desk
    outgoing: Outgoing
    round_robin: RoundRobin

    @classmethod
    def read(
        cls, app: Flask, session: Session, settings: ImapSettings, uidvalidity: int
    ) -> _BatchState:
        desk = current_desk(session, app)
        return cls(
            settings=settings,
            uidvalidity=uidvalidity,
            desk=desk,
            outgoing=outgoing_for(app, desk, settings),
            round_robin=RoundRobin.read(session, app.config["CLOCK"]()),
        )


def _finish(
    session: Session, batch: _BatchState, uid: int, raw: bytes, mail: ParsedMail, now: datetime
) -> Ingested | None:
    """Log one message inside the batch's transaction, in a savepoint: what it became (None:
    it could not be processed and was logged bare).

    Whatever the message does to us it must not block the mailbox or be lost: when its
    ingest fails, its savepoint is rolled back and it is logged bare, for a person to look at.
    """
    settings, desk = batch.settings, batch.desk
    before = batch.round_robin.copy()
    try:
        with session.begin_nested():
            done = ingest(
                session,
                desk=desk,
                account=settings.account,
                mailbox_address=_mailbox_address(settings, desk),
                uidvalidity=batch.uidvalidity,
                uid=uid,
                raw=raw,
                mail=mail,
                now=now,
                outgoing=batch.outgoing,
                round_robin=batch.round_robin,
            )
        return done
    except DBAPIError:
        raise  # the database is in trouble: stop; the whole batch is tried again next poll
    except Exception:
        log.exception("could not process message %s of %s", uid, settings.account)
    # The forward, if any, was rolled back with the rest (the lane holds the same object).
    batch.round_robin.newest = before.newest
    with session.begin_nested():
        _log_unprocessable(session, settings, desk, batch.uidvalidity, uid, raw, mail, now)
    return None


def _log_unprocessable(
    session: Any,
    settings: ImapSettings,
    desk: Desk,
    uidvalidity: int,
    uid: int,
    raw: bytes,
    mail: ParsedMail,
    now: datetime,
) -> None:
    contact = lifecycle.mail_received(
        session,
        via=_mailbox_address(settings, desk),
        organisation=desk.name,
        caller=mail.from_address or "unknown",
        subject=mail.subject[:998],
        message_id=mail.message_id,
        automatic=False,
        needs_attention=True,
        at=now,
        detail={"needs_attention": True, "error": True},
    )
    session.add(
        MailMessage(
            contact_id=contact.id,
            mailbox=settings.account,
            uidvalidity=uidvalidity,
            uid=uid,
            dedupe_key=dedupe_key(mail),
            message_id=mail.message_id,
            received_at=now,
            subject=mail.subject[:998],
            from_address=mail.from_address,
            text=mail.text,
            needs_attention=True,
            size=len(raw),
            raw=raw,
            problems=[*mail.problems, "could not be processed; see the log"],
        )
    )


def _move_position(session: Session, app: Flask, settings: ImapSettings, uid: int) -> None:
    """The folder's position to `uid` (never back), in the session's transaction."""
    session.execute(
        update(MailboxState)
        .where(MailboxState.mailbox == settings.account, MailboxState.last_uid <= uid)
        .values(last_uid=uid, updated_at=app.config["CLOCK"]())
    )


def _mailbox_address(settings: ImapSettings, desk: Desk) -> str:
    return settings.address or desk.email


def _batches(client: IMAPClient, uids: Sequence[int]) -> Iterator[list[int]]:
    """UIDs in groups whose bodies together stay near FETCH_BYTES (or FETCH_COUNT)."""
    for start in range(0, len(uids), 500):
        window = list(uids[start : start + 500])
        sizes = client.fetch(window, ["RFC822.SIZE"])
        batch: list[int] = []
        total = 0
        for uid in window:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if batch and (total + size > FETCH_BYTES or len(batch) >= FETCH_COUNT):
                yield batch
                batch, total = [], 0
            batch.append(uid)
            total += size
        if batch:
            yield batch


def _mark(client: IMAPClient, settings: ImapSettings, done: list[int], keep: list[int]) -> None:
    """Flag finished messages; move them to the processed folder unless a person must look."""
    if not done:
        return
    client.add_flags(done, [b"\\Seen", LOGGED_KEYWORD.encode()], silent=True)
    movable = [uid for uid in done if uid not in set(keep)]
    if settings.processed_folder and movable:
        if not client.folder_exists(settings.processed_folder):
            client.create_folder(settings.processed_folder)
        if client.has_capability("MOVE"):
            client.move(movable, settings.processed_folder)
        else:  # copy only: never delete a patient's mail
            client.copy(movable, settings.processed_folder)


def _mend_marks(
    app: Flask, client: IMAPClient, settings: ImapSettings, uidvalidity: int, last_uid: int
) -> None:
    """Flag (and move) messages finished in a poll that stopped before it could mark them."""
    if last_uid <= 0:
        return
    unmarked = client.search(["UID", f"1:{last_uid}", "UNKEYWORD", LOGGED_KEYWORD])
    if not unmarked:
        return
    with database(app).session() as session:
        keep = session.scalars(
            select(MailMessage.uid).where(
                MailMessage.mailbox == settings.account,
                MailMessage.uidvalidity == uidvalidity,
                MailMessage.uid.in_(unmarked),
                MailMessage.needs_attention.is_(True),
            )
        ).all()
    _mark(client, settings, sorted(unmarked), list(keep))
