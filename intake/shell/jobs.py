"""Background jobs, run by APScheduler: in `intake serve` beside the web app, alone in
`intake worker`, once each in `intake poll-once`.

Each job opens its own sessions; the app is made once, by the entry point. A job that
fails (IMAP or SMTP unreachable, a refused login, a dropped connection) is logged and
tried again after a growing pause; it never takes the worker down. A job never overlaps
itself (`max_instances=1`), and the mailbox has one poller across processes and hosts
(a database lock, see `intake.core.locks`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from intake.core import contactlog
from intake.core.db import database
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError
from mail.ingest import release_held
from mail.outbox import SmtpSettings, flush
from mail.poller import ImapSettings, outgoing_for, poll

log = logging.getLogger(__name__)

OUTBOX_SECONDS = 30
BACKLOG_SECONDS = 60
RETENTION_HOURS = 6
MAX_PAUSE = timedelta(minutes=15)


def purge_expired(app: Flask) -> int:
    """Remove contacts older than the desk's retention period; how many were removed."""
    with database(app).session() as session:
        try:
            desk = current_desk(session, app)
        except NoDeskError:
            return 0
        cutoff = app.config["CLOCK"]() - timedelta(days=desk.retention_days)
        removed = contactlog.purge_older_than(session, cutoff)
        session.commit()
    if removed:
        log.info("retention: removed %d contacts older than %d days", removed, desk.retention_days)
    return removed


def poll_mailbox(app: Flask) -> Any:
    result = poll(app)
    if result.fetched:
        log.info(
            "mail poll: %d fetched, %d logged, %d seen before, %d left for a person",
            result.fetched,
            result.logged,
            result.duplicates,
            len(result.attention),
        )
    return result


def flush_outbox(app: Flask) -> Any:
    settings = SmtpSettings.from_config(app.config)
    if settings is None:
        return None
    return flush(database(app), settings, app.config["CLOCK"])


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
        released = release_held(session, desk, app.config["CLOCK"](), outgoing)
        session.commit()
    if released:
        log.info("forwarded %d mails that waited for the shift to start", released)
    return released


@dataclass
class Retrying:
    """Runs `job(app)`, and after a failure waits longer each time before trying again."""

    name: str
    job: Callable[[Flask], Any]
    app: Flask
    failures: int = 0
    resume_at: datetime | None = None

    def __call__(self) -> None:
        now = datetime.now(UTC)  # the scheduler's own time: it decides when jobs run
        if self.resume_at is not None and now < self.resume_at:
            return
        try:
            self.job(self.app)
        except Exception as exc:
            self.failures += 1
            pause = min(timedelta(seconds=30 * 2 ** (self.failures - 1)), MAX_PAUSE)
            self.resume_at = now + pause
            log.error(
                "%s failed (%s: %s); trying again in %d s",
                self.name,
                exc.__class__.__name__,
                exc,
                pause.total_seconds(),
                exc_info=self.failures == 1,
            )
            return
        if self.failures:
            log.info("%s works again after %d failures", self.name, self.failures)
        self.failures, self.resume_at = 0, None


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


def start_scheduler(app: Flask) -> BaseScheduler:
    scheduler = schedule(BackgroundScheduler(), app)
    scheduler.start()
    return scheduler
