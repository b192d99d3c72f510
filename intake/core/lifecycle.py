"""A contact's life: its channel and outcome, the moves between outcomes, and its timeline.

One owner for a contact's state. Voice, mail and the dashboard call the transitions here
and never assign a contact's outcome fields (outcome, answered_by, forwarded_to,
handled_at, recording_*, needs_attention, ...) themselves. A move that is not allowed
raises `TransitionNotAllowed` before anything is written: row and timeline stay as they were.

The state a move is judged on is the database's, not what the request read earlier: two
webhooks of one call, two workers or two colleagues may change one contact at once. Each
move is one conditional UPDATE (`_write`): the states it is allowed from in its WHERE, a
field that depends on the state as a CASE; whether the row matched says who won. The
second of two waits for the first (PostgreSQL's row lock, SQLite's one writer) and is judged
on what the first wrote; the ORM object then holds the row as stored. Only the channel is
checked as read: it never changes. A keyed event is inserted once (ON CONFLICT DO NOTHING).

Twilio repeats its callbacks and may send them out of order, and mail threads cross
channels (a reply to a voicemail notice joins that call). Such moves are allowed where
they change nothing, and say so: they return False. A recording arriving for an answered
call keeps "answered"; a second colleague pressing 1 is told the call is taken; the end
of a call reported twice, or before the answer at the fallback number, changes nothing.

A call's contact is made in `contactlog` (`start_call` on the hot path of every call, with
pre-built statements, and `open_call`), in progress; mail and walk-ins are made here.
The ordinary mail of a fetch batch goes through `mailbatch`: the same moves, rows and
events as mail_received, follow_up_received and mail_forwarded, one statement per kind for
many messages. Steps that change nothing about the contact (a colleague's phone picking
up, a round of ringing ending, a caller leaving no message) are only noted on the timeline:
`add_event`.

    transition              allowed from                     outcome afterwards
    call_accepted           in-progress, answered            answered (False: taken)
    not_bridged             any call                         answered -> in-progress
    answered_at_fallback    in-progress, fallback, missed    in-progress -> fallback
    call_ended              any call                         in-progress -> missed
    voicemail_recorded      any call                         in-progress, missed -> voicemail
    status_reported         any call                         unchanged (call_status kept)
    mail_received           (new)                            received, or automatic
    mail_forwarded          any mail or call                 received, acknowledged -> forwarded
    mail_acknowledged       any mail or call                 received -> acknowledged
    mail_held, hold_released, follow_up_received, needs_attention:
                            any mail or call                 unchanged
    walk_in_handled         (new)                            handled
    marked_handled          not handled yet                  unchanged (handled_at set; not taken)
    reopened                any                              unchanged (handled_at cleared)
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, case, delete, func, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, object_session

from .db import UTCDateTime
from .errors import TransitionNotAllowed
from .models import Contact, ContactEvent, ContactTaken, MailMessage

log = logging.getLogger(__name__)


class Channel(StrEnum):
    """How the patient reached the desk; the values are the ones stored."""

    CALL = "call"
    MAIL = "mail"
    WALK_IN = "walk-in"


class Outcome(StrEnum):
    """How far a contact got; the values are the ones stored. Calls, then mail, then walk-ins."""

    IN_PROGRESS = "in-progress"
    ANSWERED = "answered"
    FALLBACK = "fallback"  # put through to the desk's fallback number, answered there
    MISSED = "missed"
    VOICEMAIL = "voicemail"
    RECEIVED = "received"  # logged; not forwarded yet
    FORWARDED = "forwarded"
    ACKNOWLEDGED = "acknowledged"  # closed: the patient was told when we answer
    AUTOMATIC = "automatic"  # an out-of-office, a bounce, a list: logged, nothing sent
    HANDLED = "handled"  # a walk-in: dealt with on the spot


CALLS = (Channel.CALL,)
# Mail joins a call's contact when it answers the voicemail notice about that call.
MAIL_THREADS = (Channel.MAIL, Channel.CALL)
RECORDING_DONE = "completed"  # Twilio's RecordingStatus of a recording that can be played


_events = cast(Table, ContactEvent.__table__)
EVENT_ONCE = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(_events)
    .on_conflict_do_nothing(index_elements=[_events.c.contact_id, _events.c.key])
    .returning(_events.c.id)
    for dialect in (postgresql, sqlite)
}


def _require(
    contact: Contact,
    move: str,
    channels: Collection[str],
    outcomes: Collection[str] | None = None,
) -> None:
    """Refuse `move` unless the contact's channel and outcome allow it.

    The outcome only after a `_write` that matched nothing: it has just been read afresh.
    """
    if contact.channel not in channels:
        raise TransitionNotAllowed(contact.reference, move, f"a {contact.channel} contact")
    if outcomes is not None and contact.outcome not in outcomes:
        raise TransitionNotAllowed(
            contact.reference, move, f"a contact whose outcome is {contact.outcome!r}"
        )


def _write(contact: Contact, values: Mapping[str, Any], *when: ColumnElement[bool]) -> bool:
    """Write `values` to the contact's row if the row, as the database holds it, meets `when`.

    True when it did. Either way `contact` holds the row as it is in the database now.
    """
    session = object_session(contact)
    if session is None:
        raise ValueError(f"{contact.reference} is in no session: its move cannot be written")
    session.flush()  # what the request changed before, and the contact's id
    written = session.scalars(
        update(Contact).where(Contact.id == contact.id, *when).values(values).returning(Contact),
        execution_options={"populate_existing": True},
    ).first()
    if written is None:
        session.refresh(contact)
    return written is not None


def _unless(outcomes: Collection[str], then: str) -> ColumnElement[str]:
    """The outcome afterwards: `then` if the database holds one of `outcomes` now, else as is."""
    return case((Contact.outcome.in_(list(outcomes)), then), else_=Contact.outcome)


def _flag(contact: Contact, field: str, to: bool) -> bool:
    """Set a yes/no field; True when it changed."""
    return _write(contact, {field: to}, getattr(Contact, field).is_(not to))


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
    if key is not None:
        # Decided by the unique key: the same callback twice at once adds it once, and the
        # second waits for the first instead of failing its transaction.
        session.flush()
        row = {"contact_id": contact.id, "at": at, "kind": kind, "key": key, "detail": detail}
        once = EVENT_ONCE[session.connection().dialect.name]
        return session.execute(once, row).first() is not None
    # Added by id rather than through `contact.events`, which would load the whole timeline.
    session.add(ContactEvent(contact_id=contact.id, at=at, kind=kind, key=key, detail=detail))
    return True


# --- a call -----------------------------------------------------------------------------


def call_accepted(session: Session, contact: Contact, at: datetime, *, staff: str) -> bool:
    """`staff` takes the call. False when another colleague has it already: theirs it stays.

    The same colleague pressing 1 again is allowed and changes nothing. Two pressing at
    once: the database lets one UPDATE through, and only that one writes "accepted".
    """
    _require(contact, "accept", CALLS)
    allowed = (Outcome.IN_PROGRESS, Outcome.ANSWERED)
    values = {"answered_by": staff or None, "outcome": Outcome.ANSWERED}
    free = or_(Contact.answered_by.is_(None), Contact.answered_by == staff)
    if not _write(contact, values, Contact.outcome.in_(allowed), free):
        _require(contact, "accept", CALLS, allowed)
        return False
    add_event(session, contact, "accepted", at, key=f"accepted:{staff}", staff=staff)
    return True


def not_bridged(contact: Contact) -> bool:
    """A colleague accepted, but the caller was never put through (they hung up meanwhile).

    Not answered after all: back to in progress. False when nobody had accepted.
    """
    _require(contact, "undo the answer of", CALLS)
    answered = (Contact.answered_by.is_not(None), Contact.outcome == Outcome.ANSWERED)
    return _write(contact, {"answered_by": None, "outcome": Outcome.IN_PROGRESS}, *answered)


def answered_at_fallback(contact: Contact) -> bool:
    """The desk's fallback number took the call.

    False when it is already so, or when the end of the call was reported first (the call
    then stays missed, as it always has). Refused after a colleague answered or a voicemail.
    """
    move = "answer at the fallback number"
    _require(contact, move, CALLS)
    if _write(contact, {"outcome": Outcome.FALLBACK}, Contact.outcome == Outcome.IN_PROGRESS):
        return True
    _require(contact, move, CALLS, (Outcome.IN_PROGRESS, Outcome.FALLBACK, Outcome.MISSED))
    return False


def call_ended(contact: Contact, at: datetime, duration: int | None) -> bool:
    """The call is over; nobody took it and it left no message: missed. True if it changed."""
    _require(contact, "end", CALLS)
    values: dict[str, Any] = {
        "ended_at": func.coalesce(Contact.ended_at, literal(at, UTCDateTime())),
        "outcome": _unless((Outcome.IN_PROGRESS,), Outcome.MISSED),
    }
    changes = [Contact.ended_at.is_(None), Contact.outcome == Outcome.IN_PROGRESS]
    if duration is not None:
        values["duration_seconds"] = duration
        changes.append(Contact.duration_seconds.is_distinct_from(duration))
    return _write(contact, values, or_(*changes))


def status_reported(
    session: Session,
    contact: Contact,
    at: datetime,
    *,
    status: str,
    sequence: str,
    seconds: int | None,
) -> bool:
    """Twilio's status callback: its word for the call is kept as it is, known or not."""
    _require(contact, "report the status of", CALLS)
    key = f"status:{status}:{sequence}"
    added = add_event(session, contact, "status", at, key=key, status=status, seconds=seconds)
    contact.call_status = status  # as reported, not judged on anything read: last one stands
    return added


