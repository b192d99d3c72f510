"""The scheduler and the worker: where the jobs run, and that they never run twice at once.

- `create_app()`, which every gunicorn worker calls, starts no scheduler and no thread;
- two `intake worker` processes on one database and mailbox log every mail exactly once,
  and stop cleanly on SIGTERM;
- when the worker that is polling dies, the other one takes over;
- two processes flushing the outbox at once send each message once;
- a slow poll never overlaps the next (APScheduler's max_instances=1);
- a job whose database connection dropped is done again at once; a failure that stays is
  tried again after a pause that doubles (its time injected).

The workers are real `intake worker` processes (INTAKE_POLL_SECONDS=1) reading the real
clock, so the desk loaded here is open around the clock (see tests.test_mail_crash).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from imapclient import IMAPClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from intake import create_app
from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import Contact, MailboxState, MailboxStatus, MailMessage, OutboxMessage
from intake.shell import jobs
from mail.mailboxes import MailboxRound, poll_every_mailbox
from mail.poller import FETCH_COUNT, LOGGED_KEYWORD, ImapSettings, connect, poll
from routing.desk import Mailbox, MailServer, Signin
from tests.mailservers import configure_mail

from .app_start import make_app
from .conftest import app_config, load_desk
from .factories import DESK_ADDRESS, always_open_desk, message_id, numbered_mail
from .intake_process import (
    Worker,
    count,
    end_dead_leases,
    intake_env,
    named_url,
    start_intake,
    terminate_named,
    wait_until,
)
from .mailbox import append_all, flags_of_all

if TYPE_CHECKING:
    from tests.mailservers import Dovecot, SmtpSink

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
    """`gunicorn -w 4` starts its worker processes together, on one instance folder, and
    each makes the app (and so compiles the translations into that folder). None may fail
    to start. Processes, as gunicorn's are: threads making apps at once would also test
    CPython 3.11's own race in building AST objects (werkzeug builds its URL rules so),
    which no deployment meets."""
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    context = multiprocessing.get_context("spawn")
    failures: list[str] = []
    for attempt in range(3):  # a race: a few rounds make it show
        together = context.Barrier(4)
        found = context.Queue()
        config = app_config(url, SimClock(datetime.now(UTC)), tmp_path / f"instance{attempt}")
        children = [
            context.Process(target=make_app, args=(config, together, found))
            for _ in range(together.parties)
        ]
        try:
            for child in children:
                child.start()
            for child in children:
                child.join(timeout=120)
            assert [child.exitcode for child in children] == [0] * len(children)
        finally:
            for child in children:
                if child.is_alive():
                    child.kill()  # by its pid
                    child.join(5)
        while not found.empty():
            failures.append(found.get())

    assert failures == []


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
    # Three batches and a bit: the first worker's poll is still at it once its first batch
    # is committed (what the test waits for), however fast the machine.
    many = 3 * FETCH_COUNT + 10
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


# --- (e) a job that fails: at once after a dropped connection, a growing pause otherwise -----


def dropped() -> OperationalError:
    """What SQLAlchemy raises when the server closed a pooled connection under a statement."""
    cause = Exception("terminating connection due to administrator command")
    return OperationalError("SELECT 1", None, cause, connection_invalidated=True)


def refused() -> OperationalError:
    """What it raises when no connection can be made at all (the server is down)."""
    cause = Exception('connection to server at "127.0.0.1", port 5432 failed: refused')
    return OperationalError(None, None, cause)


@dataclass
class FailingJob:
    """A job that raises what `failures` makes, one per run, then works."""

    failures: list[Callable[[], Exception]]
    runs: list[float] = field(default_factory=list)
    clock: SimClock = field(default_factory=lambda: SimClock(datetime(2026, 11, 23, tzinfo=UTC)))
    heartbeats: list[float] = field(default_factory=list)  # when a run was reported good

    def __call__(self, _app: Flask) -> None:
        self.runs.append((self.clock() - datetime(2026, 11, 23, tzinfo=UTC)).total_seconds())
        if self.failures:
            raise self.failures.pop(0)()

    def heartbeat(self, _app: Flask, _name: str) -> None:
        self.heartbeats.append((self.clock() - datetime(2026, 11, 23, tzinfo=UTC)).total_seconds())


def every_second(job: FailingJob, seconds: int) -> jobs.Retrying:
    """The job as the scheduler runs it: through Retrying, once a second for `seconds`."""
    retrying = jobs.Retrying(
        "mail-poll", job, Flask(__name__), now=job.clock, succeeded=job.heartbeat
    )
    for _ in range(seconds):
        retrying()
        job.clock.advance(1)
    return retrying


def test_a_dropped_database_connection_is_done_again_at_once_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = FailingJob([dropped])

    with caplog.at_level(logging.DEBUG, logger="intake.shell.jobs"):
        retrying = every_second(job, 3)

    assert job.runs == [0, 0, 1, 2]  # the second run at once, then on schedule
    assert job.heartbeats == [0, 1, 2]  # each good run is reported once, the redone one too
    assert (retrying.failures, retrying.resume_at) == (0, None)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [
        (
            "WARNING",
            "mail-poll: the database connection dropped (OperationalError); "
            "doing it again on a fresh one",
        )
    ]


# When each try runs, the job scheduled every second and failing for good in each way.
@pytest.mark.parametrize(
    ("failure", "runs"),
    [
        # IMAP or SMTP down, a refused sign-in: 30 s, then 60 s, 120 s...
        pytest.param(lambda: ConnectionRefusedError(111, "refused"), [0, 30, 90, 210], id="imap"),
        # The database server down: back within a second or two of it, then every 15 s,
        # however long it stays down (as the webhooks are back at their next request).
        pytest.param(refused, [0, 1, 3, 7, *range(15, 250, 15)], id="database-down"),
        # Every connection dropped under each try: twice at once, then as for a down server.
        pytest.param(dropped, [t for t in (0, 1, 3, 7, *range(15, 250, 15)) for _ in (1, 2)],
                     id="dropped-each-time"),
    ],
)  # fmt: skip
def test_a_failure_that_stays_is_tried_again_after_a_pause_that_doubles(
    failure: Callable[[], Exception], runs: list[float]
) -> None:
    job = FailingJob([failure] * 1000)

    every_second(job, 250)

    assert job.runs == runs


def test_the_pause_stops_doubling_at_fifteen_minutes() -> None:
    job = FailingJob([lambda: ConnectionRefusedError(111, "refused")] * 1000)

    every_second(job, 3 * 3600)

    gaps = [b - a for a, b in zip(job.runs, job.runs[1:], strict=False)]
    assert gaps == [30, 60, 120, 240, 480, *[900] * (len(gaps) - 5)]
    assert len(gaps) > 8


def test_each_failure_is_one_line_its_traceback_when_it_starts_or_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    imap_down = lambda: ConnectionRefusedError(111, "refused")  # noqa: E731
    job = FailingJob([imap_down, imap_down, imap_down, lambda: TimeoutError("timed out")])

    with caplog.at_level(logging.INFO, logger="intake.shell.jobs"):
        every_second(job, 30 + 60 + 120 + 240 + 1)

    assert len(job.runs) == 5
    said = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records]
    refused_for = "mail-poll failed (ConnectionRefusedError: [Errno 111] refused); not tried again"
    refused_for += " for"
    assert said == [
        ("ERROR", f"{refused_for} 30 s", True),
        ("ERROR", f"{refused_for} 60 s", False),
        ("ERROR", f"{refused_for} 120 s", False),
        ("ERROR", "mail-poll failed (TimeoutError: timed out); not tried again for 240 s", True),
        ("INFO", "mail-poll works again after 4 failures", False),
    ]


@dataclass
class NamedWorker:
    """A worker's app in this process whose PostgreSQL connections carry `name`, with a
    desk whose one mailbox (on the test Dovecot) is its own."""

    app: Flask
    name: str
    mailbox: Mailbox


@pytest.fixture
def named_worker(
    app: Flask, database_url: str, dovecot: Dovecot, tmp_path: Path, clock: SimClock
) -> Iterator[NamedWorker]:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server whose connections could be ended")
    name = f"it-{secrets.token_hex(4)}"
    worker = create_app(app_config(named_url(database_url, name), clock, tmp_path / "worker"))
    clock.moment = datetime.now(UTC)
    mailbox = Mailbox(
        address=DESK_ADDRESS,
        organisation="Ziekenhuis Noord",
        imap=MailServer(host=dovecot.host, port=dovecot.port, tls="starttls",
                        cafile=dovecot.cafile),
        signin=Signin(password_env="INTAKE_MAILBOX_PASSWORD"),
    )  # fmt: skip
    load_desk(app, dataclasses.replace(always_open_desk(), mailboxes=(mailbox,)))
    worker.config["MAILBOX_ENVIRONMENT"] = {"INTAKE_MAILBOX_PASSWORD": dovecot.password}
    try:
        yield NamedWorker(worker, name, mailbox)
    finally:
        database(worker).engine.dispose()


def test_a_poll_whose_connections_are_all_ended_logs_its_mail_at_once_and_the_mailbox_stays_well(
    app: Flask,
    named_worker: NamedWorker,
    database_url: str,
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The real thing: every connection of the worker ended in the middle of its poll (while
    it holds the mailbox's lock and talks to the IMAP server). The job does it again at once
    and the mail is logged, once; the mailbox is not marked as failing."""
    append_all(dovecot, [numbered_mail(n) for n in range(3)])
    ended: list[list[str]] = []

    def connect_then_end_every_connection(settings: ImapSettings) -> IMAPClient:
        client = connect(settings)
        if not ended:
            ended.append(terminate_named(database_url, named_worker.name))
        return client

    def poll_job(app: Flask) -> list[MailboxRound]:
        return poll_every_mailbox(app, connector=connect_then_end_every_connection)

    with caplog.at_level(logging.INFO):
        jobs.Retrying("mail-poll", poll_job, named_worker.app)()

    assert ended and ended[0]  # the lock's connection at least
    assert logged(app) == Counter({message_id(n): 1 for n in range(3)})
    with database(app).session() as session:
        assert [(s.ok, s.error) for s in session.scalars(select(MailboxStatus))] == [(True, "")]
    assert "doing it again on a fresh one" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_the_poll_woken_by_idle_after_every_connection_ended_logs_the_mail_at_once(
    app: Flask,
    named_worker: NamedWorker,
    database_url: str,
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """New mail wakes the poll (IDLE) just after the database ended every connection the
    worker had in its pool: the wake is done again at once, not left to the next poll."""
    assert jobs.idle_accounts(named_worker.app)  # the pool holds a connection now
    append_all(dovecot, [numbered_mail(0)])
    [account] = jobs.idle_accounts(named_worker.app)
    assert terminate_named(database_url, named_worker.name)

    with caplog.at_level(logging.INFO):
        done = jobs.poll_now(named_worker.app, account.key)

    assert done  # the watcher need not try again
    assert logged(app) == Counter({message_id(0): 1})
    assert "doing it again on a fresh one" in caplog.text
