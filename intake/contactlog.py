"""The contact log: every call (and later mail and walk-in) as one contact with a timeline.

These functions add and change rows; the caller (a webhook, a job, a command) commits.
Twilio repeats its requests, so everything here is idempotent on Twilio's ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from .models import Contact, ContactEvent

# Outcomes of a call, from first ring to the end.
IN_PROGRESS = "in-progress"
ANSWERED = "answered"
FALLBACK = "fallback"  # put through to the desk's fallback number, answered there
MISSED = "missed"
VOICEMAIL = "voicemail"

# A call that has been answered is "open" (its colleague busy) until Twilio reports its end;
# should that report never come, the colleague counts as free again after this long.
BUSY_WINDOW = timedelta(hours=3)


def find_call(session: Session, call_sid: str) -> Contact | None:
    if not call_sid:
        return None
    return session.scalars(select(Contact).where(Contact.call_sid == call_sid)).first()


def open_call(
    session: Session,
    *,
    call_sid: str,
    at: datetime,
    caller: str,
    via: str,
    organisation: str,
) -> tuple[Contact, bool]:
    """The contact for `call_sid`, made now if this is the first we hear of it.

    Returns (contact, created). A repeated request for the same call gives the same contact.
    """
    existing = find_call(session, call_sid)
    if existing is not None:
        return existing, False
    contact = Contact(
        channel="call",
        via=via,
        organisation=organisation,
        caller=caller,
        started_at=at,
        outcome=IN_PROGRESS,
        call_sid=call_sid or None,
    )
    session.add(contact)
    session.flush()  # the reference (from the id) is known from here on
    return contact, True


def add_event(
    session: Session,
    contact: Contact,
    kind: str,
    at: datetime,
    *,
    key: str | None = None,
    **detail: Any,
) -> bool:
    """Add a step to the timeline; with a `key`, only once. True when it was added."""
    if key is not None and contact.id is not None:
        seen = session.scalar(
            select(ContactEvent.id).where(
                ContactEvent.contact_id == contact.id, ContactEvent.key == key
            )
        )
        if seen is not None:
            return False
    contact.events.append(ContactEvent(at=at, kind=kind, key=key, detail=detail))
    return True


def busy_staff(session: Session, now: datetime) -> set[str]:
    """Colleagues on an answered helpdesk call that has not ended yet."""
    rows = session.scalars(
        select(Contact.answered_by).where(
            Contact.channel == "call",
            Contact.answered_by.is_not(None),
            Contact.ended_at.is_(None),
            Contact.started_at >= now - BUSY_WINDOW,
        )
    )
    return {row for row in rows if row}


def end_call(contact: Contact, at: datetime, duration: int | None) -> None:
    """Mark the call over; a call nobody took and that left no message counts as missed."""
    if contact.ended_at is None:
        contact.ended_at = at
    if duration is not None:
        contact.duration_seconds = duration
    if contact.outcome == IN_PROGRESS:
        contact.outcome = MISSED


def list_contacts(
    session: Session, *, since: datetime | None = None, limit: int | None = None
) -> Sequence[Contact]:
    """Contacts that started at or after `since` (aware), newest first, with timelines."""
    query = select(Contact).options(selectinload(Contact.events))
    if since is not None:
        query = query.where(Contact.started_at >= since)
    query = query.order_by(Contact.started_at.desc(), Contact.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


def purge_older_than(session: Session, cutoff: datetime) -> int:
    """Remove contacts (and their timelines) that started before `cutoff`; how many."""
    old = select(Contact.id).where(Contact.started_at < cutoff)
    session.execute(delete(ContactEvent).where(ContactEvent.contact_id.in_(old)))
    result = session.execute(delete(Contact).where(Contact.started_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