def voicemail_recorded(
    session: Session,
    contact: Contact,
    at: datetime,
    *,
    sid: str,
    status: str,
    seconds: int | None,
    url: str,
) -> bool:
    """Twilio reports a recording. True when it is the call's voicemail, new: tell colleagues.

    Twilio reports one recording twice (the <Record> action and the status callback): the
    second report changes nothing. An answered call keeps "answered".
    """
    _require(contact, "record a voicemail on", CALLS)
    detail = {"status": status, "seconds": seconds, "recording_sid": sid}
    add_event(session, contact, "recording", at, key=f"recording:{sid}:{status}", **detail)
    if status != RECORDING_DONE or not url:
        return False
    values = {
        "recording_sid": sid or None,
        "recording_url": url,
        "recording_seconds": seconds,
        "outcome": _unless((Outcome.IN_PROGRESS, Outcome.MISSED), Outcome.VOICEMAIL),
    }
    if _write(contact, values, Contact.recording_sid.is_(None)):
        return True
    if contact.recording_sid != sid:
        log.warning("call %s has a second recording %s", contact.reference, sid)
    return False


# --- mail -------------------------------------------------------------------------------


def mail_received(
    session: Session,
    *,
    via: str,
    organisation: str,
    caller: str,
    subject: str,
    message_id: str | None,
    automatic: bool,
    needs_attention: bool,
    at: datetime,
    detail: Mapping[str, Any],
) -> Contact:
    """A new mail thread: its contact, and the "mail" event with `detail`."""
    contact = Contact(
        channel=Channel.MAIL,
        via=via,
        organisation=organisation,
        caller=caller,
        started_at=at,
        outcome=Outcome.AUTOMATIC if automatic else Outcome.RECEIVED,
        message_id=message_id,
        subject=subject,
        needs_attention=needs_attention,
    )
    session.add(contact)
    session.flush()  # the reference (from the id) is known from here on
    add_event(session, contact, "mail", at, **detail)
    return contact


