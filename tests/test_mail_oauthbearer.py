"""OAuth2 sign-in to IMAP with OAUTHBEARER (RFC 7628), the standard beside Microsoft's and
Google's XOAUTH2.

The same private Dovecot with the oauth2 passdb as tests/test_mail_oauth.py, asking the same
local token service about every token (tests/oauthfixtures.py).
"""

from __future__ import annotations

import time

import pytest
from imapclient.exceptions import IMAPClientError, LoginError

from intake.core.clock import SimClock
from mail.oauth import MicrosoftTokens
from tests.oauthdovecot import OAuthDovecot
from tests.oauthservers import OAuthStandIn

MAILBOX = "helpdesk@example.org"  # the user of the test Dovecot
TENANT = "contoso-care"
CLIENT_ID = "00000000-aaaa-bbbb-cccc-000000000001"
SECRET = "client-secret-value"
# What Dovecot logs for an OAUTHBEARER sign-in; the helpers' own sign-ins say method=PLAIN.
SIGNED_IN = f"Login: user=<{MAILBOX}>, method=OAUTHBEARER"


@pytest.fixture
def dovecot(oauth_dovecot: OAuthDovecot) -> OAuthDovecot:
    return oauth_dovecot


@pytest.fixture
def token(stand_in: OAuthStandIn, clock: SimClock) -> str:
    """An access token the stand-in issued for MAILBOX, fetched as the poller fetches it."""
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, secret=SECRET)
    with stand_in.session() as http:
        tokens = MicrosoftTokens(
            TENANT, CLIENT_ID, secret=SECRET, authority=stand_in.url, session=http, clock=clock
        )
        return tokens.token()


def log_from(dovecot: OAuthDovecot) -> int:
    """Where Dovecot's log ends now: what a test reads from, to see only its own sign-ins."""
    return dovecot.log_path.stat().st_size if dovecot.log_path.exists() else 0


def logged_since(dovecot: OAuthDovecot, start: int, text: str, timeout: float = 2.0) -> bool:
    """Whether Dovecot logged `text` after `start`; its log process may write a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        with dovecot.log_path.open("rb") as log:
            log.seek(start)
            if text in log.read().decode(errors="replace"):
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_a_token_the_service_issued_signs_in_to_imap_with_oauthbearer(
    dovecot: OAuthDovecot, stand_in: OAuthStandIn, token: str
) -> None:
    dovecot.append(b"From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n")
    start = log_from(dovecot)
    client = dovecot.connect("starttls", login=False)
    try:
        # RFC 7628's initial response, n,a=<user>,^Aauth=Bearer <token>^A^A; host and port
        # are optional there, and imapclient leaves them out.
        assert client.oauthbearer_login(MAILBOX, token) == [b"Logged in"]
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1
    finally:
        client.logout()
    assert stand_in.introspections == 1  # Dovecot asked about the token it was given
    assert logged_since(dovecot, start, SIGNED_IN)


def test_a_revoked_token_is_refused_with_oauthbearer_and_opens_no_mailbox(
    dovecot: OAuthDovecot, stand_in: OAuthStandIn, token: str
) -> None:
    # Issued, then revoked: only asking the service tells it from a good one.
    stand_in.revoke(token)
    start = log_from(dovecot)
    client = dovecot.connect("starttls", login=False)
    try:
        with pytest.raises(LoginError, match=r"^\[AUTHENTICATIONFAILED\] Authentication failed"):
            client.oauthbearer_login(MAILBOX, token)
        with pytest.raises(IMAPClientError, match="illegal in state NONAUTH"):
            client.select_folder("INBOX")  # still not signed in
    finally:
        client.shutdown()
    assert stand_in.introspections == 1
    assert logged_since(dovecot, start, "Introspection failed: Provided token is not valid")
    # The login process logs this as the connection closes, after any "Login:" of its own.
    assert logged_since(dovecot, start, "(auth failed, 1 attempts")
    assert not logged_since(dovecot, start, SIGNED_IN, timeout=0)
