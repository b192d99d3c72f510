"""In Chromium: two colleagues on the Now page see the board change without reloading it.

A new voicemail appears on both open pages; Anna presses "I'll call back" and Bram's page
names her; Bram pressing it too is asked first, and taking it over shows on Anna's page.
The board refreshes every second here (BOARD_REFRESH_SECONDS; 20 in production), and a
marker set on each page before proves it was never reloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flask import Flask
from playwright.sync_api import Browser, Locator, Page, expect

from intake.core.clock import SimClock
from routing.desk import Desk

from .browser import TIMEOUT_MS, LiveServer, LoggedIn, navigate, submit_login
from .factories import PASSWORD, add_contact, add_user

LogIn = Callable[..., LoggedIn]
BRAM = "bram@example.org"


@pytest.fixture
def second_page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A second colleague's browser: a context of its own, so its own login."""
    context = browser.new_context(base_url=live_server.url, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def mark(page: Page) -> None:
    """Set a marker that a reload would lose."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def row(page: Page, reference: str) -> Locator:
    return page.locator("section.waiting tbody tr", has_text=reference)


def csp_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return errors


def test_two_colleagues_see_new_items_and_who_calls_back_without_reloading(
    app: Flask,
    desk: Desk,
    clock: SimClock,
    log_in: LogIn,
    second_page: Page,
    live_server: LiveServer,
) -> None:
    app.config["BOARD_REFRESH_SECONDS"] = 1
    anna = log_in(email="anna@example.org").page
    add_user(app, BRAM)
    submit_login(second_page, BRAM, PASSWORD)
    bram = second_page
    expect(bram).to_have_url(f"{live_server.url}/")
    blocked = csp_errors(anna) + csp_errors(bram)
    for page in (anna, bram):
        mark(page)

    contact_id = add_contact(app, outcome="voicemail", started_at=clock() - timedelta(minutes=7))
    reference = f"HD-{contact_id:06d}"

    for page in (anna, bram):
        expect(row(page, reference)).to_contain_text("waiting 7 minutes")
        assert not_reloaded(page)

    navigate(anna, row(anna, reference).get_by_role("button", name="I'll call back"))

    expect(row(anna, reference)).to_contain_text("Anna de Vries · since 10:15")
    expect(row(anna, reference).get_by_role("button", name="Give back")).to_be_visible()
    expect(row(bram, reference)).to_contain_text("Anna de Vries · since 10:15")
    assert not_reloaded(bram)
    mark(anna)

    navigate(bram, row(bram, reference).get_by_role("button", name="I'll call back"))

    question = bram.get_by_role("alertdialog")
    expect(question).to_contain_text(
        f"Anna de Vries is already calling {reference} back (since 10:15). Take it over anyway?"
    )
    clock.advance(60)
    bram.wait_for_timeout(2500)  # two rounds of refreshing, skipped while the question is open
    expect(question).to_be_visible()
    expect(row(bram, reference)).to_contain_text("waiting 7 minutes")

    navigate(bram, question.get_by_role("button", name="Take it over"))

    expect(row(bram, reference)).to_contain_text("Bram Jansen · since 10:16")
    expect(row(anna, reference)).to_contain_text("Bram Jansen · since 10:16")
    expect(row(anna, reference)).to_contain_text("waiting 8 minutes")
    assert not_reloaded(anna)
    assert blocked == []


def test_a_board_that_cannot_be_fetched_says_since_when_it_is_not_updated(
    app: Flask, desk: Desk, clock: SimClock, log_in: LogIn
) -> None:
    app.config["BOARD_REFRESH_SECONDS"] = 1
    page = log_in().page
    stale = page.locator("section.waiting .board-stale")
    expect(page.locator("section.waiting")).to_be_visible()
    clock.advance(120)
    expect(stale).to_be_hidden()
    # The line is there, hidden, in each board fetched: at 10:17 now.
    expect(page.locator("section.waiting")).to_contain_text(
        "Not updated since 10:17", use_inner_text=False
    )

    page.route("**/now/board", lambda route: route.abort())

    expect(stale).to_be_visible()
    expect(stale).to_have_text("Not updated since 10:17")
