"""The dashboard in Chromium: what desk staff and the coordinator see and do, page by page.

The app runs over real HTTP (tests/browser.py); rows the pages show are made in the database
or by Twilio's side of a call (the `twilio` fixture), as in production.
"""

from __future__ import annotations

import base64
import csv
import os
import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from playwright.sync_api import Page, expect

from intake.core.clock import SimClock
from routing.desk import Desk
from voice.simulator import new_sid

from .browser import LiveServer, LoggedIn, navigate, submit_login
from .conftest import ANNA, AUTH_TOKEN, BRAM, DIRK, Twilio, contacts, local, new_call
from .factories import PASSWORD, add_contact, add_mail, add_user
from .twiml import dialled

LogIn = Callable[..., LoggedIn]

SCRIPT_SUBJECT = "<script>window.__pwned = true</script>"
IMG_FILENAME = '<img src=x onerror="window.__pwned = true">.pdf'


def snapshot(page: Page, name: str) -> None:
    """With INTAKE_SCREENSHOTS=DIR, keep a picture of the page as DIR/dashboard-NAME.png."""
    target = os.environ.get("INTAKE_SCREENSHOTS")
    if target:
        page.screenshot(path=str(Path(target) / f"dashboard-{name}.png"), full_page=True)


def path_of(app: Flask, endpoint: str, **values: Any) -> str:
    with app.test_request_context():
        return url_for(endpoint, **values)


def pwned(page: Page) -> str:
    """What an injected script would have set; "undefined" while nothing ran."""
    return str(page.evaluate("typeof window.__pwned"))


# --- logging in --------------------------------------------------------------------------


def test_a_wrong_password_shows_the_error_and_the_right_one_opens_now(
    app: Flask, desk: Desk, page: Page, live_server: LiveServer
) -> None:
    add_user(app, "anna@example.org")

    submit_login(page, "anna@example.org", "not the password")

    expect(page.get_by_role("alert")).to_have_text("That e-mail address and password do not match.")
    expect(page).to_have_url(f"{live_server.url}/login")

    submit_login(page, "anna@example.org", PASSWORD)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Helpdesk Digitale Zorg")
    expect(page.locator("header")).to_contain_text("anna@example.org")


def test_a_page_asked_for_before_logging_in_opens_after_it(
    app: Flask, desk: Desk, page: Page, live_server: LiveServer
) -> None:
    contact_id = add_contact(app, channel="mail")
    add_user(app, "anna@example.org")

    page.goto(f"/contacts/{contact_id}")
    expect(page).to_have_url(f"{live_server.url}/login?next=%2Fcontacts%2F{contact_id}")
    page.locator("input[name=email]").fill("anna@example.org")
    page.locator("input[name=password]").fill(PASSWORD)
    navigate(page, page.locator("form.login button[type=submit]"))

    expect(page).to_have_url(f"{live_server.url}/contacts/{contact_id}")


def test_logging_out_ends_the_session(
    desk: Desk, log_in: LogIn, page: Page, live_server: LiveServer
) -> None:
    user = log_in()

    user.log_out()
    page.goto("/")

    expect(page).to_have_url(f"{live_server.url}/login?next=%2F")


# --- Now ------------------------------------------------------------------------------------


# What Now says at moments of the example desk's week: open until when and who is on shift,
# or closed and when it opens again. One login reads them all (each would cost a browser
# session); the calendar itself is tested in tests/test_routing_hours.py.
NOW_OPEN = [
    ("2026-11-23 10:15", "Open · until 17:00", ["Anna de Vries", "Bram Jansen"]),
    ("2026-11-23 13:00", "Open · until 17:00", ["Bram Jansen", "Chantal Bakker"]),
    ("2026-11-24 09:00", "Open · until 17:00", ["Bram Jansen"]),  # Anna is off that day
    ("2026-11-27 15:59", "Open · until 16:00", ["Chantal Bakker", "Dirk Visser (vrijwilliger)"]),
]
NOW_CLOSED = [
    ("2026-11-22 14:00", "Opens again tomorrow at 8:30 am."),  # Sunday
    ("2026-11-25 12:45", "Opens again today at 1:30 pm."),  # Wednesday's lunch break
    # Closed on Christmas Eve, then two public holidays and a weekend.
    ("2026-12-24 09:00", "Opens again on Monday 28 December at 8:30 am."),
]


