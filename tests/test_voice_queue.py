"""When every colleague on shift is on a call: the caller waits in the line's queue, hears
their place, may press 1 to be called back (keeping their place), and after the desk's
longest wait leaves a voicemail. Twilio's side is played with signed requests; the TwiML
is parsed."""

# ruff: noqa: F811  (the fixtures of voicecalls, imported by name, are arguments)
from __future__ import annotations

import dataclasses
import html
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import QueueEntry
from routing.desk import Desk
from voice.simulator import TwilioSide, new_sid

from .audio import mp3_bytes, upload, wav_bytes
from .auth import COORDINATOR, AuthActions, csrf_token
from .conftest import (
    ANNA,
    BRAM,
    EXAMPLE_DESK,
    LINE_NOORD,
    Twilio,
    contacts,
    load_desk,
    new_call,
)
from .factories import add_contact
from .twilioapi import TwilioApi
from .twiml import only, said, tags
from .voicecalls import (  # noqa: F401  (fixtures, used by name)
    QUEUE_SID,
    busy_calls,
    twilio_api,
)

Intake = Callable[..., tuple[int, str, str]]


@pytest.fixture
def everyone_busy(busy_calls: dict[str, str]) -> None:
    pass


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


def test_callers_arriving_at_once_never_overfill_the_queue(
    app: Flask, example_desk: Desk, everyone_busy: None, twilio: Twilio
) -> None:
    voice = dataclasses.replace(example_desk.voice, queue_size=2)
    load_desk(app, dataclasses.replace(example_desk, voice=voice))
    callers = [new_call(twilio, caller=f"+3161234560{i}") for i in range(5)]

    statuses = at_once_signed(twilio, twilio.url("voice.incoming"), [c.params() for c in callers])

    assert statuses == [200] * 5
    with database(app).session() as session:
        waiting = session.scalars(select(QueueEntry).where(QueueEntry.left_at.is_(None))).all()
    assert len(waiting) == 2  # the bound, decided by the database; the others leave a message
    assert sorted(len(steps) for steps in queue_steps(app)) == [1, 1, 1, 1, 1]


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


def at_once_signed(twilio: Twilio, url: str, forms: list[dict[str, str]]) -> list[int]:
    """Signed requests from Twilio at the same moment, each on its own connection."""
    sides = [TwilioSide(twilio.side.app, twilio.side.auth_token) for _ in forms]
    together = threading.Barrier(len(forms))
    statuses = [0] * len(forms)

    def send(i: int) -> None:
        together.wait(10)
        statuses[i] = sides[i].post(url, forms[i]).status

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(forms))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def call_ends(twilio: Twilio, sid: str) -> None:
    """The status callback of a colleague's helpdesk call that just ended."""
    reply = twilio.post(
        twilio.url("voice.status"),
        twilio.params(CallSid=sid, CallStatus="completed", CallDuration="240"),
    )
    assert reply.status == 204, reply.body


def test_a_colleague_whose_call_ends_is_rung_for_the_first_caller_and_takes_them(
    app: Flask, busy_calls: dict[str, str], twilio: Twilio, twilio_api: TwilioApi
) -> None:
    enqueue = queued(twilio)
    queued(new_call(twilio, caller="+31687654321"))

    call_ends(twilio, busy_calls["anna"])

    [ring] = twilio_api.calls
    assert (ring.to, ring.from_) == (ANNA, LINE_NOORD)
    prompt = twilio.twiml(
        ring.url, CallSid=ring.sid, To=ANNA, From=LINE_NOORD, Direction="outbound-api"
    )
    gather = only(prompt, "Gather")
    assert "Druk op 1 om het gesprek aan te nemen" in said(gather)
    dial = only(twilio.twiml(gather.attrib["action"], CallSid=ring.sid, Digits="1"), "Dial")
    queue = only(dial, "Queue")
    assert queue.text == enqueue.text  # Twilio bridges Anna with the line's first caller
    # Twilio asks the Queue's url for the caller it takes out, then connects the two.
    assert tags(twilio.twiml(queue.attrib["url"], QueueSid=QUEUE_SID, QueueTime="95")) == []

    first = contacts(app)[2]
    assert (first.outcome, first.answered_by) == ("answered", "anna")
    assert queue_steps(app) == [["joined"]]  # the second caller still waits
    assert [s for s in (e.detail.get("stage") for e in first.events if e.kind == "queue")] == [
        "joined",
        "bridged",
    ]


