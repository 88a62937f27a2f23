"""Signing in and out in a real browser, with a mouse or with the keyboard alone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.live import EMPLOYEE, PASSWORD, sign_in

pytestmark = pytest.mark.browser


def test_signing_in_with_a_password_lands_on_my_day(page):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_label("Work e-mail").fill(EMPLOYEE)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    # htmx posted the form and the server answered with a redirect header, not a page.
    assert answer.value.request.headers.get("hx-request") == "true"
    assert answer.value.status == 204
    assert answer.value.headers["hx-redirect"] == "/my-day"
    page.wait_for_url("**/my-day")
    expect(page).to_have_title("My day · Foyer")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Good \w+, Lena$"))
    expect(page.get_by_role("heading", name="My bookings today")).to_be_visible()
    here = page.get_by_role("navigation", name="Main").get_by_role("link", name="My day")
    expect(here).to_have_attribute("aria-current", "page")


def test_a_wrong_password_is_explained_beside_the_field_which_gets_focus(page, watchdog):
    watchdog.allow_status(422)
    page.goto("/sign-in")
    page.get_by_label("Work e-mail").fill(EMPLOYEE)
    page.get_by_label("Password").fill("not-the-password")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 422

    password = page.get_by_label("Password")
    message = page.locator("#password-error")
    expect(message).to_have_text("Error: That e-mail and password do not match an account.")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_attribute("aria-describedby", re.compile(r"\bpassword-error\b"))
    expect(password).to_be_focused()
    field, below = password.bounding_box(), message.bounding_box()
    assert 0 <= below["y"] - (field["y"] + field["height"]) <= 16, (
        "the message sits under the field"
    )
    assert abs(below["x"] - field["x"]) <= 2, "and lines up with it"
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.get_by_label("Work e-mail")).to_have_value(EMPLOYEE)

    # The swapped-in form works just the same.
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/my-day")


def test_signing_out_returns_to_the_sign_in_page(page):
    sign_in(page, EMPLOYEE)
    menu = page.locator("details.usermenu > summary")
    expect(menu).to_have_accessible_name(re.compile("Lena Fischer"))
    menu.click()
    page.keyboard.press("Escape")  # closes the menu and gives focus back to its toggle
    expect(page.locator("details.usermenu")).not_to_have_attribute("open", "")
    expect(menu).to_be_focused()
    menu.click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in")
    expect(page.get_by_role("status")).to_contain_text("You have signed out.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.goto("/my-day")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/my-day$"))


def _outline_width(locator) -> float:
    return locator.evaluate("el => parseFloat(getComputedStyle(el).outlineWidth) || 0")


def test_the_keyboard_alone_reaches_the_skip_link_first_and_signs_in(page):
    page.goto("/sign-in")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert _outline_width(skip) >= 2, "a visible focus ring"

    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    email = page.get_by_label("Work e-mail")
    expect(email).to_be_focused()
    assert _outline_width(email) >= 2
    page.keyboard.type(EMPLOYEE)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    button = page.get_by_role("button", name="Sign in")
    expect(button).to_be_focused()
    assert _outline_width(button) >= 2
    page.keyboard.press("Enter")
    page.wait_for_url("**/my-day")

    # On every page the skip link comes first and lands in the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
