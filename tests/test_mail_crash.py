"""Crash tests: the real `intake poll-once`, SIGKILLed mid-batch and mid-outbox, then run again.

The poller commits once per fetched batch: a kill inside a batch loses its uncommitted
messages, which the next run fetches again; a kill after the commit, before the flags,
leaves flags for the next run to set. Every message ends up logged exactly once and
flagged; every queued forward is sent, and a forward sent twice (killed after the server
took it, before the row was marked sent) goes again with the same Message-ID, so it is
recognisable as a resend.

The subprocess reads the real clock, so the desk loaded here is open around the clock, in a
time zone where it is about noon now (the one closed minute, 23:59, is twelve hours away).

On SQLite a poller killed while holding the lease leaves its lease row behind, and nobody
polls until it runs out (five minutes, `intake.core.locks.DEFAULT_LEASE`, not configurable):
after each kill these tests set the dead holder's lease to have run out, which stands in
for those five minutes. PostgreSQL's advisory lock frees when the killed process's
connection closes, with nothing done by the test.

A worker stopped by SIGTERM in the middle of a batch is the other side: a clean stop, exit 0
with the lock given back, so nothing stands in for a lease running out there.
"""

# ruff: noqa: F811  (the fixtures of two_mailboxes, imported by name, are arguments)
from __future__ import annotations

import dataclasses
import random
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from flask import Flask
from imapclient import IMAPClient
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.lifecycle import Channel
from intake.core.models import Contact, Lease, MailboxState, MailMessage, OutboxMessage
from mail.poller import FETCH_COUNT, LOGGED_KEYWORD, connect, poll
from tests.mailservers import configure_mail

from .conftest import load_desk
from .factories import always_open_desk, message_id, numbered_mail, patient_mail
from .intake_process import (
    STOP_TIMEOUT,
    Run,
    count,
    end_dead_leases,
    intake_env,
    reached,
    run_intake,
    start_intake,
)
from .mailbox import append_all, flags_of_all
from .two_mailboxes import (  # noqa: F401  (fixtures used by name)
    LINDE,
    NOORD,
    SECRETS,
    linde,
    linde_mailbox,
    linde_smtp,
    linde_smtp_server,
    noord_mailbox,
)

if TYPE_CHECKING:
    from tests.mailservers import Dovecot, SmtpSink

SEED = 20261123


@pytest.fixture
def crash_app(app: Flask) -> Iterator[Flask]:
    """The test database with a desk that is open now (the subprocess reads the real clock)."""
    load_desk(app, always_open_desk())
    yield app


# --- the tests -----------------------------------------------------------------------------


MESSAGES = FETCH_COUNT + 30  # two fetch batches: one read ahead while the first is logged
BIG = 200 * 1024  # every fourth message carries an attachment of this size
KILLS = 3


def crash_corpus(tag: str, messages: int = MESSAGES, big: int = BIG) -> list[bytes]:
    return [numbered_mail(n, attachment=big if n % 4 == 0 else 0, tag=tag) for n in range(messages)]


