"""Local stand-ins for the OAuth2 side of Microsoft 365 and Google Workspace, for the tests.

One HTTPS server on 127.0.0.1 (its certificate is `cafile`) answers what the real
providers answer to the real client libraries:

    GET  /{tenant}/v2.0/.well-known/openid-configuration   Entra ID's discovery (msal)
    POST /{tenant}/oauth2/v2.0/token                        client credentials (msal):
                                                            a secret, or a certificate's
                                                            signed assertion
    POST /google/token                                      the JWT bearer grant of a
                                                            service account (google-auth),
                                                            checked with its public key
    POST /introspect                                        RFC 7662, for Dovecot's oauth2
                                                            passdb and the SMTP sink

Tokens expire by the stand-in's `clock` (inject a SimClock and move it: no sleeping), can be
revoked, and name the one mailbox they may sign in to: for a Microsoft app the mailbox it
was given FullAccess to, for Google the delegated subject. Errors carry the providers' own
codes and wording (AADSTS7000215, invalid_grant), so messages can be checked for them.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import ssl
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from intake.core.clock import Clock, system_clock
from tests.serverkit import (
    LOCALHOST,
    forget_server,
    free_ports,
    remember_server,
    self_signed_cert,
)

__all__ = [
    "GOOGLE_SCOPE",
    "JWT_BEARER",
    "MICROSOFT_SCOPE",
    "Issued",
    "OAuthStandIn",
    "rsa_certificate",
    "token_checker",
]

MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
# What google-auth puts in `aud` whatever the token_uri, and what Google checks.
GOOGLE_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Issued:
    """One access token the stand-in handed out."""

    token: str
    provider: str  # "microsoft" or "google"
    client: str  # the app's client id, or the service account's email
    mailbox: str  # whom it may sign in as
    expires: dt.datetime
    revoked: bool = False


@dataclass
class _MicrosoftApp:
    tenant: str
    client_id: str
    mailbox: str
    secret: str = ""
    certificate: x509.Certificate | None = None


@dataclass
class _ServiceAccount:
    email: str
    key_id: str
    public_key: Any
    subjects: set[str] = field(default_factory=set)  # domain-wide delegation


def rsa_certificate(name: str = "intake-test") -> tuple[str, str]:
    """A self-signed RSA certificate and its private key, both PEM: what an administrator
    uploads to the app registration (the certificate) and keeps for the app (the key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


class OAuthStandIn:
    """The HTTPS stand-in for Entra ID's and Google's token endpoints and an introspection
    endpoint; `start()` picks a port, `close()` stops and removes everything."""

    host = LOCALHOST

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock
        self.lifetime = dt.timedelta(hours=1)  # of the tokens issued from now on
        self.port = 0
        self.issued: list[Issued] = []
        self.introspections = 0
        self._apps: dict[tuple[str, str], _MicrosoftApp] = {}
        self._accounts: dict[str, _ServiceAccount] = {}
        self._lock = threading.Lock()
        self._directory: Path | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- where things are

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def cafile(self) -> str:
        if self._directory is None:
            raise RuntimeError("the OAuth stand-in has not been started yet")
        return str(self._directory / "server.crt")

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/introspect"

    @property
    def google_token_uri(self) -> str:
        return f"{self.url}/google/token"

    # -- life cycle

    def start(self) -> None:
        if self._server is not None:
            return
        directory = Path(tempfile.mkdtemp(prefix="intake-oauth-"))
        directory.chmod(0o711)
        self._directory = directory
        remember_server(self)
        self_signed_cert(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(directory / "server.crt", directory / "server.key")
        self.port = free_ports(1)[0]
        server = _Server((self.host, self.port), _handler_for(self))
        # The handshake in the request's own thread, not in the one that accepts.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        forget_server(self)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def reset(self) -> None:
        """Forget the apps, accounts and tokens of the test before."""
        with self._lock:
            self._apps.clear()
            self._accounts.clear()
            self.issued.clear()
            self.introspections = 0
            self.lifetime = dt.timedelta(hours=1)
            self.clock = system_clock

    # -- what an administrator sets up

    def microsoft_app(
        self, tenant: str, client_id: str, mailbox: str, *, secret: str = "", certificate: str = ""
    ) -> None:
        """An app registration with IMAP.AccessAsApp/SMTP.SendAsApp, FullAccess to `mailbox`,
        and a client secret or an uploaded certificate (PEM)."""
        cert = x509.load_pem_x509_certificate(certificate.encode()) if certificate else None
        with self._lock:
            self._apps[tenant, client_id] = _MicrosoftApp(tenant, client_id, mailbox, secret, cert)

    def revoke_secret(self, tenant: str, client_id: str) -> None:
        """The secret was deleted in the Entra admin center."""
        with self._lock:
            self._apps[tenant, client_id].secret = ""

    def google_service_account(self, email: str, *subjects: str) -> dict[str, str]:
        """A service account with domain-wide delegation for `subjects`; its JSON key file."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        with self._lock:
            self._accounts[email] = _ServiceAccount(email, key_id, key.public_key(), set(subjects))
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "intake-test",
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": "1" + secrets.token_hex(8),
            "token_uri": self.google_token_uri,
        }

    def session(self) -> requests.Session:
        """An HTTP session for msal and google-auth that trusts only the stand-in.

        `trust_env` off: requests would otherwise let REQUESTS_CA_BUNDLE win over `verify`.
        """
        session = requests.Session()
        session.verify = self.cafile
        session.trust_env = False
        return session

    def revoke(self, token: str) -> None:
        with self._lock:
            for issued in self.issued:
                if issued.token == token:
                    issued.revoked = True

    def tokens_for(self, mailbox: str) -> list[str]:
        with self._lock:
            return [i.token for i in self.issued if i.mailbox == mailbox]

    # -- what a mail server asks

    def introspect(self, token: str) -> Issued | None:
        """The token's record while it is valid: issued here, not revoked, not expired."""
        with self._lock:
            self.introspections += 1
            now = self.clock()
            for issued in self.issued:
                if issued.token == token and not issued.revoked and now < issued.expires:
                    return issued
        return None

    # -- the endpoints, called on the server's threads

    def _issue(self, provider: str, client: str, mailbox: str) -> dict[str, Any]:
        token = f"{provider[:2]}-" + secrets.token_urlsafe(24)
        with self._lock:
            lifetime = self.lifetime
            self.issued.append(Issued(token, provider, client, mailbox, self.clock() + lifetime))
        seconds = int(lifetime.total_seconds())
        return {"token_type": "Bearer", "expires_in": seconds, "access_token": token}

    def _discovery(self, tenant: str) -> tuple[int, dict[str, Any]]:
        base = f"{self.url}/{tenant}"
        return 200, {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        }

    def _microsoft_token(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        client_id = form.get("client_id", "")
        with self._lock:
            app = self._apps.get((tenant, client_id))
        if app is None:
            return _entra_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'.",
            )
        if form.get("grant_type") != "client_credentials":
            return _entra_error(400, "unsupported_grant_type", 70003, "The grant is not here.")
        if form.get("scope") != MICROSOFT_SCOPE:
            return _entra_error(400, "invalid_scope", 70011, "The provided scope is not valid.")
        if "client_assertion" in form:
            if not self._assertion_ok(app, tenant, form):
                return _entra_error(
                    401, "invalid_client", 700027, "Client assertion failed signature validation."
                )
        elif not app.secret or not secrets.compare_digest(
            form.get("client_secret", ""), app.secret
        ):
            return _entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
        return 200, self._issue("microsoft", client_id, app.mailbox)

    def _assertion_ok(self, app: _MicrosoftApp, tenant: str, form: dict[str, str]) -> bool:
        if app.certificate is None or form.get("client_assertion_type") != ASSERTION_TYPE:
            return False
        try:
            claims = jwt.decode(
                form["client_assertion"],
                app.certificate.public_key(),  # type: ignore[arg-type]
                algorithms=["PS256", "RS256"],
                audience=f"{self.url}/{tenant}/oauth2/v2.0/token",
                issuer=app.client_id,
            )
        except jwt.PyJWTError:
            return False
        return bool(claims.get("sub") == app.client_id)

    def _google_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant"}
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            with self._lock:
                account = self._accounts.get(str(unverified.get("iss")))
            if account is None:
                return 400, {"error": "invalid_grant", "error_description": "Invalid issuer."}
            if jwt.get_unverified_header(assertion).get("kid") != account.key_id:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT Signature.",
                }
            claims = jwt.decode(
                assertion, account.public_key, algorithms=["RS256"], audience=GOOGLE_AUDIENCE
            )
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        subject = str(claims.get("sub", ""))
        if subject not in account.subjects or claims.get("scope") != GOOGLE_SCOPE:
            return 401, {
                "error": "unauthorized_client",
                "error_description": "Client is unauthorized to retrieve access tokens using "
                "this method, or client not authorized for any of the scopes requested.",
            }
        return 200, self._issue("google", account.email, subject)

    def _introspection(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        issued = self.introspect(form.get("token", ""))
        if issued is None:
            return 200, {"active": False}
        return 200, {
            "active": True,
            "username": issued.mailbox,
            "client_id": issued.client,
            "exp": int(issued.expires.timestamp()),
        }

    def answer(self, method: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = [p for p in urlsplit(path).path.split("/") if p]
        if (
            method == "GET"
            and len(parts) == 4
            and parts[1:]
            == [
                "v2.0",
                ".well-known",
                "openid-configuration",
            ]
        ):
            return self._discovery(parts[0])
        if method == "POST" and len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self._microsoft_token(parts[0], form)
        if method == "POST" and parts == ["google", "token"]:
            return self._google_token(form)
        if method == "POST" and parts == ["introspect"]:
            return self._introspection(form)
        return 404, {"error": "not_found"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up or refuses the certificate is its own test's business.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _entra_error(status: int, error: str, code: int, text: str) -> tuple[int, dict[str, Any]]:
    # As Entra ID answers: every refusal names its own request (a new trace and correlation
    # id) and the moment, so the same trouble never reads the same twice.
    trace, correlation = uuid.uuid4(), uuid.uuid4()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return status, {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}"
        ),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": str(trace),
        "correlation_id": str(correlation),
    }


def _handler_for(stand_in: OAuthStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Dovecot's HTTP client expects

        def do_GET(self) -> None:
            self._reply(*stand_in.answer("GET", self.path, {}))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            self._reply(*stand_in.answer("POST", self.path, form))

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(HTTPStatus(status))
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # pytest shows what matters; the access log is noise

    return Handler


def token_checker(stand_in: OAuthStandIn) -> Callable[[str, str], bool]:
    """For the SMTP sink: whether `token` is valid for `user`, as Exchange or Gmail decide."""

    def check(user: str, token: str) -> bool:
        issued = stand_in.introspect(token)
        return issued is not None and issued.mailbox.casefold() == user.casefold()

    return check
