"""The eight voice webhooks.

Each view is a thin shell: read Twilio's form, ask `routing` what to do, record it in the
contact log, answer with TwiML. Every view has a safe answer that needs no database; when
anything fails, Twilio gets that answer and the failure goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, request
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from intake.core import contactlog
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk, desk_version, last_known_desk
from intake.core.models import Contact, reference_for
from intake.core.notices import notify_voicemail
from intake.core.phones import caller_identity, mask
from routing.desk import Desk
from routing.plan import plan_call

from . import bp
from .signature import is_signed_by_twilio
from .twiml import (
    UNKNOWN_DESK,
    closed_key,
    dial_colleagues,
    dial_fallback,
    goodbye,
    hang_up,
    message_values,
    screen_prompt,
    twiml,
    voicemail,
)

log = logging.getLogger(__name__)

ANSWERED_DIAL_STATUSES = frozenset({"completed", "answered"})
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# When even the safe answer fails: fixed TwiML, with URLs relative to this request's.
LAST_RESORT = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="nl-NL">'
    "Excuses, er is een storing. Spreek na de piep uw naam, telefoonnummer en vraag in."
    '</Say><Record action="voicemail" recordingStatusCallback="recording" maxLength="120"'
    ' timeout="8"/><Hangup/></Response>'
)


# --- the shell around every webhook -------------------------------------------------------


@bp.before_request
def require_twilio_signature() -> Response | None:
    if is_signed_by_twilio():
        return None
    log.warning("refused %s: missing or wrong X-Twilio-Signature", request.path)
    return Response(
        "Forbidden: this request is not signed by Twilio.\n", 403, mimetype="text/plain"
    )


def webhook(
    safe: Callable[[], VoiceResponse | Response], *, database: bool = True
) -> Callable[[Callable[[], Any]], Any]:
    """Commit after the view; on any failure, log it and answer with `safe()` instead."""

    def decorate(view: Callable[[], VoiceResponse | Response]) -> Callable[[], Response]:
        @wraps(view)
        def run() -> Response:
            try:
                return _respond(_run_committed(view) if database else view())
            except Exception:
                log.exception("webhook %s failed; answering with its safe TwiML", request.path)
                _discard_session()
                try:
                    return _respond(safe())
                except Exception:
                    log.exception("the safe answer of %s failed too", request.path)
                    return Response(LAST_RESORT, 200, mimetype="text/xml")

        return run

    return decorate


def _worth_retrying(exc: DBAPIError) -> bool:
    # Twilio may send the same request twice at once: the loser of that race hits a unique
    # constraint, and its second run finds what the winner wrote. A pooled connection the
    # server closed (a restart, an idle timeout) fails once, then the pool has a fresh one.
    return isinstance(exc, IntegrityError) or exc.connection_invalidated


def _run_committed(view: Callable[[], VoiceResponse | Response]) -> VoiceResponse | Response:
    for attempt in (1, 2):
        try:
            result = view()
            get_session().commit()
            return result
        except DBAPIError as exc:
            get_session().rollback()
            if attempt == 2 or not _worth_retrying(exc):
                raise
            log.warning("retrying %s once: %s", request.path, exc.__class__.__name__)
    raise AssertionError("unreachable")


def _respond(result: VoiceResponse | Response) -> Response:
    return result if isinstance(result, Response) else twiml(result)


def _discard_session() -> None:
    try:
        get_session().rollback()
    except Exception:
        log.exception("rollback failed")


def no_content() -> Response:
    return Response(status=204)


# --- reading Twilio's request -------------------------------------------------------------


def _form(name: str) -> str:
    return (request.form.get(name) or "").strip()


def _int_form(name: str) -> int | None:
    try:
        return int(_form(name))
    except ValueError:
        return None


def _safe_desk() -> Desk:
    return last_known_desk() or UNKNOWN_DESK


def _organisation(desk: Desk, called: str) -> str:
    line = desk.line_for(caller_identity(called))
    if line is not None:
        return line.organisation
    return desk.lines[0].organisation if desk.lines else desk.name


def _contact_from_args(session: Session) -> Contact | None:
    raw = request.args.get("contact", "")
    contact = session.get(Contact, int(raw)) if raw.isdigit() else None
    if contact is None:
        # The parent call's sid, for requests about the call itself or one of its legs.
        contact = contactlog.find_call(session, _form("ParentCallSid") or _form("CallSid"))
    return contact


def _call_contact(session: Session, desk: Desk) -> Contact:
    """The contact of this call, made from the request when the call is new to us.

    Callbacks may come before /voice/incoming was logged (it failed, or the Fallback URL
    answered), so any of them can open the contact.
    """
    contact = _contact_from_args(session)
    if contact is not None:
        return contact
    called = _form("To") or _form("Called")
    contact, _created = contactlog.open_call(
        session,
        call_sid=_form("CallSid"),
        at=clock_now(),
        caller=caller_identity(_form("From") or _form("Caller")),
        via=caller_identity(called) if called else "",
        organisation=_organisation(desk, called),
    )
    return contact


def _safe_voicemail() -> VoiceResponse:
    desk = _safe_desk()
    return voicemail(desk, "technical_trouble", message_values(desk, "", clock_now()))


# --- the webhooks -------------------------------------------------------------------------


@bp.post("/incoming")
@webhook(safe=_safe_voicemail)
def incoming() -> VoiceResponse:
    # The hot path of every call: one read, two inserts, the commit. Everything is read and
    # decided before the first write, so SQLite's write lock is held only briefly.
    session = get_session()
    now = clock_now()
    snapshot = contactlog.call_snapshot(session, now)
    desk = desk_version(session, snapshot.desk_version)
    called = _form("To") or _form("Called")
    organisation = _organisation(desk, called)
    plan = plan_call(desk, now, busy=snapshot.busy)
    caller = caller_identity(_form("From") or _form("Caller"))
    contact_id, created = contactlog.start_call(
        session,
        call_sid=_form("CallSid"),
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
    if plan.action == "dial":
        return dial_colleagues(desk, contact_id, plan.targets, greeting=values)
    if plan.action == "fallback":
        return dial_fallback(desk, contact_id, values)
    return voicemail(desk, closed_key(plan), values)


def _safe_screen() -> VoiceResponse:
    desk = _safe_desk()
    raw_contact = request.args.get("contact", "")
    contact_id = int(raw_contact) if raw_contact.isdigit() else 0
    return screen_prompt(desk, contact_id, request.args.get("staff", ""), desk.name)


@bp.post("/screen")
@webhook(safe=_safe_screen)
def screen() -> VoiceResponse:
    """A colleague's phone picked up (a person, or their voicemail)."""
    session = get_session()
    desk = current_desk(session)
    now = clock_now()
    staff_id = request.args.get("staff", "")
    contact = _call_contact(session, desk)
    contactlog.add_event(
        session, contact, "picked-up", now, key=f"picked-up:{_form('CallSid')}", staff=staff_id
    )
    if not desk.voice.screening:
        _accept(session, contact, staff_id, now)
        return VoiceResponse()  # connect at once
    return screen_prompt(desk, contact.id, staff_id, contact.organisation)


