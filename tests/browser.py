"""The dashboard in a real browser: the test app over HTTP, and Debian's Chromium via Playwright.

A pytest plugin, registered in the root conftest's `pytest_plugins`. It provides

- `live_server`: the test `app` (both databases, the injected clock) served over real HTTP
  on a free port of 127.0.0.1 by werkzeug's server in a thread, stopped after the test;
- `browser` (session): one headless Chromium for the whole run. Always Debian's
  `/usr/bin/chromium`, never a browser Playwright downloads. When it is missing the tests
  that need it are skipped with the reason, or fail when INTAKE_REQUIRE_SERVICES=1 (CI);
- `page`: a fresh browser context (no cookies, no storage) and page per test, pointed at
  `live_server`; when the test fails a screenshot is saved in the test's tmp_path;
- `log_in`: makes an account (tests/factories.py's `add_user`, as every dashboard test does)
  and logs it in through the real form, giving a `LoggedIn`.

`navigate` clicks and waits for the page that follows; every step that leaves the page uses
it, so no step reads or acts on the page being left.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.factories import PASSWORD, add_user
from tests.services import missing_service

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
# What works on the developers' machines and in CI, as root in a container: no sandbox (it
# needs user namespaces), no GPU, and nothing that phones home (the network is closed, and
# a test must not wait for an update check to time out).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every page here is served locally in milliseconds; a missing element should fail the test
# in seconds, not after Playwright's default 30. Ten leaves room for a busy CI machine.
TIMEOUT_MS = 10_000


class QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without a log line per request (the browser makes many)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class LiveServer:
    app: Flask
    url: str  # http://127.0.0.1:PORT, no trailing slash


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    # The test app's public URL is https, so its session cookie is marked Secure, and a
    # browser never sends a Secure cookie back over plain http: nobody could stay logged
    # in. The server here is plain http on 127.0.0.1, so the flag is dropped for it alone;
    # tests/test_dashboard_auth.py proves the flag is set behind https.
    app.config["SESSION_COOKIE_SECURE"] = False
    app.config["REMEMBER_COOKIE_SECURE"] = False
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
    )
    # A short poll, so shutdown() returns at once instead of after up to half a second.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="live-server"
    )
    thread.start()
    try:
        yield LiveServer(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing_service(
            f"no browser for the dashboard tests: {CHROMIUM} is missing (apt-get install chromium; "
            "Playwright's own browser downloads are not used)"
        )
    try:  # lazy, so that a machine without Playwright gets the skip below, not an error
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        missing_service("no browser for the dashboard tests: playwright is not installed")
    with sync_playwright() as playwright:
        # launch() gives the browser a new, empty profile in a temporary directory.
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Error as exc:
            missing_service(
                f"no browser for the dashboard tests: {CHROMIUM} would not start: {exc}"
            )
        try:
            yield browser
        finally:
            browser.close()


# Each test's reports by phase, so the `page` fixture knows at teardown whether it failed.
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def page(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Page]:
    from playwright.sync_api import expect  # lazy, as in `browser` above

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(base_url=live_server.url, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = request.node.stash.get(_REPORTS, {}).get("call")
        if report is not None and report.failed:
            shot = tmp_path / "failure.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failing page ({page.url}): {shot}")
            except Exception as exc:  # the page may be the thing that broke
                print(f"no screenshot of the failing page: {exc}")
        context.close()


@dataclass
class LoggedIn:
    """A user logged in through the real form, on `page`."""

    page: Page
    email: str
    role: str
    language: str

    def open(self, path: str) -> Page:
        """Go straight to `path`, which must answer 2xx."""
        response = self.page.goto(path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        return self.page

    def menu(self) -> list[str]:
        return [text.strip() for text in self.page.locator("header nav a").all_inner_texts()]

    def visit(self, label: str) -> Page:
        """Go to a page through the menu, as a person would."""
        navigate(self.page, self.page.locator("header nav").get_by_role("link", name=label))
        return self.page

    def log_out(self) -> None:
        navigate(self.page, self.page.locator("form.logout button[type=submit]"))


def navigate(page: Page, target: Locator, *, key: str | None = None) -> None:
    """Click `target` (or press `key` in it) and wait until the page it leads to has loaded.

    Without the wait, the next step could read the old page, or act on it while the new one
    is on its way.
    """
    with page.expect_event("load"):
        if key is None:
            target.click()
        else:
            target.press(key)


def submit_login(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    navigate(page, page.locator("form.login button[type=submit]"))


@pytest.fixture
def log_in(app: Flask, page: Page, live_server: LiveServer) -> Callable[..., LoggedIn]:
    """log_in(role="staff", language="en"): a new account, logged in, on the Now page."""
    counter = iter(range(1, 1000))

    def log_in_as(role: str = "staff", language: str = "en", email: str | None = None) -> LoggedIn:
        address = email or f"{role}{next(counter)}@example.org"
        add_user(app, address, role=role, language=language)
        submit_login(page, address, PASSWORD)
        page.wait_for_url(f"{live_server.url}/")  # Now, the page after logging in
        return LoggedIn(page, address, role, language)

    return log_in_as