def needs_attention(contact: Contact) -> bool:
    """A person must look at the contact (a mail that could not be read)."""
    _require(contact, "ask attention for", MAIL_THREADS)
    return _flag(contact, "needs_attention", True)


def follow_up_received(
    session: Session, contact: Contact, at: datetime, *, attention: bool, detail: Mapping[str, Any]
) -> bool:
    """Another message of the thread arrived; with `attention`, a person must look."""
    _require(contact, "receive a follow-up on", MAIL_THREADS)
    if attention:
        needs_attention(contact)
    return add_event(session, contact, "follow-up", at, **detail)


def mail_forwarded(
    session: Session,
    contact: Contact,
    messages: Iterable[MailMessage],
    colleague: str,
    at: datetime,
) -> bool:
    """`messages` went to `colleague`; a follow-up goes to them too while they are on shift."""
    _require(contact, "forward", MAIL_THREADS)
    for message in messages:
        message.forwarded_to, message.forwarded_at = colleague, at
    values = {
        "forwarded_to": colleague,
        "forwarded_at": at,
        "forward_pending": False,
        "outcome": _unless((Outcome.RECEIVED, Outcome.ACKNOWLEDGED), Outcome.FORWARDED),
    }
    _write(contact, values)
    return add_event(session, contact, "forwarded", at, staff=colleague)


