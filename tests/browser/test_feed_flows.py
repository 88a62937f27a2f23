"""In Chromium: an employee subscribes to her own bookings, copies the address with one click
and a calendar client can read it; revoking it stops it at once."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.db import utcnow
from portal.models import User
from portal.models.feeds import FeedKind
from portal.services import feeds
from portal.services.audit import Actor
from tests.browser.live import EMPLOYEE, sign_in, writing
from tests.ical_lint import lint_feed

pytestmark = pytest.mark.browser


def test_an_employee_copies_her_feed_address_and_a_calendar_reads_it(page: Page, live_server):
    # The live app is shared by the run: start from no feed of her own bookings.
    with writing(live_server.app) as session:
        lena = session.scalar(select(User).where(User.email == EMPLOYEE))
        for feed in feeds.for_owner(session, lena):
            if feed.kind == FeedKind.MINE:
                feeds.revoke(session, Actor.system("tests"), feed, now=utcnow())
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
