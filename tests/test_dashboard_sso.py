"""Signing in through the organisation's identity provider (OpenID Connect): the real
Authlib client against a local provider that checks and signs as Entra ID does
(tests/oidcprovider.py). The browser's two hops to the provider and back are made with
`requests`, so every check on the way is the real one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import AccessEvent, LoginSession, User
from intake.shell.app import create_app
from intake.shell.oidc import NO_PASSWORD

from .auth import csrf_token
from .conftest import PUBLIC_URL, app_config, empty_database
from .factories import PASSWORD
from .oidcprovider import Colleague, IdentityProvider

CLIENT_ID = "5d3b1c2e-helpdesk-intake"
CLIENT_SECRET = "a client secret of the app registration"
COORDINATORS = "0b8f2c9e-coordinators"
STAFF = "7c1d4a3b-desk-staff"
CALLBACK = "/login/sso/callback"


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    provider = IdentityProvider(CLIENT_ID, CLIENT_SECRET, PUBLIC_URL + CALLBACK).start()
    yield provider
    provider.close()


def sso_config(provider: IdentityProvider, **extra: object) -> dict[str, object]:
    return {
        "OIDC_ISSUER": provider.issuer,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_NAME": "Zorggroep Noord",
        "OIDC_COORDINATOR_GROUPS": (COORDINATORS,),
        "OIDC_STAFF_GROUPS": (STAFF, "another-staff-group"),
        **extra,
    }


@pytest.fixture
def app(
    database_url: str, clock: SimClock, tmp_path: Path, provider: IdentityProvider
) -> Iterator[Flask]:
    app = create_app(app_config(database_url, clock, tmp_path, **sso_config(provider)))
    yield app
    empty_database(app)


def sign_in(
    client: FlaskClient, provider: IdentityProvider, email: str, *groups: str
) -> TestResponse:
    """Press "Log in with ...", sign in at the provider, come back: the app's last answer."""
    provider.signed_in = Colleague(email, list(groups))
    start = client.get("/login/sso")
    assert start.status_code == 302 and start.headers["Location"].startswith(provider.issuer)
    at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == CALLBACK
    return client.get(f"{back.path}?{back.query}")


def user_named(app: Flask, email: str) -> User | None:
    with database(app).session() as session:
        return session.scalars(select(User).where(User.email == email)).first()


def open_sessions(app: Flask) -> int:
    with database(app).session() as session:
        return len(
            session.scalars(select(LoginSession).where(LoginSession.ended_at.is_(None))).all()
        )


def test_a_coordinator_group_signs_in_as_coordinator_with_no_password_here(
    app: Flask, client: FlaskClient, provider: IdentityProvider
) -> None:
    answer = sign_in(client, provider, "Marieke@ZorggroepNoord.nl", "other-group", COORDINATORS)

    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    assert client.get("/rota").status_code in (200, 409)  # a coordinator's page
    user = user_named(app, "marieke@zorggroepnoord.nl")
    assert user is not None and user.role == "coordinator" and user.password_hash == NO_PASSWORD
    assert provider.refusals == []
    # No password of this app opens that login.
    other = app.test_client()
    form = {"email": "marieke@zorggroepnoord.nl", "password": PASSWORD}
    assert other.post("/login", data={**form, "csrf_token": csrf_token(other)}).status_code == 401


def test_the_role_follows_the_group_at_every_sign_in(
    app: Flask, client: FlaskClient, provider: IdentityProvider
) -> None:
    sign_in(client, provider, "bram@zorggroepnoord.nl", COORDINATORS)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})

    sign_in(client, provider, "bram@zorggroepnoord.nl", STAFF)

    user = user_named(app, "bram@zorggroepnoord.nl")
    assert user is not None and user.role == "staff"
    assert client.get("/").status_code == 200
    assert client.get("/rota").status_code == 403


