"""One fetched message into the contact log, and what follows from it.

`ingest` adds rows (the contact or a follow-up on it, the stored message, its timeline)
and queues outgoing mail in the outbox; the poller commits all of it together with the
mailbox position, so a message is finished exactly when its contact is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.core import lifecycle, references
from intake.core.lifecycle import Channel
from intake.core.models import Contact, MailMessage, OutboxMessage
from intake.core.phones import mask
from mail.message import ParsedMail
from mail.parsing import parse_message
from routing.desk import Desk
from routing.mailplan import plan_mail

from .autoreply import no_reply_reasons, reply_address
from .compose import acknowledgement, forward, new_message_id
from .outbox import DEFAULT_ACCOUNT, enqueue, replied_today

log = logging.getLogger(__name__)

REFERENCE_IN_SUBJECT = references.IN_TEXT
ROUND_ROBIN_MEMORY = timedelta(days=7)


@dataclass(frozen=True)
class Outgoing:
    """Where our own mail comes from: the envelope and header sender, and its domain, and
    the SMTP account that sends it (see mail.outbox.account_of)."""

    sender: str
    own_addresses: frozenset[str]
    smtp_account: str = DEFAULT_ACCOUNT

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2] or "localhost"


@dataclass(frozen=True)
class Ingested:
    contact_id: int
    new_contact: bool
    duplicate: bool = False


def dedupe_key(mail: ParsedMail) -> str:
    return mail.message_id or f"sha256:{mail.sha256}"


def event_detail(mail: ParsedMail) -> dict[str, Any]:
    """What the timeline's "mail" or "follow-up" step says of a message."""
    return {
        "subject": mail.subject[:200],
        "attachments": len(mail.attachments),
        "needs_attention": mail.needs_attention,
        "problems": list(mail.problems)[:5],
    }


def organisation_of(desk: Desk, mailbox_address: str) -> str:
    """The organisation a new thread at `mailbox_address` is for: its mailbox's, else the desk."""
    mailbox = desk.mailbox_for(mailbox_address)
    return mailbox.organisation if mailbox else desk.name


def stored_values(
    account: str, uidvalidity: int, uid: int, raw: bytes, mail: ParsedMail, now: datetime
) -> dict[str, Any]:
    """The `MailMessage` columns of a fetched message (all but its contact and forward)."""
    return {
        "mailbox": account,
        "uidvalidity": uidvalidity,
        "uid": uid,
        "dedupe_key": dedupe_key(mail),
        "message_id": mail.message_id,
        "received_at": now,
        "subject": mail.subject[:998],
        "from_address": mail.from_address,
        "from_name": mail.from_name[:320],
        "text": mail.text,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in mail.attachments
        ],
        "automatic": list(mail.automatic),
        "problems": list(mail.problems),
        "needs_attention": mail.needs_attention,
        "size": mail.size,
        "raw": raw,
    }


def log_logged(reference: str, mail: ParsedMail, new_contact: bool) -> None:
    log.info(
        "mail %s from %s: %s",
        reference,
        mask(mail.from_address or "unknown"),
        "automatic" if mail.automatic else ("new" if new_contact else "follow-up"),
    )


def find_thread(session: Session, mail: ParsedMail) -> Contact | None:
    """The contact an answer belongs to: by its references, or the reference in its subject."""
    ids = [*mail.in_reply_to, *reversed(mail.references)]
    if ids:
        known = session.scalars(
            select(MailMessage.contact_id).where(MailMessage.message_id.in_(ids)).limit(1)
        ).first()
        if known is None:
            known = session.scalars(
                select(OutboxMessage.contact_id)
                .where(OutboxMessage.message_id.in_(ids), OutboxMessage.contact_id.is_not(None))
                .limit(1)
            ).first()
        if known is not None:
            return session.get(Contact, known)
    for match in REFERENCE_IN_SUBJECT.finditer(mail.subject):
        contact = session.get(Contact, int(match.group(1)))
        if contact is not None and contact.channel == Channel.MAIL:
            return contact
    return None


def last_forwards(session: Session, now: datetime) -> dict[str, int]:
    """Per colleague, the newest message forwarded to them (ids grow with each message)."""
    return RoundRobin.read(session, now).as_of(now)


