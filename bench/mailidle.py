"""IMAP IDLE across many mailboxes: one mail lands in each at once; how long until all are contacts.

Part of bench/mail.py (`--idle`). The private Dovecot gets N more users (lines added to its
passwd file, which Dovecot reads again when it changes: the tests' users are untouched); a
desk of its own, in a database of its own, has a [[mailbox]] per user signed in with a
password from an environment variable (given to the app as MAILBOX_ENVIRONMENT, the mapping
the worker reads from os.environ). `IdleWatchers` watch them all, as the worker's would.

A round: every watcher is idling; N threads, each already signed in, append one mail to
their own mailbox as a barrier lets them go; the clock runs from that moment until the
database holds N more contacts (looked at every 50 ms, bounded at 60 s). Everything is on
127.0.0.1, bounded in mailboxes, rounds and time, and stopped afterwards.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchkit import DESK_ADDRESS, BenchError, bench_database, desk_toml, free_port
from flask import Flask
from imapclient import IMAPClient
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.pool import NullPool

from intake import create_app
from intake.core.db import database
from intake.core.definition import parse_definition
from intake.core.deskstore import store_desk
from intake.core.models import Contact
from intake.core.schema import upgrade
from intake.shell.jobs import idle_accounts, poll_now
from mail.idle import IdleWatchers
from tests.dovecot import Dovecot

MAX_MAILBOXES = 50
MAX_ROUNDS = 20
TARGET_MEDIAN_SECONDS = 5.0
ROUND_LIMIT_SECONDS = 60.0
READY_LIMIT_SECONDS = 60.0
LOOK_EVERY = 0.05


@dataclass(frozen=True)
class IdleResult:
    mailboxes: int
    rounds: list[float]  # seconds from the appends to the last contact, per round
    missed: list[str]  # rounds not done within the bound (counted as the bound)

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    @property
    def worst(self) -> float:
        return max(self.rounds)

    @property
    def met(self) -> bool:
        return self.median < TARGET_MEDIAN_SECONDS


def users_of(count: int) -> list[tuple[str, str]]:
    return [(f"idle{n:02d}@example.org", f"idle{n:02d}-bench-password") for n in range(count)]


def add_users(dovecot: Dovecot, users: Sequence[tuple[str, str]]) -> None:
    """More passwd-file lines; the next sign-in reads the file again (its mtime changed)."""
    with (dovecot.directory / "users").open("a") as out:
        for user, password in users:
            out.write(f"{user}:{{PLAIN}}{password}::::::\n")


def idle_desk_toml(dovecot: Dovecot, users: Sequence[tuple[str, str]]) -> str:
    """The benchmark desk, its one mailbox replaced by one per user, each with its own IMAP."""
    base = desk_toml().replace(
        f'[[mailbox]]\naddress = "{DESK_ADDRESS}"\norganisation = "Ziekenhuis Noord"\n', ""
    )
    lines = [base]
    for n, (user, _password) in enumerate(users):
        lines += [
            "[[mailbox]]",
            f'address = "{user}"',
            'organisation = "Ziekenhuis Noord"',
            'signin = "password"',
            f'password_env = "INTAKE_MAILBOX_IDLE{n:02d}_PASSWORD"',
            f'imap = {{ host = "{dovecot.host}", port = {dovecot.port}, tls = "starttls", '
            f'cafile = "{dovecot.cafile}" }}',
            "",
        ]
    return "\n".join(lines)


def idle_app(url: str, workdir: Path, users: Sequence[tuple[str, str]]) -> Flask:
    instance = workdir / "instance"
    instance.mkdir()
    secrets = {f"INTAKE_MAILBOX_IDLE{n:02d}_PASSWORD": pw for n, (_u, pw) in enumerate(users)}
    return create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "INSTANCE_PATH": str(instance),
            "PUBLIC_URL": "",
            "TWILIO_AUTH_TOKEN": "",
            "INSECURE_DEV": False,
            "MAILBOX_ENVIRONMENT": secrets,
            # The forwards stay queued: nothing flushes the outbox in this part.
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": free_port(),
            "SMTP_STARTTLS": False,
            "SMTP_FROM": DESK_ADDRESS,
        }
    )


def contact_count(engine: Engine) -> int:
    """On an engine of the benchmark's own: the app's pool may be what is being waited for."""
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Contact)) or 0)


def idle_mail(user: str, round_: int) -> bytes:
    return (
        f"From: Patient {round_} <patient.{round_}@example.net>\r\n"
        f"To: {user}\r\n"
        f"Subject: Inloggen lukt niet (ronde {round_})\r\n"
        f"Message-ID: <idle-{round_}-{user}>\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0100\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Sinds gisteren kan ik niet meer inloggen op het patientportaal.\r\n"
    ).encode()


def append_all(clients: Sequence[tuple[IMAPClient, str]], round_: int) -> float:
    """One APPEND per mailbox, from a thread each, released together; the release time."""
    barrier = threading.Barrier(len(clients) + 1)
    errors: list[BaseException] = []

    def append(client: IMAPClient, user: str) -> None:
        try:
            barrier.wait(timeout=30)
            client.append("INBOX", idle_mail(user, round_))
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=append, args=pair, daemon=True) for pair in clients]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=30)
    released = time.monotonic()
    for thread in threads:
        thread.join(30)
    if errors:
        raise BenchError(f"an APPEND failed: {errors[0]!r}")
    return released


def wait_for(what: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(LOOK_EVERY)
    return False


def measure_idle(dovecot: Dovecot, workdir: Path, mailboxes: int, rounds: int) -> IdleResult:
    if not 1 <= mailboxes <= MAX_MAILBOXES or not 1 <= rounds <= MAX_ROUNDS:
        raise BenchError(f"--idle-mailboxes 1..{MAX_MAILBOXES}, --idle-rounds 1..{MAX_ROUNDS}")
    users = users_of(mailboxes)
    add_users(dovecot, users)
    place = workdir / "idle"
    place.mkdir()
    with bench_database(place, "mailidle") as db:
        app = idle_app(db.url, place, users)
        counter = create_engine(db.url, poolclass=NullPool)
        watchers = IdleWatchers(lambda account: lambda: poll_now(app, account.key))
        clients: list[tuple[IMAPClient, str]] = []
        try:
            upgrade(database(app).engine)
            desk = parse_definition(idle_desk_toml(dovecot, users), source="bench/mailidle.py")
            with database(app).session() as session:
                store_desk(session, desk, source="bench/mailidle.py", at=app.config["CLOCK"]())
                session.commit()
            accounts = idle_accounts(app)
            if len(accounts) != mailboxes:
                raise BenchError(f"{len(accounts)} of {mailboxes} mailboxes can sign in")
            watchers.sync(accounts)

            def all_watching() -> bool:
                found = watchers.watchers.values()
                return len(found) == mailboxes and all(w.state == "watching" for w in found)

            if not wait_for(all_watching, READY_LIMIT_SECONDS):
                states = sorted(w.state for w in watchers.watchers.values())
                raise BenchError(f"not every watcher idles within 60 s: {states}")
            for user, password in users:
                client = dovecot.as_user(user, password).connect(timeout=30.0)
                clients.append((client, user))
            took: list[float] = []
            missed: list[str] = []
            for round_ in range(1, rounds + 1):
                released = append_all(clients, round_)
                expected = mailboxes * round_
                if wait_for(lambda n=expected: contact_count(counter) >= n, ROUND_LIMIT_SECONDS):
                    took.append(time.monotonic() - released)
                else:  # counted as the bound: the figure is reported, not lost
                    took.append(ROUND_LIMIT_SECONDS)
                    missed.append(f"round {round_}: {contact_count(counter)} of {expected}")
                print(f"  IDLE round {round_}: {mailboxes} mails to contacts in {took[-1]:.2f} s")
            return IdleResult(mailboxes, took, missed)
        finally:
            for client, _user in clients:
                try:
                    client.logout()
                except Exception:  # a session the server closed: its socket goes
                    client.shutdown()
            watchers.stop()
            counter.dispose()
            database(app).engine.dispose()


def print_idle(result: IdleResult, rounds: int) -> None:
    print(
        f"  {'PASS' if result.met else 'FAIL'}  IDLE, {result.mailboxes} mailboxes, one mail "
        f"each at once: median {result.median:.2f} s, max {result.worst:.2f} s over {rounds} "
        f"rounds (target median < {TARGET_MEDIAN_SECONDS:.0f} s; a 60 s poll is what peers offer)"
    )
    for line in result.missed:
        print(
            f"        not all contacts within {ROUND_LIMIT_SECONDS:.0f} s, {line}"
            " (counted as the bound)"
        )
