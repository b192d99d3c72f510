"""Colleagues hear of a voicemail by mail: at once while open, at the next shift when closed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import OutboxMessage
from intake.shell.jobs import flush_outbox
from routing.desk import Desk

from .conftest import Twilio, leave_voicemail, local

if TYPE_CHECKING:
    from tests.mailservers import SmtpSink


def notices(app: Flask) -> list[OutboxMessage]:
    with database(app).session() as session:
        return list(
            session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "voicemail-notice"))
        )


def test_a_voicemail_while_open_is_mailed_to_the_colleagues_on_shift(
    app: Flask, desk: Desk, twilio: Twilio, smtp: SmtpSink
) -> None:
    app.config.update(SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_STARTTLS=False)
    leave_voicemail(twilio)

    flush_outbox(app)

    [notice] = smtp.wait_for(1)
    assert sorted(notice.rcpt_tos) == ["anna@example.org", "bram@example.org"]
    assert "HD-" in notice.message["Subject"]
    assert notice.message["Auto-Submitted"] == "auto-generated"


def test_a_voicemail_while_closed_waits_for_the_next_shift(
    app: Flask, desk: Desk, twilio: Twilio, clock: SimClock, smtp: SmtpSink
) -> None:
    app.config.update(SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_STARTTLS=False)
    clock.moment = local("2026-11-22 20:00")  # Sunday evening
    leave_voicemail(twilio)

    [queued] = notices(app)
    assert queued.next_attempt_at == local("2026-11-23 08:30")
    assert sorted(queued.recipients) == ["anna@example.org", "bram@example.org"]
    flush_outbox(app)
    assert smtp.messages == []

    clock.moment = local("2026-11-23 08:30")
    flush_outbox(app)
    assert len(smtp.wait_for(1)) == 1
