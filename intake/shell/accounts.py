"""Managing the logins: add a colleague, change a role, disable a leaver, enable again.

Used by the coordinator's Accounts page and by `intake users`. Each change is one
conditional UPDATE (or an INSERT under the unique address), so two coordinators acting at
once cannot both get their way where only one may: the last active coordinator is never
disabled or made staff, however the requests interleave. On PostgreSQL the active
coordinators' rows are locked first, so the second request's check sees the first one's
change; SQLite runs one writing statement at a time and each check is inside its statement.

Every change is recorded in the access record (`intake.shell.access`) in the same
transaction; the caller commits.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from intake.core.addresses import strict_address
from intake.core.errors import IntakeError
from intake.core.models import PasswordReset, User
from intake.shell.access import Action, Actor, record
from intake.shell.auth import LANGUAGES, ROLES, hash_password
from intake.shell.sessions import end_all_sessions


class AccountError(IntakeError):
    """A change to a login that cannot be made; the message says why (in English)."""


class NotAnAddress(AccountError):
    pass


class AddressInUse(AccountError):
    pass


class NoSuchLogin(AccountError):
    pass


class OwnLogin(AccountError):
    pass


class LastCoordinator(AccountError):
    pass


def normal_address(email: str) -> str:
    """A login's address as stored (lower-case), or NotAnAddress: it is mailed a link, so
    it must be one the outbox can send to."""
    address = email.strip().lower()
    if strict_address(address) != address:
        raise NotAnAddress(f"{email!r} is not a mail address")
    return address


def find(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email.strip().lower())).first()


def add_login(
    session: Session, email: str, *, role: str, language: str, actor: Actor, now: datetime
) -> User:
    """A new login without a password anyone knows: its owner sets one through a link.

    Made first in its transaction: an address already taken rolls the transaction back.
    """
    address = normal_address(email)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if language not in LANGUAGES:
        raise AccountError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    if find(session, address) is not None:
        raise AddressInUse(f"{address} has a login already")
    # A real hash of a secret nobody has: logging in with it costs the same as with any.
    user = User(
        email=address,
        password_hash=hash_password(secrets.token_urlsafe(32)),
        role=role,
        language=language,
        created_at=now,
    )
    session.add(user)
    try:
        session.flush()  # the unique address decides between two added at once
    except IntegrityError:
        session.rollback()
        raise AddressInUse(f"{address} has a login already") from None
    record(
        session, Action.USER_ADDED, actor=actor, subject=user, now=now, role=role, language=language
    )
    return user


def _lock_active_coordinators(session: Session) -> None:
    """PostgreSQL: hold the active coordinators' rows until commit (in id order, so two
    requests never wait for each other in a circle). SQLite ignores FOR UPDATE; it needs
    nothing, see the module's docstring."""
    session.execute(
        select(User.id)
        .where(User.role == "coordinator", User.disabled_at.is_(None))
        .order_by(User.id)
        .with_for_update()
    ).all()


def _another_active_coordinator(user_id: int) -> ColumnElement[bool]:
    other = aliased(User)
    return exists().where(
        other.role == "coordinator", other.disabled_at.is_(None), other.id != user_id
    )


def _login(session: Session, user_id: int) -> User:
    user = session.get(User, user_id, populate_existing=True)
    if user is None:
        raise NoSuchLogin(f"there is no login {user_id}")
    return user


def change_role(session: Session, user_id: int, role: str, *, actor: Actor, now: datetime) -> bool:
    """Give a login `role`; whether it changed. The last active coordinator stays one."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    before = _login(session, user_id).role
    if before == role:
        return False
    _lock_active_coordinators(session)
    statement = update(User).where(User.id == user_id, User.role == before)
    if role != "coordinator":  # a coordinator made staff must leave another one active
        statement = statement.where(
            or_(
                User.role != "coordinator",
                User.disabled_at.is_not(None),
                _another_active_coordinator(user_id),
            )
        )
    result = session.execute(
        statement.values(role=role).execution_options(synchronize_session=False)
    )
    user = _login(session, user_id)
    if getattr(result, "rowcount", 0) != 1:
        if user.role == role:  # someone else made the same change just now
            return False
        raise LastCoordinator(f"{user.email} is the last active coordinator")
    record(session, Action.ROLE_CHANGED, actor=actor, subject=user, now=now, old=before, new=role)
    return True


def disable(session: Session, user_id: int, *, actor: Actor, now: datetime) -> int | None:
    """Disable a login at once: its sessions end, its open links stop working. How many
    sessions were ended; None when it was disabled already."""
    if actor.id == user_id:
        raise OwnLogin("you cannot disable your own login")
    _login(session, user_id)
    _lock_active_coordinators(session)
    result = session.execute(
        update(User)
        .where(
            User.id == user_id,
            User.disabled_at.is_(None),
            or_(User.role != "coordinator", _another_active_coordinator(user_id)),
        )
        .values(disabled_at=now)
        .execution_options(synchronize_session=False)
    )
    user = _login(session, user_id)
    if getattr(result, "rowcount", 0) != 1:
        if user.disabled_at is not None:
            return None
        raise LastCoordinator(f"{user.email} is the last active coordinator")
    ended = end_all_sessions(session, user_id, now)
    session.execute(
        delete(PasswordReset).where(
            PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None)
        )
    )
    record(session, Action.DISABLED, actor=actor, subject=user, now=now, sessions_ended=ended)
    return ended


def enable(session: Session, user_id: int, *, actor: Actor, now: datetime) -> bool:
    """Let a disabled login log in again (with its old password); whether it was disabled."""
    result = session.execute(
        update(User)
        .where(User.id == user_id, User.disabled_at.is_not(None))
        .values(disabled_at=None)
        .execution_options(synchronize_session=False)
    )
    user = _login(session, user_id)
    if getattr(result, "rowcount", 0) != 1:
        return False
    record(session, Action.ENABLED, actor=actor, subject=user, now=now)
    return True
