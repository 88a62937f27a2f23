"""The live demo server and Chromium, shared by the browser tests and the screenshot script."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from portal import create_app
from portal.models import Site, User
from portal.schema import upgrade
from portal.services import accounts, demo_company

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PASSWORD = demo_company.DEMO_PASSWORD
EMPLOYEE = "lena.fischer@example.com"
ADMIN = "amara.okafor@example.com"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


def build_demo_app(folder: Path) -> Flask:
    """The app on a fresh SQLite file in `folder`, migrated and loaded with the demo company."""
    app = create_app(
        {
            "TESTING": True,
            "database_url": f"sqlite:///{folder / 'foyer.sqlite3'}",
            "instance_path": folder / "instance",
            "secret_key": "browser-" + secrets.token_hex(16),
            # Every test signs in at two screen sizes: more than the per-minute login limit.
            "RATELIMIT_ENABLED": False,
        }
    )
    upgrade(app.extensions["foyer.engine"])
    _reader, writer = app.extensions["foyer.sessions"]
    with app.app_context(), writer() as session, session.begin():
        demo_company.seed_demo(session)
    return app


def serve(app: Flask) -> tuple[str, BaseWSGIServer]:
    """Serve `app` on a free loopback port from a daemon thread; returns (base URL, server)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="foyer-live", daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium; Playwright cannot download its own browsers here."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def new_context(browser: Any, base_url: str, screen: str) -> Any:
    phone = screen == "phone"
    # An explicit Accept-Language: pages that pick a language (the SSO provider's) must not
    # depend on the machine's locale.
    return browser.new_context(
        base_url=base_url,
        viewport=VIEWPORTS[screen],
        is_mobile=phone,
        has_touch=phone,
        locale="en-US",
    )


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    """Sign in through the real form, as a person would, and wait for My day."""
    page.goto("/sign-in")
    page.get_by_label("Work e-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/my-day")


def htmx_settled(page: Any) -> None:
    """Wait until htmx has swapped and processed what it last fetched. New content becomes
    live (its hx-trigger listeners attached) only when it settles, a few milliseconds after the
    response: a change made in between would send nothing."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


@contextmanager
def writing(app: Flask) -> Iterator[Session]:
    """One committed transaction on the live app's database."""
    _reader, writer = app.extensions["foyer.sessions"]
    with app.app_context(), writer() as session, session.begin():
        yield session


# Arranging data in the live server's database ------------------------------------------------
def person(session: Session, email: str) -> User:
    found = accounts.find_by_email(session, email)
    assert found is not None, email
    return found


def berlin(session: Session) -> Site:
    return session.scalars(select(Site).where(Site.slug == "berlin")).one()
