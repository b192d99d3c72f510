"""The benchmarks' database: a fresh PostgreSQL schema, or SQLite in a work folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError


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
