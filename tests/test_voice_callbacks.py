"""Calling a patient back through the helpline: the colleague presses "bel terug" on the
contact's page, Twilio's REST API (a local stand-in, tests/twilioapi.py, spoken to by the
`twilio` package's own Client) rings the colleague's phone from the line the patient
called, and the signed webhooks take it from there. The patient sees the helpline's
number, never the colleague's own."""

# ruff: noqa: F811  (the fixtures of voicecalls, imported by name, are arguments)
from __future__ import annotations

import html
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.core.db import database
from intake.core.models import Callback, ContactEvent

from .auth import COORDINATOR, STAFF, AuthActions, csrf_token
from .concurrency import at_once
from .conftest import ANNA, EXAMPLE_DESK, LINE_NOORD, Twilio
from .factories import add_contact
from .twilioapi import TwilioApi
from .twiml import tags
from .voicecalls import (  # noqa: F401  (twilio_api: a fixture, used by name)
    PATIENT,
    colleague_leg,
    twilio_api,
)

Intake = Callable[..., tuple[int, str, str]]


def voicemail_contact(app: Flask, caller: str = PATIENT) -> int:
    return add_contact(app, outcome="voicemail", caller=caller, via=LINE_NOORD)


def press_call_back(client: FlaskClient, contact_id: int) -> str:
    """Press the button on the contact's page; the page that follows."""
    page = f"/contacts/{contact_id}"
    answer = client.post(f"{page}/callback", data={"csrf_token": csrf_token(client, page)})
    assert answer.status_code == 302, answer.status_code
    return client.get(page).get_data(as_text=True)


def steps(app: Flask, contact_id: int) -> list[str]:
    with database(app).session() as session:
        events = session.scalars(
            select(ContactEvent)
            .where(ContactEvent.contact_id == contact_id, ContactEvent.kind == "callback")
            .order_by(ContactEvent.id)
        ).all()
        return [str((event.detail or {}).get("stage")) for event in events]


def the_callback(app: Flask) -> Callback:
    with database(app).session() as session:
        return session.scalars(select(Callback)).one()


def test_the_colleague_is_rung_first_and_the_patient_sees_the_line(
    app: Flask, auth: AuthActions, twilio: Twilio, twilio_api: TwilioApi
) -> None:
    contact_id = voicemail_contact(app)
    page = press_call_back(auth.login(STAFF), contact_id)

    assert "Your phone rings now. Press 1 to ring the patient." in page
    board = auth.client.get("/now/board").get_data(as_text=True)
    assert "Anna de Vries · since" in html.unescape(board)  # on the board: Anna calls back
    [call] = twilio_api.calls
    assert (call.to, call.from_) == (ANNA, LINE_NOORD)  # Anna's phone, from the line
    assert call.url.startswith("https://intake.example.test/voice/callback/colleague?")
    assert call.status_callback.startswith("https://intake.example.test/voice/callback/status?")

    prompt = colleague_leg(twilio, call, call.url)
    said = " ".join(say.text or "" for say in prompt.iter("Say"))
    assert "0 6, 8 7, 6 5, 4 3, 2 1" in said  # the patient's number, digit by digit
    assert "HD-" in said
    gather = prompt.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"

    dial = colleague_leg(twilio, call, gather.get("action", ""), Digits="1")
    assert tags(dial) == ["Dial"]
    dial_element = dial.find("Dial")
    assert dial_element is not None and dial_element.get("callerId") == LINE_NOORD
    assert [n.text for n in dial_element.iter("Number")] == [PATIENT]

    done = colleague_leg(
        twilio,
        call,
        dial_element.get("action", ""),
        DialCallStatus="completed",
        DialCallDuration="95",
    )
    assert tags(done) == ["Hangup"]
    status = twilio.post(
        call.status_callback, twilio.params(CallSid=call.sid, CallStatus="completed")
    )
    assert status.status == 204

    assert steps(app, contact_id) == ["requested", "ringing-patient", "answered"]
    callback = the_callback(app)
    assert (callback.status, callback.call_sid, callback.requested_by) == (
        "answered",
        call.sid,
        STAFF,
    )
    timeline = auth.client.get(f"/contacts/{contact_id}").get_data(as_text=True)
    assert "Anna de Vries calls back through the helpdesk" in timeline
    assert "The patient answered; they talked for 1 minute and 35 seconds" in timeline


