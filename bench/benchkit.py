"""What the benchmarks share: their database, their desk, a free port, how they stop."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

# The benchmarks' desk: open around the clock (a wall-clock run must find it open), no
# holidays, every colleague on shift all week, one line and one mailbox.
DESK_TIMEZONE = "Europe/Amsterdam"
DESK_LINE = "+31851234567"
DESK_ADDRESS = "helpdesk@example.org"
DESK_STAFF = (
    ("anna", "Anna de Vries", "+31612345678"),
    ("bram", "Bram Jansen", "+31623456789"),
    ("chantal", "Chantal Bakker", "+31634567890"),
)
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BenchError(Exception):
    """The benchmark itself could not run."""


@dataclass(frozen=True)
class BenchDatabase:
    url: str  # what the app is given
    label: str  # what is printed (no password)


@contextmanager
def bench_database(workdir: Path, name: str) -> Iterator[BenchDatabase]:
    """PostgreSQL in a fresh schema when INTAKE_TEST_POSTGRES_URL is set, else SQLite.

    The schema (`bench_<name>_<pid>`) is dropped afterwards, whatever happened.
    """
    base = os.environ.get("INTAKE_TEST_POSTGRES_URL", "").strip()
    if not base:
        path = workdir / "intake.db"
        yield BenchDatabase(f"sqlite:///{path}", f"SQLite ({path})")
        return
    schema = f"bench_{name}_{os.getpid()}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as exc:
        admin.dispose()
        raise BenchError(
            f"cannot create schema {schema} in INTAKE_TEST_POSTGRES_URL: {exc}"
        ) from exc
    try:
        url = make_url(base)
        options = f"-csearch_path={schema}"
        if url.query.get("options"):
            options = f"{url.query['options']} {options}"
        url = url.update_query_dict({"options": options})
        label = f"PostgreSQL (schema {schema} in {make_url(base).render_as_string()})"
        yield BenchDatabase(url.render_as_string(hide_password=False), label)
    finally:
        try:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()


def desk_toml() -> str:
    """A desk open around the clock, every day, with every colleague on shift all week."""
    days = ", ".join(f'"{day}"' for day in WEEK)
    lines = [
        "[desk]",
        'name = "Helpdesk Digitale Zorg (benchmark)"',
        f'timezone = "{DESK_TIMEZONE}"',
        'language = "nl"',
        f'email = "{DESK_ADDRESS}"',
        'website = "https://example.org/hulp"',
        "",
        "[hours]",
        *(f'{day} = ["00:00-23:59"]' for day in WEEK),
        "",
        "[closures]",
        'public_holidays = ""',
        "dates = []",
        "",
        "[[line]]",
        f'number = "{DESK_LINE}"',
        'organisation = "Ziekenhuis Noord"',
        "",
        "[[mailbox]]",
        f'address = "{DESK_ADDRESS}"',
        'organisation = "Ziekenhuis Noord"',
    ]
    for staff_id, name, phone in DESK_STAFF:
        lines += [
            "",
            "[[staff]]",
            f'id = "{staff_id}"',
            f'name = "{name}"',
            f'phone = "{phone}"',
            f'email = "{staff_id}@example.org"',
        ]
    for staff_id, _name, _phone in DESK_STAFF:
        lines += [
            "",
            "[[shift]]",
            f'staff = "{staff_id}"',
            f"days = [{days}]",
            'from = "00:00"',
            'to = "23:59"',
        ]
    lines += ["", "[voice]", 'strategy = "simultaneous"', "ring_seconds = 20", "screening = true"]
    return "\n".join(lines) + "\n"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def interrupted(signum: int, _frame: FrameType | None) -> None:
    """The first Ctrl-C or SIGTERM stops the run; later ones cannot cut the clean-up short."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")
