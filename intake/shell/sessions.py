"""Login sessions that live on the server: the cookie holds a random token, the row says
whether it still counts.

Logging out ends the row, so every copy of the cookie stops working at once; so does an
idle timeout and the absolute lifetime (`SESSION_IDLE_TIMEOUT`, `SESSION_MAX_AGE`).
`end_all_sessions` is for disabling a login and for "log out everywhere".
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from intake.core.models import LoginSession, User

IDLE_TIMEOUT = timedelta(hours=8)  # a working day without a click ends the session
MAX_AGE = timedelta(hours=12)  # and no session outlives a long shift
# last_seen_at is written at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=1)
# A session's row is kept this long after it ended or could last be used, for the question
# "who was logged in then", and removed by the retention job after that.
KEEP_ENDED = timedelta(days=30)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: User, now: datetime) -> str:
    """A new session for `user`; the token for its cookie (never stored as such)."""
    token = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            token_hash=token_hash(token), user_id=user.id, created_at=now, last_seen_at=now
        )
    )
    return token


def end_session(session: Session, token: str, now: datetime) -> None:
    session.execute(
        update(LoginSession)
        .where(LoginSession.token_hash == token_hash(token), LoginSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_all_sessions(
    session: Session, user_id: int, now: datetime, *, keep: str | None = None
) -> int:
    """End every open session of a user (a disabled login, "log out everywhere"); `keep`:
    the token of one to leave open (the browser that set a new password)."""
    statement = update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.ended_at.is_(None)
    )
    if keep is not None:
        statement = statement.where(LoginSession.token_hash != token_hash(keep))
    result = session.execute(statement.values(ended_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def _limits() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return config.get("SESSION_IDLE_TIMEOUT", IDLE_TIMEOUT), config.get("SESSION_MAX_AGE", MAX_AGE)


def user_of_session(session: Session, token: str, now: datetime) -> User | None:
    """The user of a live session, its last use noted; None when ended, idle or too old,
    or when the login is disabled (whose sessions are ended too, but this does not rely on
    that)."""
    row = session.get(LoginSession, token_hash(token))
    if row is None or row.ended_at is not None:
        return None
    idle, max_age = _limits()
    if now - row.last_seen_at > idle or now - row.created_at > max_age:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        # Conditional, so two requests at once write it once; its own commit, made before
        # the view runs (the session is loaded first thing in a request).
        session.execute(
            update(LoginSession)
            .where(
                LoginSession.token_hash == row.token_hash,
                LoginSession.last_seen_at <= now - TOUCH_EVERY,
                LoginSession.ended_at.is_(None),
            )
            .values(last_seen_at=now)
        )
        session.commit()
    return user


def open_sessions(session: Session, user_id: int) -> list[LoginSession]:
    return list(
        session.scalars(
            select(LoginSession).where(
                LoginSession.user_id == user_id, LoginSession.ended_at.is_(None)
            )
        )
    )


def purge_sessions(session: Session, now: datetime, max_age: timedelta = MAX_AGE) -> int:
    """Remove the rows of sessions that ended, or outlived `max_age`, over KEEP_ENDED ago."""
    cutoff = now - KEEP_ENDED
    result = session.execute(
        delete(LoginSession).where(
            or_(LoginSession.ended_at < cutoff, LoginSession.created_at < cutoff - max_age)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
