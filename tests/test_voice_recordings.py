"""The desk's own voice: a recording the coordinator uploads is what callers hear instead of
the spoken text (a `<Play>` of a URL Twilio fetches, unsigned, by an unguessable token),
and the spoken text comes back when it is removed. Twilio's side is played with signed
requests; the TwiML is parsed; the audio is fetched from the URL in the TwiML."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from intake.core.clock import SimClock
from intake.core.db import EXTENSION, Database
from routing.desk import Desk

from .audio import mp3_bytes, remove, upload, wav_bytes
from .auth import COORDINATOR, AuthActions
from .conftest import PUBLIC_URL, Twilio, new_call
from .factories import local
from .twiml import only, said, tags


@pytest.fixture
def coordinator(auth: AuthActions) -> FlaskClient:
    return auth.login(COORDINATOR, role="coordinator")


def fetched(client: FlaskClient, url: str) -> tuple[int, str, bytes, str]:
    """What Twilio gets for a <Play> URL, requested without a signature or a login."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    response = client.get(parts.path)
    return (
        response.status_code,
        response.mimetype,
        response.get_data(),
        response.headers.get("Cache-Control", ""),
    )


def test_a_recorded_greeting_is_played_instead_of_said_and_twilio_can_fetch_it(
    app: Flask, desk: Desk, twilio: Twilio, coordinator: FlaskClient
) -> None:
    assert "Welkom bij" in said(twilio.call())  # before: the spoken greeting
    audio = wav_bytes(3.0)

    assert upload(coordinator, "greeting", "nl", audio, "welkom.wav").status_code == 302

    document = new_call(twilio).call()
    assert tags(document) == ["Play", "Dial"]
    assert "Welkom" not in said(document)
    url = only(document, "Play").text or ""
    assert url.startswith(f"{PUBLIC_URL}/media/recordings/") and url.endswith(".wav")
    status, mimetype, body, cache = fetched(app.test_client(), url)
    assert (status, mimetype, body) == (200, "audio/wav", audio)
    assert "immutable" in cache and "public" in cache
    # Every call after it plays the same recording (the answer is built once per shape).
    assert only(new_call(twilio).call(), "Play").text == url


def test_a_new_recording_is_a_new_url_and_removing_it_speaks_the_text_again(
    app: Flask, desk: Desk, twilio: Twilio, coordinator: FlaskClient
) -> None:
    upload(coordinator, "greeting", "nl", wav_bytes(2.0))
    first = only(twilio.call(), "Play").text or ""

    upload(coordinator, "greeting", "nl", mp3_bytes(4.0), "nieuw.mp3")
    second = only(new_call(twilio).call(), "Play").text or ""
    assert second != first and second.endswith(".mp3")
    media = app.test_client()
    assert fetched(media, first)[0] == 404  # the old audio is gone, not served under a new name
    assert fetched(media, second)[:2] == (200, "audio/mpeg")

    assert remove(coordinator, "greeting", "nl").status_code == 302
    document = new_call(twilio).call()
    assert tags(document) == ["Say", "Dial"] and "Welkom bij" in said(document)
    assert fetched(media, second)[0] == 404


def test_a_recording_in_another_language_is_not_played_to_a_dutch_desks_callers(
    desk: Desk, twilio: Twilio, coordinator: FlaskClient
) -> None:
    upload(coordinator, "greeting", "en", wav_bytes())

    document = twilio.call()

    assert not list(document.iter("Play")) and "Welkom bij" in said(document)


def test_a_recorded_closed_message_plays_before_the_voicemail_beep(
    desk: Desk, twilio: Twilio, clock: SimClock, coordinator: FlaskClient
) -> None:
    upload(coordinator, "closed", "nl", wav_bytes())
    clock.moment = local("2026-11-22 14:00")  # Sunday: closed

    document = twilio.call()

    assert tags(document) == ["Play", "Record", "Say", "Hangup"]
    assert "geen bericht" in said(document)  # the text after a silent caller is still spoken


def test_the_thanks_after_a_message_is_the_recording_even_when_the_database_fails_then(
    app: Flask,
    desk: Desk,
    twilio: Twilio,
    clock: SimClock,
    coordinator: FlaskClient,
    tmp_path: Path,
) -> None:
    upload(coordinator, "voicemail_thanks", "nl", wav_bytes())
    clock.moment = local("2026-11-22 14:00")  # Sunday: closed, a voicemail
    record = only(twilio.call(), "Record")  # the recordings are read while the database works
    working = app.extensions[EXTENSION]
    app.extensions[EXTENSION] = Database(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")
    try:
        document = twilio.twiml(
            record.attrib["action"],
            RecordingUrl="https://api.twilio.com/r/RE1",
            RecordingDuration="9",
        )
    finally:
        app.extensions[EXTENSION].engine.dispose()
        app.extensions[EXTENSION] = working

    assert tags(document) == ["Play", "Hangup"]  # the safe answer, with the recording last read


def test_the_media_url_needs_the_exact_token(
    app: Flask, desk: Desk, twilio: Twilio, coordinator: FlaskClient
) -> None:
    upload(coordinator, "greeting", "nl", wav_bytes())
    url = only(twilio.call(), "Play").text or ""
    media = app.test_client()
    token = urlsplit(url).path.rsplit("/", 1)[1].split(".")[0]
    wrong = token[:-1] + ("y" if token.endswith("x") else "x")  # one character off

    assert fetched(media, f"{PUBLIC_URL}/media/recordings/{wrong}.wav")[0] == 404
    assert fetched(media, f"{PUBLIC_URL}/media/recordings/{token}.mp3")[0] == 404  # not as MP3
    assert fetched(media, url)[0] == 200


def test_simulate_call_plays_the_recording_as_twilio_fetches_it(
    desk: Desk, coordinator: FlaskClient, intake: Callable[..., tuple[int, str, str]]
) -> None:
    upload(coordinator, "greeting", "nl", wav_bytes(3.0))

    code, out, err = intake("simulate-call", "--from", "06 1234 5678", "--at", "2026-11-23T10:15")

    assert code == 0, err
    assert "caller   hears the desk's recording (audio/wav, 3 s)" in out, out
    assert "Welkom bij" not in out