def mail_held(contact: Contact) -> bool:
    """Nobody on shift: the mail waits for the start of the next shift."""
    _require(contact, "hold", MAIL_THREADS)
    return _flag(contact, "forward_pending", True)


def hold_released(contact: Contact) -> bool:
    """The held mail is taken out of the wait, to be forwarded (or held again) now.

    False when it was not held (any more): another worker released it first, and forwards it.
    """
    _require(contact, "release", MAIL_THREADS)
    return _flag(contact, "forward_pending", False)


def mail_acknowledged(session: Session, contact: Contact, at: datetime, *, reason: str) -> bool:
    """The patient was sent an acknowledgement that says when the desk answers."""
    _require(contact, "acknowledge", MAIL_THREADS)
    _write(contact, {"outcome": Outcome.ACKNOWLEDGED}, Contact.outcome == Outcome.RECEIVED)
    return add_event(session, contact, "acknowledged", at, reason=reason)


# --- the desk ---------------------------------------------------------------------------


def walk_in_handled(
    session: Session, *, organisation: str, by: str, topic: str, note: str, at: datetime
) -> Contact:
    """A visit to the service point: a contact handled on the spot."""
    contact = Contact(
        channel=Channel.WALK_IN,
        via="",
        organisation=organisation,
        caller="",  # a visitor is not identified in the log
        started_at=at,
        ended_at=at,
        outcome=Outcome.HANDLED,
        handled_at=at,
        handled_by=by,
        topic=topic,
        note=note,
    )
    session.add(contact)
    session.flush()
    add_event(session, contact, "walk-in", at, by=by, topic=topic)
    return contact


def is_handled(contact: Contact) -> bool:
    return contact.handled_at is not None


def marked_handled(
    session: Session, contact: Contact, at: datetime, *, by: str, topic: str, note: str
) -> None:
    """A colleague dealt with the contact. Refused when someone was first: theirs stands."""
    values = {"handled_at": at, "handled_by": by, "topic": topic, "note": note}
    if not _write(contact, values, Contact.handled_at.is_(None)):
        already = f"a contact already handled by {contact.handled_by}"
        raise TransitionNotAllowed(contact.reference, "mark handled", already)
    # Off the board: nobody is calling it back any more (intake.core.taking).
    session.execute(delete(ContactTaken).where(ContactTaken.contact_id == contact.id))
    add_event(session, contact, "handled", at, by=by, topic=topic)


def reopened(session: Session, contact: Contact, at: datetime, *, by: str) -> bool:
    """The contact needs work again. False when it was open anyway (the form sent twice)."""
    values = {"handled_at": None, "handled_by": None}
    if not _write(contact, values, Contact.handled_at.is_not(None)):
        return False
    add_event(session, contact, "reopened", at, by=by)
    return True
