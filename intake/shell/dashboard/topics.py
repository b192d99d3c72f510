"""The topics contacts are marked with: a list the coordinator keeps.

A topic is never deleted, only retired: contacts already marked with it keep their topic,
and Demand still counts them; a retired topic is no longer offered.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from intake.core.db import get_session
from intake.core.models import Topic
from intake.shell.auth import coordinator_required, login_required
from intake.shell.dashboard import bp

MAX_LENGTH = 100


@bp.get("/topics")
@login_required
@coordinator_required
def topics() -> str:
    rows = get_session().scalars(select(Topic).order_by(Topic.position, Topic.name)).all()
    return render_template("topics.html", topics=rows)


@bp.post("/topics")
@login_required
@coordinator_required
def add_topic() -> BaseResponse:
    session = get_session()
    name = " ".join(request.form.get("name", "").split())
    if not name or len(name) > MAX_LENGTH:
        flash(_("A topic needs a name of at most %(n)d characters.", n=MAX_LENGTH), "error")
        return redirect(url_for("dashboard.topics"))
    existing = session.scalars(select(Topic).where(func.lower(Topic.name) == name.lower())).first()
    if existing is not None:
        existing.active = True
        flash(_("%(name)s is offered again.", name=existing.name), "info")
    else:
        last = session.scalar(select(func.max(Topic.position))) or 0
        session.add(Topic(name=name, position=last + 1, active=True))
        flash(_("%(name)s added.", name=name), "info")
    session.commit()
    return redirect(url_for("dashboard.topics"))


@bp.post("/topics/<int:topic_id>")
@login_required
@coordinator_required
def set_topic_active(topic_id: int) -> BaseResponse:
    session = get_session()
    topic = session.get(Topic, topic_id)
    if topic is not None:
        topic.active = request.form.get("active") == "1"
        session.commit()
    return redirect(url_for("dashboard.topics"))
