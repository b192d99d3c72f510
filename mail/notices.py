"""Telling colleagues about a voicemail, through the outbox.

Sent to the colleagues on shift; a voicemail left while the desk is closed goes to those
on shift when it opens next, and waits in the outbox until then. A voicemail for an
organisation whose [[mailbox]] has its own SMTP account goes out through that account,
from that mailbox's address.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from intake.core.models import Contact
from mail.compose import new_message_id, voicemail_notice
from mail.outbox import account_of, enqueue
from routing.desk import Desk, Mailbox
from routing.hours import is_open, next_opening
from routing.rota import on_shift


def voicemail_left(
    session: Session, app: Flask, desk: Desk, contact: Contact, now: datetime
) -> bool:
    """Queue the notice for `contact`'s voicemail; False when there is nobody to tell."""
    send_at = now if is_open(desk, now) else (next_opening(desk, now) or now)
    recipients = [s.email for s in on_shift(desk, send_at) if s.email]
    if not recipients:
        recipients = [s.email for s in desk.staff if s.email][:10]
    if not recipients:
        return False
    mailbox = sending_mailbox(desk, contact.organisation)
    sender = mailbox.address if mailbox is not None else app.config.get("SMTP_FROM") or desk.email
    domain = sender.rpartition("@")[2] or "localhost"
    notice = voicemail_notice(
        desk=desk,
        reference=contact.reference,
        caller=contact.caller,
        organisation=contact.organisation,
        started_at=contact.started_at,
        seconds=contact.recording_seconds,
        recipients=recipients,
        sender=sender,
        message_id=new_message_id("voicemail", contact.reference, domain),
    )
    row = enqueue(
        session,
        notice,
        kind="voicemail-notice",
        contact_id=contact.id,
        now=now,
        smtp_account=account_of(mailbox),
    )
    row.next_attempt_at = max(send_at, now)
    return True


def sending_mailbox(desk: Desk, organisation: str) -> Mailbox | None:
    """The first [[mailbox]] of `organisation` that has an SMTP account of its own."""
    for mailbox in desk.mailboxes:
        if mailbox.organisation == organisation and mailbox.smtp is not None:
            return mailbox
    return None
