"""Every answer of the phone line is TwiML a real Twilio account accepts.

Each path a call can take is played as Twilio would, and every document that comes back
is held against Twilio's documented limits: which verbs may nest in which, the
attributes and values of each verb, at most ten <Number>s per <Dial>, the ranges of
`timeout` and `maxLength`, absolute URLs, and a voice on every <Say> that speaks the
<Say>'s language, with no more text than that voice's provider takes.

The paths include the call queue (the <Enqueue>, the wait URL Twilio asks while the
caller waits, the free colleague's <Dial><Queue>), calling a patient back, and the desk's
own recordings played instead of a spoken text. A document is held against the verbs
Twilio runs where it is used: a call's own TwiML, a wait URL's (the only place for
<Leave>), or a <Queue url>'s.
"""

# ruff: noqa: F811  (the fixtures of voicecalls, imported by name, are arguments)
from __future__ import annotations

import dataclasses
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from types import MappingProxyType
from urllib.parse import quote

import pytest
from flask import Flask

from intake import create_app
from intake.core.clock import SimClock
from routing.desk import Desk, Shift, Staff, TimeRange
from routing.voices import DEFAULT_VOICES, VOICES, find_voice
from voice import webhook
from voice.simulator import CallSimulation, TwilioSide, new_sid

from .audio import mp3_bytes, upload, wav_bytes
from .auth import COORDINATOR, STAFF, AuthActions, csrf_token
from .conftest import (
    ANNA,
    AUTH_TOKEN,
    BRAM,
    LINE_NOORD,
    PUBLIC_URL,
    Twilio,
    app_config,
    load_desk,
    local,
    new_call,
)
from .factories import add_contact
from .twilioapi import PlacedCall, TwilioApi
from .twiml import dialled, only, said, tags
from .voicecalls import (  # noqa: F401  (fixtures, used by name)
    PATIENT,
    QUEUE_SID,
    busy_calls,
    twilio_api,
)
from .voicecalls import colleague_leg as placed_leg

# --- Twilio's documented limits -----------------------------------------------------------
# https://www.twilio.com/docs/voice/twiml (which verbs nest), .../say, .../dial, .../number,
# .../gather, .../record, .../hangup, .../play, .../pause, .../enqueue, .../leave, .../queue;
# error 13521 for the text of one <Say>.

TOP_LEVEL = frozenset(
    {"Say", "Dial", "Gather", "Record", "Hangup", "Pause", "Play", "Redirect", "Enqueue"}
)
# .../enqueue (waitUrl): what Twilio runs while the caller waits, and where <Leave> belongs
# (.../leave: "used in conjunction with <Enqueue>"). The answer to a <Gather action> of the
# wait URL is run there too: the caller is still in the queue.
WAIT_URL = frozenset({"Play", "Say", "Pause", "Hangup", "Redirect", "Leave", "Gather"})
# .../queue (url): run for the caller taken out of the queue, before the two are connected.
QUEUE_URL = frozenset({"Play", "Say", "Pause", "Redirect"})
INSIDE = {"Gather": {"Say", "Play", "Pause"}, "Dial": {"Number", "Queue"}}
ATTRIBUTES = {
    "Say": {"voice", "language", "loop"},
    "Dial": {"action", "method", "timeout", "answerOnBridge", "callerId", "timeLimit"},
    "Number": {"url", "method", "sendDigits", "statusCallback", "statusCallbackEvent"},
    "Gather": {"action", "method", "timeout", "numDigits", "finishOnKey", "input"},
    "Record": {
        "action",
        "method",
        "timeout",
        "finishOnKey",
        "maxLength",
        "playBeep",
        "trim",
        "recordingStatusCallback",
        "recordingStatusCallbackMethod",
        "recordingStatusCallbackEvent",
    },
    "Hangup": set(),
    "Play": {"loop", "digits"},
    "Pause": {"length"},
    "Enqueue": {"action", "method", "waitUrl", "waitUrlMethod", "workflowSid"},
    "Leave": set(),
    "Queue": {"url", "method", "reservationSid", "postWorkActivitySid"},
}
URL_ATTRIBUTES = {"action", "url", "waitUrl", "recordingStatusCallback", "statusCallback"}
METHOD_ATTRIBUTES = ("method", "waitUrlMethod", "recordingStatusCallbackMethod")
E164 = r"\+[1-9][0-9]{6,14}"
MAX_NUMBERS_PER_DIAL = 10
QUEUE_NAME_LENGTH = 64  # .../enqueue: "64 characters or less"
DIAL_TIMEOUT = (5, 600)  # seconds; Twilio's maximum is 600
RECORD_MAX_LENGTH = (2, 14400)  # "greater than 1", at most four hours
SAY_BYTES = MappingProxyType({"Polly": 3000, "Google": 5000})  # error 13521
SAY_URL_ENCODED = 4500


