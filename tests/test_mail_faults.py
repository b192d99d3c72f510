"""Mail servers that fail: the worker logs, waits longer each time, and never falls over;
`intake poll-once` says what went wrong in one line; nothing is lost or logged twice.

The `Retrying` job wrapper reads the wall clock for its pause. These tests do not sleep
through it: they read the pause from its `resume_at` and `failures`, and let it pass by
setting `resume_at` to a moment already gone.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import Contact, MailMessage, OutboxMessage
from intake.shell.health import readiness
from intake.shell.jobs import MAX_PAUSE, Retrying, flush_outbox, poll_mailbox
from intake.shell.metrics import scrape
from mail.poller import FETCH_COUNT, LOGGED_KEYWORD, ImapSettings, connect, poll
from tests.mailservers import configure_mail

from .conftest import load_desk
from .factories import always_open_desk, message_id, numbered_mail
from .intake_process import Run, count, intake_env, reached, run_intake
from .mailbox import append_all, flags_of_all

if TYPE_CHECKING:
    from tests.mailservers import Dovecot, SmtpSink

# The pause after the n-th failure in a row: 30 s, doubling, at most MAX_PAUSE (15 min).
PAUSES = [30, 60, 120, 240, 480, 900, 900]


@pytest.fixture
def mail_app(app: Flask, clock: SimClock, dovecot: Dovecot, smtp: SmtpSink) -> Iterator[Flask]:
    """The app on the test servers, with a desk open now; its clock at the real time, so
    that what it queues is due for an `intake` process too."""
    clock.moment = datetime.now(UTC)
    load_desk(app, always_open_desk())
    yield configure_mail(app, dovecot, smtp)


def logged_ids(app: Flask) -> Counter[str | None]:
    with database(app).session() as session:
        return Counter(session.scalars(select(Contact.message_id)))


def call_and_measure(job: Retrying) -> tuple[datetime, datetime]:
    """Run the job once (it must not raise); the wall-clock moments around the call."""
    before = datetime.now(UTC)
    job()
    return before, datetime.now(UTC)


def let_the_pause_pass(job: Retrying) -> None:
    job.resume_at = datetime.now(UTC) - timedelta(seconds=1)


def one_line_error(run: Run) -> str:
    assert run.returncode != 0, run.stdout
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


# mail/poller.py leaves the socket of a refused login or of a dropped connection for the
# garbage collector to close (test_a_failed_poll_closes_its_connection_to_the_mail_server
# shows it). Elsewhere that is not what is tested: the warning is ignored, and the socket is
# collected before the test ends, not in whichever test the collector happens to run next.
LEAKED_SOCKET = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")


@pytest.fixture
def collect_leaked_sockets(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    caplog.get_records("call").clear()  # a logged failure's traceback holds the client
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


# --- IMAP -----------------------------------------------------------------------------------


def test_an_unreachable_imap_server_is_retried_after_a_growing_pause_and_never_raises(
    mail_app: Flask, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    dovecot.append(numbered_mail(1))
    job = Retrying("mail-poll", poll_mailbox, mail_app)
    with dovecot.down(), caplog.at_level(logging.INFO, logger="intake.shell.jobs"):
        for failures, pause in enumerate(PAUSES, start=1):
            before, after = call_and_measure(job)
            assert job.failures == failures
            assert job.resume_at is not None
            assert before + timedelta(seconds=pause) <= job.resume_at
            assert job.resume_at <= after + timedelta(seconds=pause)
            # Called again within the pause (as the scheduler does every interval): it
            # does not even try, so the count of failures stands.
            job()
            assert job.failures == failures
            let_the_pause_pass(job)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == len(PAUSES)
    assert all("mail-poll failed (ConnectionRefusedError" in r.getMessage() for r in errors)
    assert [r.getMessage().rsplit(" ", 2)[-2] for r in errors] == [str(p) for p in PAUSES]
    # The traceback once, for the first failure; after that one line each.
    assert [bool(r.exc_info) for r in errors] == [True] + [False] * (len(PAUSES) - 1)
    assert timedelta(seconds=PAUSES[-1]) == MAX_PAUSE
    assert logged_ids(mail_app) == Counter()

    with caplog.at_level(logging.INFO, logger="intake.shell.jobs"):
        job()

    assert (job.failures, job.resume_at) == (0, None)
    assert logged_ids(mail_app) == Counter({message_id(1): 1})
    assert f"mail-poll works again after {len(PAUSES)} failures" in caplog.text


def test_the_one_configured_mailbox_is_reported_by_readyz_and_metrics_down_and_up(
    mail_app: Flask, dovecot: Dovecot
) -> None:
    """The INTAKE_IMAP_* mailbox (no [[mailbox]] names its own) is kept like every mailbox:
    /readyz and /metrics say when it could not be read and when it was read last."""
    job = Retrying("mail-poll", poll_mailbox, mail_app)
    with dovecot.down():
        job()
    [down] = readiness(mail_app)["mailboxes"]
    assert (down["ok"], down["failures"], down["last_good_poll"]) == (False, 1, None)
    assert mailbox_up(mail_app) == {down["mailbox"]: 0}

    let_the_pause_pass(job)
    job()

    [up] = readiness(mail_app)["mailboxes"]
    assert up["ok"] and up["last_good_poll"] is not None and up["mailbox"] == down["mailbox"]
    assert mailbox_up(mail_app) == {down["mailbox"]: 1}


def mailbox_up(app: Flask) -> dict[str, float]:
    """intake_mailbox_up of /metrics, per mailbox label."""
    text = scrape(app).decode()
    return {
        s.labels["mailbox"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "intake_mailbox_up"
    }


@LEAKED_SOCKET
@pytest.mark.usefixtures("collect_leaked_sockets")
def test_a_refused_imap_login_is_logged_and_retried_and_leaves_the_mail_unread(
    mail_app: Flask, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    uid = dovecot.append(numbered_mail(1))
    mail_app.config["IMAP_PASSWORD"] = "not-the-password"
    job = Retrying("mail-poll", poll_mailbox, mail_app)

    before, after = call_and_measure(job)

    assert job.failures == 1
    assert job.resume_at is not None
    assert before + timedelta(seconds=30) <= job.resume_at <= after + timedelta(seconds=30)
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "mail-poll failed (LoginError" in error.getMessage()
    assert dovecot.password not in caplog.text
    assert logged_ids(mail_app) == Counter()
    assert dovecot.flags(uid) == frozenset()  # not even marked read

    mail_app.config["IMAP_PASSWORD"] = dovecot.password  # the setting is put right
    let_the_pause_pass(job)
    job()

    assert job.failures == 0
    assert logged_ids(mail_app) == Counter({message_id(1): 1})


@pytest.mark.parametrize("fault", ["server down", "wrong password"])
def test_poll_once_says_what_is_wrong_with_the_mail_server_in_one_line(
    mail_app: Flask,
    database_url: str,
    dovecot: Dovecot,
    smtp: SmtpSink,
    tmp_path: Path,
    fault: str,
) -> None:
    dovecot.append(numbered_mail(1))
    env = intake_env(database_url, tmp_path, dovecot, smtp)
    if fault == "wrong password":
        env["INTAKE_IMAP_PASSWORD"] = "not-the-password"
        run = run_intake(["poll-once"], env, tmp_path)
    else:
        with dovecot.down():
            run = run_intake(["poll-once"], env, tmp_path)

    line = one_line_error(run)
    assert line.startswith(f"intake: mail server {dovecot.host}: ")
    assert ("LoginError" if fault == "wrong password" else "ConnectionRefusedError") in line
    assert "not-the-password" not in run.stderr
    assert logged_ids(mail_app) == Counter()  # nothing half done (the next poll: see below)


def test_poll_once_with_the_imap_server_down_still_sends_what_waits_in_the_outbox(
    mail_app: Flask,
    database_url: str,
    dovecot: Dovecot,
    smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    """From cron, `intake poll-once` is the only sender: voicemail notices, forwards and
    acknowledgements already queued must not wait for the IMAP server to come back."""
    configure_mail(mail_app, dovecot, smtp=None)
    queue_forwards(mail_app, dovecot, 1)
    env = intake_env(database_url, tmp_path, dovecot, smtp)
    with dovecot.down():
        run = run_intake(["poll-once"], env, tmp_path)

    assert one_line_error(run).startswith(f"intake: mail server {dovecot.host}: ")
    assert [str(m.message["Message-ID"]) for m in smtp.messages] == outbox_ids(mail_app)


MESSAGES = 2 * FETCH_COUNT + 20
BIG = 200 * 1024


def dropped_corpus() -> list[bytes]:
    # Several FETCH batches (FETCH_COUNT messages, one commit each), so that the server is gone
    # mid-poll, after the first batch is committed.
    return [numbered_mail(n, attachment=BIG if n % 10 == 0 else 0) for n in range(MESSAGES)]


def assert_every_message_logged_once_and_flagged(app: Flask, dovecot: Dovecot) -> None:
    expected = Counter({message_id(n): 1 for n in range(MESSAGES)})
    assert logged_ids(app) == expected
    with database(app).session() as session:
        stored = Counter(session.scalars(select(MailMessage.message_id)))
    assert stored == expected
    flags = flags_of_all(dovecot)
    assert len(flags) == MESSAGES
    assert all({"\\Seen", LOGGED_KEYWORD} <= f for f in flags.values())


def test_poll_once_cut_off_mid_batch_says_so_and_the_next_poll_finishes_the_rest(
    mail_app: Flask,
    database_url: str,
    dovecot: Dovecot,
    smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    append_all(dovecot, dropped_corpus())
    env = intake_env(database_url, tmp_path, dovecot, smtp)
    progress = reached(lambda: count(mail_app, MailMessage), MESSAGES // 3)

    def drop_when_a_third_is_logged() -> int | None:
        done = progress()
        if done is not None:
            dovecot.kill()  # the server vanishes; the process is left to notice
        return None

    try:
        run = run_intake(["poll-once"], env, tmp_path, kill_when=drop_when_a_third_is_logged)
    finally:
        dovecot.start()

    line = one_line_error(run)
    assert line.startswith(f"intake: mail server {dovecot.host}: ")
    assert 0 < count(mail_app, MailMessage) < MESSAGES

    again = run_intake(["poll-once"], env, tmp_path)

    assert again.returncode == 0, again.stderr
    assert_every_message_logged_once_and_flagged(mail_app, dovecot)


@LEAKED_SOCKET
@pytest.mark.usefixtures("collect_leaked_sockets")
def test_the_worker_survives_a_connection_dropped_mid_batch_and_finishes_the_rest(
    mail_app: Flask, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    append_all(dovecot, dropped_corpus())
    job = Retrying("mail-poll", poll_mailbox, mail_app)
    raised: list[BaseException] = []

    def run_job() -> None:
        try:
            job()
        except BaseException as exc:  # what would take the worker's thread down
            raised.append(exc)

    worker = threading.Thread(target=run_job)
    progress = reached(lambda: count(mail_app, MailMessage), MESSAGES // 3)
    worker.start()
    try:
        while progress() is None and worker.is_alive():
            time.sleep(0.01)
        dovecot.kill()
        worker.join(timeout=30)
        assert not worker.is_alive()
    finally:
        dovecot.start()

    assert raised == []
    assert job.failures == 1
    assert 0 < count(mail_app, MailMessage) < MESSAGES
    assert "mail-poll failed" in caplog.text

    let_the_pause_pass(job)
    job()

    assert job.failures == 0
    assert_every_message_logged_once_and_flagged(mail_app, dovecot)


@pytest.mark.parametrize("fault", ["login refused", "connection dropped"])
def test_a_failed_poll_closes_its_connection_to_the_mail_server(
    mail_app: Flask, dovecot: Dovecot, fault: str
) -> None:
    """The worker polls every minute for as long as the fault lasts: a connection left for
    the garbage collector to close is one more open socket each time (Python reports it as
    an unclosed socket, a ResourceWarning)."""
    dovecot.append(numbered_mail(1))
    if fault == "login refused":
        mail_app.config["IMAP_PASSWORD"] = "not-the-password"
        connector = connect
    else:

        def connector(settings: ImapSettings) -> IMAPClient:
            client = connect(settings)
            dovecot.kill()  # logged in, and then the server is gone
            return client

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        try:
            poll(mail_app, connector=connector)
        except (OSError, IMAPClientError):
            pass  # the job logs it and tries again later
        else:
            pytest.fail("the poll should have failed")
        finally:
            dovecot.start()
        gc.collect()

    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []


# --- SMTP -----------------------------------------------------------------------------------


def queue_forwards(app: Flask, dovecot: Dovecot, how_many: int) -> None:
    append_all(dovecot, [numbered_mail(n) for n in range(how_many)])
    poll_mailbox(app)
    with database(app).session() as session:
        assert len(session.scalars(select(OutboxMessage.id)).all()) == how_many


def test_an_unreachable_smtp_server_postpones_the_mail_and_the_job_never_raises(
    mail_app: Flask,
    dovecot: Dovecot,
    smtp: SmtpSink,
    clock: SimClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp.stop()
    queue_forwards(mail_app, dovecot, 3)
    job = Retrying("outbox", flush_outbox, mail_app)
    try:
        job()  # does not raise
        assert smtp.messages == []
        assert waiting_in_outbox(mail_app) == 3  # none lost, none given up
        assert any(
            r.levelno >= logging.WARNING and "no connection to the SMTP server" in r.getMessage()
            for r in caplog.records
        )
    finally:
        smtp.start()
    clock.advance(3600)  # the server is back, and any pause is over
    let_the_pause_pass(job)

    job()

    assert sorted(str(m.message["Message-ID"]) for m in smtp.wait_for(3)) == sorted(
        outbox_ids(mail_app)
    )
    assert waiting_in_outbox(mail_app) == 0
    assert job.failures == 0


def outbox_ids(app: Flask) -> list[str]:
    with database(app).session() as session:
        return list(session.scalars(select(OutboxMessage.message_id)))


def test_a_refused_smtp_login_is_an_error_in_the_log_and_sends_nothing_until_put_right(
    mail_app: Flask,
    dovecot: Dovecot,
    smtp: SmtpSink,
    clock: SimClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue_forwards(mail_app, dovecot, 2)
    mail_app.config.update(SMTP_USER=smtp.user, SMTP_PASSWORD="not-the-password")
    job = Retrying("outbox", flush_outbox, mail_app)

    job()  # does not raise

    assert smtp.messages == []
    assert waiting_in_outbox(mail_app) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("SMTP login refused" in e for e in errors), errors
    assert "not-the-password" not in caplog.text

    mail_app.config["SMTP_PASSWORD"] = smtp.password  # the setting is put right
    clock.advance(3600)
    let_the_pause_pass(job)
    job()

    assert [m.login for m in smtp.wait_for(2)] == [smtp.user, smtp.user]
    assert waiting_in_outbox(mail_app) == 0


class HangingUpServer:
    """A mail server in trouble: it takes each TCP connection and hangs up at once, before
    its greeting. Counts the connections, which a stopped server cannot."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def hanging_up() -> Iterator[HangingUpServer]:
    server = HangingUpServer()
    try:
        yield server
    finally:
        server.close()


