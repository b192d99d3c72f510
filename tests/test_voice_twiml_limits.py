"""Every answer of the phone line is TwiML a real Twilio account accepts.

Each path a call can take is played as Twilio would, and every document that comes back
is held against Twilio's documented limits: which verbs may nest in which, the
attributes and values of each verb, at most ten <Number>s per <Dial>, the ranges of
`timeout` and `maxLength`, absolute URLs, and a voice on every <Say> that speaks the
<Say>'s language, with no more text than that voice's provider takes.
"""

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

from .conftest import (
    ANNA,
    AUTH_TOKEN,
    BRAM,
    PUBLIC_URL,
    Twilio,
    app_config,
    load_desk,
    local,
)
from .twiml import dialled, only, said, tags

# --- Twilio's documented limits -----------------------------------------------------------
# https://www.twilio.com/docs/voice/twiml (which verbs nest), .../say, .../dial, .../number,
# .../gather, .../record, .../hangup; error 13521 for the text of one <Say>.

TOP_LEVEL = {"Say", "Dial", "Gather", "Record", "Hangup", "Pause", "Play", "Redirect"}
INSIDE = {"Gather": {"Say", "Play", "Pause"}, "Dial": {"Number"}}
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
}
URL_ATTRIBUTES = {"action", "url", "recordingStatusCallback", "statusCallback"}
MAX_NUMBERS_PER_DIAL = 10
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


def check_verb(verb: ET.Element) -> None:
    allowed = ATTRIBUTES[verb.tag]
    assert set(verb.attrib) <= allowed, f"<{verb.tag}> {set(verb.attrib) - allowed}"
    for key in URL_ATTRIBUTES & set(verb.attrib):
        assert verb.attrib[key].startswith(PUBLIC_URL + "/voice/"), f"{key}={verb.attrib[key]}"
    for key in ("method", "recordingStatusCallbackMethod"):
        if key in verb.attrib:
            assert verb.attrib[key] in ("GET", "POST")
    if verb.tag == "Say":
        check_say(verb)
    elif verb.tag == "Dial":
        numbers = list(verb)
        assert 1 <= len(numbers) <= MAX_NUMBERS_PER_DIAL
        assert DIAL_TIMEOUT[0] <= positive(verb.get("timeout", "30")) <= DIAL_TIMEOUT[1]
        assert verb.get("answerOnBridge", "true") in ("true", "false")
        for number in numbers:
            assert re.fullmatch(r"\+[1-9][0-9]{6,14}", (number.text or "").strip())
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
    elif verb.tag in ("Hangup", "Number"):
        assert len(verb) == 0 or verb.tag == "Number"
    for child in verb:
        assert child.tag in INSIDE.get(verb.tag, set()), f"<{child.tag}> in <{verb.tag}>"
        check_verb(child)


def accepted(document: ET.Element) -> ET.Element:
    """`document`, after holding it against every limit above."""
    assert document.tag == "Response" and not document.attrib
    for verb in document:
        assert verb.tag in TOP_LEVEL, f"<{verb.tag}> at the top"
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
    ("voice.incoming", {}),
    ("voice.screen", {}),
    ("voice.screen_result", {"Digits": "1"}),
    ("voice.screen_result", {"Digits": "3"}),
    ("voice.dial_result", {"DialCallStatus": "no-answer"}),
    ("voice.dial_result", {"DialCallStatus": "completed"}),
    ("voice.voicemail", {"RecordingUrl": "https://api.twilio.com/x", "RecordingDuration": "5"}),
    ("voice.fallback", {"ErrorCode": "11200"}),
]


@pytest.mark.parametrize(("endpoint", "fields"), SAFE)
def test_the_safe_answers_speak_in_the_default_dutch_voice(
    broken_app: Flask, endpoint: str, fields: dict[str, str]
) -> None:
    twilio = Twilio(TwilioSide(broken_app, AUTH_TOKEN), new_sid("CA"))

    document = accepted(twilio.twiml(twilio.url(endpoint, contact=1, staff="anna"), **fields))

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
