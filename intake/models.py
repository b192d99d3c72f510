"""Typed SQLAlchemy 2.0 models: the contact log and the stored desk definition."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, UTCDateTime

REFERENCE_PREFIX = "HD-"


def reference_for(contact_id: int) -> str:
    return f"{REFERENCE_PREFIX}{contact_id:06d}"


class Contact(Base):
    """One call, mail or walk-in visit, from first ring to final outcome."""

    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # call | mail | walk-in
    via: Mapped[str] = mapped_column(String(200), default="")  # the line number or mailbox
    organisation: Mapped[str] = mapped_column(String(200), default="")
    caller: Mapped[str] = mapped_column(String(320), default="")  # E.164, address or as sent
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    # in-progress | answered | missed | voicemail (later: forwarded, acknowledged)
    outcome: Mapped[str] = mapped_column(String(32), default="in-progress")
    answered_by: Mapped[str | None] = mapped_column(String(100))
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    call_status: Mapped[str | None] = mapped_column(String(32))  # Twilio's last CallStatus
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    recording_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    recording_seconds: Mapped[int | None] = mapped_column(Integer)

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
    )

    @property
    def reference(self) -> str:
        return reference_for(self.id)

    @staticmethod
    def id_from_reference(reference: str) -> int | None:
        text = reference.strip().upper()
        if not text.startswith(REFERENCE_PREFIX):
            return None
        digits = text[len(REFERENCE_PREFIX) :]
        return int(digits) if digits.isdigit() else None


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
        UniqueConstraint("contact_id", "key", name="uq_contact_event_key"),
        Index("ix_contact_event_contact", "contact_id"),
    )


class DeskDefinition(Base):
    """Each version of the desk definition ever loaded; the newest is in force."""

    __tablename__ = "desk_definition"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)  # canonical JSON of the TOML document
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(500), default="")
