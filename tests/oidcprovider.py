"""A local stand-in for the organisation's identity provider (OpenID Connect), for the tests.

It plays the provider's side of the authorization code flow as Entra ID does, on
http://127.0.0.1 (a loopback address, which OAuth allows without TLS):

    GET  /.well-known/openid-configuration   discovery
    GET  /authorize                          the browser's sign-in: checks the client, the
                                             registered redirect URI, `response_type=code`,
                                             the `openid` scope and a PKCE S256 challenge,
                                             then sends the browser back with a code and
                                             the state (the colleague is `signed_in`)
    POST /token                              the code for tokens: client authentication
                                             (basic or post), the code once, the same
                                             redirect URI, the PKCE verifier; an ID token
                                             signed RS256 with the key in /jwks
    GET  /jwks                               the public signing key

`misbehave` makes the next ID tokens wrong in one way a real attack or a misconfiguration
would: "forged" (signed by another key under the same key id), "audience" (for another
client), "expired", "issuer" (another issuer), "nonce" (not the one the client sent).
Tokens are dated by the real clock: Authlib checks them against it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.serverkit import LocalHTTPService

KEY_ID = "intake-test-key"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    email: str


@dataclass
class Colleague:
    email: str
    groups: list[str] = field(default_factory=list)


class IdentityProvider(LocalHTTPService):
    def __init__(self, client_id: str, client_secret: str, redirect_uri: str = "") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = {redirect_uri} if redirect_uri else set()
        self.signed_in: Colleague | None = None  # who is signed in at the provider
        self.misbehave = ""
        self.tokens_issued = 0
        self.refusals: list[str] = []  # what the provider refused, and why
        self._key = _new_key()
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    @property
    def issuer(self) -> str:
        return self.base

    def start(self) -> IdentityProvider:
        self.start_serving(_handler_for(self))
        return self

    # -- the endpoints

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """(status, headers, body) for the browser."""
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            # Never redirect to an address the client did not register.
            return self._refuse(400, "unknown client or unregistered redirect_uri")
        problem = ""
        if query.get("response_type") != "code":
            problem = "unsupported_response_type"
        elif "openid" not in query.get("scope", "").split():
            problem = "invalid_scope"
        elif query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            problem = "invalid_request"  # PKCE is required, as Entra ID requires it of SPAs
        elif self.signed_in is None:
            problem = "access_denied"
        state = {"state": query["state"]} if "state" in query else {}
        if problem:
            self.refusals.append(problem)
            return 302, {"Location": f"{redirect_uri}?{urlencode({'error': problem, **state})}"}, ""
        code = secrets.token_urlsafe(24)
        assert self.signed_in is not None
        with self._lock:
            self._grants[code] = _Grant(
                self.client_id,
                redirect_uri,
                query["code_challenge"],
                query.get("nonce", ""),
                self.signed_in.email,
            )
        return 302, {"Location": f"{redirect_uri}?{urlencode({'code': code, **state})}"}, ""

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        if client_id != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            self.refusals.append("invalid_client")
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None:
            self.refusals.append("invalid_grant: code")
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant.redirect_uri:
            self.refusals.append("invalid_grant: redirect_uri")
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            self.refusals.append("invalid_grant: code_verifier")
            return 400, {"error": "invalid_grant"}
        self.tokens_issued += 1
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid email profile",
            "id_token": self._id_token(grant),
        }

    def _id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        colleague = self.signed_in or Colleague(grant.email)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": hashlib.sha256(grant.email.encode()).hexdigest()[:32],
            "aud": grant.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "nonce": grant.nonce,
            "email": grant.email,
            "preferred_username": grant.email,
            "groups": colleague.groups,
        }
        key = self._key
        if self.misbehave == "forged":
            key = _new_key()
        elif self.misbehave == "audience":
            claims["aud"] = "another-application"
        elif self.misbehave == "expired":
            claims.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        elif self.misbehave == "issuer":
            claims["iss"] = "http://127.0.0.1:1/another-tenant"
        elif self.misbehave == "nonce":
            claims["nonce"] = "not-the-clients-nonce"
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KEY_ID})

    def _refuse(self, status: int, why: str) -> tuple[int, dict[str, str], str]:
        self.refusals.append(why)
        return status, {"Content-Type": "text/plain"}, why


def _handler_for(provider: IdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif parts.path == "/jwks":
                self._json(200, provider.jwks())
            elif parts.path == "/authorize":
                status, headers, body = provider.authorize(query)
                self._send(status, headers, body.encode())
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            if urlsplit(self.path).path == "/token":
                self._json(*provider.token(form, self.headers.get("Authorization", "")))
            else:
                self._json(404, {"error": "not_found"})

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(HTTPStatus(status))
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
