"""Several hosts on one PostgreSQL: three web processes and two workers.

- 50 calls at once, spread over three gunicorn processes, some of them sent twice as Twilio
  repeats a request: every caller is put through (a <Dial> to the colleagues on shift),
  none gets the safe answer, and there is exactly one contact per call;
- the worker that holds the mailbox is SIGKILLed in the middle of a batch: the other takes
  the mailbox over within two poll intervals, and every message is logged exactly once;
- every database connection of these processes is ended while calls come in: no caller
  gets the safe answer or goes unlogged, and mail that arrives afterwards is logged within
  seconds, not after the 30 s a worker used to pause after one failed poll.

Each process's connections carry a name of its own (`application_name`), so the test sees
which worker holds the mailbox's lock and ends the connections of its own processes only,
never those of the tests running beside it on the same server. The processes read the real
clock: the desk is open around the clock. Web servers are stopped by the `web_servers`
fixture, workers by the `workers` fixture, each by its pid. PostgreSQL only: on SQLite the
processes of one host share a file, which is not what "several hosts" means.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import select

from intake.core.db import database
from intake.core.models import Contact, MailMessage
from routing.desk import Desk
from voice.simulator import new_sid

from .conftest import AUTH_TOKEN, PUBLIC_URL, load_desk
from .factories import always_open_desk, message_id, numbered_mail
from .intake_process import (
    Worker,
    count,
    intake_env,
    lock_holders,
    named_url,
    terminate_named,
    wait_until,
)
from .mailbox import append_all
from .twiml import dialled, only
from .webservers import Answer, WebServer, WebServers, all_at_once, call_params, web_env

if TYPE_CHECKING:
    from tests.mailservers import Dovecot, SmtpSink

CALLS = 50
REPEATS = 10  # of those, sent a second time at once, to another process
CALLS_DURING_CUT = 30
POLL_SECONDS = 1
# Three fetch batches: the poller writes plain mail a group at a time, so one batch of 40
# could be logged and committed between the holder's first log line and the kill.
MAIL = 150
LOGGED = " mail HD-"  # what a worker logs (at INFO) for each mail it logs
SAFE_ANSWER = "answering with its safe TwiML"  # what voice/webhook.py logs when it gives up
WAIT = 30.0  # seconds: the bound on anything the test waits for, far above what it takes
TAKEOVER_SECONDS = 2 * POLL_SECONDS  # the bound: two poll intervals
RECOVERY_SECONDS = 10.0  # mail after the cut: a few polls, well under the old 30 s pause


@pytest.fixture
def hosts_app(app: Flask, database_url: str) -> Iterator[Flask]:
    if not database_url.startswith("postgresql"):
        pytest.skip("several hosts share one PostgreSQL; SQLite is one host's file")
    load_desk(app, always_open_desk())
    yield app


@pytest.fixture
def name() -> str:
    """The start of the application_name of every connection this test's processes make."""
    return f"it-{secrets.token_hex(4)}"


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """The workers a test starts; each left running is SIGKILLed by its pid at the end."""
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.kill()


@dataclass
class Hosts:
    """The test's processes, all on one database, each with a name of its own."""

    app: Flask
    database_url: str
    name: str
    tmp_path: Path
    dovecot: Dovecot
    smtp: SmtpSink
    web_servers: WebServers
    started_workers: list[Worker]
    webs: list[WebServer] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    def url(self, process: str) -> str:
        return named_url(self.database_url, f"{self.name}-{process}")

    def start(self, webs: int, workers: int, **worker_env: str) -> list[WebServer]:
        """`workers` workers and `webs` gunicorn masters (one worker with four threads each:
        two cores, modest), all starting side by side; the web servers, once all run."""
        self.spawn_workers(workers, **worker_env)

        def start_web(i: int) -> WebServer:
            env = web_env(self.url(f"web{i}"), self.tmp_path / f"web{i}", PUBLIC_URL, AUTH_TOKEN)
            return self.web_servers.start(env, name=f"web{i}", workers=1, threads=4)

        with ThreadPoolExecutor(max(1, webs)) as pool:
            self.webs = list(pool.map(start_web, range(webs)))
        for worker in self.workers:
            worker.wait_running()
        return self.webs

    def spawn_workers(self, n: int, **extra: str) -> None:
        for i in range(n):
            env = intake_env(
                self.url(f"worker{i}"),
                self.tmp_path,
                self.dovecot,
                self.smtp,
                INTAKE_POLL_SECONDS=str(POLL_SECONDS),
                INTAKE_LOG_LEVEL="INFO",
                INTAKE_INSTANCE_PATH=str(self.tmp_path / f"worker{i}"),
                **extra,
            )
            worker = Worker.start(env, self.tmp_path, f"worker{i}")
            self.started_workers.append(worker)
            self.workers.append(worker)

    def stop(self) -> None:
        """Every worker SIGKILLed, every web server stopped (side by side), each by its pid;
        the fixtures do it again for anything left."""
        for worker in self.workers:
            worker.kill()
        with ThreadPoolExecutor(max(1, len(self.webs))) as pool:
            list(pool.map(WebServer.stop, self.webs))

    def holder(self) -> Worker | None:
        """The worker holding the mailbox's lock now, if one does."""
        names = lock_holders(self.database_url, self.name)
        holding = [w for w in self.workers if f"{self.name}-{w.name}" in names]
        return holding[0] if len(holding) == 1 else None

    def safe_answers(self) -> list[str]:
        """What the web processes logged of safe answers given (each a failed request)."""
        return [line for w in self.webs for line in w.log_tail(10_000).splitlines()
                if SAFE_ANSWER in line]  # fmt: skip


