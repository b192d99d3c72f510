"""The real `intake` command as a separate process, pointed at the test database and servers.

Such a process reads the real clock and the environment, not the test app's config: give it
a desk that is open now (`tests.factories.always_open_desk`) and the environment of
`intake_env`. `run_intake` can SIGKILL it at a chosen point of its progress.

On SQLite a process killed while holding the poller's lease leaves its lease row behind
(`end_dead_leases` lets it run out at once); PostgreSQL's advisory lock frees by itself.

`Worker` is a long-running `intake worker`. On PostgreSQL a process can be given a name of
its own (`named_url`), which its connections carry as their `application_name`: the test
then sees which process holds a mailbox's lock (`lock_holders`) and ends every connection
of its own processes, and none of anyone else's (`terminate_named`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import create_engine, func, select, text, update

from intake.core.db import database
from intake.core.models import Contact, Lease, MailMessage

from .factories import DESK_ADDRESS

if TYPE_CHECKING:  # imported at run time by pytest, as a plugin
    from tests.mailservers import Dovecot, SmtpSink

INTAKE = Path(sys.executable).with_name("intake")
RUN_TIMEOUT = 60.0  # seconds one `intake poll-once` may take before the test gives up
PROGRESS_INTERVAL = 0.01  # how often the test looks at the process's progress
STOP_TIMEOUT = 5.0  # seconds a worker may take to stop after SIGTERM
READY_TIMEOUT = 30.0  # seconds a worker may take to start its scheduler


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
    name: str = "worker"

    @classmethod
    def start(cls, env: dict[str, str], cwd: Path, name: str) -> Worker:
        return cls(*start_intake(["worker"], env, cwd, name), name=name)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        """Started its scheduler (it says so just before)."""
        return "worker running" in self.out.read_text()

    @property
    def log(self) -> str:
        return self.err.read_text()

    def wait_running(self, timeout: float = READY_TIMEOUT) -> None:
        def started() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited at start:\n{self.log}")
            return self.running

        wait_until(started, timeout, f"{self.name} running")

    def terminate(self) -> int:
        """SIGTERM, as systemd or `docker stop` sends; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL by its pid, if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


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


# --- PostgreSQL: the connections of the test's own processes -------------------------------


def named_url(database_url: str, name: str) -> str:
    """The URL whose connections show `name` as their application_name (PostgreSQL)."""
    separator = "&" if "?" in database_url else "?"
    return f"{database_url}{separator}application_name={name}"


def terminate_named(database_url: str, prefix: str) -> list[str]:
    """End every server process whose connection's application_name starts with `prefix`
    (this test's own processes, never another test's), in one statement, as a database
    restart would; the application names of those ended, one per connection."""
    admin = create_engine(database_url)
    try:
        with admin.begin() as connection:
            rows = connection.execute(
                text(
                    "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE left(application_name, length(:prefix)) = :prefix"
                    " AND pid <> pg_backend_pid()"
                ),
                {"prefix": prefix},
            ).all()
    finally:
        admin.dispose()
    return sorted(name for name, ended in rows if ended)


def lock_holders(database_url: str, prefix: str) -> set[str]:
    """The application names, among those starting with `prefix`, whose connections hold
    an advisory lock now (the mailbox poller's: see intake.core.locks)."""
    admin = create_engine(database_url)
    try:
        with admin.begin() as connection:
            names = connection.execute(
                text(
                    "SELECT DISTINCT a.application_name FROM pg_locks l"
                    " JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted"
                    " AND left(a.application_name, length(:prefix)) = :prefix"
                ),
                {"prefix": prefix},
            ).scalars()
            return set(names)
    finally:
        admin.dispose()


def reached(progress: Callable[[], int], target: int) -> Callable[[], int | None]:
    """For `run_intake(kill_when=…)`: the progress once it has reached `target`, else None."""

    def check() -> int | None:
        done = progress()
        return done if done >= target else None

    return check