def _accept(session: Session, contact: Contact, staff_id: str, now: Any) -> bool:
    """Record that `staff_id` takes the call. False when a colleague already took it."""
    if contact.answered_by and contact.answered_by != staff_id:
        return False
    contact.answered_by = staff_id or None
    contact.outcome = contactlog.ANSWERED
    contactlog.add_event(
        session, contact, "accepted", now, key=f"accepted:{staff_id}", staff=staff_id
    )
    return True


def _safe_screen_result() -> VoiceResponse:
    # Without the database we cannot record it, but a colleague who pressed 1 gets the call.
    return VoiceResponse() if _form("Digits") == "1" else hang_up()


@bp.post("/screen-result")
@webhook(safe=_safe_screen_result)
def screen_result() -> VoiceResponse:
    session = get_session()
    desk = current_desk(session)
    now = clock_now()
    staff_id = request.args.get("staff", "")
    contact = _call_contact(session, desk)
    if _form("Digits") != "1":
        contactlog.add_event(
            session, contact, "declined", now, key=f"declined:{_form('CallSid')}", staff=staff_id
        )
        return hang_up()
    if not _accept(session, contact, staff_id, now):
        # Two colleagues pressed 1 at once: the first has the call.
        return goodbye(desk, "taken", {"desk": desk.name})
    return VoiceResponse()  # an empty answer connects the caller to this colleague


def _safe_dial_result() -> VoiceResponse:
    if _form("DialCallStatus") in ANSWERED_DIAL_STATUSES:
        return hang_up()
    return _safe_voicemail()


@bp.post("/dial-result")
@webhook(safe=_safe_dial_result)
def dial_result() -> VoiceResponse:
    """The <Dial> ended: after a conversation, or with nobody taking the call."""
    session = get_session()
    desk = current_desk(session)
    now = clock_now()
    contact = _call_contact(session, desk)
    status = _form("DialCallStatus") or "unknown"
    duration = _int_form("DialCallDuration")
    fallback = request.args.get("fallback") == "1"
    contactlog.add_event(
        session,
        contact,
        "dial-ended",
        now,
        key=f"dial-ended:{_form('DialCallSid') or request.query_string.decode('latin-1')}",
        status=status,
        seconds=duration,
        fallback=fallback,
    )
    if status in ANSWERED_DIAL_STATUSES and (fallback or contact.answered_by):
        if fallback and contact.outcome == contactlog.IN_PROGRESS:
            contact.outcome = contactlog.FALLBACK
        contactlog.end_call(contact, now, None)
        return hang_up()
    # Nobody took it: the next colleague in rota order, or voicemail.
    if contact.answered_by and contact.outcome == contactlog.ANSWERED:
        # Accepted but never bridged (the caller hung up meanwhile): not answered after all.
        contact.answered_by = None
        contact.outcome = contactlog.IN_PROGRESS
    remaining = [s for s in request.args.get("remaining", "").split(",") if s]
    busy = contactlog.busy_staff(session, now)
    staff = [desk.staff_by_id[s] for s in remaining if s in desk.staff_by_id and s not in busy]
    if staff:
        return dial_colleagues(desk, contact.id, staff)
    return voicemail(desk, "unavailable", message_values(desk, contact.organisation, now))


