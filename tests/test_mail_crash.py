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

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.definition import parse_definition
from intake.core.models import Contact, Lease, MailboxState, MailMessage, OutboxMessage
from mail.poller import LOGGED_KEYWORD, poll
from routing.desk import Desk
from tests.mailservers import configure_mail

from .conftest import load_desk

if TYPE_CHECKING:
    from tests.mailservers import Dovecot, SmtpSink

INTAKE = Path(sys.executable).with_name("intake")
DESK_ADDRESS = "helpdesk@example.org"
COLLEAGUES = ("anna", "bram", "chantal")
SEED = 20261123
RUN_TIMEOUT = 60.0  # seconds one `intake poll-once` may take before the test gives up
PROGRESS_INTERVAL = 0.01  # how often the test looks at the process's progress


# --- a desk that is open now, whatever the wall clock says ---------------------------------


def noon_zone(now: datetime | None = None) -> str:
    """A fixed-offset zone in which it is between 11:30 and 12:30 at `now` (default: now)."""
    hour = (now or datetime.now(UTC)).astimezone(UTC)
    offset = 12 - round(hour.hour + hour.minute / 60) % 24  # hours ahead of UTC: -11 … 12
    # The POSIX sign of Etc/GMT zones is reversed: Etc/GMT-2 is two hours ahead of UTC.
    return f"Etc/GMT{-offset:+d}"


def always_open_desk(now: datetime | None = None) -> Desk:
    """Open 00:00-23:59 every day, no holidays, colleagues with addresses on shift all week."""
    week = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    days = "[" + ", ".join(f'"{d}"' for d in week) + "]"
    hours = "\n".join(f'{d} = ["00:00-23:59"]' for d in week)
    staff = "\n".join(
        f"""
[[staff]]
id = "{who}"
name = "{who.title()}"
phone = "+3161234567{n}"
email = "{who}@example.org"

[[shift]]
staff = "{who}"
days = {days}
from = "00:00"
to = "23:59"
"""
        for n, who in enumerate(COLLEAGUES)
    )
    text = f"""
[desk]
name = "Helpdesk Digitale Zorg"
timezone = "{noon_zone(now)}"
language = "nl"
email = "{DESK_ADDRESS}"

[hours]
{hours}

[closures]
public_holidays = ""

[[mailbox]]
address = "{DESK_ADDRESS}"
organisation = "Ziekenhuis Noord"
{staff}
"""
    return parse_definition(text, source="always-open test desk")


# --- mail ------------------------------------------------------------------------------------


def numbered_mail(n: int, *, attachment: int = 0, tag: str = "crash") -> bytes:
    """Patient mail number `n`, from its own sender, with `attachment` bytes attached."""
    message = EmailMessage()
    message["From"] = f"Patiënt {n} <patient{n}@example.nl>"
    message["To"] = DESK_ADDRESS
    message["Subject"] = f"Vraag {n} over het portaal"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id(n, tag)
    message.set_content(f"Goedemorgen, dit is vraag {n}. Groet, patiënt {n}\n")
    if attachment:
        data = random.Random(n).randbytes(attachment)
        message.add_attachment(
            data, maintype="application", subtype="pdf", filename=f"verwijzing-{n}.pdf"
        )
    return message.as_bytes()


def message_id(n: int, tag: str = "crash") -> str:
    return f"<{tag}-{n}@mail.example.nl>"


def append_all(dovecot: Dovecot, messages: Sequence[bytes]) -> list[int]:
    """Append the messages over one IMAP session (one login, not one per message)."""
    uids: list[int] = []
    with dovecot.session() as client:
        for raw in messages:
            response = client.append("INBOX", raw)
            found = re.search(rb"\[APPENDUID \d+ (\d+)\]", response)
            assert found is not None, response
            uids.append(int(found.group(1)))
    return uids


def flags_of_all(dovecot: Dovecot) -> dict[int, frozenset[str]]:
    """Every message's flags, in one session."""
    with dovecot.session() as client:
        client.select_folder("INBOX", readonly=True)
        found = client.fetch(client.search("ALL"), ["FLAGS"])
    return {
        uid: frozenset(f.decode() if isinstance(f, bytes) else f for f in data[b"FLAGS"])
        for uid, data in found.items()
    }


