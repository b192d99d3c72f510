"""Logging in with a second factor, enrolling an authenticator app, and the account page.

After the right password a login with a confirmed app is asked for a code before it gets
a session; when the coordinator requires a second factor, a login without one enrols first.
Between the two steps only "this user typed the right password at this time" is kept, in
the signed Flask session, for a few minutes; the server-side login session (what the
dashboard trusts) starts only after the code.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Response, flash, redirect, render_template, request, url_for
from flask import session as cookie
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from markupsafe import Markup
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.models import User
from intake.shell import second_factor
from intake.shell.auth import (
    LoginUser,
    coordinator_required,
    count_failed_attempt,
    login_required,
    wait_before_next_attempt,
)
from intake.shell.dashboard import bp
from intake.shell.i18n import LOGIN_LANGUAGE
from intake.shell.sessions import end_all_sessions, start_session

PENDING = "pending_login"
# Time from the right password to the code: enough to find the phone, not to walk away.
PENDING_FOR = timedelta(minutes=5)


def finish_login(session: Session, user: User, target: str) -> BaseResponse:
    cookie.pop(PENDING, None)
    cookie.pop(LOGIN_LANGUAGE, None)
    token = start_session(session, user, clock_now())
    session.commit()
    login_user(LoginUser(user, token))
    return redirect(target)


def after_password(session: Session, user: User, target: str) -> BaseResponse:
    """The right password was typed: a session now, or first the second step."""
    if second_factor.has_second_factor(session, user.id):
        step = "dashboard.login_code"
    elif second_factor.required(session):
        step = "dashboard.login_enrol"
    else:
        return finish_login(session, user, target)
    session.commit()  # the throttle's reset
    cookie[PENDING] = {"user": user.id, "at": clock_now().timestamp(), "next": target}
    cookie[LOGIN_LANGUAGE] = user.language
    return redirect(url_for(step))


def _pending_user(session: Session) -> tuple[User, str] | None:
    pending = cookie.get(PENDING)
    if not isinstance(pending, dict):
        return None
    at = datetime.fromtimestamp(float(pending.get("at", 0)), tz=clock_now().tzinfo)
    if clock_now() - at > PENDING_FOR:
        cookie.pop(PENDING, None)
        return None
    user = session.get(User, int(pending.get("user", 0)))
    if user is None or user.disabled_at is not None:  # disabled between the two steps
        return None
    return user, str(pending.get("next") or url_for("dashboard.now"))


def _back_to_login() -> BaseResponse:
    flash(_("Log in again: the code was not typed in time."), "error")
    return redirect(url_for("dashboard.login"))


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> str | BaseResponse:
    session = get_session()
    pending = _pending_user(session)
    if pending is None:
        return _back_to_login()
    user, target = pending
    if request.method == "GET":
        return render_template("login_code.html")
    now = clock_now()
    client = request.remote_addr or ""
    wait = wait_before_next_attempt(session, user.email, client, now)
    if wait > timedelta(0):
        seconds = int(wait.total_seconds()) + 1
        flash(
            _("Too many failed attempts. Try again in %(seconds)d seconds.", seconds=seconds),
            "error",
        )
        return Response(render_template("login_code.html"), status=401)
    if not second_factor.verify(session, user.id, request.form.get("code", ""), now):
        count_failed_attempt(session, user.email, client, now)
        session.commit()
        flash(_("That code is not right. Type the code your app shows now."), "error")
        return Response(render_template("login_code.html"), status=401)
    return finish_login(session, user, target)


def _enrolment_page(session: Session, user: User, status: int = 200) -> Response:
    secret = second_factor.pending_secret(session, user, clock_now())
    session.commit()
    if secret is None:
        return Response(render_template("second_factor.html", enrolled=True), status=status)
    uri = second_factor.provisioning_uri(secret, user.email)
    body = render_template(
        "second_factor.html",
        enrolled=False,
        # segno writes the code as one <path> of modules, the URI as data, not text.
        qr=Markup(second_factor.qr_svg(uri)),  # noqa: S704
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    )
    return Response(body, status=status)


def _confirm(session: Session, user: User) -> list[str] | None:
    codes = second_factor.confirm(session, user.id, request.form.get("code", ""), clock_now())
    if codes is None:
        flash(_("That code is not right. Type the code your app shows now."), "error")
    return codes


@bp.route("/login/enrol", methods=["GET", "POST"])
def login_enrol() -> Response | BaseResponse:
    """Enrolling during a login, when the coordinator requires a second factor."""
    session = get_session()
    pending = _pending_user(session)
    if pending is None:
        return _back_to_login()
    user, target = pending
    if request.method == "GET":
        return _enrolment_page(session, user)
    codes = _confirm(session, user)
    if codes is None:
        return _enrolment_page(session, user, status=422)
    finish_login(session, user, target)
    return Response(render_template("recovery_codes.html", codes=codes, target=target))


@bp.get("/account")
@login_required
def account() -> str:
    session = get_session()
    enrolled = second_factor.has_second_factor(session, current_user.id)
    return render_template(
        "account.html",
        enrolled=enrolled,
        codes_left=second_factor.recovery_codes_left(session, current_user.id) if enrolled else 0,
        required=second_factor.required(session),
    )


@bp.route("/account/second-factor", methods=["GET", "POST"])
@login_required
def account_second_factor() -> Response | BaseResponse:
    session = get_session()
    user = session.get(User, current_user.id)
    assert user is not None  # a logged-in user's row exists (its session depends on it)
    if request.method == "GET":
        return _enrolment_page(session, user)
    codes = _confirm(session, user)
    if codes is None:
        return _enrolment_page(session, user, status=422)
    session.commit()
    return Response(
        render_template("recovery_codes.html", codes=codes, target=url_for("dashboard.account"))
    )


@bp.post("/account/policy")
@login_required
@coordinator_required
def account_policy() -> BaseResponse:
    """The coordinator requires a second factor for every login, or no longer does."""
    session = get_session()
    value = request.form.get("required") == "1"
    if value and not second_factor.has_second_factor(session, current_user.id):
        flash(_("Set up your own authenticator app first, then require it of everyone."), "error")
        return redirect(url_for("dashboard.account"))
    coordinator = session.get(User, current_user.id)
    assert coordinator is not None  # a logged-in user's row exists (its session depends on it)
    ended = second_factor.set_required(session, value, coordinator, clock_now())
    session.commit()
    if value:
        flash(
            _(
                "Every login now needs a second factor. %(n)d sessions without one were ended.",
                n=ended,
            ),
            "info",
        )
    else:
        flash(_("A second factor is no longer required."), "info")
    return redirect(url_for("dashboard.account"))


@bp.post("/account/log-out-everywhere")
@login_required
def log_out_everywhere() -> BaseResponse:
    session = get_session()
    end_all_sessions(session, current_user.id, clock_now())
    session.commit()
    logout_user()
    flash(_("You are logged out on every device."), "info")
    return redirect(url_for("dashboard.login"))
