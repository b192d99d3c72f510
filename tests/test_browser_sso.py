"""In Chromium: a colleague presses "Log in with Zorggroep Noord", passes through the
organisation's identity provider (the local stand-in, tests/oidcprovider.py) and lands on
Now; a forged, foreign or expired ID token leaves them on the login page, told so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from intake.core.clock import SimClock
from intake.shell.app import create_app
from routing.desk import Desk

from .browser import LiveServer, navigate
from .conftest import app_config, empty_database
from .oidcprovider import Colleague, IdentityProvider

CLIENT_ID = "5d3b1c2e-helpdesk-intake"
CLIENT_SECRET = "a client secret of the app registration"
STAFF = "7c1d4a3b-desk-staff"


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    provider = IdentityProvider(CLIENT_ID, CLIENT_SECRET).start()
    yield provider
    provider.close()


@pytest.fixture
def app(
    database_url: str, clock: SimClock, tmp_path: Path, provider: IdentityProvider
) -> Iterator[Flask]:
    config = app_config(
        database_url,
        clock,
        tmp_path,
        OIDC_ISSUER=provider.issuer,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_NAME="Zorggroep Noord",
        OIDC_STAFF_GROUPS=(STAFF,),
        LOCAL_LOGIN=False,
    )
    app = create_app(config)
    yield app
    empty_database(app)


@pytest.fixture
def at_provider(app: Flask, live_server: LiveServer, provider: IdentityProvider) -> None:
    # The address registered at the provider is the public one; here, the live server's.
    app.config["PUBLIC_URL"] = live_server.url
    provider.redirect_uris.add(live_server.url + "/login/sso/callback")


def press_sign_in(page: Page) -> None:
    page.goto("/login")
    expect(page.locator("input[name=password]")).to_have_count(0)  # local logins are off
    navigate(page, page.get_by_role("link", name="Log in with Zorggroep Noord"))


def test_a_colleague_signs_in_through_the_organisation(
    desk: Desk, page: Page, provider: IdentityProvider, at_provider: None
) -> None:
    provider.signed_in = Colleague("anna@zorggroepnoord.nl", [STAFF])

    press_sign_in(page)

    expect(page.get_by_role("heading", level=1)).to_have_text(desk.name)
    expect(page.locator("header a.account")).to_have_text("anna@zorggroepnoord.nl")
    assert provider.tokens_issued == 1 and provider.refusals == []


@pytest.mark.parametrize("wrong", ["forged", "audience", "expired"])
def test_an_id_token_that_fails_a_check_leaves_the_colleague_on_the_login_page(
    desk: Desk, page: Page, provider: IdentityProvider, at_provider: None, wrong: str
) -> None:
    provider.signed_in = Colleague("anna@zorggroepnoord.nl", [STAFF])
    provider.misbehave = wrong  # signed by another key, for another app, or expired

    press_sign_in(page)

    expect(page.get_by_role("alert")).to_have_text(
        "Signing in through your organisation did not work. Try again, or ask the coordinator."
    )
    expect(page.locator("header nav")).to_have_count(0)  # not logged in
    assert page.goto("/").url.endswith("/login?next=%2F")
