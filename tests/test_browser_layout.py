"""Every dashboard page on a phone (390x844) and on a laptop (1366x768), in Chromium.

Staff read and handle contacts on their own phones, so each page has to work at 390 CSS px
wide, by touch: nothing wider than the screen, a menu that stays inside the header, tables
read as labelled rows, and controls large enough to tap (44x44 CSS px, as WCAG 2.5.5 and
Apple's guidelines ask). On a laptop the same pages keep their tables as tables.

The pages carry what makes a layout break in practice: a mail subject, a sender's address
and a file name without a space in them, a voicemail with its player, a walk-in, the
example desk's rota and the topics. A coordinator, in Dutch (the longer words), visits
every page of the menu, the account's pages, two contacts, a page that does not exist, a
form sent again after its session ended and, logged out, the login page; the second
factor's pages and the page before any desk is loaded have tests of their own. The
scripts that measure a page in Chromium are in tests/layout_probes.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page

from intake.core.clock import SimClock
from routing.desk import Desk

from .browser import LoggedIn, navigate, submit_login
from .conftest import local
from .factories import PASSWORD, add_contact, add_mail, add_user
from .layout_probes import CONTRAST, MENU, OVERFLOW, TABLES, TARGETS, measure

LogIn = Callable[..., LoggedIn]

PHONE = (390, 844)
LAPTOP = (1366, 768)
TAP = 44  # CSS px, the smallest comfortable target for a finger

# Text without a place to break, as patients and mail clients write it.
LONG_SUBJECT = (
    "Re:Fwd:Foutmelding_bij_het_activeren_van_de_app_MijnZiekenhuisNoord_"
    "code_E-4711-ACTIVATIE-MISLUKT-opnieuw-proberen-werkt-ook-niet"
)
LONG_ADDRESS = (
    "wilhelmina.van.der.heijden-blankenstein.1947@zorggroep-de-linde-en-omstreken.example.nl"
)
LONG_URL = (
    "https://mijn.ziekenhuisnoord.example.nl/portaal/inloggen?sessie=8f3c2a9d4e7b1f6a0c5d"
    "&terug=%2Fafspraken%2Fvideoconsult%2F2026-11-23%2Fbevestigen"
)
LONG_FILENAME = "Schermafbeelding_2026-11-23_om_09.12.44_foutmelding_DigiD_koppeling.png"
# Where Twilio keeps a recording: the contact's page offers a player for it (not fetched
# until someone presses play).
TWILIO_RECORDINGS = f"https://api.twilio.com/2010-04-01/Accounts/AC{'7' * 32}/Recordings"


@pytest.fixture(params=[PHONE, LAPTOP], ids=["phone", "laptop"])
def viewport(request: pytest.FixtureRequest, page: Page) -> tuple[int, int]:
    width, height = request.param
    page.set_viewport_size({"width": width, "height": height})
    return (width, height)


def fill_the_log(app: Flask) -> dict[str, int]:
    """The contacts a busy Monday morning leaves; their ids by what they are."""
    mail = add_contact(
        app,
        channel="mail",
        caller=LONG_ADDRESS,
        subject=LONG_SUBJECT,
        organisation="Zorggroep De Linde",
        started_at=local("2026-11-23 08:02"),
    )
    add_mail(
        app,
        mail,
        subject=LONG_SUBJECT,
        from_address=LONG_ADDRESS,
        from_name="Wilhelmina van der Heijden-Blankenstein",
        text=f"Goedemorgen,\n\nDe link {LONG_URL} geeft een foutmelding.\n\nMet vriendelijke groet",
        attachments=[{"filename": LONG_FILENAME, "content_type": "image/png", "size": 734_003}],
    )
    voicemail = add_contact(
        app,
        channel="call",
        caller="+31622222222",
        outcome="voicemail",
        recording_sid="RE" + "a" * 32,
        recording_url=f"{TWILIO_RECORDINGS}/RE{'a' * 32}",
        recording_seconds=48,
        started_at=local("2026-11-23 08:40"),
    )
    add_contact(
        app,
        channel="call",
        caller="+31633333333",
        outcome="missed",
        started_at=local("2026-11-23 09:05"),
    )
    add_contact(
        app,
        channel="walk-in",
        topic="Videoconsult",
        note="Kwam langs met de tablet van haar zoon; samen de app opnieuw geïnstalleerd.",
        handled_at=local("2026-11-23 09:30"),
        handled_by="coordinator@example.org",
        started_at=local("2026-11-23 09:30"),
    )
    add_contact(
        app,
        channel="mail",
        subject="Wachtwoord vergeten",
        topic="Inloggen",
        handled_at=local("2026-11-23 10:00"),
        handled_by="coordinator@example.org",
        started_at=local("2026-11-20 16:45"),
    )
    add_user(app, "bram.jansen@example.org", language="nl")  # a colleague in Accounts
    return {"mail": mail, "voicemail": voicemail}


def tour(page: Page, user: LoggedIn, contacts: dict[str, int]) -> Iterator[str]:
    """Visit every page of the menu through the menu, the account's pages from the header,
    two contacts, a missing page and a form sent again; yield each page's name once it has
    loaded, with every <details> opened, as a person reading the whole page would."""
    for index in range(page.locator("header nav a").count()):
        link = page.locator("header nav a").nth(index)
        name = link.get_attribute("href") or str(index)
        navigate(page, link)
        yield from opened(page, name)
    navigate(page, page.locator("a[href='/users']"))
    navigate(page, page.locator("table.users a.disable"))  # asks first
    yield from opened(page, "disable a login")
    navigate(page, page.locator("header a.account"))
    yield from opened(page, "account")
    navigate(page, page.locator(".account-factor a"))  # setting up an authenticator app
    yield from opened(page, "second factor")
    for kind, contact_id in contacts.items():
        user.open(f"/contacts/{contact_id}")
        yield from opened(page, f"contact ({kind})")
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    yield from opened(page, "404")
    # A form sent after its session ended comes back to be checked and sent again.
    user.open("/walk-in")
    page.locator("select[name=topic]").select_option(index=1)
    page.locator("textarea[name=note]").fill(f"Kon {LONG_URL} niet openen")
    page.evaluate("document.querySelector('form.walk-in [name=csrf_token]').value = 'old'")
    navigate(page, page.locator("form.walk-in button[type=submit]"))
    assert page.locator("form.form-again").count() == 1
    yield from opened(page, "form again")


def opened(page: Page, name: str) -> Iterator[str]:
    page.evaluate("document.querySelectorAll('main details').forEach(d => { d.open = true; })")
    yield name


def logged_in_tour(app: Flask, page: Page, log_in: LogIn) -> Iterator[str]:
    """The login page, logged out; then the coordinator's tour."""
    contacts = fill_the_log(app)
    page.goto("/login")
    yield "login"
    user = log_in(role="coordinator", language="nl")
    yield from tour(page, user, contacts)


