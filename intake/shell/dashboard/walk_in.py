"""Logging a walk-in: a visit to the service point, made a handled contact in seconds."""

from __future__ import annotations

from collections.abc import Mapping

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from intake.core import lifecycle
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.shell.auth import login_required
from intake.shell.dashboard import bp

from .contacts import NOTE_LENGTH, active_topics, desk_or_none, desk_organisations


@bp.route("/walk-in", methods=["GET", "POST"])
@login_required
def walk_in() -> BaseResponse | tuple[str, int]:
    """Log a visit to the service point: a handled contact, made in a few seconds."""
    session = get_session()
    desk = desk_or_none(session)
    if desk is None:
        return render_template("no_desk.html"), 200
    organisations = desk_organisations(desk)
    topics = active_topics(session)
    form = {"organisation": organisations[0], "topic": "", "note": ""}
    errors: list[str] = []
    if request.method == "POST":
        form = {key: request.form.get(key, "").strip() for key in form}
        if form["topic"] not in topics:
            errors.append(_("Choose what the visit was about."))
        if form["organisation"] not in organisations:
            errors.append(_("Choose one of the desk's organisations."))
        if len(form["note"]) > NOTE_LENGTH:
            errors.append(_("The note is too long (at most %(n)d characters).", n=NOTE_LENGTH))
        if not errors:
            reference = _log_walk_in(session, form)
            flash(_("Walk-in logged as %(reference)s.", reference=reference), "info")
            return redirect(url_for("dashboard.walk_in"))
    page = render_template(
        "walk_in.html", organisations=organisations, topics=topics, form=form, errors=errors
    )
    return page, 400 if errors else 200


def _log_walk_in(session: Session, form: Mapping[str, str]) -> str:
    row = lifecycle.walk_in_handled(
        session,
        organisation=form["organisation"],
        by=current_user.email,
        topic=form["topic"],
        note=form["note"],
        at=clock_now(),
    )
    session.commit()
    return row.reference
