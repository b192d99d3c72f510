"""The TwiML documents we answer with, built with the `twilio` package's classes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from xml.sax.saxutils import escape

from flask import Response
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from intake.core.models import reference_for
from intake.core.texts import last_resort_text, render
from routing.desk import Desk, Staff, VoiceSettings
from routing.plan import CallPlan
from routing.voices import default_voice, desk_voice, say_chunks
from routing.wording import describe_moment

from .recordings import recording_url
from .signature import twilio_url

log = logging.getLogger(__name__)

# Seconds of silence that end a voicemail; and how long a colleague has to press 1.
RECORD_SILENCE_SECONDS = 8
SCREEN_SECONDS = 8

# Twilio rings at most ten <Number>s of one <Dial> at once.
MAX_NUMBERS_PER_DIAL = 10

# What the desk is called when no definition could be read at all.
UNKNOWN_DESK = Desk(name="de helpdesk")

_LAST_VOICE = default_voice(UNKNOWN_DESK.language)


def last_resort(base: str = "") -> str:
    """When even a webhook's safe answer failed: fixed TwiML in Dutch, in the default voice.

    Written out without the twilio classes that may be what failed. `base` is the URL the
    voice webhooks live under ("https://host/voice/"); without one, URLs are relative to
    the request's, which Twilio resolves the same way.
    """
    attr = escape(base, {'"': "&quot;"})
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Say voice="{_LAST_VOICE.name}" language="{_LAST_VOICE.locale}">'
        f"{escape(last_resort_text('nl'))}</Say>"
        f'<Record action="{attr}voicemail" method="POST"'
        f' recordingStatusCallback="{attr}recording"'
        f' maxLength="{VoiceSettings().max_voicemail_seconds}" timeout="{RECORD_SILENCE_SECONDS}"/>'
        "<Hangup/></Response>"
    )


def twiml(response: VoiceResponse) -> Response:
    return Response(str(response), status=200, mimetype="text/xml")


def say(response: VoiceResponse | Gather, desk: Desk, key: str, /, **values: str) -> None:
    """The text `key` in the desk's voice: one <Say>, or more when Twilio's limit needs it.

    When the coordinator recorded this text, the recording is played instead. A blank text
    says nothing: Twilio refuses an empty <Say>.
    """
    played = recording_url(key, desk.language)
    if played is not None:
        response.play(played)
        return
    voice = desk_voice(desk)
    for chunk in say_chunks(render(desk, key, **values), voice):
        response.say(chunk, voice=voice.name, language=voice.locale)


def message_values(
    desk: Desk, organisation: str, now: datetime, plan: CallPlan | None = None
) -> dict[str, str]:
    values = {
        "desk": desk.name,
        "organisation": organisation or desk.name,
        "email": desk.email,
        "website": desk.website,
    }
    if plan is not None and plan.next_opening is not None:
        values["next_opening"] = describe_moment(plan.next_opening, now, desk.language)
    if plan is not None and plan.closure_name:
        values["closure_name"] = plan.closure_name
    return values


def voicemail(desk: Desk, key: str, values: dict[str, str]) -> VoiceResponse:
    """The message `key`, the beep, and a recording; a silent caller hears a goodbye."""
    response = VoiceResponse()
    say(response, desk, key, **values)
    response.record(
        action=twilio_url("voice.voicemail"),
        method="POST",
        max_length=desk.voice.max_voicemail_seconds,
        timeout=RECORD_SILENCE_SECONDS,
        finish_on_key="#",
        play_beep=True,
        recording_status_callback=twilio_url("voice.recording"),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )
    # Twilio goes on here only when nothing was recorded: never loop back into <Record>.
    say(response, desk, "no_message", **values)
    response.hangup()
    return response


def closed_key(plan: CallPlan) -> str:
    if plan.action != "voicemail":
        return "unavailable"
    if plan.reason == "closure" and plan.closure_name:
        return "closure"
    if plan.reason in ("closed", "closure"):
        return "closed" if plan.next_opening is not None else "closed_no_next"
    return "unavailable"


def dial_colleagues(
    desk: Desk,
    contact_id: int,
    staff: Sequence[Staff],
    *,
    greeting: dict[str, str] | None = None,
    line: str = "",
) -> VoiceResponse:
    """Ring the first round of `staff`; the rest wait in the <Dial action> for the next round.

    A round is one colleague (sequential) or up to ten at once (simultaneous). The caller
    hears ringing until a colleague accepts. With the desk's `show_line_to_staff`, their
    phones show `line` (the number the patient called) instead of the patient's number.
    """
    size = 1 if desk.voice.strategy == "sequential" else MAX_NUMBERS_PER_DIAL
    targets, remaining = staff[:size], staff[size:]
    if remaining and size > 1:
        log.info(
            "call %s: %d colleagues to ring, Twilio rings at most %d at once:"
            " the other %d ring in the next round",
            reference_for(contact_id),
            len(staff),
            size,
            len(remaining),
        )
    response = VoiceResponse()
    if greeting is not None:
        say(response, desk, "greeting", **greeting)
    rest = ",".join(s.id for s in remaining)
    action_values: dict[str, object] = {"contact": contact_id}
    if rest:
        action_values["remaining"] = rest
    dial = Dial(
        action=twilio_url("voice.dial_result", **action_values),
        method="POST",
        timeout=desk.voice.ring_seconds,
        answer_on_bridge=True,
        caller_id=line if desk.voice.show_line_to_staff and line.startswith("+") else None,
    )
    for colleague in targets:
        dial.number(
            colleague.phone,
            url=twilio_url("voice.screen", contact=contact_id, staff=colleague.id),
            method="POST",
        )
    response.append(dial)
    return response


def dial_fallback(desk: Desk, contact_id: int, greeting: dict[str, str]) -> VoiceResponse:
    response = VoiceResponse()
    say(response, desk, "greeting", **greeting)
    dial = Dial(
        action=twilio_url("voice.dial_result", contact=contact_id, fallback=1),
        method="POST",
        timeout=desk.voice.ring_seconds,
        answer_on_bridge=True,
    )
    dial.number(desk.voice.fallback_number)
    response.append(dial)
    return response


def screen_prompt(desk: Desk, contact_id: int, staff_id: str, organisation: str) -> VoiceResponse:
    """What a colleague hears on picking up: press 1 to take the call; else this leg ends."""
    action = twilio_url("voice.screen_result", contact=contact_id, staff=staff_id)
    return press_one(desk, action, SCREEN_SECONDS, "screen_prompt", organisation=organisation)


def press_one(desk: Desk, action: str, seconds: int, key: str, /, **values: str) -> VoiceResponse:
    """A colleague's phone picked up (a call to take, a caller waiting, a patient to call
    back): the text `key` twice, and their 1 goes to `action`; no key ends this leg."""
    response = VoiceResponse()
    gather = response.gather(num_digits=1, timeout=seconds, action=action, method="POST")
    voice = desk_voice(desk)
    chunks = say_chunks(render(desk, key, **values), voice)
    # Said twice, for a colleague who answered with the phone still on the way to the ear.
    if len(chunks) == 1:
        gather.say(chunks[0], voice=voice.name, language=voice.locale, loop=2)
    else:
        for chunk in chunks * 2:
            gather.say(chunk, voice=voice.name, language=voice.locale)
    # No key (a personal voicemail picked up, or nobody listening): drop only this leg.
    response.hangup()
    return response


def hang_up() -> VoiceResponse:
    response = VoiceResponse()
    response.hangup()
    return response


def goodbye(desk: Desk, key: str, values: dict[str, str]) -> VoiceResponse:
    response = VoiceResponse()
    say(response, desk, key, **values)
    response.hangup()
    return response
