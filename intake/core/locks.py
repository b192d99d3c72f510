"""One holder at a time across processes and hosts: the mailbox poller's lock, and
`in_turn`, which makes writers of one thing wait for each other until they commit.

PostgreSQL: a session advisory lock, held on a connection of its own for as long as the
holder works; if the holder dies, its connection closes and the lock is free. SQLite: a
lease row with an expiry, renewed while working; a dead holder's lease simply runs out.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, or_, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import Lease

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)


def in_turn(session: Session, name: str) -> None:
    """Until this transaction ends, others calling `in_turn` with `name` wait for it.

    For a write whose condition reads other rows (a count, the newest row): the second
    writer then reads what the first committed. PostgreSQL: a transaction advisory lock.
    SQLite has one writer at a time, and a writer whose reads went stale is refused.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    # One round trip: the key is hashed by the server, scoped to the schema as
    # `advisory_key` scopes the session locks (a 64-bit hash; these are held only briefly).
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || :name, 0))"),
        {"name": name},
    )


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def advisory_key(name: str, schema: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock.

    Advisory locks belong to the whole database, not to a schema: two deployments (or two
    test runs) in schemas of one database would otherwise take each other's locks. The
    schema the tables live in is part of the key.
    """
    scoped = f"{schema}/{name}".encode()
    return int.from_bytes(hashlib.sha256(scoped).digest()[:8], "big", signed=True)


class ExclusiveLock:
    """Try `acquire()`; while held, call `renew()` now and then; always `release()`."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        now: Callable[[], datetime],
        *,
        lease: timedelta = DEFAULT_LEASE,
        holder: str | None = None,
    ) -> None:
        self.engine = engine
        self.name = name
        self.now = now
        self.lease = lease
        self.holder = holder or holder_name()
        self.held = False
        self._connection: Connection | None = None
        self._expires: datetime | None = None
        self._key = 0  # the advisory lock's key, known once acquire() has asked the schema

    @property
    def advisory(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        if self.advisory:
            connection = self.engine.connect()
            schema = str(connection.execute(text("SELECT current_schema()")).scalar())
            self._key = advisory_key(self.name, schema)
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar()
            )
            connection.commit()  # the lock is the session's, not the transaction's
            if got:
                self._connection = connection
            else:
                connection.close()
            self.held = got
            return got
        self.held = self._take_lease()
        return self.held

    def renew(self) -> bool:
        """Keep a lease from running out during long work; False if it was lost."""
        if not self.held:
            return False
        if self.advisory:
            return True
        now = self.now()
        if self._expires is not None and self._expires - now > self.lease / 2:
            return True
        self.held = self._take_lease()
        if not self.held:
            log.error("lost the %s lease to another holder", self.name)
        return self.held

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self._connection is not None:
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                )
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None
            return
        with self.engine.begin() as connection:
            connection.execute(
                delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder)
            )

    def _take_lease(self) -> bool:
        now = self.now()
        expires = now + self.lease
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(Lease)
                .where(
                    Lease.name == self.name,
                    or_(Lease.holder == self.holder, Lease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=expires)
            ).rowcount
        if not taken:
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        insert(Lease).values(name=self.name, holder=self.holder, expires_at=expires)
                    )
            except IntegrityError:
                return False  # someone else holds it
        self._expires = expires
        return True

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()
