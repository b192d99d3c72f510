"""A patient calls: who rings, what the caller hears, and how the call is logged."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from datetime import time
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from intake.core.clock import SimClock
from routing.desk import Desk, Shift, Staff, TimeRange, VoiceSettings
from voice.simulator import new_sid

from .conftest import (
    ANNA,
    BRAM,
    DIRK,
    LINE_NOORD,
    PUBLIC_URL,
    Twilio,
    contacts,
    load_desk,
    local,
    new_call,
)
from .twiml import dialled, only, said, tags


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def answer_as(twilio: Twilio, dial: ET.Element, number: str, digits: str = "1") -> ET.Element:
    """The colleague at `number` picks up and presses `digits`; the TwiML of that leg."""
    leg_sid = new_sid("CA")
    target = next(n for n in dial.iter("Number") if (n.text or "").strip() == number)
    prompt = twilio.leg(target.attrib["url"], leg_sid, To=number)
    gather = only(prompt, "Gather")
    return twilio.leg(gather.attrib["action"], leg_sid, To=number, Digits=digits)


def test_open_desk_rings_everyone_on_shift_at_once(desk: Desk, twilio: Twilio) -> None:
    document = twilio.call()

    assert tags(document) == ["Say", "Dial"]
    assert "Welkom bij de Helpdesk Digitale Zorg" in said(document)
    assert only(document, "Say").attrib["language"] == "nl-NL"
    dial = only(document, "Dial")
    assert dial.attrib["answerOnBridge"] == "true"
    assert dial.attrib["timeout"] == "20"
    assert dial.attrib["action"].startswith(PUBLIC_URL + "/voice/dial-result?")
    assert dialled(document) == [ANNA, BRAM]  # rota order; chantal starts at 12:30
    for number in dial.iter("Number"):
        assert number.attrib["url"].startswith(PUBLIC_URL + "/voice/screen?")


def test_colleague_hears_the_organisation_and_must_press_1(desk: Desk, twilio: Twilio) -> None:
    dial = only(twilio.call(), "Dial")
    anna = next(n for n in dial.iter("Number") if n.text == ANNA)

    prompt = twilio.leg(anna.attrib["url"], new_sid("CA"), To=ANNA)

    assert tags(prompt) == ["Gather", "Hangup"]  # no key: only this leg is dropped
    gather = only(prompt, "Gather")
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["action"].startswith(PUBLIC_URL + "/voice/screen-result?")
    assert "Ziekenhuis Noord" in said(gather)
    assert "1" in said(gather)


def test_pressing_1_connects_and_logs_who_answered(
    app: Flask, desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    dial = only(twilio.call(), "Dial")

    accepted = answer_as(twilio, dial, BRAM)
    assert tags(accepted) == []  # an empty <Response/> bridges the caller

    clock.advance(240)
    ended = twilio.twiml(
        dial.attrib["action"],
        DialCallStatus="completed",
        DialCallSid=new_sid("CA"),
        DialCallDuration="230",
    )
    assert tags(ended) == ["Hangup"]
    twilio.post(
        twilio.url("voice.status"), twilio.params(CallStatus="completed", CallDuration="250")
    )

    [contact] = contacts(app)
    assert contact.outcome == "answered"
    assert contact.answered_by == "bram"
    assert contact.duration_seconds == 250
    assert contact.organisation == "Ziekenhuis Noord"
    assert contact.caller == "+31612345678"
    assert contact.reference == f"HD-{contact.id:06d}"
    kinds = [e.kind for e in contact.events]
    assert kinds == ["incoming", "picked-up", "accepted", "dial-ended", "status"]


@pytest.mark.parametrize("digits", ["", "2", "*", "11"])
def test_any_other_key_drops_only_that_colleagues_leg(
    app: Flask, desk: Desk, twilio: Twilio, digits: str
) -> None:
    dial = only(twilio.call(), "Dial")

    result = answer_as(twilio, dial, ANNA, digits=digits)

    assert tags(result) == ["Hangup"]
    [contact] = contacts(app)
    assert contact.answered_by is None
    assert contact.outcome == "in-progress"


def test_personal_voicemail_picking_up_does_not_count_as_answered(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    """The colleague's own voicemail answers the leg: no key, the leg ends, the call goes on."""
    dial = only(twilio.call(), "Dial")
    anna = next(n for n in dial.iter("Number") if n.text == ANNA)
    twilio.leg(anna.attrib["url"], new_sid("CA"), To=ANNA)  # gather times out, Hangup

    after = twilio.twiml(
        dial.attrib["action"], DialCallStatus="completed", DialCallSid=new_sid("CA")
    )

    assert "Record" in tags(after)
    [contact] = contacts(app)
    assert contact.answered_by is None


