"""The contact log's own rules: retention and who counts as busy."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from flask import Flask
from sqlalchemy import select

from intake.core import contactlog, lifecycle
from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import OutboxMessage
from intake.shell.jobs import purge_expired
from mail.outbox import enqueue
from routing.desk import Desk

from .conftest import contacts, local


def log_call(app: Flask, sid: str, at_text: str, answered_by: str | None = None) -> None:
    with database(app).session() as session:
        contact, _ = contactlog.open_call(
            session,
            call_sid=sid,
            at=local(at_text),
            caller="+31612345678",
            via="+31851234567",
            organisation="Ziekenhuis Noord",
        )
        lifecycle.add_event(session, contact, "incoming", local(at_text), key="incoming")
        if answered_by:
            lifecycle.call_accepted(session, contact, local(at_text), staff=answered_by)
        session.commit()


def test_retention_removes_contacts_older_than_the_desks_period(
    app: Flask, desk: Desk, clock: SimClock
) -> None:
    clock.moment = local("2026-11-23 10:00")
    log_call(app, "CA-old", "2025-11-20 10:00")  # 368 days before
    log_call(app, "CA-edge", "2025-11-24 10:00")  # 364 days before
    log_call(app, "CA-new", "2026-11-23 09:00")

    assert purge_expired(app) == 1

    assert [c.call_sid for c in contacts(app)] == ["CA-edge", "CA-new"]


def test_an_answered_call_keeps_its_colleague_busy_until_it_ends(app: Flask, desk: Desk) -> None:
    log_call(app, "CA-1", "2026-11-23 10:00", answered_by="anna")
    at = local("2026-11-23 10:05")

    with database(app).session() as session:
        assert contactlog.busy_staff(session, at) == {"anna"}
        # Should Twilio's end-of-call report never arrive, she is free again after a while.
        assert contactlog.busy_staff(session, at + contactlog.BUSY_WINDOW) == set()
        contact = contactlog.find_call(session, "CA-1")
        assert contact is not None
        lifecycle.call_ended(contact, at, 300)
        session.commit()
        assert contactlog.busy_staff(session, at + timedelta(seconds=1)) == set()


def queue_mail(app: Flask, contact_id: int | None, subject: str, at_text: str) -> None:
    message = EmailMessage()
    message["From"] = "helpdesk@example.org"
    message["To"] = "anna@example.org"
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject}@example.org>"
    message.set_content("Mevrouw De Vries kan niet inloggen op het patiëntenportaal.")
    with database(app).session() as session:
        enqueue(session, message, kind="forward", contact_id=contact_id, now=local(at_text))
        session.commit()


def test_retention_removes_the_mail_sent_about_old_contacts(
    app: Flask, desk: Desk, clock: SimClock
) -> None:
    clock.moment = local("2026-11-23 10:00")
    log_call(app, "CA-old", "2025-11-20 10:00")
    log_call(app, "CA-new", "2026-11-23 09:00")
    ids = {c.call_sid: c.id for c in contacts(app)}
    queue_mail(app, ids["CA-old"], "old", "2025-11-20 10:05")
    queue_mail(app, ids["CA-new"], "new", "2026-11-23 09:05")
    queue_mail(app, None, "old-link", "2025-11-20 11:00")  # about no contact
    queue_mail(app, None, "new-link", "2026-11-23 09:10")

    assert purge_expired(app) == 1

    with database(app).session() as session:
        left = session.scalars(select(OutboxMessage.message_id).order_by(OutboxMessage.id))
        assert list(left) == ["<new@example.org>", "<new-link@example.org>"]