def positive(value: str | None) -> int:
    assert value is not None and re.fullmatch(r"[1-9][0-9]*", value), value
    return int(value)


def check_say(say: ET.Element) -> None:
    text = say.text or ""
    assert text.strip(), "Twilio refuses an empty <Say> (error 13520)"
    assert len(say) == 0
    name, language = say.get("voice"), say.get("language")
    assert name and language, "without a voice Twilio speaks as `man`, who has no Dutch"
    found = find_voice(name)
    assert found is not None, f"{name} is not a voice Twilio lists"
    assert (found[1].name, found[1].locale) == (name, language), f"{name} does not speak {language}"
    assert len(text.encode("utf-8")) <= SAY_BYTES[name.split(".")[0]], len(text)
    assert len(quote(text)) <= SAY_URL_ENCODED
    if "loop" in say.attrib:
        assert re.fullmatch(r"[0-9]+", say.attrib["loop"])


def check_play(play: ET.Element) -> None:
    # .../play: the media URL is the text; loop "integer >= 0" (warning 13410); digits are
    # DTMF tones played instead of a file.
    if "digits" in play.attrib:
        digits = play.attrib["digits"]
        assert re.fullmatch(r"[0-9A-DwW#*]+", digits), f"<Play digits={digits}>"
    else:
        url = (play.text or "").strip()
        assert re.fullmatch(r"https?://\S+", url), f"<Play> of {url!r}: not an absolute URL"
    loop = play.get("loop", "1")
    assert re.fullmatch(r"[0-9]+", loop), f"<Play loop={loop}>"
    assert len(play) == 0


def check_queue_name(verb: ET.Element) -> None:
    """The text of an <Enqueue> or a <Queue> noun: the name of the queue."""
    name = (verb.text or "").strip()
    assert name, f"<{verb.tag}> names no queue"
    assert len(name) <= QUEUE_NAME_LENGTH, f"<{verb.tag}> {name}: over {QUEUE_NAME_LENGTH}"
    assert len(verb) == 0  # <Enqueue>'s one noun, <Task>, is TaskRouter's (workflowSid)


def check_verb(verb: ET.Element) -> None:
    assert verb.tag in ATTRIBUTES, f"<{verb.tag}>: no attributes of it in the table"
    allowed = ATTRIBUTES[verb.tag]
    assert set(verb.attrib) <= allowed, f"<{verb.tag}> {set(verb.attrib) - allowed}"
    for key in URL_ATTRIBUTES & set(verb.attrib):
        assert verb.attrib[key].startswith(PUBLIC_URL + "/voice/"), f"{key}={verb.attrib[key]}"
    for key in METHOD_ATTRIBUTES:
        if key in verb.attrib:
            assert verb.attrib[key] in ("GET", "POST"), f"{key}={verb.attrib[key]}"
    if verb.tag == "Say":
        check_say(verb)
    elif verb.tag == "Dial":
        nouns = list(verb)
        numbers = [noun for noun in nouns if noun.tag == "Number"]
        assert nouns, "a <Dial> of nothing"
        assert len(numbers) <= MAX_NUMBERS_PER_DIAL
        assert DIAL_TIMEOUT[0] <= positive(verb.get("timeout", "30")) <= DIAL_TIMEOUT[1]
        assert verb.get("answerOnBridge", "true") in ("true", "false")
        if "callerId" in verb.attrib:
            assert re.fullmatch(E164, verb.attrib["callerId"]), verb.attrib["callerId"]
        for number in numbers:
            assert re.fullmatch(E164, (number.text or "").strip())
    elif verb.tag in ("Enqueue", "Queue"):
        check_queue_name(verb)
    elif verb.tag == "Play":
        check_play(verb)
    elif verb.tag == "Pause":
        length = verb.get("length", "1")  # .../pause: "integer > 0" (warning 13910)
        assert re.fullmatch(r"[1-9][0-9]*", length), f"<Pause length={length}>"
        assert len(verb) == 0 and not (verb.text or "").strip()
    elif verb.tag == "Gather":
        positive(verb.get("timeout", "5"))
        positive(verb.get("numDigits", "1"))
        assert re.fullmatch(r"[0-9#*]?", verb.get("finishOnKey", "#"))
        assert len(verb) >= 1, "a <Gather> that says nothing waits in silence"
    elif verb.tag == "Record":
        length = positive(verb.get("maxLength", "3600"))
        assert RECORD_MAX_LENGTH[0] <= length <= RECORD_MAX_LENGTH[1]
        positive(verb.get("timeout", "5"))
        assert re.fullmatch(r"[0-9#*]+", verb.get("finishOnKey", "#"))
        assert verb.get("playBeep", "true") in ("true", "false")
        events = verb.get("recordingStatusCallbackEvent", "completed").split()
        assert set(events) <= {"in-progress", "completed", "absent"}
        assert len(verb) == 0
    elif verb.tag in ("Hangup", "Leave", "Number"):
        assert len(verb) == 0 or verb.tag == "Number"
    for child in verb:
        assert child.tag in INSIDE.get(verb.tag, set()), f"<{child.tag}> in <{verb.tag}>"
        check_verb(child)