@dataclass
class RoundRobin:
    """The round-robin state, read once and then kept up to date by the forwards made here.

    Reading it costs a grouped scan of the stored mail; a poll reads it once per fetch batch
    instead of once a message. Per colleague: the newest message forwarded to them and when.
    """

    newest: dict[str, tuple[int, datetime]]

    @classmethod
    def read(cls, session: Session, now: datetime) -> RoundRobin:
        rows = session.execute(
            select(
                MailMessage.forwarded_to,
                func.max(MailMessage.id),
                func.max(MailMessage.forwarded_at),
            )
            .where(
                MailMessage.forwarded_to.is_not(None),
                MailMessage.forwarded_at >= now - ROUND_ROBIN_MEMORY,
            )
            .group_by(MailMessage.forwarded_to)
        )
        return cls(
            {
                staff: (int(newest), at)
                for staff, newest, at in rows
                if staff and newest is not None and at is not None
            }
        )

    def as_of(self, now: datetime) -> dict[str, int]:
        """What `plan_mail` reads: the forwards of the last ROUND_ROBIN_MEMORY before `now`."""
        since = now - ROUND_ROBIN_MEMORY
        return {staff: newest for staff, (newest, at) in self.newest.items() if at >= since}

    def forwarded(self, staff: str, message_id: int, at: datetime) -> None:
        known = self.newest.get(staff)
        if known is None or known[0] < message_id:
            self.newest[staff] = (message_id, at)

    def copy(self) -> RoundRobin:
        return RoundRobin(dict(self.newest))


def ingest(
    session: Session,
    *,
    desk: Desk,
    account: str,
    mailbox_address: str,
    uidvalidity: int,
    uid: int,
    raw: bytes,
    mail: ParsedMail,
    now: datetime,
    outgoing: Outgoing,
    round_robin: RoundRobin | None = None,
) -> Ingested:
    key = dedupe_key(mail)
    seen = session.scalars(
        select(MailMessage).where(MailMessage.mailbox == account, MailMessage.dedupe_key == key)
    ).first()
    if seen is not None:
        # The same message again (a re-sync after UIDVALIDITY changed): note where it is now.
        seen.uidvalidity, seen.uid = uidvalidity, uid
        return Ingested(seen.contact_id, new_contact=False, duplicate=True)

    detail = event_detail(mail)
    contact = find_thread(session, mail)
    new_contact = contact is None
    if contact is None:
        contact = lifecycle.mail_received(
            session,
            via=mailbox_address,
            organisation=organisation_of(desk, mailbox_address),
            caller=mail.from_address or mail.from_name[:320] or "unknown",
            subject=mail.subject[:998],
            message_id=mail.message_id,
            automatic=bool(mail.automatic),
            needs_attention=mail.needs_attention,
            at=now,
            detail=detail,
        )
    else:
        lifecycle.follow_up_received(
            session, contact, now, attention=mail.needs_attention, detail=detail
        )
    stored = MailMessage(
        contact_id=contact.id,
        **stored_values(account, uidvalidity, uid, raw, mail, now),
    )
    session.add(stored)
    log_logged(contact.reference, mail, new_contact)
    if mail.automatic:
        lifecycle.add_event(session, contact, "automatic", now, reasons=list(mail.automatic))
        return Ingested(contact.id, new_contact)
    waiting = [stored]
    if not new_contact and lifecycle.hold_released(contact):
        # A follow-up to mail held while closed: the earlier mail goes with it, or waits
        # with it. The hold is taken off by the database, so a worker releasing the backlog
        # at this moment cannot forward the same mail too (see `release_held`).
        waiting = [*(m for m in held_messages(session, contact) if m is not stored), stored]
    route(
        session,
        desk=desk,
        contact=contact,
        stored=waiting,
        mail=mail,
        now=now,
        outgoing=outgoing,
        round_robin=round_robin,
    )
    return Ingested(contact.id, new_contact)


