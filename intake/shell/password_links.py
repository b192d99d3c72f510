"""One-time links to set a password: mailed to a new colleague, or to one who forgot theirs.

The link carries a random token; only its sha256 is stored, so a copy of the table sets
nobody's password. A link works once, for LINK_VALID: using it is one conditional UPDATE
(`used_at` set where it is still empty and the link not expired), so two uses of one link
at the same moment change the password once. A new link replaces the login's earlier
unused ones, and disabling a login drops them (intake.shell.accounts).

The mail goes through the outbox, so an SMTP outage delays it and loses nothing; it is
written in the colleague's language, from the desk's sender, with the link built from
INTAKE_PUBLIC_URL.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, url_for
from flask_babel import force_locale, gettext
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from intake.core.deskstore import current_desk
from intake.core.errors import IntakeError, NoDeskError
from intake.core.models import PasswordReset, User
from intake.shell.access import Action, Actor, record
from intake.shell.auth import hash_password
from intake.shell.sessions import KEEP_ENDED, end_all_sessions
from mail.loginmail import KIND, password_link
from mail.outbox import enqueue

LINK_VALID = timedelta(hours=24)


class NoSender(IntakeError):
    """Neither INTAKE_SMTP_FROM nor a desk address to send the link from."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute link to a dashboard page, for a mail: on INTAKE_PUBLIC_URL when set."""
    public = str(current_app.config.get("PUBLIC_URL", "") or "")
    if public:
        return public.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def issue(session: Session, user: User, now: datetime) -> str:
    """A new link's token for `user` (earlier unused links stop working)."""
    session.execute(
        delete(PasswordReset).where(
            PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)
        )
    )
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(
            token_hash=_hash(token), user_id=user.id, created_at=now, expires_at=now + LINK_VALID
        )
    )
    return token


def user_of_link(session: Session, token: str, now: datetime) -> User | None:
    """The login a link is for while it still works (unused, not expired, login enabled)."""
    return session.scalars(
        select(User)
        .join(PasswordReset, PasswordReset.user_id == User.id)
        .where(
            PasswordReset.token_hash == _hash(token),
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
            User.disabled_at.is_(None),
        )
    ).first()


def set_password(
    session: Session, token: str, password: str, now: datetime, *, keep_session: str | None = None
) -> User | None:
    """Use the link: set the password, end the login's other sessions, record it. The login;
    None when the link no longer works (used, expired, unknown, or the login disabled)."""
    password_hash = hash_password(password)  # the slow part, before anything is held
    enabled = select(User.id).where(User.disabled_at.is_(None)).scalar_subquery()
    result = session.execute(
        update(PasswordReset)
        .where(
            PasswordReset.token_hash == _hash(token),
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
            PasswordReset.user_id.in_(enabled),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    link = session.get(PasswordReset, _hash(token))
    user = session.get(User, link.user_id) if link is not None else None
    if user is None:
        return None
    user.password_hash = password_hash
    ended = end_all_sessions(session, user.id, now, keep=keep_session)
    actor = Actor(user.id, user.email)
    record(
        session,
        Action.PASSWORD_SET,
        actor=actor,
        subject=user,
        now=now,
        via="link",
        sessions_ended=ended,
    )
    return user


def send_link(session: Session, user: User, *, actor: Actor, now: datetime, first: bool) -> None:
    """Issue a link for `user` and queue its mail; `first`: the login is new (a welcome,
    not a reset). Recorded as `password_reset_sent`. Needs a request (the link's URL)."""
    try:
        desk = current_desk(session)
        desk_name, desk_email = desk.name, desk.email
    except NoDeskError:
        desk_name, desk_email = "", ""
    sender = str(current_app.config.get("SMTP_FROM") or desk_email or "")
    if not sender:
        raise NoSender("no address to send from: set INTAKE_SMTP_FROM or load the desk")
    token = issue(session, user, now)
    link = public_url("dashboard.set_password", token=token)
    hours = int(LINK_VALID.total_seconds() // 3600)
    with force_locale(user.language):
        name = desk_name or gettext("Helpdesk intake")
        if first:
            subject = gettext("Your login for %(desk)s", desk=name)
            intro = gettext(
                "A login for the dashboard of %(desk)s has been made for you (%(email)s).",
                desk=name,
                email=user.email,
            )
        else:
            subject = gettext("A new password for %(desk)s", desk=name)
            intro = gettext(
                "A new password was asked for your login (%(email)s) to the dashboard of %(desk)s.",
                desk=name,
                email=user.email,
            )
        body = "\n\n".join(
            (
                intro,
                gettext("Choose your password here:"),
                link,
                gettext(
                    "The link works once, for %(hours)d hours. If it has run out, ask the "
                    "coordinator for a new one. Did you not expect this mail? Then tell "
                    "the coordinator.",
                    hours=hours,
                ),
            )
        )
    message = password_link(
        desk_name=str(name),
        sender=sender,
        recipient=user.email,
        subject=str(subject),
        body=body + "\n",
        at=now,
    )
    enqueue(session, message, kind=KIND, contact_id=None, now=now)
    record(
        session,
        Action.PASSWORD_RESET_SENT,
        actor=actor,
        subject=user,
        now=now,
        link="first" if first else "reset",
    )


def purge_links(session: Session, now: datetime) -> int:
    """Remove links used or expired over KEEP_ENDED ago (the access record keeps the rest)."""
    cutoff = now - KEEP_ENDED
    result = session.execute(
        delete(PasswordReset).where(
            or_(PasswordReset.used_at < cutoff, PasswordReset.expires_at < cutoff)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