def test_an_smtp_outage_is_retried_after_a_growing_pause_however_much_mail_waits(
    mail_app: Flask, dovecot: Dovecot, clock: SimClock, hanging_up: HangingUpServer
) -> None:
    """The worker runs the outbox job every 30 s. With one message waiting, an outage is
    tried again after 1, 2, 4, 8 … minutes; with twenty waiting it must not be tried more
    often (with a refused login, each try is a failed login: providers lock accounts for
    less)."""
    queue_forwards(mail_app, dovecot, 20)
    mail_app.config["SMTP_PORT"] = hanging_up.port
    job = Retrying("outbox", flush_outbox, mail_app)

    for _ in range(2 * 30):  # half an hour of the worker's outbox job, every 30 s
        job()
        clock.advance(30)  # the outbox's clock
        if job.resume_at is not None:  # and the wrapper's
            job.resume_at -= timedelta(seconds=30)

    # A pause from 30 s or 1 minute, doubling: tries at 0, 1, 3, 7 and 15 minutes (or at 0,
    # 0.5, 1.5, 3.5, 7.5 and 15.5): six at most.
    assert hanging_up.connections <= 6, (
        f"{hanging_up.connections} connections in 30 minutes of outage"
    )
    assert waiting_in_outbox(mail_app) == 20


def waiting_in_outbox(app: Flask) -> int:
    """Outbox rows still waiting to be sent (none given up, none marked sent)."""
    with database(app).session() as session:
        rows = session.execute(select(OutboxMessage.sent_at, OutboxMessage.failed_at)).all()
    return sum(1 for r in rows if r.sent_at is None and r.failed_at is None)