def accepted(document: ET.Element, verbs: frozenset[str] = TOP_LEVEL) -> ET.Element:
    """`document`, after holding it against every limit above; `verbs` are those Twilio runs
    where the document is used: a call's own TwiML, a WAIT_URL's or a QUEUE_URL's."""
    assert document.tag == "Response" and not document.attrib
    for verb in document:
        assert verb.tag in verbs, f"<{verb.tag}> at the top"
        check_verb(verb)
    return document


def said_in(document: ET.Element) -> set[tuple[str, str]]:
    return {(s.attrib["voice"], s.attrib["language"]) for s in document.iter("Say")}


# --- the paths of a call ------------------------------------------------------------------


def legs(twilio: Twilio, dial: ET.Element, number: str, digits: str) -> tuple[ET.Element, ...]:
    leg = new_sid("CA")
    target = next(n for n in dial.iter("Number") if (n.text or "").strip() == number)
    prompt = accepted(twilio.leg(target.attrib["url"], leg, To=number))
    gather = only(prompt, "Gather")
    result = accepted(twilio.leg(gather.attrib["action"], leg, To=number, Digits=digits))
    return prompt, result


def test_an_answered_call_speaks_dutch_in_a_neural_dutch_voice(desk: Desk, twilio: Twilio) -> None:
    first = accepted(twilio.call())
    dial = only(first, "Dial")
    prompt, connected = legs(twilio, dial, ANNA, "1")
    _, late = legs(twilio, dial, BRAM, "1")
    ended = accepted(twilio.twiml(dial.attrib["action"], DialCallStatus="completed"))

    assert said_in(first) == said_in(prompt) == said_in(late) == {("Polly.Laura-Neural", "nl-NL")}
    assert tags(connected) == [] and tags(late) == ["Say", "Hangup"] and tags(ended) == ["Hangup"]


@pytest.mark.parametrize("digits", ["", "2", "#"])
def test_a_colleague_declining_gets_a_hangup_twilio_accepts(
    desk: Desk, twilio: Twilio, digits: str
) -> None:
    _, declined = legs(twilio, only(twilio.call(), "Dial"), ANNA, digits)

    assert tags(declined) == ["Hangup"]


def test_nobody_answering_ends_in_a_voicemail_twilio_accepts(desk: Desk, twilio: Twilio) -> None:
    dial = only(twilio.call(), "Dial")
    document = accepted(twilio.twiml(dial.attrib["action"], DialCallStatus="no-answer"))
    record = only(document, "Record")
    thanks = accepted(
        twilio.twiml(
            record.attrib["action"],
            RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            RecordingDuration="12",
            RecordingSid="RE" + "1" * 32,
        )
    )
    nothing = accepted(
        twilio.twiml(record.attrib["action"], RecordingUrl="", RecordingDuration="0")
    )

    assert tags(document) == ["Say", "Record", "Say", "Hangup"]
    assert record.attrib["maxLength"] == "120"
    assert tags(thanks) == tags(nothing) == ["Say", "Hangup"]


@pytest.mark.parametrize(
    ("moment", "heard"),
    [
        ("2026-11-22 14:00", "morgen om 8.30 uur"),  # a Sunday
        ("2026-04-27 10:00", "Koningsdag"),  # a closure day
        ("2026-11-25 12:45", "vandaag om 13.30 uur"),  # the lunch break
    ],
)
def test_closed_answers_are_accepted(
    desk: Desk, twilio: Twilio, clock: SimClock, moment: str, heard: str
) -> None:
    clock.moment = local(moment)

    document = accepted(twilio.call())

    assert heard in said(document)
    assert "Record" in tags(document)


def test_a_desk_that_never_opens_and_one_with_nobody_on_shift(
    app: Flask, example_desk: Desk, twilio: Twilio
) -> None:
    load_desk(app, dataclasses.replace(example_desk, hours=((),) * 7, shifts=(), changes=()))
    never = accepted(twilio.call())
    load_desk(app, dataclasses.replace(example_desk, shifts=(), changes=()))
    nobody = accepted(Twilio(twilio.side, new_sid("CA")).call())

    assert "Record" in tags(never) and "Record" in tags(nobody)


def test_the_fallback_number_is_dialled_within_the_limits(
    app: Flask, example_desk: Desk, twilio: Twilio
) -> None:
    voice = dataclasses.replace(
        example_desk.voice, fallback_number="+31201234567", ring_seconds=600
    )
    load_desk(app, dataclasses.replace(example_desk, shifts=(), voice=voice))

    document = accepted(twilio.call())

    assert only(document, "Dial").attrib["timeout"] == "600"
    assert dialled(document) == ["+31201234567"]


