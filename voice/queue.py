"""The call queue's TwiML and webhooks (the order and the places are intake/core/queueing.py).

When every colleague on shift is on a call, `/voice/incoming` answers with `enqueue`: the
caller hears that everyone is busy and waits in the line's queue (`<Enqueue>`). Twilio
then requests:

    /voice/queue/wait    over and over while the caller waits: their place ("u bent
                         nummer 2"), about how long it takes once Twilio knows, and "press 1
                         to be called back" (not to a withheld number); after the desk's
                         `max_wait_seconds`, `<Leave>` to leave a voicemail
    /voice/queue/press   the caller pressed 1: we say the number we will call, keep their
                         place, and they leave the queue
    /voice/queue/left    the <Enqueue action>: how the wait ended (voicemail after too long,
                         hung up, bridged to a colleague, a callback asked for)
"""

from __future__ import annotations

from datetime import datetime

from flask import Response
from twilio.twiml.voice_response import VoiceResponse

from intake.core import queueing
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk
from intake.core.lifecycle import add_event
from intake.core.models import Contact
from intake.core.phones import can_call_back
from routing.desk import Desk

from . import bp
from .callbacks import spoken_number
from .signature import twilio_url
from .twiml import hang_up, message_values, say, voicemail
from .webhook import contact_arg, form_int, form_value, safe_voicemail, webhook

# Between two announcements: time to press 1, then quiet (Twilio repeats the wait URL).
OFFER_SECONDS = 10
QUIET_SECONDS = 15


def queue_name(line: str) -> str:
    """One Twilio queue per line (a friendly name of at most 64 characters)."""
    return "line-" + "".join(ch for ch in line if ch.isalnum())[:58]


def enqueue(desk: Desk, contact_id: int, line: str, values: dict[str, str]) -> VoiceResponse:
    response = VoiceResponse()
    say(response, desk, "queue_intro", **values)
    response.enqueue(
        queue_name(line),
        wait_url=twilio_url("voice.queue_wait", contact=contact_id),
        wait_url_method="POST",
        action=twilio_url("voice.queue_left", contact=contact_id),
        method="POST",
    )
    return response


def queue_or_voicemail(
    desk: Desk, contact_id: int, line: str, now: datetime, values: dict[str, str]
) -> VoiceResponse:
    """A place in the line's queue; voicemail when the queue is full."""
    session = get_session()
    contact = session.get(Contact, contact_id)
    if contact is not None and queueing.join(
        session, contact, line, now, size=desk.voice.queue_size
    ):
        return enqueue(desk, contact_id, line, values)
    if contact is not None:
        add_event(session, contact, "queue", now, key="queue:full", stage="full")
    return voicemail(desk, "unavailable", values)


def _keep_waiting() -> VoiceResponse:
    # Without the database the caller keeps their place, in silence, until it is back.
    response = VoiceResponse()
    response.pause(length=QUIET_SECONDS)
    return response


@bp.post("/queue/wait")
@webhook(safe=_keep_waiting)
def queue_wait() -> VoiceResponse:
    session = get_session()
    contact = session.get(Contact, contact_arg())
    if contact is None:
        return _keep_waiting()
    desk = current_desk(session)
    queueing.wait_reported(session, contact.id, form_value("QueueSid"))
    waited = form_int("QueueTime")
    if waited is None:
        waited = queueing.waited_seconds(session, contact.id, clock_now())
    response = VoiceResponse()
    if waited >= desk.voice.max_wait_seconds:
        say(response, desk, "queue_too_long", desk=desk.name)
        response.leave()  # the <Enqueue action> takes the voicemail
        return response
    say(response, desk, "queue_place", position=str(queueing.place(session, contact.id)))
    average = form_int("AvgQueueTime") or 0
    if average >= 60:
        say(response, desk, "queue_expected", minutes=str(round(average / 60)))
    if can_call_back(contact.caller):
        gather = response.gather(
            num_digits=1,
            timeout=OFFER_SECONDS,
            action=twilio_url("voice.queue_press", contact=contact.id),
            method="POST",
        )
        say(gather, desk, "queue_callback_offer", desk=desk.name)
    response.pause(length=QUIET_SECONDS)
    return response


@bp.post("/queue/press")
@webhook(safe=_keep_waiting)
def queue_press() -> VoiceResponse:
    """The caller pressed a key while waiting: 1 asks to be called back."""
    session = get_session()
    contact = session.get(Contact, contact_arg())
    if contact is None or form_value("Digits") != "1" or not can_call_back(contact.caller):
        return _keep_waiting()  # back to waiting: Twilio asks the wait URL again
    desk = current_desk(session)
    queueing.callback_wanted(session, contact, clock_now())
    response = VoiceResponse()
    say(response, desk, "queue_callback_confirmed", number=spoken_number(contact.caller))
    response.leave()
    return response


@bp.post("/queue/left")
@webhook(safe=safe_voicemail)
def queue_left() -> VoiceResponse | Response:
    """The <Enqueue action>: the wait is over, and Twilio says how (QueueResult)."""
    session = get_session()
    contact = session.get(Contact, contact_arg())
    now = clock_now()
    outcome = form_value("QueueResult")
    desk = current_desk(session)
    if contact is None:
        return hang_up()
    result = {"leave": "voicemail", "hangup": "hangup", "bridged": "bridged"}.get(outcome, "error")
    queueing.left(session, contact, now, result, seconds=form_int("QueueTime"))
    # A caller who asked to be called back heard so before leaving; one who hung up or was
    # put through is gone or talking: nothing more to say.
    if queueing.result_of(session, contact.id) == queueing.CALLBACK or outcome in (
        "hangup",
        "bridged",
    ):
        return hang_up()
    values = message_values(desk, contact.organisation, now)
    return voicemail(desk, "unavailable", values)
