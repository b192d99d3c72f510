"""In Chromium: a form whose token no longer holds keeps what was typed and sends again.

The page's token is swapped for one the server did not issue, as after a new deployment or
a session's token gone stale: the server must refuse it (the check stays on) and still
give back what the user typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from routing.desk import Desk

from .browser import LoggedIn, navigate

LogIn = Callable[..., LoggedIn]
NOTE = "Mevrouw Jansen belt terug\nover haar insulinepomp"


def test_a_walk_in_sent_with_a_stale_token_comes_back_typed_and_sends_again(
    desk: Desk, log_in: LogIn
) -> None:
    user = log_in()
    page = user.page
    user.visit("Walk-in")
    page.locator("select[name=topic]").select_option("App activeren")
    page.locator("textarea[name=note]").fill(NOTE)
    page.evaluate(
        "document.querySelector('form.walk-in input[name=csrf_token]').value = 'stale.token'"
    )

    navigate(page, page.locator("form.walk-in button[type=submit]"))

    expect(page.get_by_role("alert")).to_have_text(
        "Your session had expired; check and send again."
    )
    expect(page.locator("form.form-again textarea[name=note]")).to_have_value(NOTE)
    expect(page.locator("header nav")).to_be_visible()  # the menu, not a bare error page

    navigate(page, page.locator("form.form-again button[type=submit]"))

    expect(page.get_by_role("alert")).to_have_text(re.compile(r"^Walk-in logged as HD-\d{6}\.$"))
    reference = page.get_by_role("alert").inner_text().removeprefix("Walk-in logged as ")
    user.visit("Contacts")
    row = page.locator("table.contacts tbody tr", has_text=reference.rstrip("."))
    expect(row).to_contain_text("App activeren")
