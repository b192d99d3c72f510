"""Crash tests: the real `intake poll-once`, SIGKILLed mid-batch and mid-outbox, then run again.

Every message ends up logged exactly once and flagged in the mailbox; every queued forward
is sent, and a forward sent twice (killed after the server took it, before the row was
marked sent) goes again with the same Message-ID, so it is recognisable as a resend.

The subprocess reads the real clock, so the desk loaded here is open around the clock, in a
time zone where it is about noon now (the one closed minute, 23:59, is twelve hours away).

On SQLite a poller killed while holding the lease leaves its lease row behind, and nobody
polls until it runs out (five minutes, `intake.core.locks.DEFAULT_LEASE`, not configurable):
after each kill these tests set the dead holder's lease to have run out, which stands in
for those five minutes. PostgreSQL's advisory lock frees when the killed process's
connection closes, with nothing done by the test.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import Contact, MailboxState, MailMessage, OutboxMessage
from mail.poller import LOGGED_KEYWORD, poll
from tests.mailservers import configure_mail

from .conftest import load_desk
from .factories import always_open_desk, message_id, numbered_mail
from .intake_process import Run, count, end_dead_leases, intake_env, reached, run_intake
from .mailbox import append_all, flags_of_all

if TYPE_CHECKING:
    from tests.mailservers import Dovecot, SmtpSink

SEED = 20261123


@pytest.fixture
def crash_app(app: Flask) -> Iterator[Flask]:
    """The test database with a desk that is open now (the subprocess reads the real clock)."""
    load_desk(app, always_open_desk())
    yield app


# --- the tests -----------------------------------------------------------------------------


MESSAGES = 80
BIG = 200 * 1024  # every fourth message carries an attachment of this size
KILLS = 3


def crash_corpus(tag: str) -> list[bytes]:
    return [numbered_mail(n, attachment=BIG if n % 4 == 0 else 0, tag=tag) for n in range(MESSAGES)]


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


def test_a_poller_killed_mid_batch_and_started_again_logs_every_message_exactly_once(
    crash_app: Flask,
    database_url: str,
    dovecot: Dovecot,
    smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    uids = append_all(dovecot, crash_corpus("batch"))
    env = intake_env(database_url, tmp_path, dovecot, smtp)

    killed = kill_and_restart(
        crash_app,
        database_url,
        env,
        tmp_path,
        progress=lambda: count(crash_app, MailMessage),
        chance=random.Random(SEED),
    )

    points = [r.killed_at for r in killed]
    assert len(killed) == KILLS, points
    assert all(p is not None and 0 < p < MESSAGES for p in points), points
    with database(crash_app).session() as session:
        logged = Counter(session.scalars(select(Contact.message_id)))
        stored = Counter(session.scalars(select(MailMessage.message_id)))
        [state] = session.scalars(select(MailboxState)).all()
    expected = {message_id(n, "batch") for n in range(MESSAGES)}
    assert set(logged) == expected  # none lost
    assert max(logged.values()) == 1  # none logged twice
    assert set(stored) == expected
    assert max(stored.values()) == 1
    assert state.last_uid == max(uids)
    flags = flags_of_all(dovecot)
    assert sorted(flags) == uids  # every message still in the mailbox
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
