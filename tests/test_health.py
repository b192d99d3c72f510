"""`/healthz` and `/readyz`, as a load balancer and monitoring read them, on both databases.

- `/readyz` says the database works, when each of the scheduler's jobs last succeeded, each
  mailbox's last good poll, and the outbox's backlog with its oldest waiting message;
- a late worker or a failing mailbox is "degraded" but still 200 (the webhooks do not need
  them); `?strict=1` makes it 503 for monitoring; a database that cannot be read is 503;
- neither names a phone number nor an address.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from intake import create_app
from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import JobHeartbeat
from intake.shell.heartbeats import record_success
from intake.shell.jobs import Retrying
from routing.desk import Desk

from .conftest import Twilio, app_config, leave_voicemail, new_call
from .factories import add_contact, add_mail, save
from .health_rows import (
    ALWAYS_RUN,
    assert_no_patient_or_desk_details,
    every_job_ran,
    mailbox_round,
    outbox_row,
)


def iso(moment: datetime) -> str:
    """As /readyz gives a moment: in UTC."""
    return moment.astimezone(UTC).isoformat()


def ready(client: FlaskClient, query: str = "") -> tuple[int, dict[str, Any]]:
    reply = client.get("/readyz" + query)
    assert reply.content_type == "application/json"
    assert reply.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = reply.get_json()
    return reply.status_code, body


def test_healthz_says_the_process_lives(client: FlaskClient) -> None:
    reply = client.get("/healthz")
    assert (reply.status_code, reply.get_json()) == (200, {"status": "ok"})


def test_readyz_reports_jobs_mailboxes_and_outbox_when_all_is_well(
    app: Flask, client: FlaskClient, desk: Desk, clock: SimClock
) -> None:
    started = clock()
    every_job_ran(app)
    mailbox_round(app, ok=True)
    save(app, outbox_row(app, 1, started - timedelta(minutes=2)))
    save(app, outbox_row(app, 2, started - timedelta(minutes=1)))
    save(app, outbox_row(app, 3, started - timedelta(hours=3), failed_at=started))
    save(app, outbox_row(app, 4, started - timedelta(hours=4), sent_at=started))
    clock.advance(30)

    status, body = ready(client)

    assert status == 200
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True}
    assert sorted(body["jobs"]) == sorted(ALWAYS_RUN)
    poll = body["jobs"]["mail-poll"]
    assert poll["ok"] is True
    assert poll["age_seconds"] == 30.0
    assert poll["last_success"] == iso(started)
    assert body["mailboxes"] == [
        {
            "mailbox": "Ziekenhuis Noord",
            "ok": True,
            "last_good_poll": iso(started),
            "last_checked": iso(started),
            "failing_since": None,
            "failures": 0,
        }
    ]
    assert body["outbox"] == {
        "ok": True,
        "waiting": 2,
        "failed": 1,
        "oldest_waiting": iso(started - timedelta(minutes=2)),
        "oldest_waiting_seconds": 150.0,
    }


def test_a_job_that_ran_through_the_scheduler_shell_leaves_its_heartbeat(
    app: Flask, client: FlaskClient, clock: SimClock
) -> None:
    Retrying("outbox", lambda _app: None, app)()

    def broken(_app: Flask) -> None:
        raise OSError("SMTP server unreachable")

    Retrying("backlog", broken, app)()  # a failure is no heartbeat

    _, body = ready(client)
    assert body["jobs"]["outbox"]["ok"] is True
    assert body["jobs"]["outbox"]["last_success"] == iso(clock())
    assert body["jobs"]["backlog"] == {
        "ok": False,
        "last_success": None,
        "age_seconds": None,
        "late_after_seconds": 420.0,
        "by": None,
    }


def test_a_late_worker_is_degraded_but_keeps_the_web_host_in_the_balancer(
    app: Flask, client: FlaskClient, desk: Desk, clock: SimClock
) -> None:
    every_job_ran(app)
    clock.advance(6 * 60 + 1)  # the outbox (every 30 s) is late after 6 minutes
    record_success(app, "retention")

    status, body = ready(client)
    strict, _ = ready(client, "?strict=1")

    assert (status, body["status"]) == (200, "degraded")
    assert body["jobs"]["outbox"]["ok"] is False
    assert body["jobs"]["retention"]["ok"] is True
    assert strict == 503


def test_a_failing_mailbox_shows_since_when_and_its_last_good_poll(
    app: Flask, client: FlaskClient, desk: Desk, clock: SimClock
) -> None:
    every_job_ran(app)
    good = clock()
    mailbox_round(app, ok=True)
    clock.advance(60)
    failing = clock()
    mailbox_round(app, ok=False)
    clock.advance(60)
    mailbox_round(app, ok=False)

    status, body = ready(client)

    assert (status, body["status"]) == (200, "degraded")
    [mailbox] = body["mailboxes"]
    assert mailbox["ok"] is False
    assert mailbox["last_good_poll"] == iso(good)
    assert mailbox["failing_since"] == iso(failing)
    assert mailbox["failures"] == 2
    assert ready(client, "?strict=1")[0] == 503


def test_an_outbox_message_waiting_half_an_hour_is_stuck(
    app: Flask, client: FlaskClient, clock: SimClock
) -> None:
    every_job_ran(app)
    save(app, outbox_row(app, 1, clock() - timedelta(minutes=31)))

    _, body = ready(client)

    assert body["outbox"]["ok"] is False
    assert body["status"] == "degraded"


def _unreadable(database_url: str, tmp_path: Path) -> str:
    """The same server, without the schema: a schema that was dropped, an empty file."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return re.sub(r"search_path%3D\w+", "search_path%3Dno_such_schema", database_url)


