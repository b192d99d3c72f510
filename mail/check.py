"""`intake check-mail`: can every mailbox be reached and signed in to, right now?

One line per mailbox, its IMAP and then its SMTP (` | ` between them), through the same
connect and sign-in the worker uses (so what it says is what the worker will meet):
reachable or not, the TLS in use, signed in or the server's own refusal, the folder and how
many messages it holds, and what waits in the outbox for that SMTP account. The
INTAKE_IMAP_* and INTAKE_SMTP_* accounts, where they are used, have a line each.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from sqlalchemy import func, select

from intake.core.db import database
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError, SignInError
from intake.core.models import OutboxMessage
from routing.desk import Desk

from . import smtp as smtp_session
from .accounts import MissingSecret, describe, environment, imap_settings, smtp_settings
from .credentials import OAuthEndpoints
from .mailboxes import failure_text
from .outbox import DEFAULT_ACCOUNT, account_of
from .poller import ImapSettings, _close
from .poller import connect as imap_connect
from .smtp import ConnectionTrouble, SmtpSettings, open_session

__all__ = ["CheckLine", "check_every_mailbox", "check_imap", "check_smtp"]


@dataclass(frozen=True)
class CheckLine:
    ok: bool
    text: str


def _imap_tls(settings: ImapSettings) -> str:
    return "ssl" if settings.ssl else ("starttls" if settings.starttls else "no TLS")


def _smtp_tls(settings: SmtpSettings) -> str:
    implicit = settings.port == 465 if settings.implicit_tls is None else settings.implicit_tls
    return "ssl" if implicit else ("starttls" if settings.starttls else "no TLS")


def _named(name: str, text: str) -> str:
    return f"{name} {text}" if name else text


def check_imap(
    name: str,
    settings: ImapSettings | None,
    problem: str = "",
    *,
    connector: Callable[[ImapSettings], IMAPClient] = imap_connect,
) -> CheckLine:
    if settings is None:
        return CheckLine(False, _named(name, f"IMAP: FAILED: {problem}"))
    where = _named(name, f"IMAP {settings.host}:{settings.port} ({_imap_tls(settings)})")
    try:
        client = connector(settings)
    except LoginError as exc:
        return CheckLine(False, f"{where}: reachable, sign-in refused: {failure_text(exc)}")
    except SignInError as exc:
        return CheckLine(False, f"{where}: reachable, sign-in refused: {exc}")
    except ssl.SSLError as exc:
        return CheckLine(False, f"{where}: reachable, TLS failed: {failure_text(exc)}")
    except (OSError, IMAPClientError) as exc:
        return CheckLine(False, f"{where}: not reachable: {failure_text(exc)}")
    try:
        info = client.select_folder(settings.folder, readonly=True)
        count = int(info.get(b"EXISTS", 0))
    except (OSError, IMAPClientError) as exc:
        return CheckLine(
            False, f"{where}: signed in, folder {settings.folder} FAILED: {failure_text(exc)}"
        )
    finally:
        _close(client)
    return CheckLine(True, f"{where}: OK, signed in; {settings.folder} has {count} messages")


def check_smtp(
    name: str,
    settings: SmtpSettings | None,
    waiting: int,
    problem: str = "",
    *,
    connector: Callable[[SmtpSettings], smtplib.SMTP] = smtp_session.connect,
) -> CheckLine:
    outbox = f"{waiting} waiting in the outbox"
    if settings is None:
        return CheckLine(False, _named(name, f"SMTP: FAILED: {problem}; {outbox}"))
    where = _named(name, f"SMTP {settings.host}:{settings.port} ({_smtp_tls(settings)})")
    try:
        session = open_session(connector, settings)
    except ConnectionTrouble as exc:
        return CheckLine(False, f"{where}: FAILED: {exc}; {outbox}")
    smtp_session.close(session)
    signed = "signed in" if settings.user or settings.tokens is not None else "no sign-in"
    return CheckLine(True, f"{where}: OK, {signed}; {outbox}")


def _waiting(app: Flask) -> Mapping[str, int]:
    with database(app).session() as session:
        rows = session.execute(
            select(OutboxMessage.smtp_account, func.count())
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
            .group_by(OutboxMessage.smtp_account)
        )
        return {account: int(count) for account, count in rows}


def check_every_mailbox(app: Flask) -> list[CheckLine]:
    """Every mailbox's IMAP and SMTP, then the INTAKE_* ones where they are used."""
    config: Mapping[str, Any] = app.config
    with database(app).session() as session:
        try:
            desk: Desk | None = current_desk(session, app)
        except NoDeskError:
            desk = None
    env = environment(config)
    endpoints = OAuthEndpoints.from_config(config)
    waiting = _waiting(app)
    lines: list[CheckLine] = []
    covered: set[str] = set()
    for mailbox in desk.mailboxes if desk is not None else ():
        if mailbox.imap is None and mailbox.smtp is None:
            continue
        parts: list[CheckLine] = []
        if mailbox.imap is not None:
            covered.add(mailbox.address.casefold())
            try:
                parts.append(check_imap("", imap_settings(mailbox, env, endpoints)))
            except MissingSecret as exc:
                parts.append(check_imap("", None, str(exc)))
        if mailbox.smtp is not None:
            count = waiting.get(account_of(mailbox), 0)
            try:
                parts.append(check_smtp("", smtp_settings(mailbox, env, endpoints), count))
            except MissingSecret as exc:
                parts.append(check_smtp("", None, count, str(exc)))
        text = " | ".join(part.text for part in parts)
        lines.append(CheckLine(all(part.ok for part in parts), f"{describe(mailbox)} {text}"))
    legacy_imap = ImapSettings.from_config(config)
    if legacy_imap is not None and legacy_imap.address.casefold() not in covered:
        lines.append(check_imap(f"{legacy_imap.user} (INTAKE_IMAP_*)", legacy_imap))
    legacy_smtp = SmtpSettings.from_config(config)
    default_waiting = waiting.get(DEFAULT_ACCOUNT, 0)
    if legacy_smtp is not None or default_waiting:
        lines.append(
            check_smtp("INTAKE_SMTP_*", legacy_smtp, default_waiting, "INTAKE_SMTP_HOST is not set")
        )
    if not lines:
        lines.append(
            CheckLine(
                False,
                "no mailbox to check: no [[mailbox]] has imap and INTAKE_IMAP_HOST is not set",
            )
        )
    return lines
