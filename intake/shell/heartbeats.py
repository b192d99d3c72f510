"""When each of the scheduler's jobs last finished without an error.

The worker that ran a job writes its row (`job_heartbeat`); every web host reads the same
rows for /readyz and /metrics, so "the jobs ran recently" is true or false alike for all of
them, wherever the worker runs.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime

from flask import Flask
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from intake.core.db import database
from intake.core.models import JobHeartbeat

log = logging.getLogger(__name__)


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def record_success(app: Flask, job: str) -> None:
    """The job `job` has just finished well. A database that fails here is logged: the
    job's own work is done, and /readyz will show the heartbeat as late."""
    now: datetime = app.config["CLOCK"]()
    values = {"name": job[:40], "finished_at": now, "host": this_process()}
    try:
        with database(app).session() as session:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            statement = dialect.insert(JobHeartbeat).values(**values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["name"],
                    set_={"finished_at": now, "host": values["host"]},
                )
            )
            session.commit()
    except SQLAlchemyError as exc:
        log.warning("%s: its heartbeat could not be written (%s)", job, exc.__class__.__name__)


def last_successes(session: Session) -> dict[str, JobHeartbeat]:
    return {row.name: row for row in session.scalars(select(JobHeartbeat))}
