"""What the sign-in seams raise for a method this build cannot sign in with yet.

The seams themselves are `mail.poller.sign_in` (an IMAPClient) and `mail.smtp.sign_in`
(an smtplib.SMTP): one function each, so OAuth2 (Microsoft 365 through msal, Google
through google-auth, XOAUTH2 on the wire) arrives in one place per protocol.
"""

from __future__ import annotations

__all__ = ["SigninUnavailable", "unavailable"]

_NAMES = {"microsoft": "Microsoft 365 (OAuth2)", "google": "Google Workspace (OAuth2)"}


class SigninUnavailable(Exception):
    """The mailbox asks for a sign-in method this build cannot do (yet)."""


def unavailable(method: str, address: str) -> SigninUnavailable:
    what = _NAMES.get(method, repr(method))
    return SigninUnavailable(
        f"sign-in through {what} is not available yet for {address or 'this mailbox'}:"
        ' use signin = "password" for now'
    )