def stay_logged_in_across_days(app: Flask) -> None:
    """The clock jumps days here, past a session's lifetime; these tests are about Now, and
    the session's limits have their own tests (tests/test_dashboard_auth.py)."""
    app.config["SESSION_IDLE_TIMEOUT"] = app.config["SESSION_MAX_AGE"] = timedelta(days=60)


def test_now_shows_the_desk_open_and_who_is_on_shift(
    app: Flask, desk: Desk, clock: SimClock, log_in: LogIn
) -> None:
    stay_logged_in_across_days(app)
    page = log_in().page

    for moment, state, on_shift in NOW_OPEN:
        clock.moment = local(moment)
        page.reload()

        expect(page.locator(".status .state")).to_have_text(state)
        names = page.locator(".on-shift li .name").all_inner_texts()
        assert names == on_shift, moment


def test_now_shows_the_desk_closed_and_when_it_opens_again(
    app: Flask, desk: Desk, clock: SimClock, log_in: LogIn
) -> None:
    stay_logged_in_across_days(app)
    page = log_in().page

    for moment, opens in NOW_CLOSED:
        clock.moment = local(moment)
        page.reload()

        expect(page.locator(".status .state")).to_have_text("Closed")
        expect(page.locator(".next-opening")).to_have_text(opens)
        expect(page.locator(".on-shift")).to_have_count(0)


