"""Background jobs, run by APScheduler: in `intake serve` beside the web app, alone in
`intake worker`, once each in `intake poll-once`.

Each job opens its own sessions; the app is made once, by the entry point. A job that
fails (IMAP or SMTP unreachable, a refused login, a database that is down) is logged and
tried again after a growing pause; it never takes the worker down. A database connection
that dropped (a restart, a terminated backend) is no such failure: the job is done again at
once on a fresh connection, as the webhooks do (`Retrying`). A job never overlaps
itself (`max_instances=1`), and the mailbox has one poller across processes and hosts
(a database lock, see `intake.core.locks`).

Beside the jobs, `watch_mailboxes` gives the worker its IMAP IDLE watchers (mail/idle.py):
an `idle-sync` job matches them to the desk's mailboxes every minute, and the command that
started them stops them when the scheduler ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from intake.core import contactlog
from intake.core.db import connection_dropped, database, database_unreachable
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError
from intake.shell.auth import forget_old_failures
from intake.shell.heartbeats import record_success
from intake.shell.password_links import purge_links
from intake.shell.sessions import MAX_AGE, purge_sessions
from mail.accounts import ImapAccount, MissingSecret, describe, imap_accounts, smtp_for
from mail.idle import IdleWatchers
from mail.ingest import Outgoing, release_held
from mail.mailboxes import (
    has_own_mailboxes,
    poll_every_mailbox,
    poll_one_mailbox,
    poll_the_configured_mailbox,
    record_sending,
)
from mail.outbox import FlushResult, SmtpSettings, due_accounts, flush
from mail.poller import ImapSettings, outgoing_for, poll

log = logging.getLogger(__name__)

OUTBOX_SECONDS = 30
BACKLOG_SECONDS = 60
RETENTION_HOURS = 6
IDLE_SYNC_SECONDS = 60
MAX_PAUSE = timedelta(minutes=15)
FIRST_PAUSE = timedelta(seconds=30)  # after a failure of the mailbox, SMTP or a bug
FIRST_DATABASE_PAUSE = timedelta(seconds=1)  # after the database could not be reached
# ... and at most this long: the worker is back within seconds of the database, as the web
# is at its next request, however long the outage was.
MAX_DATABASE_PAUSE = timedelta(seconds=15)

T = TypeVar("T")


def purge_expired(app: Flask) -> int:
    """Remove contacts older than the desk's retention period; how many were removed. Old
    login sessions, counts of failed logins and used or expired password links go too (they
    hold no patient data, but addresses and who was logged in when)."""
    now = app.config["CLOCK"]()
    with database(app).session() as session:
        sessions = purge_sessions(session, now, app.config.get("SESSION_MAX_AGE", MAX_AGE))
        failures = forget_old_failures(session, now)
        purge_links(session, now)
        session.commit()
    if sessions or failures:
        log.info("retention: removed %d old login sessions, %d old failed-login counts",
                 sessions, failures)  # fmt: skip
    with database(app).session() as session:
        try:
            desk = current_desk(session, app)
        except NoDeskError:
            return 0
        cutoff = now - timedelta(days=desk.retention_days)
        removed = contactlog.purge_older_than(session, cutoff)
        session.commit()
    if removed:
        log.info("retention: removed %d contacts older than %d days", removed, desk.retention_days)
    return removed


def poll_mailbox(app: Flask) -> Any:
    if has_own_mailboxes(app):
        return poll_every_mailbox(app)  # each mailbox's failure is its own, logged there
    result = poll_the_configured_mailbox(app)
    if result.fetched:
        log.info(
            "mail poll: %d fetched, %d logged, %d seen before, %d left for a person",
            result.fetched,
            result.logged,
            result.duplicates,
            len(result.attention),
        )
    return result


def flush_outbox(app: Flask) -> FlushResult | None:
    """Send what is due, each row through its SMTP account; None when no account is set.

    A desk whose mailboxes have no `smtp` of their own sends everything through the
    INTAKE_SMTP_* account, as it always did.
    """
    clock = app.config["CLOCK"]
    default = SmtpSettings.from_config(app.config)
    with database(app).session() as session:
        try:
            desk = current_desk(session, app)
        except NoDeskError:
            desk = None
        accounts = due_accounts(session, clock()) if desk is not None else []
    if desk is None or not any(m.smtp is not None for m in desk.mailboxes):
        return None if default is None else flush(database(app), default, clock)
    sent = postponed = failed = 0
    for account in accounts:
        mailbox = desk.mailbox_for(account) if account else None
        # A mailbox with an SMTP account of its own; the others send through INTAKE_SMTP_*.
        own = mailbox if mailbox is not None and mailbox.smtp is not None else None
        try:
            settings = smtp_for(desk, app.config, account)
        except MissingSecret as exc:  # its mail waits, and the mailbox's state says why
            if own is not None:
                record_sending(app, account, describe(own), str(exc))
            continue
        if settings is None:
            continue
        done = flush(database(app), settings, clock, account=account, quiet=own is not None)
        if own is not None and done.connection is not None:
            record_sending(app, account, describe(own), done.connection or None)
        sent, postponed, failed = sent + done.sent, postponed + done.postponed, failed + done.failed
    return FlushResult(sent, postponed, failed)


def release_backlog(app: Flask) -> int:
    """At the start of a shift: forward the mail that came in while the desk was closed."""

    settings = ImapSettings.from_config(app.config)
    with database(app).session() as session:
        try:
            desk = current_desk(session, app)
        except NoDeskError:
            return 0
        outgoing = outgoing_for(
            app, desk, settings or ImapSettings(host="", user=desk.email, password="")
        )

        def outgoing_of(via: str) -> Outgoing:
            # A mailbox with its own SMTP account forwards through it, from its address.
            mailbox = desk.mailbox_for(via)
            if mailbox is None or mailbox.smtp is None:
                return outgoing
            return outgoing_for(app, desk, ImapSettings(host="", user=via, password=""))

        released = release_held(session, desk, app.config["CLOCK"](), outgoing, outgoing_of)
        session.commit()
    if released:
        log.info("forwarded %d mails that waited for the shift to start", released)
    return released


def scheduler_time() -> datetime:
    return datetime.now(UTC)  # the scheduler's own time: it decides when jobs run


def again_if_dropped(name: str, run: Callable[[], T]) -> T:
    """`run()`, and once more at once if a database connection dropped under it (the
    pool has let go of the dead connections by then), as the webhooks do. A database
    that is still not there fails the second run, and that failure is the caller's."""
    try:
        return run()
    except Exception as exc:
        if not connection_dropped(exc):
            raise
        log.warning(
            "%s: the database connection dropped (%s); doing it again on a fresh one",
            name,
            exc.__class__.__name__,
        )
    return run()


