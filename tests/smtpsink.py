"""An SMTP server for the tests (aiosmtpd, on its own thread) that keeps what it receives,
can refuse MAIL, RCPT or DATA on demand, offers STARTTLS and AUTH, and can go away and come
back on the same port. The fixtures are in tests/mailservers.py.

AUTH XOAUTH2 is offered too: a token is checked by `token_check(user, token)` (the tests set
it to ask the OAuth stand-in, as Exchange Online and Gmail ask their own token service), and
refused as they refuse it: a 334 challenge carrying a JSON error, then 535.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.serverkit import (
    LOCALHOST,
    client_context,
    forget_server,
    free_ports,
    remember_server,
    self_signed_cert,
    wait_until_closed,
)

__all__ = ["SMTP_PASSWORD", "SMTP_USER", "ReceivedMail", "SmtpSink", "Stage"]

SMTP_USER = "intake@example.org"
SMTP_PASSWORD = "smtp-test-password"


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    login: str | None  # the AUTH user, when the sender logged in
    tls: bool  # whether the sender used STARTTLS


Stage = Literal["MAIL", "RCPT", "DATA"]


class _Handler:
    """aiosmtpd's handler: hooks run on the server's own thread."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        refusal = self.sink._refusal("MAIL")
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.sink._refusal("RCPT")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self.sink._refusal("DATA")
        if refusal:
            return refusal
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        login = session.auth_data if session.authenticated else None
        self.sink._received(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=message,
                login=login if isinstance(login, str) else None,
                tls=session.ssl is not None,
            )
        )
        return "250 OK: queued"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """SASL XOAUTH2 (Google's and Microsoft's): `user=...^Aauth=Bearer TOKEN^A^A`."""
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            blob = answer
        fields = dict(
            part.split("=", 1)
            for part in blob.decode(errors="replace").split("\x01")
            if "=" in part
        )
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        token = bearer[len("Bearer ") :] if bearer.startswith("Bearer ") else ""
        check = self.sink.token_check
        if token and check is not None and check(user, token):
            self.sink.xoauth2_logins += 1
            return AuthResult(success=True, auth_data=user)
        self.sink.xoauth2_refusals += 1
        error = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
        await server.challenge_auth(json.dumps(error))  # the client answers with an empty line
        return AuthResult(
            success=False,
            handled=False,  # so that aiosmtpd answers with the message
            message="535 5.7.8 Username and Password not accepted (test server)",
        )


class _Controller(Controller):
    """Keeps the open connections, so that stop() can drop them before closing the loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        server = SMTP(self.handler, **self.SMTP_kwargs)
        self.connections.add(server)
        return server

    def drop_connections(self) -> None:
        """Run on the loop's thread. After STARTTLS the socket is under a TLS transport,
        whose orderly close would need the loop that is about to stop: abort both."""
        for server in list(self.connections):
            for transport in (server.transport, server._original_transport):
                if isinstance(transport, asyncio.Transport):
                    transport.abort()


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message it accepts.

    Offers STARTTLS (the certificate is `cafile`) and AUTH PLAIN/LOGIN with `user` and
    `password`, neither required. `refuse()` makes it answer with an error, `stop()` makes
    connections fail; `start()` again keeps the port.
    """

    host = LOCALHOST

    def __init__(
        self,
        *,
        user: str = SMTP_USER,
        password: str = SMTP_PASSWORD,
        data_size_limit: int = 100 * 1024 * 1024,
    ) -> None:
        self.user = user
        self.password = password
        self.data_size_limit = data_size_limit
        self.port = 0
        self.refusals = 0
        self.token_check: Callable[[str, str], bool] | None = None  # XOAUTH2: (user, token)
        self.xoauth2_logins = 0
        self.xoauth2_refusals = 0
        self._directory: Path | None = None
        self._controller: _Controller | None = None
        self._messages: list[ReceivedMail] = []
        self._changed = threading.Condition()
        self._refuse_code: int | None = None
        self._refuse_at: Stage = "DATA"
        self._refuse_times: int | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<SmtpSink {self.host}:{self.port} {state}, {len(self._messages)} messages>"

    @property
    def cafile(self) -> str:
        if self._directory is None:
            raise RuntimeError("the SMTP server has not been started yet")
        return str(self._directory / "server.crt")

    def ssl_context(self) -> ssl.SSLContext:
        return client_context(self.cafile)

    # -- life cycle

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            return
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="intake-smtp-"))
            remember_server(self)
            self_signed_cert(self._directory)
            self.port = free_ports(1)[0]
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self._directory / "server.crt", self._directory / "server.key")
        # A new controller each time: a stopped one has closed its event loop.
        controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",  # the banner's name, without a DNS lookup
            tls_context=tls,
            auth_require_tls=False,
            authenticator=self._authenticate,
            data_size_limit=self.data_size_limit,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Go away: open connections are dropped and new ones refused."""
        controller = self._controller
        if controller is None:
            return
        self._controller = None
        controller.loop.call_soon_threadsafe(controller.drop_connections)
        controller.stop()
        wait_until_closed(self.host, (self.port,))

    def close(self) -> None:
        try:
            self.stop()
        finally:
            forget_server(self)
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
                self._directory = None

    # -- behaviour

    def refuse(self, code: int = 451, *, at: Stage = "DATA", times: int | None = None) -> None:
        """Answer MAIL, RCPT or DATA with `code` (4xx: try again later), `times` times or on."""
        if not 400 <= code <= 599:
            raise ValueError(f"not an SMTP error code: {code}")
        with self._changed:
            self._refuse_code, self._refuse_at, self._refuse_times = code, at, times

    def accept(self) -> None:
        with self._changed:
            self._refuse_code, self._refuse_times = None, None

    def clear(self) -> None:
        with self._changed:
            self._messages.clear()
            self.refusals = 0
            self.token_check = None
            self.xoauth2_logins = self.xoauth2_refusals = 0

    @property
    def messages(self) -> list[ReceivedMail]:
        """What arrived so far, oldest first (a copy)."""
        with self._changed:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until at least `count` messages have arrived; all of them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout):
                raise AssertionError(
                    f"{len(self._messages)} of {count} messages arrived within {timeout} s"
                )
            return list(self._messages)

    # -- called by the handler, on the server's thread

    def _refusal(self, stage: Stage) -> str | None:
        with self._changed:
            code = self._refuse_code
            if code is None or stage != self._refuse_at:
                return None
            if self._refuse_times is not None:
                self._refuse_times -= 1
                if self._refuse_times <= 0:
                    self._refuse_code, self._refuse_times = None, None
            self.refusals += 1
        kind = "Try again later" if code < 500 else "Refused"
        return f"{code} {code // 100}.0.0 {kind} (test server)"

    def _received(self, mail: ReceivedMail) -> None:
        with self._changed:
            self._messages.append(mail)
            self._changed.notify_all()

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode(errors="replace")
            password = auth_data.password.decode(errors="replace")
            if secrets.compare_digest(login, self.user) and secrets.compare_digest(
                password, self.password
            ):
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)
