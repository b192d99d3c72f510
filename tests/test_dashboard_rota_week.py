"""The rota page's dated week: who is on next week, with absences, extra shifts, named
closures and holidays kept open applied; moving from week to week; and marking a public
holiday open on the page."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.deskstore import current_desk
from routing.desk import Change, Desk

from .auth import COORDINATOR, AuthActions, csrf_token
from .conftest import Twilio, desk_versions, load_desk, local, new_call
from .factories import span
from .pages import html_table
from .twiml import said, tags

# The clock starts on Monday 23 November 2026 (week 48); next week is week 49.
NEXT_WEEK = "2026-W49"


def week_rows(page: str) -> list[list[str]]:
    """The week table's rows (the header first), each cell's text with its spaces joined."""
    return [[" ".join(cell.split()) for cell in row] for row in html_table(page, "week")]


def week_page(client: FlaskClient, week: str | None = None) -> TestResponse:
    return client.get("/rota", query_string={"week": week} if week is not None else {})


def coordinator(auth: AuthActions, language: str = "en") -> FlaskClient:
    return auth.login(COORDINATOR, role="coordinator", language=language)


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def section(page: str, section_id: str) -> str:
    return page.split(f'id="{section_id}"', 1)[1].split("</section>", 1)[0]


def test_next_week_shows_its_dates_hours_and_who_is_on(
    app: Flask, example_desk: Desk, auth: AuthActions
) -> None:
    load_desk(
        app,
        dataclasses.replace(
            example_desk,
            changes=(
                Change("bram", date(2026, 12, 1), off=True),
                Change("dirk", date(2026, 12, 2), off=False, hours=span("13:30-17:00")),
            ),
        ),
    )
    response = week_page(coordinator(auth), NEXT_WEEK)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Who is on next week?" in page
    assert "Week 49 · 30 November – 6 December 2026" in text_of(page)
    rows = week_rows(page)
    assert rows[0] == ["Date", "Open", "On shift"]
    assert [row[0] for row in rows[1:]] == [
        "Monday 30 November",
        "Tuesday 1 December",
        "Wednesday 2 December",
        "Thursday 3 December",
        "Friday 4 December",
        "Saturday 5 December",
        "Sunday 6 December",
    ]
    assert rows[1][1:] == [
        "08:30–17:00",
        "08:30–12:30 Anna de Vries 08:30–17:00 Bram Jansen 12:30–17:00 Chantal Bakker",
    ]
    # Bram is away on Tuesday: his shift struck out, "absent".
    assert rows[2][2] == "08:30–12:30 Anna de Vries 08:30–17:00 Bram Jansen absent"
    assert "<del>08:30–17:00 Bram Jansen</del> absent" in page
    assert rows[3][1:] == [
        "08:30–12:30, 13:30–17:00",
        "08:30–12:30 Anna de Vries 08:30–17:00 Bram Jansen 12:30–17:00 Chantal Bakker"
        " 13:30–17:00 Dirk Visser (vrijwilliger) (extra shift)",
    ]
    assert rows[6][1:] == ["closed", ""]  # Saturday
    assert 'class="today"' not in section(page, "week")  # today is in week 48


def test_this_week_is_shown_first_with_today_highlighted(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    page = week_page(coordinator(auth)).get_data(as_text=True)

    assert page.index('id="week"') < page.index('id="shifts"')  # first, above the grid
    assert "Who is on this week?" in page
    assert "Week 48 · 23 – 29 November 2026" in text_of(page)
    today = re.search(r'<tr id="day-2026-11-23"([^>]*)>', page)
    assert today is not None and 'class="today"' in today.group(1)
    assert 'aria-current="date"' in today.group(1)
    rows = week_rows(page)
    assert rows[1][0] == "Monday 23 November (today)"
    # The example's one-off changes of this week: Anna away on Tuesday, Dirk extra on Wednesday.
    assert rows[2][2] == ("08:30–17:00 Bram Jansen 08:30–12:30 Anna de Vries absent")
    assert rows[3][2].endswith("13:30–17:00 Dirk Visser (vrijwilliger) (extra shift)")


def test_a_named_closure_and_a_holiday_kept_open_show_in_their_week(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = coordinator(auth, language="nl")

    christmas = week_rows(week_page(client, "2026-W53").get_data(as_text=True))
    easter = week_rows(week_page(client, "2026-W14").get_data(as_text=True))

    assert christmas[0] == ["Datum", "Open", "Ingeroosterd"]
    assert christmas[1][:2] == ["maandag 28 december", "08:30–17:00"]
    assert christmas[4][:3] == ["donderdag 31 december", "gesloten: de teamdag", ""]
    assert christmas[5][:2] == ["vrijdag 1 januari", "gesloten: Nieuwjaarsdag"]
    assert easter[5][:2] == ["vrijdag 3 april", "08:30–16:00 · open op Goede vrijdag"]
    assert "Dirk Visser (vrijwilliger)" in easter[5][2]
    assert easter[7][:2] == ["zondag 5 april", "gesloten: Eerste paasdag"]


@pytest.mark.parametrize(
    ("language", "week", "heading", "title"),
    [
        ("en", "2026-W47", "Who was on last week?", "Week 47 · 16 – 22 November 2026"),
        ("en", "2026-w50", "Who is on in week 50?", "Week 50 · 7 – 13 December 2026"),
        ("en", "2026-W53", "Who is on in week 53?", "Week 53 · 28 December 2026 – 3 January 2027"),
        (
            "nl",
            "2026-W49",
            "Wie werkt er volgende week?",
            "Week 49 · 30 november – 6 december 2026",
        ),
        ("nl", "2026-W40", "Wie werkte er in week 40?", "Week 40 · 28 september – 4 oktober 2026"),
    ],
)
def test_each_week_is_headed_by_its_number_and_dates(
    app: Flask,
    desk: Desk,
    auth: AuthActions,
    language: str,
    week: str,
    heading: str,
    title: str,
) -> None:
    page = week_page(coordinator(auth, language=language), week).get_data(as_text=True)

    assert f'<h2 id="week-heading">{html.escape(heading)}</h2>' in page
    assert title in text_of(section(page, "week"))


def test_the_week_links_lead_to_the_weeks_before_and_after(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = coordinator(auth)
    page = week_page(client, NEXT_WEEK).get_data(as_text=True)

    links = dict(re.findall(r'<a href="([^"]+)"[^>]*id="week-(\w+)"', page))
    by_name = {name: href for href, name in links.items()}
    assert by_name == {
        "previous": "/rota?week=2026-W48",
        "this": "/rota",
        "next": "/rota?week=2026-W50",
    }
    after = client.get(by_name["next"]).get_data(as_text=True)
    assert week_rows(after)[1][0] == "Monday 7 December"
    this_week = week_page(client).get_data(as_text=True)
    assert 'id="week-this"' not in this_week  # no link to where you are


@pytest.mark.parametrize("week", ["2026-W60", "2026-W00", "2025-W53", "volgende week", "2026-49"])
def test_a_bad_week_says_so_and_shows_this_week(
    app: Flask, desk: Desk, auth: AuthActions, week: str
) -> None:
    response = week_page(coordinator(auth), week)

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    problem = re.search(r'id="week-problem">(.*?)</p>', page)
    assert problem is not None
    assert text_of(problem.group(1)) == (
        f"“{week}” is not a week like 2026-W48; this week is shown instead."
    )
    assert week_rows(page)[1][0] == "Monday 23 November (today)"


def test_a_bad_week_is_said_in_dutch_to_a_dutch_coordinator(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    page = week_page(coordinator(auth, language="nl"), "week 49").get_data(as_text=True)

    assert "„week 49” is geen week zoals 2026-W48; je ziet nu deze week." in html.unescape(page)
    assert "Wie werkt er deze week?" in page


# --- named closures and holidays kept open, edited on the page -----------------------------


def post(client: FlaskClient, path: str, form: dict[str, str]) -> TestResponse:
    return client.post(path, data={**form, "csrf_token": csrf_token(client, "/rota")})


def stored_desk(app: Flask) -> Desk:
    with app.app_context(), database(app).session() as session:
        return current_desk(session)


def test_a_closure_date_added_with_a_name_is_heard_by_callers_and_shown_in_its_week(
    app: Flask, desk: Desk, auth: AuthActions, twilio: Twilio, clock: SimClock
) -> None:
    client = coordinator(auth)

    response = post(client, "/rota/closures", {"date": "2026-12-02", "name": "de heidag"})

    assert response.status_code == 302
    assert stored_desk(app).closure_dates[date(2026, 12, 2)] == "de heidag"
    page = week_page(client, NEXT_WEEK).get_data(as_text=True)
    assert week_rows(page)[3][1:] == ["closed: de heidag", ""]
    assert "02-12-2026: de heidag" in text_of(section(page, "closures"))
    clock.moment = local("2026-12-02 10:00")
    document = twilio.call()
    assert "Record" in tags(document)
    assert "Vanwege de heidag is de helpdesk vandaag gesloten." in said(document)


def test_a_refused_closure_keeps_its_name_in_the_form(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    response = post(coordinator(auth), "/rota/closures", {"date": "2-12", "name": "de heidag"})

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'name="name" value="de heidag"' in page
    assert desk_versions(app) == 1


def test_marking_kings_day_open_opens_the_desk_and_undoing_closes_it(
    app: Flask, example_desk: Desk, auth: AuthActions, twilio: Twilio, clock: SimClock
) -> None:
    load_desk(app, dataclasses.replace(example_desk, open_on_holidays=frozenset()))
    client = coordinator(auth, language="nl")
    page = client.get("/rota").get_data(as_text=True)
    coming = section(page, "closures")
    assert "27-04-2027: Koningsdag" in text_of(coming)
    assert 'aria-label="Elk jaar open op Koningsdag"' in coming
    # Easter Sunday falls on a Sunday, when the desk is shut anyway: nothing to offer.
    assert "28-03-2027: Eerste paasdag" in text_of(coming)
    assert 'aria-label="Elk jaar open op Eerste paasdag"' not in coming

    opened = post(client, "/rota/holidays/open", {"holiday": "King's Day", "label": "Koningsdag"})

    assert opened.status_code == 302
    assert stored_desk(app).open_on_holidays == {"King's Day"}
    after = client.get("/rota").get_data(as_text=True)
    assert "De helpdesk is voortaan elk jaar open op Koningsdag." in html.unescape(after)
    kept_open = re.search(r'<ul id="open-holidays">(.*?)</ul>', after, re.DOTALL)
    assert kept_open is not None
    assert text_of(kept_open.group(1)).startswith("27-04-2027: open op Koningsdag Weer dicht")
    easter_week = week_rows(week_page(client, "2027-W17").get_data(as_text=True))
    assert easter_week[2][:2] == ["dinsdag 27 april", "08:30–17:00 · open op Koningsdag"]
    clock.moment = local("2027-04-27 10:00")
    assert tags(twilio.call()) == ["Say", "Dial"]
    clock.moment = local("2026-11-23 10:30")  # back, before the login's session runs out

    closed = post(client, "/rota/holidays/close", {"holiday": "King's Day", "label": "Koningsdag"})

    assert closed.status_code == 302
    assert stored_desk(app).open_on_holidays == frozenset()
    assert desk_versions(app) == 3
    clock.moment = local("2027-04-27 10:00")
    assert "Vanwege Koningsdag is de helpdesk vandaag gesloten." in said(new_call(twilio).call())


def test_undoing_a_holiday_that_is_not_kept_open_changes_nothing(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    response = post(coordinator(auth), "/rota/holidays/close", {"holiday": "King's Day"})

    assert response.status_code == 409
    assert "no longer stays open on that holiday" in response.get_data(as_text=True)
    assert desk_versions(app) == 1
