"""The eight voice webhooks (the shell around them is `webhook`).

Each view is a thin shell: read Twilio's form, ask `routing` what to do, record it in the
contact log, answer with TwiML. Every view has a safe answer that needs no database; when
anything fails, Twilio gets that answer and the failure goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from flask import Response, current_app, request
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from intake.core import contactlog, lifecycle
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk, desk_version
from intake.core.errors import TransitionNotAllowed
from intake.core.models import Contact, reference_for
from intake.core.notices import notify_voicemail
from intake.core.phones import caller_identity, mask
from routing.desk import Desk
from routing.plan import plan_call

from . import bp, recordings
from .answers import ring_colleagues
from .queue import offer_to_free_colleague, queue_or_voicemail
from .rest import can_place_calls
from .twiml import (
    closed_key,
    dial_colleagues,
    dial_fallback,
    goodbye,
    hang_up,
    message_values,
    screen_prompt,
    voicemail,
)
from .webhook import (
    ANSWERED_DIAL_STATUSES,
    bare_fallback,
    contact_arg,
    form_int,
    form_value,
    log_callback_failure,
    no_content,
    safe_dial_result,
    safe_screen,
    safe_screen_result,
    safe_voicemail,
    safe_voicemail_action,
    webhook,
)

log = logging.getLogger(__name__)

FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
LIVE_CALL_STATUSES = frozenset({"queued", "initiated", "ringing", "in-progress"})


# --- whose call this is -------------------------------------------------------------------


def _organisation(desk: Desk, called: str) -> str:
    line = desk.line_for(caller_identity(called))
    if line is not None:
        return line.organisation
    return desk.lines[0].organisation if desk.lines else desk.name


def _contact_from_args(session: Session) -> Contact | None:
    contact_id = contact_arg()
    contact = session.get(Contact, contact_id) if contact_id else None
    if contact is None:
        # The parent call's sid, for requests about the call itself or one of its legs.
        contact = contactlog.find_call(
            session, form_value("ParentCallSid") or form_value("CallSid")
        )
    return contact


def _call_contact(session: Session, desk: Desk) -> Contact:
    """The contact of this call, made from the request when the call is new to us.

    Callbacks may come before /voice/incoming was logged (it failed, or the Fallback URL
    answered), so any of them can open the contact.
    """
    contact = _contact_from_args(session)
    if contact is not None:
        return contact
    called = form_value("To") or form_value("Called")
    contact, _created = contactlog.open_call(
        session,
        call_sid=form_value("CallSid"),
        at=clock_now(),
        caller=caller_identity(form_value("From") or form_value("Caller")),
        via=caller_identity(called) if called else "",
        organisation=_organisation(desk, called),
    )
    return contact


def _this_call() -> tuple[Session, Desk, datetime, Contact]:
    """What every request about a call starts from: the session, the desk, now, its contact."""
    session = get_session()
    desk = current_desk(session)
    now = clock_now()
    return session, desk, now, _call_contact(session, desk)


@contextmanager
def _refusal_logged() -> Iterator[None]:
    """A move the call's state does not allow (a late or odd callback) is logged, not applied.

    What was recorded before it in the request stays, and the view answers as the call is.
    """
    try:
        yield
    except TransitionNotAllowed as refused:
        log.warning("%s: %s", request.path, refused)


# --- the webhooks -------------------------------------------------------------------------


@bp.post("/incoming")
@webhook(safe=safe_voicemail)
def incoming() -> VoiceResponse | Response:
    # The hot path of every call: one read, two inserts, the commit. Everything is read and
    # decided before the first write, so SQLite's write lock is held only briefly.
    session = get_session()
    now = clock_now()
    snapshot = contactlog.call_snapshot(session, now)
    desk = desk_version(session, snapshot.desk_version)
    recordings.use(snapshot.recordings_version)
    called = form_value("To") or form_value("Called")
    organisation = _organisation(desk, called)
    plan = plan_call(desk, now, busy=snapshot.busy)
    caller = caller_identity(form_value("From") or form_value("Caller"))
    contact_id, created = contactlog.start_call(
        session,
        call_sid=form_value("CallSid"),
        at=now,
        caller=caller,
        via=caller_identity(called) if called else "",
        organisation=organisation,
        action=plan.action,
        reason=plan.reason,
        ringing=[staff.id for staff in plan.targets],
    )
    if created:
        log.info(
            "call %s from %s to %s: %s (%s)",
            reference_for(contact_id),
            mask(caller),
            organisation,
            plan.action,
            plan.reason,
        )
    values = message_values(desk, organisation, now, plan)
    if plan.action == "dial" and snapshot.desk_version is not None:
        line = caller_identity(called) if called else ""
        return ring_colleagues(snapshot.desk_version, desk, contact_id, plan.targets, values, line)
    if plan.action == "fallback":
        return dial_fallback(desk, contact_id, values)
    if plan.action == "queue" and can_place_calls():
        # A queue needs Twilio's REST API to ring the colleague who frees up first.
        return queue_or_voicemail(desk, contact_id, caller_identity(called), now, values)
    return voicemail(desk, closed_key(plan), values)


@bp.post("/screen")
@webhook(safe=safe_screen)
def screen() -> VoiceResponse:
    """A colleague's phone picked up (a person, or their voicemail)."""
    session, desk, now, contact = _this_call()
    staff_id = request.args.get("staff", "")
    leg = form_value("CallSid")
    lifecycle.add_event(session, contact, "picked-up", now, key=f"picked-up:{leg}", staff=staff_id)
    if not desk.voice.screening:
        accepted = True
        with _refusal_logged():
            accepted = lifecycle.call_accepted(session, contact, now, staff=staff_id)
        if not accepted:  # two phones picked up at once: the database gave it to the other
            return goodbye(desk, "taken", {"desk": desk.name})
        return VoiceResponse()  # connect at once: Twilio bridges the first leg to answer
    return screen_prompt(desk, contact.id, staff_id, contact.organisation)


