"""The ordinary mail of a fetch batch, logged and forwarded a group at a time.

Most mail a desk gets while it is open is plain: a patient starts a thread, or writes again
on a thread that is not held, and it goes to a colleague on shift. `Lane` takes such
messages in the batch's order and writes a group of them together: each kind of row (the
contacts, the stored messages, the timeline, the outbox) one statement for the group, the
same rows, events and forwards `mail.ingest.ingest` writes a message at a time with a few
statements each. What the batch reads to judge its messages (which were seen before, which
threads their ids and subjects name, those threads' rows, under a row lock) is read once.

A follow-up on a thread the lane wrote to in this same batch (one it started, or a stored
one it forwarded a follow-up on) is taken too: that thread's state is what the lane wrote (a
mail thread, forwarded to the colleague it chose, not held), so the follow-up is judged as
`mail.ingest` would judge it once the earlier mail is stored.

Anything else is not taken, and the poller ingests it alone, as before, after writing the
group so far (so the database sees the mailbox's order): a message seen before or twice in
the batch, automatic mail, mail to hold or acknowledge, a follow-up that needs a person or
whose thread is held, is not a mail thread, was written to by a message of this batch
ingested alone, answers a message of this batch the lane did not take, or is named
ambiguously. A message whose forward cannot be made is handed back too: its group is
written without it and without what follows on its thread, and the poller ingests those
alone, in order (where one is logged bare, for a person, if it fails again).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from intake.core import mailbatch
from intake.core.db import insert_many
from intake.core.lifecycle import Channel
from intake.core.mailbatch import NewThread, Step, Thread
from intake.core.models import MailMessage, OutboxMessage
from intake.core.references import reference_for
from mail.message import ParsedMail
from routing.desk import Desk, Staff
from routing.mailplan import plan_mail

from .compose import forward, new_message_id
from .ingest import (
    REFERENCE_IN_SUBJECT,
    Outgoing,
    RoundRobin,
    dedupe_key,
    event_detail,
    log_logged,
    organisation_of,
    stored_values,
)
from .outbox import insert_rows, outbox_row

log = logging.getLogger(__name__)

GROUP_BYTES = 2 * 1024 * 1024  # a group is written once its messages hold about this much
# Round-robin numbers for forwards planned but not written yet: above every stored id, in
# order; replaced by the stored messages' ids when the group is written.
_PLANNED = 1 << 62

_MESSAGES = cast(Table, MailMessage.__table__)


class _Alone:
    """What `Lane._thread` gives for a message the lane does not take."""


_ALONE = _Alone()


@dataclass
class Fetched:
    """One message of the batch: its UID, bytes, what the parser read, when it was seen."""

    uid: int
    raw: bytes
    mail: ParsedMail
    now: datetime


@dataclass(eq=False)
class _Taken:
    fetched: Fetched
    colleague: Staff
    thread: Thread | None  # the thread it follows up, as the database held it before
    parent: _Taken | None = None  # or: the message that started its thread in this batch
    contact_id: int = 0
    failed: bool = False  # its forward could not be made: handed back to be ingested alone
    # Of a message that starts a thread: to whom its thread went last, as the lane wrote it.
    forwarded_to: str = ""

    @property
    def starts_thread(self) -> bool:
        return self.thread is None and self.parent is None

    @property
    def on_thread(self) -> int | _Taken:
        """Its thread: a stored contact's id, or the message that started it in this batch."""
        if self.thread is not None:
            return self.thread.id
        return self.parent if self.parent is not None else self