def test_a_colleague_who_does_not_take_the_caller_leaves_them_in_their_place(
    app: Flask, busy_calls: dict[str, str], twilio: Twilio, twilio_api: TwilioApi
) -> None:
    enqueue = queued(twilio)
    call_ends(twilio, busy_calls["anna"])
    [ring] = twilio_api.calls

    reply = twilio.post(
        ring.status_callback, twilio.params(CallSid=ring.sid, CallStatus="no-answer")
    )

    assert reply.status == 204
    assert "U bent nummer 1." in said(wait(twilio, enqueue))
    call_ends(twilio, busy_calls["bram"])  # the next colleague free is offered the caller
    assert [call.to for call in twilio_api.calls] == [ANNA, BRAM]


def test_two_colleagues_free_at_once_are_offered_different_callers(
    app: Flask, busy_calls: dict[str, str], twilio: Twilio, twilio_api: TwilioApi
) -> None:
    queued(twilio)
    queued(new_call(twilio, caller="+31687654321"))
    url = twilio.url("voice.status")
    signed = [
        twilio.params(CallSid=busy_calls[staff], CallStatus="completed", CallDuration="200")
        for staff in ("anna", "bram")
    ]

    answers = at_once_signed(twilio, url, signed)

    assert answers == [204, 204]
    assert sorted(call.to for call in twilio_api.calls) == sorted([ANNA, BRAM])
    with database(app).session() as session:
        offered = sorted(str(e.offered_to) for e in session.scalars(select(QueueEntry)))
    assert offered == ["anna", "bram"]


def test_a_callback_request_in_its_turn_rings_the_free_colleague_for_it(
    app: Flask, busy_calls: dict[str, str], twilio: Twilio, twilio_api: TwilioApi
) -> None:
    enqueue = queued(twilio)
    gather = only(wait(twilio, enqueue), "Gather")
    twilio.twiml(gather.attrib["action"], Digits="1")
    left(twilio, enqueue, "leave", 40)
    queued(new_call(twilio, caller="+31687654321"))  # a caller who came later

    call_ends(twilio, busy_calls["anna"])

    [ring] = twilio_api.calls
    assert ring.to == ANNA and "/voice/callback/colleague?" in ring.url  # the helpline callback
    with database(app).session() as session:
        entry = session.get(QueueEntry, contacts(app)[2].id)
        assert entry is not None and entry.served_at is not None


def test_a_callback_request_is_on_the_board_in_its_turn(
    app: Flask, everyone_busy: None, twilio: Twilio, auth: AuthActions
) -> None:
    enqueue = queued(twilio)
    gather = only(wait(twilio, enqueue), "Gather")
    twilio.twiml(gather.attrib["action"], Digits="1")
    left(twilio, enqueue, "leave", 40)
    twilio.post(
        twilio.url("voice.status"), twilio.params(CallStatus="completed", CallDuration="45")
    )

    board = html.unescape(auth.login(language="nl").get("/now/board").get_data(as_text=True))

    assert "wil teruggebeld worden" in board


def test_intake_simulate_call_puts_a_caller_in_the_queue_and_asks_for_a_callback(
    app: Flask, intake: Intake
) -> None:
    assert intake("load-config", str(EXAMPLE_DESK))[0] == 0

    code, out, err = intake(
        "simulate-call", "--from", "0687654321", "--at", "2026-11-23T10:15",
        "--busy", "anna,bram", "--press", "1",
    )  # fmt: skip

    assert code == 0, err
    assert "puts the caller in the queue line-31851234567" in out
    assert 'hears "U bent nummer 1."' in out
    assert "caller   presses 1" in out
    assert 'hears "Wij bellen u terug op nummer 0 6, 8 7, 6 5, 4 3, 2 1.' in out
    # Anna and Bram were on a call for the simulation only: free again afterwards.
    code, out, _ = intake("simulate-call", "--from", "0611111111", "--at", "2026-11-23T10:20")
    assert code == 0 and "anna     presses 1" in out


def test_intake_simulate_call_in_the_queue_until_the_longest_wait_leaves_a_voicemail(
    app: Flask, intake: Intake
) -> None:
    intake("load-config", str(EXAMPLE_DESK))

    code, out, err = intake(
        "simulate-call", "--from", "0687654321", "--at", "2026-11-23T10:15", "--busy", "anna,bram"
    )

    assert code == 0, err
    assert 'hears "Het spijt ons dat u zo lang moet wachten."' in out
    assert "takes the caller out of the queue" in out
    assert "hears a beep" in out  # the voicemail


