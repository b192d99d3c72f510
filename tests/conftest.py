"""Fixtures: the app on SQLite and on the real PostgreSQL, an injected clock, Twilio, the
dashboard's `client` with its `auth` actions, and the `intake` command.

Every test that takes `app` (or anything built on it) runs twice, once per database.
PostgreSQL comes from INTAKE_TEST_POSTGRES_URL; without it that half is skipped with the
reason shown, unless INTAKE_REQUIRE_SERVICES=1 (as in CI), which makes it a failure.
"""

from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, delete, func, select, text
from sqlalchemy.orm import selectinload

from intake import create_app
from intake.core.clock import SimClock
from intake.core.db import Base, database
from intake.core.definition import parse_definition
from intake.core.deskstore import store_desk
from intake.core.models import Contact, DeskDefinition
from intake.core.schema import upgrade
from intake.shell.cli import main
from routing.desk import Desk
from voice.simulator import Reply, TwilioSide, new_sid

from .auth import AuthActions
from .factories import AMSTERDAM, local
from .services import missing_service, require_services

__all__ = ["AMSTERDAM", "local", "missing_service", "require_services"]

# Real services started by the suite itself: mail servers (Dovecot, aiosmtpd) and a browser.
pytest_plugins = ["tests.mailservers", "tests.oauthfixtures", "tests.browser", "tests.webservers"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DESK = ROOT / "examples" / "helpdesk.toml"
PUBLIC_URL = "https://intake.example.test"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
LINE_NOORD = "+31851234567"
# The phones of the example desk's colleagues. On Monday morning Anna and Bram are on shift.
ANNA = "+31612345678"
BRAM = "+31623456789"
DIRK = "+31645678901"  # Dirk Visser, the volunteer: no shift on Mondays


def _postgres_schema_url(base: str, schema: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database of each kind, for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'intake.db'}"
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    base = os.environ.get("INTAKE_TEST_POSTGRES_URL", "")
    if not base:
        missing_service("PostgreSQL half skipped: INTAKE_TEST_POSTGRES_URL is not set")
    schema = f"intake_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # the server is not there
        admin.dispose()
        missing_service(f"PostgreSQL at INTAKE_TEST_POSTGRES_URL is not reachable: {exc}")
    url = _postgres_schema_url(base, schema)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def terminate_backend(database_url: str, pid: int) -> None:
    """Ends one PostgreSQL server process from a connection of its own, as a restart or an
    idle-connection timeout would; whoever held it finds out on their next statement."""
    admin = create_engine(database_url)
    try:
        with admin.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


@pytest.fixture
def clock() -> SimClock:
    """The app's clock; tests set and move it. Starts on a Monday morning, desk open."""
    return SimClock(local("2026-11-23 10:15"))


def app_config(database_url: str, clock: SimClock, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test",
        "INSTANCE_PATH": str(tmp_path),
        "PUBLIC_URL": PUBLIC_URL,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "INSECURE_DEV": False,
        "CLOCK": clock,
        **extra,
    }


@pytest.fixture
def app(database_url: str, clock: SimClock, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(app_config(database_url, clock, tmp_path))
    yield app
    empty_database(app)


def empty_database(app: Flask) -> None:
    """Every row the test made, gone, so the next test starts from the bare schema."""
    db = database(app)
    with db.session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "topic":  # seeded by the migration, like the schema itself
                session.execute(delete(table))
        session.commit()
    db.engine.dispose()


def load_desk(app: Flask, desk: Desk) -> Desk:
    with database(app).session() as session:
        store_desk(session, desk, source="test", at=app.config["CLOCK"]())
        session.commit()
    return desk


@pytest.fixture
def example_desk() -> Desk:
    return parse_definition(EXAMPLE_DESK.read_text(), source=str(EXAMPLE_DESK))


@pytest.fixture
def desk(app: Flask, example_desk: Desk) -> Desk:
    """The example desk, loaded into the app's database."""
    return load_desk(app, example_desk)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The test's browser on the dashboard, without a login until `auth.login()`."""
    return app.test_client()


@pytest.fixture
def auth(app: Flask, client: FlaskClient) -> AuthActions:
    return AuthActions(app, client)


@pytest.fixture
def intake(
    app: Flask,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., tuple[int, str, str]]:
    """Run `intake ARGS…` against the test database; (exit code, stdout, stderr)."""
    monkeypatch.setenv("INTAKE_DATABASE_URL", database_url)
    monkeypatch.setenv("INTAKE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("INTAKE_PUBLIC_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@dataclass
class Twilio:
    """Twilio's side of one call: signed requests, parsed TwiML answers."""

    side: TwilioSide
    call_sid: str
    caller: str = "+31612345678"
    called: str = LINE_NOORD

    def params(self, **fields: str) -> dict[str, str]:
        return {
            "AccountSid": "AC" + "1" * 32,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "From": self.caller,
            "To": self.called,
            "Direction": "inbound",
            "CallStatus": "ringing",
            **fields,
        }

    def url(self, endpoint: str, **values: object) -> str:
        return self.side.url(endpoint, **values)

    def post(self, url: str, fields: Mapping[str, str] | None = None, **kw: Any) -> Reply:
        return self.side.post(url, fields if fields is not None else self.params(), **kw)

    def call(self, **fields: str) -> ET.Element:
        """Twilio's first request for this call; the TwiML answer."""
        return self.twiml(self.url("voice.incoming"), **fields)

    def twiml(self, url: str, **fields: str) -> ET.Element:
        reply = self.post(url, self.params(**fields))
        assert reply.status == 200, reply.body
        assert reply.content_type == "text/xml"
        assert reply.twiml is not None and reply.twiml.tag == "Response"
        return reply.twiml

    def leg(self, url: str, leg_sid: str, **fields: str) -> ET.Element:
        """A request about a colleague's leg (a <Number url> or its <Gather action>)."""
        return self.twiml(
            url, CallSid=leg_sid, ParentCallSid=self.call_sid, Direction="outbound-dial", **fields
        )


@pytest.fixture
def twilio(app: Flask) -> Twilio:
    return Twilio(TwilioSide(app, AUTH_TOKEN), new_sid("CA"))


def new_call(twilio: Twilio, caller: str = "+31687654321") -> Twilio:
    """Another call on the same line, as Twilio would place it."""
    return Twilio(twilio.side, new_sid("CA"), caller=caller, called=twilio.called)


def leave_voicemail(twilio: Twilio, sid: str = "RE" + "e" * 32) -> None:
    twilio.call()
    fields = twilio.params(
        RecordingSid=sid,
        RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{sid}",
        RecordingDuration="42",
        RecordingStatus="completed",
    )
    assert twilio.post(twilio.url("voice.recording"), fields).status == 204
    # Twilio repeats itself: the notice goes once.
    assert twilio.post(twilio.url("voice.recording"), fields).status == 204


def desk_versions(app: Flask) -> int:
    """How many versions of the desk definition are stored."""
    with database(app).session() as session:
        return int(session.scalar(select(func.count()).select_from(DeskDefinition)) or 0)


def contacts(app: Flask) -> list[Contact]:
    with database(app).session() as session:
        query = select(Contact).options(selectinload(Contact.events)).order_by(Contact.id)
        return list(session.scalars(query))
