"""In Chromium: a colleague scans the QR code into an authenticator app, keeps the recovery
codes, and from then on logs in with the password and the app's code.

The phone is played by `pyotp` with the key the page shows under "Cannot scan?", at the
injected clock's time."""

from __future__ import annotations

from collections.abc import Callable

import pyotp
from playwright.sync_api import expect

from intake.core.clock import SimClock
from routing.desk import Desk

from .browser import LoggedIn, navigate, submit_login
from .factories import PASSWORD

LogIn = Callable[..., LoggedIn]


def test_a_colleague_sets_up_an_app_and_logs_in_with_its_code(
    desk: Desk, log_in: LogIn, clock: SimClock
) -> None:
    user = log_in(language="nl")
    page = user.page
    navigate(page, page.locator("header a.account"))
    navigate(page, page.get_by_role("link", name="Authenticator-app instellen"))
    expect(page.locator(".qr svg")).to_be_visible()
    page.get_by_text("Lukt scannen niet?").click()
    key = page.locator("code.secret").inner_text().replace(" ", "")
    page.locator("input[name=code]").fill(pyotp.TOTP(key).at(clock()))
    navigate(page, page.get_by_role("button", name="Bevestigen"))

    expect(page.get_by_role("heading", level=1)).to_have_text("Herstelcodes")
    expect(page.locator("ul.recovery-codes li")).to_have_count(10)
    navigate(page, page.get_by_role("link", name="Ik heb ze bewaard; verder"))
    expect(page.locator(".account-factor")).to_contain_text("Nog 10 herstelcodes over.")
    user.log_out()

    clock.advance(60)
    submit_login(page, user.email, PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Inloggen")
    expect(page.locator("input[name=code]")).to_have_attribute("autocomplete", "one-time-code")
    page.locator("input[name=code]").fill(pyotp.TOTP(key).at(clock()))
    navigate(page, page.get_by_role("button", name="Inloggen"))

    expect(page.locator("header nav")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(desk.name)
