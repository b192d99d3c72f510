"""Calling a patient back through the helpline (intake/core/callbacks.py keeps the record).

`place_callback` asks Twilio's REST API (the `twilio` package's own `Client`) to ring the
colleague's phone from the line the patient called. Twilio then requests:

    /voice/callback/colleague   the colleague answered: who the call is for, press 1
    /voice/callback/connect     the 1: <Dial callerId=line> the patient, so the patient
                                sees the helpline's number, never the colleague's
    /voice/callback/result      the patient's leg ended: answered, busy, no answer
    /voice/callback/status      the colleague's call ended (status callback)

Each is signed by Twilio and answered with TwiML whatever fails, like every webhook here.
"""

from __future__ import annotations

import logging
from typing import Any

import phonenumbers
from flask import Response, current_app, request
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from intake.core import callbacks
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk
from intake.core.models import Callback, Contact
from intake.core.phones import DEFAULT_REGION
from routing.desk import Desk

from . import bp
from .signature import twilio_url
from .twiml import goodbye, hang_up, say
from .webhook import form_int, form_value, log_callback_failure, no_content, webhook

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
PRESS_SECONDS = 10  # for the colleague to press 1 after the prompt
PATIENT_RING_SECONDS = 30  # a patient may need longer to reach the phone than a colleague


class CallbackRefused(Exception):
    """Twilio would not place the call; the message is what a colleague can act on."""


class _ApiBase(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's own HTTP client, sending to TWILIO_API_BASE: Twilio itself in production,
    the local stand-in in tests. Only the host changes; every request is the library's."""

    def __init__(self, base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base = base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        if self.base != TWILIO_API and url.startswith(TWILIO_API):
            url = self.base + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def rest_client() -> Client:
    config = current_app.config
    base = str(config.get("TWILIO_API_BASE") or TWILIO_API)
    return Client(
        config.get("TWILIO_ACCOUNT_SID", ""),
        config.get("TWILIO_AUTH_TOKEN", ""),
        http_client=_ApiBase(base, timeout=10),
    )


def can_place_calls() -> bool:
    config = current_app.config
    return bool(config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN"))


def place_callback(desk: Desk, callback: Callback, contact: Contact, colleague_phone: str) -> str:
    """Ring the colleague from the patient's line; the colleague leg's CallSid."""
    try:
        call = rest_client().calls.create(
            to=colleague_phone,
            from_=contact.via,
            url=twilio_url("voice.callback_colleague", callback=callback.id),
            method="POST",
            status_callback=twilio_url("voice.callback_status", callback=callback.id),
            status_callback_method="POST",
            status_callback_event=["completed"],
            timeout=desk.voice.ring_seconds,
        )
    except TwilioRestException as exc:
        raise CallbackRefused(f"Twilio refused the call ({exc.code}: {exc.msg})") from None
    except (TwilioException, OSError) as exc:
        raise CallbackRefused(f"Twilio could not be reached ({type(exc).__name__})") from None
    return str(call.sid)


def spoken_number(number: str) -> str:
    """A number for text-to-speech, a digit at a time with a pause between the groups a
    person says: "0 6, 8 7, 6 5, 4 3, 2 1" for 06 87654321, "0 8 5, 1 2 3, 4 5 6 7"."""
    try:
        parsed = phonenumbers.parse(number, None)
        style = phonenumbers.PhoneNumberFormat.NATIONAL
        if phonenumbers.region_code_for_number(parsed) != DEFAULT_REGION:
            style = phonenumbers.PhoneNumberFormat.INTERNATIONAL
        written = phonenumbers.format_number(parsed, style)
    except phonenumbers.NumberParseException:
        written = number
    groups: list[str] = []
    for group in written.split():
        digits = [ch for ch in group if ch.isdigit()]
        if len(digits) > 4:  # a long run is said in pairs
            groups.extend(" ".join(digits[i : i + 2]) for i in range(0, len(digits), 2))
        elif digits:
            groups.append(" ".join(digits))
    return ", ".join(groups)


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
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1,
        timeout=PRESS_SECONDS,
        action=twilio_url("voice.callback_connect", callback=callback.id),
        method="POST",
    )
    values = {
        "desk": desk.name,
        "organisation": contact.organisation or desk.name,
        "patient": spoken_number(contact.caller),
        "reference": contact.reference,
    }
    say(gather, desk, "callback_prompt", **values)
    say(gather, desk, "callback_prompt", **values)  # twice: the phone may be on its way up
    response.hangup()  # no 1: the status callback ends it as declined
    return response


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
    if found is not None:
        callbacks.colleague_leg_ended(
            get_session(), found[0], form_value("CallStatus"), clock_now()
        )
    return no_content()