def test_a_repeated_press_of_1_rings_the_patient_once(
    app: Flask, auth: AuthActions, twilio: Twilio, twilio_api: TwilioApi
) -> None:
    contact_id = voicemail_contact(app)
    press_call_back(auth.login(STAFF), contact_id)
    [call] = twilio_api.calls
    gather = colleague_leg(twilio, call, call.url).find("Gather")
    assert gather is not None

    first = colleague_leg(twilio, call, gather.get("action", ""), Digits="1")
    again = colleague_leg(twilio, call, gather.get("action", ""), Digits="1")

    assert tags(first) == ["Dial"] and tags(again) == ["Hangup"]
    assert steps(app, contact_id) == ["requested", "ringing-patient"]


@pytest.mark.parametrize(
    ("dial_status", "stage", "sentence"),
    [
        ("no-answer", "patient-no-answer", "Calling back: the patient did not answer"),
        ("busy", "patient-busy", "Calling back: the patient's line was busy"),
        ("failed", "patient-failed", "Calling back: the patient's number could not be rung"),
    ],
)
def test_a_patient_not_reached_is_on_the_timeline_and_the_colleague_is_told(
    app: Flask,
    auth: AuthActions,
    twilio: Twilio,
    twilio_api: TwilioApi,
    dial_status: str,
    stage: str,
    sentence: str,
) -> None:
    contact_id = voicemail_contact(app)
    press_call_back(auth.login(STAFF), contact_id)
    [call] = twilio_api.calls
    gather = colleague_leg(twilio, call, call.url).find("Gather")
    assert gather is not None
    dial = colleague_leg(twilio, call, gather.get("action", ""), Digits="1").find("Dial")
    assert dial is not None

    told = colleague_leg(twilio, call, dial.get("action", ""), DialCallStatus=dial_status)

    assert "niet bereikt" in " ".join(say.text or "" for say in told.iter("Say"))
    assert steps(app, contact_id) == ["requested", "ringing-patient", stage]
    assert sentence in html.unescape(
        auth.client.get(f"/contacts/{contact_id}").get_data(as_text=True)
    )
    # Over, so a colleague can try again later.
    assert "Call back through the helpdesk" in auth.client.get(f"/contacts/{contact_id}").get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("call_status", "stage"),
    [
        ("no-answer", "colleague-no-answer"),
        ("busy", "colleague-no-answer"),
        ("completed", "colleague-declined"),
    ],
)
def test_a_colleague_who_does_not_answer_or_press_1_ends_the_callback(
    app: Flask,
    auth: AuthActions,
    twilio: Twilio,
    twilio_api: TwilioApi,
    call_status: str,
    stage: str,
) -> None:
    contact_id = voicemail_contact(app)
    press_call_back(auth.login(STAFF), contact_id)
    [call] = twilio_api.calls

    for _ in range(2):  # Twilio may repeat the status callback
        reply = twilio.post(
            call.status_callback, twilio.params(CallSid=call.sid, CallStatus=call_status)
        )
        assert reply.status == 204

    assert steps(app, contact_id) == ["requested", stage]
    assert the_callback(app).ended_at is not None


def test_a_call_twilio_refuses_says_why_and_can_be_tried_again(
    app: Flask, auth: AuthActions, twilio_api: TwilioApi
) -> None:
    contact_id = voicemail_contact(app)
    twilio_api.refuse_next = 21215

    page = press_call_back(auth.login(STAFF), contact_id)

    assert "The call could not be made: Twilio refused the call (21215:" in page
    assert steps(app, contact_id) == ["requested", "refused"]
    assert "Calling back failed: Twilio refused the call (21215:" in page
    assert twilio_api.calls == []
    press_call_back(auth.client, contact_id)
    assert len(twilio_api.calls) == 1