def test_now_lists_the_waiting_work_oldest_first(
    app: Flask, desk: Desk, clock: SimClock, log_in: LogIn
) -> None:
    newer = add_contact(
        app,
        started_at=local("2026-11-23 09:40"),
        outcome="voicemail",
        channel="call",
        caller="+31611111111",
    )
    older = add_contact(
        app,
        started_at=local("2026-11-23 08:05"),
        outcome="missed",
        channel="call",
        caller="+31622222222",
    )
    add_contact(app, started_at=local("2026-11-23 08:00"), outcome="answered", channel="call")
    add_contact(app, channel="mail", started_at=local("2026-11-23 07:00"), handled_at=clock())
    user = log_in()

    rows = user.page.locator(".waiting tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(f"HD-{older:06d}")
    expect(rows.nth(1)).to_contain_text(f"HD-{newer:06d}")
    snapshot(user.page, "now")


# --- patient text is text -----------------------------------------------------------------


def test_a_script_in_a_mail_subject_is_shown_as_text_and_never_runs(
    app: Flask, desk: Desk, log_in: LogIn
) -> None:
    contact_id = add_contact(app, channel="mail", subject=SCRIPT_SUBJECT, caller=SCRIPT_SUBJECT)
    user = log_in()
    page = user.page

    # Now lists the sender, the log the sender and subject, the contact's page both.
    for path, shown in [
        ("/", ".waiting tbody tr td:nth-child(4)"),
        (path_of(app, "dashboard.contacts"), "table.contacts .subject"),
        (path_of(app, "dashboard.contact", contact_id=contact_id), "h1 .subject"),
    ]:
        user.open(path)  # returns once the page, images included, has loaded

        expect(page.locator(shown)).to_have_text(SCRIPT_SUBJECT)
        assert pwned(page) == "undefined", path
        assert page.locator("main script").count() == 0, path


def test_an_attachment_name_with_html_is_shown_as_text_and_never_runs(
    app: Flask, desk: Desk, log_in: LogIn
) -> None:
    contact_id = add_contact(app, channel="mail", subject="Mijn afspraak")
    add_mail(
        app,
        contact_id,
        subject="Mijn afspraak",
        text=f"Zie de bijlage.\n{SCRIPT_SUBJECT}",
        attachments=[
            {"filename": IMG_FILENAME, "content_type": "application/pdf", "size": 2048},
        ],
    )
    user = log_in()

    page = user.open(f"/contacts/{contact_id}")

    expect(page.locator(".mail-text")).to_contain_text(SCRIPT_SUBJECT)
    expect(page.locator("table.attachments tbody td").first).to_have_text(IMG_FILENAME)
    expect(page.locator("main img")).to_have_count(0)
    assert pwned(page) == "undefined"
    snapshot(page, "contact")


# --- the menu and who sees what ---------------------------------------------------------

EVERY_PAGE = [
    "Now", "Contacts", "Walk-in", "Rota", "Demand", "Topics", "Recordings", "Accounts", "Access log"
]  # fmt: skip


def test_a_coordinator_can_open_every_page_from_the_menu(desk: Desk, log_in: LogIn) -> None:
    user = log_in(role="coordinator")
    page = user.page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    assert user.menu() == EVERY_PAGE
    for label in EVERY_PAGE:
        with page.expect_response(
            lambda response: response.request.resource_type == "document"
        ) as answer:
            user.visit(label)
        assert answer.value.status == 200, label
        current = page.locator("header nav a[aria-current=page]")
        expect(current).to_have_text(label)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        snapshot(page, label.lower())
    assert errors == []


def test_staff_see_neither_rota_nor_demand(app: Flask, desk: Desk, log_in: LogIn) -> None:
    user = log_in(role="staff")

    assert user.menu() == ["Now", "Contacts", "Walk-in"]
    for path in (
        path_of(app, "dashboard.rota"),
        path_of(app, "dashboard.rota_export"),
        path_of(app, "dashboard.demand"),
        path_of(app, "dashboard.demand_csv", table="heatmap"),
        path_of(app, "dashboard.topics"),
        path_of(app, "dashboard.users"),
        path_of(app, "dashboard.access_log"),
    ):
        response = user.page.goto(path)
        assert response is not None and response.status == 403, path


# --- Contacts -------------------------------------------------------------------------------


def listed(page: Page) -> list[str]:
    """The references in the Contacts table, top to bottom."""
    return page.locator("table.contacts tbody tr td:first-child").all_inner_texts()


def test_the_contact_log_filters_and_searches(app: Flask, desk: Desk, log_in: LogIn) -> None:
    last_week = add_contact(
        app,
        channel="call",
        caller="+31633333333",
        outcome="missed",
        started_at=local("2026-11-16 11:00"),
    )
    call = add_contact(
        app,
        channel="call",
        caller="+31611111111",
        outcome="answered",
        started_at=local("2026-11-23 08:40"),
    )
    mail = add_contact(
        app,
        channel="mail",
        organisation="Zorggroep De Linde",
        caller="jan.jansen@example.net",
        subject="Inloggen lukt niet",
        started_at=local("2026-11-23 09:10"),
    )
    add_mail(app, mail, subject="Inloggen lukt niet", from_name="Jan Jansen")
    voicemail = add_contact(
        app,
        channel="call",
        caller="+31622222222",
        outcome="voicemail",
        started_at=local("2026-11-23 09:50"),
    )
    walk_in = add_contact(
        app,
        channel="walk-in",
        caller="",
        outcome="handled",
        topic="Videoconsult",
        handled_at=local("2026-11-23 10:00"),
        started_at=local("2026-11-23 10:00"),
    )
    user = log_in()
    page = user.page
    user.visit("Contacts")
    filters = page.locator("form.filters")

    assert listed(page) == [f"HD-{n:06d}" for n in (walk_in, voicemail, mail, call, last_week)]

    filters.locator("select[name=channel]").select_option(label="Mail")
    navigate(page, filters.locator("button[type=submit]"))
    expect(page).to_have_url(re.compile(r"[?&]channel=mail"))
    assert listed(page) == [f"HD-{mail:06d}"]
    expect(page.locator("table.contacts .subject")).to_have_text("Inloggen lukt niet")

    navigate(page, page.get_by_role("link", name="Clear filters"))
    filters.locator("select[name=handled]").select_option(value="no")
    filters.locator("select[name=organisation]").select_option(label="Ziekenhuis Noord")
    navigate(page, filters.locator("button[type=submit]"))
    assert listed(page) == [f"HD-{n:06d}" for n in (voicemail, call, last_week)]
    filters.locator("input[name=from]").fill("2026-11-23")
    filters.locator("input[name=to]").fill("2026-11-23")
    navigate(page, filters.locator("button[type=submit]"))
    assert listed(page) == [f"HD-{n:06d}" for n in (voicemail, call)]

    navigate(page, page.get_by_role("link", name="Clear filters"))
    for text, found in [
        ("06-2222 2222", voicemail),  # a number as people write it
        ("Jan Jansen", mail),  # the sender's name
        ("lukt niet", mail),  # part of the subject
        (f"hd-{call:06d}", call),  # a reference, in any case
    ]:
        filters.locator("input[name=q]").fill(text)
        navigate(page, filters.locator("input[name=q]"), key="Enter")
        assert listed(page) == [f"HD-{found:06d}"], text

    filters.locator("input[name=q]").fill("nobody@example.org")
    navigate(page, filters.locator("input[name=q]"), key="Enter")
    expect(page.locator(".empty")).to_have_text("No contacts match.")


# --- a voicemail, from Twilio's call to handled --------------------------------------------

ACCOUNT_SID = "AC" + "7" * 32
# Forty frames of silent MPEG-1 Layer III (128 kbit/s, 44.1 kHz): about a second of audio
# that Chromium really decodes, so the test proves the player can play what the proxy sends.
SILENT_MP3 = (bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)) * 40


