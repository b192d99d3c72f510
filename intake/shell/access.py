"""The access record: every change to a login, who made it, to whose login, and when.

Written in the same transaction as the change it records, so the record holds exactly the
changes that happened. The coordinator reads it on the Access log page, beside the record
of who opened which contact (`ContactView`).

`detail` is a few `key=value` words (`old=staff new=coordinator`), readable as they are in
the database and put into words, in the reader's language, by the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from intake.core.models import AccessEvent, User


class Action(StrEnum):
    USER_ADDED = "user_added"
    ROLE_CHANGED = "role_changed"
    DISABLED = "disabled"
    ENABLED = "enabled"
    PASSWORD_RESET_SENT = "password_reset_sent"  # noqa: S105 - a one-time link mailed
    PASSWORD_SET = "password_set"  # noqa: S105 - by a link or `intake create-user`
    SECOND_FACTOR_SET = "second_factor_set"  # an authenticator app confirmed
    SECOND_FACTOR_REMOVED = "second_factor_removed"  # a lost phone: it enrols again
    SECOND_FACTOR_RULE = "second_factor_rule"  # required of every login, or no longer


@dataclass(frozen=True)
class Actor:
    """Who made a change: a logged-in user (their id and address), or the command line."""

    id: int | None
    name: str


CLI = Actor(None, "cli")
# The organisation's identity provider: a first sign-in adds the login, a group moved
# changes its role.
IDENTITY_PROVIDER = Actor(None, "identity provider")


def actor_of(user: object) -> Actor:
    """The logged-in user (Flask-Login's `current_user` or a `User` row) as an actor."""
    return Actor(getattr(user, "id", None), str(getattr(user, "email", "")))


def record(
    session: Session,
    action: Action,
    *,
    actor: Actor,
    subject: User,
    now: datetime,
    **detail: str | int,
) -> AccessEvent:
    """Add one event to `session`'s transaction (the caller commits)."""
    event = AccessEvent(
        at=now,
        actor_id=actor.id,
        actor=actor.name,
        subject_user_id=subject.id,
        subject=subject.email,
        action=str(action),
        detail=" ".join(f"{key}={value}" for key, value in detail.items()),
    )
    session.add(event)
    return event


def detail_of(event: AccessEvent) -> dict[str, str]:
    """An event's `key=value` words as a dict."""
    pairs = (word.partition("=") for word in event.detail.split())
    return {key: value for key, _, value in pairs if key}
