"""The desk's mailboxes as connections: each [[mailbox]] with its secrets from the environment.

`routing.desk.Mailbox` says where a mailbox's servers are and which environment variables
hold its secrets; this module reads those variables (on the worker, when it connects) and
gives the ImapSettings and SmtpSettings the poller and the outbox use. The single-mailbox
INTAKE_IMAP_* / INTAKE_SMTP_* settings stay what they were: INTAKE_IMAP_* is polled while
INTAKE_IMAP_HOST is set, beside the [[mailbox]]es that name their own `imap` (unless its
user is one of them: that one is read with its own), and INTAKE_SMTP_* sends the mail of
every mailbox without an `smtp` of its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing.desk import Desk, Mailbox, MailServer

from .credentials import MissingSecret, OAuthEndpoints, secret_from_file, tokens_for
from .oauth import Tokens
from .poller import ImapSettings
from .smtp import SmtpSettings

__all__ = [
    "ImapAccount",
    "MissingSecret",
    "describe",
    "environment",
    "imap_accounts",
    "imap_settings",
    "missing_secrets",
    "secret",
    "smtp_for",
    "smtp_settings",
]


@dataclass(frozen=True)
class ImapAccount:
    """One mailbox to poll: its status key, and its settings or why there are none."""

    key: str  # the mailbox's address, lower-case (the INTAKE_IMAP_* one: its account)
    name: str  # for people: "helpdesk@delinde.nl (Zorggroep De Linde)"
    settings: ImapSettings | None
    problem: str = ""


def environment(config: Mapping[str, Any]) -> Mapping[str, str]:
    """Where secrets are read: the process environment (tests may give their own)."""
    given = config.get("MAILBOX_ENVIRONMENT")
    return given if isinstance(given, Mapping) else os.environ


def secret(env: Mapping[str, str], name: str, mailbox: Mailbox) -> str:
    value = env.get(name, "")
    if not value:
        raise MissingSecret(f"{name} is not set (the secret of {mailbox.address})")
    return value


def missing_secrets(desk: Desk, env: Mapping[str, str]) -> list[str]:
    """One line per secret the definition names that `env` does not hold, and per key file
    it names that cannot be read here."""
    found: list[str] = []
    for mailbox in desk.mailboxes:
        if mailbox.imap is None and mailbox.smtp is None:
            continue
        for name in mailbox.signin.secret_names():
            if not env.get(name):
                found.append(f"{name} (for {mailbox.address}) is not set")
        signin = mailbox.signin
        files = (
            signin.password_file,
            signin.client_secret_file,
            signin.certificate_path,
            signin.service_account_file,
        )
        for path in files:
            if path and not os.access(path, os.R_OK):
                reason = "cannot be found" if not os.path.exists(path) else "cannot be read"
                found.append(f"{path} (for {mailbox.address}) {reason}")
    return found


def _credentials(
    mailbox: Mailbox, env: Mapping[str, str], endpoints: OAuthEndpoints | None
) -> tuple[str, Tokens | None]:
    """How the mailbox signs in, on IMAP and SMTP alike: its password, or its tokens."""
    if mailbox.signin.method == "password":
        if mailbox.signin.password_file:
            return secret_from_file(mailbox.signin.password_file, mailbox), None
        return secret(env, mailbox.signin.password_env, mailbox), None
    return "", tokens_for(mailbox, env, endpoints or OAuthEndpoints())


def imap_settings(
    mailbox: Mailbox, env: Mapping[str, str], endpoints: OAuthEndpoints | None = None
) -> ImapSettings:
    """The mailbox's IMAP connection with its secret or its token provider; MissingSecret
    when a secret it names cannot be had."""
    server = mailbox.imap
    if server is None:
        raise ValueError(f"{mailbox.address} has no imap settings")
    password, tokens = _credentials(mailbox, env, endpoints)
    return ImapSettings(
        host=server.host,
        user=mailbox.login,
        password=password,
        port=server.port,
        ssl=server.tls == "ssl",
        starttls=server.tls == "starttls",
        folder=server.folder or "INBOX",
        processed_folder=server.processed_folder,
        cafile=server.cafile,
        mailbox=mailbox,
        signin=mailbox.signin.method,
        tokens=tokens,
    )


def smtp_settings(
    mailbox: Mailbox, env: Mapping[str, str], endpoints: OAuthEndpoints | None = None
) -> SmtpSettings:
    """The mailbox's own SMTP account, signed in as the mailbox (as its IMAP is)."""
    server: MailServer | None = mailbox.smtp
    if server is None:
        raise ValueError(f"{mailbox.address} has no smtp settings")
    password, tokens = _credentials(mailbox, env, endpoints)
    return SmtpSettings(
        host=server.host,
        port=server.port,
        user=mailbox.login,
        password=password,
        starttls=server.tls == "starttls",
        implicit_tls=server.tls == "ssl",
        cafile=server.cafile,
        mailbox=mailbox,
        signin=mailbox.signin.method,
        tokens=tokens,
    )


def describe(mailbox: Mailbox) -> str:
    return f"{mailbox.address} ({mailbox.organisation})"


def imap_accounts(desk: Desk, config: Mapping[str, Any]) -> list[ImapAccount]:
    """Every mailbox to poll: each [[mailbox]] with `imap`, and the INTAKE_IMAP_* one when
    it is set and reads a mailbox that has no `imap` of its own."""
    env = environment(config)
    endpoints = OAuthEndpoints.from_config(config)
    found: list[ImapAccount] = []
    for mailbox in desk.mailboxes:
        if mailbox.imap is None:
            continue
        key = mailbox.address.casefold()
        try:
            found.append(
                ImapAccount(key, describe(mailbox), imap_settings(mailbox, env, endpoints))
            )
        except MissingSecret as exc:
            found.append(ImapAccount(key, describe(mailbox), None, str(exc)))
    legacy = ImapSettings.from_config(config)
    if legacy is not None and not any(a.key == legacy.address.casefold() for a in found):
        named = desk.mailbox_for(legacy.address) if legacy.address else None
        name = describe(named) if named is not None else legacy.address or legacy.user
        found.append(ImapAccount(legacy.account, name, legacy))
    return found


def smtp_for(desk: Desk, config: Mapping[str, Any], account: str) -> SmtpSettings | None:
    """The settings of an outbox account: a mailbox's own, else INTAKE_SMTP_*.

    A mailbox taken out of the definition (or its `smtp`) leaves its waiting mail to the
    INTAKE_SMTP_* account. MissingSecret when a mailbox's secret is not set.
    """
    mailbox = desk.mailbox_for(account) if account else None
    if mailbox is not None and mailbox.smtp is not None:
        return smtp_settings(mailbox, environment(config), OAuthEndpoints.from_config(config))
    return SmtpSettings.from_config(config)
