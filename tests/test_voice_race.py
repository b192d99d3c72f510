"""Requests about one call at the same moment, each through a web process of its own.

Two colleagues press 1 at once: exactly one is put through (an empty <Response/> bridges the
caller) and logged as `answered_by`, and counts as busy for the next call; the other hears
that a colleague has the call and is hung up. The voicemail's recording callback (twice, as
Twilio repeats it) and the call's end arrive at once: the call is a voicemail, and the
colleagues are told once. Played against two real gunicorn processes on the test database,
the requests released together by a barrier, over several calls so that an unlucky
interleaving is met, not hoped for.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import select

from intake.core.db import database
from intake.core.models import Contact, OutboxMessage
from routing.desk import Desk, VoiceSettings
from voice.simulator import new_sid

from .conftest import ANNA, AUTH_TOKEN, BRAM, PUBLIC_URL, Twilio, contacts, load_desk
from .factories import COLLEAGUES, always_open_desk
from .twiml import only, said, tags
from .webservers import Answer, WebServer, WebServers, all_at_once, call_params, web_env

CALLS = 8  # bounded: each call is two presses at once, on two processes
VOICEMAILS = 6  # each: three callbacks at once, on two processes


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def at_once(*presses: Callable[[], Answer]) -> list[Answer]:
    """Run each press in a thread of its own, released together."""
    answers = all_at_once(presses)
    for answer in answers:
        if not isinstance(answer, Answer):
            raise AssertionError(f"a press got no answer: {answer!r}")
    return [a for a in answers if isinstance(a, Answer)]


def press_1(server: WebServer, call_sid: str, number_url: str, phone: str) -> Answer:
    """A colleague's leg: the screening prompt, then the 1 pressed on its <Gather>."""
    leg = new_sid("CA")
    fields = {"CallSid": leg, "ParentCallSid": call_sid, "Direction": "outbound-dial", "To": phone}
    prompt = server.post_signed(path_of(number_url), call_params(call_sid, **fields))
    assert prompt.twiml is not None, prompt.body
    gather = only(prompt.twiml, "Gather")
    return server.post_signed(
        path_of(gather.attrib["action"]), call_params(call_sid, Digits="1", **fields)
    )


def test_two_colleagues_pressing_1_at_once_one_gets_the_call(
    app: Flask, database_url: str, tmp_path: Path, web_servers: WebServers
) -> None:
    desk = load_desk(app, always_open_desk())
    env = web_env(database_url, tmp_path / "instance", PUBLIC_URL, AUTH_TOKEN)
    first = web_servers.start(env, name="web-a", workers=1, threads=2)
    second = web_servers.start(env, name="web-b", workers=1, threads=2)
    by_phone = {s.phone: s.id for s in desk.staff}

    for _ in range(CALLS):
        call_sid = new_sid("CA")
        incoming = first.post_signed("/voice/incoming", call_params(call_sid))
        assert incoming.twiml is not None, incoming.body
        numbers = list(only(incoming.twiml, "Dial").iter("Number"))
        assert len(numbers) >= 2, incoming.body
        (a_phone, a_url), (b_phone, b_url) = [
            ((n.text or "").strip(), n.attrib["url"]) for n in numbers[:2]
        ]

        answers = at_once(
            partial(press_1, first, call_sid, a_url, a_phone),
            partial(press_1, second, call_sid, b_url, b_phone),
        )

        heard = [tags(a.twiml) if a.twiml is not None else None for a in answers]
        put_through = [i for i, h in enumerate(heard) if h == []]
        told = [i for i, h in enumerate(heard) if h == ["Say", "Hangup"]]
        assert len(put_through) == 1, [a.body for a in answers]
        assert len(told) == 1, [a.body for a in answers]
        told_twiml = answers[told[0]].twiml
        assert told_twiml is not None and said(told_twiml)  # a colleague has the call
        with database(app).session() as session:
            contact = session.scalars(select(Contact).where(Contact.call_sid == call_sid)).one()
            winner = (a_phone, b_phone)[put_through[0]]
            assert contact.answered_by == by_phone[winner]
            accepted = [e for e in contact.events if e.kind == "accepted"]
            assert [e.detail.get("staff") for e in accepted] == [by_phone[winner]]
        # The one on the call is busy: the next caller's colleagues are the other two.
        next_sid = new_sid("CA")
        another = second.post_signed("/voice/incoming", call_params(next_sid))
        assert another.twiml is not None, another.body
        rung = [(n.text or "").strip() for n in only(another.twiml, "Dial").iter("Number")]
        assert winner not in rung and rung, another.body
        # The calls end, so that the winner is free for the next one.
        for sid in (call_sid, next_sid):
            ended = first.post_signed("/voice/status", call_params(sid, CallStatus="completed"))
            assert ended.status < 300, ended.body


