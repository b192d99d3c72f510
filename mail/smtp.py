"""One SMTP session of the outbox: connecting, signing in, and one transaction per message.

The outbox (mail/outbox.py) decides what is due and records what happened; this module only
talks SMTP. What can go wrong comes back as one of two exceptions:

    ConnectionTrouble   the connection cannot carry mail now: stop, try again later
    Refused             the server refused this one message (4xx: for now; 5xx: for good)
     └── SomeRefused    every recipient refused; `keep` those refused only for now

Memory: a message goes out in chunks, dot-stuffed a chunk at a time, never as a second
copy of the whole (a forward with the original attached can be 20 MB). A `summary` names
the stage and the code, without the server's words, which often repeat an address: it is
what the log may show.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from intake.core.errors import SignInError
from routing.desk import Mailbox

from .oauth import Tokens, smtp_sign_in

__all__ = [
    "ConnectionTrouble",
    "Refused",
    "SmtpSettings",
    "SomeRefused",
    "close",
    "connect",
    "open_session",
    "refused_text",
    "sign_in",
    "transaction",
]

_CHUNK = 1 << 20  # bytes of a message handed to the socket at a time
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    timeout: float = 30.0
    # Implicit TLS from the first byte; None: on port 465 only (as before).
    implicit_tls: bool | None = None
    cafile: str = ""
    # The [[mailbox]] whose account this is (None: the INTAKE_SMTP_* account), and how it
    # signs in; the secret of a password sign-in is `password`.
    mailbox: Mailbox | None = field(default=None, compare=False)
    signin: str = "password"
    # OAuth2 sign-in (microsoft, google): XOAUTH2 with these tokens instead of the password.
    tokens: Tokens | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings | None:
        """From the app's config keys (SMTP_HOST, ...); None when no SMTP host is set."""
        host = str(config.get("SMTP_HOST") or "").strip()
        if not host:
            return None
        starttls = config.get("SMTP_STARTTLS", True)
        if isinstance(starttls, str):
            starttls = starttls.strip().lower() not in ("0", "false", "no", "off")
        return cls(
            host=host,
            port=int(config.get("SMTP_PORT") or 587),
            user=str(config.get("SMTP_USER") or ""),
            password=str(config.get("SMTP_PASSWORD") or ""),
            starttls=bool(starttls),
        )


class ConnectionTrouble(Exception):
    """The connection cannot carry mail now: stop this flush, try again later.

    `summary` is for the log: the stage and code, without the server's words, which often
    repeat an address.
    """

    def __init__(
        self, text: str, level: int = logging.WARNING, *, summary: str | None = None
    ) -> None:
        super().__init__(text)
        self.level = level
        self.summary = summary or text


class Refused(Exception):
    """The server refused this one message (4xx: for now; 5xx: for good)."""

    def __init__(self, text: str, *, permanent: bool, summary: str) -> None:
        super().__init__(text)
        self.permanent = permanent
        self.summary = summary


class SomeRefused(Refused):
    """Every recipient refused; `keep` are those refused only for now (to try again)."""

    def __init__(self, text: str, *, permanent: bool, summary: str, keep: list[str]) -> None:
        super().__init__(text, permanent=permanent, summary=summary)
        self.keep = keep


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    implicit = settings.port == 465 if settings.implicit_tls is None else settings.implicit_tls
    if implicit:  # implicit TLS ("submissions", RFC 8314)
        return smtplib.SMTP_SSL(
            settings.host,
            settings.port,
            timeout=settings.timeout,
            context=ssl.create_default_context(cafile=settings.cafile or None),
        )
    return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)


def open_session(
    connect: Callable[[SmtpSettings], smtplib.SMTP], settings: SmtpSettings
) -> smtplib.SMTP:
    """A connection ready to send: EHLO, STARTTLS when asked (and not already on TLS), login."""
    try:
        smtp = connect(settings)
    except (smtplib.SMTPException, OSError) as exc:
        raise ConnectionTrouble(f"no connection to the SMTP server ({_describe(exc)})") from exc
    try:
        smtp.ehlo()
        if settings.starttls and not isinstance(smtp.sock, ssl.SSLSocket):
            if not smtp.has_extn("starttls"):
                raise ConnectionTrouble(
                    "the SMTP server does not offer STARTTLS; not sending in the clear",
                    logging.ERROR,
                )
            smtp.starttls(context=ssl.create_default_context(cafile=settings.cafile or None))
            smtp.ehlo()
        if settings.user or settings.tokens is not None:
            try:
                sign_in(smtp, settings)
            except SignInError as exc:
                # No token for the mailbox (a revoked secret, a refused consent): a setting
                # to fix, said in the provider's own words.
                raise ConnectionTrouble(str(exc), logging.ERROR) from None
            except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as exc:
                # A setting to fix, not a passing fault: an error in the log.
                text = f"SMTP login refused ({_describe(exc)})"
                raise ConnectionTrouble(text, logging.ERROR) from exc
    except ConnectionTrouble:
        close(smtp)
        raise
    except (smtplib.SMTPException, OSError) as exc:
        close(smtp)
        raise ConnectionTrouble(f"SMTP connection failed ({_describe(exc)})") from exc
    return smtp


