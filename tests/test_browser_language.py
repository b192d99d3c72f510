"""Dutch first, English second: each user sees the dashboard in their own language.

Also holds the catalog's own checks: every string the pages can show has a Dutch
translation (so a new English-only string fails the suite the day it is added), and every
translation keeps the placeholders of its English.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, expect

from intake.core.clock import SimClock
from routing.desk import Desk

from .browser import LiveServer, LoggedIn
from .conftest import ROOT, local

LogIn = Callable[..., LoggedIn]
CATALOG = ROOT / "intake" / "shell" / "translations" / "nl" / "LC_MESSAGES" / "messages.po"


@pytest.mark.parametrize(
    ("language", "log_out", "now", "state", "on_shift"),
    [
        pytest.param("nl", "Uitloggen", "Nu", "Open · tot 17:00", "Ingeroosterd", id="Dutch"),
        pytest.param("en", "Log out", "Now", "Open · until 17:00", "On shift", id="English"),
    ],
)
def test_a_user_sees_the_dashboard_in_their_language(
    desk: Desk,
    log_in: LogIn,
    language: str,
    log_out: str,
    now: str,
    state: str,
    on_shift: str,
) -> None:
    user = log_in(language=language)
    page = user.page

    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("form.logout button")).to_have_text(log_out)
    assert user.menu()[0] == now
    expect(page.locator(".status .state")).to_have_text(state)
    expect(page.locator(".status h2")).to_have_text(on_shift)


def test_a_dutch_coordinator_finds_every_page_in_dutch(desk: Desk, log_in: LogIn) -> None:
    user = log_in(role="coordinator", language="nl")
    page = user.page

    assert user.menu() == [
        "Nu", "Contacten", "Inloop", "Rooster", "Drukte", "Thema's", "Opnames", "Accounts",
        "Toegangslog",
    ]  # fmt: skip
    for label, heading in [
        ("Contacten", "Contacten"),
        ("Inloop", "Inloopbezoek vastleggen"),
        ("Rooster", "Rooster"),
        ("Drukte", "Drukte"),
        ("Thema's", "Thema's"),
        ("Opnames", "Opnames"),
        ("Accounts", "Accounts"),
        ("Toegangslog", "Toegangslog"),
    ]:
        user.visit(label)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)


def test_when_the_desk_opens_again_is_said_in_the_users_language(
    desk: Desk, clock: SimClock, log_in: LogIn
) -> None:
    clock.moment = local("2026-11-22 14:00")  # a Sunday
    user = log_in(language="nl")

    expect(user.page.locator(".status .state")).to_have_text("Gesloten")
    expect(user.page.locator(".next-opening")).to_have_text("Weer open morgen om 8.30 uur.")


@pytest.mark.parametrize(
    ("locale", "heading", "button"),
    [("nl-NL", "Inloggen", "Inloggen"), ("en-GB", "Log in", "Log in")],
)
def test_the_login_page_follows_the_browsers_language(
    browser: Browser, live_server: LiveServer, locale: str, heading: str, button: str
) -> None:
    context = browser.new_context(base_url=live_server.url, locale=locale)
    try:
        page = context.new_page()
        page.goto("/login")

        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.locator("form.login button")).to_have_text(button)
    finally:
        context.close()


def test_every_string_on_the_pages_has_a_dutch_translation() -> None:
    """The same extraction as `pybabel extract -F babel.cfg -k _l`, against the catalog."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    found = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }
    with CATALOG.open("rb") as po:
        catalog = read_po(po, locale="nl")
    translated = {
        message.id if isinstance(message.id, str) else message.id[0]
        for message in catalog
        if message.id and all(forms(message.string)) and "fuzzy" not in message.flags
    }

    assert sorted(found - translated) == []


def test_every_dutch_translation_keeps_the_placeholders_of_its_english() -> None:
    with CATALOG.open("rb") as po:
        catalog = read_po(po, locale="nl")

    assert [(message.id, errors) for message, errors in catalog.check()] == []


def forms(string: str | tuple[str, ...]) -> tuple[str, ...]:
    """A translation's text, or each of its plural forms."""
    return (string,) if isinstance(string, str) else string