def test_sequential_rounds_are_each_accepted(
    app: Flask, example_desk: Desk, twilio: Twilio
) -> None:
    voice = dataclasses.replace(example_desk.voice, strategy="sequential")
    load_desk(app, dataclasses.replace(example_desk, voice=voice))

    first = accepted(twilio.call())
    second = accepted(twilio.twiml(only(first, "Dial").attrib["action"], DialCallStatus="busy"))
    last = accepted(twilio.twiml(only(second, "Dial").attrib["action"], DialCallStatus="failed"))

    assert (dialled(first), dialled(second)) == ([ANNA], [BRAM])
    assert "Record" in tags(last)


def crowded(example_desk: Desk, count: int) -> Desk:
    staff = tuple(
        Staff(id=f"s{i:02d}", name=f"Colleague {i}", phone=f"+316100000{i:02d}")
        for i in range(count)
    )
    shifts = tuple(
        Shift(staff=s.id, days=(0,), hours=TimeRange(time(8, 30), time(17))) for s in staff
    )
    return dataclasses.replace(example_desk, staff=staff, shifts=shifts, changes=())


def test_more_colleagues_than_twilio_rings_at_once_ring_in_rounds_of_ten(
    app: Flask, example_desk: Desk, twilio: Twilio, caplog: pytest.LogCaptureFixture
) -> None:
    """Twenty-three on shift: ten, ten, then three, in rota order, with no second greeting.

    A patient waits one more ring time per round rather than never reaching the
    thirteen who were not rung; the log says why the first round is not everyone.
    """
    desk = load_desk(app, crowded(example_desk, 23))
    phones = [s.phone for s in desk.staff]

    with caplog.at_level(logging.INFO, logger="voice.twiml"):
        first = accepted(twilio.call())
    second = accepted(
        twilio.twiml(only(first, "Dial").attrib["action"], DialCallStatus="no-answer")
    )
    third = accepted(
        twilio.twiml(only(second, "Dial").attrib["action"], DialCallStatus="no-answer")
    )
    _, connected = legs(twilio, only(third, "Dial"), phones[22], "1")

    assert [dialled(first), dialled(second), dialled(third)] == [
        phones[:10],
        phones[10:20],
        phones[20:],
    ]
    assert tags(second) == tags(third) == ["Dial"]
    assert tags(connected) == []
    assert "23 colleagues to ring, Twilio rings at most 10 at once" in caplog.text


# --- the queue ----------------------------------------------------------------------------


def queued(twilio: Twilio) -> ET.Element:
    """The caller's first request, accepted; the <Enqueue> in it."""
    return only(accepted(twilio.call()), "Enqueue")


def waiting(twilio: Twilio, enqueue: ET.Element, seconds: int = 20, average: int = 0) -> ET.Element:
    """Twilio asking the wait URL while the caller waits; the answer, accepted there."""
    document = twilio.twiml(
        enqueue.attrib["waitUrl"],
        QueueSid=QUEUE_SID,
        QueueTime=str(seconds),
        AvgQueueTime=str(average),
        CallStatus="queued",
    )
    return accepted(document, WAIT_URL)


def left(twilio: Twilio, enqueue: ET.Element, result: str, seconds: int) -> ET.Element:
    """The <Enqueue action>: the wait is over; the rest of the call, accepted."""
    return accepted(
        twilio.twiml(enqueue.attrib["action"], QueueResult=result, QueueTime=str(seconds))
    )


@pytest.mark.parametrize(
    ("music", "between"),
    [("", "Pause"), ("twilio", "Play"), ("https://helpdesk.example.org/wacht.mp3", "Play")],
)
def test_a_caller_waiting_in_the_queue_gets_twiml_twilio_accepts(
    app: Flask,
    example_desk: Desk,
    busy_calls: dict[str, str],
    twilio: Twilio,
    music: str,
    between: str,
) -> None:
    voice = dataclasses.replace(example_desk.voice, queue_music=music)
    load_desk(app, dataclasses.replace(example_desk, voice=voice))

    first = accepted(twilio.call())
    enqueue = only(first, "Enqueue")
    wait = waiting(twilio, enqueue, average=150)
    other_key = accepted(twilio.twiml(only(wait, "Gather").attrib["action"], Digits="7"), WAIT_URL)

    assert tags(first) == ["Say", "Enqueue"] and enqueue.text == "line-31851234567"
    assert tags(wait) == ["Say", "Say", "Gather", between]  # the place, the time, press 1
    assert tags(other_key) == ["Pause"]  # back to waiting


@pytest.mark.parametrize("caller", ["anonymous", "+266696687"])
def test_a_withheld_caller_waits_in_twiml_twilio_accepts(
    busy_calls: dict[str, str], twilio: Twilio, caller: str
) -> None:
    withheld = new_call(twilio, caller=caller)
    enqueue = queued(withheld)

    wait = waiting(withheld, enqueue)
    press = enqueue.attrib["waitUrl"].replace("/queue/wait", "/queue/press")
    refused = accepted(withheld.twiml(press, Digits="1"), WAIT_URL)

    assert tags(wait) == ["Say", "Pause"] and tags(refused) == ["Pause"]


