"""Choosing a password through a mailed one-time link: no login needed, only the link.

GET shows the form while the link still works; POST sets the password once (the link's
use is decided by the database, intake.shell.password_links) and sends the colleague to
the login page. A password is never written back into the page.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_login import current_user
from sqlalchemy.orm import Session

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.models import User
from intake.shell.auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from intake.shell.dashboard import bp
from intake.shell.password_links import set_password as use_link
from intake.shell.password_links import user_of_link

from .labels import _

# A link's token is 43 characters; anything far longer is not one of ours.
MAX_TOKEN = 200


def _link_gone() -> tuple[str, int]:
    return render_template("set_password.html", login=None, errors={}), 410


def password_problems(password: str, again: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = _(
            "Choose a password of at least %(n)d characters; a few words together are "
            "easy to remember.",
            n=MIN_PASSWORD_LENGTH,
        )
    elif len(password) > MAX_PASSWORD_LENGTH:
        errors["password"] = _(
            "That password is too long (at most %(n)d characters).", n=MAX_PASSWORD_LENGTH
        )
    elif password != again:
        errors["password_again"] = _("The two passwords are not the same; type it twice.")
    return errors


@bp.route("/password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> Any:
    if len(token) > MAX_TOKEN:
        return _link_gone()
    session = get_session()
    user = user_of_link(session, token, clock_now())
    if user is None:
        return _link_gone()
    # In the colleague's own language, as the mail that brought them here.
    with force_locale(user.language):
        return _set_password(session, user, token)


def _set_password(session: Session, user: User, token: str) -> Any:
    if request.method == "GET":
        return render_template("set_password.html", login=user, errors={})
    password = request.form.get("password", "")
    errors = password_problems(password, request.form.get("password_again", ""))
    if errors:
        return render_template("set_password.html", login=user, errors=errors), 400
    same_user = current_user.is_authenticated and current_user.id == user.id
    done = use_link(
        session,
        token,
        password,
        clock_now(),
        keep_session=current_user.token if same_user else None,
    )
    if done is None:  # used by someone else a moment ago, or run out meanwhile
        session.rollback()
        return _link_gone()
    session.commit()
    if same_user:
        flash(_("Your password is set."), "info")
        return redirect(url_for("dashboard.now"))
    flash(_("Your password is set. Log in with it."), "info")
    return redirect(url_for("dashboard.login"))
