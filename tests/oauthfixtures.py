"""The OAuth2 servers the mail tests sign in against, one of each for the whole run: the
local token service (Entra ID's and Google's endpoints, and the introspection Dovecot asks)
and the Dovecot whose oauth2 passdb asks it. A plugin of tests/conftest.py, so every test
module that signs in with OAuth2 shares them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from intake.core.clock import SimClock
from tests.mailservers import for_the_session
from tests.oauthdovecot import OAuthDovecot
from tests.oauthservers import OAuthStandIn


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[OAuthStandIn]:
    yield from for_the_session(OAuthStandIn(), "the OAuth stand-in cannot start")


@pytest.fixture
def stand_in(oauth_server: OAuthStandIn, clock: SimClock) -> Iterator[OAuthStandIn]:
    """The stand-in with no apps, accounts or tokens, on the test's clock."""
    oauth_server.reset()
    oauth_server.clock = clock
    yield oauth_server
    oauth_server.reset()


@pytest.fixture(scope="session")
def oauth_dovecot_server(oauth_server: OAuthStandIn) -> Iterator[OAuthDovecot]:
    yield from for_the_session(
        OAuthDovecot(oauth_server),
        "the test IMAP server with OAuth2 (Dovecot) is not available",
    )


@pytest.fixture
def oauth_dovecot(oauth_dovecot_server: OAuthDovecot, stand_in: OAuthStandIn) -> OAuthDovecot:
    """The OAuth2 Dovecot, started, with an empty mailbox."""
    oauth_dovecot_server.start()
    oauth_dovecot_server.clear()
    return oauth_dovecot_server