class MediaHost:
    """A local HTTP server standing in for Twilio's API host, where recordings live."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Authorization header)
        self.failing = False  # True: every recording is gone, as Twilio answers after deletion
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests.append((self.path, self.headers.get("Authorization", "")))
                if host.failing or not self.path.endswith(".mp3"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Content-Length", str(len(SILENT_MP3)))
                self.end_headers()
                self.wfile.write(SILENT_MP3)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}
        )

    def recording_url(self, recording_sid: str) -> str:
        return f"{self.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"


@pytest.fixture
def media_host(app: Flask) -> Iterator[MediaHost]:
    host = MediaHost()
    host.thread.start()
    app.config.update(TWILIO_API_BASE=host.url, TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    try:
        yield host
    finally:
        host.server.shutdown()
        host.server.server_close()
        host.thread.join(timeout=10)


def leave_voicemail(twilio: Twilio, clock: SimClock, media_host: MediaHost) -> None:
    """Twilio's side of a call nobody takes, with a message and the recording callback."""
    [dial] = twilio.call().iter("Dial")
    clock.advance(21)
    [record] = twilio.twiml(dial.attrib["action"], DialCallStatus="no-answer").iter("Record")
    clock.advance(20)
    recording_sid = new_sid("RE")
    recording = {
        "RecordingSid": recording_sid,
        "RecordingUrl": media_host.recording_url(recording_sid),
        "RecordingDuration": "1",
    }
    twilio.twiml(record.attrib["action"], **recording, Digits="hangup")
    reply = twilio.post(
        record.attrib["recordingStatusCallback"],
        twilio.params(**recording, RecordingStatus="completed"),
    )
    assert reply.status == 204
    twilio.post(
        twilio.url("voice.status"), twilio.params(CallStatus="completed", CallDuration="45")
    )


def test_the_player_says_so_when_the_recording_cannot_be_fetched(
    app: Flask,
    desk: Desk,
    clock: SimClock,
    twilio: Twilio,
    media_host: MediaHost,
    log_in: LogIn,
) -> None:
    leave_voicemail(twilio, clock, media_host)
    [contact] = contacts(app)
    media_host.failing = True
    page = log_in(language="nl").page
    navigate(page, page.locator(".waiting").get_by_role("link", name=contact.reference))
    message = page.locator(".voicemail [role=alert]")
    expect(message).to_be_hidden()

    # Pressing play: the dashboard's fetch from "Twilio" fails, and the page says so.
    page.locator(".voicemail audio").evaluate("audio => audio.play().catch(() => null)")

    expect(message).to_be_visible()
    expect(message).to_have_text(
        "De opname kon niet worden opgehaald. "
        "Probeer het later opnieuw, of luister hem in Twilio af."
    )
    assert media_host.requests