@bp.post("/screen-result")
@webhook(safe=safe_screen_result)
def screen_result() -> VoiceResponse:
    session, desk, now, contact = _this_call()
    staff_id = request.args.get("staff", "")
    leg = form_value("CallSid")
    if form_value("Digits") != "1":
        lifecycle.add_event(
            session, contact, "declined", now, key=f"declined:{leg}", staff=staff_id
        )
        return hang_up()
    try:
        accepted = lifecycle.call_accepted(session, contact, now, staff=staff_id)
    except TransitionNotAllowed as refused:
        log.warning("%s: %s", request.path, refused)
        return hang_up()  # the call is over (a voicemail, missed): nobody to put through
    if not accepted:
        # Two colleagues pressed 1 at once: the first has the call.
        return goodbye(desk, "taken", {"desk": desk.name})
    return VoiceResponse()  # an empty answer connects the caller to this colleague


@bp.post("/dial-result")
@webhook(safe=safe_dial_result)
def dial_result() -> VoiceResponse:
    """The <Dial> ended: after a conversation, or with nobody taking the call."""
    session, desk, now, contact = _this_call()
    status = form_value("DialCallStatus") or "unknown"
    duration = form_int("DialCallDuration")
    fallback = request.args.get("fallback") == "1"
    attempt = form_value("DialCallSid") or request.query_string.decode("latin-1")
    lifecycle.add_event(
        session,
        contact,
        "dial-ended",
        now,
        key=f"dial-ended:{attempt}",
        status=status,
        seconds=duration,
        fallback=fallback,
    )
    # `answered_by` as read is safe to go by: Twilio bridges only after /screen-result (or
    # /screen) answered, and that answer came after the accept was committed. The moves
    # below are each decided by the database, against a status callback at the same moment.
    if status in ANSWERED_DIAL_STATUSES and (fallback or contact.answered_by):
        if fallback:
            with _refusal_logged():
                lifecycle.answered_at_fallback(contact)
        with _refusal_logged():
            lifecycle.call_ended(contact, now, None)
        return hang_up()
    # Nobody took it: the next colleague in rota order, or voicemail.
    with _refusal_logged():
        lifecycle.not_bridged(contact)
    remaining = [s for s in request.args.get("remaining", "").split(",") if s]
    busy = contactlog.busy_staff(session, now)
    staff = [desk.staff_by_id[s] for s in remaining if s in desk.staff_by_id and s not in busy]
    if staff:
        return dial_colleagues(desk, contact.id, staff, line=contact.via)
    return voicemail(desk, "unavailable", message_values(desk, contact.organisation, now))