# A coordinator's menu.
MENU_NL = [
    "Nu", "Contacten", "Inloop", "Rooster", "Drukte", "Thema's", "Opnames", "Accounts",
    "Toegangslog",
]  # fmt: skip


def user_email(page: Page) -> str:
    return page.locator("header a.account").inner_text().strip()


def snapshot(page: Page, name: str) -> None:
    """With INTAKE_SCREENSHOTS=DIR, keep a picture of the page as DIR/layout-NAME.png."""
    target = os.environ.get("INTAKE_SCREENSHOTS")
    if target:
        file = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        page.screenshot(path=str(Path(target) / f"layout-{file}.png"), full_page=True)


def report(found: dict[str, Any]) -> str:
    """One line per page, so a failure shows every page that is wrong, not the first."""
    return "\n".join(f"{name}: {what}" for name, what in found.items())


# --- the tests --------------------------------------------------------------------------


def test_no_page_is_wider_than_the_screen(
    app: Flask, desk: Desk, page: Page, log_in: LogIn, viewport: tuple[int, int]
) -> None:
    too_wide: dict[str, Any] = {}
    for name in logged_in_tour(app, page, log_in):
        snapshot(page, f"{viewport[0]} {'now' if name == '/' else name}")
        found = measure(page, OVERFLOW)
        if found["scroll"] > found["window"] or found["wide"]:
            too_wide[name] = found
    assert not too_wide, report(too_wide)


def test_the_menu_stays_inside_the_header_and_the_screen(
    app: Flask, desk: Desk, page: Page, log_in: LogIn, viewport: tuple[int, int]
) -> None:
    width = viewport[0]
    problems: dict[str, list[Any]] = {}
    for name in logged_in_tour(app, page, log_in):
        links = measure(page, MENU)
        if name == "login":
            assert links == []  # no menu before logging in
            continue
        assert [link["text"] for link in links] == [*MENU_NL, user_email(page)]
        for link in links:
            inside = link["left"] >= 0 and link["right"] <= width and link["top"] >= 0
            if not (link["width"] and inside and link["inHeader"]):
                problems.setdefault(name, []).append(link)
    assert not problems, report(problems)


