"""Calling a patient back through the helpline (intake/core/callbacks.py keeps the record).

`voice.rest.place_callback` asks Twilio's REST API to ring the colleague's phone from the
line the patient called. Twilio then requests:

    /voice/callback/colleague   the colleague answered: who the call is for, press 1
    /voice/callback/connect     the 1: <Dial callerId=line> the patient, so the patient
                                sees the helpline's number, never the colleague's
    /voice/callback/result      the patient's leg ended: answered, busy, no answer
    /voice/callback/status      the colleague's call ended (status callback)

Each is signed by Twilio and answered with TwiML whatever fails, like every webhook here.
"""

from __future__ import annotations

import logging

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse

from intake.core import callbacks
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk
from intake.core.models import Callback, Contact

from . import bp
from .queue import offer_to_free_colleague
from .rest import spoken_number
from .signature import twilio_url
from .twiml import goodbye, hang_up, press_one
from .webhook import form_int, form_value, log_callback_failure, no_content, webhook

log = logging.getLogger(__name__)

PRESS_SECONDS = 10  # for the colleague to press 1 after the prompt
PATIENT_RING_SECONDS = 30  # a patient may need longer to reach the phone than a colleague


# --- the webhooks ---------------------------------------------------------------------------


def _callback_and_contact() -> tuple[Callback, Contact] | None:
    """The callback our own URL names (?callback=ID), and its contact."""
    raw = request.args.get("callback", "")
    session = get_session()
    callback = session.get(Callback, int(raw)) if raw.isdigit() else None
    if callback is None:
        return None
    contact = session.get(Contact, callback.contact_id)
    return (callback, contact) if contact is not None else None


def _safe_hang_up() -> VoiceResponse:
    return hang_up()


@bp.post("/callback/colleague")
@webhook(safe=_safe_hang_up)
def callback_colleague() -> VoiceResponse:
    """The colleague answered: which patient, and press 1 to ring them."""
    found = _callback_and_contact()
    if found is None or found[0].ended_at is not None:
        return hang_up()
    callback, contact = found
    desk = current_desk(get_session())
    values = {
        "desk": desk.name,
        "organisation": contact.organisation or desk.name,
        "patient": spoken_number(contact.caller),
        "reference": contact.reference,
    }
    # No 1: the status callback ends it as declined.
    action = twilio_url("voice.callback_connect", callback=callback.id)
    return press_one(desk, action, PRESS_SECONDS, "callback_prompt", **values)


@bp.post("/callback/connect")
@webhook(safe=_safe_hang_up)
def callback_connect() -> VoiceResponse:
    """The colleague pressed 1: ring the patient, showing the line's number."""
    found = _callback_and_contact()
    if found is None or form_value("Digits") != "1":
        return hang_up()
    callback, contact = found
    session = get_session()
    if not callbacks.ringing_patient(session, callback, clock_now()):
        return hang_up()  # Twilio repeating the request, or the callback already over
    response = VoiceResponse()
    dial = response.dial(
        caller_id=contact.via,
        timeout=PATIENT_RING_SECONDS,
        action=twilio_url("voice.callback_result", callback=callback.id),
        method="POST",
    )
    dial.number(contact.caller)
    return response


@bp.post("/callback/result")
@webhook(safe=_safe_hang_up)
def callback_result() -> VoiceResponse:
    """The patient's leg ended (the <Dial> action)."""
    found = _callback_and_contact()
    if found is None:
        return hang_up()
    callback, _contact = found
    session = get_session()
    status = form_value("DialCallStatus")
    callbacks.patient_leg_ended(
        session, callback, status, form_int("DialCallDuration"), clock_now()
    )
    if status in ("completed", "answered"):
        return hang_up()
    desk = current_desk(session)
    return goodbye(desk, "callback_not_reached", {"desk": desk.name})


@bp.post("/callback/status")
@webhook(safe=log_callback_failure)
def callback_status() -> Response:
    """The colleague's call is over: if the patient was never rung, that is why."""
    found = _callback_and_contact()
    if found is None:
        return no_content()
    callback = found[0]
    session, now = get_session(), clock_now()
    callbacks.colleague_leg_ended(session, callback, form_value("CallStatus"), now)
    if form_value("CallStatus") == "completed":
        # The colleague is free again: the first caller waiting in the queue is theirs.
        offer_to_free_colleague(current_desk(session), callback.staff, now)
    return no_content()
