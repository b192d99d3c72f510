"""The scheduler and the worker: where the jobs run, and that they never run twice at once.

- `create_app()`, which every gunicorn worker calls, starts no scheduler and no thread;
- two `intake worker` processes on one database and mailbox log every mail exactly once,
  and stop cleanly on SIGTERM;
- when the worker that is polling dies, the other one takes over;
- two processes flushing the outbox at once send each message once;
- a slow poll never overlaps the next (APScheduler's max_instances=1).

The workers are real `intake worker` processes (INTAKE_POLL_SECONDS=1) reading the real
clock, so the desk loaded here is open around the clock (see tests.test_mail_crash).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import select

from intake import create_app
from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import Contact, MailboxState, MailMessage, OutboxMessage
from intake.shell import jobs
from mail.poller import LOGGED_KEYWORD, poll
from tests.mailservers import configure_mail

from .conftest import app_config, load_desk
from .factories import always_open_desk, message_id, numbered_mail
from .intake_process import count, end_dead_leases, intake_env, start_intake
from .mailbox import append_all, flags_of_all

if TYPE_CHECKING:
    from tests.mailservers import Dovecot, SmtpSink

STOP_TIMEOUT = 5.0  # seconds a worker may take to stop after SIGTERM
WAIT_TIMEOUT = 60.0  # seconds to wait for the workers to log what was sent


@pytest.fixture
def worker_app(app: Flask, clock: SimClock) -> Iterator[Flask]:
    """The test database with a desk open now; the app's clock at the real time."""
    clock.moment = datetime.now(UTC)
    load_desk(app, always_open_desk())
    yield app


# Processes started together here each get an instance folder of their own.
# On a shared one they can trip over each other compiling the translations at start (see
# test_workers_starting_at_once_on_a_fresh_instance_folder_all_start), which is not what
# these tests are about.


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


@dataclass
class Worker:
    """An `intake worker` process and the files its output goes to."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    @classmethod
    def start(cls, env: dict[str, str], cwd: Path, name: str) -> Worker:
        return cls(*start_intake(["worker"], env, cwd, name))

    @property
    def running(self) -> bool:
        """Started its scheduler (it says so just before)."""
        return "worker running" in self.out.read_text()

    @property
    def log(self) -> str:
        return self.err.read_text()

    def terminate(self) -> int:
        """SIGTERM, as systemd or `docker stop` sends; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def start_workers(
    worker_app: Flask, database_url: str, dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path
) -> Iterator[Callable[[], list[Worker]]]:
    """Starts two `intake worker` processes on the test database and servers, polling every
    second; waits until both run. Whatever is left running is killed at the end."""
    started: list[Worker] = []

    def start() -> list[Worker]:
        pair = [
            Worker.start(
                intake_env(
                    database_url,
                    tmp_path,
                    dovecot,
                    smtp,
                    INTAKE_POLL_SECONDS="1",
                    INTAKE_LOG_LEVEL="INFO",
                    INTAKE_INSTANCE_PATH=str(tmp_path / f"instance{n}"),  # one each: see above
                ),
                tmp_path,
                f"worker{n}",
            )
            for n in range(2)
        ]
        started.extend(pair)
        wait_until(lambda: all(w.running for w in pair), 30, "both workers running")
        return pair

    try:
        yield start
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.kill()


def logged(app: Flask) -> Counter[str | None]:
    with database(app).session() as session:
        return Counter(session.scalars(select(MailMessage.message_id)))


# --- (a) the web app starts nothing in the background ---------------------------------------