def test_tables_become_labelled_rows_on_a_phone_and_stay_tables_on_a_laptop(
    app: Flask, desk: Desk, page: Page, log_in: LogIn, viewport: tuple[int, int]
) -> None:
    phone = viewport == PHONE
    problems: dict[str, list[str]] = {}
    tables_seen: set[str] = set()
    for name in logged_in_tour(app, page, log_in):
        for row in measure(page, TABLES):
            tables_seen.add(f"{name}: {row['table']}")
            cells = [cell for cell in row["cells"] if cell["shown"]]  # an empty cell may hide
            wrong: list[str] = []
            if phone:
                if row["display"] == "table-row":
                    wrong.append("row laid out as a table row")
                if len({cell["left"] for cell in cells}) > 1:
                    wrong.append(f"cells side by side at x={[cell['left'] for cell in cells]}")
                for cell in cells:
                    if cell["tag"] != "td" or row["full"]:
                        continue  # a row's heading, or one cell saying the table is empty
                    if cell["headingHidden"]:
                        if not cell["button"]:
                            wrong.append(f"a cell under no heading holds no button: {cell}")
                    elif cell["label"] != f'"{cell["heading"]}"':
                        wrong.append(f"cell under {cell['heading']!r} shows {cell['label']}")
                    elif not cell["room"]:
                        wrong.append(f"the label of a cell under {cell['heading']!r} has no room")
            elif not row["full"]:
                if row["display"] != "table-row":
                    wrong.append(f"row laid out as {row['display']}")
                lefts = [cell["left"] for cell in cells]
                if lefts != sorted(set(lefts)) or len({cell["top"] for cell in cells}) > 1:
                    wrong.append(
                        f"cells not side by side: {[(c['left'], c['top']) for c in cells]}"
                    )
            if wrong:
                problems.setdefault(f"{name}: {row['table']}", []).extend(wrong)
    # The tour really met the tables: the waiting list, the log, a mail's attachments, the
    # contact's viewers, the rota's and the demand page's tables, the topics.
    for table in (
        "/: table",
        "/contacts: contacts",
        "contact (mail): attachments",
        "contact (mail): views",
        "/rota: table-shift-grid",
        "/rota: table-changes",
        "/topics: topics",
        "/demand: table-heatmap",
        "/demand: table-per_day",
    ):
        assert table in tables_seen
    assert not problems, report(problems)


def test_every_text_stands_out_from_its_background(
    app: Flask, desk: Desk, page: Page, log_in: LogIn, viewport: tuple[int, int]
) -> None:
    poor: dict[str, Any] = {}
    for name in logged_in_tour(app, page, log_in):
        found = measure(page, CONTRAST)
        if found:
            poor[name] = found
    assert not poor, report(poor)


def test_on_a_phone_everything_tapped_is_at_least_44_px(
    app: Flask, desk: Desk, page: Page, log_in: LogIn
) -> None:
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    small: dict[str, list[Any]] = {}
    for name in logged_in_tour(app, page, log_in):
        targets = measure(page, TARGETS)
        assert targets, name
        tiny = [t for t in targets if t["height"] < TAP or t["width"] < TAP]
        if tiny:
            small[name] = tiny
    assert not small, report(small)


def fits(page: Page, viewport: tuple[int, int], name: str) -> dict[str, Any]:
    """What is wrong with the page in front of us, by kind: wider than the screen, header
    links outside the header, text hard to read, or (on a phone) targets too small."""
    snapshot(page, f"{viewport[0]} {name}")
    wrong: dict[str, Any] = {}
    found = measure(page, OVERFLOW)
    if found["scroll"] > found["window"] or found["wide"]:
        wrong["too wide"] = found
    links = [
        link
        for link in measure(page, MENU)
        if not (link["width"] and link["inHeader"] and 0 <= link["left"] <= link["right"])
        or link["right"] > viewport[0]
    ]
    if links:
        wrong["header links outside"] = links
    if poor := measure(page, CONTRAST):
        wrong["contrast"] = poor
    if viewport == PHONE:
        tiny = [t for t in measure(page, TARGETS) if t["height"] < TAP or t["width"] < TAP]
        if tiny:
            wrong["too small to tap"] = tiny
    return wrong


def test_the_second_factor_pages_fit_the_screen(
    desk: Desk, page: Page, log_in: LogIn, clock: SimClock, viewport: tuple[int, int]
) -> None:
    """Setting up an authenticator app, its recovery codes, and logging in with a code: the
    phone is played by pyotp, as in tests/test_browser_second_factor.py."""
    problems: dict[str, Any] = {}
    user = log_in(language="nl")
    navigate(page, page.locator("header a.account"))
    navigate(page, page.locator(".account-factor a"))
    page.locator(".qr + details summary").click()
    problems["second factor"] = fits(page, viewport, "second factor")
    key = page.locator("code.secret").inner_text().replace(" ", "")
    page.locator("input[name=code]").fill(pyotp.TOTP(key).at(clock()))
    navigate(page, page.locator("form.login button[type=submit]"))
    assert page.locator("ul.recovery-codes li").count() == 10
    problems["recovery codes"] = fits(page, viewport, "recovery codes")
    navigate(page, page.locator("main p > a"))
    user.log_out()
    clock.advance(60)
    submit_login(page, user.email, PASSWORD)
    assert page.locator("input[name=code]").get_attribute("autocomplete") == "one-time-code"
    problems["login code"] = fits(page, viewport, "login code")

    assert not any(problems.values()), report(problems)


def test_the_page_before_any_desk_is_loaded_fits_the_screen(
    page: Page, log_in: LogIn, viewport: tuple[int, int]
) -> None:
    log_in(role="coordinator", language="nl")  # no desk: Now says how to load one

    assert page.locator("h1").inner_text() == "Nog geen helpdeskinstellingen"
    assert fits(page, viewport, "no desk") == {}


def test_no_page_needs_what_its_content_security_policy_refuses(
    app: Flask, desk: Desk, page: Page, log_in: LogIn, viewport: tuple[int, int]
) -> None:
    # Inline styles and scripts are refused (style-src and script-src 'self'): a page that
    # relied on one would show unstyled, or lose what its script does.
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    pages = list(logged_in_tour(app, page, log_in))

    assert len(pages) > 10 and refused == []
