"""The Recordings page: the coordinator uploads, checks and removes the desk's own
recordings; a file that is not a recording Twilio can play is refused with the reason, and
nothing changes for callers."""

from __future__ import annotations

import html
import io
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.core import announcements
from intake.core.db import database
from intake.core.models import Announcement
from routing.desk import Desk

from .audio import mp3_bytes, remove, upload, wav_bytes
from .auth import COORDINATOR, AuthActions, csrf_token
from .concurrency import at_once
from .conftest import Twilio
from .twiml import said


def page(client: FlaskClient) -> str:
    response = client.get("/recordings")
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def row(text: str, slot: str, language: str) -> str:
    """The page's row for one slot and language."""
    start = text.index(f'id="{slot}-{language}"')
    return text[start : text.index("</tr>", start)]


def flashed(client: FlaskClient) -> str:
    text = page(client)
    return text[text.index("<main") :][:2000]


def current(app: Flask) -> dict[tuple[str, str], str]:
    with database(app).session() as session:
        return {key: r.filename for key, r in announcements.current(session).items()}


def test_the_page_shows_each_text_callers_hear_and_what_replaces_it(
    desk: Desk, auth: AuthActions
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")

    text = page(client)

    greeting = row(text, "greeting", "nl")
    assert "Welkom bij de Helpdesk Digitale Zorg" in greeting
    assert "No recording: the text is spoken." in greeting
    assert "[when the desk opens again]" in row(text, "closed", "nl")
    assert "Welcome to" in row(text, "greeting", "en")
    assert 'id="queue_music-"' in text
    assert "Nederlands (callers hear this language)" in text


def test_an_uploaded_recording_is_listed_with_who_uploaded_it_and_can_be_heard(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")

    response = upload(client, "greeting", "nl", wav_bytes(3.0), "welkom-zomer.wav")

    assert response.status_code == 302 and response.location.endswith("/recordings#greeting-nl")
    text = page(client)
    assert "Saved: callers now hear your recording" in text
    greeting = row(text, "greeting", "nl")
    assert "Your recording, 3 seconds: welkom-zomer.wav, uploaded by" in greeting
    assert COORDINATOR in greeting
    src = greeting.split('<audio controls preload="none" src="')[1].split('"')[0]
    assert src.startswith("/media/recordings/")
    assert client.get(src).data == wav_bytes(3.0)
    assert "Remove recording" in greeting


def test_a_file_that_is_no_recording_is_refused_with_the_reason_and_nothing_changes(
    app: Flask, desk: Desk, auth: AuthActions, twilio: Twilio
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")
    upload(client, "greeting", "nl", mp3_bytes(2.0), "goed.mp3")

    upload(client, "greeting", "nl", b"%PDF-1.7\n" + bytes(4000), "rooster.pdf")
    assert "rooster.pdf was not saved for" in page(client)
    upload(client, "greeting", "nl", wav_bytes(0.2), "kort.wav")
    assert "the recording is shorter than half a second" in page(client)
    too_big = upload(client, "greeting", "nl", bytes(announcements.MAX_BYTES + 100_000))
    assert too_big.status_code == 302
    assert "the file is larger than 5 MB" in page(client)

    # Far more than any recording: refused before the app reads it, with the error page.
    refused = upload(client, "greeting", "nl", bytes(announcements.MAX_BYTES + 2_000_000))
    assert refused.status_code == 413 and "<main" in refused.get_data(as_text=True)

    assert current(app) == {("greeting", "nl"): "goed.mp3"}  # the good one still plays
    assert not said(twilio.call()).startswith("Welkom")


def test_removing_a_recording_speaks_the_text_again_and_says_so(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")
    saved = upload(client, "queue_music", "", mp3_bytes(30.0), "wachtmuziek.mp3")
    assert saved.location.endswith("#queue_music-")  # back at the music's row
    assert current(app) == {("queue_music", ""): "wachtmuziek.mp3"}

    remove(client, "queue_music", "")
    assert "Removed: callers hear the spoken text" in page(client)
    remove(client, "queue_music", "")
    assert "nothing was removed" in page(client)

    assert current(app) == {}
    with database(app).session() as session:  # kept on the record, without the audio
        rows = session.scalars(select(Announcement).order_by(Announcement.id)).all()
        assert [(r.filename, r.token is None, r.audio is None) for r in rows] == [
            ("wachtmuziek.mp3", False, True),
            ("", True, True),
        ]


def test_two_coordinators_uploading_at_once_leave_one_recording_that_plays(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    first = auth.login(COORDINATOR, role="coordinator")
    second = auth.login("tweede@example.org", role="coordinator", client=app.test_client())
    posts: list[tuple[FlaskClient, str, dict[str, Any] | None]] = [
        (
            client,
            "/recordings",
            {
                "csrf_token": csrf_token(client, "/recordings"),
                "slot": "greeting",
                "language": "nl",
                "recording": (io.BytesIO(wav_bytes(1.0)), name),
            },
        )
        for client, name in ((first, "een.wav"), (second, "twee.wav"))
    ]

    results = [getattr(answer, "status_code", answer) for answer in at_once(posts)]  # type: ignore[arg-type]

    assert results == [302, 302]
    playing = current(app)
    assert list(playing) == [("greeting", "nl")] and playing[("greeting", "nl")] in {
        "een.wav",
        "twee.wav",
    }
    with database(app).session() as session:
        with_audio = session.scalars(
            select(Announcement.filename).where(Announcement.audio.is_not(None))
        ).all()
    assert with_audio == [playing[("greeting", "nl")]]


def test_staff_cannot_see_or_change_the_recordings(desk: Desk, auth: AuthActions) -> None:
    client = auth.login()

    assert client.get("/recordings").status_code == 403
    token = csrf_token(client, "/")
    refused = client.post("/recordings/remove", data={"csrf_token": token, "slot": "greeting"})
    assert refused.status_code == 403