def test_a_voicemail_is_played_marked_handled_and_leaves_the_waiting_list(
    app: Flask,
    desk: Desk,
    clock: SimClock,
    twilio: Twilio,
    media_host: MediaHost,
    log_in: LogIn,
) -> None:
    leave_voicemail(twilio, clock, media_host)
    [contact] = contacts(app)
    reference = contact.reference
    user = log_in()
    page = user.page
    asked: list[str] = []  # every URL the browser asks for
    page.on("request", lambda request: asked.append(request.url))

    waiting = page.locator(".waiting tbody tr", has_text=reference)
    expect(waiting).to_contain_text(re.compile("voicemail", re.IGNORECASE))
    navigate(page, waiting.get_by_role("link", name=reference))

    expect(page.locator("h1")).to_contain_text(reference)
    expect(page.locator("a[href^='tel:']").first).to_have_attribute("href", f"tel:{twilio.caller}")
    # The player loads the voicemail through the dashboard, which fetched it from the
    # "Twilio" host with the account's credentials; the browser never talks to that host.
    duration = page.locator(".voicemail audio").evaluate(
        """audio => new Promise((resolve, reject) => {
            audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
            audio.addEventListener('error', () => reject(new Error('audio: ' + audio.error.code)));
            audio.preload = 'metadata';
            audio.load();
        })"""
    )
    assert 0.9 < duration < 1.2
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert media_host.requests
    assert {auth for _path, auth in media_host.requests} == {f"Basic {credentials}"}
    assert {path for path, _auth in media_host.requests} == {
        urlsplit(contact.recording_url or "").path + ".mp3"
    }
    assert not [url for url in asked if url.startswith(media_host.url)]

    handling = page.locator("form.handle")
    handling.locator("select[name=topic]").select_option("Videoconsult")
    handling.locator("textarea[name=note]").fill("Teruggebeld: inloggen voor het videoconsult.")
    navigate(page, handling.locator("button[type=submit]"))

    expect(page.get_by_role("alert")).to_have_text(f"{reference} is marked handled.")
    expect(page.locator("dd.handled")).to_contain_text(user.email)
    expect(page.locator("dd.topic")).to_have_text("Videoconsult")
    expect(page.locator("dd.note")).to_have_text("Teruggebeld: inloggen voor het videoconsult.")
    snapshot(page, "voicemail")

    user.visit("Now")
    expect(page.locator(".waiting tbody tr", has_text=reference)).to_have_count(0)
    expect(page.locator(".waiting")).to_contain_text("Nothing is waiting.")


# --- Walk-in --------------------------------------------------------------------------------


def test_a_walk_in_is_logged_with_one_choice_and_one_click(desk: Desk, log_in: LogIn) -> None:
    user = log_in()
    page = user.page

    user.visit("Walk-in")
    # The topic has the focus and the desk's first organisation is already chosen.
    expect(page.locator("select[name=topic]")).to_be_focused()
    expect(page.locator("select[name=organisation]")).to_have_value("Ziekenhuis Noord")
    page.locator("select[name=topic]").select_option("App activeren")
    navigate(page, page.locator("form.walk-in button[type=submit]"))

    alert = page.get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"^Walk-in logged as HD-\d{6}\.$"))
    reference = alert.inner_text().removeprefix("Walk-in logged as ").rstrip(".")
    expect(page.locator("select[name=topic]")).to_have_value("")  # ready for the next one

    user.visit("Contacts")
    row = page.locator("table.contacts tbody tr", has_text=reference)
    expect(row).to_contain_text("Walk-in")
    expect(row).to_contain_text("App activeren")
    expect(row).to_contain_text("Handled")


# --- Demand ---------------------------------------------------------------------------------

DEMAND_TABLES = ("heatmap", "outside", "per_day", "calls", "handling", "topics")