def sign_in(smtp: smtplib.SMTP, settings: SmtpSettings) -> None:
    """Sign a connected session in as the account: AUTH XOAUTH2 with a token (Microsoft 365,
    Google Workspace: `settings.tokens`), else AUTH with the user and password."""
    if settings.tokens is not None:
        smtp_sign_in(smtp, settings.user, settings.tokens)
    else:
        smtp.login(settings.user, settings.password)


def close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def transaction(
    smtp: smtplib.SMTP, mail_from: str, recipients: list[str], raw: bytes | bytearray
) -> dict[str, tuple[int, bytes]]:
    """MAIL, RCPT, DATA for one message; the recipients refused when others accepted it.

    What `smtplib.SMTP.sendmail` does, except that the message goes out in chunks instead
    of as one dot-stuffed copy (two copies of a 20 MB forward otherwise).
    """
    try:
        smtp.ehlo_or_helo_if_needed()
        options: list[str] = []
        if smtp.does_esmtp:
            if smtp.has_extn("size"):
                options.append(f"SIZE={len(raw)}")
            if not raw.isascii() and smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
        code, reply = smtp.mail(mail_from, options)
        if code != 250:
            _refused(smtp, code, reply, "MAIL FROM")
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
                if code == 421:
                    _refused(smtp, code, reply, "RCPT TO")
        if len(refused) == len(recipients):
            _reset(smtp)
            keep = [r for r, (code, _reply) in refused.items() if code < 500]
            codes = ", ".join(str(code) for code, _reply in refused.values())
            raise SomeRefused(
                "every recipient refused: " + refused_text(refused),
                permanent=not keep,
                summary=f"RCPT TO: {codes}",
                keep=keep if len(keep) < len(recipients) else [],
            )
        code, reply = _data(smtp, raw)
        if code != 250:
            _refused(smtp, code, reply, "DATA")
        return refused
    except smtplib.SMTPResponseException as exc:
        # e.g. a HELO refused: nothing to do with this message.
        raise ConnectionTrouble(_describe(exc)) from exc
    except (smtplib.SMTPException, OSError) as exc:  # disconnected, timed out, reset
        raise ConnectionTrouble(_describe(exc)) from exc


def refused_text(refused: Mapping[str, tuple[int, bytes]]) -> str:
    """The refused recipients with the server's answers, for the row (not for the log)."""
    return "; ".join(f"{r}: {code} {_reply_text(reply)}" for r, (code, reply) in refused.items())


def _refused(smtp: smtplib.SMTP, code: int, reply: bytes, stage: str) -> None:
    text, summary = f"{stage}: {code} {_reply_text(reply)}", f"{stage}: {code}"
    if code == 421 or code < 400:  # the server is closing, or talks nonsense
        smtp.close()
        raise ConnectionTrouble(text, summary=summary)
    _reset(smtp)
    raise Refused(text, permanent=code >= 500, summary=summary)


def _reset(smtp: smtplib.SMTP) -> None:
    # As smtplib does: a server already gone shows up at the next command.
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def _data(smtp: smtplib.SMTP, raw: bytes | bytearray) -> tuple[int, bytes]:
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        return code, reply
    for chunk in _dot_stuffed(raw):
        smtp.send(chunk)
    return smtp.getreply()


def _dot_stuffed(raw: bytes | bytearray) -> Iterator[bytes]:
    """`raw` in pieces of about _CHUNK bytes, cut after a line end, a leading "." doubled;
    the last ends with the end-of-data line (in the same write: a small write of its own
    waits for the server's delayed ACK, 40 ms a message)."""
    start = 0
    while True:
        end = raw.find(b"\n", start + _CHUNK)
        end = len(raw) if end < 0 else end + 1
        chunk = _LEADING_DOT.sub(b"..", raw[start:end])
        if end < len(raw):
            yield chunk
            start = end
            continue
        yield chunk + (b".\r\n" if chunk.endswith(b"\r\n") or not chunk else b"\r\n.\r\n")
        return


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_reply_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:500]
