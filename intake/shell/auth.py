"""Dashboard logins: hashed passwords, roles, and failed attempts that slow an attacker down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

import flask_login
from flask import Flask, abort
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from intake.core.db import get_session
from intake.core.errors import IntakeError
from intake.core.models import User

ROLES = ("staff", "coordinator")
LANGUAGES = ("nl", "en")
MIN_PASSWORD_LENGTH = 10
FREE_ATTEMPTS = 3  # failed logins before each next attempt must wait
MAX_WAIT = timedelta(minutes=15)

F = TypeVar("F", bound=Callable[..., Any])


class LoginUser(UserMixin):  # type: ignore[misc]
    """The logged-in user as Flask-Login sees it: a snapshot of the row."""

    def __init__(self, user: User) -> None:
        self.id = user.id
        self.email = user.email
        self.role = user.role
        self.language = user.language

    @property
    def is_coordinator(self) -> bool:
        return self.role == "coordinator"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def create_user(
    session: Session, email: str, password: str, *, role: str, language: str, now: datetime
) -> User:
    address = email.strip().lower()
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise IntakeError(f"{email!r} is not a mail address")
    if role not in ROLES:
        raise IntakeError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if language not in LANGUAGES:
        raise IntakeError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise IntakeError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    user = session.scalars(select(User).where(User.email == address)).first()
    if user is None:
        user = User(email=address, created_at=now, failed_logins=0)
        session.add(user)
    user.password_hash = hash_password(password)
    user.role = role
    user.language = language
    return user


def wait_before_next_attempt(user: User, now: datetime) -> timedelta:
    """How long this account must wait before a password is even checked again."""
    if user.failed_logins < FREE_ATTEMPTS or user.last_failed_at is None:
        return timedelta(0)
    wait = min(timedelta(seconds=2 ** (user.failed_logins - FREE_ATTEMPTS + 1)), MAX_WAIT)
    return max(timedelta(0), user.last_failed_at + wait - now)


def attempt_login(
    session: Session, email: str, password: str, now: datetime
) -> User | timedelta | None:
    """The user when the password is right; how long to wait when throttled; else None."""
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        # Same work as a real check, so timing does not tell which addresses exist.
        check_password_hash(_DUMMY_HASH, password)
        return None
    wait = wait_before_next_attempt(user, now)
    if wait > timedelta(0):
        return wait
    if not check_password_hash(user.password_hash, password):
        user.failed_logins += 1
        user.last_failed_at = now
        return None
    user.failed_logins = 0
    user.last_failed_at = None
    return user


_DUMMY_HASH = hash_password("not-a-real-password-only-for-timing")


def login_required(view: F) -> F:
    """Flask-Login's guard, typed: anyone not logged in goes to the login page."""
    return cast(F, flask_login.login_required(view))


def coordinator_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated or not current_user.is_coordinator:
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def init_app(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "dashboard.login"
    manager.login_message = ""

    def load_user(user_id: str) -> LoginUser | None:
        if not user_id.isdigit():
            return None
        user = get_session().get(User, int(user_id))
        return LoginUser(user) if user is not None else None

    manager.user_loader(load_user)
    manager.init_app(app)
    secure = str(app.config.get("PUBLIC_URL", "")).startswith("https://")
    # Flask ships these keys with lax defaults (SameSite unset, Secure off): set them.
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
    )