def test_leaving_the_queue_is_accepted_in_the_wait_url_and_nowhere_else(
    busy_calls: dict[str, str], twilio: Twilio
) -> None:
    enqueue = queued(twilio)
    pressed = accepted(
        twilio.twiml(only(waiting(twilio, enqueue), "Gather").attrib["action"], Digits="1"),
        WAIT_URL,
    )
    called_back = left(twilio, enqueue, "leave", 40)
    late = new_call(twilio, caller=PATIENT)
    late_enqueue = queued(late)
    too_long = waiting(late, late_enqueue, seconds=300)  # the example desk's max_wait_seconds
    to_voicemail = left(late, late_enqueue, "leave", 301)
    gone = new_call(twilio, caller="+31611111111")

    hung_up = left(gone, queued(gone), "hangup", 75)

    assert tags(pressed) == tags(too_long) == ["Say", "Leave"]
    assert tags(called_back) == tags(hung_up) == ["Hangup"]
    assert tags(to_voicemail) == ["Say", "Record", "Say", "Hangup"]
    with pytest.raises(AssertionError, match="<Leave> at the top"):
        accepted(pressed)  # in a call's own TwiML: there is no queue to leave


def call_ends(twilio: Twilio, sid: str) -> None:
    """The status callback of a colleague's helpdesk call that just ended."""
    fields = twilio.params(CallSid=sid, CallStatus="completed", CallDuration="240")
    reply = twilio.post(twilio.url("voice.status"), fields)
    assert reply.status == 204, reply.body


def test_a_free_colleague_takes_the_first_caller_with_a_dial_queue_twilio_accepts(
    busy_calls: dict[str, str], twilio: Twilio, twilio_api: TwilioApi
) -> None:
    enqueue = queued(twilio)
    call_ends(twilio, busy_calls["anna"])
    [ring] = twilio_api.calls
    leg = {"CallSid": ring.sid, "To": ANNA, "From": LINE_NOORD, "Direction": "outbound-api"}

    prompt = accepted(twilio.twiml(ring.url, **leg))
    take = only(prompt, "Gather").attrib["action"]
    declined = accepted(twilio.twiml(take, **leg, Digits="2"))
    taken = accepted(twilio.twiml(take, **leg, Digits="1"))
    dial = only(taken, "Dial")
    queue = only(dial, "Queue")
    # Twilio asks the <Queue url> for the caller it takes out, then connects the two.
    bridging = accepted(
        twilio.twiml(queue.attrib["url"], QueueSid=QUEUE_SID, QueueTime="95"), QUEUE_URL
    )
    ended = accepted(twilio.twiml(dial.attrib["action"], **leg, DialCallStatus="completed"))

    assert tags(prompt) == ["Gather", "Hangup"] and tags(declined) == ["Hangup"]
    assert tags(taken) == ["Dial"] and queue.text == enqueue.text
    assert tags(bridging) == [] and tags(ended) == ["Hangup"]


# --- calling a patient back ---------------------------------------------------------------


def colleague_leg(twilio: Twilio, call: PlacedCall, url: str, **fields: str) -> ET.Element:
    """A request of the call Twilio placed to the colleague; the answer, accepted."""
    return accepted(placed_leg(twilio, call, url, **fields))


@pytest.mark.parametrize(
    ("status", "after"),
    [("completed", ["Hangup"]), ("no-answer", ["Say", "Hangup"]), ("busy", ["Say", "Hangup"])],
)
def test_calling_a_patient_back_dials_them_within_the_limits(
    app: Flask,
    auth: AuthActions,
    twilio: Twilio,
    twilio_api: TwilioApi,
    status: str,
    after: list[str],
) -> None:
    contact_id = add_contact(app, outcome="voicemail", caller=PATIENT, via=LINE_NOORD)
    client = auth.login(STAFF)
    page = f"/contacts/{contact_id}"
    client.post(f"{page}/callback", data={"csrf_token": csrf_token(client, page)})
    [call] = twilio_api.calls

    prompt = colleague_leg(twilio, call, call.url)
    connect = colleague_leg(twilio, call, only(prompt, "Gather").attrib["action"], Digits="1")
    dial = only(connect, "Dial")
    result = colleague_leg(twilio, call, dial.attrib["action"], DialCallStatus=status)

    assert tags(prompt) == ["Gather", "Hangup"] and tags(connect) == ["Dial"]
    assert (dial.attrib["callerId"], dial.attrib["timeout"]) == (LINE_NOORD, "30")
    assert dialled(connect) == [PATIENT]
    assert tags(result) == after


# --- the desk's own recordings ------------------------------------------------------------


