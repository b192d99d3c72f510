"""OAuth2 sign-in for a mailbox: tokens from Microsoft 365 or Google Workspace, and XOAUTH2.

Microsoft 365 turns IMAP with a password off, and Google Workspace never had it for a
service: an app signs in with an access token it fetched for itself (client credentials
through `msal`, or a service account with domain-wide delegation through `google-auth`)
and hands it to the server with SASL XOAUTH2.

A token provider keeps its token until it is within `margin` of expiring, then fetches a
new one; `invalidate()` drops it when a server refused it (revoked, or the clocks disagree),
so the next `token()` asks the provider again. `imap_sign_in` and `smtp_sign_in` do exactly
that once: a refused token is fetched again and tried a second time, no more.

Everything that can go wrong comes out as `SignInError`, with the provider's own error text
(the code an administrator looks up, e.g. AADSTS7000215) and, from the sign-in functions,
the mailbox. The HTTP session is an argument, so the tests point both libraries at local
stand-ins for the providers' endpoints with a test CA.
"""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msal
import requests
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import service_account
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from intake.core.clock import Clock, system_clock
from intake.core.errors import SignInError

from .headertext import one_line

__all__ = [
    "GOOGLE_SCOPE",
    "MICROSOFT_AUTHORITY",
    "MICROSOFT_SCOPE",
    "GoogleTokens",
    "MicrosoftCertificate",
    "MicrosoftTokens",
    "Tokens",
    "imap_sign_in",
    "smtp_sign_in",
    "xoauth2",
]

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
# Client credentials ask for the resource's ".default": whatever permissions the app was
# granted (IMAP.AccessAsApp, SMTP.SendAsApp) with admin consent.
MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
MARGIN = timedelta(minutes=5)  # fetch a new token this long before the old one expires


class Tokens(Protocol):
    """Where a mailbox's access tokens come from."""

    provider: str  # the provider's name, for messages: "Microsoft 365", "Google Workspace"

    def token(self) -> str:
        """A token valid for at least the margin; raises SignInError."""
        ...

    def invalidate(self) -> None:
        """Forget the token: the server refused it."""
        ...


@dataclass
class _Cache:
    """One token and when it expires, by the provider's clock."""

    clock: Clock
    margin: timedelta
    value: str = ""
    expires: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))

    def fresh(self) -> str | None:
        if self.value and self.clock() < self.expires - self.margin:
            return self.value
        return None

    def keep(self, value: str, lifetime: timedelta) -> str:
        self.value, self.expires = value, self.clock() + lifetime
        return value

    def clear(self) -> None:
        self.value = ""


@dataclass(frozen=True)
class MicrosoftCertificate:
    """A certificate credential of the app registration: the PEM private key and certificate."""

    private_key: str = field(repr=False)
    certificate: str


class MicrosoftTokens:
    """App-only tokens for Exchange Online (client credentials grant, through msal).

    `secret` or `certificate`, as uploaded to the app registration. `authority` is Entra ID's
    sign-in host; the tests give a local stand-in's URL and a session that trusts the test CA.
    """

    provider = "Microsoft 365"

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        secret: str = "",
        certificate: MicrosoftCertificate | None = None,
        authority: str = MICROSOFT_AUTHORITY,
        scope: str = MICROSOFT_SCOPE,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        clock: Clock = system_clock,
        margin: timedelta = MARGIN,
    ) -> None:
        if bool(secret) == (certificate is not None):
            raise ValueError("give either a client secret or a certificate")
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._credential: str | dict[str, str] = (
            secret
            if certificate is None
            else {
                "private_key": certificate.private_key,
                "public_certificate": certificate.certificate,
            }
        )
        self.authority = f"{authority.rstrip('/')}/{tenant_id}"
        self.scope = scope
        self._http = _TimedHttp(session or requests.Session(), timeout)
        self._cache = _Cache(clock, margin)
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._msal_cache = msal.TokenCache()

    def __repr__(self) -> str:
        return f"<MicrosoftTokens tenant={self.tenant_id} client={self.client_id}>"

    def token(self) -> str:
        with self._lock:  # the poller and the outbox may ask at once: one fetch
            return self._cache.fresh() or self._fetch()

    def _fetch(self) -> str:
        # msal keeps tokens of its own, by the wall clock: drop them, so that the token
        # is fetched from Entra ID whenever this cache says so (expiring, or refused).
        for item in list(self._msal_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
            self._msal_cache.remove_at(item)
        try:
            result = self._application().acquire_token_for_client(scopes=[self.scope])
        except (ValueError, requests.RequestException) as exc:
            # An authority that cannot be reached, or answers no discovery document.
            raise SignInError(self.provider, _one_line(str(exc))) from None
        if not isinstance(result, Mapping) or "access_token" not in result:
            raise SignInError(self.provider, _msal_error(result))
        lifetime = timedelta(seconds=int(result.get("expires_in", 0)))
        return self._cache.keep(str(result["access_token"]), lifetime)

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    def _application(self) -> msal.ConfidentialClientApplication:
        # Made on first use: its constructor already fetches the tenant's discovery document.
        if self._app is None:
            self._app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self._credential,
                authority=self.authority,
                validate_authority=self.authority.startswith(MICROSOFT_AUTHORITY),
                instance_discovery=self.authority.startswith(MICROSOFT_AUTHORITY),
                http_client=self._http,
                token_cache=self._msal_cache,
            )
        return self._app


