"""The contact log: every call, mail and walk-in as one contact with a timeline.

Here a call's contact is made (once per CallSid), found, listed and, after the retention
period, removed; who is busy on a call is read from it. How a contact's outcome changes,
and the timeline that records it, is `lifecycle`; searching the log is `search`. The
caller (a webhook, a job, a command) commits. Twilio repeats its requests, so everything
here is idempotent on Twilio's ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from .db import Prepared, UTCDateTime
from .lifecycle import Channel, Outcome
from .models import (
    Announcement,
    Callback,
    Contact,
    ContactEvent,
    DeskDefinition,
    OutboxMessage,
)

# A call that has been answered is "open" (its colleague busy) until Twilio reports its end;
# should that report never come, the colleague counts as free again after this long.
BUSY_WINDOW = timedelta(hours=3)


@dataclass(frozen=True)
class CallSnapshot:
    """What a new call needs to know from the database, read in one round trip."""

    desk_version: int | None  # the newest desk definition's id
    busy: frozenset[str]  # colleagues on an answered call not ended, or calling back
    recordings_version: int = 0  # the desk's own recordings' (intake.core.announcements)


# The statements of every call's first request, built once (constructing SQLAlchemy
# expressions per request costs more than running them) and compiled once per database
# (`db.Prepared`). They run on the Core tables, past the ORM's unit of work.
_contacts = cast(Table, Contact.__table__)
_events = cast(Table, ContactEvent.__table__)
_desks = cast(Table, DeskDefinition.__table__)
_announcements = cast(Table, Announcement.__table__)


def _open_answered(since: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Calls answered since `since` and not ended: read from ix_contact_answered_open.

    That partial index holds a handful of rows. The channel is compared as `channel || ''`,
    which no index serves: compared plainly, SQLite (without statistics) walks
    ix_contact_channel_started instead, every call of the last three hours, on every call.
    """
    return (
        _contacts.c.answered_by.is_not(None)
        & _contacts.c.ended_at.is_(None)
        & (_contacts.c.started_at >= since)
        & ((_contacts.c.channel + "") == Channel.CALL)
    )


_callbacks = cast(Table, Callback.__table__)


def _names(dialect: str, column: ColumnElement[str]) -> ColumnElement[str]:
    """Who is busy, as one text ("anna,bram"): each database's own aggregate."""
    if dialect == "postgresql":
        return func.string_agg(column, ",")
    return func.group_concat(column, ",")


