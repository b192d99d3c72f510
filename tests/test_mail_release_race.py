"""Two workers release the held mail at the same moment: each mail is forwarded once.

Workers on two hosts both run the backlog job when a shift starts. Each worker here is a
process of its own (multiprocessing's spawn: a fresh interpreter, its own app and database
connections), released together by a barrier once both are ready, against the test
database. Bounded: a few dozen held mails, each process given a minute at most, and both
ended by their pid whatever happens.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections import Counter
from datetime import datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from intake import create_app
from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import Contact, OutboxMessage
from intake.shell.jobs import release_backlog
from routing.desk import Desk

from .conftest import app_config
from .factories import DESK_ADDRESS, add_contact, add_mail, numbered_mail

HELD = 12  # mails held over the weekend
WORKERS = 2
SECONDS = 60.0


def worker(
    database_url: str, moment: str, instance: str, start: Barrier, out: queue.Queue[int]
) -> None:
    """One worker's backlog job, in a process of its own, once every worker is ready."""
    app = create_app(
        app_config(database_url, SimClock(datetime.fromisoformat(moment)), Path(instance))
    )
    start.wait(SECONDS)
    out.put(release_backlog(app))


def hold(app: Flask, n: int) -> int:
    """Patient mail number `n`, acknowledged and held for the shift; its contact's id."""
    contact_id = add_contact(
        app,
        channel="mail",
        outcome="acknowledged",
        via=DESK_ADDRESS,
        caller=f"patient{n}@example.nl",
        forward_pending=True,
    )
    add_mail(app, contact_id, raw=numbered_mail(n, tag="held"), uid=n)
    return contact_id


def test_two_workers_releasing_held_mail_at_once_forward_each_mail_once(
    app: Flask, desk: Desk, database_url: str, tmp_path: Path
) -> None:
    held = [hold(app, n) for n in range(HELD)]

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    out: queue.Queue[int] = context.Queue()
    moment = app.config["CLOCK"]().isoformat()  # Monday morning: Anna and Bram on shift
    processes = [
        context.Process(
            target=worker, args=(database_url, moment, str(tmp_path / f"w{i}"), start, out)
        )
        for i in range(WORKERS)
    ]
    try:
        for process in processes:
            process.start()
        released = [out.get(timeout=SECONDS) for _ in processes]
        for process in processes:
            process.join(SECONDS)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()

    assert sum(released) == HELD
    with database(app).session() as session:
        forwards = Counter(
            session.scalars(select(OutboxMessage.contact_id).where(OutboxMessage.kind == "forward"))
        )
        rows = session.scalars(select(Contact).where(Contact.id.in_(held))).all()
    assert forwards == Counter(held)  # each held mail forwarded once
    assert {(row.outcome, row.forward_pending) for row in rows} == {("forwarded", False)}
