"""In Chromium: an employee subscribes to her own bookings, copies the address with one click
and a calendar client can read it; revoking it stops it at once."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.live import EMPLOYEE, sign_in
from tests.ical_lint import lint_feed

pytestmark = pytest.mark.browser


def test_an_employee_copies_her_feed_address_and_a_calendar_reads_it(page: Page, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.on("dialog", lambda dialog: dialog.accept())  # "Revoke this feed?"
    sign_in(page, EMPLOYEE)
    page.goto("/account/")
    page.get_by_role("link", name="Calendar feeds").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Calendar feeds")
    page.get_by_role("button", name="Subscribe to my bookings").click()

    shown = page.locator("#feed-url-https")
    expect(shown).to_have_value(re.compile(r"^https?://.+/feeds/[A-Za-z0-9_-]{40,}\.ics$"))
    expect(page.locator("#feed-url-webcal")).to_have_value(re.compile(r"^webcal://.+\.ics$"))
    page.get_by_role("button", name="Copy").first.click()
    expect(page.locator("[data-copy-status]")).to_have_text("Copied to the clipboard.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown.input_value()

    # What a calendar program does with the pasted address (on this live server's port).
    feed_url = live_server.url + urlsplit(copied).path
    answer = requests.get(feed_url, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/calendar")
    lint_feed(answer.content)
    again = requests.get(feed_url, headers={"If-None-Match": answer.headers["ETag"]}, timeout=10)
    assert again.status_code == 304

    # Revoked from the same page: the address stops at once.
    mine = (
        page.locator("li, tr, article")
        .filter(has_text="My bookings")
        .filter(has=page.get_by_role("button", name="Revoke"))
    )
    mine.first.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("button", name="Subscribe to my bookings")).to_be_visible()
    assert requests.get(feed_url, timeout=10).status_code == 404
