"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask

from intake.core.db import Base, database
from intake.core.schema import is_current, upgrade


def test_migrations_match_the_models(app: Flask) -> None:
    engine = database(app).engine
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_init_twice_is_harmless(app: Flask) -> None:
    engine = database(app).engine
    upgrade(engine)
    upgrade(engine)

    assert is_current(engine)
