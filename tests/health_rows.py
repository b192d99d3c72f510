"""Heartbeats, mailbox rounds and outbox rows for /readyz and /metrics, and the no-details check."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from intake.core.models import OutboxMessage
from intake.shell.heartbeats import record_success
from mail.mailboxes import MailboxRound, record_round
from mail.poller import PollResult

from .conftest import ANNA, BRAM, DIRK

ALWAYS_RUN = ("mail-poll", "outbox", "backlog", "retention")  # what every worker runs
NOORD = "helpdesk@example.org"  # the example desk's mailbox, of Ziekenhuis Noord


def every_job_ran(app: Flask) -> None:
    for name in ALWAYS_RUN:
        record_success(app, name)


def mailbox_round(app: Flask, ok: bool, key: str = NOORD) -> None:
    error = "" if ok else "LoginError: [AUTHENTICATIONFAILED] helpdesk@example.org refused"
    result = PollResult() if ok else None
    record_round(app, MailboxRound(key, f"{key} (Ziekenhuis Noord)", result, error))


def outbox_row(app: Flask, n: int, created: Any, **fields: Any) -> OutboxMessage:
    return OutboxMessage(
        kind="acknowledgement",
        message_id=f"<out-{n}@example.org>",
        mail_from=NOORD,
        recipients=["jan.jansen@example.net"],
        raw=b"",
        created_at=created,
        next_attempt_at=created,
        **fields,
    )


def assert_no_patient_or_desk_details(text: str) -> None:
    assert "@" not in text
    for number in (ANNA, BRAM, DIRK, "+31612345678", "+31687654321", "+31851234567"):
        assert number not in text
        assert number[3:] not in text  # nor without +31
    assert re.search(r"\+\d{6,}", text) is None
