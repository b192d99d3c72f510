"""The coordinator's Accounts page: who can log in, and the changes to their logins.

Add a colleague (they are mailed a link to set their own password), change a role, disable
a leaver at once (their open sessions end), enable again, send a reset link. The rules
and the access record are in intake.shell.accounts; this is the page around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.models import User
from intake.shell.access import Actor
from intake.shell.accounts import (
    AddressInUse,
    LastCoordinator,
    NoSuchLogin,
    NotAnAddress,
    OwnLogin,
    add_login,
    change_role,
    disable,
    enable,
    normal_address,
)
from intake.shell.auth import LANGUAGES, ROLES, coordinator_required, login_required
from intake.shell.dashboard import bp
from intake.shell.password_links import LINK_VALID, NoSender, send_link

from .contacts import desk_or_none
from .labels import _

ROLE_LABELS: Mapping[str, Any] = {"staff": _l("Staff"), "coordinator": _l("Coordinator")}
# Each language in its own words, as a language menu lists them.
LANGUAGE_NAMES: Mapping[str, str] = {"nl": "Nederlands", "en": "English"}
LINK_HOURS = int(LINK_VALID.total_seconds() // 3600)


def _actor() -> Actor:
    return Actor(current_user.id, current_user.email)


def _login_or_404(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _render(form: Mapping[str, str], errors: Mapping[str, str], status: int = 200) -> Any:
    session = get_session()
    desk = desk_or_none(session)
    logins = session.scalars(select(User).order_by(User.disabled_at.is_not(None), User.email))
    page = render_template(
        "users.html",
        logins=list(logins),
        form=form,
        errors=errors,
        roles=ROLE_LABELS,
        languages=LANGUAGE_NAMES,
        tz=desk.tz if desk else UTC,
    )
    return page, status


@bp.get("/users")
@login_required
@coordinator_required
def users() -> Any:
    return _render({"email": "", "role": "staff", "language": "nl"}, {})


@bp.post("/users")
@login_required
@coordinator_required
def add_user() -> Any:
    form = {key: request.form.get(key, "").strip() for key in ("email", "role", "language")}
    errors: dict[str, str] = {}
    try:
        normal_address(form["email"])
    except NotAnAddress:
        errors["email"] = _("Type one mail address, such as name@example.org.")
    if form["role"] not in ROLES:
        errors["role"] = _("Choose a role.")
    if form["language"] not in LANGUAGES:
        errors["language"] = _("Choose a language.")
    if errors:
        return _render(form, errors, 400)
    session = get_session()
    now = clock_now()
    try:
        user = add_login(
            session,
            form["email"],
            role=form["role"],
            language=form["language"],
            actor=_actor(),
            now=now,
        )
        send_link(session, user, actor=_actor(), now=now, first=True)
    except AddressInUse:
        session.rollback()
        errors["email"] = _("This address has a login already.")
        return _render(form, errors, 400)
    except NoSender:
        session.rollback()
        flash(
            _("No mail can be sent yet: the desk has no sender address. Nothing was added."),
            "error",
        )
        return _render(form, errors, 400)
    session.commit()
    flash(
        _(
            "%(email)s added. A mail with a link to choose a password is on its way; "
            "it works once, for %(hours)d hours.",
            email=user.email,
            hours=LINK_HOURS,
        ),
        "info",
    )
    return redirect(url_for("dashboard.users"))


@bp.post("/users/<int:user_id>/role")
@login_required
@coordinator_required
def set_role(user_id: int) -> BaseResponse:
    session = get_session()
    user = _login_or_404(session, user_id)
    role = request.form.get("role", "")
    if role not in ROLES:
        flash(_("Choose a role."), "error")
        return redirect(url_for("dashboard.users"))
    try:
        changed = change_role(session, user_id, role, actor=_actor(), now=clock_now())
    except LastCoordinator:
        session.rollback()
        flash(_last_coordinator(user.email), "error")
        return redirect(url_for("dashboard.users"))
    session.commit()
    if changed:
        flash(_("%(email)s is now %(role)s.", email=user.email, role=ROLE_LABELS[role]), "info")
    if user_id == current_user.id and role != "coordinator":  # this page is no longer theirs
        return redirect(url_for("dashboard.now"))
    return redirect(url_for("dashboard.users"))


def _last_coordinator(email: str) -> str:
    return _(
        "%(email)s is the last active coordinator: make someone else coordinator first, "
        "or nobody can keep the rota and the logins.",
        email=email,
    )


def _why_not_disable(user: User) -> str | None:
    """What stops the coordinator disabling `user`, as the confirm page says it up front."""
    if user.id == current_user.id:
        return _("You cannot disable your own login. Ask another coordinator to do it.")
    # Nothing else can be known up front: the one asking is an active coordinator, so
    # another login is never the last one (two coordinators disabling each other at once
    # are decided by intake.shell.accounts).
    return None


@bp.route("/users/<int:user_id>/disable", methods=["GET", "POST"])
@login_required
@coordinator_required
def disable_user(user_id: int) -> Any:
    session = get_session()
    user = _login_or_404(session, user_id)
    if request.method == "GET":
        return render_template("user_disable.html", login=user, refusal=_why_not_disable(user))
    try:
        ended = disable(session, user_id, actor=_actor(), now=clock_now())
    except OwnLogin:
        flash(_("You cannot disable your own login. Ask another coordinator to do it."), "error")
        return redirect(url_for("dashboard.users"))
    except LastCoordinator:
        session.rollback()
        flash(_last_coordinator(user.email), "error")
        return redirect(url_for("dashboard.users"))
    except NoSuchLogin:
        abort(404)
    session.commit()
    if ended is not None:
        flash(
            ngettext(
                "%(email)s is disabled and can no longer log in; %(num)d open session ended.",
                "%(email)s is disabled and can no longer log in; %(num)d open sessions ended.",
                ended,
                email=user.email,
            ),
            "info",
        )
    return redirect(url_for("dashboard.users"))


@bp.post("/users/<int:user_id>/enable")
@login_required
@coordinator_required
def enable_user(user_id: int) -> BaseResponse:
    session = get_session()
    user = _login_or_404(session, user_id)
    if enable(session, user_id, actor=_actor(), now=clock_now()):
        session.commit()
        flash(_("%(email)s can log in again.", email=user.email), "info")
    return redirect(url_for("dashboard.users"))


@bp.post("/users/<int:user_id>/reset")
@login_required
@coordinator_required
def send_reset(user_id: int) -> BaseResponse:
    session = get_session()
    user = _login_or_404(session, user_id)
    if user.disabled_at is not None:
        flash(_("%(email)s is disabled: enable the login first.", email=user.email), "error")
        return redirect(url_for("dashboard.users"))
    try:
        send_link(session, user, actor=_actor(), now=clock_now(), first=False)
    except NoSender:
        session.rollback()
        flash(_("No mail can be sent yet: the desk has no sender address."), "error")
        return redirect(url_for("dashboard.users"))
    session.commit()
    flash(
        _(
            "A link to choose a new password was mailed to %(email)s; it works once, for "
            "%(hours)d hours. The old password works until then.",
            email=user.email,
            hours=LINK_HOURS,
        ),
        "info",
    )
    return redirect(url_for("dashboard.users"))
