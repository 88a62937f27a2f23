"""Browser fixtures: the demo company served by a real HTTP server, driven by headless Chromium.

The live server runs once per session on its own SQLite file (the `app`/`db` fixtures of
tests/conftest.py roll back per test and cannot be shared with a server thread). Each test gets a
fresh browser context, so cookies never leak between tests, and a watchdog that fails the test on
any console error, uncaught script error, Content-Security-Policy violation or server-side error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from portal.limits import limiter
from tests.browser.live import (
    CHROMIUM,
    VIEWPORTS,
    build_demo_app,
    launch_chromium,
    new_context,
    serve,
)
from tests.conftest import missing_service

# Runs in every document before its own scripts and reports CSP violations to Python.
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__foyerCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} in ` +
    `${event.sourceFile || event.documentURI}:${event.lineNumber} ${event.sample || ""}`
  );
});
"""
FAILED_RESOURCE = re.compile(
    r"Failed to load resource: the server responded with a status of (\d+)"
)


class ServerErrors(logging.Handler):
    """Collects the app's ERROR log records (unhandled exceptions) while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        self.records.append(text)


@dataclass
class LiveServer:
    url: str
    errors: ServerErrors
    app: Flask | None = None  # for arranging data in its database (see live.writing)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    app = build_demo_app(tmp_path_factory.mktemp("live"))
    errors = ServerErrors()
    portal_log = logging.getLogger("portal")
    portal_log.addHandler(errors)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    url, server = serve(app)
    yield LiveServer(url, errors, app)
    server.shutdown()
    server.server_close()
    portal_log.removeHandler(errors)
    app.extensions["foyer.engine"].dispose()


@pytest.fixture(scope="session")
def live_app(live_server: LiveServer) -> Flask:
    """The Flask app behind `live_server`, to arrange data with `live.writing`."""
    assert live_server.app is not None
    return live_server.app


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing_service("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as actions (see `page`): two xdist workers share two cores.
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        try:
            browser = launch_chromium(playwright)
        except Exception as exc:  # noqa: BLE001 - any launch failure means "not usable here"
            missing_service("Chromium", f"cannot launch {CHROMIUM}: {str(exc).splitlines()[0]}")
        yield browser
        browser.close()


@dataclass
class Watchdog:
    """What went wrong in the browser during one test."""

    problems: list[str] = field(default_factory=list)
    allowed_statuses: set[int] = field(default_factory=set)

    def allow_status(self, *statuses: int) -> None:
        """A test that expects a 404 or a 422 says so: Chromium logs those as console errors."""
        self.allowed_statuses.update(statuses)

    def on_console(self, message: Any) -> None:
        if message.type not in ("error", "assert"):
            return
        failed = FAILED_RESOURCE.search(message.text)
        if failed and int(failed.group(1)) in self.allowed_statuses:
            return
        where = (message.location or {}).get("url", "")
        self.problems.append(f"console {message.type}: {message.text} ({where})")

    def csp_violation(self, text: str) -> None:
        self.problems.append(f"CSP violation: {text}")

    def take(self) -> list[str]:
        found, self.problems = self.problems, []
        return found


@pytest.fixture(params=list(VIEWPORTS))
def screen(request: pytest.FixtureRequest) -> str:
    """Every browser test runs on a phone (390x844) and on a desktop (1280x800)."""
    return request.param


@pytest.fixture
def watchdog() -> Watchdog:
    return Watchdog()


@pytest.fixture
def page(chromium: Any, live_server: LiveServer, screen: str, watchdog: Watchdog) -> Iterator[Any]:
    context = new_context(chromium, live_server.url, screen)
    # Generous: under pytest-xdist another worker shares the two cores with the live server.
    context.set_default_timeout(10_000)
    context.expose_function("__foyerCspViolation", watchdog.csp_violation)
    context.add_init_script(WATCH_CSP)
    browser_page = context.new_page()
    browser_page.on("console", watchdog.on_console)
    browser_page.on("pageerror", lambda error: watchdog.problems.append(f"script error: {error}"))
    live_server.errors.records.clear()
    # Flask-Limiter is one object per process and takes the settings of the app created last
    # (another test's, with limits on); the live demo app has them off, as each test signs in
    # at two screen sizes.
    limiter.enabled = False
    yield browser_page
    context.close()
    _fail_if_unclean(watchdog, live_server)  # anything that arrived after the test's own check


def _fail_if_unclean(watchdog: Watchdog, live_server: LiveServer) -> None:
    problems = watchdog.take() + [f"server error: {e}" for e in live_server.errors.records]
    live_server.errors.records.clear()
    if problems:
        pytest.fail("the page was not clean:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Judge the watchdog as part of the test itself, so an unclean page fails the test."""
    result = yield  # re-raises if the test already failed
    funcargs = getattr(item, "funcargs", {})
    if "page" in funcargs:
        funcargs["page"].wait_for_timeout(50)  # let a late console line or CSP report arrive
        _fail_if_unclean(funcargs["watchdog"], funcargs["live_server"])
    return result
