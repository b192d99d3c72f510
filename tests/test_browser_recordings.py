"""In Chromium: a Dutch coordinator uploads the desk's own greeting from their computer,
listens to it on the page, and a caller then hears it; a file that is no recording is
refused with the reason, and the page says which file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from playwright.sync_api import expect

from routing.desk import Desk
from voice.simulator import TwilioSide, new_sid

from .audio import wav_bytes
from .browser import LiveServer, LoggedIn, navigate
from .conftest import AUTH_TOKEN, Twilio
from .twiml import tags

LogIn = Callable[..., LoggedIn]


def test_a_coordinator_uploads_a_greeting_listens_to_it_and_callers_hear_it(
    app: Flask, desk: Desk, log_in: LogIn, live_server: LiveServer, tmp_path: Path
) -> None:
    (tmp_path / "welkom.wav").write_bytes(wav_bytes(2.0))
    (tmp_path / "notities.txt").write_text("geen geluid")
    coordinator = log_in(role="coordinator", language="nl")
    page = coordinator.visit("Opnames")
    greeting = page.locator("tr#greeting-nl")
    expect(greeting).to_contain_text("Welkom bij de Helpdesk Digitale Zorg")
    expect(greeting).to_contain_text("Geen opname: de tekst wordt uitgesproken.")

    greeting.locator("input[type=file]").set_input_files(str(tmp_path / "notities.txt"))
    navigate(page, greeting.get_by_role("button", name="Uploaden"))
    expect(page.get_by_role("alert")).to_contain_text(
        "notities.txt is niet opgeslagen voor ‘Welkom, terwijl het gesprek wordt doorverbonden’:"
        " het is geen MP3- of WAV-opname."
    )

    greeting = page.locator("tr#greeting-nl")
    greeting.locator("input[type=file]").set_input_files(str(tmp_path / "welkom.wav"))
    navigate(page, greeting.get_by_role("button", name="Uploaden"))

    expect(page.get_by_role("alert")).to_contain_text("Opgeslagen: bellers horen nu je opname")
    greeting = page.locator("tr#greeting-nl")
    expect(greeting).to_contain_text("Je opname, 2 seconden: welkom.wav, geüpload door")
    # The browser can play it: the audio loads (the page's CSP allows it) and lasts 2 s.
    player = greeting.locator("audio")
    player.evaluate("audio => { audio.preload = 'auto'; audio.load(); }")
    page.wait_for_function(
        "audio => audio.readyState >= 1 && Math.round(audio.duration) === 2",
        arg=player.element_handle(),
    )

    twilio = Twilio(TwilioSide(app, AUTH_TOKEN), new_sid("CA"))
    assert tags(twilio.call()) == ["Play", "Dial"]
