"""The database: one engine per app, one session per request or job.

Sessions are committed by the shell (a view, a CLI command, a job), never inside the
contact log's functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

EXTENSION = "intake.db"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def make_engine(url: str) -> Engine:
    # Failed statements are logged with their exception; their parameters are patient data
    # (phone numbers), so they stay out of exception messages and logs.
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if url.startswith("sqlite"):
        # Flask serves requests from several threads; SQLite then needs these, and WAL lets
        # readers go on while a webhook writes.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
    # No pool_pre_ping: a ping before every request costs a round trip on the hot path.
    # A connection found dead instead fails its statement, the pool is invalidated, and the
    # webhook shell runs the request once more on a fresh connection (a worker's job too:
    # intake.shell.jobs.again_if_dropped).
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if not url.endswith(":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from or during, as a traceback shows them."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )


def is_database_failure(exc: BaseException) -> bool:
    """Whether the database failed under this error (anyone's trouble, not one mailbox's
    or one request's), even where another error was raised on top of it."""
    return any(isinstance(e, DBAPIError) for e in _chain(exc))


def connection_dropped(exc: BaseException) -> bool:
    """Whether a connection the server closed (a restart, pg_terminate_backend, an idle
    timeout) failed under this error. The pool has then let go of every connection it had
    before the drop, so the same work done again gets a fresh one at once."""
    return any(isinstance(e, DBAPIError) and e.connection_invalidated for e in _chain(exc))


def database_unreachable(exc: BaseException) -> bool:
    """Whether the server could not be reached or talked to (refused, dropped, gone away),
    as opposed to a statement it refused (a constraint, a bad query)."""
    return any(isinstance(e, (OperationalError, InterfaceError)) for e in _chain(exc))


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for a job or command: committed by the caller, always closed."""
        session = self.sessions()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def database(app: Flask | None = None) -> Database:
    app = app or current_app
    db: Database = app.extensions[EXTENSION]
    return db


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Database(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)