def _calling_back(since: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Colleagues calling a patient back through the helpline (intake.core.callbacks)."""
    return _callbacks.c.ended_at.is_(None) & (_callbacks.c.requested_at >= since)


SNAPSHOT = {
    dialect: Prepared(
        select(
            select(_desks.c.id).order_by(_desks.c.id.desc()).limit(1).scalar_subquery(),
            select(_names(dialect, _contacts.c.answered_by))
            .where(_open_answered(bindparam("since", type_=UTCDateTime)))
            .scalar_subquery(),
            select(_names(dialect, _callbacks.c.staff))
            .where(_calling_back(bindparam("since", type_=UTCDateTime)))
            .scalar_subquery(),
            select(func.max(_announcements.c.id)).scalar_subquery(),
        )
    )
    for dialect in ("sqlite", "postgresql")
}
_CALL_COLUMNS = ("channel", "via", "organisation", "caller", "started_at", "outcome", "call_sid")
_CALL_VALUES = {name: bindparam(name, type_=_contacts.c[name].type) for name in _CALL_COLUMNS}
_START_CALL = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(_contacts)
    .values(_CALL_VALUES)
    .on_conflict_do_nothing(index_elements=[_contacts.c.call_sid])
    for dialect in (postgresql, sqlite)
}
START_CALL = Prepared(_START_CALL["sqlite"].returning(_contacts.c.id))
START_CALL_WITHOUT_SID = insert(_contacts).values(_CALL_VALUES).returning(_contacts.c.id)
CALL_ID = select(_contacts.c.id).where(_contacts.c.call_sid == bindparam("call_sid"))
INCOMING_EVENT = Prepared(
    insert(_events).values(
        contact_id=bindparam("contact_id"),
        at=bindparam("at", type_=UTCDateTime),
        kind="incoming",
        key="incoming",
        detail=bindparam("detail", type_=_events.c.detail.type),
    )
)
# PostgreSQL takes both in one statement, a data-modifying WITH: one round trip less. It
# returns no row when the CallSid is known already (nothing was inserted).
_new_call = (
    _START_CALL["postgresql"].returning(_contacts.c.id, _contacts.c.started_at).cte("new_call")
)
START_CALL_AND_EVENT = Prepared(
    insert(_events)
    .from_select(
        ["contact_id", "at", "kind", "key", "detail"],
        select(
            _new_call.c.id,
            _new_call.c.started_at,
            literal("incoming", _events.c.kind.type),
            literal("incoming", _events.c.key.type),
            bindparam("detail", type_=_events.c.detail.type),
        ),
    )
    .returning(_events.c.contact_id)
    .add_cte(_new_call, nest_here=True)
)


def call_snapshot(session: Session, now: datetime) -> CallSnapshot:
    connection = session.connection()
    snapshot = SNAPSHOT[connection.dialect.name]
    row = snapshot.execute(connection, {"since": now - BUSY_WINDOW}).one()
    version, on_calls, calling_back, recordings = tuple(row)
    names = f"{on_calls or ''},{calling_back or ''}"
    return CallSnapshot(version, frozenset(n for n in names.split(",") if n), recordings or 0)


def start_call(
    session: Session,
    *,
    call_sid: str,
    at: datetime,
    caller: str,
    via: str,
    organisation: str,
    **detail: Any,
) -> tuple[int, bool]:
    """Log a call's first request: its contact, once per CallSid, and the "incoming" event.

    Two statements on the hot path of every call, one on PostgreSQL. Returns (contact id,
    created); a repeated request for the same call finds the contact and adds nothing.
    """
    connection = session.connection()
    values = {
        "channel": Channel.CALL,
        "via": via,
        "organisation": organisation,
        "caller": caller,
        "started_at": at,
        "outcome": Outcome.IN_PROGRESS,
        "call_sid": call_sid or None,
    }
    if not call_sid:
        new_id = connection.execute(START_CALL_WITHOUT_SID, values).scalar_one()
    elif connection.dialect.name == "postgresql":
        new_id = START_CALL_AND_EVENT.execute(connection, {**values, "detail": detail}).scalar()
        if new_id is not None:  # the contact and its event, in one statement
            return int(new_id), True
    else:
        new_id = START_CALL.execute(connection, values).scalar()
    if new_id is None:  # Twilio asked twice: the contact is there already
        existing = connection.execute(CALL_ID, {"call_sid": call_sid}).scalar()
        if existing is None:  # removed in between: let the shell retry the request
            raise LookupError(f"call {call_sid} vanished while being logged")
        return int(existing), False
    INCOMING_EVENT.execute(connection, {"contact_id": new_id, "at": at, "detail": detail})
    return int(new_id), True


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
    Two at once are told apart by the unique `call_sid`: the second insert fails, and the
    webhook shell runs that request again, which finds the first one's contact.
    """
    existing = find_call(session, call_sid)
    if existing is not None:
        return existing, False
    contact = Contact(
        channel=Channel.CALL,
        via=via,
        organisation=organisation,
        caller=caller,
        started_at=at,
        outcome=Outcome.IN_PROGRESS,
        call_sid=call_sid or None,
    )
    session.add(contact)
    session.flush()  # the reference (from the id) is known from here on
    return contact, True


def busy_staff(session: Session, now: datetime) -> set[str]:
    """Colleagues on an answered helpdesk call that has not ended yet, or calling back."""
    since = now - BUSY_WINDOW
    on_calls = session.scalars(select(_contacts.c.answered_by).where(_open_answered(since)))
    calling_back = session.scalars(select(_callbacks.c.staff).where(_calling_back(since)))
    return {row for row in on_calls if row} | set(calling_back)


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
    """Remove contacts that started before `cutoff`, with their timelines, their stored mail
    and the mail we sent about them; how many contacts.

    Mail about no contact (a colleague's link to set a password) goes once it is as old.
    What we sent holds the patient's words (a forward the whole original): left in the
    outbox, it would outlive the contact it was about.
    """
    old = select(Contact.id).where(Contact.started_at < cutoff)
    session.execute(delete(ContactEvent).where(ContactEvent.contact_id.in_(old)))
    session.execute(
        delete(OutboxMessage).where(
            or_(
                OutboxMessage.contact_id.in_(old),
                and_(OutboxMessage.contact_id.is_(None), OutboxMessage.created_at < cutoff),
            )
        )
    )
    result = session.execute(delete(Contact).where(Contact.started_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
