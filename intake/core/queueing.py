"""The call queue: callers waiting while every colleague on shift is on a call.

Twilio holds the caller (`<Enqueue>`, one queue per line); the order, the places and how
each wait ended are ours, here, so that a caller who asks to be called back keeps their
place among those still waiting, and "u bent nummer 2" counts them too.

    join            a caller arrives: a place, unless the line's queue is full
    wait_reported   Twilio's wait URL: the queue's sid, once
    place           1 + the entries ahead: waiting callers and callback requests not served
    callback_wanted the caller pressed 1: once; they hang up and keep their place
    left            the wait ended (voicemail, hang up, bridged, callback, error): once
    offer_next      a colleague is free: the first in line not offered to anyone yet is
                    theirs to take (a caller still waiting, or a callback request, served
                    once); two colleagues free at once are offered different ones
    offer_declined  the colleague did not take it: it is free to offer again, in its place

Each is one statement whose WHERE says what must still be true, so Twilio repeating a
request changes nothing twice; joining is an INSERT ... SELECT that counts the queue in the
same statement, so the size holds (exactly on SQLite's single writer; on PostgreSQL two
callers arriving in the same instant may both take the last place).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from intake.core.db import UTCDateTime
from intake.core.lifecycle import add_event
from intake.core.locks import in_turn
from intake.core.models import Contact, QueueEntry

_queue = cast(Table, QueueEntry.__table__)

WAITING = "waiting"
CALLBACK = "callback"


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def in_line() -> ColumnElement[bool]:
    """Holding a place: on the line now, or a callback request not served yet."""
    return or_(
        QueueEntry.left_at.is_(None),
        and_(QueueEntry.result == CALLBACK, QueueEntry.served_at.is_(None)),
    )


def join(session: Session, contact: Contact, line: str, now: datetime, *, size: int) -> bool:
    """A place in `line`'s queue for the contact's call; False when the queue is full.
    A repeated request for the same call keeps the place it has. Callers joining one line
    at the same moment join in turn, so each counts the others and the bound holds."""
    in_turn(session, f"queue/{line}")
    on_line = (
        select(func.count())
        .select_from(_queue)
        .where(_queue.c.line == line, _queue.c.left_at.is_(None))
        .scalar_subquery()
    )
    rows = select(
        literal(contact.id),
        literal(line),
        literal(now, UTCDateTime()),
        literal(WAITING),
    ).where(on_line < size)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(_queue)
        .from_select(["contact_id", "line", "queued_at", "result"], rows)
        .on_conflict_do_nothing(index_elements=["contact_id"])
    )
    # RETURNING, not the row count: PostgreSQL's driver gives -1 for an INSERT ... SELECT.
    if session.execute(statement.returning(_queue.c.contact_id)).first() is not None:
        add_event(session, contact, "queue", now, key="queue:joined", stage="joined")
        return True
    return session.get(QueueEntry, contact.id) is not None  # a repeat, or full


def place(session: Session, contact_id: int) -> int:
    """The caller's place: 1 when nobody waits ahead."""
    entry = session.get(QueueEntry, contact_id)
    if entry is None:
        return 1
    ahead = session.scalar(
        select(func.count())
        .select_from(QueueEntry)
        .where(
            QueueEntry.line == entry.line,
            in_line(),
            tuple_(QueueEntry.queued_at, QueueEntry.contact_id)
            < tuple_(literal(entry.queued_at, UTCDateTime()), literal(contact_id)),
        )
    )
    return 1 + int(ahead or 0)


def wait_reported(session: Session, contact_id: int, queue_sid: str) -> None:
    """Twilio's wait URL names the queue: kept, to take the caller out of it later."""
    if queue_sid:
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.contact_id == contact_id, QueueEntry.queue_sid.is_(None))
            .values(queue_sid=queue_sid[:64])
        )


def callback_wanted(session: Session, contact: Contact, now: datetime) -> bool:
    """The caller pressed 1 to be called back: once, while still on the line."""
    result = session.execute(
        update(QueueEntry)
        .where(
            QueueEntry.contact_id == contact.id,
            QueueEntry.left_at.is_(None),
            QueueEntry.callback_requested_at.is_(None),
        )
        .values(callback_requested_at=now)
    )
    if _rowcount(result) != 1:
        return False
    add_event(
        session, contact, "queue", now, key="queue:callback-requested", stage="callback-requested"
    )
    return True


def left(
    session: Session, contact: Contact, now: datetime, result: str, *, seconds: int | None = None
) -> bool:
    """The wait is over, as `result`, after `seconds` (Twilio's count; else ours); a caller
    who asked to be called back leaves as "callback", and keeps their place until served."""
    entry = session.get(QueueEntry, contact.id)
    if entry is None:
        return False
    if entry.callback_requested_at is not None:
        result = CALLBACK
    changed = session.execute(
        update(QueueEntry)
        .where(QueueEntry.contact_id == contact.id, QueueEntry.left_at.is_(None))
        .values(left_at=now, result=result)
    )
    if _rowcount(changed) != 1:
        return False
    waited = seconds if seconds is not None else round((now - entry.queued_at).total_seconds())
    add_event(session, contact, "queue", now, key=f"queue:{result}", stage=result, seconds=waited)
    return True


def waited_seconds(session: Session, contact_id: int, now: datetime) -> int:
    entry = session.get(QueueEntry, contact_id)
    return 0 if entry is None else max(0, round((now - entry.queued_at).total_seconds()))


def result_of(session: Session, contact_id: int) -> str | None:
    entry = session.get(QueueEntry, contact_id)
    return None if entry is None else entry.result


def offer_next(session: Session, staff: str, now: datetime) -> QueueEntry | None:
    """The first in line that nobody is being offered, now offered to `staff`; None when
    nobody waits. A callback request offered is served at once (it is called back once)."""
    first = (
        select(QueueEntry.contact_id)
        .where(in_line(), QueueEntry.offered_to.is_(None))
        .order_by(QueueEntry.queued_at, QueueEntry.contact_id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        first = first.with_for_update(skip_locked=True)  # a colleague at once takes the next
    claimed = session.execute(
        update(QueueEntry)
        .where(QueueEntry.contact_id == first.scalar_subquery(), QueueEntry.offered_to.is_(None))
        .values(
            offered_to=staff,
            served_at=case((QueueEntry.result == CALLBACK, now), else_=QueueEntry.served_at),
        )
        .returning(QueueEntry.contact_id)
    ).first()
    if claimed is None:
        return None
    return session.get(QueueEntry, claimed[0], populate_existing=True)


def offer_declined(session: Session, contact_id: int, staff: str) -> bool:
    """`staff` did not take the caller (no answer, no 1): offered to nobody again, in place."""
    result = session.execute(
        update(QueueEntry)
        .where(
            QueueEntry.contact_id == contact_id,
            QueueEntry.offered_to == staff,
            QueueEntry.left_at.is_(None),
        )
        .values(offered_to=None)
    )
    return _rowcount(result) == 1
