"""The second baseline for bench/voice.py: what answering a call minimally must do, durably.

Per request: read the call's form, one INSERT of a row and its commit on the database the
app uses, through an engine made by the app's own `intake.core.db.make_engine` (the same URL
and options: SQLite in WAL mode with its busy timeout, PostgreSQL through the same pool),
then a fixed TwiML answer. No signature check, no routing, no desk: the floor that any
webhook which logs its calls stands on, against which `/voice/incoming` is measured beside
the static endpoint. Serve it from the repository root, with INTAKE_DATABASE_URL set and
`create_table` run once beforehand, with

    gunicorn 'bench.durable_twiml:create_app()'
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask, Response, request
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from bench.static_twiml import TWIML
from intake.core.db import UTCDateTime, make_engine

METADATA = MetaData()
CALLS = Table(
    "bench_durable_call",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("call_sid", String(64), nullable=False, unique=True),
    Column("caller", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
)
INSERT = insert(CALLS)


def database_url() -> str:
    url = os.environ.get("INTAKE_DATABASE_URL", "")
    if not url:
        raise RuntimeError("INTAKE_DATABASE_URL is not set")
    return url


def create_table(url: str) -> None:
    """Made once by the bench before the server starts (its workers would race to make it)."""
    engine = make_engine(url)
    try:
        METADATA.create_all(engine)
    finally:
        engine.dispose()


def create_app() -> Flask:
    app = Flask(__name__)
    engine = make_engine(database_url())

    @app.post("/voice/incoming")
    def incoming() -> Response:
        values = {
            "call_sid": request.form.get("CallSid", ""),
            "caller": request.form.get("From", ""),
            "started_at": datetime.now(UTC),
        }
        with engine.begin() as connection:  # one INSERT, then COMMIT
            connection.execute(INSERT, values)
        return Response(TWIML, status=200, mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "ok", 200

    return app