def played(twilio: Twilio, *documents: ET.Element) -> set[str]:
    """The URLs the documents <Play>, each fetched as Twilio fetches it: audio it plays."""
    urls = {(play.text or "").strip() for document in documents for play in document.iter("Play")}
    for url in urls:
        fetched = twilio.side.fetch(url)
        assert fetched is not None and fetched[:2] in ((200, "audio/wav"), (200, "audio/mpeg")), url
    return urls


def test_the_desks_recordings_are_played_in_twiml_twilio_accepts(
    app: Flask, example_desk: Desk, desk: Desk, twilio: Twilio, clock: SimClock, auth: AuthActions
) -> None:
    coordinator = auth.login(COORDINATOR, role="coordinator")
    slots = (
        "greeting",
        "unavailable",
        "voicemail_thanks",
        "no_message",
        "closed",
        "closure",
        "closed_no_next",
    )
    for slot in slots:
        assert upload(coordinator, slot, "nl", wav_bytes(1.0), f"{slot}.wav").status_code == 302

    answered = accepted(twilio.call())
    unavailable = accepted(
        twilio.twiml(only(answered, "Dial").attrib["action"], DialCallStatus="no-answer")
    )
    thanks = accepted(
        twilio.twiml(
            only(unavailable, "Record").attrib["action"],
            RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            RecordingDuration="12",
            RecordingSid="RE" + "1" * 32,
        )
    )
    clock.moment = local("2026-11-22 14:00")  # a Sunday
    sunday = new_call(twilio)
    closed = accepted(sunday.call())
    silent = accepted(
        sunday.twiml(
            only(closed, "Record").attrib["action"], RecordingUrl="", RecordingDuration="0"
        )
    )
    clock.moment = local("2026-04-27 10:00")  # Koningsdag
    closure = accepted(new_call(twilio).call())
    load_desk(app, dataclasses.replace(example_desk, hours=((),) * 7, shifts=(), changes=()))
    never = accepted(new_call(twilio).call())

    documents = (answered, unavailable, thanks, closed, silent, closure, never)
    assert len(played(twilio, *documents)) == len(slots)  # each recording, where it belongs
    assert not said_in(answered) and tags(answered) == ["Play", "Dial"]
    for voicemail in (unavailable, closed, closure, never):
        assert tags(voicemail) == ["Play", "Record", "Play", "Hangup"]
    assert tags(thanks) == tags(silent) == ["Play", "Hangup"]


def test_the_desks_recordings_in_the_queue_are_played_in_twiml_twilio_accepts(
    busy_calls: dict[str, str], twilio: Twilio, auth: AuthActions
) -> None:
    coordinator = auth.login(COORDINATOR, role="coordinator")
    upload(coordinator, "queue_intro", "nl", wav_bytes(1.0), "iedereen-bezet.wav")
    upload(coordinator, "queue_too_long", "nl", wav_bytes(1.0), "te-lang.wav")
    upload(coordinator, "queue_music", "", mp3_bytes(30.0), "wachtmuziek.mp3")

    first = accepted(twilio.call())
    enqueue = only(first, "Enqueue")
    wait = waiting(twilio, enqueue)
    too_long = waiting(twilio, enqueue, seconds=300)

    assert len(played(twilio, first, wait, too_long)) == 3
    assert tags(first) == ["Play", "Enqueue"]
    assert tags(wait) == ["Say", "Gather", "Play"]  # no recording can say the caller's place
    assert tags(too_long) == ["Play", "Leave"]


# --- what the audit refuses ---------------------------------------------------------------

WAIT = f"{PUBLIC_URL}/voice/queue/wait"


@pytest.mark.parametrize(
    ("verbs", "twiml", "problem"),
    [
        (TOP_LEVEL, "<Leave/>", "<Leave> at the top"),  # no queue to leave
        (WAIT_URL, '<Record maxLength="60"/>', "<Record> at the top"),
        (QUEUE_URL, "<Hangup/>", "<Hangup> at the top"),
        (WAIT_URL, "<Gather><Pause/><Leave/></Gather>", "<Leave> in <Gather>"),
        (TOP_LEVEL, f'<Enqueue waitUrl="{WAIT}">{"q" * 65}</Enqueue>', "over 64"),
        (TOP_LEVEL, f'<Enqueue waitUrl="{WAIT}"> </Enqueue>', "<Enqueue> names no queue"),
        (TOP_LEVEL, '<Enqueue waitUrl="wait.xml">line</Enqueue>', "waitUrl=wait.xml"),
        (TOP_LEVEL, '<Enqueue waitUrlMethod="PUT">line</Enqueue>', "waitUrlMethod=PUT"),
        (TOP_LEVEL, '<Enqueue timeout="5">line</Enqueue>', "<Enqueue> {'timeout'}"),
        (TOP_LEVEL, f'<Dial><Queue waitUrl="{WAIT}">line</Queue></Dial>', "<Queue> {'waitUrl'}"),
        (WAIT_URL, '<Pause length="0"/>', "<Pause length=0>"),
        (WAIT_URL, '<Play loop="-1">https://helpdesk.example.org/m.mp3</Play>', "<Play loop=-1>"),
        (WAIT_URL, "<Play>wacht.mp3</Play>", "<Play> of 'wacht.mp3'"),
        (WAIT_URL, '<Leave loop="2"/>', "<Leave> {'loop'}"),
    ],
)
def test_the_audit_refuses_twiml_twilio_documents_otherwise(
    verbs: frozenset[str], twiml: str, problem: str
) -> None:
    document = ET.fromstring(f"<Response>{twiml}</Response>")  # noqa: S314 (ours)

    with pytest.raises(AssertionError, match=re.escape(problem)):
        accepted(document, verbs)


