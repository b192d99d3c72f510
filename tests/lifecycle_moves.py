"""Every move of a contact's lifecycle by name, and contacts put in a state to make them on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from intake.core import lifecycle
from intake.core.models import Contact

from .conftest import contacts, local
from .factories import add_contact

START = local("2026-11-23 10:00")
AT = local("2026-11-23 10:20")
RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
STAFF = "anna@example.org"

Move = Callable[[Session, Contact], object]
MOVES: dict[str, Move] = {
    "accepted by anna": lambda s, c: lifecycle.call_accepted(s, c, AT, staff="anna"),
    "not bridged": lambda s, c: lifecycle.not_bridged(c),
    "answered at the fallback": lambda s, c: lifecycle.answered_at_fallback(c),
    "ended": lambda s, c: lifecycle.call_ended(c, AT, 42),
    "status completed": lambda s, c: lifecycle.status_reported(
        s, c, AT, status="completed", sequence="3", seconds=42
    ),
    "voicemail recorded": lambda s, c: lifecycle.voicemail_recorded(
        s, c, AT, sid="RE1", status="completed", seconds=12, url=RECORDING_URL
    ),
    "recording processing": lambda s, c: lifecycle.voicemail_recorded(
        s, c, AT, sid="RE1", status="in-progress", seconds=None, url=""
    ),
    "forwarded to bram": lambda s, c: lifecycle.mail_forwarded(s, c, [], "bram", AT),
    "held": lambda s, c: lifecycle.mail_held(c),
    "hold released": lambda s, c: lifecycle.hold_released(c),
    "acknowledged": lambda s, c: lifecycle.mail_acknowledged(s, c, AT, reason="closed"),
    "follow-up": lambda s, c: lifecycle.follow_up_received(
        s, c, AT, attention=True, detail={"subject": "Nog een vraag"}
    ),
    "needs attention": lambda s, c: lifecycle.needs_attention(c),
    "marked handled": lambda s, c: lifecycle.marked_handled(
        s, c, AT, by=STAFF, topic="Inloggen", note="Opgelost"
    ),
    "reopened": lambda s, c: lifecycle.reopened(s, c, AT, by=STAFF),
}


def make(app: Flask, channel: str, outcome: str, **fields: Any) -> int:
    """A contact in the given state, committed; its id."""
    fields.setdefault("caller", "+31612345678")
    return add_contact(app, channel=channel, outcome=outcome, started_at=START, **fields)


def state(app: Flask, contact_id: int) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """Every column of the contact, and its timeline."""
    [contact] = [c for c in contacts(app) if c.id == contact_id]
    row = {a.key: getattr(contact, a.key) for a in Contact.__mapper__.column_attrs}
    return row, [(e.kind, e.key, e.detail) for e in contact.events]