@bp.post("/voicemail", endpoint="voicemail")
@webhook(safe=safe_voicemail_action)
def voicemail_done() -> VoiceResponse:
    """The <Record> action: the caller finished speaking (or said nothing)."""
    session, desk, now, contact = _this_call()
    values = message_values(desk, contact.organisation, now)
    seconds = form_int("RecordingDuration")
    if not form_value("RecordingUrl") or seconds == 0:
        lifecycle.add_event(session, contact, "no-message", now, key="no-message")
        return goodbye(desk, "no_message", values)
    _log_recording(session, desk, contact, now)
    return goodbye(desk, "voicemail_thanks", values)


def _log_recording(session: Session, desk: Desk, contact: Contact, now: datetime) -> None:
    new = False
    with _refusal_logged():
        new = lifecycle.voicemail_recorded(
            session,
            contact,
            now,
            sid=form_value("RecordingSid"),
            status=form_value("RecordingStatus") or lifecycle.RECORDING_DONE,
            seconds=form_int("RecordingDuration"),
            url=form_value("RecordingUrl"),
        )
    if not new:
        return  # not playable (yet), or Twilio told us twice: colleagues were told once
    try:
        notify_voicemail(session, current_app, desk, contact, now)
    except Exception:
        # The voicemail itself is logged either way; only the mail about it is missing.
        log.exception("could not queue the notice for the voicemail of %s", contact.reference)


@bp.post("/recording")
@webhook(safe=log_callback_failure)
def recording() -> Response:
    """Recording status callback: the voicemail file is ready (or absent)."""
    session, desk, now, contact = _this_call()
    _log_recording(session, desk, contact, now)
    return no_content()


@bp.post("/status")
@webhook(safe=log_callback_failure)
def status() -> Response:
    """Call status callback: the call's final outcome and duration."""
    session, desk, now, contact = _this_call()
    call_status = form_value("CallStatus")[:32] or "unknown"
    with _refusal_logged():
        lifecycle.status_reported(
            session,
            contact,
            now,
            status=call_status,
            sequence=form_value("SequenceNumber"),
            seconds=form_int("CallDuration"),
        )
        if call_status in FINAL_CALL_STATUSES:
            lifecycle.call_ended(contact, now, form_int("CallDuration"))
    if call_status not in FINAL_CALL_STATUSES | LIVE_CALL_STATUSES:
        log.warning("call %s: unknown CallStatus %r stored", contact.reference, call_status)
    if call_status in FINAL_CALL_STATUSES and contact.answered_by:
        # The colleague on this call is free again: the first caller waiting is theirs.
        offer_to_free_colleague(desk, contact.answered_by, now)
    return no_content()


@bp.post("/fallback")
@webhook(safe=bare_fallback, database=False)
def fallback() -> VoiceResponse:
    """The number's Fallback URL: Twilio could not use our primary answer. No database here."""
    log.error(
        "Twilio used the fallback URL (ErrorCode %s, ErrorUrl %s)",
        form_value("ErrorCode") or "-",
        form_value("ErrorUrl") or "-",
    )
    return safe_voicemail()
