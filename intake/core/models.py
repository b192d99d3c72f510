"""Typed SQLAlchemy 2.0 models: the contact log and the stored desk definition."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from . import references
from .db import Base, UTCDateTime
from .references import reference_for as reference_for  # where voice finds it


class Contact(Base):
    """One call, mail or walk-in visit, from first ring to final outcome."""

    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # a lifecycle.Channel
    via: Mapped[str] = mapped_column(String(200), default="")  # the line number or mailbox
    organisation: Mapped[str] = mapped_column(String(200), default="")
    caller: Mapped[str] = mapped_column(String(320), default="")  # E.164, address or as sent
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    # A lifecycle.Outcome. It and the fields below it that say how far the contact got are
    # set by the transitions in intake.core.lifecycle (and a call's first row by contactlog).
    outcome: Mapped[str] = mapped_column(String(32))
    answered_by: Mapped[str | None] = mapped_column(String(100))
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    call_status: Mapped[str | None] = mapped_column(String(32))  # Twilio's last CallStatus
    # The first Message-ID of a mail thread, shown only: threads are found through
    # mail_message and outbox, so no index here (each new contact would write it).
    message_id: Mapped[str | None] = mapped_column(String(998))
    recording_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    recording_seconds: Mapped[int | None] = mapped_column(Integer)
    # Mail: the first message's subject; a person must look when the mail could not be read.
    subject: Mapped[str] = mapped_column(String(998), default="", server_default="")
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The colleague a mail went to (a follow-up goes to the same one when on shift).
    forwarded_to: Mapped[str | None] = mapped_column(String(100))
    forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Received while closed: acknowledged now, forwarded when the next shift starts.
    forward_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Handled by a colleague in the dashboard, with what it was about.
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(320))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    topic: Mapped[str | None] = mapped_column(String(100))

    events: Mapped[list[ContactEvent]] = relationship(
        back_populates="contact",
        order_by="(ContactEvent.at, ContactEvent.id)",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        Index("ix_contact_started_at", "started_at"),
        # Calls answered and not yet ended (whose colleague is busy): a handful of rows at
        # any time, found without reading the day's other calls.
        Index(
            "ix_contact_answered_open",
            "started_at",
            sqlite_where=text("answered_by IS NOT NULL AND ended_at IS NULL"),
            postgresql_where=text("answered_by IS NOT NULL AND ended_at IS NULL"),
        ),
        # The Contacts page: each filter, newest first, without reading the rest of the log.
        Index("ix_contact_channel_started", "channel", "started_at"),
        Index("ix_contact_organisation_started", "organisation", "started_at"),
        Index("ix_contact_outcome_started", "outcome", "started_at"),
        Index(
            "ix_contact_unhandled",
            "started_at",
            sqlite_where=text("handled_at IS NULL"),
            postgresql_where=text("handled_at IS NULL"),
        ),
        # A number or address searched for in full.
        Index("ix_contact_caller", "caller"),
    )

    @property
    def reference(self) -> str:
        return reference_for(self.id)

    @staticmethod
    def id_from_reference(reference: str) -> int | None:
        return references.id_from_reference(reference)


class ContactEvent(Base):
    """A step in a contact's timeline. `key` makes a repeated callback a no-op."""

    __tablename__ = "contact_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    contact: Mapped[Contact] = relationship(back_populates="events")

    __table_args__ = (
        # Also the index for a contact's timeline and the cascade on its removal (its
        # first column), so no index on contact_id alone.
        UniqueConstraint("contact_id", "key", name="uq_contact_event_key"),
    )


class DeskDefinition(Base):
    """Each version of the desk definition ever loaded; the newest is in force."""

    __tablename__ = "desk_definition"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)  # canonical JSON of the TOML document
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(500), default="")