# --- the voice a desk chooses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "voices", "expected"),
    [
        ("en", (), ("Polly.Amy-Neural", "en-GB")),
        ("en", (("en", "Polly.Joanna-Neural"),), ("Polly.Joanna-Neural", "en-US")),
        ("nl", (("nl", "Google.nl-NL-Wavenet-B"),), ("Google.nl-NL-Wavenet-B", "nl-NL")),
        (
            "nl",
            (("nl", "Polly.Lisa-Neural"), ("en", "Polly.Brian-Neural")),
            ("Polly.Lisa-Neural", "nl-BE"),
        ),
    ],
)
def test_every_say_carries_the_desks_voice_and_that_voices_language(
    app: Flask,
    example_desk: Desk,
    twilio: Twilio,
    language: str,
    voices: tuple[tuple[str, str], ...],
    expected: tuple[str, str],
) -> None:
    voice = dataclasses.replace(example_desk.voice, tts_voices=voices)
    load_desk(app, dataclasses.replace(example_desk, language=language, messages={}, voice=voice))

    first = accepted(twilio.call())
    prompt, _ = legs(twilio, only(first, "Dial"), ANNA, "7")
    voicemail = accepted(twilio.twiml(only(first, "Dial").attrib["action"], DialCallStatus="busy"))

    assert said_in(first) == said_in(prompt) == said_in(voicemail) == {expected}


