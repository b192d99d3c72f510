"""The two steps of signing in through the organisation's identity provider: off to the
provider, and back with a code that Authlib exchanges and checks (intake/shell/oidc.py)."""

from __future__ import annotations

import logging

from authlib.common.errors import AuthlibBaseError
from flask import Response, abort, current_app, flash, render_template, request, url_for
from flask import session as cookie
from flask_babel import gettext as _
from joserfc.errors import JoseError
from requests import RequestException
from werkzeug.wrappers import Response as BaseResponse

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.shell import oidc
from intake.shell.dashboard import bp
from intake.shell.dashboard.account import finish_login

log = logging.getLogger(__name__)
_NEXT = "sso_next"


def _callback_url() -> str:
    """Where the provider sends the browser back: the address registered there, on the
    public URL when there is one (behind nginx the request's own host may be internal)."""
    path = url_for("dashboard.login_sso_callback")
    public = str(current_app.config.get("PUBLIC_URL") or "")
    return public + path if public else url_for("dashboard.login_sso_callback", _external=True)


@bp.get("/login/sso")
def login_sso() -> BaseResponse:
    if not oidc.enabled():
        abort(404)
    target = request.args.get("next", "")
    cookie[_NEXT] = target if target.startswith("/") and not target.startswith("//") else ""
    response: BaseResponse = oidc.client().authorize_redirect(_callback_url())
    return response


def _refused(reason: str) -> Response:
    log.warning("sign-in through the identity provider refused: %s", reason)
    flash(
        _("Signing in through your organisation did not work. Try again, or ask the coordinator."),
        "error",
    )
    return Response(render_template("login.html"), status=401)


@bp.get("/login/sso/callback")
def login_sso_callback() -> BaseResponse:
    if not oidc.enabled():
        abort(404)
    if "error" in request.args:  # the provider said no (cancelled, no consent, ...)
        return _refused(f"the provider answered {request.args.get('error')}")
    try:
        token = oidc.client().authorize_access_token()
    except (AuthlibBaseError, JoseError, RequestException, ValueError, KeyError) as exc:
        # A forged or expired ID token, another audience, a bad state or nonce, an
        # unreachable provider: each is refused here.
        return _refused(f"{type(exc).__name__}: {exc}")
    claims = token.get("userinfo")
    if not claims:
        return _refused("the token answer carried no ID token")
    session = get_session()
    try:
        user = oidc.user_for(session, claims, clock_now())
    except oidc.SignInRefused as exc:
        session.rollback()
        return _refused(str(exc))
    target = cookie.pop(_NEXT, "") or url_for("dashboard.now")
    return finish_login(session, user, target)