class MailMessage(Base):
    """One message fetched from a helpdesk mailbox, kept with its contact."""

    __tablename__ = "mail_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    mailbox: Mapped[str] = mapped_column(String(320))  # the account: user@host/folder
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    # Message-ID, or "sha256:…" of the headers when there is none: a message seen again
    # (re-sync after a UIDVALIDITY change, a double delivery) is recognised by it.
    dedupe_key: Mapped[str] = mapped_column(String(998))
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    subject: Mapped[str] = mapped_column(String(998), default="")
    from_address: Mapped[str | None] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(320), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    automatic: Mapped[list[str]] = mapped_column(JSON, default=list)
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    # Forwarded to a colleague (None while held for the next shift, or never: automatic).
    forwarded_to: Mapped[str | None] = mapped_column(String(100))
    forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("mailbox", "dedupe_key", name="uq_mail_message_dedupe"),
        Index("ix_mail_message_forwarded", "forwarded_to", "forwarded_at"),
        Index("ix_mail_message_contact", "contact_id"),
    )


class OutboxMessage(Base):
    """A message to send: a forward, an acknowledgement, a voicemail notice, or a colleague's
    link to set a password.

    Sent by the worker with retries; `message_id` is fixed when the row is made, so a
    message sent again after a crash is recognisable as the same one.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    # forward | acknowledgement | voicemail-notice | password-link
    kind: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    mail_from: Mapped[str] = mapped_column(String(320))  # envelope sender
    # Which SMTP account sends it: a [[mailbox]]'s address (lower-case) when that mailbox
    # has its own `smtp`, "" for the INTAKE_SMTP_* account.
    smtp_account: Mapped[str] = mapped_column(String(320), default="", server_default="")
    recipients: Mapped[list[str]] = mapped_column(JSON)
    # For acknowledgements: whom we auto-replied to (at most one a day per sender).
    auto_reply_to: Mapped[str | None] = mapped_column(String(320), index=True)
    raw: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    # A forward of stored mail holds its original once, in mail_message: `raw` is the
    # forward without it, and what is sent is raw[:original_at], the stored message's raw,
    # then raw[original_at:] (mail.outbox). Removed with the stored message.
    original_id: Mapped[int | None] = mapped_column(
        ForeignKey("mail_message.id", ondelete="CASCADE"), index=True
    )
    original_at: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # refused for good
    last_error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
        ),
    )


class MailboxState(Base):
    """How far the poller got in one folder: its UIDVALIDITY and the last UID finished."""

    __tablename__ = "mailbox_state"

    mailbox: Mapped[str] = mapped_column(String(320), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The key of a mailbox's sending side in `mailbox_status`: its own SMTP account.
SENDING = "smtp:"


class MailboxStatus(Base):
    """Whether the poller could read a mailbox last time, and since when that is so; under
    `SENDING` + its address, whether its own SMTP account could send.

    Kept so a mailbox that keeps failing is logged once when it starts failing (and once
    when it works again), not at every poll, and so staff can be shown which one is down.
    """

    __tablename__ = "mailbox_status"

    mailbox: Mapped[str] = mapped_column(String(320), primary_key=True)  # address, lower-case
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime] = mapped_column(UTCDateTime)  # when `ok` and `error` began
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # For monitoring (/readyz, /metrics): the last poll that read it, and how many failed.
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class JobHeartbeat(Base):
    """When each of the scheduler's jobs last finished without an error, and where.

    Written by whichever worker ran the job, read by /readyz and /metrics on every web host:
    the web process may run on another machine than the scheduler.
    """

    __tablename__ = "job_heartbeat"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)  # the job's id
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    host: Mapped[str] = mapped_column(String(200), default="")  # hostname and pid


class Lease(Base):
    """A named lock with an expiry, for databases without advisory locks (SQLite)."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    """A dashboard login: desk staff, or the coordinator who keeps the rota."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default="staff")  # staff | coordinator
    language: Mapped[str] = mapped_column(String(5), default="nl")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A leaver's login is disabled, never deleted: the access record keeps naming them.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_coordinator(self) -> bool:
        return self.role == "coordinator"

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None


class LoginSession(Base):
    """One login on the server: the cookie carries only its token, so ending the row ends
    every copy of that cookie at once (logout, an idle timeout, a disabled login)."""

    __tablename__ = "login_session"

    # sha256 of the token in the cookie: a copy of this table logs nobody in.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Failed logins per typed address (known or not) and per client address: the same
    count and the same wait whether or not an address has a login."""

    __tablename__ = "login_throttle"

    # "account:" or "client:" and the sha256 of that address: no address is kept here.
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactView(Base):
    """Who opened a contact's page, and when: patient data is looked at on the record."""

    __tablename__ = "contact_view"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_contact_view_contact", "contact_id", "at"),)


