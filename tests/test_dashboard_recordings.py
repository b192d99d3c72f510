"""The voicemail player's audio: fetched from Twilio with the account's credentials, and only there.

A real HTTP server on 127.0.0.1 stands in for Twilio's API host; nothing reaches Twilio.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Flask

from routing.desk import Desk

from .auth import AuthActions
from .conftest import AUTH_TOKEN
from .factories import add_contact

ACCOUNT_SID = "AC" + "1" * 32
RECORDING_SID = "RE" + "0123456789abcdef" * 2
RECORDING_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}"
# Not a playable MP3, but bytes an MP3 starts with; large enough to come in several chunks.
FAKE_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 800


@dataclass
class FakeTwilio:
    """Serves one recording at RECORDING_PATH.mp3 to requests with the right Basic auth."""

    base: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Authorization)
    status: int = 200
    content_type: str = "audio/mpeg"
    redirect_to: str = ""
    release: threading.Event = field(default_factory=threading.Event)
    hang: bool = False  # answer only once released (or never): a slow upstream


@contextmanager
def serve(fake: FakeTwilio) -> Iterator[FakeTwilio]:
    expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append((self.path, self.headers.get("Authorization", "")))
            if fake.hang:
                fake.release.wait(10)
                return
            if fake.redirect_to:
                self.send_response(302)
                self.send_header("Location", fake.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("Authorization") != expected:
                self.send_error(401)
                return
            if self.path != RECORDING_PATH + ".mp3":
                self.send_error(404)
                return
            if fake.status != 200:
                self.send_error(fake.status)
                return
            self.send_response(200)
            self.send_header("Content-Type", fake.content_type)
            self.send_header("Content-Length", str(len(FAKE_MP3)))
            self.end_headers()
            self.wfile.write(FAKE_MP3)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def twilio_media(app: Flask) -> Iterator[FakeTwilio]:
    """The fake Twilio, configured as the app's Twilio API host."""
    with serve(FakeTwilio()) as fake:
        app.config.update(TWILIO_API_BASE=fake.base, TWILIO_ACCOUNT_SID=ACCOUNT_SID)
        yield fake


@pytest.fixture
def elsewhere() -> Iterator[FakeTwilio]:
    """Another host, which must never be asked for anything."""
    with serve(FakeTwilio()) as fake:
        yield fake


def voicemail(app: Flask, recording_url: str | None) -> int:
    return add_contact(app, outcome="voicemail", recording_url=recording_url, recording_seconds=9)


def play(app: Flask, auth: AuthActions, recording_url: str | None) -> tuple[int, str, bytes]:
    """A voicemail with this recording, played by a colleague who just logged in: the
    status, Content-Type and body the player gets."""
    contact_id = voicemail(app, recording_url)
    with auth.login().get(f"/contacts/{contact_id}/recording") as response:
        return response.status_code, response.headers.get("Content-Type", ""), response.data


def test_the_recording_streams_from_twilio_with_the_accounts_credentials(
    app: Flask,
    desk: Desk,
    twilio_media: FakeTwilio,
    auth: AuthActions,
) -> None:
    contact_id = voicemail(app, twilio_media.base + RECORDING_PATH)
    client = auth.login()

    with client.get(f"/contacts/{contact_id}/recording") as response:
        assert response.status_code == 200
        assert response.is_streamed
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert response.headers["Content-Length"] == str(len(FAKE_MP3))
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.data == FAKE_MP3
    expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert twilio_media.requests == [(RECORDING_PATH + ".mp3", expected)]


def test_the_recording_needs_a_login(app: Flask, desk: Desk, twilio_media: FakeTwilio) -> None:
    contact_id = voicemail(app, twilio_media.base + RECORDING_PATH)

    response = app.test_client().get(f"/contacts/{contact_id}/recording")

    assert response.status_code == 302
    assert twilio_media.requests == []


