"""The Rota page's week in Chromium: a Dutch coordinator names a closure date, takes a
colleague off for a day, goes to next week and sees who is on, and why a day is closed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from routing.desk import Desk

from .browser import LoggedIn, navigate

LogIn = Callable[..., LoggedIn]


def snapshot(page: Page, name: str) -> None:
    """With INTAKE_SCREENSHOTS=DIR, keep a picture of the page as DIR/rota-NAME.png."""
    target = os.environ.get("INTAKE_SCREENSHOTS")
    if target:
        page.screenshot(path=str(Path(target) / f"rota-{name}.png"), full_page=True)


def test_a_coordinator_goes_to_next_week_and_sees_who_is_on_and_a_named_closure(
    desk: Desk, log_in: LogIn
) -> None:
    user = log_in(role="coordinator", language="nl")
    page = user.page
    user.visit("Rooster")
    week = page.locator("#week")
    expect(week.get_by_role("heading", level=2)).to_have_text("Wie werkt er deze week?")
    expect(week.locator("tr.today th")).to_have_text("maandag 23 november (vandaag)")

    closure = page.locator("form#add-closure")
    closure.locator("input[name=date]").fill("2026-12-02")
    closure.locator("input[name=name]").fill("de heidag")
    navigate(page, closure.locator("button[type=submit]"))
    expect(page.locator("p.flash.info")).to_contain_text("Sluitingsdag toegevoegd.")

    change = page.locator("form#add-change")
    change.locator("select[name=staff]").select_option(label="Bram Jansen")
    change.locator("input[name=date]").fill("2026-12-01")
    change.locator("input[name=kind][value=off]").check()
    navigate(page, change.locator("button[type=submit]"))

    navigate(page, week.get_by_role("link", name="Volgende week"))

    expect(week.get_by_role("heading", level=2)).to_have_text("Wie werkt er volgende week?")
    expect(week.locator("#week-title")).to_have_text("Week 49 · 30 november – 6 december 2026")
    expect(week.locator("tr.today")).to_have_count(0)
    tuesday = week.locator("#day-2026-12-01")
    expect(tuesday.locator("th")).to_have_text("dinsdag 1 december")
    expect(tuesday.locator("li").first).to_have_text("08:30–12:30 Anna de Vries")
    expect(tuesday.locator("li.absent")).to_have_text("08:30–17:00 Bram Jansen afwezig")
    expect(tuesday.locator("li.absent del")).to_have_text("08:30–17:00 Bram Jansen")
    wednesday = week.locator("#day-2026-12-02")
    expect(wednesday.locator("td").first).to_have_text("gesloten: de heidag")
    expect(wednesday.locator("li")).to_have_count(0)
    friday = week.locator("#day-2026-12-04")
    expect(friday.locator("li")).to_have_text(
        ["08:30–16:00 Dirk Visser (vrijwilliger)", "12:30–17:00 Chantal Bakker"]
    )
    snapshot(page, "next-week")

    navigate(page, week.get_by_role("link", name="Deze week"))
    expect(week.get_by_role("heading", level=2)).to_have_text("Wie werkt er deze week?")
