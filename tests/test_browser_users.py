"""In Chromium: a coordinator adds a colleague; the colleague follows the link in the mail
the SMTP server received, chooses a password and logs in with it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask
from playwright.sync_api import Browser, expect

from intake.shell.jobs import flush_outbox
from routing.desk import Desk

from .browser import TIMEOUT_MS, LiveServer, LoggedIn, navigate, submit_login

if TYPE_CHECKING:
    from tests.mailservers import SmtpSink

LogIn = Callable[..., LoggedIn]
NEWCOMER = "fatima@example.org"
CHOSEN = "tulpen in de lente"


def test_a_colleague_added_by_the_coordinator_sets_a_password_from_the_mail_and_logs_in(
    app: Flask,
    desk: Desk,
    log_in: LogIn,
    live_server: LiveServer,
    browser: Browser,
    smtp: SmtpSink,
) -> None:
    # The link in the mail is built on the public URL: here, the server the browser reaches.
    app.config.update(
        PUBLIC_URL=live_server.url, SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_STARTTLS=False
    )
    coordinator = log_in(role="coordinator", language="nl")
    page = coordinator.visit("Accounts")
    form = page.locator("form.add-user")
    form.locator("input[name=email]").fill(NEWCOMER)
    form.locator("select[name=role]").select_option(label="Medewerker")
    form.locator("select[name=language]").select_option(label="Nederlands")
    navigate(page, form.get_by_role("button", name="Toevoegen en link sturen"))

    expect(page.get_by_role("alert")).to_contain_text(f"{NEWCOMER} is toegevoegd.")
    row = page.locator(f'table.users tr[data-email="{NEWCOMER}"]')
    expect(row.locator("td.last-login")).to_have_text("nooit")
    expect(row.locator("td.state")).to_have_text("actief")

    flush_outbox(app)
    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == (NEWCOMER,)
    links = re.findall(r"http://\S+/password/[A-Za-z0-9_-]+", mail.message.get_content())
    assert len(links) == 1 and links[0].startswith(live_server.url)

    # The colleague, in a browser of their own.
    context = browser.new_context(base_url=live_server.url, locale="nl-NL")
    context.set_default_timeout(TIMEOUT_MS)
    try:
        theirs = context.new_page()
        theirs.goto(links[0])
        expect(theirs.get_by_role("heading", level=1)).to_have_text("Kies een wachtwoord")
        theirs.locator("input[name=password]").fill(CHOSEN)
        theirs.locator("input[name=password_again]").fill(CHOSEN)
        navigate(theirs, theirs.get_by_role("button", name="Wachtwoord instellen"))

        expect(theirs.get_by_role("alert")).to_have_text(
            "Je wachtwoord is ingesteld. Log ermee in."
        )
        assert theirs.url == f"{live_server.url}/login"
        submit_login(theirs, NEWCOMER, CHOSEN)
        theirs.wait_for_url(f"{live_server.url}/")
        expect(theirs.locator("header a.account")).to_have_text(NEWCOMER)

        theirs.goto(links[0])  # once only
        expect(theirs.get_by_role("alert")).to_contain_text("Deze link werkt niet meer")
    finally:
        context.close()

    coordinator.visit("Toegangslog")
    events = page.locator("table.access-events tbody tr")
    expect(events.nth(0)).to_contain_text("wachtwoord ingesteld via een gemailde link")
    expect(events.nth(2)).to_contain_text("toegevoegd als Medewerker (Nederlands)")
    expect(page.locator('table.access-events tr[data-action="user_added"]')).to_contain_text(
        coordinator.email
    )
