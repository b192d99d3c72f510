"""What a security officer checks from outside: the headers of the dashboard's pages and of
everything else the app answers."""

from __future__ import annotations

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient

from intake.core.clock import SimClock

from .auth import _TOKEN, STAFF, AuthActions, csrf_token
from .conftest import Twilio
from .factories import PASSWORD, add_contact


def test_no_page_can_be_framed_sniffed_or_leak_its_address(
    client: FlaskClient, auth: AuthActions
) -> None:
    for response in (client.get("/login"), auth.login().get("/")):
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        script_src = csp.split("script-src")[1].split(";")[0]
        assert script_src.strip() == "'self'"  # no inline script, nothing from elsewhere
        style_src = csp.split("style-src")[1].split(";")[0]
        assert style_src.strip() == "'self'"  # no inline style either
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_a_contacts_page_and_the_pages_with_patient_data_are_never_cached(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    contact_id = add_contact(app, channel="walk-in")
    auth.login()

    for path in ("/", f"/contacts/{contact_id}", "/contacts", "/walk-in"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path


@pytest.mark.usefixtures("desk")
def test_the_webhooks_twiml_and_the_health_check_keep_their_own_headers(
    client: FlaskClient, twilio: Twilio
) -> None:
    assert twilio.call().tag == "Response"  # TwiML as before

    health = client.get("/healthz")
    assert health.headers["Cache-Control"] == "no-store"
    assert health.is_json

    with client.get("/static/style.css") as sheet:
        assert "no-store" not in sheet.headers.get("Cache-Control", "")  # a cache may keep it


def _expire_the_token(client: FlaskClient) -> None:
    """What a new deployment or a long pause does: the session's token is no longer there."""
    with client.session_transaction() as session:
        session.pop("csrf_token", None)


def test_a_form_sent_after_its_token_ran_out_comes_back_with_what_was_typed(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login(language="nl")
    token = csrf_token(client, "/walk-in")
    _expire_the_token(client)

    response = client.post(
        "/walk-in",
        data={"csrf_token": token, "note": "Mevrouw Jansen\nbelt terug over haar pomp"},
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Je sessie was verlopen; controleer het en verstuur het opnieuw." in page
    assert "Mevrouw Jansen\nbelt terug over haar pomp</textarea>" in page
    assert "<label>Notitie" in page and "<label>Note" not in page  # in the user's language
    assert 'action="/walk-in"' in page
    fresh = _TOKEN.search(page)
    assert fresh is not None and fresh.group(1) != token
    assert 'href="/contacts"' in page  # the menu is there


def test_the_login_form_after_its_token_ran_out_keeps_the_address_not_the_password(
    client: FlaskClient, auth: AuthActions
) -> None:
    auth.add_account()
    token = csrf_token(client)
    _expire_the_token(client)

    response = client.post(
        "/login", data={"csrf_token": token, "email": STAFF, "password": PASSWORD}
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'value="{STAFF}"' in page
    assert PASSWORD not in page
    assert "Je sessie was verlopen" in page


def test_a_form_left_open_for_hours_still_sends(
    client: FlaskClient, auth: AuthActions, clock: SimClock
) -> None:
    auth.add_account()
    token = csrf_token(client)
    clock.advance(5 * 3600)  # Flask-WTF's own limit was one hour

    response = client.post(
        "/login", data={"csrf_token": token, "email": STAFF, "password": PASSWORD}
    )

    assert response.status_code == 302


@pytest.mark.parametrize(
    ("language", "path", "code", "title"),
    [
        ("nl", "/no-such-page", 404, "Deze pagina bestaat niet"),
        ("en", "/no-such-page", 404, "This page does not exist"),
        ("nl", "/rota.toml", 403, "Je mag deze pagina niet openen"),
        ("nl", "/contacts/1/handled", 405, "Deze pagina kan zo niet worden gebruikt"),
    ],
)
def test_error_pages_are_the_dashboards_own_in_the_users_language(
    client: FlaskClient, auth: AuthActions, language: str, path: str, code: int, title: str
) -> None:
    auth.login(language=language)

    response = client.get(path)

    page = response.get_data(as_text=True)
    assert response.status_code == code
    assert f"<h1>{title}</h1>" in page
    assert 'href="/contacts"' in page  # with the menu


def test_a_failure_in_a_page_is_the_dashboards_500(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    def broken() -> str:
        abort(500)

    app.add_url_rule("/broken", "broken", broken)
    auth.login(language="nl")

    response = client.get("/broken")

    assert response.status_code == 500
    assert "<h1>Er ging bij ons iets mis</h1>" in response.get_data(as_text=True)


@pytest.mark.usefixtures("desk")
def test_the_webhooks_and_machine_endpoints_keep_their_own_errors(client: FlaskClient) -> None:
    unsigned = client.post("/voice/incoming", data={"CallSid": "CA" + "0" * 32})
    assert "Helpdesk intake" not in unsigned.get_data(as_text=True)
    missing = client.get("/voice/no-such-hook")
    assert missing.status_code == 404
    assert "Helpdesk intake" not in missing.get_data(as_text=True)
    assert client.get("/healthz").is_json
