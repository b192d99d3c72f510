"""The OAuth2 token providers of a desk's mailboxes, made from the definition and the
worker's environment, and kept for the life of the process.

A mailbox that signs in with `microsoft` or `google` names its tenant, client and where its
secret or key is; this module reads them (the client secret from its environment variable,
the certificate or the service account's key from its file) and gives the `Tokens` that
`mail.oauth` signs in with. One provider per mailbox credential serves the poller, the
outbox and `intake check-mail` alike, so a token is fetched once and used until shortly
before it expires, not once per poll. A rotated secret is a new credential, so it gets a
provider of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from intake.core.errors import SignInError
from routing.desk import Mailbox

from .oauth import MICROSOFT_AUTHORITY, GoogleTokens, MicrosoftCertificate, MicrosoftTokens, Tokens

__all__ = ["MissingSecret", "OAuthEndpoints", "secret_from_file", "tokens_for"]

_PEM_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.S
)
_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class MissingSecret(Exception):
    """A secret the definition names for a mailbox cannot be had: an environment variable
    that is not set, a key file that is missing or unreadable."""


@dataclass(frozen=True)
class OAuthEndpoints:
    """Where the token services are: Entra ID's sign-in host (a local stand-in in the tests;
    national clouds are not served: the token is asked for Exchange Online's global
    resource) and the CA bundle their certificates are checked with ("" for the system's).
    Google's token endpoint is named in each service account's key."""

    microsoft_authority: str = MICROSOFT_AUTHORITY
    cafile: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OAuthEndpoints:
        return cls(
            microsoft_authority=config.get("MICROSOFT_AUTHORITY") or MICROSOFT_AUTHORITY,
            cafile=config.get("OAUTH_CAFILE") or "",
        )

    def session(self) -> requests.Session:
        return _CheckedSession(self.cafile) if self.cafile else requests.Session()


class _CheckedSession(requests.Session):
    """A session whose certificates are checked with our CA bundle, whatever the
    environment says, while the environment's proxy (HTTPS_PROXY, NO_PROXY) is still used.

    requests lets REQUESTS_CA_BUNDLE win over a session's `verify`; turning the environment
    off altogether (`trust_env`) would lose the proxy, which a hospital's network may need.
    """

    def __init__(self, cafile: str) -> None:
        super().__init__()
        self.verify = cafile

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self.verify
        return settings


_providers: dict[str, Tokens] = {}
_lock = threading.Lock()


def tokens_for(
    mailbox: Mailbox, env: Mapping[str, str], endpoints: OAuthEndpoints
) -> Tokens | None:
    """The mailbox's token provider; None for a password sign-in.

    MissingSecret names what is missing, for that mailbox's line in the log and in
    `intake check-mail`.
    """
    signin = mailbox.signin
    if signin.method == "microsoft":
        return _microsoft(mailbox, env, endpoints)
    if signin.method == "google":
        return _google(mailbox, endpoints)
    return None


def _microsoft(mailbox: Mailbox, env: Mapping[str, str], endpoints: OAuthEndpoints) -> Tokens:
    signin = mailbox.signin
    if signin.client_secret_env:
        secret = env.get(signin.client_secret_env, "")
        if not secret:
            raise MissingSecret(
                f"{signin.client_secret_env} is not set (the secret of {mailbox.address})"
            )
        credential = secret
        certificate = None
    elif signin.client_secret_file:
        credential = secret_from_file(signin.client_secret_file, mailbox)
        certificate = None
    else:
        credential = _read(signin.certificate_path, mailbox)
        certificate = _certificate(credential, signin.certificate_path, mailbox)
    key = _key(
        "microsoft", endpoints.microsoft_authority, signin.tenant_id, signin.client_id, credential
    )
    return _kept(
        key,
        lambda: MicrosoftTokens(
            signin.tenant_id,
            signin.client_id,
            secret="" if certificate else credential,
            certificate=certificate,
            authority=endpoints.microsoft_authority,
            session=endpoints.session(),
        ),
    )


def _google(mailbox: Mailbox, endpoints: OAuthEndpoints) -> Tokens:
    text = _read(mailbox.signin.service_account_file, mailbox)
    try:
        info = json.loads(text)
    except ValueError:
        raise MissingSecret(
            f"{mailbox.signin.service_account_file} is not a service account key (JSON)"
            f" for {mailbox.address}"
        ) from None
    subject = mailbox.login
    try:
        return _kept(
            _key("google", subject, text),
            lambda: GoogleTokens(info, subject, session=endpoints.session()),
        )
    except SignInError as exc:  # a key google-auth cannot use
        raise MissingSecret(f"{exc} ({mailbox.signin.service_account_file})") from None


def secret_from_file(path: str, mailbox: Mailbox) -> str:
    """A password or client secret kept in a file of its own (one line; the line's end and
    surrounding blanks are not part of it). Read at every connection: a replaced file is
    used from the next one."""
    value = _read(path, mailbox).strip()
    if not value:
        raise MissingSecret(f"{path} is empty (the secret of {mailbox.address})")
    return value


def _read(path: str, mailbox: Mailbox) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise MissingSecret(f"cannot read {path} for {mailbox.address}: {reason}") from None


def _certificate(pem: str, path: str, mailbox: Mailbox) -> MicrosoftCertificate:
    """The app registration's certificate and its private key, from one PEM file."""
    private_key, certificate = _PEM_KEY.search(pem), _PEM_CERTIFICATE.search(pem)
    if private_key is None or certificate is None:
        raise MissingSecret(
            f"{path} needs both the private key and the certificate (PEM) for {mailbox.address}"
        )
    if "ENCRYPTED" in private_key.group(0).split("\n", 1)[0]:
        raise MissingSecret(
            f"the private key in {path} is encrypted; {mailbox.address} needs it unencrypted"
            " (openssl pkey -in <key> -out <new key>, asked for its passphrase once)"
        )
    return MicrosoftCertificate(private_key.group(0), certificate.group(0))


def _key(*parts: str) -> str:
    # The credential itself is part of the key, hashed: a rotated secret is a new provider.
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _kept(key: str, make: Callable[[], Tokens]) -> Tokens:
    with _lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = make()
        return provider