@dataclass
class Lane:
    """The batch's plain messages, `take`n in order and `write`n a group at a time."""

    session: Session
    desk: Desk
    account: str
    uidvalidity: int
    mailbox_address: str
    outgoing: Outgoing
    round_robin: RoundRobin  # the batch's, kept up to date by what is written
    seen: set[str] = field(default_factory=set)  # dedupe keys stored before the batch
    by_message: dict[str, set[int]] = field(default_factory=dict)  # Message-ID -> contacts
    by_outbox: dict[str, set[int]] = field(default_factory=dict)
    threads: dict[int, Thread] = field(default_factory=dict)
    # What this batch showed so far: keys, and Message-IDs with the thread the lane took
    # each onto (None: not taken, or the id came twice). `threads` is kept as the lane
    # writes to them; `touched` are the contacts written to by a message ingested alone.
    keys: set[str] = field(default_factory=set)
    message_ids: dict[str, int | _Taken | None] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)
    pending: list[_Taken] = field(default_factory=list)
    pending_bytes: int = 0
    planned: RoundRobin | None = None
    written: int = 0  # messages written by the lane

    @classmethod
    def open(
        cls,
        session: Session,
        *,
        desk: Desk,
        account: str,
        uidvalidity: int,
        mailbox_address: str,
        outgoing: Outgoing,
        round_robin: RoundRobin,
        mails: list[ParsedMail],
    ) -> Lane:
        """A lane for the batch `mails`, with what it needs read in a few statements."""
        lane = cls(session, desk, account, uidvalidity, mailbox_address, outgoing, round_robin)
        keys = sorted({dedupe_key(m) for m in mails})
        if keys:
            lane.seen = set(
                session.scalars(
                    select(MailMessage.dedupe_key).where(
                        MailMessage.mailbox == account, MailMessage.dedupe_key.in_(keys)
                    )
                )
            )
        ids = sorted({i for m in mails for i in (*m.in_reply_to, *m.references)})
        if ids:
            answered = (
                select(MailMessage.message_id, MailMessage.contact_id).where(
                    MailMessage.message_id.in_(ids)
                ),
                select(OutboxMessage.message_id, OutboxMessage.contact_id).where(
                    OutboxMessage.message_id.in_(ids), OutboxMessage.contact_id.is_not(None)
                ),
            )
            for found, query in zip((lane.by_message, lane.by_outbox), answered, strict=True):
                for message_id, contact_id in session.execute(query):
                    if message_id is not None and contact_id is not None:
                        found.setdefault(message_id, set()).add(contact_id)
        named = {
            int(m.group(1)) for mail in mails for m in REFERENCE_IN_SUBJECT.finditer(mail.subject)
        }
        named |= {
            c for found in (lane.by_message, lane.by_outbox) for s in found.values() for c in s
        }
        lane.threads = mailbatch.lock_threads(session, named)
        return lane

    # --- taking -------------------------------------------------------------------------

    def take(self, fetched: Fetched) -> bool:
        """Whether the lane takes the message (to be written with its group), else False:
        the caller writes the group (`write`) and ingests the message alone."""
        mail = fetched.mail
        key = dedupe_key(mail)
        taken = self._take(fetched, self._thread(mail, key))
        self.keys.add(key)
        if mail.message_id:
            first = mail.message_id not in self.message_ids
            on = taken.on_thread if taken is not None and first else None
            self.message_ids[mail.message_id] = on
        return taken is not None

    def _take(self, fetched: Fetched, thread: Thread | _Taken | _Alone | None) -> _Taken | None:
        mail = fetched.mail
        if isinstance(thread, _Alone):
            return None
        if thread is not None and mail.needs_attention:
            return None
        if isinstance(thread, _Taken):  # a thread started in this batch, as the lane wrote it
            if thread.failed or thread.contact_id in self.touched:
                return None
            previous: str | None = thread.forwarded_to
        elif thread is not None:
            if thread.id in self.touched or thread.forward_pending or not thread.takes_mail:
                return None
            previous = thread.forwarded_to
        else:
            previous = None
        if not self.pending:
            self.planned = self.round_robin.copy()
        assert self.planned is not None
        plan = plan_mail(
            self.desk,
            fetched.now,
            previous=previous,
            last_forwarded=self.planned.as_of(fetched.now),
        )
        if plan.action != "forward" or plan.colleague is None:
            return None
        colleague = plan.colleague
        self.planned.forwarded(colleague.id, _PLANNED + len(self.pending), fetched.now)
        if isinstance(thread, _Taken):
            taken = _Taken(fetched, colleague, None, parent=thread)
            thread.forwarded_to = colleague.id
        else:
            taken = _Taken(fetched, colleague, thread, forwarded_to=colleague.id)
            if thread is not None:
                self.threads[thread.id] = replace(thread, forwarded_to=colleague.id)
        self.pending.append(taken)
        self.pending_bytes += len(fetched.raw)
        return taken

    def _thread(self, mail: ParsedMail, key: str) -> Thread | _Taken | _Alone | None:
        """The thread `mail` follows up (None: it starts one; a `_Taken`: the message that
        started it in this batch), or `_ALONE`: not for the lane.

        As `mail.ingest.find_thread` finds it: by the ids it answers (our stored messages
        first, then our own mail), else the first reference in its subject to a mail thread.
        """
        if key in self.seen or key in self.keys or mail.automatic:
            return _ALONE
        ids = (*mail.in_reply_to, *mail.references)
        in_batch = {self.message_ids[i] for i in ids if i in self.message_ids}
        if in_batch:  # stored in this batch: with the threads stored before, one at most
            on = in_batch | {c for i in ids for c in self.by_message.get(i, ())}
            if None in on or len(on) > 1:
                return _ALONE  # a message the lane did not take, or more than one thread
            [handle] = on
            if isinstance(handle, _Taken):
                return handle
            return self.threads.get(handle, _ALONE) if handle is not None else _ALONE
        for found in (self.by_message, self.by_outbox):
            contacts = {c for i in ids for c in found.get(i, ())}
            if len(contacts) > 1:
                return _ALONE  # which one `find_thread` takes is not defined: leave it to it
            if contacts:
                return self.threads.get(contacts.pop(), _ALONE)
        for match in REFERENCE_IN_SUBJECT.finditer(mail.subject):
            thread = self.threads.get(int(match.group(1)))
            if thread is None:
                return _ALONE  # no such contact before the batch; one may be made in it
            if thread.channel == Channel.MAIL:
                return thread
        return None

    @property
    def full(self) -> bool:
        return self.pending_bytes >= GROUP_BYTES

    def touched_alone(self, contact_id: int | None) -> None:
        """A message ingested alone wrote to this contact: the lane's copy of it is stale."""
        if contact_id is not None:
            self.touched.add(contact_id)

    # --- writing ------------------------------------------------------------------------

    def write(self) -> list[Fetched]:
        """Write the messages taken since the last write. Those whose forward could not be
        made are left out and returned, for the caller to ingest alone."""
        taken, self.pending, self.pending_bytes, self.planned = self.pending, [], 0, None
        if not taken:
            return []
        session = self.session
        new = [t for t in taken if t.starts_thread]
        ids = mailbatch.threads_started(session, [self._new_thread(t) for t in new])
        for t, contact_id in zip(new, ids, strict=True):
            t.contact_id = contact_id
        for t in taken:
            if t.thread is not None:
                t.contact_id = t.thread.id
            elif t.parent is not None:
                t.contact_id = t.parent.contact_id

        outbox: list[dict[str, Any]] = []
        done: list[_Taken] = []
        failed: list[_Taken] = []
        broken: set[int | _Taken] = set()  # threads with a message handed back
        for t in taken:
            if t.on_thread not in broken:
                try:
                    outbox.append(self._forward(t))
                    done.append(t)
                    continue
                except Exception:
                    log.exception("could not forward message %s of %s", t.fetched.uid, self.account)
            # Handed back, and so is what follows on its thread: alone, in the mailbox's order.
            t.failed = True
            broken.add(t.on_thread)
            failed.append(t)
        mailbatch.dropped(session, [t.contact_id for t in failed if t.starts_thread])
        if done:
            stored = self._store(done)
            for row, message_id in zip(outbox, stored, strict=True):
                if row["original_at"] is not None:  # the forward holds the stored bytes
                    row["original_id"] = message_id
            insert_rows(session, outbox)
        self.written += len(done)
        return [t.fetched for t in failed]

    def _new_thread(self, t: _Taken) -> NewThread:
        """The thread `t` starts, forwarded to its colleague (if it cannot be, it is taken
        out again and ingested alone)."""
        fetched = t.fetched
        mail = fetched.mail
        return NewThread(
            via=self.mailbox_address,
            organisation=organisation_of(self.desk, self.mailbox_address),
            caller=mail.from_address or mail.from_name[:320] or "unknown",
            subject=mail.subject[:998],
            message_id=mail.message_id,
            needs_attention=mail.needs_attention,
            at=fetched.now,
            forwarded_to=t.colleague.id,
        )

    def _forward(self, t: _Taken) -> dict[str, Any]:
        reference = reference_for(t.contact_id)
        fetched, outgoing = t.fetched, self.outgoing
        message = forward(
            desk=self.desk,
            reference=reference,
            mail=fetched.mail,
            raw=fetched.raw,
            colleague=t.colleague,
            sender=outgoing.sender,
            message_id=new_message_id("forward", reference, outgoing.domain),
            at=fetched.now,
            received_at=fetched.now,
            mailbox=t.thread.via if t.thread is not None else self.mailbox_address,
        )
        return outbox_row(
            message,
            kind="forward",
            contact_id=t.contact_id,
            now=fetched.now,
            smtp_account=outgoing.smtp_account,
            original=fetched.raw,
        )

    def _store(self, done: list[_Taken]) -> list[int]:
        """The stored messages, the contacts' forwards and the timeline of `done`; the
        stored messages' ids, in order."""
        session = self.session
        rows = []
        for t in done:
            f = t.fetched
            values = stored_values(self.account, self.uidvalidity, f.uid, f.raw, f.mail, f.now)
            values.update(contact_id=t.contact_id, forwarded_to=t.colleague.id, forwarded_at=f.now)
            rows.append(values)
        message_ids = insert_many(session, _MESSAGES, rows, blob="raw")
        del rows
        mailbatch.forwarded(  # new threads were written forwarded (threads_started)
            session,
            [(t.contact_id, t.colleague.id, t.fetched.now) for t in done if not t.starts_thread],
        )
        steps: list[Step] = []
        for t in done:
            f = t.fetched
            kind = "mail" if t.starts_thread else "follow-up"
            steps += [
                Step(t.contact_id, kind, f.now, event_detail(f.mail)),
                mailbatch.forward_step(t.contact_id, t.colleague.id, f.now),
            ]
        mailbatch.timeline(session, steps)
        for t, message_id in zip(done, message_ids, strict=True):
            self.round_robin.forwarded(t.colleague.id, int(message_id), t.fetched.now)
            log_logged(reference_for(t.contact_id), t.fetched.mail, t.starts_thread)
        return [int(i) for i in message_ids]