def _safe_voicemail_action() -> VoiceResponse:
    desk = _safe_desk()
    return goodbye(desk, "voicemail_thanks", message_values(desk, "", clock_now()))


@bp.post("/voicemail", endpoint="voicemail")
@webhook(safe=_safe_voicemail_action)
def voicemail_done() -> VoiceResponse:
    """The <Record> action: the caller finished speaking (or said nothing)."""
    session = get_session()
    desk = current_desk(session)
    now = clock_now()
    contact = _call_contact(session, desk)
    values = message_values(desk, contact.organisation, now)
    seconds = _int_form("RecordingDuration")
    if not _form("RecordingUrl") or seconds == 0:
        contactlog.add_event(session, contact, "no-message", now, key="no-message")
        return goodbye(desk, "no_message", values)
    _log_recording(session, desk, contact, now)
    return goodbye(desk, "voicemail_thanks", values)


def _log_recording(session: Session, desk: Desk, contact: Contact, now: Any) -> None:
    sid = _form("RecordingSid")
    status = _form("RecordingStatus") or "completed"
    seconds = _int_form("RecordingDuration")
    contactlog.add_event(
        session,
        contact,
        "recording",
        now,
        key=f"recording:{sid}:{status}",
        status=status,
        seconds=seconds,
        recording_sid=sid,
    )
    if status != "completed" or not _form("RecordingUrl"):
        return
    if contact.recording_sid:
        if contact.recording_sid != sid:
            log.warning("call %s has a second recording %s", contact.reference, sid)
        return  # Twilio told us twice (the <Record> action and the status callback)
    contact.recording_sid = sid or None
    contact.recording_url = _form("RecordingUrl")
    contact.recording_seconds = seconds
    if contact.outcome in (contactlog.IN_PROGRESS, contactlog.MISSED):
        contact.outcome = contactlog.VOICEMAIL
    try:
        notify_voicemail(session, current_app, desk, contact, now)
    except Exception:
        # The voicemail itself is logged either way; only the mail about it is missing.
        log.exception("could not queue the notice for the voicemail of %s", contact.reference)


# What a failed callback leaves in the log: Twilio's ids and statuses, no phone numbers.
LOGGED_CALLBACK_FIELDS = (
    "CallSid",
    "CallStatus",
    "CallDuration",
    "RecordingSid",
    "RecordingUrl",
    "RecordingStatus",
    "RecordingDuration",
)


def _log_callback_failure() -> Response:
    # Twilio does not retry these; keep what it told us in the log so nothing is lost.
    fields = {k: request.form[k] for k in LOGGED_CALLBACK_FIELDS if k in request.form}
    log.error("could not record %s callback: %s", request.path, fields)
    return no_content()


@bp.post("/recording")
@webhook(safe=_log_callback_failure)
def recording() -> Response:
    """Recording status callback: the voicemail file is ready (or absent)."""
    session = get_session()
    desk = current_desk(session)
    contact = _call_contact(session, desk)
    _log_recording(session, desk, contact, clock_now())
    return no_content()


@bp.post("/status")
@webhook(safe=_log_callback_failure)
def status() -> Response:
    """Call status callback: the call's final outcome and duration."""
    session = get_session()
    desk = current_desk(session)
    now = clock_now()
    contact = _call_contact(session, desk)
    call_status = _form("CallStatus")[:32] or "unknown"
    contactlog.add_event(
        session,
        contact,
        "status",
        now,
        key=f"status:{call_status}:{_form('SequenceNumber')}",
        status=call_status,
        seconds=_int_form("CallDuration"),
    )
    contact.call_status = call_status
    if call_status in FINAL_CALL_STATUSES:
        contactlog.end_call(contact, now, _int_form("CallDuration"))
    elif call_status not in ("queued", "initiated", "ringing", "in-progress"):
        log.warning("call %s: unknown CallStatus %r stored", contact.reference, call_status)
    return no_content()


def _bare_fallback() -> VoiceResponse:
    return voicemail(UNKNOWN_DESK, "technical_trouble", {"desk": UNKNOWN_DESK.name})


@bp.post("/fallback")
@webhook(safe=_bare_fallback, database=False)
def fallback() -> VoiceResponse:
    """The number's Fallback URL: Twilio could not use our primary answer. No database here."""
    log.error(
        "Twilio used the fallback URL (ErrorCode %s, ErrorUrl %s)",
        _form("ErrorCode") or "-",
        _form("ErrorUrl") or "-",
    )
    return _safe_voicemail()
