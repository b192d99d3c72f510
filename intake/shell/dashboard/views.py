"""Login, logout and the Now page; every other page of the dashboard builds on these."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError
from intake.core.models import SENDING, MailboxStatus, User
from intake.shell import oidc
from intake.shell.auth import attempt_login, login_required
from intake.shell.dashboard import bp
from intake.shell.dashboard.account import after_password
from intake.shell.dashboard.board import board_context
from intake.shell.sessions import end_session
from mail.poller import ImapSettings
from routing.desk import Desk
from routing.hours import closes_at, is_open, next_opening
from routing.rota import on_shift
from routing.wording import describe_moment


def _safe_next(target: str | None) -> str:
    """Only a path on this site; never an open redirect to somewhere else."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("dashboard.now")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse:
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.now"))
    if request.method == "POST":
        if not oidc.local_login_allowed():
            abort(403)  # only the organisation's sign-in counts
        session = get_session()
        outcome = attempt_login(
            session,
            request.form.get("email", ""),
            request.form.get("password", ""),
            clock_now(),
            client=request.remote_addr or "",
        )
        if isinstance(outcome, User):
            return after_password(session, outcome, _safe_next(request.args.get("next")))
        session.commit()
        if isinstance(outcome, timedelta):
            seconds = int(outcome.total_seconds()) + 1
            flash(
                _("Too many failed attempts. Try again in %(seconds)d seconds.", seconds=seconds),
                "error",
            )
        else:
            flash(_("That e-mail address and password do not match."), "error")
        return Response(render_template("login.html"), status=401)
    return render_template("login.html")


@bp.post("/logout")
@login_required
def logout() -> BaseResponse:
    # Ended on the server: a copy of the cookie kept anywhere no longer logs in.
    session = get_session()
    end_session(session, current_user.token, clock_now())
    session.commit()
    logout_user()
    return redirect(url_for("dashboard.login"))


@bp.get("/")
@login_required
def now() -> str | Response:
    return render_now()


def render_now(status: int = 200, **extra: Any) -> str | Response:
    """The Now page; `extra` adds to what it shows (the question before taking over an item)."""
    session = get_session()
    moment = clock_now()
    try:
        desk = current_desk(session)
    except NoDeskError:
        return render_template("no_desk.html")
    local = moment.astimezone(desk.tz)
    open_now = is_open(desk, local)
    following = None if open_now else next_opening(desk, local)
    context: dict[str, Any] = {
        "desk": desk,
        "local": local,
        "open_now": open_now,
        "closes": closes_at(desk, local) if open_now else None,
        "on_shift": on_shift(desk, local) if open_now else (),
        "following": following,
        "following_words": describe_moment(following, local, current_user.language)
        if following
        else None,
        # For the coordinator, who passes it on to IT; a volunteer could do nothing with it.
        "mail_trouble": mail_trouble(session, desk, local) if current_user.is_coordinator else [],
        **board_context(session, desk, local, current_user.id),
        **extra,
    }
    return Response(render_template("now.html", **context), status=status)


# How a refused sign-in is kept (`mail.mailboxes.failure_text`): imapclient's, or ours for
# an OAuth2 token the provider would not give.
SIGN_IN_REFUSED = ("LoginError", "SignInError")


def mail_trouble(session: Session, desk: Desk, local: datetime) -> list[str]:
    """One sentence per mailbox the worker cannot read or send for, for the coordinator on
    the Now page.

    The server's own words are in the log and in `intake check-mail`; here only what the
    coordinator can pass on to IT: which organisation, what kind of trouble, since when.
    """
    failing = session.scalars(
        select(MailboxStatus).where(MailboxStatus.ok.is_(False)).order_by(MailboxStatus.since)
    ).all()
    sentences = []
    for status in failing:
        since = status.since.astimezone(local.tzinfo)
        values = {
            "organisation": _organisation_of(desk, status.mailbox.removeprefix(SENDING)),
            "time": since.strftime("%H:%M" if since.date() == local.date() else "%d-%m %H:%M"),
        }
        if status.mailbox.startswith(SENDING):
            sentences.append(
                _("Mailbox of %(organisation)s: mail cannot be sent since %(time)s", **values)
            )
        elif status.error.startswith(SIGN_IN_REFUSED):
            sentences.append(
                _("Mailbox of %(organisation)s: sign-in refused since %(time)s", **values)
            )
        else:
            sentences.append(
                _("Mailbox of %(organisation)s: cannot be read since %(time)s", **values)
            )
    return sentences


def _organisation_of(desk: Desk, key: str) -> str:
    """Whose mailbox a status key is: a [[mailbox]]'s address, or the INTAKE_IMAP_* account."""
    mailbox = desk.mailbox_for(key)
    if mailbox is None:
        legacy = ImapSettings.from_config(current_app.config)
        if legacy is None or key != legacy.account or not legacy.address:
            return key
        mailbox = desk.mailbox_for(legacy.address)
        if mailbox is None:
            return legacy.address
    return mailbox.organisation


def local_time(value: datetime | None, tz: Any, fmt: str = "%d-%m-%Y %H:%M") -> str:
    return value.astimezone(tz).strftime(fmt) if value else ""
