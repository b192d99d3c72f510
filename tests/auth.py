"""Logging in to the dashboard in tests, through the real login form (flaskr's `AuthActions`).

The `auth` fixture of tests/conftest.py is one of these, bound to the test's `client`. A
test that needs a second colleague at the same time gives `login` a client of its own
(`client=app.test_client()`): a client already logged in is sent on to the Now page by
the login form, so it cannot become someone else by logging in again.
"""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .factories import PASSWORD, add_user

STAFF = "anna@example.org"
COORDINATOR = "coordinator@example.org"

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the form on `path`, as the browser would send it back."""
    page = client.get(path)
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match is not None, f"no form with a CSRF token on {path} ({page.status_code})"
    return match.group(1)


class AuthActions:
    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client
        self.accounts: set[str] = set()

    def add_account(self, email: str = STAFF, *, role: str = "staff", language: str = "en") -> None:
        """An account with PASSWORD; English unless said, the language of the source texts."""
        add_user(self.app, email, role=role, language=language)
        self.accounts.add(email.lower())

    def login(
        self,
        email: str = STAFF,
        *,
        role: str = "staff",
        language: str = "en",
        client: FlaskClient | None = None,
    ) -> FlaskClient:
        """Log in as `email` (its account made first if this test has none); the client."""
        if email.lower() not in self.accounts:
            self.add_account(email, role=role, language=language)
        client = client or self.client
        response = self.submit(email, PASSWORD, client=client)
        assert response.status_code == 302, f"logging in as {email}: {response.status_code}"
        return client

    def submit(
        self,
        email: str = STAFF,
        password: str = PASSWORD,
        *,
        client: FlaskClient | None = None,
        path: str = "/login",
    ) -> TestResponse:
        """Fill in and send the login form at `path`, with its token; the response."""
        client = client or self.client
        token = csrf_token(client)
        return client.post(path, data={"email": email, "password": password, "csrf_token": token})

    def logout(self, client: FlaskClient | None = None) -> TestResponse:
        """Press the logout button of the Now page."""
        client = client or self.client
        return client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
