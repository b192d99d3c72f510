"""The contact page's "call back through the helpdesk": Twilio rings the colleague's own
phone, then the patient, showing the line the patient called (voice/callbacks.py); the
patient never sees a volunteer's private number."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from intake.core import callbacks, taking
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.models import Callback, Contact
from intake.core.phones import can_call_back
from intake.shell.auth import login_required
from intake.shell.dashboard import bp
from intake.shell.dashboard.board import hold_time
from intake.shell.dashboard.contacts import contact_or_404, desk_or_none
from intake.shell.dashboard.labels import _
from routing.desk import Desk, Staff
from voice.rest import CallbackRefused, can_place_calls, place_callback


def colleague_of(desk: Desk | None, email: str) -> Staff | None:
    """The desk's colleague with this login's address: whose phone rings first."""
    if desk is None:
        return None
    for staff in desk.staff:
        if staff.email and staff.email.lower() == email.lower() and staff.phone:
            return staff
    return None


def why_not(desk: Desk | None, contact: Contact) -> str | None:
    """Why this login cannot call this contact back through the helpdesk; None if it can."""
    if contact.channel != "call" or not can_call_back(contact.caller) or not contact.via:
        return _("Only a call from a number that is not withheld can be called back.")
    if not can_place_calls():
        return _("Calling back through the helpdesk needs the Twilio account's settings.")
    if colleague_of(desk, current_user.email) is None:
        return _(
            "Your address is not with a colleague of the desk who has a phone number: ask the "
            "coordinator to add it on the rota."
        )
    return None


def under_way_text(callback: Callback | None, desk: Desk | None) -> str | None:
    if callback is None:
        return None
    name = callback.staff
    if desk is not None and callback.staff in desk.staff_by_id:
        name = desk.staff_by_id[callback.staff].name
    since = callback.requested_at.astimezone(desk.tz if desk else None).strftime("%H:%M")
    return _("%(name)s is calling back since %(time)s.", name=name, time=since)


@bp.app_template_global()
def callback_offer(contact: Contact, desk: Desk | None) -> dict[str, str | None]:
    """For the contact page: why a callback cannot be made here (None: it can), and who is
    calling back at the moment (None: nobody)."""
    session = get_session()
    return {
        "problem": why_not(desk, contact),
        "under_way": under_way_text(callbacks.under_way(session, contact.id), desk),
    }


@bp.post("/contacts/<int:contact_id>/callback")
@login_required
def contact_callback(contact_id: int) -> BaseResponse:
    session = get_session()
    contact = contact_or_404(session, contact_id)
    back = redirect(url_for("dashboard.contact", contact_id=contact.id))
    desk = desk_or_none(session)
    problem = why_not(desk, contact)
    staff = colleague_of(desk, current_user.email)
    if problem is not None or desk is None or staff is None:
        flash(problem or _("No desk definition yet."), "error")
        return back
    now = clock_now()
    try:
        # The database decides first: of two colleagues pressing at once, one call is placed.
        callback = callbacks.start(session, contact, staff=staff.id, by=current_user.email, now=now)
    except callbacks.CallbackUnderWay as exc:
        session.rollback()
        flash(under_way_text(exc.callback, desk) or "", "error")
        return back
    session.commit()
    try:
        sid = place_callback(desk, callback, contact, staff.phone)
    except CallbackRefused as exc:
        callbacks.refused(session, callback, clock_now(), str(exc))
        session.commit()
        flash(_("The call could not be made: %(reason)s", reason=str(exc)), "error")
        return back
    callbacks.placed(session, callback, sid)
    # On the board too: the item shows who calls back (unless a colleague holds it already,
    # whose "ik bel terug" stands).
    taking.take(session, contact.id, current_user.id, clock_now(), hold=hold_time())
    session.commit()
    flash(_("Your phone rings now. Press 1 to ring the patient."), "info")
    return back
