"""Dashboard logins: hashed passwords, roles, and failed attempts that slow an attacker down
(per typed address and per client, alike for addresses with and without a login)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

import flask_login
from flask import Flask, Request, abort, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.errors import IntakeError
from intake.core.models import LoginThrottle, User
from intake.shell.sessions import IDLE_TIMEOUT, MAX_AGE, user_of_session

ROLES = ("staff", "coordinator")
LANGUAGES = ("nl", "en")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1000  # a pass phrase, not a file
FREE_ATTEMPTS = 3  # failed logins for one address before each next attempt must wait
# From one client address (a hospital's offices may share one): more, before it waits.
FREE_ATTEMPTS_PER_CLIENT = 20
MAX_WAIT = timedelta(minutes=15)
FORGET_FAILURES_AFTER = timedelta(days=1)  # far beyond MAX_WAIT

F = TypeVar("F", bound=Callable[..., Any])


class LoginUser(UserMixin):  # type: ignore[misc]
    """The logged-in user as Flask-Login sees it: a snapshot of the row, and the token of
    its server-side session (what the cookie carries instead of the user's id)."""

    def __init__(self, user: User, token: str) -> None:
        self.id = user.id
        self.email = user.email
        self.role = user.role
        self.language = user.language
        self.token = token

    def get_id(self) -> str:
        return self.token

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
        user = User(email=address, created_at=now)
        session.add(user)
    user.password_hash = hash_password(password)
    user.role = role
    user.language = language
    return user


def _wait(failures: int, last_failed_at: datetime, free: int, now: datetime) -> timedelta:
    if failures < free:
        return timedelta(0)
    wait = min(timedelta(seconds=2 ** (failures - free + 1)), MAX_WAIT)
    return max(timedelta(0), last_failed_at + wait - now)


def forget_old_failures(session: Session, now: datetime) -> int:
    """Remove the counts of failed logins that made nobody wait for a day: the throttle
    starts again from nothing."""
    result = session.execute(
        delete(LoginThrottle).where(LoginThrottle.last_failed_at < now - FORGET_FAILURES_AFTER)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _throttle_key(kind: str, value: str) -> str:
    """A counter's key: the typed address or client address only as its sha256, so the
    table keeps no address (someone may type a patient's by mistake)."""
    return f"{kind}:{hashlib.sha256(value.encode('utf-8')).hexdigest()}"


def _throttle_keys(address: str, client: str) -> dict[str, int]:
    """Each counter an attempt falls under, and its free attempts."""
    keys = {_throttle_key("account", address): FREE_ATTEMPTS}
    if client:
        keys[_throttle_key("client", client)] = FREE_ATTEMPTS_PER_CLIENT
    return keys


def wait_before_next_attempt(
    session: Session, address: str, client: str, now: datetime
) -> timedelta:
    """How long before a password from `client` for `address` counts again; the same for
    an address with a login and one without."""
    keys = _throttle_keys(address, client)
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))
    waits = [_wait(row.failures, row.last_failed_at, keys[row.key], now) for row in rows]
    return max(waits, default=timedelta(0))


def _count_failure(session: Session, keys: Iterable[str], now: datetime) -> None:
    # One upsert per key, so two wrong passwords at once both count.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for key in keys:
        statement = dialect.insert(LoginThrottle).values(key=key, failures=1, last_failed_at=now)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={"failures": LoginThrottle.failures + 1, "last_failed_at": now},
            )
        )


def count_failed_attempt(session: Session, address: str, client: str, now: datetime) -> None:
    """A wrong second factor counts as a wrong password does, for the account and client."""
    _count_failure(session, _throttle_keys(address.strip().lower(), client), now)


def attempt_login(
    session: Session, email: str, password: str, now: datetime, client: str = ""
) -> User | timedelta | None:
    """The user when the password is right and the login not disabled (its last login
    noted); how long to wait when throttled; else None.

    An address without a login gets the same answers, the same throttle and the same work
    (a hash checked against a dummy), so none of them tells which addresses exist.
    """
    address = email.strip().lower()
    user = session.scalars(select(User).where(User.email == address)).first()
    matches = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    wait = wait_before_next_attempt(session, address, client, now)
    if wait > timedelta(0):
        return wait
    keys = _throttle_keys(address, client)
    # A disabled login is answered as a wrong password, after the same work.
    if user is None or not matches or user.disabled_at is not None:
        _count_failure(session, keys, now)
        return None
    # The account's count starts again; the client's does not (a guesser who also has a
    # login of their own must not wipe the count of their guesses by logging in).
    account_key = _throttle_key("account", address)
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key))
    user.last_login_at = now
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

    def load_user(token: str) -> LoginUser | None:
        user = user_of_session(get_session(), token, clock_now())
        return LoginUser(user, token) if user is not None else None

    manager.user_loader(load_user)
    manager.init_app(app)
    app.session_interface = _CookieSessions()
    # The session is looked up first thing, before a view writes anything.
    app.before_request(_load_current_user)
    app.config.setdefault("SESSION_IDLE_TIMEOUT", IDLE_TIMEOUT)
    app.config.setdefault("SESSION_MAX_AGE", MAX_AGE)
    app.config["PERMANENT_SESSION_LIFETIME"] = app.config["SESSION_MAX_AGE"]
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


# Twilio's webhooks carry no cookie and never ask who is logged in: nobody is looked up.
_NO_LOGIN_BLUEPRINTS = frozenset({"voice"})


def _load_current_user() -> None:
    if request.blueprint in _NO_LOGIN_BLUEPRINTS:
        return
    current_user.is_authenticated  # noqa: B018 - loading it is the point


class _CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its signer made only when there is a cookie to read.

    Flask makes the signer (an itsdangerous serializer) for every request before it looks
    for the cookie; Twilio's webhooks and the health checks send none, and making it was a
    fiftieth of answering a call. Without a cookie the session is the same empty one.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