@dataclass
class Retrying:
    """Runs `job(app)`; a dropped database connection is tried again at once (see
    `again_if_dropped`), and a failure that stays waits longer each time before the next
    try: from a second when the database cannot be reached, doubling up to
    MAX_DATABASE_PAUSE (it is back within seconds of the server, as the webhooks are), from
    30 s otherwise, doubling up to MAX_PAUSE. Each
    failure is one line of the log (its traceback when it starts or changes), and the job
    working again is one more."""

    name: str
    job: Callable[[Flask], Any]
    app: Flask
    now: Callable[[], datetime] = scheduler_time
    succeeded: Callable[[Flask, str], None] = record_success  # the heartbeat /readyz reads
    failures: int = 0
    resume_at: datetime | None = None
    failure: str = ""  # the last failure as logged: a repeat of it gets no traceback

    def __call__(self) -> None:
        now = self.now()
        if self.resume_at is not None and now < self.resume_at:
            return
        try:
            again_if_dropped(self.name, lambda: self.job(self.app))
        except Exception as exc:
            self._failed(exc, now)
            return
        self.succeeded(self.app, self.name)
        if self.failures:
            log.info("%s works again after %d failures", self.name, self.failures)
        self.failures, self.resume_at, self.failure = 0, None, ""

    def _failed(self, exc: Exception, now: datetime) -> None:
        self.failures += 1
        unreachable = database_unreachable(exc)
        first = FIRST_DATABASE_PAUSE if unreachable else FIRST_PAUSE
        longest = MAX_DATABASE_PAUSE if unreachable else MAX_PAUSE
        pause = min(first * 2 ** min(self.failures - 1, 20), longest)
        self.resume_at = now + pause
        failure = f"{exc.__class__.__name__}: {exc}"
        changed = failure != self.failure
        self.failure = failure
        # One line per failure, each a longer pause than the last; the traceback when the
        # failure starts or changes, not again for each repeat of it.
        log.error(
            "%s failed (%s); not tried again for %d s",
            self.name,
            failure,
            pause.total_seconds(),
            exc_info=changed,
        )