def route(
    session: Session,
    *,
    desk: Desk,
    contact: Contact,
    stored: Collection[MailMessage],
    mail: ParsedMail | None,
    now: datetime,
    outgoing: Outgoing,
    round_robin: RoundRobin | None = None,
) -> bool:
    """Forward `stored` to a colleague on shift, or hold them (acknowledging `mail`).

    True when forwarded. Held mail is routed again by `release_held` when a shift starts.
    `round_robin` is the state read earlier in this transaction (read here when None), and
    is brought up to date with the forward made.
    """
    if round_robin is None:
        round_robin = RoundRobin.read(session, now)
    plan = plan_mail(
        desk, now, previous=contact.forwarded_to, last_forwarded=round_robin.as_of(now)
    )
    if plan.action == "forward" and plan.colleague is not None:
        colleague = plan.colleague
        session.flush()  # the stored messages' ids: each forward's row refers to its original
        for message in stored:
            parsed = mail if mail is not None else parse_message(message.raw)
            outgoing_mail = forward(
                desk=desk,
                reference=contact.reference,
                mail=parsed,
                raw=message.raw,
                colleague=colleague,
                sender=outgoing.sender,
                message_id=new_message_id("forward", contact.reference, outgoing.domain),
                at=now,
                received_at=message.received_at,
                mailbox=contact.via,
            )
            enqueue(
                session,
                outgoing_mail,
                kind="forward",
                contact_id=contact.id,
                now=now,
                smtp_account=outgoing.smtp_account,
                original=message,
            )
            # The queued row holds the bytes; the message object (with the original once
            # more, as text) need not live through the flush of a 10 MB mail.
            del outgoing_mail
        lifecycle.mail_forwarded(session, contact, stored, colleague.id, now)
        round_robin.forwarded(colleague.id, max(m.id for m in stored), now)
        return True

    lifecycle.mail_held(contact)
    if mail is None:
        return False
    reasons = list(no_reply_reasons(mail, outgoing.own_addresses))
    to = reply_address(mail)
    if not reasons and to is not None and replied_today(session, to, now, desk.tz):
        reasons.append("already acknowledged today")
    if reasons or to is None:
        lifecycle.add_event(session, contact, "not-acknowledged", now, reasons=reasons)
        return False
    ack = acknowledgement(
        desk=desk,
        reference=contact.reference,
        mail=mail,
        to=to,
        sender=outgoing.sender,
        message_id=new_message_id("ack", contact.reference, outgoing.domain),
        now=now,
        # Nobody on shift while open: no promise of an hour, only that we answer.
        next_opening=plan.next_opening if plan.reason == "closed" else None,
    )
    enqueue(
        session,
        ack,
        kind="acknowledgement",
        contact_id=contact.id,
        now=now,
        auto_reply_to=to,
        smtp_account=outgoing.smtp_account,
    )
    lifecycle.mail_acknowledged(session, contact, now, reason=plan.reason)
    return False


def held_messages(session: Session, contact: Contact) -> list[MailMessage]:
    """The mail of `contact` not forwarded yet, but for what was automatic, oldest first."""
    unsent = session.scalars(
        select(MailMessage)
        .where(MailMessage.contact_id == contact.id, MailMessage.forwarded_to.is_(None))
        .order_by(MailMessage.id)
    ).all()
    return [m for m in unsent if not m.automatic]


def release_held(
    session: Session,
    desk: Desk,
    now: datetime,
    outgoing: Outgoing,
    outgoing_of: Callable[[str], Outgoing] | None = None,
) -> int:
    """Forward the mail held while closed, now that a colleague is on shift. How many.

    `outgoing_of(via)` gives the sender of a contact that came in at the mailbox `via`
    (its own SMTP account); without it every forward goes out as `outgoing`.
    """
    forwarded = 0
    round_robin = RoundRobin.read(session, now)
    held = session.scalars(
        select(Contact)
        .where(Contact.channel == "mail", Contact.forward_pending.is_(True))
        .order_by(Contact.started_at, Contact.id)
    ).all()
    for contact in held:
        # Two workers may release at once, from the same list. Taking the hold off is a
        # conditional UPDATE: the one that took it forwards (or holds it again), the other,
        # waiting on that row until the first commits, finds it taken and leaves it. The
        # mail is read only once the hold is ours. Always in the same order: no deadlock.
        if not lifecycle.hold_released(contact):
            continue
        waiting = held_messages(session, contact)
        if not waiting:
            continue  # all of it was automatic: nothing to forward, and no longer held
        if not route(
            session,
            desk=desk,
            contact=contact,
            stored=waiting,
            mail=None,
            now=now,
            outgoing=outgoing_of(contact.via) if outgoing_of is not None else outgoing,
            round_robin=round_robin,
        ):
            break  # nobody on shift (any more): the rest waits too
        forwarded += len(waiting)
    return forwarded