def test_the_demand_page_draws_its_pictures_and_downloads_every_table(
    app: Flask, desk: Desk, log_in: LogIn, tmp_path: Path
) -> None:
    add_contact(app, channel="call", outcome="voicemail", started_at=local("2026-11-23 09:20"))
    add_contact(app, channel="call", outcome="answered", started_at=local("2026-11-23 09:40"))
    add_contact(app, channel="mail", started_at=local("2026-11-22 20:05"))  # Sunday evening: closed
    user = log_in(role="coordinator")
    page = user.page

    user.visit("Demand")
    period = page.locator("form.period")
    period.locator("input[name=from]").fill("2026-11-16")
    period.locator("input[name=to]").fill("2026-11-23")
    navigate(page, period.locator("button[type=submit]"))

    expect(page).to_have_url(re.compile(r"from=2026-11-16&to=2026-11-23"))
    pictures = page.locator("main svg[role=img]")
    expect(pictures.first).to_be_visible()
    assert pictures.count() >= 4  # two heatmaps, per day, calls (and topics once handled)
    for picture in pictures.all():
        box = picture.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 20
    expect(page.locator("#heat-all-title")).to_have_text("Contacts per hour of the week")
    voicemails = page.locator("#table-calls tbody tr").filter(
        has=page.locator("th", has_text=re.compile(r"^voicemail$", re.IGNORECASE))
    )
    expect(voicemails.locator("td")).to_have_text(["1", "50%"])
    snapshot(page, "demand")

    links = page.locator("p.download a")
    expect(links).to_have_count(len(DEMAND_TABLES))
    for name, link in zip(DEMAND_TABLES, links.all(), strict=True):
        with page.expect_download() as started:
            link.click()
        download = started.value
        filename = f"demand-{name.replace('_', '-')}-2026-11-16-2026-11-23.csv"
        assert download.suggested_filename == filename
        target = tmp_path / filename
        download.save_as(target)
        rows = list(csv.reader(target.read_text(encoding="utf-8-sig").splitlines()))
        assert len(rows) >= 2, name  # a header and at least one row
        if name == "per_day":
            assert ["2026-11-22", "0", "1", "0", "1"] in rows
            assert ["2026-11-23", "2", "0", "0", "2"] in rows


# --- Rota -----------------------------------------------------------------------------------


def test_a_rota_change_by_the_coordinator_counts_for_the_next_call(
    desk: Desk, twilio: Twilio, log_in: LogIn
) -> None:
    assert dialled(twilio.call()) == [ANNA, BRAM]  # Monday 10:15, as the example desk has it
    user = log_in(role="coordinator")
    page = user.page
    user.visit("Rota")
    notice = page.locator("p.flash.info")

    change = page.locator("form#add-change")
    change.locator("select[name=staff]").select_option(label="Anna de Vries")
    change.locator("input[name=date]").fill("2026-11-23")
    change.locator("input[name=kind][value=off]").check()
    navigate(page, change.locator("button[type=submit]"))
    expect(notice).to_have_text("Change added. The next call follows it.")

    shift = page.locator("form#add-shift")
    shift.locator("select[name=staff]").select_option(label="Dirk Visser (vrijwilliger)")
    shift.locator("input[name=days][value=mon]").check()
    shift.locator("input[name=from]").fill("08:30")
    shift.locator("input[name=to]").fill("12:30")
    navigate(page, shift.locator("button[type=submit]"))
    expect(notice).to_have_text("Shift added. The next call follows it.")
    dirk = page.locator("#shifts table.grid tbody tr", has_text="Dirk Visser")
    expect(dirk.locator("td").first).to_have_text("08:30–12:30")  # Monday's column

    # A shift that ends before it starts is refused as `intake load-config` refuses it.
    shift.locator("select[name=staff]").select_option(label="Chantal Bakker")
    shift.locator("input[name=days][value=tue]").check()
    shift.locator("input[name=from]").fill("12:00")
    shift.locator("input[name=to]").fill("09:00")
    navigate(page, shift.locator("button[type=submit]"))
    expect(page.locator("#problems")).to_contain_text("Nothing was changed.")
    snapshot(page, "rota")

    assert dialled(new_call(twilio).call()) == [BRAM, DIRK]
    user.visit("Now")
    on_shift = page.locator(".on-shift li .name").all_inner_texts()
    assert on_shift == ["Bram Jansen", "Dirk Visser (vrijwilliger)"]
