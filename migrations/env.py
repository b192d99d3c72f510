"""Alembic environment: run by `intake init`, or by `alembic` with alembic.ini."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from intake.core import models  # noqa: F401  (registers the tables on Base.metadata)
from intake.core.db import Base

config = context.config
target_metadata = Base.metadata


def _render_as_batch(url: str) -> bool:
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    return url.startswith("sqlite")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "INTAKE_DATABASE_URL", "sqlite:///instance/intake.db"
    )
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(
            connection=conn,
            target_metadata=target_metadata,
            render_as_batch=_render_as_batch(url),
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