@pytest.mark.parametrize(
    ("music", "between"),
    [
        ("", ("Pause", None)),
        ("twilio", ("Play", "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3")),
        (
            "https://helpdesk.example.org/wacht.mp3",
            ("Play", "https://helpdesk.example.org/wacht.mp3"),
        ),
    ],
)
def test_between_announcements_the_caller_hears_silence_or_music(
    app: Flask,
    example_desk: Desk,
    everyone_busy: None,
    twilio: Twilio,
    music: str,
    between: tuple[str, str | None],
) -> None:
    voice = dataclasses.replace(example_desk.voice, queue_music=music)
    load_desk(app, dataclasses.replace(example_desk, voice=voice))

    last = list(wait(twilio, queued(twilio)))[-1]

    assert (last.tag, last.text) == between


def test_the_desks_own_recordings_play_in_the_queue_and_the_place_is_still_spoken(
    app: Flask, example_desk: Desk, everyone_busy: None, twilio: Twilio, auth: AuthActions
) -> None:
    voice = dataclasses.replace(example_desk.voice, queue_music="twilio")
    load_desk(app, dataclasses.replace(example_desk, voice=voice))
    coordinator = auth.login(COORDINATOR, role="coordinator")
    upload(coordinator, "queue_intro", "nl", wav_bytes(4.0), "iedereen-bezet.wav")
    upload(coordinator, "queue_music", "", mp3_bytes(30.0), "wachtmuziek.mp3")

    document = twilio.call()
    assert tags(document) == ["Play", "Enqueue"]
    answer = wait(twilio, only(document, "Enqueue"))

    assert "U bent nummer 1." in said(answer)  # no recording can say the place
    music = list(answer)[-1]
    assert music.tag == "Play" and (music.text or "").endswith(".mp3")  # the desk's, not Twilio's
    assert (music.text or "").startswith("https://intake.example.test/media/recordings/")


def test_a_callback_requested_behind_two_callers_keeps_its_place_and_its_turn(
    app: Flask, busy_calls: dict[str, str], twilio: Twilio, twilio_api: TwilioApi, clock: SimClock
) -> None:
    first, second = new_call(twilio, "+31611111111"), new_call(twilio, "+31622222222")
    queued(first)
    clock.advance(5)
    queued(second)
    clock.advance(5)
    enqueue = queued(twilio)
    gather = only(wait(twilio, enqueue), "Gather")
    assert "U bent nummer 3." in said(wait(twilio, enqueue))
    twilio.twiml(gather.attrib["action"], Digits="1")
    left(twilio, enqueue, "leave", 30)
    fourth = new_call(twilio, "+31644444444")
    clock.advance(5)
    assert "U bent nummer 4." in said(wait(fourth, queued(fourth)))

    call_ends(twilio, busy_calls["anna"])  # the first caller's turn: a call to take
    call_ends(twilio, busy_calls["bram"])  # the second caller's

    assert ["/voice/queue/colleague?" in call.url for call in twilio_api.calls] == [True, True]
    with database(app).session() as session:
        entries = session.scalars(select(QueueEntry).order_by(QueueEntry.queued_at)).all()
        assert [e.offered_to for e in entries] == ["anna", "bram", None, None]
        assert entries[2].result == "callback" and entries[2].served_at is None  # next: it


def test_a_colleague_calling_back_is_busy_and_when_done_is_offered_the_first_caller(
    app: Flask,
    desk: Desk,
    clock: SimClock,
    auth: AuthActions,
    twilio: Twilio,
    twilio_api: TwilioApi,
) -> None:
    # Bram is on a call, and Anna is calling a patient back through the helpline.
    add_contact(
        app, outcome="answered", answered_by="bram", caller="+31600000001", via=LINE_NOORD,
        call_sid=new_sid("CA"), started_at=clock() - timedelta(minutes=4),
    )  # fmt: skip
    patient = add_contact(app, outcome="voicemail", caller="+31655555555", via=LINE_NOORD)
    client = auth.login("anna@example.org")
    page = f"/contacts/{patient}"
    client.post(f"{page}/callback", data={"csrf_token": csrf_token(client, page)})
    [callback_call] = twilio_api.calls
    queued(twilio)  # so a new caller waits: Anna is busy too

    reply = twilio.post(
        callback_call.status_callback,
        twilio.params(CallSid=callback_call.sid, CallStatus="completed"),
    )

    assert reply.status == 204
    assert [call.to for call in twilio_api.calls] == [ANNA, ANNA]
    assert "/voice/queue/colleague?" in twilio_api.calls[1].url