def kill_and_restart(
    app: Flask,
    database_url: str,
    env: dict[str, str],
    cwd: Path,
    *,
    progress: Callable[[], int],
    chance: random.Random,
) -> list[Run]:
    """Run `intake poll-once`, SIGKILLed KILLS times at random points of `progress` (never
    before it moved, never at the end), then until a run finishes; the killed runs."""
    killed: list[Run] = []
    for attempt in range(KILLS + 5):
        done = progress()
        left = MESSAGES - done
        kill_when = None
        if len(killed) < KILLS and left > 1:
            kill_when = reached(progress, done + chance.randint(1, max(1, left * 2 // 3)))
        run = run_intake(["poll-once"], env, cwd, name=f"run{attempt}", kill_when=kill_when)
        if run.killed:
            killed.append(run)
            end_dead_leases(app, database_url)
            continue
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        if run.finished:
            return killed
    raise AssertionError(f"no run of `intake poll-once` finished after {len(killed)} kills")


# What `intake poll-once` writes at INFO for each message it has ingested (not yet committed:
# the batch commits at its end), so a kill can be aimed inside a batch.
INGESTED = " mail.ingest: mail HD-"


def ingested_by(err: Path) -> int:
    try:
        return err.read_text(errors="replace").count(INGESTED)
    except FileNotFoundError:
        return 0


def unflagged_below(app: Flask, dovecot: Dovecot) -> int:
    """Messages at or below the committed position that are not flagged yet."""
    with database(app).session() as session:
        position = session.scalar(select(MailboxState.last_uid)) or 0
    return sum(
        1 for uid, f in flags_of_all(dovecot).items() if uid <= position and LOGGED_KEYWORD not in f
    )


def test_a_poller_killed_in_a_batch_and_after_a_commit_logs_every_message_exactly_once(
    crash_app: Flask,
    database_url: str,
    dovecot: Dovecot,
    smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    """Three SIGKILLs: at a random message inside the first batch, right after a batch's
    commit (before or while its flags are set), and at a random message of the next batch;
    then a run that finishes. A batch commits once, so the messages a kill catches in flight
    are fetched and logged again, and none twice."""
    # Larger mail, and more of it: the poller writes a batch's plain mail about 2 MB at a time
    # (`mail.batch.GROUP_BYTES`) and logs each group as it is written, so the kill in a batch
    # is aimed at its first group, with the rest of the batch still to write.
    total = 2 * FETCH_COUNT + 10
    uids = append_all(dovecot, crash_corpus("batch", total, big=700 * 1024))
    env = intake_env(database_url, tmp_path, dovecot, smtp, INTAKE_LOG_LEVEL="INFO")
    chance = random.Random(SEED)
    committed = lambda: count(crash_app, MailMessage)  # noqa: E731

    def in_a_batch(err: Path) -> Callable[[], int | None]:
        at = chance.randint(1, 8)  # in the batch's first group: some ingested, none committed
        return lambda: ingested_by(err) if ingested_by(err) >= at else None

    def after_a_commit(err: Path) -> Callable[[], int | None]:
        before = committed()
        return lambda: ingested_by(err) if committed() > before else None

    runs: list[tuple[str, int, int, int]] = []  # how, ingested by the run, committed, unflagged
    for number, aim in enumerate((in_a_batch, after_a_commit, in_a_batch)):
        name = f"run{number}"
        before = committed()
        run = run_intake(
            ["poll-once"], env, tmp_path, name=name, kill_when=aim(tmp_path / f"{name}.err")
        )
        assert run.killed, (name, run.returncode, run.stderr[-2000:])
        end_dead_leases(crash_app, database_url)
        runs.append((aim.__name__, ingested_by(tmp_path / f"{name}.err"), committed() - before,
                     unflagged_below(crash_app, dovecot)))  # fmt: skip
    last = run_intake(["poll-once"], env, tmp_path, name="last")
    assert last.finished, last.stderr
    assert "Traceback" not in last.stderr

    # Each kill in a batch caught messages ingested but not committed; the one after a
    # commit came once the batch was in the database.
    (_, seen1, kept1, _), (_, _, kept2, _), (_, seen3, kept3, _) = runs
    assert kept1 == 0 and seen1 > 0, runs
    assert kept2 > 0, runs
    assert seen3 > kept3, runs
    with database(crash_app).session() as session:
        logged = Counter(session.scalars(select(Contact.message_id)))
        stored = Counter(session.scalars(select(MailMessage.message_id)))
        [state] = session.scalars(select(MailboxState)).all()
    expected = {message_id(n, "batch") for n in range(total)}
    assert set(logged) == expected  # none lost
    assert max(logged.values()) == 1  # none logged twice
    assert set(stored) == expected
    assert max(stored.values()) == 1
    assert state.last_uid == max(uids)
    flags = flags_of_all(dovecot)
    assert sorted(flags) == uids  # every message still in the mailbox
    assert all({"\\Seen", LOGGED_KEYWORD} <= f for f in flags.values())


class _Watched:
    """An IMAP connection that notes each command, and any two made at once."""

    def __init__(self, client: IMAPClient, *, fail_body_fetch: int = 0) -> None:
        self.client = client
        self.busy = threading.Lock()
        self.commands: list[str] = []
        self.at_once: list[str] = []
        self.fail_body_fetch = fail_body_fetch  # the n-th fetch of bodies is cut off

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.client, name)
        if not callable(found):
            return found

        def watched(*args: Any, **kwargs: Any) -> Any:
            if not self.busy.acquire(blocking=False):
                self.at_once.append(name)
                self.busy.acquire()
            try:
                if name == "fetch" and "BODY.PEEK[]" in args[1]:
                    name_ = f"bodies:{min(args[0])}"
                    self.commands.append(name_)
                    if sum(c.startswith("bodies:") for c in self.commands) == self.fail_body_fetch:
                        raise ConnectionResetError("cut off while reading the next batch")
                    time.sleep(0.05)  # a server far away: the batch is logged meanwhile
                else:
                    self.commands.append(name)
                return found(*args, **kwargs)
            finally:
                self.busy.release()

        return watched


def test_the_next_batch_is_read_while_one_is_logged_one_command_at_a_time(
    crash_app: Flask, dovecot: Dovecot
) -> None:
    uids = append_all(dovecot, crash_corpus("ahead"))
    configure_mail(crash_app, dovecot, smtp=None)
    watched: list[_Watched] = []

    def connector(settings: Any) -> IMAPClient:
        watched.append(_Watched(connect(settings)))
        return cast(IMAPClient, watched[-1])

    result = poll(crash_app, connector=connector)

    assert (result.fetched, result.logged) == (MESSAGES, MESSAGES)
    [client] = watched
    assert client.at_once == []  # never two commands on the connection at once
    second = f"bodies:{uids[FETCH_COUNT]}"
    # The second batch was asked for before the first one's flags were set.
    assert client.commands.index(second) < client.commands.index("add_flags")
    assert all({"\\Seen", LOGGED_KEYWORD} <= f for f in flags_of_all(dovecot).values())


def test_a_read_ahead_cut_off_loses_nothing_and_logs_nothing_twice(
    crash_app: Flask, dovecot: Dovecot
) -> None:
    uids = append_all(dovecot, crash_corpus("cut"))
    configure_mail(crash_app, dovecot, smtp=None)

    with pytest.raises(ConnectionResetError):
        poll(
            crash_app, connector=lambda s: cast(IMAPClient, _Watched(connect(s), fail_body_fetch=2))
        )
    first = count(crash_app, MailMessage)
    assert first == FETCH_COUNT  # the batch being logged was finished and committed
    flags = flags_of_all(dovecot)
    assert [u for u in uids if LOGGED_KEYWORD in flags[u]] == uids[:FETCH_COUNT]

    again = poll(crash_app)

    assert (again.fetched, again.logged, again.duplicates) == (MESSAGES - first,) * 2 + (0,)
    with database(crash_app).session() as session:
        logged = Counter(session.scalars(select(Contact.message_id)))
    assert logged == Counter({message_id(n, "cut"): 1 for n in range(MESSAGES)})


class _DiesAtTheFlags:
    """An IMAP connection that is cut off when the poller sets the flags of its first batch:
    the moment between a batch's commit and its flags, which a SIGKILL rarely hits."""

    def __init__(self, client: IMAPClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def add_flags(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionResetError("cut off after the commit, before the flags")


def test_a_poll_cut_off_between_a_batchs_commit_and_its_flags_logs_none_twice(
    crash_app: Flask, dovecot: Dovecot
) -> None:
    uids = append_all(dovecot, crash_corpus("flags"))
    configure_mail(crash_app, dovecot, smtp=None)

    with pytest.raises(ConnectionResetError):
        poll(crash_app, connector=lambda s: cast(IMAPClient, _DiesAtTheFlags(connect(s))))
    first = count(crash_app, MailMessage)
    assert first == FETCH_COUNT  # the first batch was committed, none of it flagged
    assert all(LOGGED_KEYWORD not in f for f in flags_of_all(dovecot).values())

    again = poll(crash_app)

    assert (again.fetched, again.logged, again.duplicates) == (MESSAGES - first,) * 2 + (0,)
    with database(crash_app).session() as session:
        logged = Counter(session.scalars(select(Contact.message_id)))
    assert logged == Counter({message_id(n, "flags"): 1 for n in range(MESSAGES)})
    flags = flags_of_all(dovecot)
    assert sorted(flags) == uids
    assert all({"\\Seen", LOGGED_KEYWORD} <= f for f in flags.values())


def test_a_flush_killed_mid_outbox_sends_every_forward_and_a_resend_keeps_its_message_id(
    crash_app: Flask,
    database_url: str,
    dovecot: Dovecot,
    smtp: SmtpSink,
    tmp_path: Path,
    clock: SimClock,
) -> None:
    append_all(dovecot, crash_corpus("outbox"))
    # Every message logged and its forward queued, here, with sending off; queued now, for
    # the subprocess sends what is due by the real clock.
    clock.moment = datetime.now(UTC)
    configure_mail(crash_app, dovecot, smtp=None)
    assert poll(crash_app).logged == MESSAGES
    with database(crash_app).session() as session:
        outbox = set(session.scalars(select(OutboxMessage.message_id)))
    assert len(outbox) == MESSAGES

    began = datetime.now(UTC)  # the subprocesses send by the real clock
    killed = kill_and_restart(
        crash_app,
        database_url,
        intake_env(database_url, tmp_path, dovecot, smtp),
        tmp_path,
        progress=lambda: len(smtp.messages),
        chance=random.Random(SEED + 1),
    )

    finished = datetime.now(UTC)
    assert len(killed) == KILLS, [r.killed_at for r in killed]
    with database(crash_app).session() as session:
        rows = session.execute(select(OutboxMessage.sent_at, OutboxMessage.failed_at)).all()
    # Every row marked sent by one of the runs, none refused.
    assert all(
        r.sent_at is not None and began <= r.sent_at <= finished and r.failed_at is None
        for r in rows
    ), (began, finished, rows)
    arrived = Counter(str(m.message["Message-ID"]) for m in smtp.messages)
    assert set(arrived) == outbox  # every forward arrived; nothing that was not queued
    # A kill resends at most the one message in flight, under the same Message-ID.
    assert sum(arrived.values()) - len(arrived) <= len(killed)


# --- a worker with two mailboxes -----------------------------------------------------------


WORKER_WAIT = 60.0  # seconds a worker may take to start, or to log a mailbox's batch


def wait_until(what: Callable[[], bool], timeout: float = WORKER_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.01)


def idling(err: Path, mailboxes: int) -> Callable[[], bool]:
    return lambda: err.read_text().count("new mail is logged as it arrives") >= mailboxes


def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> int:
    if process.poll() is None:
        process.send_signal(how)
    try:
        return process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_worker_killed_mid_batch_on_one_mailbox_while_another_idles_logs_each_once(
    crash_app: Flask,
    database_url: str,
    dovecot: Dovecot,
    linde: Dovecot,
    smtp: SmtpSink,
    linde_smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    """The real `intake worker` (IDLE on, the poll an hour away) watches two mailboxes. A
    batch lands at once in the first (MULTIAPPEND) while the second idles; the worker is
    SIGKILLed while it ingests that batch, and started again: it logs the rest of the
    batch, and a mail appended to the idle mailbox afterwards; every message once."""
    desk = dataclasses.replace(
        always_open_desk(), mailboxes=(noord_mailbox(dovecot), linde_mailbox(dovecot, linde_smtp))
    )
    load_desk(crash_app, desk)
    env = intake_env(
        database_url, tmp_path, dovecot, smtp, INTAKE_POLL_SECONDS="3600", INTAKE_LOG_LEVEL="INFO"
    )
    env = {k: v for k, v in env.items() if not k.startswith("INTAKE_IMAP_")} | SECRETS
    corpus = crash_corpus("noord")
    in_flight = random.Random(SEED + 2).randint(1, FETCH_COUNT // 2)

    first, _out, err = start_intake(["worker"], env, tmp_path, "worker1")
    try:
        wait_until(idling(err, 2))
        with dovecot.session() as client:
            client.multiappend("INBOX", corpus)
        wait_until(lambda: ingested_by(err) >= in_flight)
    finally:
        assert stop(first, signal.SIGKILL) == -signal.SIGKILL
    killed_with = ingested_by(err)
    assert count(crash_app, MailMessage) < killed_with  # messages were in flight
    end_dead_leases(crash_app, database_url)

    second, _out, err = start_intake(["worker"], env, tmp_path, "worker2")
    try:
        wait_until(lambda: count(crash_app, MailMessage) == MESSAGES)
        wait_until(idling(err, 2))
        linde.append(patient_mail(message_id="<linde-after@x.nl>"))
        wait_until(lambda: count(crash_app, MailMessage) == MESSAGES + 1, timeout=30)
    finally:
        assert stop(second, signal.SIGTERM) == 0, err.read_text()[-2000:]
    assert "Traceback" not in err.read_text()

    with database(crash_app).session() as session:
        logged = Counter(session.execute(select(Contact.message_id, Contact.via)).all())
    expected = {(message_id(n, "noord"), NOORD) for n in range(MESSAGES)}
    assert set(logged) == expected | {("<linde-after@x.nl>", LINDE)}
    assert max(logged.values()) == 1
    for mailbox, total in ((dovecot, MESSAGES), (linde, 1)):
        flags = flags_of_all(mailbox)
        assert len(flags) == total
        assert all({"\\Seen", LOGGED_KEYWORD} <= f for f in flags.values())


# --- a worker stopped by SIGTERM in the middle of a batch ----------------------------------


def half_written(app: Flask) -> list[str]:
    """What a batch stopped half-way would leave: a stored message without its contact or
    its one forward, or a mail contact or a forward without its stored message."""
    with database(app).session() as session:
        stored = session.execute(
            select(MailMessage.message_id, MailMessage.contact_id, MailMessage.forwarded_to)
        ).all()
        contacts = dict(
            session.execute(
                select(Contact.id, Contact.message_id).where(Contact.channel == Channel.MAIL)
            ).all()
        )
        forwards = Counter(
            session.scalars(select(OutboxMessage.contact_id).where(OutboxMessage.kind == "forward"))
        )
    found = []
    for mail, contact_id, forwarded_to in stored:
        if contacts.get(contact_id) != mail:
            found.append(f"{mail}: stored without its contact")
        if forwards[contact_id] != 1 or forwarded_to is None:
            found.append(f"{mail}: stored with {forwards[contact_id]} forwards")
    of_stored = {contact_id for _, contact_id, _ in stored}
    found += [f"contact {c} ({m}): no stored message" for c, m in contacts.items()
              if c not in of_stored]  # fmt: skip
    found += [f"forward of contact {c}: no stored message" for c in forwards if c not in of_stored]
    return found


def position_and_flags(app: Flask, dovecot: Dovecot) -> tuple[list[int], int, list[int]]:
    """The UIDs stored, the mailbox's committed position, and the UIDs flagged as logged."""
    with database(app).session() as session:
        stored = sorted(session.scalars(select(MailMessage.uid)))
        position = session.scalar(select(MailboxState.last_uid)) or 0
    flagged = sorted(u for u, f in flags_of_all(dovecot).items() if LOGGED_KEYWORD in f)
    return stored, position, flagged


def polled_once(err: Path) -> bool:
    """The worker's scheduled poll has run to its end once (APScheduler says so at INFO)."""
    return bool(re.search(r'Job "mail-poll .*" executed successfully$', err.read_text(), re.M))


# How the mail reaches the worker, and so which thread polls it when SIGTERM comes: the
# scheduled poll, stopped by `scheduler.shutdown(wait=True)` (IDLE off: with it on, the
# watcher's first wake and the scheduled poll race for mail waiting at the start), or the
# poll an IDLE connection wakes, stopped by `IdleWatchers.stop()` (the poll an hour away).
ARRIVALS = {
    "waiting-at-start-for-the-scheduled-poll": {"INTAKE_IDLE": "0"},
    "arriving-while-it-idles": {"INTAKE_POLL_SECONDS": "3600"},
}


@pytest.mark.parametrize("arrival", ARRIVALS)
def test_a_worker_sigtermed_mid_batch_exits_0_with_every_message_whole_and_each_logged_once(
    crash_app: Flask,
    database_url: str,
    dovecot: Dovecot,
    tmp_path: Path,
    arrival: str,
) -> None:
    """`intake worker` gets SIGTERM, as systemd or `docker stop` sends, while it writes the
    first of the fetch batches waiting in its mailbox. It stops cleanly: exit 0 within
    STOP_TIMEOUT, no traceback, every message in the database whole, none flagged on the
    server without being stored, the mailbox's lock given back; and once a second worker
    has done the rest, every message is logged exactly once.

    Exit 0 is the worker's clean stop: it takes SIGTERM by `sigwait` once it runs (the
    signal is blocked in every thread), lets the job under way end and returns.
    `intake.shell.cli.supervise` takes a child's -SIGTERM as clean only while the child is
    still starting; this one is mid-batch, long past that.

    Had the signal ended the process instead (its default action, as SIGHUP's does), the
    exit status would be the signal's, the scheduler's stop line missing, and on SQLite
    the poller's lease left behind (the next worker would wait five minutes for it); a
    batch committed in pieces, or flags set before the commit, shows in `half_written` and
    in the flags."""
    # Sending off: the forwards are queued all the same, and no flush of them is there for
    # a stop to wait for.
    env = intake_env(
        database_url, tmp_path, dovecot, None, INTAKE_LOG_LEVEL="INFO", **ARRIVALS[arrival]
    )
    # Large mail, as in the first SIGKILL test: a batch is written about 2 MB (some ten
    # messages) at a time, each group logged as it is written, so the signal is aimed at
    # the first batch's first groups with most of it still to write. Two batches or more:
    # a batch holds FETCH_COUNT messages at most (fewer once FETCH_BYTES are reached).
    corpus = crash_corpus("term", MESSAGES, big=700 * 1024)
    at = random.Random(SEED + 3).randint(1, 8)

    def fill() -> None:
        with dovecot.session() as client:
            client.multiappend("INBOX", corpus)

    if arrival.startswith("waiting"):
        fill()
    first, out, err = start_intake(["worker"], env, tmp_path, "worker1")
    try:
        if not arrival.startswith("waiting"):
            # IDLE on, and the scheduled poll's first run over: the mail is the watcher's.
            wait_until(lambda: idling(err, 1)() and polled_once(err))
            fill()

        def inside_the_first_batch() -> bool:
            ingested = ingested_by(err)
            if count(crash_app, MailMessage):
                pytest.fail(f"the first batch was committed before {at} of it were seen")
            return ingested >= at

        wait_until(inside_the_first_batch)
        first.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        ingested_then = ingested_by(err)
        committed_then = count(crash_app, MailMessage)  # read after the signal was sent
        try:
            code = first.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_TIMEOUT} s after SIGTERM:\n{err.read_text()[-3000:]}")
        took = time.monotonic() - signalled
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    log = err.read_text()

    # The signal came inside the first batch: messages ingested, none committed yet.
    assert ingested_then >= at and committed_then == 0, (ingested_then, committed_then)
    assert code == 0, (code, took, log[-3000:])
    assert "worker running" in out.read_text()
    # The one line a stop leaves, APScheduler's; with IDLE, written before the woken poll
    # ends (the worker waits for that poll in `IdleWatchers.stop()`, and says nothing more).
    assert "Scheduler has been shut down" in log
    assert "Traceback" not in log
    assert " ERROR " not in log
    assert "did not stop in time" not in log  # an IDLE poll left running as the process ends
    assert half_written(crash_app) == []
    stored, position, flagged = position_and_flags(crash_app, dovecot)
    uids = sorted(flags_of_all(dovecot))
    assert len(uids) == MESSAGES
    # Whole batches: what is stored is exactly the mail up to the committed position, and
    # nothing is flagged that is not stored. The poll stops after the batch in hand (the
    # rest of the folder waits for the next worker), not after reading it all.
    assert stored == [u for u in uids if u <= position]
    assert set(flagged) <= set(stored)
    assert 0 < len(stored) < MESSAGES  # the batch in hand finished, the next not begun
    with database(crash_app).session() as session:
        assert session.scalars(select(Lease.name)).all() == []  # the lock was given back

    # The second worker, until its scheduled poll has run once (or stepped aside for its
    # IDLE watcher's first poll) and what the first one left is done: all stored, flagged.
    second, out, err = start_intake(["worker"], env, tmp_path, "worker2")
    try:
        wait_until(lambda: polled_once(err))
        wait_until(lambda: count(crash_app, MailMessage) == MESSAGES)
        wait_until(lambda: position_and_flags(crash_app, dovecot)[2] == uids)
    finally:
        code = stop(second, signal.SIGTERM)
    assert code == 0, err.read_text()[-3000:]
    assert "Traceback" not in err.read_text()

    with database(crash_app).session() as session:
        logged = Counter(session.scalars(select(Contact.message_id)))
        [state] = session.scalars(select(MailboxState)).all()
    assert logged == Counter({message_id(n, "term"): 1 for n in range(MESSAGES)})
    assert half_written(crash_app) == []
    assert state.last_uid == max(uids)
    assert all({"\\Seen", LOGGED_KEYWORD} <= f for f in flags_of_all(dovecot).values())
