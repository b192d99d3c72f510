"""Real mail servers for the tests: a private Dovecot (IMAP) and an aiosmtpd sink (SMTP).

A pytest plugin: register it once with `pytest_plugins = ["tests.mailservers"]` in the root
conftest. It provides

- `dovecot_server` (session): one Dovecot for the whole run, started on first use, as an
  ordinary child process with its own config, base_dir, state, log and Maildir under a
  temporary directory, on free ports of 127.0.0.1 (plain IMAP with STARTTLS, and IMAPS);
- `dovecot`: the same server, running and emptied before each test;
- `smtp_server` (session) and `smtp`: an SMTP server that keeps what it receives, accepting
  and emptied before each test.

Nothing is mocked: the code under test talks IMAP and SMTP over TCP. A missing `dovecot`
binary or a server that will not start skips the tests that need it, with the reason shown,
unless INTAKE_REQUIRE_SERVICES=1 (as in CI), which makes it a failure.

The servers themselves are tests/dovecot.py and tests/smtpsink.py, on what both share in
tests/serverkit.py; every name the tests import from here stays importable from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeVar

import pytest
from flask import Flask

from tests.dovecot import IMAP_PASSWORD, IMAP_USER, STARTUP_TIMEOUT, Dovecot, Security
from tests.serverkit import (
    LOCALHOST,
    SBIN_DIRS,
    ServiceUnavailable,
    client_context,
    find_program,
    free_ports,
    port_open,
    self_signed_cert,
    wait_until_closed,
)
from tests.services import missing_service
from tests.smtpsink import SMTP_PASSWORD, SMTP_USER, ReceivedMail, SmtpSink, Stage

__all__ = [
    "IMAP_PASSWORD",
    "IMAP_USER",
    "LOCALHOST",
    "SBIN_DIRS",
    "SMTP_PASSWORD",
    "SMTP_USER",
    "STARTUP_TIMEOUT",
    "Dovecot",
    "ReceivedMail",
    "Security",
    "ServiceUnavailable",
    "SmtpSink",
    "Stage",
    "client_context",
    "configure_mail",
    "dovecot",
    "dovecot_server",
    "find_program",
    "for_the_session",
    "free_ports",
    "missing_service",
    "port_open",
    "self_signed_cert",
    "smtp",
    "smtp_server",
    "wait_until_closed",
]


class _Startable(Protocol):
    def start(self) -> None: ...
    def close(self) -> None: ...


Server = TypeVar("Server", bound=_Startable)


def for_the_session(server: Server, what: str) -> Iterator[Server]:
    """Starts the server (or skips, or fails under INTAKE_REQUIRE_SERVICES, saying `what`),
    hands it out for the run and closes it afterwards, whatever the tests did to it."""
    try:
        server.start()
    except ServiceUnavailable as exc:
        server.close()
        missing_service(f"{what}: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    """One private Dovecot for the run, started the first time a test needs it."""
    yield from for_the_session(Dovecot(), "the test IMAP server (Dovecot) is not available")


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Dovecot:
    """The test Dovecot, running (an earlier test may have stopped it) and empty."""
    dovecot_server.start()
    dovecot_server.clear()
    return dovecot_server


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    yield from for_the_session(SmtpSink(), "the test SMTP server is not available")


@pytest.fixture
def smtp(smtp_server: SmtpSink) -> SmtpSink:
    """The test SMTP server, running, accepting, with no messages."""
    smtp_server.start()
    smtp_server.accept()
    smtp_server.clear()
    return smtp_server


def configure_mail(app: Flask, dovecot: Dovecot, smtp: SmtpSink | None) -> Flask:
    """Point an in-process app at the test Dovecot (plain port, STARTTLS) and SMTP server."""
    app.config.update(
        IMAP_HOST=dovecot.host,
        IMAP_PORT=dovecot.port,
        IMAP_SSL=False,
        IMAP_STARTTLS=True,
        IMAP_CAFILE=dovecot.cafile,
        IMAP_USER=dovecot.user,
        IMAP_PASSWORD=dovecot.password,
        IMAP_FOLDER="INBOX",
        SMTP_HOST=smtp.host if smtp else "",
        SMTP_PORT=smtp.port if smtp else 0,
        SMTP_STARTTLS=False,
        SMTP_FROM="helpdesk@example.org",
    )
    return app
