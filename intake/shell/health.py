"""`/healthz` and `/readyz`: for a load balancer, and for the people who watch the desk.

- `/healthz`: the process lives and answers (no database). 200, always.
- `/readyz`: what this web process needs to take calls, and what the desk's background
  work looks like: the database, the scheduler's jobs (each one's last success, written by
  whichever worker ran it: see `heartbeats`), every mailbox's last good poll, the outbox's
  backlog and its oldest waiting message. JSON, the same on every web host.

Which checks give 503. Only the database: without it this process cannot log a call, so a
load balancer should send calls to another host. A stale worker, a failing mailbox or a
stuck outbox are reported (`"status": "degraded"`, the check's `"ok": false`) but answer
200: the webhooks do not need the worker, and taking every web host out of the balancer
because of it would leave callers with nothing at all. Monitoring that reads only status
codes asks `/readyz?strict=1`, which answers 503 when any check fails.

Neither names a phone number or an address: a mailbox is shown by its organisation (see
`mailbox_labels`), and no error text is passed on (a server's refusal may quote an address).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from intake.core.db import database
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError
from intake.core.models import SENDING, JobHeartbeat, MailboxStatus, OutboxMessage
from intake.shell import jobs
from intake.shell.heartbeats import last_successes
from mail.poller import ImapSettings
from routing.desk import Desk

# A job is late when it has not succeeded for two of its intervals and five minutes more
# (a long poll, a restart of the worker, one failure and its first pause).
LATE_MARGIN = timedelta(minutes=5)
# The outbox retries with growing pauses; a message waiting longer than this is stuck.
OUTBOX_STUCK = timedelta(minutes=30)


# Every worker runs these; `idle-sync` only where INTAKE_IDLE is on (judged when it ran once).
ALWAYS_RUN = ("mail-poll", "outbox", "backlog", "retention")


def job_intervals(config: Mapping[str, Any]) -> dict[str, timedelta]:
    """How often each job is scheduled (`jobs.schedule`, `jobs.watch_mailboxes`)."""
    return {
        "mail-poll": timedelta(seconds=int(config.get("POLL_SECONDS", 60))),
        "outbox": timedelta(seconds=jobs.OUTBOX_SECONDS),
        "backlog": timedelta(seconds=jobs.BACKLOG_SECONDS),
        "retention": timedelta(hours=jobs.RETENTION_HOURS),
        "idle-sync": timedelta(seconds=jobs.IDLE_SYNC_SECONDS),
    }


def late_after(interval: timedelta) -> timedelta:
    return 2 * interval + LATE_MARGIN


@dataclass(frozen=True)
class Backlog:
    waiting: int
    failed: int
    oldest_waiting: datetime | None


def outbox_backlog(session: Session) -> Backlog:
    waiting = (OutboxMessage.sent_at.is_(None)) & (OutboxMessage.failed_at.is_(None))
    count, oldest = session.execute(
        select(func.count(), func.min(OutboxMessage.created_at)).where(waiting)
    ).one()
    failed = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.failed_at.is_not(None))
    )
    return Backlog(int(count or 0), int(failed or 0), oldest)


def mailbox_labels(desk: Desk | None, config: Mapping[str, Any], keys: list[str]) -> dict[str, str]:
    """A name for each mailbox status key that is not its address: the organisation of the
    desk's mailbox ("Ziekenhuis Noord", "Ziekenhuis Noord 2" for a second one), and for a
    key the desk does not name, "mailbox 1", "mailbox 2", … in the order of the keys."""
    labels: dict[str, str] = {}
    seen: dict[str, int] = {}
    for mailbox in desk.mailboxes if desk is not None else ():
        seen[mailbox.organisation] = seen.get(mailbox.organisation, 0) + 1
        n = seen[mailbox.organisation]
        labels[mailbox.address.casefold()] = mailbox.organisation + (f" {n}" if n > 1 else "")
    legacy = ImapSettings.from_config(config)  # the INTAKE_IMAP_* mailbox is kept by account
    if legacy is not None and legacy.address.casefold() in labels:
        labels[legacy.account] = labels[legacy.address.casefold()]
    unnamed = [key for key in sorted(keys) if key not in labels]
    labels.update({key: f"mailbox {n}" for n, key in enumerate(unnamed, start=1)})
    return {key: labels[key] for key in keys}


@dataclass(frozen=True)
class Facts:
    """What /readyz and /metrics read from the database, in one session."""

    now: datetime
    heartbeats: dict[str, JobHeartbeat]
    mailboxes: list[tuple[str, MailboxStatus]]  # (label, status), by label
    backlog: Backlog


def read_facts(app: Flask, session: Session) -> Facts:
    """Raises SQLAlchemyError when the database cannot be read."""
    session.execute(text("SELECT 1"))
    heartbeats = last_successes(session)
    # The mailboxes' polls; a mailbox's own SMTP account (kept under SENDING) is not one,
    # and what it leaves waiting is the outbox's check.
    statuses = [
        s for s in session.scalars(select(MailboxStatus)) if not s.mailbox.startswith(SENDING)
    ]
    try:
        desk: Desk | None = current_desk(session, app)
    except NoDeskError:
        desk = None
    labels = mailbox_labels(desk, app.config, [s.mailbox for s in statuses])
    named = sorted(((labels[s.mailbox], s) for s in statuses), key=lambda pair: pair[0])
    return Facts(app.config["CLOCK"](), heartbeats, named, outbox_backlog(session))


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _age(now: datetime, moment: datetime | None) -> float | None:
    return round((now - moment).total_seconds(), 1) if moment is not None else None


def readiness(app: Flask) -> dict[str, Any]:
    """The report /readyz answers with; `status` is ok, degraded or unavailable."""
    try:
        with database(app).session() as session:
            facts = read_facts(app, session)
    except SQLAlchemyError as exc:
        return {"status": "unavailable", "database": {"ok": False, "error": type(exc).__name__}}
    now = facts.now
    intervals = job_intervals(app.config)
    jobs_report: dict[str, Any] = {}
    for name in sorted(set(ALWAYS_RUN) | set(facts.heartbeats)):
        beat = facts.heartbeats.get(name)
        interval = intervals.get(name)
        late = late_after(interval) if interval is not None else None
        ok = beat is not None and (late is None or now - beat.finished_at <= late)
        jobs_report[name] = {
            "ok": ok,
            "last_success": _when(beat.finished_at if beat else None),
            "age_seconds": _age(now, beat.finished_at if beat else None),
            "late_after_seconds": late.total_seconds() if late is not None else None,
            "by": beat.host if beat else None,
        }
    mailboxes = [
        {
            "mailbox": label,
            "ok": status.ok,
            "last_good_poll": _when(status.last_ok_at),
            "last_checked": _when(status.checked_at),
            "failing_since": None if status.ok else _when(status.since),
            "failures": status.failures,
        }
        for label, status in facts.mailboxes
    ]
    backlog = facts.backlog
    oldest_age = _age(now, backlog.oldest_waiting)
    outbox = {
        "ok": backlog.oldest_waiting is None or now - backlog.oldest_waiting <= OUTBOX_STUCK,
        "waiting": backlog.waiting,
        "failed": backlog.failed,
        "oldest_waiting": _when(backlog.oldest_waiting),
        "oldest_waiting_seconds": oldest_age,
    }
    checks_ok = (
        all(j["ok"] for j in jobs_report.values())
        and all(m["ok"] for m in mailboxes)
        and bool(outbox["ok"])
    )
    return {
        "status": "ok" if checks_ok else "degraded",
        "database": {"ok": True},
        "jobs": jobs_report,
        "mailboxes": mailboxes,
        "outbox": outbox,
    }


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return _no_store(jsonify(status="ok"))

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        report = readiness(app)
        strict = request.args.get("strict", "") not in ("", "0")
        failed = report["status"] == "unavailable" or (strict and report["status"] != "ok")
        return _no_store(jsonify(report)), 503 if failed else 200