@pytest.mark.parametrize("broken", ["dropped schema", "closed port"])
def test_readyz_is_503_when_the_database_cannot_be_read(
    database_url: str, clock: SimClock, tmp_path: Path, broken: str
) -> None:
    url = (
        _unreadable(database_url, tmp_path)
        if broken == "dropped schema"
        else "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2"
    )
    app = create_app(app_config(url, clock, tmp_path))
    try:
        status, body = ready(app.test_client())
        healthz = app.test_client().get("/healthz").status_code
    finally:
        database(app).engine.dispose()

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is False
    assert healthz == 200  # the process lives: no restart for a database outage


def test_readyz_names_no_number_and_no_address_for_a_desk_with_contacts(
    app: Flask, client: FlaskClient, desk: Desk, twilio: Twilio
) -> None:
    twilio.call()
    leave_voicemail(new_call(twilio, caller="+31687654321"))
    mail = add_contact(app, channel="mail", caller="jan.jansen@example.net")
    add_mail(app, mail)
    every_job_ran(app)
    mailbox_round(app, ok=False)
    save(app, outbox_row(app, 1, app.config["CLOCK"]()))

    text = client.get("/readyz").get_data(as_text=True)

    assert_no_patient_or_desk_details(text)


def test_idle_sync_is_judged_once_a_worker_with_idle_ran_it(
    app: Flask, client: FlaskClient, clock: SimClock
) -> None:
    every_job_ran(app)
    assert "idle-sync" not in ready(client)[1]["jobs"]  # a worker without IDLE: not expected
    record_success(app, "idle-sync")
    clock.advance(2 * 60 + 5 * 60 + 1)  # every minute: late after 7 minutes
    every_job_ran(app)

    _, body = ready(client)

    assert body["jobs"]["idle-sync"]["ok"] is False
    assert body["jobs"]["idle-sync"]["late_after_seconds"] == 420.0


def _at_once(count: int, work: Callable[[], None]) -> list[BaseException]:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(10)
            work()
        except BaseException as exc:  # what the test is looking for
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_failed_polls_of_workers_at_once_are_each_counted(
    app: Flask, client: FlaskClient, desk: Desk
) -> None:
    """The counter is added to by the database, not read and written back."""
    mailbox_round(app, ok=False)

    errors = _at_once(8, lambda: mailbox_round(app, ok=False))

    assert errors == []
    [mailbox] = ready(client)[1]["mailboxes"]
    assert mailbox["failures"] == 9


def test_workers_finishing_a_job_at_once_leave_one_heartbeat(
    app: Flask, client: FlaskClient, clock: SimClock
) -> None:
    errors = _at_once(8, lambda: record_success(app, "outbox"))

    assert errors == []
    with database(app).session() as session:
        beats = session.scalars(select(JobHeartbeat)).all()
    assert [(b.name, b.finished_at) for b in beats] == [("outbox", clock())]
