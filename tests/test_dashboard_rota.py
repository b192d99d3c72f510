"""The rota page: the coordinator edits shifts, changes, hours and closures in the browser,
checked exactly as `intake load-config` checks a file, and the next call follows at once."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from intake.core.db import database
from intake.core.definition import export_toml, parse_definition
from intake.core.deskstore import current_desk
from intake.core.models import DeskDefinition
from routing.desk import Desk

from .auth import COORDINATOR, AuthActions, csrf_token
from .conftest import ANNA, BRAM, DIRK, Twilio, desk_versions, new_call
from .pages import WEEKDAY_NAMES, html_table
from .twiml import dialled, tags

Form = dict[str, str | list[str]]


# --- helpers ----------------------------------------------------------------------------------


def post(client: FlaskClient, path: str, form: Form) -> TestResponse:
    """Submit one of the rota page's forms, with the page's CSRF token."""
    return client.post(path, data={**form, "csrf_token": csrf_token(client, "/rota")})


def stored_desk(app: Flask) -> Desk:
    with app.app_context(), database(app).session() as session:
        return current_desk(session)


ADD_DIRK_ON_MONDAY: Form = {"staff": "dirk", "days": ["mon"], "from": "08:30", "to": "17:00"}


# --- who may edit -----------------------------------------------------------------------------


def test_the_rota_is_for_the_coordinator_only(app: Flask, desk: Desk, auth: AuthActions) -> None:
    assert app.test_client().get("/rota").status_code == 302  # to the login page
    staff = auth.login("staff@example.org")
    token = csrf_token(staff, "/")

    assert staff.get("/rota").status_code == 403
    assert staff.get("/rota.toml").status_code == 403
    refused = staff.post("/rota/shifts", data={**ADD_DIRK_ON_MONDAY, "csrf_token": token})
    assert refused.status_code == 403
    assert stored_desk(app) == desk
    assert 'href="/rota"' not in staff.get("/").get_data(as_text=True)


def test_an_edit_without_the_form_token_is_refused(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")

    response = client.post("/rota/shifts", data=ADD_DIRK_ON_MONDAY)

    assert response.status_code == 400
    assert desk_versions(app) == 1


# --- what the page shows ----------------------------------------------------------------------


def test_the_page_shows_the_week_as_a_grid_with_changes_hours_and_closures(
    app: Flask,
    desk: Desk,
    auth: AuthActions,
) -> None:
    page = auth.login(COORDINATOR, role="coordinator").get("/rota").get_data(as_text=True)

    grid = html_table(page, "shift-grid")
    assert grid[0] == ["Colleague", *WEEKDAY_NAMES]
    assert grid[1] == ["Anna de Vries", *["08:30–12:30"] * 3, "", "", "", ""]
    assert grid[3] == ["Chantal Bakker", "12:30–17:00", "", *["12:30–17:00"] * 3, "", ""]
    assert grid[4] == ["Dirk Visser (vrijwilliger)", "", "", "", "", "08:30–16:00", "", ""]
    changes = html_table(page, "changes")
    assert changes[1][:3] == ["24-11-2026", "Anna de Vries", "absent all day"]
    assert changes[2][:3] == ["25-11-2026", "Dirk Visser (vrijwilliger)", "extra shift 13:30–17:00"]
    assert 'value="08:30-12:30, 13:30-17:00"' in page  # Wednesday's hours, with lunch
    assert 'name="country" value="NL"' in page
    assert "24-12-2026" in page and "25-12-2026: Christmas Day" in page


# --- edits that take effect -------------------------------------------------------------------


def test_a_shift_added_on_the_page_rings_that_colleague_on_the_next_call(
    app: Flask,
    desk: Desk,
    twilio: Twilio,
    auth: AuthActions,
) -> None:
    # Monday 10:15: Anna and Bram are on shift, Dirk is not.
    assert dialled(twilio.call()) == [ANNA, BRAM]
    client = auth.login(COORDINATOR, role="coordinator")

    response = post(client, "/rota/shifts", ADD_DIRK_ON_MONDAY)

    assert response.status_code == 302 and response.headers["Location"] == "/rota"
    assert dialled(new_call(twilio).call()) == [ANNA, BRAM, DIRK]
    assert "The next call follows it." in client.get("/rota").get_data(as_text=True)


def test_an_absence_added_on_the_page_takes_the_colleague_off_the_next_call(
    app: Flask,
    desk: Desk,
    twilio: Twilio,
    auth: AuthActions,
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")

    post(client, "/rota/changes", {"staff": "anna", "date": "2026-11-23", "kind": "off"})

    assert dialled(twilio.call()) == [BRAM]


def test_a_closure_date_added_for_today_closes_the_desk_for_the_next_call(
    app: Flask,
    desk: Desk,
    twilio: Twilio,
    auth: AuthActions,
) -> None:
    post(auth.login(COORDINATOR, role="coordinator"), "/rota/closures", {"date": "2026-11-23"})

    document = twilio.call()

    assert "Dial" not in tags(document)
    assert "Record" in tags(document)


def test_hours_closed_on_the_page_close_the_desk_for_the_next_call(
    app: Flask,
    desk: Desk,
    twilio: Twilio,
    auth: AuthActions,
) -> None:
    post(auth.login(COORDINATOR, role="coordinator"), "/rota/hours", {"day": "mon", "ranges": ""})

    assert "Dial" not in tags(twilio.call())
    assert stored_desk(app).hours[0] == ()


def test_removing_a_shift_takes_that_colleague_off_the_next_call(
    app: Flask,
    desk: Desk,
    twilio: Twilio,
    auth: AuthActions,
) -> None:
    anna: Form = {"staff": "anna", "days": "mon,tue,wed", "from": "08:30", "to": "12:30"}

    response = post(auth.login(COORDINATOR, role="coordinator"), "/rota/shifts/remove", anna)

    assert response.status_code == 302
    assert dialled(twilio.call()) == [BRAM]


EDITS: list[tuple[str, Form, Callable[[str], bool]]] = [
    (
        "/rota/shifts",
        ADD_DIRK_ON_MONDAY,
        lambda toml: 'staff = "dirk"\ndays = ["mon"]\nfrom = "08:30"\nto = "17:00"' in toml,
    ),
    (
        "/rota/shifts/remove",
        {"staff": "dirk", "days": "fri", "from": "08:30", "to": "16:00"},
        lambda toml: 'staff = "dirk"\ndays = ["fri"]' not in toml,
    ),
    (
        "/rota/changes",
        {"staff": "bram", "date": "2026-12-01", "kind": "off", "from": "", "to": ""},
        lambda toml: 'staff = "bram"\ndate = "2026-12-01"\noff = true\n' in toml,
    ),
    (
        "/rota/changes",
        {"staff": "bram", "date": "2026-12-02", "kind": "off", "from": "09:00", "to": "11:00"},
        lambda toml: 'date = "2026-12-02"\noff = true\nfrom = "09:00"\nto = "11:00"' in toml,
    ),
    (
        "/rota/changes",
        {"staff": "chantal", "date": "2026-12-05", "kind": "extra", "from": "10:00", "to": "14:00"},
        lambda toml: 'date = "2026-12-05"\noff = false\nfrom = "10:00"\nto = "14:00"' in toml,
    ),
    (
        "/rota/changes/remove",
        {"staff": "anna", "date": "2026-11-24", "off": "true", "from": "", "to": ""},
        lambda toml: 'date = "2026-11-24"' not in toml,
    ),
    (
        "/rota/changes/remove",
        {"staff": "dirk", "date": "2026-11-25", "off": "false", "from": "13:30", "to": "17:00"},
        lambda toml: 'date = "2026-11-25"' not in toml,
    ),
    (
        "/rota/hours",
        {"day": "sat", "ranges": "10:00-12:00; 13:00-15:00"},
        lambda toml: 'sat = ["10:00-12:00", "13:00-15:00"]' in toml,
    ),
    ("/rota/hours", {"day": "fri", "ranges": ""}, lambda toml: "\nfri = " not in toml),
    (
        "/rota/closures",
        {"date": "2027-01-02"},
        lambda toml: '  { date = "2026-12-31", name = "de teamdag" },\n  "2027-01-02",\n]' in toml,
    ),
    (
        "/rota/closures",
        {"date": "2027-01-02", "name": "  de heidag "},
        lambda toml: '  { date = "2027-01-02", name = "de heidag" },\n]' in toml,
    ),
    (
        "/rota/closures/remove",
        {"date": "2026-12-24"},
        lambda toml: 'dates = [\n  { date = "2026-12-31", name = "de teamdag" },\n]' in toml,
    ),
    (
        "/rota/closures/remove",
        {"date": "2026-12-31"},
        lambda toml: 'dates = ["2026-12-24"]' in toml,
    ),
    (
        "/rota/holidays/open",
        {"holiday": "King's Day", "label": "Koningsdag"},
        lambda toml: 'open_on_holidays = ["Good Friday", "King\'s Day"]' in toml,
    ),
    (
        "/rota/holidays/close",
        {"holiday": "Good Friday", "label": "Goede vrijdag"},
        lambda toml: "open_on_holidays" not in toml,
    ),
    # Germany has Good Friday too, which the example stays open on.
    ("/rota/holidays", {"country": "de"}, lambda toml: 'public_holidays = "DE"' in toml),
]


@pytest.mark.parametrize(("path", "form", "reflected"), EDITS)
def test_each_edit_is_stored_as_a_new_version_that_export_config_prints(
    app: Flask,
    desk: Desk,
    intake: Callable[..., tuple[int, str, str]],
    path: str,
    form: Form,
    reflected: Callable[[str], bool],
    auth: AuthActions,
) -> None:
    assert not reflected(export_toml(desk))

    response = post(auth.login(COORDINATOR, role="coordinator"), path, form)

    assert response.status_code == 302, response.get_data(as_text=True)
    assert desk_versions(app) == 2
    code, printed, _ = intake("export-config")
    assert code == 0
    assert reflected(printed), printed
    assert parse_definition(printed) == stored_desk(app)


def test_the_edit_is_recorded_with_who_made_it(app: Flask, desk: Desk, auth: AuthActions) -> None:
    post(auth.login(COORDINATOR, role="coordinator"), "/rota/shifts", ADD_DIRK_ON_MONDAY)

    with database(app).session() as session:
        newest = session.scalars(select(DeskDefinition).order_by(DeskDefinition.id.desc())).first()
    assert newest is not None
    assert newest.source == "dashboard (coordinator@example.org)"
    page = auth.client.get("/rota").get_data(as_text=True)
    assert re.search(r"Last changed [0-9-]+ [0-9:]+ by coordinator@example.org\.", page)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_rota_page_names_no_commands_or_files(
    app: Flask, desk: Desk, auth: AuthActions, language: str
) -> None:
    # The desk was loaded from a file: the page says so, not the file's path or a command
    # only whoever runs the service knows.
    page = auth.login(COORDINATOR, role="coordinator", language=language).get("/rota")
    text = page.get_data(as_text=True)

    assert "intake " not in text and "load-config" not in text
    assert ".toml" not in text.replace("/rota.toml", "")
    words = {"nl": "vanuit een instellingenbestand", "en": "from a settings file"}
    assert words[language] in text


def test_an_edit_that_changes_nothing_stores_no_new_version(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")

    response = post(client, "/rota/closures", {"date": "2026-12-24"})  # already closed

    assert response.status_code == 302
    assert desk_versions(app) == 1
    assert "nothing changed" in client.get("/rota").get_data(as_text=True)


# --- edits that are refused -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "form", "problems"),
    [
        (
            "/rota/shifts",
            {"staff": "dirk", "days": ["mon"], "from": "17:00", "to": "08:30"},
            ["shift[5].to: 08:30 is not after from = 17:00"],
        ),
        (
            "/rota/shifts",
            {"staff": "zoe", "days": ["mon"], "from": "08:30", "to": "17:00"},
            ['shift[5].staff: "zoe" is not a colleague (known: anna, bram, chantal, dirk)'],
        ),
        (
            "/rota/shifts",  # every problem at once, as load-config lists them
            {"staff": "zoe", "days": [], "from": "9", "to": "08:00"},
            [
                'shift[5].staff: "zoe" is not a colleague',
                'shift[5].days: is empty: name at least one day, like ["mon"]',
                'shift[5].from: "9" is not a time like "08:30"',
            ],
        ),
        (
            "/rota/changes",
            {"staff": "anna", "date": "2026-13-01", "kind": "extra", "from": "", "to": ""},
            [
                'change[3].date: "2026-13-01" is not a date like "2026-12-24"',
                "change[3]: nothing to change",
            ],
        ),
        (
            "/rota/hours",
            {"day": "mon", "ranges": "08:30-17:00, 16:00-18:00"},
            ["hours.mon: 16:00-18:00 overlaps 08:30-17:00"],
        ),
        (
            "/rota/hours",
            {"day": "tue", "ranges": "lunch"},
            ['hours.tue[1]: "lunch" is not a range'],
        ),
        ("/rota/hours", {"day": "moon", "ranges": ""}, ['hours.moon: "moon" is not a day']),
        ("/rota/closures", {"date": "tomorrow"}, ['closures.dates[3]: "tomorrow" is not a date']),
        ("/rota/holidays", {"country": "XX"}, ['closures.public_holidays: "XX" is not a country']),
        (
            "/rota/holidays",
            {"country": "BE"},  # the example stays open on Good Friday, no holiday in Belgium
            ['closures.open_on_holidays[1]: "Good Friday" is not a public holiday of BE'],
        ),
        (
            "/rota/holidays/open",
            {"holiday": "Goeie vrijdag"},
            ['closures.open_on_holidays[2]: "Goeie vrijdag" is not a public holiday of NL'],
        ),
        (
            "/rota/closures",
            {"date": "2026-12-31", "name": "de heidag"},
            ["closures.dates[3]: 2026-12-31 is listed twice, with different names"],
        ),
    ],
)
def test_an_edit_with_mistakes_shows_every_problem_and_changes_nothing(
    app: Flask,
    desk: Desk,
    twilio: Twilio,
    path: str,
    form: Form,
    problems: list[str],
    auth: AuthActions,
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")

    response = post(client, path, form)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'role="alert"' in page and "Nothing was changed." in page
    shown = [" ".join(item.split()) for item in _problem_items(page)]
    for problem in problems:
        assert any(item.startswith(problem) for item in shown), (problem, shown)
    assert desk_versions(app) == 1
    assert stored_desk(app) == desk
    assert dialled(twilio.call()) == [ANNA, BRAM]


def test_a_refused_form_keeps_what_was_typed(app: Flask, desk: Desk, auth: AuthActions) -> None:
    form: Form = {"staff": "dirk", "days": ["mon", "tue"], "from": "17:00", "to": "08:30"}

    page = post(auth.login(COORDINATOR, role="coordinator"), "/rota/shifts", form).get_data(
        as_text=True
    )

    assert 'name="from" value="17:00"' in page
    assert 'value="mon" checked' in page and 'value="tue" checked' in page
    assert '<option value="dirk" selected>' in page


def test_removing_what_is_no_longer_there_changes_nothing(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    gone: Form = {"staff": "anna", "days": "sat", "from": "08:30", "to": "12:30"}

    response = post(auth.login(COORDINATOR, role="coordinator"), "/rota/shifts/remove", gone)

    assert response.status_code == 409
    assert "no longer in the rota" in response.get_data(as_text=True)
    assert desk_versions(app) == 1


def test_the_definition_downloads_as_toml(app: Flask, desk: Desk, auth: AuthActions) -> None:
    response = auth.login(COORDINATOR, role="coordinator").get("/rota.toml")

    assert response.status_code == 200
    assert parse_definition(response.get_data(as_text=True)) == desk


def _problem_items(page: str) -> list[str]:
    """The problems listed on a refused edit's page, as text."""
    section = page.split('id="problems"', 1)[1].split("</section>", 1)[0]
    items = re.findall(r"<li>(.*?)</li>", section, re.DOTALL)
    return [html.unescape(re.sub(r"<[^>]+>", "", item)) for item in items]
