"""Screenshots of Foyer's pages at phone and desktop sizes, for looking at the design.

Run: .venv/bin/python -m tests.browser.screenshots [--full-page]
Writes screenshots/<page>-<phone|desktop>.png (the folder is git-ignored). The demo company is
loaded into a throwaway SQLite file and served on a free loopback port, as in the browser tests.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.live import (
    ADMIN,
    CHROMIUM,
    EMPLOYEE,
    VIEWPORTS,
    build_demo_app,
    launch_chromium,
    new_context,
    serve,
    sign_in,
)

OUT = Path(__file__).resolve().parents[2] / "screenshots"


def shoot(page, name: str, screen: str, full_page: bool) -> Path:
    page.wait_for_load_state("networkidle")
    path = OUT / f"{name}-{screen}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def capture(base_url: str, full_page: bool) -> list[Path]:
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for screen in VIEWPORTS:
            # Signed out: the sign-in page, then a wrong password.
            context = new_context(browser, base_url, screen)
            page = context.new_page()
            page.goto("/sign-in")
            taken.append(shoot(page, "01-sign-in", screen, full_page))
            page.get_by_label("Work e-mail").fill(EMPLOYEE)
            page.get_by_label("Password").fill("not-the-password")
            page.get_by_role("button", name="Sign in").click()
            page.locator("#password-error").wait_for()
            taken.append(shoot(page, "02-sign-in-error", screen, full_page))
            # An employee's day, with the keyboard focus on the skip link.
            sign_in(page, EMPLOYEE)
            taken.append(shoot(page, "03-my-day", screen, full_page))
            page.keyboard.press("Tab")
            taken.append(shoot(page, "04-skip-link-focus", screen, False))
            context.close()

            context = new_context(browser, base_url, screen)
            page = context.new_page()
            sign_in(page, ADMIN)
            page.locator("details.usermenu > summary").click()
            taken.append(shoot(page, "05-user-menu", screen, False))
            page.goto("/account/")
            taken.append(shoot(page, "06-my-account", screen, full_page))
            page.goto("/admin/people/")
            taken.append(shoot(page, "07-people", screen, full_page))
            page.goto("/admin/people/?q=nobody-by-this-name")
            taken.append(shoot(page, "08-people-no-match", screen, full_page))
            page.goto("/admin/people/?q=Okafor")
            page.get_by_role("link", name="Amara Okafor").click()
            page.wait_for_url("**/admin/people/*")
            taken.append(shoot(page, "09-person", screen, full_page))
            page.goto("/admin/audit/")
            taken.append(shoot(page, "10-audit-log", screen, full_page))
            page.goto("/nope")
            taken.append(shoot(page, "11-not-found", screen, full_page))
            # After signing out: the sign-in page with its message.
            page.goto("/my-day")
            page.locator("details.usermenu > summary").click()
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url("**/sign-in")
            taken.append(shoot(page, "12-signed-out", screen, full_page))
            context.close()
        browser.close()
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-page", action="store_true", help="capture whole pages")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} not found (apt-get install chromium)", file=sys.stderr)
        return 1
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="foyer-screens-") as folder:
        app = build_demo_app(Path(folder))
        base_url, server = serve(app)
        try:
            for path in capture(base_url, args.full_page):
                print(path.relative_to(OUT.parent))
        finally:
            server.shutdown()
            server.server_close()
            app.extensions["foyer.engine"].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