def test_a_colleague_in_no_mapped_group_is_not_let_in(
    app: Flask, client: FlaskClient, provider: IdentityProvider
) -> None:
    answer = sign_in(client, provider, "visitor@zorggroepnoord.nl", "all-employees")

    assert answer.status_code == 401
    assert "did not work" in answer.get_data(as_text=True) or "lukte niet" in answer.get_data(
        as_text=True
    )
    assert user_named(app, "visitor@zorggroepnoord.nl") is None
    assert open_sessions(app) == 0
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("wrong", ["forged", "audience", "expired", "issuer", "nonce"])
def test_an_id_token_that_fails_a_check_signs_nobody_in(
    app: Flask, client: FlaskClient, provider: IdentityProvider, wrong: str
) -> None:
    provider.misbehave = wrong

    answer = sign_in(client, provider, "anna@zorggroepnoord.nl", COORDINATORS)

    assert provider.tokens_issued == 1  # the provider answered; the app refused it
    assert answer.status_code == 401
    assert user_named(app, "anna@zorggroepnoord.nl") is None
    assert open_sessions(app) == 0
    assert client.get("/").status_code == 302


def test_a_return_with_another_sign_ins_state_is_refused(
    app: Flask, client: FlaskClient, provider: IdentityProvider
) -> None:
    # An attacker's own code and state, slipped to a colleague's browser (login CSRF).
    attacker = app.test_client()
    provider.signed_in = Colleague("attacker@zorggroepnoord.nl", [STAFF])
    start = attacker.get("/login/sso")
    at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    back = urlsplit(at_provider.headers["Location"])
    client.get("/login/sso")  # the colleague's own sign-in, with its own state

    answer = client.get(f"{back.path}?{back.query}")

    assert answer.status_code == 401
    assert open_sessions(app) == 0


def test_with_local_logins_off_only_the_organisation_signs_in(
    database_url: str, clock: SimClock, tmp_path: Path, provider: IdentityProvider
) -> None:
    app = create_app(
        app_config(database_url, clock, tmp_path, **sso_config(provider, LOCAL_LOGIN=False))
    )
    try:
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        assert 'name="password"' not in page
        assert "Log in with Zorggroep Noord" in page or "Inloggen met Zorggroep Noord" in page
        assert sign_in(client, provider, "anna@zorggroepnoord.nl", STAFF).status_code == 302
        assert client.get("/").status_code == 200

        # A password sent anyway, with a good form token (the session's, kept after logging
        # out), is refused: the form's absence is not the only guard.
        token = csrf_token(client, "/")
        client.post("/logout", data={"csrf_token": token})
        form = {"email": "anna@zorggroepnoord.nl", "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=form).status_code == 403
    finally:
        empty_database(app)
        database(app).engine.dispose()


def test_a_first_sign_in_and_a_moved_group_are_on_the_access_record(
    app: Flask, client: FlaskClient, provider: IdentityProvider
) -> None:
    sign_in(client, provider, "bram@zorggroepnoord.nl", STAFF)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    sign_in(client, provider, "bram@zorggroepnoord.nl", COORDINATORS)

    with database(app).session() as session:
        rows = session.scalars(select(AccessEvent).order_by(AccessEvent.id)).all()
        assert [(row.action, row.actor, row.detail) for row in rows] == [
            ("user_added", "identity provider", "role=staff language=nl"),
            ("role_changed", "identity provider", "old=staff new=coordinator"),
        ]


def test_a_disabled_login_is_not_signed_in_by_the_organisation(
    app: Flask, client: FlaskClient, provider: IdentityProvider
) -> None:
    sign_in(client, provider, "bram@zorggroepnoord.nl", STAFF)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    with database(app).session() as session:
        user = session.scalars(select(User).where(User.email == "bram@zorggroepnoord.nl")).one()
        user.disabled_at = app.config["CLOCK"]()
        session.commit()

    assert sign_in(client, provider, "bram@zorggroepnoord.nl", STAFF).status_code == 401
    assert open_sessions(app) == 0
