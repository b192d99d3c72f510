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

import logging
from datetime import datetime

from flask import Response, request
from twilio.base.exceptions import TwilioException
from twilio.twiml.voice_response import Dial, VoiceResponse

from intake.core import callbacks, contactlog, lifecycle, queueing
from intake.core.announcements import MUSIC
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk
from intake.core.lifecycle import add_event
from intake.core.models import Contact, QueueEntry
from intake.core.phones import can_call_back
from routing.desk import Desk, Staff
from routing.rota import on_shift

from . import bp
from .recordings import recording_url
from .rest import CallbackRefused, can_place_calls, place_callback, rest_client, spoken_number
from .signature import twilio_url
from .twiml import hang_up, message_values, press_one, say, voicemail
from .webhook import (
    contact_arg,
    form_int,
    form_value,
    log_callback_failure,
    no_content,
    safe_voicemail,
    webhook,
)

log = logging.getLogger(__name__)

# Between two announcements: time to press 1, then quiet (Twilio repeats the wait URL).
OFFER_SECONDS = 10
QUIET_SECONDS = 15
# Twilio's own hold music, the one its default wait URL plays.
TWILIO_HOLD_MUSIC = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"


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
    # The desk's own music, uploaded, before the music the definition names. It plays to
    # its end before the caller hears their place again.
    music = recording_url(MUSIC, desk.language) or desk.voice.queue_music
    if music:
        response.play(TWILIO_HOLD_MUSIC if music == "twilio" else music)
    else:
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


# --- a colleague free again: the first in line is theirs ------------------------------------


def offer_to_free_colleague(desk: Desk, staff_id: str, now: datetime) -> None:
    """`staff_id`'s call just ended: ring them for the first caller waiting, or call back
    the first callback request in its turn. Commits the offer before ringing anyone."""
    staff = desk.staff_by_id.get(staff_id)
    if staff is None or not staff.phone or not can_place_calls():
        return
    if staff_id not in {s.id for s in on_shift(desk, now)}:
        return  # their shift is over: the next colleague free takes it
    session = get_session()
    if staff_id in contactlog.busy_staff(session, now):
        return  # on another call after all (a callback of theirs under way)
    entry = queueing.offer_next(session, staff_id, now)
    contact = session.get(Contact, entry.contact_id) if entry is not None else None
    session.commit()
    if entry is None or contact is None:
        return
    if entry.result == queueing.CALLBACK:
        _call_back_in_turn(desk, contact, staff, now)
        return
    try:
        rest_client().calls.create(
            to=staff.phone,
            from_=entry.line,
            url=twilio_url("voice.queue_colleague", contact=contact.id, staff=staff.id),
            method="POST",
            status_callback=twilio_url(
                "voice.queue_colleague_status", contact=contact.id, staff=staff.id
            ),
            status_callback_method="POST",
            status_callback_event=["completed"],
            timeout=desk.voice.ring_seconds,
        )
    except (TwilioException, OSError) as exc:
        log.error("queue: could not ring %s for %s: %s", staff.id, contact.reference, exc)
        queueing.offer_declined(session, contact.id, staff.id)
        session.commit()


def _call_back_in_turn(desk: Desk, contact: Contact, staff: Staff, now: datetime) -> None:
    """A callback request's turn: the helpline callback, the colleague's phone first."""
    session = get_session()
    try:
        callback = callbacks.start(session, contact, staff=staff.id, by="queue", now=now)
    except callbacks.CallbackUnderWay:
        session.rollback()
        return
    session.commit()
    try:
        sid = place_callback(desk, callback, contact, staff.phone)
    except CallbackRefused as exc:
        callbacks.refused(session, callback, now, str(exc))
    else:
        callbacks.placed(session, callback, sid)
    session.commit()


@bp.post("/queue/colleague")
@webhook(safe=hang_up)
def queue_colleague() -> VoiceResponse:
    """The free colleague answered: a caller waits; 1 takes them."""
    session = get_session()
    contact = session.get(Contact, contact_arg())
    staff = request.args.get("staff", "")
    if contact is None:
        return hang_up()
    desk = current_desk(session)
    action = twilio_url("voice.queue_take", contact=contact.id, staff=staff)
    organisation = contact.organisation or desk.name
    return press_one(desk, action, OFFER_SECONDS, "screen_prompt", organisation=organisation)


@bp.post("/queue/take")
@webhook(safe=hang_up)
def queue_take() -> VoiceResponse:
    """The colleague pressed 1: Twilio bridges them with the first caller in the queue."""
    session = get_session()
    entry = session.get(QueueEntry, contact_arg())
    staff = request.args.get("staff", "")
    if entry is None or form_value("Digits") != "1" or entry.left_at is not None:
        return hang_up()
    response = VoiceResponse()
    dial = Dial(
        action=twilio_url("voice.queue_taken", contact=entry.contact_id, staff=staff),
        method="POST",
    )
    dial.queue(queue_name(entry.line), url=twilio_url("voice.queue_bridging", staff=staff))
    response.append(dial)
    return response


@bp.post("/queue/bridging")
@webhook(safe=VoiceResponse)
def queue_bridging() -> VoiceResponse:
    """Asked for the caller Twilio takes out of the queue, just before they are connected:
    the colleague now has the call (and counts as busy), and the wait is over."""
    session = get_session()
    contact = contactlog.find_call(session, form_value("CallSid"))
    staff = request.args.get("staff", "")
    if contact is not None and staff:
        now = clock_now()
        lifecycle.call_accepted(session, contact, now, staff=staff)
        queueing.left(session, contact, now, "bridged", seconds=form_int("QueueTime"))
    return VoiceResponse()  # connected at once


@bp.post("/queue/taken")
@webhook(safe=hang_up)
def queue_taken() -> VoiceResponse:
    """The colleague's <Dial><Queue> ended: the conversation is over, or nobody was there."""
    return hang_up()


@bp.post("/queue/colleague-status")
@webhook(safe=log_callback_failure)
def queue_colleague_status() -> Response:
    """The call to the free colleague ended. Not taken (no answer, no 1): the caller is
    offered again in their place, to the next colleague free."""
    queueing.offer_declined(get_session(), contact_arg(), request.args.get("staff", ""))
    return no_content()