def test_two_colleagues_pressing_at_once_place_one_call(
    app: Flask, auth: AuthActions, twilio_api: TwilioApi
) -> None:
    contact_id = voicemail_contact(app)
    clients = [auth.login(STAFF), auth.login("bram@example.org", client=app.test_client())]
    page = f"/contacts/{contact_id}"
    posts = [
        (client, f"{page}/callback", {"csrf_token": csrf_token(client, page)}) for client in clients
    ]

    answers = at_once(posts)

    assert [getattr(answer, "status_code", answer) for answer in answers] == [302, 302]
    assert len(twilio_api.calls) == 1
    texts = [client.get(page).get_data(as_text=True) for client in clients]
    assert sum("is calling back since" in text for text in texts) == 2  # both see who
    assert sum("Your phone rings now" in text for text in texts) <= 1
    with database(app).session() as session:
        assert len(session.scalars(select(Callback)).all()) == 1


def test_a_withheld_caller_and_a_login_without_a_phone_are_not_offered_a_callback(
    app: Flask, auth: AuthActions, twilio_api: TwilioApi
) -> None:
    withheld = voicemail_contact(app, caller="anonymous")
    client = auth.login(STAFF)
    assert "Call back through the helpdesk" not in client.get(f"/contacts/{withheld}").get_data(
        as_text=True
    )
    page = press_call_back(client, withheld)
    assert "Only a call from a number that is not withheld can be called back." in page

    other = auth.login(COORDINATOR, role="coordinator", client=app.test_client())
    contact_id = voicemail_contact(app)
    page = press_call_back(other, contact_id)
    assert "Your address is not with a colleague of the desk" in page
    assert twilio_api.calls == []


def test_the_callback_webhooks_need_twilios_signature(
    app: Flask, auth: AuthActions, twilio: Twilio, twilio_api: TwilioApi
) -> None:
    contact_id = voicemail_contact(app)
    press_call_back(auth.login(STAFF), contact_id)
    [call] = twilio_api.calls

    forged = twilio.post(call.url, twilio.params(CallSid=call.sid), signature="forged")

    assert forged.status == 403


@pytest.mark.parametrize(
    ("flags", "heard", "ending"),
    [
        ([], "rings the patient +31687654321, showing +31851234567", "answered"),
        (["--no-answer"], "the patient did not answer", "patient-no-answer"),
        (["--no-press"], "does not press 1", "colleague-declined"),
    ],
)
def test_intake_simulate_callback_plays_each_path_through_the_webhooks(
    app: Flask, intake: Intake, flags: list[str], heard: str, ending: str
) -> None:
    assert intake("load-config", str(EXAMPLE_DESK))[0] == 0
    contact_id = voicemail_contact(app)

    code, out, err = intake("simulate-callback", f"hd-{contact_id}", "--by", "anna", *flags)

    assert code == 0, err
    assert f"rings anna ({ANNA}) from the line {LINE_NOORD}" in out
    assert 'hears "Terugbellen voor Ziekenhuis Noord' in out
    assert heard in out
    assert out.rstrip().endswith(f"by anna: {ending}")
    assert steps(app, contact_id)[-1] == ending


def test_intake_simulate_callback_names_what_it_cannot_call_back(
    app: Flask, intake: Intake
) -> None:
    intake("load-config", str(EXAMPLE_DESK))
    withheld = voicemail_contact(app, caller="anonymous")
    callable_id = voicemail_contact(app)

    code, _, err = intake("simulate-callback", f"HD-{callable_id}", "--by", "zoe")
    assert code != 0 and "not a colleague" in err
    code, _, err = intake("simulate-callback", f"HD-{withheld}", "--by", "anna")
    assert code != 0 and "not a call from a number to call back" in err
    code, _, err = intake("simulate-callback", "HD-999999", "--by", "anna")
    assert code != 0 and "there is no contact HD-999999" in err
