"""The contact log's mail moves for many messages at once: the ordinary mail of a fetch batch.

The same moves as `lifecycle.mail_received`, `follow_up_received` and `mail_forwarded`,
with the same rows, values and timeline events, written as one multi-row statement per
kind instead of a few statements per message: a new thread's contact (written as received
and forwarded at once leave it), a follow-up on a thread, and the forward of a follow-up.
The poller sends only plain cases this way (see `mail.batch`); anything else goes through
`lifecycle` one message at a time.

Concurrency is decided as in `lifecycle`: a thread's row is read with a row lock
(`lock_threads`, FOR UPDATE on PostgreSQL; on SQLite the batch holds the one write lock),
so what a follow-up is judged on stays so until the batch commits; the forward of a
follow-up is the same conditional UPDATE (the outcome a CASE on the stored one) as
`mail_forwarded`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, or_, select, update
from sqlalchemy.orm import Session

from .db import UTCDateTime, insert_many
from .lifecycle import MAIL_THREADS, Channel, Outcome
from .models import Contact, ContactEvent

_CONTACTS = cast(Table, Contact.__table__)
_EVENTS = cast(Table, ContactEvent.__table__)

_FORWARDED = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("contact"))
    .values(
        forwarded_to=bindparam("staff"),
        forwarded_at=bindparam("at", type_=UTCDateTime()),
        forward_pending=False,
        outcome=case(
            # Not IN: an expanding list cannot go into one statement for many rows.
            (
                or_(
                    _CONTACTS.c.outcome == Outcome.RECEIVED,
                    _CONTACTS.c.outcome == Outcome.ACKNOWLEDGED,
                ),
                Outcome.FORWARDED,
            ),
            else_=_CONTACTS.c.outcome,
        ),
    )
)


@dataclass(frozen=True)
class NewThread:
    """A mail that starts a thread: what `lifecycle.mail_received` is given, and the
    colleague it goes to at once, if any (`mail_forwarded` then, at the same moment)."""

    via: str
    organisation: str
    caller: str
    subject: str
    message_id: str | None
    needs_attention: bool
    at: datetime
    forwarded_to: str | None = None


@dataclass(frozen=True)
class Thread:
    """A thread's contact as the database holds it, locked for the batch."""

    id: int
    channel: str
    via: str
    forwarded_to: str | None
    forward_pending: bool

    @property
    def takes_mail(self) -> bool:
        """A follow-up may join it (a mail thread, or a call whose notice was answered)."""
        return self.channel in MAIL_THREADS


def lock_threads(session: Session, ids: Collection[int]) -> dict[int, Thread]:
    """The contacts `ids` that exist, read under a row lock held until the batch commits."""
    if not ids:
        return {}
    query = select(
        _CONTACTS.c.id,
        _CONTACTS.c.channel,
        _CONTACTS.c.via,
        _CONTACTS.c.forwarded_to,
        _CONTACTS.c.forward_pending,
    ).where(_CONTACTS.c.id.in_(sorted(ids)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.order_by(_CONTACTS.c.id).with_for_update()
    return {
        row.id: Thread(row.id, row.channel, row.via, row.forwarded_to, bool(row.forward_pending))
        for row in session.execute(query)
    }


def threads_started(session: Session, threads: Sequence[NewThread]) -> list[int]:
    """New mail contacts, one per thread: their ids, in the same order.

    A thread with a colleague to go to is written as `mail_received` and `mail_forwarded`
    leave it (outcome forwarded), so its row is written once, not inserted and then
    updated: an update that changes the outcome touches every index of the contact (no
    HOT update on PostgreSQL) and leaves a dead row. Its "forwarded" step is
    `forward_step`; the "mail" ones come with `timeline`, once the messages are logged.
    """
    if not threads:
        return []
    rows = [
        {
            "channel": Channel.MAIL.value,
            "via": t.via,
            "organisation": t.organisation,
            "caller": t.caller,
            "started_at": t.at,
            "outcome": (Outcome.RECEIVED if t.forwarded_to is None else Outcome.FORWARDED).value,
            "message_id": t.message_id,
            "subject": t.subject,
            "needs_attention": t.needs_attention,
            "forwarded_to": t.forwarded_to,
            "forwarded_at": None if t.forwarded_to is None else t.at,
            "forward_pending": False,
        }
        for t in threads
    ]
    return insert_many(session, _CONTACTS, rows)


def dropped(session: Session, contact_ids: Collection[int]) -> None:
    """Take back contacts `threads_started` made in this transaction whose mail then could
    not be handled in the batch (it is handled again alone); nothing else refers to them."""
    if contact_ids:
        session.execute(_CONTACTS.delete().where(_CONTACTS.c.id.in_(sorted(contact_ids))))


@dataclass(frozen=True)
class Step:
    """One step on a contact's timeline: `kind` with `detail`, as `lifecycle.add_event`."""

    contact_id: int
    kind: str
    at: datetime
    detail: Mapping[str, Any]


def timeline(session: Session, steps: Sequence[Step]) -> None:
    """Add the steps, in their order (a thread's "mail" or "follow-up", then "forwarded")."""
    rows = [
        {
            "contact_id": s.contact_id,
            "at": s.at,
            "kind": s.kind,
            "key": None,
            "detail": dict(s.detail),
        }
        for s in steps
    ]
    insert_many(session, _EVENTS, rows, returning=False)


def forwarded(session: Session, forwards: Sequence[tuple[int, str, datetime]]) -> None:
    """The threads went to these colleagues (contact id, staff id, when): what
    `lifecycle.mail_forwarded` writes to each contact. Its step for `timeline` is
    `forward_step`."""
    if forwards:
        session.execute(
            _FORWARDED,
            [{"contact": contact, "staff": staff, "at": at} for contact, staff, at in forwards],
        )


def forward_step(contact_id: int, staff: str, at: datetime) -> Step:
    """The "forwarded" step of a thread that went to `staff` (`forwarded`, `threads_started`)."""
    return Step(contact_id, "forwarded", at, {"staff": staff})