class _TimedHttp:
    """The session msal is given, with a timeout on every request: requests has no
    session-wide one, and a token endpoint that never answers must not hold up a poll."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        self.session = session
        self.timeout = timeout

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self.session.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self.session.post(url, **kwargs)

    def close(self) -> None:
        self.session.close()


class GoogleTokens:
    """Tokens for one Gmail mailbox of a Workspace domain: a service account with
    domain-wide delegation, acting as `subject` (the mailbox's user)."""

    provider = "Google Workspace"

    def __init__(
        self,
        service_account_info: Mapping[str, Any],
        subject: str,
        *,
        scope: str = GOOGLE_SCOPE,
        session: requests.Session | None = None,
        clock: Clock = system_clock,
        margin: timedelta = MARGIN,
    ) -> None:
        try:
            self._credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                dict(service_account_info), scopes=[scope], subject=subject
            )
        except (ValueError, KeyError) as exc:
            raise SignInError(self.provider, f"unusable service account key: {exc}") from None
        self.subject = subject
        self._request = GoogleRequest(session or requests.Session())
        self._cache = _Cache(clock, margin)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<GoogleTokens {self._credentials.service_account_email} as {self.subject}>"

    def token(self) -> str:
        with self._lock:  # the poller and the outbox may ask at once: one fetch
            return self._cache.fresh() or self._fetch()

    def _fetch(self) -> str:
        try:
            self._credentials.refresh(self._request)
        except google_exceptions.GoogleAuthError as exc:
            detail = exc.args[0] if exc.args else type(exc).__name__
            raise SignInError(self.provider, _one_line(str(detail))) from None
        expiry = self._credentials.expiry  # naive UTC, by google-auth's own clock
        lifetime = expiry - datetime.now(UTC).replace(tzinfo=None) if expiry else timedelta(0)
        return self._cache.keep(str(self._credentials.token), lifetime)

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()


def xoauth2(user: str, token: str) -> str:
    """The XOAUTH2 initial response (before base64), as Google and Microsoft define it."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def imap_sign_in(client: IMAPClient, user: str, tokens: Tokens) -> None:
    """AUTHENTICATE XOAUTH2; a refused token is fetched again and tried once more."""
    for attempt in (1, 2):
        try:
            client.oauth2_login(user, _token(tokens, user))
            return
        except LoginError as exc:
            tokens.invalidate()
            if attempt == 2:
                text = _one_line(str(exc)) or "the token was refused"
                raise SignInError(tokens.provider, f"IMAP: {text}", mailbox=user) from None


def smtp_sign_in(smtp: smtplib.SMTP, user: str, tokens: Tokens) -> None:
    """AUTH XOAUTH2 on a session after EHLO (and STARTTLS); the same one retry as IMAP."""
    for attempt in (1, 2):
        token = _token(tokens, user)

        def answer(challenge: bytes | None = None, token: str = token) -> str:
            # After a refusal the server sends its error as a challenge; the client's answer
            # is empty, and the server then says 535.
            return xoauth2(user, token) if challenge is None else ""

        try:
            smtp.auth("XOAUTH2", answer, initial_response_ok=True)
            return
        except smtplib.SMTPAuthenticationError as exc:
            tokens.invalidate()
            if attempt == 2:
                text = f"{exc.smtp_code} {_one_line(_text(exc.smtp_error))}"
                raise SignInError(tokens.provider, f"SMTP: {text}", mailbox=user) from None


def _token(tokens: Tokens, user: str) -> str:
    try:
        return tokens.token()
    except SignInError as exc:
        raise exc.for_mailbox(user) from None


def _msal_error(result: object) -> str:
    if not isinstance(result, Mapping):
        return "no answer from the token endpoint"
    error = str(result.get("error") or "no access token in the answer")
    description = _one_line(str(result.get("error_description") or ""))
    return f"{error}: {description}" if description else error


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _one_line(text: str) -> str:
    return one_line(text)[:500]  # a provider's error text, as the log may show it
