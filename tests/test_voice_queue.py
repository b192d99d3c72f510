"""When every colleague on shift is on a call: the caller waits in the line's queue, hears
their place, may press 1 to be called back (keeping their place), and after the desk's
longest wait leaves a voicemail. Twilio's side is played with signed requests; the TwiML
is parsed."""

from __future__ import annotations

import dataclasses
import html
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import QueueEntry
from routing.desk import Desk

from .auth import AuthActions
from .conftest import LINE_NOORD, Twilio, contacts, load_desk, new_call
from .factories import add_contact
from .twiml import only, said, tags

QUEUE_SID = "QU" + "7" * 32


@pytest.fixture
def everyone_busy(app: Flask, desk: Desk, clock: SimClock) -> None:
    """Anna and Bram, on shift on Monday morning, are each on a helpdesk call."""
    for staff in ("anna", "bram"):
        add_contact(
            app,
            outcome="answered",
            answered_by=staff,
            caller="+31600000001",
            via=LINE_NOORD,
            started_at=clock() - timedelta(minutes=4),
        )


def queued(twilio: Twilio) -> ET.Element:
    """The caller's first request; the <Enqueue> it is answered with."""
    document = twilio.call()
    assert tags(document) == ["Say", "Enqueue"]
    return only(document, "Enqueue")


def wait(twilio: Twilio, enqueue: ET.Element, seconds: int = 20, average: int = 0) -> ET.Element:
    """Twilio asking the wait URL while the caller waits."""
    return twilio.twiml(
        enqueue.attrib["waitUrl"],
        QueueSid=QUEUE_SID,
        QueueTime=str(seconds),
        AvgQueueTime=str(average),
        CallStatus="queued",
    )


def left(twilio: Twilio, enqueue: ET.Element, result: str, seconds: int) -> ET.Element:
    return twilio.twiml(enqueue.attrib["action"], QueueResult=result, QueueTime=str(seconds))


def queue_steps(app: Flask) -> list[list[str]]:
    return [
        [str(e.detail.get("stage")) for e in contact.events if e.kind == "queue"]
        for contact in contacts(app)
        if contact.answered_by is None
    ]


def test_a_caller_finding_everyone_busy_waits_in_the_lines_queue_and_hears_their_place(
    app: Flask, everyone_busy: None, twilio: Twilio
) -> None:
    first = queued(twilio)
    second = queued(new_call(twilio, caller="+31687654321"))

    assert first.text == "line-31851234567" and second.text == first.text  # one per line
    assert first.attrib["waitUrl"].startswith("https://intake.example.test/voice/queue/wait?")
    assert "Al onze medewerkers zijn in gesprek" in said(twilio.call())  # a repeat: same answer
    answer = wait(twilio, first, average=150)
    assert "U bent nummer 1." in said(answer)
    assert "Het duurt ongeveer 2 minuten." in said(answer)
    gather = only(answer, "Gather")
    assert gather.attrib["numDigits"] == "1" and "Druk dan op 1" in said(gather)
    assert "U bent nummer 2." in said(wait(new_call(twilio), second))
    assert queue_steps(app) == [["joined"], ["joined"]]


def test_a_caller_who_presses_1_hears_their_number_and_keeps_their_place(
    app: Flask, everyone_busy: None, twilio: Twilio
) -> None:
    first = queued(twilio)
    behind = new_call(twilio, caller="+31687654321")
    second = queued(behind)
    gather = only(wait(twilio, first), "Gather")

    pressed = twilio.twiml(gather.attrib["action"], Digits="1")
    again = twilio.twiml(gather.attrib["action"], Digits="1")  # Twilio repeating it

    assert tags(pressed)[-1] == "Leave"
    assert "Wij bellen u terug op nummer 0 6, 1 2, 3 4, 5 6, 7 8" in said(pressed)
    assert tags(left(twilio, first, "leave", 40)) == ["Hangup"]  # no voicemail offered
    assert tags(again) == tags(pressed)  # the request again: the same answer, once recorded
    # Still ahead of the caller behind, and of one who comes after.
    assert "U bent nummer 2." in said(wait(behind, second))
    third = new_call(twilio, caller="+31611111111")
    assert "U bent nummer 3." in said(wait(third, queued(third)))
    assert queue_steps(app)[0] == ["joined", "callback-requested", "callback"]
    with database(app).session() as session:
        entry = session.scalars(select(QueueEntry).order_by(QueueEntry.queued_at)).first()
        assert entry is not None and entry.result == "callback" and entry.served_at is None


def test_after_the_longest_wait_the_caller_leaves_a_voicemail(
    app: Flask, everyone_busy: None, twilio: Twilio, auth: AuthActions
) -> None:
    enqueue = queued(twilio)

    answer = wait(twilio, enqueue, seconds=300)  # the example desk's max_wait_seconds

    assert tags(answer) == ["Say", "Leave"]
    document = left(twilio, enqueue, "leave", 301)
    assert "Record" in tags(document)
    contact_id = next(c for c in contacts(app) if c.answered_by is None).id
    page = auth.login().get(f"/contacts/{contact_id}").get_data(as_text=True)
    assert "Waited 5 minutes and 1 second in the queue, then to voicemail" in html.unescape(page)


def test_a_caller_who_hangs_up_in_the_queue_is_on_the_record(
    app: Flask, everyone_busy: None, twilio: Twilio
) -> None:
    enqueue = queued(twilio)

    assert tags(left(twilio, enqueue, "hangup", 75)) == ["Hangup"]

    assert queue_steps(app) == [["joined", "hangup"]]
    with database(app).session() as session:
        entry = session.scalars(select(QueueEntry)).one()
        assert (entry.result, entry.left_at is not None) == ("hangup", True)


def test_a_full_queue_sends_the_next_caller_to_voicemail_never_an_error(
    app: Flask, example_desk: Desk, everyone_busy: None, twilio: Twilio
) -> None:
    voice = dataclasses.replace(example_desk.voice, queue_size=1)
    load_desk(app, dataclasses.replace(example_desk, voice=voice))
    queued(twilio)

    document = new_call(twilio, caller="+31687654321").call()

    assert "Record" in tags(document) and "Enqueue" not in tags(document)
    assert queue_steps(app) == [["joined"], ["full"]]


@pytest.mark.parametrize("caller", ["anonymous", "+266696687"])
def test_a_withheld_caller_is_not_offered_a_callback(
    app: Flask, everyone_busy: None, twilio: Twilio, caller: str
) -> None:
    anonymous = new_call(twilio, caller=caller)
    enqueue = queued(anonymous)

    answer = wait(anonymous, enqueue)

    assert "Gather" not in [el.tag for el in answer.iter()]
    press = enqueue.attrib["waitUrl"].replace("/queue/wait", "/queue/press")
    assert tags(anonymous.twiml(press, Digits="1")) == ["Pause"]  # sent anyway: refused


def test_without_a_queue_a_caller_finding_everyone_busy_leaves_a_voicemail(
    app: Flask, example_desk: Desk, everyone_busy: None, twilio: Twilio
) -> None:
    voice = dataclasses.replace(example_desk.voice, queue=False)
    load_desk(app, dataclasses.replace(example_desk, voice=voice))

    assert "Record" in tags(twilio.call())