# --- the `intake` command as a separate process ---------------------------------------------


def intake_env(
    database_url: str,
    tmp_path: Path,
    dovecot: Dovecot,
    smtp: SmtpSink | None,
    **extra: str,
) -> dict[str, str]:
    """The environment of an `intake` process pointed at the test database and servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "TWILIO_"))}
    env.update(
        INTAKE_DATABASE_URL=database_url,
        INTAKE_INSTANCE_PATH=str(tmp_path / "instance"),
        INTAKE_SECRET_KEY="test",
        INTAKE_IMAP_HOST=dovecot.host,
        INTAKE_IMAP_PORT=str(dovecot.port),
        INTAKE_IMAP_SSL="0",
        INTAKE_IMAP_STARTTLS="1",
        INTAKE_IMAP_CAFILE=dovecot.cafile,
        INTAKE_IMAP_USER=dovecot.user,
        INTAKE_IMAP_PASSWORD=dovecot.password,
        INTAKE_SMTP_FROM=DESK_ADDRESS,
    )
    if smtp is not None:
        env.update(
            INTAKE_SMTP_HOST=smtp.host,
            INTAKE_SMTP_PORT=str(smtp.port),
            INTAKE_SMTP_STARTTLS="0",
        )
    env.update(extra)
    return env


@dataclass
class Run:
    """One `intake` process: how it ended and what it said."""

    returncode: int
    stdout: str
    stderr: str
    killed_at: int | None = None  # the progress seen when it was killed

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    @property
    def finished(self) -> bool:
        """Exited normally having done its work (not stepped aside for another poller)."""
        return self.returncode == 0 and "another process is polling" not in self.stdout


def start_intake(
    args: Sequence[str], env: dict[str, str], cwd: Path, name: str
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = cwd / f"{name}.out", cwd / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [str(INTAKE), *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    return process, out, err


def run_intake(
    args: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    *,
    name: str = "intake",
    kill_when: Callable[[], int | None] | None = None,
    timeout: float = RUN_TIMEOUT,
) -> Run:
    """Run `intake ARGS`; SIGKILL it as soon as `kill_when()` returns a number (its progress)."""
    process, out, err = start_intake(args, env, cwd, name)
    killed_at: int | None = None
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None:
            if kill_when is not None:
                killed_at = kill_when()
                if killed_at is not None:
                    process.send_signal(signal.SIGKILL)
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"`intake {' '.join(args)}` still running after {timeout} s")
            time.sleep(PROGRESS_INTERVAL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    run = Run(process.returncode, out.read_text(), err.read_text())
    if run.returncode != -signal.SIGKILL:
        killed_at = None  # it had finished before the signal could land
    run.killed_at = killed_at
    return run


# --- the database, read by the test --------------------------------------------------------


def count(app: Flask, model: type[Contact] | type[MailMessage]) -> int:
    with database(app).session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def end_dead_leases(app: Flask, database_url: str) -> None:
    """SQLite: let a killed poller's lease run out, as five minutes of waiting would."""
    if not database_url.startswith("sqlite"):
        return
    with database(app).session() as session:
        session.execute(update(Lease).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()


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


def reached(progress: Callable[[], int], target: int) -> Callable[[], int | None]:
    """For `run_intake(kill_when=…)`: the progress once it has reached `target`, else None."""

    def check() -> int | None:
        done = progress()
        return done if done >= target else None

    return check


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

    killed = kill_and_restart(
        crash_app,
        database_url,
        intake_env(database_url, tmp_path, dovecot, smtp),
        tmp_path,
        progress=lambda: len(smtp.messages),
        chance=random.Random(SEED + 1),
    )

    assert len(killed) == KILLS, [r.killed_at for r in killed]
    with database(crash_app).session() as session:
        rows = session.execute(select(OutboxMessage.sent_at, OutboxMessage.failed_at)).all()
    assert all(r.sent_at is not None and r.failed_at is None for r in rows)
    arrived = Counter(str(m.message["Message-ID"]) for m in smtp.messages)
    assert set(arrived) == outbox  # every forward arrived; nothing that was not queued
    # A kill resends at most the one message in flight, under the same Message-ID.
    assert sum(arrived.values()) - len(arrived) <= len(killed)
