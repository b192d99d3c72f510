"""Webhooks refuse forgeries, survive failures, and take repeats and odd input in stride."""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from twilio.request_validator import RequestValidator

from intake import create_app
from intake.core.clock import SimClock
from intake.core.db import EXTENSION, Database, database
from routing.desk import Desk
from voice.simulator import TwilioSide, new_sid

from .conftest import (
    ANNA,
    AUTH_TOKEN,
    BRAM,
    LINE_NOORD,
    PUBLIC_URL,
    Twilio,
    app_config,
    contacts,
    terminate_backend,
)
from .twiml import dialled, tags

INCOMING = PUBLIC_URL + "/voice/incoming"


def post_raw(app: Flask, path: str, form: dict[str, str], headers: dict[str, str], base_url: str):  # type: ignore[no-untyped-def]
    return app.test_client().post(path, data=form, headers=headers, base_url=base_url)


def signed(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


def is_voicemail(document: ET.Element) -> bool:
    record = document.find("Record")
    return record is not None and bool(record.get("action"))


# --- signatures ---------------------------------------------------------------------------


def test_request_without_signature_is_refused(app: Flask, desk: Desk, twilio: Twilio) -> None:
    response = post_raw(app, "/voice/incoming", twilio.params(), {}, PUBLIC_URL)

    assert response.status_code == 403
    assert contacts(app) == []


def test_request_with_a_wrong_signature_is_refused(app: Flask, desk: Desk, twilio: Twilio) -> None:
    reply = twilio.post(INCOMING, twilio.params(), signature=signed(INCOMING, {}, "other-token"))

    assert reply.status == 403
    assert contacts(app) == []


def test_a_field_added_after_signing_is_refused(app: Flask, desk: Desk, twilio: Twilio) -> None:
    form = twilio.params()
    signature = signed(INCOMING, form)

    response = post_raw(
        app,
        "/voice/incoming",
        {**form, "From": "+31699999999", "Extra": "1"},
        {"X-Twilio-Signature": signature},
        PUBLIC_URL,
    )

    assert response.status_code == 403


def test_new_parameters_from_twilio_are_part_of_the_signature(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    """Twilio adds fields without notice: we sign over whatever arrives, not a fixed list."""
    reply = twilio.post(INCOMING, twilio.params(StirVerstat="TN-Validation-Passed-A", NewThing="x"))

    assert reply.status == 200


def test_tampering_with_the_query_string_is_refused(app: Flask, desk: Desk, twilio: Twilio) -> None:
    dial = twilio.call().find("Dial")
    assert dial is not None
    url = next(iter(dial.iter("Number"))).attrib["url"]
    form = twilio.params(CallSid=new_sid("CA"))
    forged = url.replace("staff=anna", "staff=bram")
    assert forged != url

    response = post_raw(
        app,
        forged.removeprefix(PUBLIC_URL),
        form,
        {"X-Twilio-Signature": signed(url, form)},
        PUBLIC_URL,
    )

    assert response.status_code == 403


def test_behind_a_tls_proxy_the_public_url_is_what_counts(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    form = twilio.params()

    # The proxy reaches the app over plain http on an internal address.
    response = post_raw(
        app,
        "/voice/incoming",
        form,
        {"X-Twilio-Signature": signed(INCOMING, form)},
        "http://10.1.2.3:8000",
    )

    assert response.status_code == 200


def test_forwarded_headers_cannot_choose_the_url_we_check(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    """A signature made for another host must not pass by naming that host in X-Forwarded-*."""
    form = twilio.params()
    evil = "https://evil.example/voice/incoming"

    response = post_raw(
        app,
        "/voice/incoming",
        form,
        {
            "X-Twilio-Signature": signed(evil, form),
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
        },
        "http://10.1.2.3:8000",
    )

    assert response.status_code == 403


def test_sha256_signatures_are_accepted_when_announced(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    form = twilio.params()
    payload = INCOMING + "".join(k + form[k] for k in sorted(form))
    digest = hmac.new(AUTH_TOKEN.encode(), payload.encode(), hashlib.sha256).digest()

    response = post_raw(
        app,
        "/voice/incoming",
        form,
        {
            "X-Twilio-Signature": base64.b64encode(digest).decode(),
            "X-Twilio-Webhooks-Signature-Settings": "key=sharedkey_1,algorithm=HMAC_SHA256",
        },
        PUBLIC_URL,
    )

    assert response.status_code == 200


def test_without_an_auth_token_every_webhook_is_refused(
    database_url: str, clock: SimClock, tmp_path: Path, example_desk: Desk
) -> None:
    app = create_app(app_config(database_url, clock, tmp_path, TWILIO_AUTH_TOKEN=""))
    form = {"CallSid": new_sid("CA"), "From": "+31612345678"}

    response = post_raw(app, "/voice/incoming", form, {"X-Twilio-Signature": "x"}, PUBLIC_URL)

    assert response.status_code == 403


# --- failures behind the webhook ----------------------------------------------------------


@pytest.fixture
def broken_app(clock: SimClock, tmp_path: Path) -> Flask:
    """An app whose database cannot even be opened."""
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'intake.db'}"
    return create_app(app_config(url, clock, tmp_path))


@pytest.mark.parametrize(
    ("endpoint", "fields", "expect"),
    [
        ("voice.incoming", {}, "voicemail"),
        ("voice.dial_result", {"DialCallStatus": "no-answer"}, "voicemail"),
        ("voice.dial_result", {"DialCallStatus": "completed"}, "hangup"),
        ("voice.screen_result", {"Digits": "1"}, "connect"),
        ("voice.screen_result", {"Digits": "9"}, "hangup"),
        ("voice.screen", {}, "gather"),
        ("voice.voicemail", {"RecordingUrl": "https://api.twilio.com/x"}, "hangup"),
        ("voice.fallback", {"ErrorCode": "11200"}, "voicemail"),
    ],
)
def test_without_a_database_every_webhook_still_answers_twiml(
    broken_app: Flask, endpoint: str, fields: dict[str, str], expect: str
) -> None:
    twilio = Twilio(TwilioSide(broken_app, AUTH_TOKEN), new_sid("CA"))

    document = twilio.twiml(twilio.url(endpoint, contact=1, staff="anna"), **fields)

    verbs = [v.tag for v in document]
    if expect == "voicemail":
        assert is_voicemail(document)
        assert verbs[-1] == "Hangup"
    elif expect == "hangup":
        assert verbs[-1] == "Hangup"
    elif expect == "connect":
        assert verbs == []
    else:
        assert verbs == ["Gather", "Hangup"]


@pytest.mark.parametrize("endpoint", ["voice.recording", "voice.status"])
def test_without_a_database_callbacks_are_acknowledged(broken_app: Flask, endpoint: str) -> None:
    twilio = Twilio(TwilioSide(broken_app, AUTH_TOKEN), new_sid("CA"))

    reply = twilio.post(twilio.url(endpoint), twilio.params(CallStatus="completed"))

    assert reply.status == 204


def test_a_lost_recording_callback_stays_in_the_log_without_phone_numbers(
    broken_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    twilio = Twilio(TwilioSide(broken_app, AUTH_TOKEN), new_sid("CA"))
    fields = twilio.params(
        RecordingSid="RE" + "d" * 32,
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE4",
        RecordingStatus="completed",
        ForwardedFrom="+31201234567",
    )

    assert twilio.post(twilio.url("voice.recording"), fields).status == 204

    assert "RE" + "d" * 32 in caplog.text
    assert "Recordings/RE4" in caplog.text
    for number in ("+31612345678", "+31851234567", "+31201234567"):
        assert number not in caplog.text


def test_failed_statements_keep_their_parameters_out_of_errors(app: Flask) -> None:
    with pytest.raises(DBAPIError) as failure, database(app).session() as session:
        session.execute(text("SELECT * FROM no_such_table WHERE x = :n"), {"n": "+31612345678"})

    assert "+31612345678" not in str(failure.value)


def test_database_failing_mid_service_still_gives_voicemail_in_the_desks_words(
    app: Flask, desk: Desk, twilio: Twilio, tmp_path: Path
) -> None:
    twilio.call()  # the desk is read once while the database works
    working = app.extensions[EXTENSION]
    app.extensions[EXTENSION] = Database(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")
    try:
        document = Twilio(twilio.side, new_sid("CA")).call()
    finally:
        app.extensions[EXTENSION].engine.dispose()
        app.extensions[EXTENSION] = working

    assert is_voicemail(document)
    # The cached desk still speaks: its mail address, not the bare stand-in desk.
    assert "helpdesk@example.org" in " ".join(s.text or "" for s in document.iter("Say"))


def test_fallback_url_works_without_a_desk_or_database(broken_app: Flask) -> None:
    twilio = Twilio(TwilioSide(broken_app, AUTH_TOKEN), new_sid("CA"))

    document = twilio.twiml(twilio.url("voice.fallback"), ErrorCode="11200")

    assert is_voicemail(document)
    assert document.find("Say") is not None


# --- odd callers and odd requests ---------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "logged_as"),
    [
        ("anonymous", "anonymous"),
        ("+266696687", "+266696687"),  # Twilio's mark for a withheld number
        ("client:alice", "client:alice"),
        ("sip:bob@example.com", "sip:bob@example.com"),
        ("", "unknown"),
        ("0612345678", "+31612345678"),
        ("<script>&amp;", "<script>&amp;"),
        ("+1", "+1"),
    ],
)
def test_odd_callers_get_valid_twiml_and_are_logged(
    app: Flask, desk: Desk, twilio: Twilio, caller: str, logged_as: str
) -> None:
    twilio.caller = caller

    document = twilio.call()

    assert document.find("Dial") is not None
    [contact] = contacts(app)
    assert contact.caller == logged_as


# What /voice/incoming makes of a request missing one field, read from voice/views.py: each
# gives the open desk's welcome and rings Anna and Bram (Monday 10:15), and the contact is
# logged with what could be known.
MISSING_FIELDS = [
    pytest.param("From", ["Say", "Dial"], {"caller": "unknown"}, id="From"),
    # No line: the call is for the desk's first line's organisation, on no line.
    pytest.param("To", ["Say", "Dial"], {"via": "", "organisation": "Ziekenhuis Noord"}, id="To"),
    # No sid: logged without one (later callbacks cannot find it), still put through.
    pytest.param("CallSid", ["Say", "Dial"], {"call_sid": None}, id="CallSid"),
    # Only the signature covers AccountSid; nothing else reads it.
    pytest.param(
        "AccountSid",
        ["Say", "Dial"],
        {"caller": "+31612345678", "via": LINE_NOORD},
        id="AccountSid",
    ),
]


@pytest.mark.parametrize(("missing", "verbs", "logged"), MISSING_FIELDS)
def test_a_call_missing_a_field_still_rings_the_colleagues_on_shift(
    app: Flask,
    desk: Desk,
    twilio: Twilio,
    missing: str,
    verbs: list[str],
    logged: dict[str, str | None],
) -> None:
    form = twilio.params()
    del form[missing]

    reply = twilio.post(INCOMING, form)

    assert reply.status == 200
    assert reply.twiml is not None
    assert tags(reply.twiml) == verbs
    assert dialled(reply.twiml) == [ANNA, BRAM]
    [contact] = contacts(app)
    assert {field: getattr(contact, field) for field in logged} == logged
    assert contact.outcome == "in-progress"


def test_unknown_line_is_answered_for_the_desk(app: Flask, desk: Desk, twilio: Twilio) -> None:
    twilio.called = "+31201111111"

    assert twilio.call().find("Dial") is not None
    [contact] = contacts(app)
    assert contact.organisation == "Ziekenhuis Noord"  # the first line's


def test_garbled_query_values_do_not_break_callbacks(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    twilio.call()
    url = PUBLIC_URL + "/voice/dial-result?contact=abc&remaining=,,nobody,"

    document = twilio.twiml(url, DialCallStatus="no-answer", DialCallDuration="x")

    assert is_voicemail(document)


# --- Twilio repeating itself and arriving out of order ------------------------------------


def test_the_same_call_sid_twice_gives_one_contact(app: Flask, desk: Desk, twilio: Twilio) -> None:
    first = twilio.call()
    second = twilio.call()

    assert ET.tostring(first) == ET.tostring(second)
    [contact] = contacts(app)
    assert [e.kind for e in contact.events] == ["incoming"]


def test_the_same_recording_twice_is_logged_once(app: Flask, desk: Desk, twilio: Twilio) -> None:
    twilio.call()
    fields = twilio.params(
        RecordingSid="RE" + "b" * 32,
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE2",
        RecordingDuration="12",
        RecordingStatus="completed",
    )

    for _ in range(3):
        assert twilio.post(twilio.url("voice.recording"), fields).status == 204

    [contact] = contacts(app)
    assert contact.outcome == "voicemail"
    assert [e.kind for e in contact.events].count("recording") == 1


def test_callbacks_before_the_call_was_logged_open_the_contact(
    app: Flask, desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    """The recording of a voicemail taken by the Fallback URL still reaches the log."""
    fields = twilio.params(
        RecordingSid="RE" + "c" * 32,
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE3",
        RecordingDuration="20",
        RecordingStatus="completed",
    )
    assert twilio.post(twilio.url("voice.recording"), fields).status == 204
    clock.advance(2)
    assert (
        twilio.post(twilio.url("voice.status"), twilio.params(CallStatus="completed")).status == 204
    )
    completed = clock()
    clock.advance(5)
    twilio.call()  # a late /voice/incoming changes nothing

    [contact] = contacts(app)
    assert contact.outcome == "voicemail"
    assert contact.caller == "+31612345678"
    assert contact.ended_at == completed  # when Twilio said the call was completed


def test_an_unknown_call_status_is_stored_not_a_crash(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    twilio.call()

    reply = twilio.post(twilio.url("voice.status"), twilio.params(CallStatus="teleported"))

    assert reply.status == 204
    [contact] = contacts(app)
    assert contact.call_status == "teleported"
    assert contact.outcome == "in-progress"
    assert contact.events[-1].detail["status"] == "teleported"


def test_no_desk_loaded_still_answers_with_voicemail(app: Flask, twilio: Twilio) -> None:
    document = twilio.call()

    assert is_voicemail(document)


def test_a_connection_the_server_closed_costs_no_caller_their_colleague(
    app: Flask, desk: Desk, twilio: Twilio, database_url: str
) -> None:
    """PostgreSQL restarted or dropped an idle connection: the call still rings colleagues."""
    if not database_url.startswith("postgresql"):
        pytest.skip("only a database server can close a pooled connection")

    twilio.call()  # the pool now holds one connection
    engine = database(app).engine
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    terminate_backend(database_url, pid)

    document = Twilio(twilio.side, new_sid("CA")).call()

    assert document.find("Dial") is not None
    assert len(contacts(app)) == 2
