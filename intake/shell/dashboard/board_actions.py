"""The board's requests: its fragment for the open Now page, and taking or giving back an item.

Taking ("Ik bel terug") is decided by the database (intake.core.taking): of two colleagues
pressing at once one holds the item, and the other is asked whether to take it over, with
the holder's name and since when. Confirming posts `take_over=1`; an item handled meanwhile
is never taken.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from intake.core import taking
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError
from intake.core.references import reference_for
from intake.shell.auth import login_required
from intake.shell.dashboard import bp
from intake.shell.dashboard.board import board_context, clock_time, display_name, hold_time
from intake.shell.dashboard.labels import _
from intake.shell.dashboard.views import render_now


@bp.get("/now/board")
@login_required
def board() -> Response:
    """The board block of the Now page alone, for static/board.js to swap in."""
    session = get_session()
    try:
        desk = current_desk(session)
    except NoDeskError:
        return Response(status=503)
    local = clock_now().astimezone(desk.tz)
    context = board_context(session, desk, local, current_user.id)
    return Response(render_template("now.html", board_only=True, **context))


@bp.post("/now/take/<int:contact_id>")
@login_required
def take(contact_id: int) -> str | BaseResponse:
    session = get_session()
    moment = clock_now()
    result = taking.take(
        session,
        contact_id,
        current_user.id,
        moment,
        hold=hold_time(),
        take_over=request.form.get("take_over") == "1",
    )
    if result is None:
        abort(404)
    session.commit()
    reference = reference_for(contact_id)
    if isinstance(result, taking.HeldBy):
        desk = current_desk(session)  # there is one: the item was on its board
        local = moment.astimezone(desk.tz)
        question = _(
            "%(who)s is already calling %(reference)s back (since %(time)s). Take it over anyway?",
            who=display_name(result.email, desk),
            reference=reference,
            time=clock_time(result.since, local),
        )
        return render_now(409, take_over={"contact_id": contact_id, "question": question})
    if isinstance(result, taking.NotWaiting):
        if result.handled_by:
            flash(
                _(
                    "%(reference)s was already handled by %(who)s: nothing to call back.",
                    reference=reference,
                    who=result.handled_by,
                ),
                "error",
            )
        else:
            flash(_("%(reference)s is no longer waiting.", reference=reference), "error")
        return redirect(url_for("dashboard.now"))
    flash(_("You are calling %(reference)s back.", reference=reference), "info")
    return redirect(url_for("dashboard.now"))


@bp.post("/now/release/<int:contact_id>")
@login_required
def release(contact_id: int) -> BaseResponse:
    session = get_session()
    released = taking.release(session, contact_id, current_user.id)
    session.commit()
    reference = reference_for(contact_id)
    if released:
        flash(_("%(reference)s is back on the pile.", reference=reference), "info")
    else:
        flash(_("You were not calling %(reference)s back.", reference=reference), "error")
    return redirect(url_for("dashboard.now"))
