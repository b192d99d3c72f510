"""Only one mailbox poller at a time, across processes and hosts; a dead holder's lock frees."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.locks import ExclusiveLock

from .conftest import terminate_backend


def lock(app: Flask, clock: SimClock, holder: str) -> ExclusiveLock:
    return ExclusiveLock(database(app).engine, "mail-poller:test", clock, holder=holder)


def test_a_second_holder_waits_until_the_first_lets_go(app: Flask, clock: SimClock) -> None:
    first, second = lock(app, clock, "host-a:1"), lock(app, clock, "host-b:2")

    assert first.acquire()
    try:
        assert not second.acquire()
    finally:
        first.release()
    assert second.acquire()
    second.release()


def test_a_lease_holder_that_died_is_taken_over_after_the_lease(
    app: Flask, clock: SimClock, database_url: str
) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL uses an advisory lock, freed when the holder's connection goes")
    first, second = lock(app, clock, "host-a:1"), lock(app, clock, "host-b:2")
    assert first.acquire()  # and then the process dies without releasing

    clock.advance(60)
    assert not second.acquire()
    clock.advance(first.lease.total_seconds())
    assert second.acquire()
    second.release()


def test_renewing_keeps_a_long_poll_its_lease(
    app: Flask, clock: SimClock, database_url: str
) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("an advisory lock needs no renewing")
    first, second = lock(app, clock, "host-a:1"), lock(app, clock, "host-b:2")
    assert first.acquire()
    for _ in range(10):
        clock.advance(first.lease.total_seconds() * 0.6)
        assert first.renew()
    assert not second.acquire()
    first.release()


def test_an_advisory_lock_frees_when_its_holders_connection_dies(
    app: Flask, clock: SimClock, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite uses a lease that runs out instead")
    first, second = lock(app, clock, "host-a:1"), lock(app, clock, "host-b:2")
    assert first.acquire()
    assert first._connection is not None
    pid = first._connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    first._connection.commit()

    terminate_backend(database_url, pid)

    assert second.acquire()
    second.release()
    first._connection.invalidate()
    first._connection.close()


def test_a_lost_lease_is_noticed(app: Flask, clock: SimClock, database_url: str) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("an advisory lock is not lost while its connection lives")
    first, second = lock(app, clock, "host-a:1"), lock(app, clock, "host-b:2")
    assert first.acquire()
    clock.advance((first.lease + timedelta(seconds=1)).total_seconds())
    assert second.acquire()  # first stalled past its lease

    assert not first.renew()
    second.release()


def test_a_deployment_in_another_schema_of_the_database_holds_its_own_lock(
    app: Flask, clock: SimClock, database_url: str
) -> None:
    """Advisory locks belong to the whole PostgreSQL database; ours are kept per schema."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no schemas: each database file is its own")
    other_schema = f"{database_url.rsplit('%3D', 1)[-1]}_other"
    other_url = database_url.rsplit("%3D", 1)[0] + "%3D" + other_schema
    ours = lock(app, clock, "host-a:1")
    engine = create_engine(other_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{other_schema}"'))
        theirs = ExclusiveLock(engine, "mail-poller:test", clock, holder="host-b:2")
        assert ours.acquire()
        try:
            assert theirs.acquire()  # the same name, another deployment: not ours to wait for
            theirs.release()
            rival = lock(app, clock, "host-c:3")
            assert not rival.acquire()  # while in our own schema the lock still holds
        finally:
            ours.release()
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{other_schema}" CASCADE'))
        engine.dispose()
