"""Who is calling a waiting contact back: "ik bel terug" on the desk's board.

The board is the pile of work waiting for someone (voicemails, missed calls, mail not handled
yet). A colleague *takes* an item so no two colleagues call one patient back; the item then
names them and since when. Taking is not a move of the contact's outcome (a voicemail stays a
voicemail until it is marked handled, which clears the hold: `lifecycle.marked_handled`), so
it is written here, not through the transitions.

A hold lasts `hold` (the app's TAKE_MINUTES, 30 minutes unless set): after that the item
counts as free again, both when the board is read (`holds`) and in the WHERE of the next
take. No job frees it; time does.

Who wins is decided by the database: a take is one INSERT … ON CONFLICT DO UPDATE … WHERE
into `contact_taken` (one row per item, keyed by the contact), and whether it wrote a row
says what happened. Two colleagues taking one item at once: the second statement waits for
the first (PostgreSQL's unique index and row lock, SQLite's one writer) and is judged on
what the first wrote, so it finds the item held and its colleague is asked first. The
contact is read FOR UPDATE in the same statement, so a colleague marking it handled at that
moment is waited for too, and a handled contact is never taken.

    take(...)                 the item is free, mine, or held too long  -> Taken
      with take_over=True     any hold                                  -> Taken
    otherwise                 someone else holds it                     -> HeldBy(who, since)
                              handled, or not waiting (any more)        -> NotWaiting
    release(...)              mine                                      -> True, else False
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .lifecycle import Outcome
from .models import Contact, ContactTaken, User

# Work waiting for someone: voicemails, missed calls, mail not handled yet.
WAITING_OUTCOMES = (
    Outcome.VOICEMAIL,
    Outcome.MISSED,
    Outcome.RECEIVED,
    Outcome.ACKNOWLEDGED,
    Outcome.FORWARDED,
)

# How long a colleague's "ik bel terug" holds an item when the app does not say otherwise:
# long enough for a call back and its note, short enough that a forgotten one returns the
# same morning.
DEFAULT_HOLD = timedelta(minutes=30)


@dataclass(frozen=True)
class Taken:
    """The item is now held by the one who asked, from `at`."""

    at: datetime


@dataclass(frozen=True)
class HeldBy:
    """Someone else holds the item: their address and since when."""

    email: str
    since: datetime


@dataclass(frozen=True)
class NotWaiting:
    """Handled (or otherwise off the board) meanwhile: nothing to call back."""

    handled_by: str | None


TakeResult = Taken | HeldBy | NotWaiting


@dataclass(frozen=True)
class Hold:
    """Who holds an item on the board now."""

    user_id: int
    email: str
    since: datetime


def is_waiting() -> ColumnElement[bool]:
    """On the board: not handled, and an outcome someone still has to act on."""
    return and_(Contact.handled_at.is_(None), Contact.outcome.in_(WAITING_OUTCOMES))


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    name = session.connection().dialect.name
    if name == "postgresql":
        return postgresql.insert(ContactTaken)
    if name == "sqlite":
        return sqlite.insert(ContactTaken)
    raise NotImplementedError(f"taking items is not written for {name}")


def take(
    session: Session,
    contact_id: int,
    user_id: int,
    now: datetime,
    *,
    hold: timedelta = DEFAULT_HOLD,
    take_over: bool = False,
) -> TakeResult | None:
    """`user_id` takes the item at `now`; None when there is no such contact.

    Without `take_over` another colleague's hold that still counts is kept and named; with
    it (they were asked and confirmed) the hold moves to `user_id`. An item handled or off the
    board is never taken.
    """
    item = (
        select(Contact.id, literal(user_id), literal(now, ContactTaken.taken_at.type))
        .where(Contact.id == contact_id, is_waiting())
        .with_for_update()
    )
    insert = _insert(session)
    statement = insert.from_select(["contact_id", "taken_by_id", "taken_at"], item)
    # The held row stays unless it is mine already or its hold ran out (or it is taken over).
    free = or_(ContactTaken.taken_by_id == user_id, ContactTaken.taken_at < now - hold)
    statement = statement.on_conflict_do_update(
        index_elements=[ContactTaken.contact_id],
        set_={"taken_by_id": insert.excluded.taken_by_id, "taken_at": insert.excluded.taken_at},
        where=None if take_over else free,
    )
    # A hold given back between the statement and the read that explains it makes the item
    # free again: try once more rather than name a holder who is gone.
    for _attempt in range(3):
        written = session.execute(statement.returning(ContactTaken.contact_id)).first()
        if written is not None:
            return Taken(now)
        row = session.execute(
            select(Contact.handled_at, Contact.handled_by, Contact.outcome).where(
                Contact.id == contact_id
            )
        ).first()
        if row is None:
            return None
        if row.handled_at is not None or row.outcome not in WAITING_OUTCOMES:
            return NotWaiting(row.handled_by)
        held = holds(session, [contact_id], now, hold).get(contact_id)
        if held is not None and held.user_id != user_id:
            return HeldBy(held.email, held.since)
    raise RuntimeError(f"contact {contact_id} is neither free nor held: taking it keeps failing")


def release(session: Session, contact_id: int, user_id: int) -> bool:
    """`user_id` gives the item back; False when they did not hold it (any more)."""
    released = session.execute(
        delete(ContactTaken)
        .where(ContactTaken.contact_id == contact_id, ContactTaken.taken_by_id == user_id)
        .returning(ContactTaken.contact_id)
    ).first()
    return released is not None


def holds(
    session: Session, contact_ids: list[int], now: datetime, hold: timedelta = DEFAULT_HOLD
) -> dict[int, Hold]:
    """Who holds each of the items at `now`, by contact id; an item whose hold ran out (or that
    nobody took) is not in it."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(ContactTaken.contact_id, ContactTaken.taken_by_id, ContactTaken.taken_at, User.email)
        .join(User, User.id == ContactTaken.taken_by_id)
        .where(ContactTaken.contact_id.in_(contact_ids), ContactTaken.taken_at >= now - hold)
    )
    return {row.contact_id: Hold(row.taken_by_id, row.email, row.taken_at) for row in rows}