@pytest.mark.parametrize(
    "make_url",
    [
        pytest.param(lambda twilio, other: other.base + RECORDING_PATH, id="another host"),
        pytest.param(
            lambda twilio, other: twilio.base.replace("http://", "https://") + RECORDING_PATH,
            id="another scheme",
        ),
        pytest.param(
            lambda twilio, other: twilio.base.replace("127.0.0.1", "localhost") + RECORDING_PATH,
            id="the same machine by another name",
        ),
        pytest.param(
            lambda twilio, other: twilio.base.replace("//", "//user:pw@") + RECORDING_PATH,
            id="credentials in the URL",
        ),
        pytest.param(
            lambda twilio, other: f"{twilio.base}@{other.base[7:]}{RECORDING_PATH}",
            id="host confusion with @",
        ),
        pytest.param(
            lambda twilio, other: twilio.base + RECORDING_PATH + "?x=" + other.base,
            id="a query",
        ),
        pytest.param(
            lambda twilio, other: twilio.base + f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
            id="not a recording",
        ),
        pytest.param(
            lambda twilio, other: twilio.base + RECORDING_PATH + "/../../Calls",
            id="a path that climbs out",
        ),
        pytest.param(lambda twilio, other: None, id="no recording"),
    ],
)
def test_only_recordings_on_the_configured_twilio_host_are_fetched(
    app: Flask,
    desk: Desk,
    twilio_media: FakeTwilio,
    elsewhere: FakeTwilio,
    make_url: Callable[[FakeTwilio, FakeTwilio], str | None],
    auth: AuthActions,
) -> None:
    url = make_url(twilio_media, elsewhere)

    status, _type, _body = play(app, auth, url)

    assert status == 404
    assert twilio_media.requests == []
    assert elsewhere.requests == []


def test_the_page_offers_no_player_for_a_recording_elsewhere(
    app: Flask,
    desk: Desk,
    twilio_media: FakeTwilio,
    elsewhere: FakeTwilio,
    auth: AuthActions,
) -> None:
    contact_id = voicemail(app, elsewhere.base + RECORDING_PATH)
    client = auth.login()

    html = client.get(f"/contacts/{contact_id}").get_data(as_text=True)

    assert "<audio" not in html
    assert "This recording is not on Twilio and is not played." in html


def test_a_redirect_off_the_twilio_host_is_not_followed(
    app: Flask,
    desk: Desk,
    twilio_media: FakeTwilio,
    elsewhere: FakeTwilio,
    auth: AuthActions,
) -> None:
    twilio_media.redirect_to = elsewhere.base + RECORDING_PATH + ".mp3"

    status, _type, _body = play(app, auth, twilio_media.base + RECORDING_PATH)

    assert status == 502
    assert elsewhere.requests == []


def test_twilio_being_down_gives_bad_gateway(app: Flask, desk: Desk, auth: AuthActions) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{probe.getsockname()[1]}"
    app.config.update(TWILIO_API_BASE=base, TWILIO_ACCOUNT_SID=ACCOUNT_SID)

    status, _type, _body = play(app, auth, base + RECORDING_PATH)

    assert status == 502


@pytest.mark.parametrize("upstream_status", [401, 404, 500, 503])
def test_an_error_from_twilio_gives_bad_gateway(
    app: Flask,
    desk: Desk,
    twilio_media: FakeTwilio,
    upstream_status: int,
    auth: AuthActions,
) -> None:
    twilio_media.status = upstream_status

    status, _type, _body = play(app, auth, twilio_media.base + RECORDING_PATH)

    assert status == 502
    assert len(twilio_media.requests) == 1


def test_wrong_credentials_give_bad_gateway(
    app: Flask,
    desk: Desk,
    twilio_media: FakeTwilio,
    auth: AuthActions,
) -> None:
    app.config["TWILIO_AUTH_TOKEN"] = "not-the-token"

    status, _type, _body = play(app, auth, twilio_media.base + RECORDING_PATH)

    assert status == 502


def test_a_slow_twilio_times_out_with_bad_gateway(
    app: Flask,
    desk: Desk,
    twilio_media: FakeTwilio,
    auth: AuthActions,
) -> None:
    twilio_media.hang = True
    app.config["TWILIO_MEDIA_TIMEOUT"] = 0.3

    status, _type, _body = play(app, auth, twilio_media.base + RECORDING_PATH)

    assert status == 502


def test_an_answer_that_is_not_audio_is_not_passed_on(
    app: Flask,
    desk: Desk,
    twilio_media: FakeTwilio,
    auth: AuthActions,
) -> None:
    twilio_media.content_type = "text/html"

    status, _type, body = play(app, auth, twilio_media.base + RECORDING_PATH)

    assert status == 502
    assert FAKE_MP3 not in body
