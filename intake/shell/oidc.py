"""Signing in through the organisation's identity provider: OpenID Connect with Authlib.

The authorization code flow with PKCE (S256), a nonce and a state, as Microsoft Entra ID
and every certified provider speak it. Authlib fetches the provider's discovery document
and keys (JWKS) and checks the ID token: its signature against those keys, its issuer, its
audience (our client id), its expiry and its nonce. A token that fails any check signs
nobody in.

Who may log in, and as what, is the desk's mapping of the provider's group claim
(`INTAKE_OIDC_COORDINATOR_GROUPS`, `INTAKE_OIDC_STAFF_GROUPS`): the role is taken afresh at
every sign-in, so a colleague moved out of a group loses it at their next login. A login
made this way has no password of its own here and asks no second factor of its own (the
provider asks for its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.core.addresses import strict_address
from intake.core.models import User
from intake.shell.access import IDENTITY_PROVIDER, Action, record

_EXTENSION = "intake_oidc"
PROVIDER = "idp"
# Not a hash any password can match: werkzeug's check_password_hash needs "method$salt$hash".
NO_PASSWORD = "!sso"  # noqa: S105 - the marker of no password, not one
# The provider answers within this many seconds, or the sign-in fails with a clear message
# instead of holding a web worker.
TIMEOUT_SECONDS = 10


class SignInRefused(Exception):
    """The provider's answer signs nobody in; the message says why, for the log."""


def enabled(app: Flask | None = None) -> bool:
    return bool((app or current_app).config.get("OIDC_ISSUER"))


def local_login_allowed(app: Flask | None = None) -> bool:
    return bool((app or current_app).config.get("LOCAL_LOGIN", True)) or not enabled(app)


def init_app(app: Flask) -> None:
    if not enabled(app):
        return
    oauth = OAuth(app)
    oauth.register(
        PROVIDER,
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config["OIDC_CLIENT_SECRET"],
        server_metadata_url=app.config["OIDC_ISSUER"] + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid email profile",
            "code_challenge_method": "S256",
            "timeout": TIMEOUT_SECONDS,
        },
    )
    app.extensions[_EXTENSION] = oauth


def client() -> Any:
    return current_app.extensions[_EXTENSION].create_client(PROVIDER)


def role_for(claims: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    """The role the desk maps the token's groups to; None when no group of it may log in."""
    groups = claims.get(config.get("OIDC_GROUPS_CLAIM") or "groups") or []
    if isinstance(groups, str):
        groups = [groups]
    held = {str(group) for group in groups}
    if held & set(config.get("OIDC_COORDINATOR_GROUPS", ())):
        return "coordinator"
    if held & set(config.get("OIDC_STAFF_GROUPS", ())):
        return "staff"
    return None


def address_of(claims: Mapping[str, Any]) -> str:
    """The colleague's mail address: `email`, or Entra ID's `preferred_username`."""
    for claim in ("email", "preferred_username", "upn"):
        value = claims.get(claim)
        found = strict_address(value.strip()) if isinstance(value, str) else None
        if found:
            return found.lower()
    raise SignInRefused("the ID token names no mail address (email or preferred_username)")


def user_for(session: Session, claims: Mapping[str, Any], now: datetime) -> User:
    """The login for a checked ID token, made at its first sign-in, its role as mapped."""
    address = address_of(claims)
    role = role_for(claims, current_app.config)
    if role is None:
        raise SignInRefused(f"{address} is in no group the desk lets log in")
    user = session.scalars(select(User).where(User.email == address)).first()
    if user is None:
        try:  # two first sign-ins at once: the unique address decides, the other reads it
            with session.begin_nested():
                user = User(
                    email=address,
                    password_hash=NO_PASSWORD,
                    role=role,
                    language="nl",
                    created_at=now,
                )
                session.add(user)
            record(
                session, Action.USER_ADDED, actor=IDENTITY_PROVIDER, subject=user, now=now,
                role=role, language=user.language,
            )  # fmt: skip
        except IntegrityError:
            user = session.scalars(select(User).where(User.email == address)).one()
    if user.disabled_at is not None:
        raise SignInRefused(f"{address} is disabled here")
    if user.role != role:
        record(
            session, Action.ROLE_CHANGED, actor=IDENTITY_PROVIDER, subject=user, now=now,
            old=user.role, new=role,
        )  # fmt: skip
        user.role = role
    user.last_login_at = now
    return user
