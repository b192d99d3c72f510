"""Background jobs, run by APScheduler in `intake serve` (and, later, `intake worker`).

Each job opens its own app context and session; the app is made once, by the entry point.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from . import contactlog
from .db import database
from .deskstore import current_desk
from .errors import NoDeskError

log = logging.getLogger(__name__)


def purge_expired(app: Flask) -> int:
    """Remove contacts older than the desk's retention period; how many were removed."""
    with app.app_context(), database(app).session() as session:
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


def start_scheduler(app: Flask) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(
        purge_expired,
        "interval",
        hours=6,
        args=[app],
        id="retention",
        # The scheduler's own clock, not the app's: it is the shell that decides when to run.
        next_run_time=datetime.now(UTC) + timedelta(minutes=1),
    )
    scheduler.start()
    return scheduler