@pytest.fixture
def hosts(
    hosts_app: Flask,
    database_url: str,
    name: str,
    tmp_path: Path,
    dovecot: Dovecot,
    smtp: SmtpSink,
    web_servers: WebServers,
    workers: list[Worker],
) -> Iterator[Hosts]:
    hosts = Hosts(hosts_app, database_url, name, tmp_path, dovecot, smtp, web_servers, workers)
    try:
        yield hosts
    finally:
        hosts.stop()


def ring(server: WebServer, call_sid: str) -> Answer:
    return server.post_signed("/voice/incoming", call_params(call_sid))


def put_through(answer: Answer, desk: Desk) -> bool:
    """The caller hears the greeting and the colleagues on shift are rung."""
    if answer.status != 200 or answer.content_type != "text/xml" or answer.twiml is None:
        return False
    only(answer.twiml, "Dial")
    return sorted(dialled(answer.twiml)) == sorted(s.phone for s in desk.staff)


def call_sids(app: Flask) -> Counter[str | None]:
    with database(app).session() as session:
        return Counter(session.scalars(select(Contact.call_sid).where(Contact.channel == "call")))


def mail_logged(app: Flask) -> tuple[Counter[str | None], Counter[str | None]]:
    """Per Message-ID: its MailMessage rows and its contacts."""
    with database(app).session() as session:
        stored = Counter(session.scalars(select(MailMessage.message_id)))
        contacts = Counter(
            session.scalars(select(Contact.message_id).where(Contact.channel == "mail"))
        )
    return stored, contacts


# --- 50 calls at once ----------------------------------------------------------------------


def test_three_web_processes_put_50_calls_at_once_through_each_logged_once(
    hosts: Hosts,
) -> None:
    desk = always_open_desk()
    webs = hosts.start(webs=3, workers=2)  # the workers poll meanwhile, as in production
    sids = [new_sid("CA") for _ in range(CALLS)]
    requests = [partial(ring, webs[i % 3], sid) for i, sid in enumerate(sids)]
    # Twilio sends some requests again (a timeout on its side): at once, elsewhere.
    requests += [partial(ring, webs[(i + 1) % 3], sid) for i, sid in enumerate(sids[:REPEATS])]

    answers = all_at_once(requests, WAIT)

    failed = [a if isinstance(a, BaseException) else a.body for a in answers
              if isinstance(a, BaseException) or not put_through(a, desk)]  # fmt: skip
    assert failed == [], f"{len(failed)} of {len(answers)} callers not put through"
    assert hosts.safe_answers() == []
    assert call_sids(hosts.app) == Counter({sid: 1 for sid in sids})


# --- the worker holding the mailbox dies ---------------------------------------------------