def schedule(scheduler: BaseScheduler, app: Flask) -> BaseScheduler:
    """Add the jobs; the caller starts the scheduler (background or blocking)."""
    soon = datetime.now(UTC) + timedelta(seconds=2)
    jobs: list[tuple[str, Callable[[Flask], Any], dict[str, int]]] = [
        ("mail-poll", poll_mailbox, {"seconds": int(app.config.get("POLL_SECONDS", 60))}),
        ("outbox", flush_outbox, {"seconds": OUTBOX_SECONDS}),
        ("backlog", release_backlog, {"seconds": BACKLOG_SECONDS}),
        ("retention", purge_expired, {"hours": RETENTION_HOURS}),
    ]
    for name, job, interval in jobs:
        scheduler.add_job(
            Retrying(name, job, app),
            "interval",
            id=name,
            name=name,
            next_run_time=soon,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            **interval,
        )
    return scheduler


def poll_now(app: Flask, key: str) -> bool:
    """The poll an IDLE connection wakes: that mailbox alone, as the scheduled poll reads
    it. False when another poll holds the mailbox right now (the watcher tries again)."""

    def wake() -> bool:
        if has_own_mailboxes(app):
            done = poll_one_mailbox(app, key)
            return done is None or done.result is None or not done.result.locked
        return not poll(app).locked

    return again_if_dropped(f"the poll woken by IDLE on {key}", wake)


def idle_accounts(app: Flask) -> list[ImapAccount]:
    """The mailboxes the scheduled poll reads, those that can sign in (a missing secret
    is the poll's to report)."""
    with database(app).session() as session:
        try:
            desk = current_desk(session, app)
        except NoDeskError:
            return []
    return [a for a in imap_accounts(desk, app.config) if a.settings is not None]


def watch_mailboxes(
    scheduler: BaseScheduler, app: Flask, watchers: IdleWatchers | None = None
) -> IdleWatchers | None:
    """IDLE watchers for the desk's mailboxes, kept in step with its definition by an
    `idle-sync` job; None when INTAKE_IDLE is off. The caller stops them at shutdown."""
    if not app.config.get("IDLE", True):
        return None
    if watchers is None:
        watchers = IdleWatchers(
            lambda account: lambda: poll_now(app, account.key),
            reissue_seconds=float(app.config.get("IDLE_REISSUE_SECONDS", 25 * 60)),
        )
    chosen = watchers

    def sync(app: Flask) -> None:
        chosen.sync(idle_accounts(app))

    scheduler.add_job(
        Retrying("idle-sync", sync, app),
        "interval",
        id="idle-sync",
        name="idle-sync",
        next_run_time=datetime.now(UTC) + timedelta(seconds=2),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        seconds=IDLE_SYNC_SECONDS,
    )
    return chosen


def start_scheduler(app: Flask) -> BaseScheduler:
    scheduler = schedule(BackgroundScheduler(), app)
    scheduler.start()
    return scheduler
