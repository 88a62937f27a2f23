"""In Chromium: the coordinator's monthly report. "What was desk utilisation on floor 2 last
month, and how many tickets missed their SLA?" in two clicks each from the dashboards, with the
numbers downloaded."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live import sign_in

pytestmark = pytest.mark.browser
COORDINATOR = "jonas.weber@example.com"


def test_floor_utilisation_and_missed_slas_last_month_in_two_clicks_each(page: Page):
    sign_in(page, COORDINATOR)
    page.get_by_role("navigation").get_by_role("link", name="Dashboards").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("How your offices are used")
    hub = page.url

    # Click 1: the Desks card's "Last month"; click 2: Floor 2.
    desks = page.locator(".card, article, section").filter(
        has=page.get_by_role("heading", name="Desks", exact=True)
    )
    desks.get_by_role("link", name="Last month").click()
    expect(page).to_have_url(re.compile(r"/dashboards/desks\?.*range=last-month"))
    page.locator(".chart-links").get_by_role("link", name="Floor 2").click()
    expect(page).to_have_url(re.compile(r"floor=\d+"))
    expect(page.get_by_label("Floor", exact=True)).to_have_value(re.compile(r"\d+"))
    utilisation = page.locator('[data-kpi="utilisation"]')
    expect(utilisation).to_have_text(re.compile(r"^\d{1,3}(\.\d)?%$"))
    shown = utilisation.inner_text()

    # The numbers behind it, as a spreadsheet would open them.
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV", exact=True).click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert "Floor 2" in rows[0][1]  # the scope is named on the first line
    figures = {row[0]: row for row in rows if len(row) == 5}
    label, unit, this_period = figures["Desk utilisation"][:3]
    assert unit == "percent" and float(this_period) == float(shown.rstrip("%"))

    # Back at the hub: the Service desk card's "Last month", and the tile answers.
    page.goto(hub)
    service_desk = page.locator(".card, article, section").filter(
        has=page.get_by_role("heading", name="Service desk", exact=True)
    )
    service_desk.get_by_role("link", name="Last month").click()
    expect(page).to_have_url(re.compile(r"/dashboards/service-desk\?.*range=last-month"))
    missed = page.locator(".kpi").filter(has_text="missed an SLA")
    expect(missed.locator(".kpi-value")).to_have_text(re.compile(r"^[\d,]+$"))
