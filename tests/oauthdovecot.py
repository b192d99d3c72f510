"""A second private Dovecot that also takes OAuth2 tokens, for the sign-in tests.

The same server as tests/dovecot.py (one Maildir user, password sign-in for the helpers),
with Dovecot 2.3's `oauth2` passdb for XOAUTH2 and OAUTHBEARER beside it: each token is
POSTed to the OAuth stand-in's introspection endpoint, over HTTPS with the stand-in's
certificate as the CA. A server of its own keeps the everyday mail tests' Dovecot as it is.
"""

from __future__ import annotations

from pathlib import Path

from tests.dovecot import Dovecot
from tests.dovecotconf import oauth2_config_text
from tests.oauthservers import OAuthStandIn

__all__ = ["OAuthDovecot"]


class OAuthDovecot(Dovecot):
    def __init__(self, stand_in: OAuthStandIn) -> None:
        super().__init__()
        self.stand_in = stand_in

    @property
    def oauth2_config(self) -> Path:
        """Read by tests/dovecotconf.py: its presence turns the oauth2 passdb on."""
        return self.directory / "dovecot-oauth2.conf.ext"

    def _prepare(self) -> None:
        super()._prepare()
        self.oauth2_config.write_text(
            oauth2_config_text(self.stand_in.introspection_url, self.stand_in.cafile)
        )
        self.oauth2_config.chmod(0o644)  # read by the auth process, Debian's `dovecot` user