class ContactTaken(Base):
    """A colleague said "ik bel terug" on the Now page: they call this contact back.

    Not an outcome (the contact still waits) and not kept once the contact is handled; a
    row older than the app's hold time counts as free (intake.core.taking). A login removed
    takes its holds with it.
    """

    __tablename__ = "contact_taken"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    taken_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Topic(Base):
    """What contacts are about; the coordinator keeps the list."""

    __tablename__ = "topic"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SecondFactor(Base):
    """A login's authenticator app (TOTP, RFC 6238). Pending until the colleague has typed
    one code from the app; `last_step` is the 30-second step of the last code used, so a
    code opens one login only."""

    __tablename__ = "second_factor"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    # The base32 key, sealed under the app's SECRET_KEY (intake.shell.second_factor).
    secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_step: Mapped[int | None] = mapped_column(Integer)


class RecoveryCode(Base):
    """A one-time code for a login whose phone is lost; only its sha256 is kept."""

    __tablename__ = "recovery_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginPolicy(Base):
    """What the coordinator asks of every local login; one row (id 1), absent until set."""

    __tablename__ = "login_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    second_factor_required: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(320))


class Callback(Base):
    """A colleague calling a patient back through the helpline: Twilio rings the colleague,
    then the patient, showing the line's number. At most one is under way per contact
    (a partial unique index); `ended_at` says it is over, `status` how."""

    __tablename__ = "callback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    staff: Mapped[str] = mapped_column(String(100))  # the desk definition's staff id
    requested_by: Mapped[str] = mapped_column(String(320))  # the login that pressed it
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)  # the colleague's leg
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_callback_contact", "contact_id", "requested_at"),
        Index(
            "uq_callback_under_way",
            "contact_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )


class AccessEvent(Base):
    """A change to a login, on the record: who did what to whose login, and when.

    `actor` and `subject` keep the addresses as they were, so a row still reads when a
    login is gone; `actor` is "cli" for the command line.
    """

    __tablename__ = "access_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320))
    subject_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    subject: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(40))  # an intake.shell.access.Action
    detail: Mapped[str] = mapped_column(Text, default="")


class PasswordReset(Base):
    """A one-time link to set a password: for a new colleague, or after "forgot it"."""

    __tablename__ = "password_reset"

    # sha256 of the token in the link: a copy of this table sets nobody's password.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class QueueEntry(Base):
    """A caller waiting in a line's queue because every colleague on shift is on a call.

    The order is ours, by `queued_at`: a caller who asked to be called back keeps their
    place (`callback_requested_at`) after hanging up. `left_at` and `result` say how the
    wait ended: "bridged", "voicemail", "hangup", "callback", "error".
    """

    __tablename__ = "call_queue"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[str] = mapped_column(String(32))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queue_sid: Mapped[str | None] = mapped_column(String(64))  # Twilio's, from the wait URL
    callback_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str] = mapped_column(String(16), default="")
    # A callback request is served (a colleague calls back) once; until then it keeps its
    # place among the callers still waiting.
    served_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The colleague being offered this caller now (rung, not yet pressed 1), so a second
    # colleague who frees up at the same moment is offered the next caller instead.
    offered_to: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (Index("ix_call_queue_line", "line", "queued_at"),)


class Announcement(Base):
    """A recording the coordinator uploaded for callers to hear instead of a spoken text.

    Rows are only added: a new upload, or a removal (a row without a token), is the newest
    row for its slot and language, and the newest row decides. So the highest id changes
    with every change, and the voice webhooks know their cached recordings are current by
    reading it beside the desk's version. The audio of a row that was replaced is dropped.
    """

    __tablename__ = "announcement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot: Mapped[str] = mapped_column(String(40))  # a spoken text's key, or "queue_music"
    language: Mapped[str] = mapped_column(String(8))  # "" for music, which has none
    # What Twilio fetches it by: unguessable, and new with every upload, so Twilio's cache
    # of an old recording is never played again. None marks a removal.
    token: Mapped[str | None] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(32), default="")
    audio: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    filename: Mapped[str] = mapped_column(String(200), default="")
    changed_by: Mapped[str] = mapped_column(String(320))  # the login that uploaded or removed
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_announcement_slot", "slot", "language", "id"),)
