"""How fast the dashboard answers with 100,000 contacts in the log, against the bare SQL.

    .venv/bin/python bench/dashboard.py        (from the repository root)

One run makes a fresh database (PostgreSQL in a schema of its own when
INTAKE_TEST_POSTGRES_URL is set, dropped afterwards; else SQLite in a temporary folder),
loads the example desk, inserts 100,000 contacts spread over the year before the bench's
clock (calls, mails and walk-ins, mostly in opening hours, with outcomes, handling times and
topics), makes a coordinator and logs in through the login form. Then, through the Flask
test client in this process, it times each page several times and takes the median:

- the contacts page: the first page, a filter (`/contacts?channel=call`) and a search
  (`/contacts?q=0612345678`), when that page exists in this checkout;
- the demand page over the whole year.

In the same run it times the same queries as bare SQL: the statements each page sent are
recorded (SQLAlchemy's before_cursor_execute, with their parameters as the driver got them)
and run again on a bare DBAPI cursor, every row fetched, with no Flask, ORM or template in
between. It prints page time / SQL time, so what the page adds on top of its SQL is visible.
The load on the machine is printed too: other work on these 2 cores shows in every figure.

Target: every page under 300 ms (median). It is a measurement, not a test: the exit status
is 0 whether or not the targets are met, and non-zero only when the bench could not run.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import statistics
import sys
import tempfile
import time as timer
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from benchkit import BenchDatabase, BenchError, bench_database
from sqlalchemy import Engine, Table, event, insert, text
from sqlalchemy.exc import SQLAlchemyError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from intake import create_app  # noqa: E402
from intake.core.db import database  # noqa: E402
from intake.core.definition import parse_definition  # noqa: E402
from intake.core.deskstore import store_desk  # noqa: E402
from intake.core.models import Contact  # noqa: E402
from intake.core.schema import upgrade  # noqa: E402
from intake.shell.auth import create_user  # noqa: E402

TARGET_MS = 300.0
CONTACTS = 100_000
SEED = 20261123
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# The bench's clock: a Monday morning; the contacts fill the year before it.
NOW = datetime(2026, 11, 23, 10, 15, tzinfo=AMSTERDAM)
SEARCHED = "+31612345678"  # what `/contacts?q=0612345678` should find
EMAIL = "coordinator@example.org"
PASSWORD = "bench password, long enough"
TOPICS = (
    "App activeren",
    "Patiëntportaal",
    "Videoconsult",
    "Apparaat of besturingssysteem",
    "Anders",
)
ORGANISATIONS = ("Ziekenhuis Noord", "Zorggroep De Linde")


# --- the database ---------------------------------------------------------------------------


# --- the contacts -----------------------------------------------------------------------------


def _moment(rng: random.Random, first: date, days: int) -> datetime:
    """A local moment: mostly weekdays in opening hours, some evenings, nights, weekends."""
    while True:
        day = first + timedelta(days=rng.randrange(days))
        if rng.random() < 0.8:
            if day.weekday() >= 5:
                continue
            minute = rng.randrange(8 * 60, 17 * 60 + 30)
        else:
            minute = rng.randrange(24 * 60)
        local = datetime(day.year, day.month, day.day, tzinfo=AMSTERDAM) + timedelta(
            minutes=minute, seconds=rng.randrange(60)
        )
        return local.astimezone(UTC)


def _caller(rng: random.Random, channel: str) -> str:
    if channel == "mail":
        return f"patient{rng.randrange(40_000)}@example.net"
    if channel == "walk-in":
        return ""
    if rng.random() < 0.01:
        return SEARCHED
    return f"+316{rng.randrange(10**8):08d}"


def contact_rows(count: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    first = (NOW - timedelta(days=365)).date()
    for _ in range(count):
        started = _moment(rng, first, 365)
        draw = rng.random()
        channel = "call" if draw < 0.55 else "mail" if draw < 0.9 else "walk-in"
        if channel == "call":
            outcome = rng.choices(("answered", "voicemail", "missed", "fallback"), (70, 15, 10, 5))[
                0
            ]
            needs_handling = outcome in ("voicemail", "missed")
        elif channel == "mail":
            outcome = rng.choices(
                ("forwarded", "acknowledged", "received", "automatic"), (60, 30, 5, 5)
            )[0]
            needs_handling = outcome != "automatic"
        else:
            outcome, needs_handling = "handled", True
        handled = needs_handling and rng.random() < 0.9
        handled_at = started + timedelta(minutes=rng.expovariate(1 / 180)) if handled else None
        if channel == "walk-in":
            handled_at = started
        yield {
            "channel": channel,
            "via": "+31851234567" if channel == "call" else "helpdesk@example.org",
            "organisation": rng.choice(ORGANISATIONS),
            "caller": _caller(rng, channel),
            "started_at": started,
            "ended_at": started + timedelta(seconds=rng.randrange(30, 900)),
            "outcome": outcome,
            "answered_by": rng.choice(("anna", "bram", "chantal"))
            if outcome == "answered"
            else None,
            "subject": f"Vraag over {rng.choice(TOPICS).lower()}" if channel == "mail" else "",
            "needs_attention": False,
            "forward_pending": False,
            "handled_at": handled_at,
            "handled_by": "anna@example.org" if handled_at else None,
            "note": "",
            "topic": rng.choice(TOPICS) if handled_at else None,
        }


def fill(app: Flask, count: int, rng: random.Random) -> float:
    """Insert `count` contacts with Core executemany, in chunks; the seconds it took."""
    contacts = cast(Table, Contact.__table__)
    # In the order they came, as the log fills: ids and the started_at index then agree,
    # as they do in a real log (a random order would make every range scan a random read).
    rows = sorted(contact_rows(count, rng), key=lambda row: row["started_at"])
    began = timer.perf_counter()
    with database(app).engine.begin() as connection:
        for chunk in range(0, len(rows), 10_000):
            connection.execute(insert(contacts), rows[chunk : chunk + 10_000])
    if database(app).engine.dialect.name == "postgresql":
        with database(app).engine.begin() as connection:
            connection.execute(text("ANALYZE contact"))
    return timer.perf_counter() - began


# --- the app, a coordinator, a login ------------------------------------------------------------


def make_app(db: BenchDatabase, instance: Path) -> Flask:
    app = create_app(
        {
            "DATABASE_URL": db.url,
            "SECRET_KEY": "bench",
            "INSTANCE_PATH": str(instance),
            "PUBLIC_URL": "https://intake.bench.test",
            "TWILIO_AUTH_TOKEN": "bench-token",
            "INSECURE_DEV": False,
            "CLOCK": lambda: NOW,
        }
    )
    upgrade(database(app).engine)
    desk = parse_definition((REPO / "examples" / "helpdesk.toml").read_text())
    with database(app).session() as session:
        # Stored before the year of contacts, so the whole year is judged by these hours.
        store_desk(session, desk, source="bench", at=NOW - timedelta(days=400))
        create_user(session, EMAIL, PASSWORD, role="coordinator", language="en", now=NOW)
        session.commit()
    return app


def log_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if match is None:
        raise BenchError("the login page has no CSRF token")
    response = client.post(
        "/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": match.group(1)}
    )
    if response.status_code != 302:
        raise BenchError(f"logging in failed: HTTP {response.status_code}")
    return client


# --- timing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    label: str
    path: str
    endpoint: str  # measured only when this checkout has the view


YEAR = (NOW - timedelta(days=364)).date()  # the first day of the year shown
TARGETS = (
    Target("contacts, first page", "/contacts", "dashboard.contacts"),
    Target("contacts, filter", "/contacts?channel=call", "dashboard.contacts"),
    Target("contacts, search", "/contacts?q=0612345678", "dashboard.contacts"),
    Target(
        "demand, one year",
        f"/demand?from={YEAR.isoformat()}&to={NOW.date().isoformat()}",
        "dashboard.demand",
    ),
)


@dataclass
class Statements:
    """The SQL a request sent to the database, as the driver got it."""

    seen: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if not many:
            self.seen.append((statement, parameters))


def captured(engine: Engine, request: Callable[[], object]) -> list[tuple[str, Any]]:
    statements = Statements()
    event.listen(engine, "before_cursor_execute", statements)
    try:
        request()
    finally:
        event.remove(engine, "before_cursor_execute", statements)
    return statements.seen


def replay(engine: Engine, statements: Sequence[tuple[str, Any]]) -> float:
    """Seconds to run `statements` on a bare DBAPI cursor, fetching every row.

    With Python's cyclic collector paused, as the demand page pauses it while it holds
    its rows: a collection here would be this process's housekeeping, not the database's.
    """
    connection = engine.raw_connection()
    gc.disable()
    try:
        cursor = connection.cursor()
        began = timer.perf_counter()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            if cursor.description is not None:
                cursor.fetchall()
        elapsed = timer.perf_counter() - began
        cursor.close()
        connection.rollback()
        return elapsed
    finally:
        gc.enable()
        connection.close()


@dataclass(frozen=True)
class Figure:
    target: Target
    page_ms: float  # median
    page_min_ms: float
    sql_ms: float  # median
    statements: int
    size: int

    @property
    def ratio(self) -> float:
        return self.page_ms / self.sql_ms if self.sql_ms else float("inf")

    @property
    def passed(self) -> bool:
        return self.page_ms < TARGET_MS


def measure(app: Flask, client: FlaskClient, target: Target, runs: int) -> Figure:
    engine = database(app).engine
    first = client.get(target.path)  # warm: templates compiled, caches filled
    if first.status_code != 200:
        raise BenchError(f"GET {target.path} answered HTTP {first.status_code}")
    pages = []
    for _ in range(runs):
        began = timer.perf_counter()
        response = client.get(target.path)
        pages.append(timer.perf_counter() - began)
        if response.status_code != 200:
            raise BenchError(f"GET {target.path} answered HTTP {response.status_code}")
    statements = captured(engine, lambda: client.get(target.path))
    bare = [replay(engine, statements) for _ in range(runs)]
    return Figure(
        target,
        page_ms=statistics.median(pages) * 1000,
        page_min_ms=min(pages) * 1000,
        sql_ms=statistics.median(bare) * 1000,
        statements=len(statements),
        size=len(first.data),
    )


# --- the run ----------------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=CONTACTS, help="contacts in the log")
    parser.add_argument("--runs", type=int, default=9, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=SEED)
    options = parser.parse_args(argv)
    if options.contacts < 1 or options.runs < 1:
        parser.error("counts must be positive")
    return options


def run(options: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        workdir = Path(folder)
        with bench_database(workdir, "dashboard") as db:
            print(f"database: {db.label}")
            app = make_app(db, workdir / "instance")
            try:
                seconds = fill(app, options.contacts, random.Random(options.seed))
                print(f"  {options.contacts:,} contacts over a year inserted in {seconds:.1f} s")
                client = log_in(app)
                figures = []
                for target in TARGETS:
                    if target.endpoint not in app.view_functions:
                        print(
                            f"  {target.label}: skipped, {target.endpoint} is not in this checkout"
                        )
                        continue
                    figures.append(measure(app, client, target, options.runs))
                return figures
            finally:
                database(app).engine.dispose()


def report(figures: Sequence[Figure], runs: int) -> None:
    print()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
    print(f"median of {runs} requests through the Flask test client, logged in as coordinator;")
    print("SQL: the same statements the page sent, on a bare DBAPI cursor, all rows fetched")
    print()
    print(
        f"{'page':<22} {'page ms':>8} {'(min)':>7} {'SQL ms':>8} {'page/SQL':>9}"
        f" {'stmts':>6} {'KiB':>5}  target: median < {TARGET_MS:.0f} ms"
    )
    for f in figures:
        print(
            f"{f.target.label:<22} {f.page_ms:>8.1f} {f.page_min_ms:>7.1f} {f.sql_ms:>8.1f}"
            f" {f.ratio:>8.1f}x {f.statements:>6} {f.size / 1024:>5.0f}  "
            + ("PASS" if f.passed else "FAIL")
        )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        figures = run(options)
    except (BenchError, SQLAlchemyError, OSError) as exc:
        print(f"bench/dashboard.py: the benchmark could not run: {exc}", file=sys.stderr)
        return 1
    report(figures, options.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
