"""Who sees which pages, the People directory's live search, and a clean tour of every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.live import ADMIN, EMPLOYEE, sign_in

pytestmark = pytest.mark.browser


def nav_links(page):
    return page.get_by_role("navigation", name="Main").get_by_role("link")


def manage_links(page):
    """The set-up areas behind the top bar's "Manage" menu (opened first)."""
    menu = page.locator("details.navmenu")
    if menu.get_attribute("open") is None:
        menu.locator("summary").click()
    return page.get_by_role("navigation", name="Manage").get_by_role("link")


ADMIN_AREAS = {"People", "Audit log"}


def test_an_employee_sees_no_admin_areas(page, watchdog):
    sign_in(page, EMPLOYEE)
    areas = nav_links(page).all_inner_texts()
    assert areas[0] == "My day"
    assert not ADMIN_AREAS & set(areas), areas
    expect(page.locator("details.navmenu")).to_have_count(0)
    watchdog.allow_status(403)
    page.goto("/admin/people/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")


def test_an_admin_sees_and_opens_people_and_the_audit_log(page):
    sign_in(page, ADMIN)
    assert nav_links(page).all_inner_texts()[0] == "My day"
    areas = manage_links(page).all_inner_texts()
    assert ADMIN_AREAS.issubset(areas), areas

    manage_links(page).filter(has_text="People").click()
    page.wait_for_url("**/admin/people/")
    expect(page.get_by_role("heading", level=1)).to_have_text("People")
    expect(page.locator(".navmenu-toggle")).to_have_class(re.compile("is-current"))
    expect(manage_links(page).filter(has_text="People")).to_have_attribute("aria-current", "page")

    manage_links(page).filter(has_text="Audit log").click()
    page.wait_for_url("**/admin/audit/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    expect(manage_links(page).filter(has_text="Audit log")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_role("cell", name="login.succeeded").first).to_be_visible()


def test_searching_people_updates_the_table_and_the_address_in_place(page):
    sign_in(page, ADMIN)
    page.goto("/admin/people/")
    page.evaluate("window.__samePage = true")  # gone if the whole page were reloaded
    table = page.locator("#people-table")
    expect(table.locator(".table-caption")).to_have_text(
        re.compile(r"^\d+ people · page 1 of \d+$")
    )

    with page.expect_response(lambda r: "q=Okafor" in r.url) as answer:
        page.get_by_label("Search").fill("Okafor")
    assert answer.value.request.headers.get("hx-request") == "true"
    expect(table).to_contain_text("matching “Okafor”")
    expect(table.get_by_role("link", name="Amara Okafor")).to_be_visible()
    for name in table.locator("tbody tr td:first-child a").all_inner_texts():
        assert "Okafor" in name
    expect(page).to_have_url(re.compile(r"/admin/people/\?q=Okafor(&|$)"))
    assert page.evaluate("window.__samePage") is True

    page.get_by_label("Search").fill("Nobody-by-this-name")
    expect(table).to_contain_text("No one matches that search.")
    expect(page).to_have_url(re.compile(r"q=Nobody-by-this-name"))

    page.get_by_label("Search").fill("Okafor")
    table.get_by_role("link", name="Amara Okafor").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Amara Okafor")


PAGES = [
    ("/my-day", re.compile(r"^Good \w+, Amara$")),
    ("/account/", "My account"),
    ("/admin/people/", "People"),
    ("/admin/audit/", "Audit log"),
    ("/admin/audit/?from=2026-02-01&to=2026-01-01", "Audit log"),
    ("/feeds/", "Calendar feeds"),
    ("/admin/feeds/", "Calendar feeds"),
    ("/admin/calendars/", "Room calendars"),
    ("/admin/access-control/", "Badges and doors"),
    ("/admin/jobs/", "Background jobs"),
    ("/nope", "Not found"),
]


def test_every_page_is_clean_and_fits_the_screen(page, watchdog):
    """The watchdog fails the test on any CSP violation or console error; nothing scrolls sideways."""
    watchdog.allow_status(404, 422)
    sign_in(page, ADMIN)
    page.goto("/admin/people/")
    person = page.locator("#people-table tbody a").first
    pages = [*PAGES, (person.get_attribute("href"), person.inner_text())]
    for path, heading in pages:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"


def test_the_watchdog_catches_an_inline_style(page, watchdog):
    """Proof that the CSP check above is not vacuous: an inline style is reported."""
    page.goto("/sign-in")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    page.wait_for_timeout(100)
    problems = watchdog.take()
    assert any(p.startswith("CSP violation: style-src") for p in problems), problems
