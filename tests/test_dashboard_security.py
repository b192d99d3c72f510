"""What a security officer checks from outside: the headers of the dashboard's pages and of
everything else the app answers."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .auth import AuthActions
from .conftest import Twilio
from .factories import add_contact


def test_no_page_can_be_framed_sniffed_or_leak_its_address(
    client: FlaskClient, auth: AuthActions
) -> None:
    for response in (client.get("/login"), auth.login().get("/")):
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        script_src = csp.split("script-src")[1].split(";")[0]
        assert script_src.strip() == "'self'"  # no inline script, nothing from elsewhere
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