def test_create_app_starts_no_scheduler_and_no_thread(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each gunicorn worker makes the app: none may start a scheduler of its own."""
    # The environment of a real deployment, mail settings and all.
    for name, value in {
        "INTAKE_DATABASE_URL": database_url,
        "INTAKE_INSTANCE_PATH": str(tmp_path / "instance"),
        "INTAKE_SECRET_KEY": "test",
        "INTAKE_IMAP_HOST": "127.0.0.1",
        "INTAKE_IMAP_USER": "helpdesk@example.org",
        "INTAKE_SMTP_HOST": "127.0.0.1",
        "INTAKE_POLL_SECONDS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env
    before = set(threading.enumerate())

    apps = [create_app() for _ in range(3)]  # as three gunicorn workers would
    for app in apps:
        assert app.test_client().get("/healthz").status_code == 200

    try:
        started = set(threading.enumerate()) - before
        assert started == set(), [t.name for t in started]
        assert not any(
            isinstance(v, BackgroundScheduler) for a in apps for v in a.extensions.values()
        )
    finally:
        for app in apps:
            database(app).engine.dispose()


def test_workers_starting_at_once_on_a_fresh_instance_folder_all_start(tmp_path: Path) -> None:
    """`gunicorn -w 4` starts its workers together, on one instance folder, and each makes
    the app (and so compiles the translations into that folder). None may fail to start."""
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    failed: list[BaseException] = []
    made: list[Flask] = []

    def make(instance: Path, together: threading.Barrier) -> None:
        together.wait()
        try:
            made.append(create_app(app_config(url, SimClock(datetime.now(UTC)), instance)))
        except Exception as exc:
            failed.append(exc)

    try:
        for attempt in range(5):  # a race: a few rounds make it show
            together = threading.Barrier(6)
            instance = tmp_path / f"instance{attempt}"
            threads = [
                threading.Thread(target=make, args=(instance, together))
                for _ in range(together.parties)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
    finally:
        for app in made:
            database(app).engine.dispose()

    assert [f"{type(e).__name__}: {e}" for e in failed] == []


# --- (b) two workers, one mailbox ------------------------------------------------------------


def test_two_workers_log_every_mail_exactly_once_and_stop_cleanly_on_sigterm(
    worker_app: Flask, start_workers: Callable[[], list[Worker]], dovecot: Dovecot
) -> None:
    workers = start_workers()
    total = 0
    for _ in range(4):  # mail keeps coming while the workers poll
        append_all(dovecot, [numbered_mail(total + n) for n in range(5)])
        total += 5
        time.sleep(0.4)
    wait_until(lambda: count(worker_app, MailMessage) >= total, WAIT_TIMEOUT, "all mail logged")
    time.sleep(1.0)  # a poll more: nothing may be logged twice, late

    codes = [w.terminate() for w in workers]

    assert codes == [0, 0], [w.log for w in workers]
    assert not any("Traceback" in w.log for w in workers)
    assert logged(worker_app) == Counter({message_id(n): 1 for n in range(total)})
    with database(worker_app).session() as session:
        contacts = Counter(session.scalars(select(Contact.message_id)))
        [state] = session.scalars(select(MailboxState)).all()
    assert contacts == Counter({message_id(n): 1 for n in range(total)})
    flags = flags_of_all(dovecot)
    assert state.last_uid == max(flags)
    assert all(LOGGED_KEYWORD in f for f in flags.values())


# --- (c) the poller dies, the other worker takes over ---------------------------------------


def test_when_the_polling_worker_dies_the_other_takes_over(
    worker_app: Flask,
    start_workers: Callable[[], list[Worker]],
    dovecot: Dovecot,
    database_url: str,
) -> None:
    many = 60
    append_all(dovecot, [numbered_mail(n, attachment=200_000 * (n % 6 == 0)) for n in range(many)])
    workers = start_workers()  # the first poll takes it all: a few seconds' work

    def polling() -> Worker | None:
        """The worker holding the lock: the one logging mail (each at INFO), once some is in."""
        busy = [w for w in workers if "mail HD-" in w.log]
        return busy[0] if len(busy) == 1 and count(worker_app, MailMessage) > 0 else None

    wait_until(lambda: polling() is not None, WAIT_TIMEOUT, "one worker logging mail")
    holder = polling()
    assert holder is not None
    [other] = [w for w in workers if w is not holder]
    holder.kill()  # SIGKILL, mid-poll: no chance to let go of the lock
    done = count(worker_app, MailMessage)
    assert done < many, "the poll ended before the kill; use more mail"

    if database_url.startswith("sqlite"):
        # A lease, not a connection: the other worker waits for it to run out, five minutes
        # (intake.core.locks.DEFAULT_LEASE, not configurable). Meanwhile it steps aside...
        seen = len(other.log)
        wait_until(lambda: "another process is polling" in other.log[seen:], 10, "the other waits")
        assert count(worker_app, MailMessage) == done
        end_dead_leases(worker_app, database_url)  # ...and five minutes later:

    wait_until(lambda: count(worker_app, MailMessage) >= many, WAIT_TIMEOUT, "the rest logged")
    append_all(dovecot, [numbered_mail(n) for n in range(many, many + 3)])
    wait_until(lambda: count(worker_app, MailMessage) >= many + 3, WAIT_TIMEOUT, "new mail")

    assert other.terminate() == 0, other.log
    assert logged(worker_app) == Counter({message_id(n): 1 for n in range(many + 3)})
    assert all(LOGGED_KEYWORD in f for f in flags_of_all(dovecot).values())


# --- two processes flushing the outbox at once ------------------------------------------------


def test_two_processes_flushing_at_once_send_each_message_once(
    worker_app: Flask,
    database_url: str,
    dovecot: Dovecot,
    smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    """`intake serve` beside `intake worker`, two workers, or cron's `intake poll-once`
    overlapping a worker: each flushes the outbox every 30 s, and they meet."""
    queued = 40
    append_all(dovecot, [numbered_mail(n, attachment=100_000) for n in range(queued)])
    configure_mail(worker_app, dovecot, smtp=None)
    assert poll(worker_app).logged == queued  # forwards queued, sending off
    flushers = [
        start_intake(
            ["poll-once"],
            intake_env(
                database_url,
                tmp_path,
                dovecot,
                smtp,
                INTAKE_INSTANCE_PATH=str(tmp_path / f"instance{n}"),  # one each: see above
            ),
            tmp_path,
            f"flush{n}",
        )
        for n in range(2)
    ]
    for process, _out, err in flushers:
        assert process.wait(timeout=WAIT_TIMEOUT) == 0, err.read_text()

    with database(worker_app).session() as session:
        outbox = set(session.scalars(select(OutboxMessage.message_id)))
    arrived = Counter(str(m.message["Message-ID"]) for m in smtp.messages)
    assert set(arrived) == outbox
    twice = sorted(mid for mid, n in arrived.items() if n > 1)
    assert twice == [], f"{len(twice)} of {queued} forwards sent twice"


# --- (d) a slow poll never overlaps the next --------------------------------------------------


def test_a_slow_poll_never_overlaps_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The real `schedule()`, its mail-poll job every second, and a poll that takes longer."""
    app = create_app(
        app_config(f"sqlite:///{tmp_path / 'idle.db'}", SimClock(datetime.now(UTC)), tmp_path)
    )
    app.config["POLL_SECONDS"] = 1
    took = 1.3  # each poll takes longer than the interval
    lock = threading.Lock()
    running: list[float] = []
    spans: list[tuple[float, float]] = []
    most = 0

    def slow_poll(_app: Flask) -> None:
        nonlocal most
        with lock:
            running.append(time.monotonic())
            most = max(most, len(running))
        time.sleep(took)
        with lock:
            spans.append((running.pop(0), time.monotonic()))

    def idle(_app: Flask) -> None:
        return None

    monkeypatch.setattr(jobs, "poll_mailbox", slow_poll)
    for other in ("flush_outbox", "release_backlog", "purge_expired"):
        monkeypatch.setattr(jobs, other, idle)
    scheduler = jobs.schedule(BackgroundScheduler(), app)
    job: Any = scheduler.get_job("mail-poll")
    assert (job.max_instances, job.coalesce) == (1, True)
    scheduler.modify_job("mail-poll", next_run_time=datetime.now(UTC))  # now, not in 2 s

    try:
        with caplog.at_level(logging.WARNING, logger="apscheduler"):
            scheduler.start()
            try:
                wait_until(lambda: len(spans) >= 2, 20, "two polls")
            finally:
                scheduler.shutdown(wait=True)
    finally:
        database(app).engine.dispose()

    assert most == 1
    (_, first_end), (second_start, _) = sorted(spans)[:2]
    assert first_end <= second_start
    # The scheduler did want to start the next one while the last still ran, and did not.
    assert "maximum number of running instances reached" in caplog.text