def voicemail_record(server: WebServer, call_sid: str) -> ET.Element:
    """The call rings out to voicemail: the <Record> the caller hears."""
    answer = server.post_signed("/voice/incoming", call_params(call_sid))
    for _ in range(len(COLLEAGUES) + 1):  # one round of ringing per colleague at most
        assert answer.twiml is not None, answer.body
        if answer.twiml.find("Record") is not None:
            return only(answer.twiml, "Record")
        action = only(answer.twiml, "Dial").attrib["action"]
        answer = server.post_signed(
            path_of(action), call_params(call_sid, DialCallStatus="no-answer")
        )
    raise AssertionError(f"no voicemail: {answer.body}")


def test_the_voicemail_and_the_end_of_the_call_reported_at_once_make_one_voicemail(
    app: Flask, database_url: str, tmp_path: Path, web_servers: WebServers
) -> None:
    """Twilio reports the recording (twice: it repeats itself) as the call ends, each to
    whichever web process: the call is a voicemail, and colleagues are told once."""
    load_desk(app, always_open_desk())
    env = web_env(database_url, tmp_path / "instance", PUBLIC_URL, AUTH_TOKEN)
    first = web_servers.start(env, name="web-a", workers=1, threads=2)
    second = web_servers.start(env, name="web-b", workers=1, threads=2)

    for _ in range(VOICEMAILS):
        call_sid = new_sid("CA")
        record = voicemail_record(first, call_sid)
        recording_sid = new_sid("RE")
        recorded = call_params(
            call_sid,
            RecordingSid=recording_sid,
            RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{recording_sid}",
            RecordingStatus="completed",
            RecordingDuration="31",
        )
        callback = path_of(record.attrib["recordingStatusCallback"])
        ended = call_params(call_sid, CallStatus="completed", CallDuration="52", SequenceNumber="3")

        answers = at_once(
            partial(first.post_signed, callback, recorded),
            partial(second.post_signed, callback, recorded),
            partial(second.post_signed, "/voice/status", ended),
        )

        assert [a.status for a in answers] == [204, 204, 204], [a.body for a in answers]
        with database(app).session() as session:
            contact = session.scalars(select(Contact).where(Contact.call_sid == call_sid)).one()
            assert (contact.outcome, contact.recording_sid) == ("voicemail", recording_sid)
            assert (contact.ended_at is not None, contact.duration_seconds) == (True, 52)
            assert [e.kind for e in contact.events].count("recording") == 1
            notices = session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.contact_id == contact.id,
                    OutboxMessage.kind == "voicemail-notice",
                )
            ).all()
            assert len(notices) == 1


def test_without_screening_the_second_phone_to_pick_up_hears_the_call_is_taken(
    app: Flask, example_desk: Desk, twilio: Twilio
) -> None:
    """The loser of two pick-ups (judged second by the database) is not bridged as well."""
    load_desk(app, dataclasses.replace(example_desk, voice=VoiceSettings(screening=False)))
    dial = only(twilio.call(), "Dial")
    anna, bram = (next(n for n in dial.iter("Number") if n.text == p) for p in (ANNA, BRAM))

    first = twilio.leg(bram.attrib["url"], new_sid("CA"), To=BRAM)
    second = twilio.leg(anna.attrib["url"], new_sid("CA"), To=ANNA)

    assert tags(first) == []  # bridged
    assert tags(second) == ["Say", "Hangup"] and said(second)
    [contact] = contacts(app)
    assert contact.answered_by == "bram"
    assert [e.detail["staff"] for e in contact.events if e.kind == "accepted"] == ["bram"]