def test_a_text_longer_than_one_say_takes_is_said_in_pieces(
    app: Flask, example_desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    sentence = "Wij zijn er voor u, ook als het even niet lukt met de app of het portaal. "
    long_text = (sentence * 60).strip()  # about 4400 bytes: over Polly's 3000
    messages = {"nl": {"closed": long_text, "screen_prompt": long_text}}
    load_desk(app, dataclasses.replace(example_desk, messages=messages))
    clock.moment = local("2026-11-22 14:00")

    closed = accepted(twilio.call())
    clock.moment = local("2026-11-23 10:15")
    open_call = Twilio(twilio.side, new_sid("CA"))
    prompt, _ = legs(open_call, only(accepted(open_call.call()), "Dial"), ANNA, "1")

    before_record = list(closed)[: tags(closed).index("Record")]
    assert len(before_record) == 2
    assert " ".join(s.text or "" for s in before_record) == long_text
    gather = only(prompt, "Gather")
    assert " ".join(s.text or "" for s in gather) == f"{long_text} {long_text}"  # said twice


# --- when things fail ---------------------------------------------------------------------


@pytest.fixture
def broken_app(clock: SimClock, tmp_path: Path) -> Flask:
    """An app whose database cannot even be opened: every webhook gives its safe answer."""
    return create_app(app_config(f"sqlite:///{tmp_path / 'missing' / 'x.db'}", clock, tmp_path))


SAFE = [
    ("voice.incoming", {}, TOP_LEVEL),
    ("voice.screen", {}, TOP_LEVEL),
    ("voice.screen_result", {"Digits": "1"}, TOP_LEVEL),
    ("voice.screen_result", {"Digits": "3"}, TOP_LEVEL),
    ("voice.dial_result", {"DialCallStatus": "no-answer"}, TOP_LEVEL),
    ("voice.dial_result", {"DialCallStatus": "completed"}, TOP_LEVEL),
    (
        "voice.voicemail",
        {"RecordingUrl": "https://api.twilio.com/x", "RecordingDuration": "5"},
        TOP_LEVEL,
    ),
    ("voice.fallback", {"ErrorCode": "11200"}, TOP_LEVEL),
    ("voice.queue_wait", {"QueueTime": "20"}, WAIT_URL),
    ("voice.queue_press", {"Digits": "1"}, WAIT_URL),
    ("voice.queue_left", {"QueueResult": "leave", "QueueTime": "301"}, TOP_LEVEL),
    ("voice.queue_colleague", {}, TOP_LEVEL),
    ("voice.queue_take", {"Digits": "1"}, TOP_LEVEL),
    ("voice.queue_bridging", {"QueueTime": "95"}, QUEUE_URL),
    ("voice.queue_taken", {"DialCallStatus": "completed"}, TOP_LEVEL),
    ("voice.callback_colleague", {}, TOP_LEVEL),
    ("voice.callback_connect", {"Digits": "1"}, TOP_LEVEL),
    ("voice.callback_result", {"DialCallStatus": "no-answer"}, TOP_LEVEL),
]


@pytest.mark.parametrize(("endpoint", "fields", "verbs"), SAFE)
def test_the_safe_answers_speak_in_the_default_dutch_voice(
    broken_app: Flask, endpoint: str, fields: dict[str, str], verbs: frozenset[str]
) -> None:
    twilio = Twilio(TwilioSide(broken_app, AUTH_TOKEN), new_sid("CA"))
    url = twilio.url(endpoint, contact=1, staff="anna", callback=1)

    document = accepted(twilio.twiml(url, **fields), verbs)

    assert said_in(document) <= {("Polly.Laura-Neural", "nl-NL")}


def fail(*args: object, **kwargs: object) -> object:
    raise RuntimeError("the safe answer failed too")


@pytest.mark.parametrize("endpoint", ["voice.incoming", "voice.dial_result", "voice.fallback"])
def test_the_last_resort_is_accepted_with_absolute_urls(
    broken_app: Flask, monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.setattr(webhook, "voicemail", fail)
    twilio = Twilio(TwilioSide(broken_app, AUTH_TOKEN), new_sid("CA"))

    document = accepted(twilio.twiml(twilio.url(endpoint), DialCallStatus="no-answer"))

    assert tags(document) == ["Say", "Record", "Hangup"]
    assert said_in(document) == {("Polly.Laura-Neural", "nl-NL")}
    assert only(document, "Record").attrib["action"] == PUBLIC_URL + "/voice/voicemail"


# --- the simulator reads the voice as Twilio does -----------------------------------------


def simulate(app: Flask, desk: Desk, clock: SimClock, answer: str | None) -> list[str]:
    simulation = CallSimulation(
        twilio=TwilioSide(app, AUTH_TOKEN),
        clock=clock,
        desk=desk,
        caller="+31687654321",
        called=desk.lines[0].number,
        answer=answer,
    )
    return [f"{step.who} {step.text}" for step in simulation.run()]


@pytest.mark.parametrize("answer", ["anna", None])
def test_a_simulated_call_hears_every_say(
    app: Flask, desk: Desk, clock: SimClock, answer: str | None
) -> None:
    steps = simulate(app, desk, clock, answer)

    assert not [s for s in steps if "cannot say" in s]
    assert any(s.startswith("caller hears") for s in steps)


@pytest.mark.parametrize(
    ("say", "problem"),
    [
        ('<Say language="nl-NL">Welkom</Say>', "no voice (Twilio's man)"),
        ('<Say voice="Polly.Joanna-Neural" language="nl-NL">Welkom</Say>', "speaks en-US"),
        ('<Say voice="Polly.Laura" language="nl-NL">Welkom</Say>', "lists no voice"),
        (f'<Say voice="Polly.Laura-Neural" language="nl-NL">{"a" * 3001}</Say>', "more text"),
    ],
)
def test_the_simulator_refuses_a_say_twilio_would_refuse(
    app: Flask, desk: Desk, clock: SimClock, say: str, problem: str
) -> None:
    """Such as a <Say> in Twilio's default voice, as the line had before: no Dutch heard."""
    simulation = CallSimulation(TwilioSide(app, AUTH_TOKEN), clock, desk, ANNA, BRAM, None)

    document = ET.fromstring(f"<Response>{say}<Hangup/></Response>")  # noqa: S314 (ours)
    simulation.execute(document)

    [step, _hangup] = simulation.steps
    assert (step.who, problem in step.text) == ("twilio", True), step.text
    assert step.text.startswith("cannot say")


# --- the voice table ----------------------------------------------------------------------


def all_voices() -> Iterator[tuple[str, str, str]]:
    for language, voices in VOICES.items():
        for voice in voices:
            yield language, voice.name, voice.locale


def test_the_defaults_are_neural_voices_of_the_desks_locales() -> None:
    assert find_voice(DEFAULT_VOICES["nl"]) == ("nl", VOICES["nl"][0])
    assert VOICES["nl"][0].locale == "nl-NL"
    assert find_voice(DEFAULT_VOICES["en"]) == ("en", VOICES["en"][0])
    assert VOICES["en"][0].locale == "en-GB"
    assert all(name.endswith("-Neural") for name in DEFAULT_VOICES.values())


def test_every_voice_in_the_table_speaks_a_locale_of_its_language_and_is_listed_once() -> None:
    names = [name for _, name, _ in all_voices()]
    assert len(names) == len(set(names))
    for language, name, locale in all_voices():
        assert locale.split("-")[0] == language
        assert re.fullmatch(r"Polly\.[A-Z][a-z]+(-Neural|-Generative)?", name) or (
            name.startswith(f"Google.{locale}-")
        ), name
