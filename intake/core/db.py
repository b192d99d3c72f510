"""The database: one engine per app, one session per request or job.

Sessions are committed by the shell (a view, a CLI command, a job), never inside the
contact log's functions.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Connection,
    CursorResult,
    DateTime,
    Engine,
    Integer,
    Select,
    Table,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
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


@dataclass(frozen=True)
class _DriverForm:
    """A statement as one dialect's driver takes it: its SQL, and how to make its arguments."""

    sql: str
    order: tuple[str, ...] | None  # the parameter names in order, for a positional driver
    fixed: Mapping[str, Any]  # values the statement itself holds (literals, column defaults)
    processors: Mapping[str, Callable[[Any], Any]]  # each type's conversion for the driver

    def arguments(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        merged = {**self.fixed, **values}
        for name, process in self.processors.items():
            merged[name] = process(merged[name])
        if self.order is None:
            return merged
        return tuple(merged[name] for name in self.order)


class Prepared:
    """A Core statement compiled once per dialect and run with `exec_driver_sql`.

    SQLAlchemy caches a statement's compiled form, but at every run it still builds the
    parameters through the compiled form and the execution context around them; on the hot
    path of a call that costs several times what the database does. Here that work is done
    once: a run only converts the values (with the column types' own bind processors) and
    hands the SQL to the driver, still through the Connection, so errors, a dead connection's
    invalidation and the transaction are SQLAlchemy's as for any statement.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._forms: dict[str, _DriverForm] = {}
        self._lock = threading.Lock()

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> CursorResult[Any]:
        form = self._forms.get(connection.dialect.name) or self._compile(connection.dialect)
        return connection.exec_driver_sql(form.sql, form.arguments(values))

    def _compile(self, dialect: Dialect) -> _DriverForm:
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        fixed: dict[str, Any] = {n: b.value for n, b in binds.items() if not b.required}
        for column in compiled.insert_prefetch:  # Python-side scalar defaults ("" and False)
            if column.default is None or not column.default.is_scalar:
                raise TypeError(f"{column} has a default that is not a plain value")
            fixed[column.key] = column.default.arg  # type: ignore[attr-defined]
        processors = {}
        for name, bind in binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        form = _DriverForm(
            sql=compiled.string,
            order=tuple(compiled.positiontup or ()) if dialect.positional else None,
            fixed=fixed,
            processors=processors,
        )
        with self._lock:
            self._forms[dialect.name] = form
        return form


# A blob at least this large is written to SQLite through incremental blob I/O (see
# `insert_many`), not bound as a parameter.
LARGE_BLOB = 1 << 20
_BLOB_PIECE = 1 << 20


def insert_many(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    blob: str | None = None,
    returning: bool = True,
) -> list[int]:
    """INSERT `rows` (all with the same keys) into `table`, in `session`'s transaction.
    Their ids, in the order of `rows` and growing in that order; not `returning` them
    lets SQLite take the rows as an executemany, its quickest way (and gives []).

    On PostgreSQL (psycopg) the ids are taken from the table's sequence first, and the rows
    go in one statement with one array parameter per column, sent in binary
    (`INSERT ... SELECT * FROM unnest(...)`): its text and its parameters are the same for
    every group of rows, so neither SQLAlchemy nor psycopg renders or parses a statement
    with a parameter per value, as a multi-row VALUES with RETURNING needs (in a batch of
    mail that was a fifth of the client's time on the database).

    A value of the `blob` column of LARGE_BLOB or more is not in that statement. On
    PostgreSQL it is set by an UPDATE of its own, bound alone (psycopg hands bytes to libpq
    as they are; in an array it would be copied into the array's buffer first). On SQLite
    the row is made its size with zeroblob() and written through sqlite3's incremental blob
    I/O a piece at a time: a bound blob is copied by SQLite, and that copy stays with the
    cached statement until the statement next runs (a 14 MB mail, and the forward that
    carries it, held for the rest of the poll, and again per statement text).
    """
    if not rows:
        return []
    connection = session.connection()
    dialect = connection.dialect
    arrays = dialect.name == "postgresql" and dialect.driver == "psycopg"
    large: dict[int, bytes] = {}  # written apart below; any other database binds them
    if blob is not None and (arrays or dialect.name == "sqlite"):
        large = {n: row[blob] for n, row in enumerate(rows) if len(row[blob]) >= LARGE_BLOB}
    values = [{**row, blob: b""} if n in large else row for n, row in enumerate(rows)]
    if arrays:
        ids = _insert_arrays(connection, table, values)
        if large:
            assert blob is not None
            # The value is a parameter, not in the statement: a compiled statement is cached
            # with the statement it was made from, and that would keep the blob.
            fill = (
                update(table)
                .where(table.c.id == bindparam("blob_row"))
                .values({blob: bindparam("blob_value")})
            )
            for n, data in large.items():
                connection.execute(fill, {"blob_row": ids[n], "blob_value": data})
        return ids if returning else []
    if not returning and not large:
        session.execute(insert(table), values)
        return []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids = [int(i) for i in session.execute(statement, values).scalars()]
    del values
    if large:  # SQLite
        assert blob is not None
        resize = (
            update(table)
            .where(table.c.id == bindparam("blob_row"))
            .values({blob: func.zeroblob(bindparam("blob_size"))})
        )
        driver = connection.connection.driver_connection
        assert driver is not None
        for n, data in large.items():
            connection.execute(resize, {"blob_row": ids[n], "blob_size": len(data)})
            view = memoryview(data)
            with driver.blobopen(table.name, blob, ids[n]) as target:
                for start in range(0, len(view), _BLOB_PIECE):
                    target.write(view[start : start + _BLOB_PIECE])
    return ids if returning else []


@dataclass(frozen=True)
class _ArrayInsert:
    """`insert_many` on PostgreSQL for one table and set of columns."""

    ids: str  # n ids from the table's sequence
    insert: str
    columns: tuple[str, ...]  # as the rows name them
    processors: tuple[Callable[[Any], Any] | None, ...]
    # Columns the rows leave out that have a default of their own: a value, or a callable
    # (SQLAlchemy's wrapping of one, such as `list`, called without an execution context).
    defaults: Mapping[str, Callable[[], Any]]


def _insert_arrays(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    form = _array_insert(table, frozenset(rows[0]), connection.dialect)
    found = connection.exec_driver_sql(form.ids, {"n": len(rows)})
    ids = sorted(int(row_id) for (row_id,) in found)
    parameters: dict[str, Any] = {"id": ids}
    for n, (name, process) in enumerate(zip(form.columns, form.processors, strict=True)):
        default = form.defaults.get(name)
        values = [row[name] for row in rows] if default is None else [default() for _ in rows]
        parameters[f"c{n}"] = values if process is None else [process(v) for v in values]
    connection.exec_driver_sql(form.insert, parameters)
    return ids


def _same(value: Any) -> Any:
    return value


@functools.lru_cache(maxsize=64)
def _array_insert(table: Table, given: frozenset[str], dialect: Dialect) -> _ArrayInsert:
    (key,) = table.primary_key.columns
    if key.name != "id" or not isinstance(key.type, Integer):
        raise TypeError(f"{table.name} has no integer id to take from its sequence")
    unknown = given - set(table.c.keys()) | (given & {key.key})
    if unknown:
        raise TypeError(f"not columns {table.name} takes a value for: {sorted(unknown)}")
    defaults: dict[str, Callable[[], Any]] = {}
    for column in table.c:
        default = column.default
        if column.key in given or column is key or default is None:
            continue
        made: Any = getattr(default, "arg", None)
        if default.is_scalar:
            defaults[column.key] = functools.partial(_same, made)
        elif default.is_callable:
            defaults[column.key] = functools.partial(made, None)
        else:
            raise TypeError(f"{column} has a default that is neither a value nor a function")
    columns = tuple(c.key for c in table.c if c.key in given or c.key in defaults)
    processors = tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    )
    arrays = ", ".join(
        f"%(c{n})b::{table.c[name].type.compile(dialect=dialect)}[]"
        for n, name in enumerate(columns)
    )
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(table.c[name].name) for name in columns)
    # The SQL is made of this table's own names (quoted by the dialect) and placeholders
    # only; the values go as parameters. `%(name)b` asks psycopg for binary format, which
    # SQLAlchemy's constructs cannot say: as text, a bytea array is hex twice its size.
    sequence = f"pg_get_serial_sequence('{quote(table.name)}', '{key.name}')"
    into = f"INSERT INTO {quote(table.name)} ({quote(key.name)}, {names})"
    return _ArrayInsert(
        ids=f"SELECT nextval({sequence}) FROM generate_series(1, %(n)s)",  # noqa: S608
        insert=f"{into} SELECT * FROM unnest(%(id)b::INTEGER[], {arrays})",  # noqa: S608
        columns=columns,
        processors=processors,
        defaults=defaults,
    )


def read_blob(
    session: Session,
    table: Table,
    row_id: int,
    *,
    blob: str,
    before: bytes = b"",
    after: bytes = b"",
) -> bytes | bytearray:
    """The `blob` column of `table`'s row `row_id`, between `before` and `after`, as one
    buffer, in `session`'s transaction; LookupError when there is no such row.

    Its size is asked for first, with the value itself when it is below LARGE_BLOB: one
    round trip for most rows. A larger value is read a piece at a time into the buffer, so
    that it is held once: on SQLite through incremental blob I/O; on PostgreSQL through
    psycopg in binary format (in text format a bytea comes as hex, twice its size), since
    libpq holds a value read whole in its result and again in its input buffer, which keeps
    that size for as long as the connection lives.
    """
    connection = session.connection()
    dialect = connection.dialect
    sized, piece = _blob_reads(table, blob, dialect.name)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor(binary=True) as cursor:
            cursor.execute(_compiled(sized, dialect), {"row_id": row_id})
            found = cursor.fetchone()
            if found is None:
                raise LookupError(f"no row {row_id} in {table.name}")
            size, whole = int(found[0]), found[1]
            if whole is not None:
                return _between(before, bytes(whole), after)
            buffer = bytearray(len(before) + size + len(after))
            text = _compiled(piece, dialect)
            for start in range(0, size, LARGE_BLOB):
                cursor.execute(text, {"row_id": row_id, "at": start + 1})
                data = cursor.fetchone()[0]
                at = len(before) + start
                buffer[at : at + len(data)] = data
    else:
        row = session.execute(sized, {"row_id": row_id}).one_or_none()
        if row is None:
            raise LookupError(f"no row {row_id} in {table.name}")
        size, whole = int(row[0]), row[1]
        if whole is not None or dialect.name != "sqlite":
            if whole is None:  # another database: read whole
                whole = session.execute(
                    select(table.c[blob]).where(table.c.id == row_id)
                ).scalar_one()
            return _between(before, bytes(whole), after)
        buffer = bytearray(len(before) + size + len(after))
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.blobopen(table.name, blob, row_id, readonly=True) as source:
            for start in range(0, size, _BLOB_PIECE):
                data = source.read(_BLOB_PIECE)
                at = len(before) + start
                buffer[at : at + len(data)] = data
    buffer[: len(before)] = before
    buffer[len(buffer) - len(after) :] = after
    return buffer


def _between(before: bytes, value: bytes, after: bytes) -> bytes:
    return b"".join((before, value, after)) if before or after else value


# LARGE_BLOB is written into the SQL: the driver is given only the row's id (and offset).
_LARGE: ColumnElement[int] = literal_column(str(LARGE_BLOB))


@functools.lru_cache(maxsize=16)
def _blob_reads(table: Table, blob: str, dialect: str) -> tuple[Select[Any], Select[Any]]:
    """For `read_blob`: (the size, and the value when small), and a piece of the value."""
    column = table.c[blob]
    size = func.length(column) if dialect == "sqlite" else func.octet_length(column)
    where = table.c.id == bindparam("row_id")
    sized = select(size, case((size < _LARGE, column))).where(where)
    piece = select(func.substring(column, bindparam("at", type_=Integer), _LARGE)).where(where)
    return sized, piece


@functools.lru_cache(maxsize=16)
def _compiled(statement: Any, dialect: Any) -> str:
    return str(statement.compile(dialect=dialect))


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