def test_nobody_answering_ends_in_voicemail_and_is_logged(
    app: Flask, desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    dial = only(twilio.call(), "Dial")
    clock.advance(21)

    document = twilio.twiml(dial.attrib["action"], DialCallStatus="no-answer")

    assert tags(document) == ["Say", "Record", "Say", "Hangup"]
    assert "helpdesk@example.org" in said(document)
    record = only(document, "Record")
    assert record.attrib["action"] == PUBLIC_URL + "/voice/voicemail"
    assert record.attrib["recordingStatusCallback"] == PUBLIC_URL + "/voice/recording"
    assert record.attrib["maxLength"] == "120"

    recording = {
        "RecordingSid": "RE" + "a" * 32,
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        "RecordingDuration": "31",
    }
    thanks = twilio.twiml(record.attrib["action"], **recording, Digits="#")
    assert tags(thanks) == ["Say", "Hangup"]
    reply = twilio.post(
        record.attrib["recordingStatusCallback"],
        twilio.params(**recording, RecordingStatus="completed"),
    )
    assert reply.status == 204

    [contact] = contacts(app)
    assert contact.outcome == "voicemail"
    assert contact.recording_sid == "RE" + "a" * 32
    assert contact.recording_seconds == 31


def test_silent_caller_hears_goodbye_and_never_loops(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    """With no audio Twilio skips the action and goes on after <Record>."""
    dial = only(twilio.call(), "Dial")
    document = twilio.twiml(dial.attrib["action"], DialCallStatus="no-answer")
    verbs = list(document)
    after_record = verbs[[v.tag for v in verbs].index("Record") + 1 :]
    assert [v.tag for v in after_record] == ["Say", "Hangup"]
    assert "geen bericht" in (after_record[0].text or "")

    # And when Twilio does call the action with an empty recording, no thanks for nothing.
    record = only(document, "Record")
    empty = twilio.twiml(record.attrib["action"], RecordingUrl="", RecordingDuration="0")
    assert tags(empty) == ["Say", "Hangup"]
    assert "geen bericht" in said(empty)


def test_closed_on_sunday_says_when_we_open_and_takes_a_voicemail(
    desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    clock.moment = local("2026-11-22 14:00")

    document = twilio.call()

    assert tags(document) == ["Say", "Record", "Say", "Hangup"]
    text = said(document)
    assert "gesloten" in text
    assert "morgen om 8.30 uur" in text
    assert "helpdesk@example.org" in text
    assert not list(document.iter("Dial"))


def test_closed_on_kings_day_takes_a_voicemail(desk: Desk, twilio: Twilio, clock: SimClock) -> None:
    clock.moment = local("2026-04-27 10:00")  # a Monday, King's Day

    document = twilio.call()

    assert "Record" in tags(document)
    assert "Koningsdag" in said(document)
    assert "morgen om 8.30 uur" in said(document)


def test_a_caller_on_a_named_closure_date_hears_its_name(
    desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    clock.moment = local("2026-12-31 10:00")  # the example's { name = "de teamdag" }, a Thursday

    document = twilio.call()

    assert tags(document) == ["Say", "Record", "Say", "Hangup"]
    assert "Vanwege de teamdag is de helpdesk vandaag gesloten." in said(document)
    assert "Vanwege een sluitingsdag" not in said(document)


def test_open_on_good_friday_rings_the_friday_shift(
    desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    clock.moment = local("2026-04-03 10:00")  # Good Friday: the example stays open on it

    document = twilio.call()

    assert tags(document) == ["Say", "Dial"]
    assert DIRK in dialled(document)  # Dirk works only on Fridays


def test_lunch_break_on_wednesday_says_we_open_again_this_afternoon(
    desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    clock.moment = local("2026-11-25 12:45")

    document = twilio.call()

    assert "Record" in tags(document)
    assert "vandaag om 13.30 uur" in said(document)


def test_calls_to_the_second_line_are_for_its_organisation(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    twilio.called = "+31857654321"
    dial = only(twilio.call(), "Dial")
    number = next(iter(dial.iter("Number")))
    prompt = twilio.leg(number.attrib["url"], new_sid("CA"), To=number.text or "")

    assert "Zorggroep De Linde" in said(prompt)
    [contact] = contacts(app)
    assert contact.organisation == "Zorggroep De Linde"
    assert contact.via == "+31857654321"


def test_colleague_on_a_helpdesk_call_is_not_rung_again(
    desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    first_dial = only(twilio.call(), "Dial")
    answer_as(twilio, first_dial, ANNA)

    clock.advance(60)
    second = new_call(twilio)
    assert dialled(second.call()) == [BRAM]

    # Anna's call ends: she is rung again from the next call on.
    twilio.twiml(first_dial.attrib["action"], DialCallStatus="completed", DialCallDuration="55")
    clock.advance(5)
    assert dialled(new_call(twilio, "+31611111111").call()) == [ANNA, BRAM]


def test_two_colleagues_pressing_1_the_first_gets_the_call(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    dial = only(twilio.call(), "Dial")

    first = answer_as(twilio, dial, ANNA)
    second = answer_as(twilio, dial, BRAM)

    assert tags(first) == []
    assert tags(second) == ["Say", "Hangup"]
    [contact] = contacts(app)
    assert contact.answered_by == "anna"


def sequential(desk: Desk) -> Desk:
    return dataclasses.replace(desk, voice=dataclasses.replace(desk.voice, strategy="sequential"))


def test_sequential_rings_one_colleague_at_a_time_in_rota_order(
    app: Flask, example_desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    load_desk(app, sequential(example_desk))

    document = twilio.call()
    dial = only(document, "Dial")
    assert dialled(document) == [ANNA]
    assert query(dial.attrib["action"])["remaining"] == "bram"

    clock.advance(20)
    document = twilio.twiml(dial.attrib["action"], DialCallStatus="no-answer")
    assert tags(document) == ["Dial"]  # no second greeting
    assert dialled(document) == [BRAM]

    dial = only(document, "Dial")
    answer_as(twilio, dial, BRAM)
    clock.advance(100)
    assert tags(twilio.twiml(dial.attrib["action"], DialCallStatus="completed")) == ["Hangup"]
    [contact] = contacts(app)
    assert contact.answered_by == "bram"


def test_sequential_after_the_last_colleague_goes_to_voicemail(
    app: Flask, example_desk: Desk, twilio: Twilio
) -> None:
    load_desk(app, sequential(example_desk))
    dial = only(twilio.call(), "Dial")
    dial = only(twilio.twiml(dial.attrib["action"], DialCallStatus="no-answer"), "Dial")

    document = twilio.twiml(dial.attrib["action"], DialCallStatus="busy")

    assert "Record" in tags(document)


def test_open_with_nobody_on_shift_rings_the_fallback_number(
    app: Flask, example_desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    desk = dataclasses.replace(
        example_desk,
        shifts=(),
        voice=dataclasses.replace(example_desk.voice, fallback_number="+31201234567"),
    )
    load_desk(app, desk)

    document = twilio.call()
    assert dialled(document) == ["+31201234567"]
    dial = only(document, "Dial")

    assert tags(twilio.twiml(dial.attrib["action"], DialCallStatus="completed")) == ["Hangup"]
    [contact] = contacts(app)
    assert contact.outcome == "fallback"
    assert contact.answered_by is None


def test_open_with_nobody_on_shift_and_no_fallback_takes_a_voicemail(
    app: Flask, example_desk: Desk, twilio: Twilio
) -> None:
    load_desk(app, dataclasses.replace(example_desk, shifts=(), changes=()))

    document = twilio.call()

    assert "Record" in tags(document)
    assert not list(document.iter("Dial"))


def test_english_desk_speaks_english(
    app: Flask, example_desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    load_desk(app, dataclasses.replace(example_desk, language="en", messages={}))
    clock.moment = local("2026-11-22 14:00")

    document = twilio.call()

    assert {s.attrib["language"] for s in document.iter("Say")} == {"en-GB"}
    assert "tomorrow" in said(document)


def test_screening_off_connects_on_pick_up(app: Flask, example_desk: Desk, twilio: Twilio) -> None:
    desk = dataclasses.replace(example_desk, voice=VoiceSettings(screening=False))
    load_desk(app, desk)
    dial = only(twilio.call(), "Dial")
    bram = next(n for n in dial.iter("Number") if n.text == BRAM)

    assert tags(twilio.leg(bram.attrib["url"], new_sid("CA"), To=BRAM)) == []
    [contact] = contacts(app)
    assert contact.answered_by == "bram"


def test_the_caller_hanging_up_while_ringing_is_a_missed_call(
    app: Flask, desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    twilio.call()
    clock.advance(9)

    reply = twilio.post(
        twilio.url("voice.status"), twilio.params(CallStatus="completed", CallDuration="9")
    )

    assert reply.status == 204
    [contact] = contacts(app)
    assert contact.outcome == "missed"
    assert contact.ended_at == clock()


def test_a_crowded_rota_rings_ten_at_a_time(app: Flask, example_desk: Desk, twilio: Twilio) -> None:
    """Twilio dials at most ten numbers at once; the others ring in the next round."""
    staff = tuple(
        Staff(id=f"s{i:02d}", name=f"Colleague {i}", phone=f"+316100000{i:02d}") for i in range(14)
    )
    shifts = tuple(
        Shift(staff=s.id, days=(0,), hours=TimeRange(time(8, 30), time(17))) for s in staff
    )
    load_desk(app, dataclasses.replace(example_desk, staff=staff, shifts=shifts, changes=()))

    first = twilio.call()
    assert dialled(first) == [s.phone for s in staff[:10]]

    second = twilio.twiml(only(first, "Dial").attrib["action"], DialCallStatus="no-answer")
    assert dialled(second) == [s.phone for s in staff[10:]]
    third = twilio.twiml(only(second, "Dial").attrib["action"], DialCallStatus="no-answer")
    assert "Record" in tags(third)


@pytest.mark.parametrize(("show_line", "shown"), [(True, LINE_NOORD), (False, None)])
def test_colleagues_see_the_helpline_when_the_desk_says_so(
    app: Flask, example_desk: Desk, twilio: Twilio, show_line: bool, shown: str | None
) -> None:
    voice = dataclasses.replace(
        example_desk.voice, strategy="sequential", show_line_to_staff=show_line
    )
    load_desk(app, dataclasses.replace(example_desk, voice=voice))

    first = only(twilio.call(), "Dial")
    # The next round (Bram, after Anna did not answer) shows the same number.
    second = only(twilio.twiml(first.attrib["action"], DialCallStatus="no-answer"), "Dial")

    assert first.get("callerId") == shown and second.get("callerId") == shown
    # A second call on the cached answer shows it too, with its own contact in the URLs.
    again = only(new_call(twilio).call(), "Dial")
    assert again.get("callerId") == shown and again.attrib["action"] != first.attrib["action"]