def test_when_the_worker_holding_the_mailbox_is_killed_mid_batch_the_other_takes_over(
    hosts: Hosts,
) -> None:
    # A few large messages make the first batch take some seconds.
    append_all(hosts.dovecot, [numbered_mail(n, attachment=200_000 * (n % 5 == 0))
                               for n in range(MAIL)])  # fmt: skip
    hosts.start(webs=0, workers=2)

    # Mid-batch: the holder has begun logging the batch's messages (each is logged as it is
    # ingested, and committed with the rest of its batch). Who holds it is taken as seen at
    # that moment: a moment later the batch may be committed and the lock let go.
    holding: list[Worker] = []

    def busy_holder_found() -> bool:
        holder = hosts.holder()
        if holder is not None and LOGGED in holder.log:
            holding.append(holder)
            return True
        return False

    wait_until(busy_holder_found, WAIT, "a worker holding the mailbox, logging")
    holder = holding[-1]
    [other] = [w for w in hosts.workers if w is not holder]
    holder.kill()  # SIGKILL by its pid, mid-batch: no chance to let go of anything
    killed_at = time.monotonic()
    done = count(hosts.app, MailMessage)
    assert done < MAIL, "the batch ended before the kill; use more mail"
    logged_before = other.log.count(LOGGED)

    # Taken over: the other holds the mailbox's lock, or has logged mail since.
    wait_until(lambda: hosts.holder() is other or other.log.count(LOGGED) > logged_before,
               WAIT, "the other worker taking the mailbox over")  # fmt: skip
    took = time.monotonic() - killed_at
    print(f"the other worker took over {took:.2f} s after the kill")
    wait_until(lambda: count(hosts.app, MailMessage) >= MAIL, WAIT, "the rest logged")
    time.sleep(POLL_SECONDS + 0.5)  # a poll more: nothing may be logged twice, late

    stored, contacts = mail_logged(hosts.app)
    every_one_once = Counter({message_id(n): 1 for n in range(MAIL)})
    assert stored == every_one_once
    assert contacts == every_one_once
    assert took <= TAKEOVER_SECONDS, f"the other worker took over after {took:.1f} s"


# --- every database connection ended while calls come in -----------------------------------


def test_ending_every_database_connection_mid_calls_costs_no_caller_and_no_mail(
    hosts: Hosts,
) -> None:
    desk = always_open_desk()
    # No IMAP IDLE: its wake would log the mail on a fresh connection and hide the pause
    # of the scheduled poll, which is what this test is about.
    webs = hosts.start(webs=3, workers=2, INTAKE_IDLE="0")
    append_all(hosts.dovecot, [numbered_mail(0, tag="before")])
    wait_until(lambda: count(hosts.app, MailMessage) == 1, WAIT, "mail logged before the cut")
    before = [new_sid("CA") for _ in webs]
    for web, sid in zip(webs, before, strict=True):  # a pool of connections each, to be ended
        assert put_through(ring(web, sid), desk)

    sids = [new_sid("CA") for _ in range(CALLS_DURING_CUT)]
    cut: list[list[str]] = []
    started = time.monotonic()

    def call(i: int) -> Answer:
        # The calls come in over about three seconds; the cut falls in the middle.
        time.sleep(max(0.0, started + i * 0.1 - time.monotonic()))
        return ring(webs[i % 3], sids[i])

    def end_every_connection() -> None:
        time.sleep(max(0.0, started + CALLS_DURING_CUT * 0.05 - time.monotonic()))
        cut.append(terminate_named(hosts.database_url, hosts.name))

    with ThreadPoolExecutor(CALLS_DURING_CUT + 1) as pool:
        cutting = pool.submit(end_every_connection)
        answers = list(pool.map(call, range(CALLS_DURING_CUT)))
        cutting.result()
    mail_after = [numbered_mail(n, tag="after") for n in range(5)]
    append_all(hosts.dovecot, mail_after)
    appended_at = time.monotonic()

    # Every process lost its connections: the two workers, and each web process.
    [ended] = cut
    assert {n.removeprefix(f"{hosts.name}-") for n in ended} == {
        "web0", "web1", "web2", "worker0", "worker1"
    }, ended  # fmt: skip
    failed = [a.body for a in answers if not put_through(a, desk)]
    assert failed == [], f"{len(failed)} of {len(answers)} callers not put through"
    assert hosts.safe_answers() == []
    assert call_sids(hosts.app) == Counter(before + sids)

    # The mail that came after the cut is logged within a few polls, not after 30 s.
    wait_until(lambda: count(hosts.app, MailMessage) == 1 + len(mail_after), WAIT, "mail after")
    took = time.monotonic() - appended_at
    print(
        f"mail after the cut logged in {took:.1f} s;",
        sum(w.log_tail(10_000).count("retrying /voice/") for w in webs),
        "requests retried,",
        sum(w.log.count("doing it again on a fresh one") for w in hosts.workers),
        "jobs redone",
    )
    stored, contacts = mail_logged(hosts.app)
    expected = Counter(
        {message_id(0, "before"): 1, **{message_id(n, "after"): 1 for n in range(5)}}
    )
    assert (stored, contacts) == (expected, expected)
    assert took < RECOVERY_SECONDS, f"mail after the cut took {took:.1f} s"
    for worker in hosts.workers:  # stopped by the fixture; a clean stop is test_worker's
        assert "not tried again for 30 s" not in worker.log, worker.log
