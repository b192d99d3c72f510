"""The dashboard read as a person reads it: phone numbers as people dial them, withheld
callers named so, and a timeline of sentences instead of Twilio's words."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask

from intake.core.db import database
from intake.core.models import ContactEvent
from routing.desk import Desk

from .auth import AuthActions
from .conftest import ANNA, local
from .factories import add_contact


def cell(html: str, css_class: str) -> list[str]:
    """The text of every <td class="..."> of the page."""
    return [c.strip() for c in re.findall(rf'<td class="{css_class}"[^>]*>([^<]*)</td>', html)]


def test_a_dutch_number_shows_as_dialled_with_an_e164_call_back_link(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(app, outcome="voicemail", caller="+31612345678")
    client = auth.login()

    page = client.get(f"/contacts/{contact_id}").get_data(as_text=True)
    log = client.get("/contacts").get_data(as_text=True)
    now = client.get("/").get_data(as_text=True)

    assert '<a href="tel:+31612345678">06 12345678</a>' in page
    assert "+31612345678<" not in page
    assert cell(log, "caller") == ["06 12345678"]
    assert cell(now, "caller") == ["06 12345678"]
    # Anna is on shift: her phone as a colleague dials it, the link in E.164.
    assert f'<a href="tel:{ANNA}">06 12345678</a>' in now


def test_a_foreign_number_shows_in_international_form(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    # A Belgian number in Belgian national form (0470 ...) would be dialled wrongly here.
    contact_id = add_contact(app, outcome="missed", caller="+32470123456")
    client = auth.login()

    page = client.get(f"/contacts/{contact_id}").get_data(as_text=True)

    assert '<a href="tel:+32470123456">+32 470 12 34 56</a>' in page
    assert cell(client.get("/contacts").get_data(as_text=True), "caller") == ["+32 470 12 34 56"]


@pytest.mark.parametrize("stored", ["anonymous", "+266696687"])
@pytest.mark.parametrize(("language", "shown"), [("nl", "anoniem"), ("en", "withheld")])
def test_a_withheld_caller_is_named_so_and_offers_no_call_back(
    app: Flask, desk: Desk, auth: AuthActions, stored: str, language: str, shown: str
) -> None:
    contact_id = add_contact(app, outcome="voicemail", caller=stored)
    client = auth.login(language=language)

    page = client.get(f"/contacts/{contact_id}").get_data(as_text=True)

    assert re.search(rf'<dd class="caller">\s*{shown}\s*</dd>', page)
    assert "tel:" not in page and stored not in page
    assert cell(client.get("/contacts").get_data(as_text=True), "caller") == [shown]
    assert cell(client.get("/").get_data(as_text=True), "caller") == [shown]


@pytest.mark.parametrize(("language", "shown"), [("nl", "onbekend"), ("en", "unknown")])
def test_a_call_without_a_caller_says_the_number_is_unknown(
    app: Flask, desk: Desk, auth: AuthActions, language: str, shown: str
) -> None:
    add_contact(app, outcome="missed", caller="unknown")
    client = auth.login(language=language)

    assert cell(client.get("/contacts").get_data(as_text=True), "caller") == [shown]


def add_events(app: Flask, contact_id: int, *events: tuple[str, int, dict[str, object]]) -> None:
    """Events of the contact, each (kind, seconds after 10:00, detail)."""
    start = local("2026-11-23 10:00")
    with database(app).session() as session:
        session.add_all(
            ContactEvent(
                contact_id=contact_id,
                at=start + timedelta(seconds=after),
                kind=kind,
                detail=detail,
            )
            for kind, after, detail in events
        )
        session.commit()


def timeline(html: str) -> list[str]:
    section = html.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", item)).strip()
        for item in re.findall(r"<li>(.*?)</li>", section, re.S)
    ]


def test_the_timeline_of_an_answered_call_reads_as_dutch_sentences(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(
        app, outcome="answered", answered_by="bram", started_at=local("2026-11-23 10:00")
    )
    add_events(
        app,
        contact_id,
        ("incoming", 0, {"action": "dial", "reason": "open", "ringing": ["anna", "bram"]}),
        ("picked-up", 9, {"staff": "bram"}),
        ("accepted", 12, {"staff": "bram"}),
        ("dial-ended", 200, {"status": "completed", "seconds": 188, "fallback": False}),
        ("status", 201, {"status": "completed", "seconds": 201}),
    )

    page = auth.login(language="nl").get(f"/contacts/{contact_id}").get_data(as_text=True)

    assert [entry.split(" ", 2)[2] for entry in timeline(page)] == [
        "Oproep binnengekomen; gaat over bij Anna de Vries, Bram Jansen",
        "De telefoon van Bram Jansen nam op",
        "Bram Jansen nam op na 12 s",
        "Gesprek beëindigd na 188 s",
        "Oproep afgelopen na 201 s",
    ]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "nl",
            [
                "Niemand nam op",
                "Voicemail van 25 s",
                "anna@example.org handelde het af — thema: Videoconsult",
            ],
        ),
        (
            "en",
            [
                "Nobody answered",
                "Voicemail of 25 s",
                "anna@example.org marked it handled — topic: Videoconsult",
            ],
        ),
    ],
)
def test_the_timeline_of_a_voicemail_says_nobody_answered_and_how_long_it_is(
    app: Flask, desk: Desk, auth: AuthActions, language: str, expected: list[str]
) -> None:
    contact_id = add_contact(app, outcome="voicemail", started_at=local("2026-11-23 10:00"))
    sid = "REacb44f0e2f1c4b8e9d7a6c5b4a3f2e1d"
    add_events(
        app,
        contact_id,
        ("dial-ended", 30, {"status": "no-answer", "seconds": 0, "fallback": False}),
        ("recording", 60, {"status": "completed", "seconds": 25, "recording_sid": sid}),
        ("handled", 900, {"by": "anna@example.org", "topic": "Videoconsult"}),
    )

    page = auth.login(language=language).get(f"/contacts/{contact_id}").get_data(as_text=True)

    assert [entry.split(" ", 2)[2] for entry in timeline(page)] == expected
    assert "REacb44" not in page and "no-answer" not in page and "status:" not in page


@pytest.mark.parametrize(
    ("language", "seconds", "recorded", "call", "voicemail"),
    [
        ("nl", 754, 25, "12 minuten en 34 seconden", "25 seconden"),
        ("en", 754, 25, "12 minutes and 34 seconds", "25 seconds"),
        ("nl", 3790, 61, "1 uur en 3 minuten", "1 minuut en 1 seconde"),
        ("en", 45, 60, "45 seconds", "1 minute"),
    ],
)
def test_how_long_a_call_and_its_voicemail_lasted_is_said_in_words(
    app: Flask,
    desk: Desk,
    auth: AuthActions,
    language: str,
    seconds: int,
    recorded: int,
    call: str,
    voicemail: str,
) -> None:
    contact_id = add_contact(
        app,
        outcome="voicemail",
        started_at=local("2026-11-23 10:00"),
        ended_at=local("2026-11-23 10:00") + timedelta(seconds=seconds),
        duration_seconds=seconds,
        recording_seconds=recorded,
        recording_url="https://api.twilio.com/2010-04-01/Accounts/AC"
        + "1" * 32
        + "/Recordings/RE"
        + "a" * 32,
    )

    page = auth.login(language=language).get(f"/contacts/{contact_id}").get_data(as_text=True)

    assert f" · {call}</dd>" in page
    assert f"({voicemail})</h2>" in page
    assert "754 sec" not in page and "3790 sec" not in page


def test_the_dutch_menu_and_demand_page_use_the_words_a_coordinator_uses(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = auth.login("coordinator@example.org", role="coordinator", language="nl")

    menu = client.get("/").get_data(as_text=True).split("</nav>")[0]
    demand = client.get("/demand").get_data(as_text=True)

    assert ">Drukte</a>" in menu and ">Vraag</a>" not in menu
    assert "Oproepen per uitkomst" in demand and "afloop" not in demand.lower()
