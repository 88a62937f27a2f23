"""Four journeys with the keyboard alone (issue 8): an employee books a desk and reports a facility
issue, a coordinator approves a request in the inbox, and a walk-in visitor checks in at the
kiosk. Only Tab, Shift+Tab, Enter, Space, arrow keys and typing: no clicks, no focus() calls
(a journey starts from an address, as from a bookmark).

At every focus stop on the way the focus must be visible (see `assert_focus_visible`). Two
further checks: the desk states on the floor plan are told apart by text and pattern, not colour
alone; and with "reduce motion" asked for, animations and transitions are off.

The journeys run at desktop size (1280x800) on the session's shared live server, watched like
every browser test (console errors, CSP violations and server errors fail them).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import (
    Booking,
    BookingStatus,
    CatalogItem,
    Desk,
    Site,
    Ticket,
    User,
)
from portal.services import bookings, kiosk_devices, requests
from portal.services.audit import Actor
from portal.services.demo_service_desk import seed_service_desk
from portal.timezones import local_day_bounds
from tests.browser.conftest import WATCH_CSP
from tests.browser.live import EMPLOYEE, PASSWORD, berlin, htmx_settled, person, writing
from tests.browser.test_booking_flows import has_desk_that_day

pytestmark = pytest.mark.browser

COORDINATOR = "jonas.weber@example.com"  # coordinates Berlin, Lena's home site
BERLIN = ZoneInfo("Europe/Berlin")
SYSTEM = Actor.system("keyboard-tests")
MAX_TABS = 250  # a floor plan has dozens of desks between the filters and the booking panel


@pytest.fixture
def screen() -> str:
    """Keyboard journeys are a desktop matter: one size (overrides conftest's two)."""
    return "desktop"


# Focus -----------------------------------------------------------------------------------------
# What has focus now, and whether it shows: an outline or box-shadow in a colour that is not
# transparent, on the element itself, or, for a visually hidden radio or checkbox, on the tile
# drawn beside it or the label around it. A link on the SVG floor plan shows focus as its desk's
# stroke in the focus colour (an outline around an SVG group is not drawn reliably); a date
# field's picker button is the browser's own.
FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const focusColour = getComputedStyle(document.documentElement).getPropertyValue('--c-focus');
  const opaque = (colour) => {
    const m = colour.match(/rgba?\\(([^)]*)\\)/g) || [];
    return m.some((c) => { const p = c.replace(/rgba?\\(|\\)/g, '').split(/[ ,\\/]+/).filter(Boolean);
                           return p.length < 4 || parseFloat(p[3]) > 0; });
  };
  const rings = (node) => {
    const s = getComputedStyle(node);
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 && opaque(s.outlineColor);
    const shadow = s.boxShadow !== 'none' && opaque(s.boxShadow);
    return outline || shadow;
  };
  const hex = (rgb) => '#' + (rgb.match(/\\d+/g) || []).slice(0, 3)
      .map((n) => Number(n).toString(16).padStart(2, '0')).join('');
  // Inside a date or time field, Tab also stops on the browser's own picker button, in the
  // field's built-in shadow tree (the page cannot style it; Chromium draws its ring).
  if (/^(date|time|datetime-local|month|week)$/.test(el.type) && !el.matches(':focus')) {
    return {visible: true, name: 'browser picker', html: el.outerHTML.slice(0, 160)};
  }
  const style = getComputedStyle(el);
  const hidden = parseFloat(style.opacity) === 0 || el.getBoundingClientRect().width <= 1;
  // A ring on an invisible input is no ring: then only the tile beside it counts.
  const standIns = [el.nextElementSibling, el.closest('label')].filter(Boolean);
  let visible = hidden ? standIns.some(rings) : rings(el);
  if (!visible && el instanceof SVGElement) {
    const shape = el.querySelector('rect');
    visible = !!shape && hex(getComputedStyle(shape).stroke) === focusColour.trim().toLowerCase();
  }
  const label = el.getAttribute('aria-label') || (el.labels && el.labels[0] && el.labels[0].textContent)
      || el.textContent || el.value || '';
  return {visible, name: label.trim().replace(/\\s+/g, ' ').slice(0, 100),
          html: el.outerHTML.slice(0, 160)};
}"""


class Keyboard:
    """Moves the focus with the keyboard and checks, at every stop, that it can be seen."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.stops = 0

    def focused(self) -> dict[str, Any] | None:
        return self.page.evaluate(FOCUS_STATE)

    def assert_focus_visible(self) -> dict[str, Any]:
        """The focused element shows its focus (waiting out a short transition)."""
        state = None
        for _ in range(10):
            state = self.focused()
            assert state is not None, f"{self.page.url}: the focus fell back to the page"
            if state["visible"]:
                self.stops += 1
                return state
            self.page.wait_for_timeout(50)
        pytest.fail(f"{self.page.url}: focus not visible on {state['html']}", pytrace=False)

    def press(self, key: str) -> dict[str, Any]:
        self.page.keyboard.press(key)
        return self.assert_focus_visible()

    def tab_to(self, selector: str, backwards: bool = False) -> dict[str, Any]:
        """Tab (or Shift+Tab) until the focus is on an element matching `selector`."""
        key = "Shift+Tab" if backwards else "Tab"
        for _ in range(MAX_TABS):
            self.page.keyboard.press(key)
            if self.focused() is None:
                continue  # past the last element: the browser's own controls, then round again
            state = self.assert_focus_visible()
            if self.page.evaluate("(s) => document.activeElement.matches(s)", selector):
                return state
        pytest.fail(f"{self.page.url}: {MAX_TABS} x {key} never reached {selector}", pytrace=False)

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)

    def sign_in(self, email: str) -> None:
        self.page.goto("/sign-in")
        self.tab_to("input[type=email], input[name=email]")
        self.type(email)
        self.tab_to("input[type=password]")
        self.type(PASSWORD)
        self.page.keyboard.press("Enter")
        self.page.wait_for_url("**/my-day")
        self.page.wait_for_load_state()


# Arranging data ------------------------------------------------------------------------------


def day_without_a_desk(session: Session, user: User) -> date:
    """A working day, a week or more ahead (clear of the booking-flow tests' days), on which
    `user` holds no desk yet."""
    day = datetime.now(BERLIN).date() + timedelta(days=7)
    while day.weekday() >= 5 or has_desk_that_day(session, user, day):
        day += timedelta(days=1)
    return day


# (a) An employee books a desk ------------------------------------------------------------------
def test_an_employee_books_a_desk_with_the_keyboard(page: Page, live_app: Flask) -> None:
    with writing(live_app) as s:
        day = day_without_a_desk(s, person(s, EMPLOYEE))
    keys = Keyboard(page)
    keys.sign_in(EMPLOYEE)
    keys.tab_to("nav a[href^='/desks']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/desks/**")
    page.wait_for_load_state()
    # The day: a bookmark-like address would do, but the date field takes typed digits too.
    page.goto(f"/desks/?site=berlin&date={day.isoformat()}")
    page.wait_for_load_state()
    desk = keys.tab_to("#desk-map a[aria-label$='Book it.']")
    name = re.match(r"Desk (\S+),", desk["name"]).group(1)
    page.keyboard.press("Enter")
    panel = page.locator("#desk-panel")
    expect(panel.get_by_role("heading", name=f"Desk {name}")).to_be_visible()
    htmx_settled(page)
    button = keys.tab_to("#desk-panel button.btn-primary[type=submit]")
    assert button["name"] == f"Book desk {name}"
    page.keyboard.press("Enter")
    expect(page.locator("#flash")).to_contain_text(f"Desk {name} is yours")
    expect(page.locator("#desk-map .desk-mine")).to_contain_text(name)


# (b) An employee reports a facility issue ------------------------------------------------------
def test_an_employee_reports_a_facility_issue_with_the_keyboard(
    page: Page, live_app: Flask
) -> None:
    keys = Keyboard(page)
    keys.sign_in(EMPLOYEE)
    page.goto("/issues/new")
    page.wait_for_load_state()
    # 1. What: the first category's radio, then the arrow keys move through the group.
    keys.tab_to("input[name=category]")
    keys.press("ArrowRight")
    category = page.evaluate("document.activeElement.value")
    expect(page.locator(f"input[name=category][value='{category}']")).to_be_checked()
    # 2. Where: the office, chosen with the arrow keys; htmx then offers its floors.
    keys.tab_to("#issue-site")
    with page.expect_response(re.compile(r"/issues/new/place")):
        page.keyboard.press("ArrowDown")  # from "Choose an office" to the first office
    htmx_settled(page)
    keys.tab_to("#issue-floor")
    with page.expect_response(re.compile(r"/issues/new/place")):
        page.keyboard.press("ArrowDown")
    htmx_settled(page)
    # 3. What happened, and how urgent (a radio group: arrow keys).
    keys.tab_to("textarea[name=description]")
    title = "Keyboard report: the window by the lifts does not close"
    keys.type(title)
    keys.tab_to("input[name=priority]")
    keys.press("ArrowRight")
    keys.tab_to("button.iform-submit")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/issues/\d+$"))
    expect(page.get_by_text(title).first).to_be_visible()
    number = int(page.url.rsplit("/", 1)[1])
    with writing(live_app) as s:
        ticket = s.get(Ticket, number)
        assert ticket is not None and ticket.kind == "issue" and ticket.category == category
        assert ticket.requester.email == EMPLOYEE


# (c) A coordinator approves a request in the inbox -------------------------------------------
def a_request_waiting_for_approval(app: Flask) -> str:
    """Lena asks for an item that needs approval at Berlin; returns the request's number."""
    uploads = Path(app.extensions["foyer.settings"].instance_path) / "uploads"
    with writing(app) as s:
        seed_service_desk(s, utcnow(), uploads)  # idempotent: the catalog, stock and vendors
    with writing(app) as s:
        lena = person(s, EMPLOYEE)
        for item in s.scalars(select(CatalogItem).where(CatalogItem.active.is_(True))):
            if requests.needs_approval(item, 1, item.price_cents):
                break
        else:
            pytest.fail("the demo catalog has no item that needs approval")
        submitted = requests.submit(
            s,
            SYSTEM,
            lena,
            site=berlin(s),
            lines=[(item.id, 1)],
            delivery="pickup",
            note="keyboard journey",
            now=utcnow(),
        )
        assert [line.status for line in submitted.ticket.lines] == ["pending"]
        return submitted.ticket.number


def test_a_coordinator_approves_a_request_in_the_inbox_with_the_keyboard(
    page: Page, live_app: Flask
) -> None:
    number = a_request_waiting_for_approval(live_app)
    keys = Keyboard(page)
    keys.sign_in(COORDINATOR)
    keys.tab_to("nav a[href^='/inbox']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/inbox/**")
    page.wait_for_load_state()
    keys.tab_to("#f-q")
    keys.type(number)
    with page.expect_response(re.compile(r"/inbox/")):
        page.keyboard.press("Enter")
    htmx_settled(page)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=number, exact=True))
    expect(row).to_have_count(1)
    keys.tab_to(f"input[type=checkbox][aria-label='Select {number}']")
    keys.press("Space")
    expect(row.get_by_role("checkbox")).to_be_checked()
    keys.tab_to("button[name=action][value=approve]", backwards=True)
    page.keyboard.press("Enter")
    expect(page.locator("#inbox-queue")).to_contain_text("1 approved")
    with writing(live_app) as s:
        ticket = s.scalars(select(Ticket).where(Ticket.kind == "request")).all()
        mine = next(t for t in ticket if t.number == number)
        assert [line.status for line in mine.lines] in (["approved"], ["backordered"])


# (d) A walk-in checks in at the kiosk ----------------------------------------------------------
def a_kiosk_without_an_agreement(app: Flask) -> tuple[str, str]:
    """A kiosk at the site without a visitor agreement (New York in the demo), no photo asked.
    Returns (pairing code, host name)."""
    return a_kiosk(app, with_agreement=False)


def a_kiosk(app: Flask, *, with_agreement: bool) -> tuple[str, str]:
    from portal.services import visitors

    with writing(app) as s:
        sites = select(Site).order_by(Site.id)
        site = s.scalars(
            sites.where(Site.slug == "berlin" if with_agreement else Site.slug != "berlin")
        ).first()
        assert site is not None
        if not with_agreement:
            assert visitors.current_agreement(s, site) is None, "this site asks for no agreement"
        elif visitors.current_agreement(s, site) is None:
            visitors.publish_agreement(
                s, SYSTEM, site, title="Visitor agreement", body="Keep what you see confidential."
            )
        site.visitor_photo = False
        _device, code = kiosk_devices.create(s, SYSTEM, site, "Keyboard lobby", now=utcnow())
        host = s.scalars(
            select(User)
            .where(User.home_site_id == site.id, User.active.is_(True))
            .order_by(User.id)
        ).first()
        assert host is not None
        return code, host.name


def test_a_walk_in_checks_in_at_the_kiosk_with_the_keyboard(
    chromium: Any, live_server: Any, watchdog: Any, page: Page, live_app: Flask
) -> None:
    """Including the visitor agreement: the drawn signature needs a dragging movement, so the
    visitor signs with the typed name alone (WCAG 2.5.7), all by keyboard."""
    code, host = a_kiosk(live_app, with_agreement=True)
    tablet = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 800}, locale="en-US"
    )
    tablet.set_default_timeout(10_000)
    tablet.expose_function("__foyerCspViolation", watchdog.csp_violation)
    tablet.add_init_script(WATCH_CSP)
    kiosk = tablet.new_page()
    kiosk.on("console", watchdog.on_console)
    kiosk.on("pageerror", lambda error: watchdog.problems.append(f"script error: {error}"))
    try:
        keys = Keyboard(kiosk)
        kiosk.goto("/kiosk/")
        keys.tab_to("#f-code")
        keys.type(code.replace("-", ""))
        kiosk.keyboard.press("Enter")
        expect(kiosk.locator(".screen-welcome")).to_be_visible()
        keys.tab_to("a[href$='/kiosk/walk-in']")
        kiosk.keyboard.press("Enter")
        expect(kiosk.locator(".screen-details")).to_be_visible()
        htmx_settled(kiosk)
        keys.tab_to("#f-name")
        keys.type("Kim Keyboard")
        keys.tab_to("#f-company")
        keys.type("Tab & Enter Ltd")
        keys.tab_to("#f-host-query")
        first_name = host.split()[0]
        keys.type(first_name[:4].lower())
        option = kiosk.locator(".host-option").filter(has_text=host).first
        expect(option).to_be_visible()
        htmx_settled(kiosk)
        keys.tab_to("input[type=radio][name=host_id], .host-option input")
        while not kiosk.evaluate(
            "(h) => document.activeElement.closest('.host-option')?.textContent.includes(h)", host
        ):
            keys.press("ArrowDown")
        keys.press("Space")
        expect(kiosk.get_by_role("radio", name=re.compile(re.escape(host)))).to_be_checked()
        keys.tab_to("#f-purpose")
        keys.type("Keyboard test")
        keys.tab_to("button[type=submit]:not([name=back])")
        kiosk.keyboard.press("Enter")
        expect(kiosk.locator(".screen-agreement")).to_be_visible()
        keys.tab_to("#f-signed_name")
        keys.type("Kim Keyboard")
        keys.tab_to("#f-typed-signature")
        keys.press("Space")
        expect(kiosk.locator("#f-typed-signature")).to_be_checked()
        expect(kiosk.locator(".signature-pad")).to_be_hidden()  # no box left to draw in
        keys.tab_to("button[type=submit]:not([name=back])")
        kiosk.keyboard.press("Enter")
        expect(kiosk.get_by_role("heading", level=1)).to_have_text("Welcome, Kim.")
        expect(kiosk.get_by_text(f"{host} knows you're here.")).to_be_visible()
        assert keys.stops > 5
    finally:
        tablet.close()


# No information by colour alone ----------------------------------------------------------------
def test_desk_states_on_the_floor_plan_differ_by_text_and_pattern(page: Page, live_app: Flask):
    """Each state of a desk has words (its title, the link's name, the list's status) and a
    mark or pattern of its own, so nobody needs to tell green from red."""
    with writing(live_app) as s:
        lena, jonas = person(s, EMPLOYEE), person(s, COORDINATOR)
        day = day_without_a_desk(s, lena)
        start, end = local_day_bounds(day, BERLIN)
        # Someone else's desk that day, so the plan shows free and taken desks side by side.
        desk = next(
            d
            for d in s.scalars(
                select(Desk)
                .where(Desk.site_id == berlin(s).id, Desk.active.is_(True))
                .order_by(Desk.id)
            )
            if bookings.overlapping(s, d, start, end) is None
        )
        s.add(
            Booking(
                resource=desk,
                user=jonas,
                created_by=jonas,
                start_at=start,
                end_at=end,
                blocked_until=end,
                status=BookingStatus.CONFIRMED,
                created_at=start - timedelta(days=1),
            )
        )
        floor = desk.floor_id
    Keyboard(page).sign_in(EMPLOYEE)
    page.goto(f"/desks/?site=berlin&floor={floor}&date={day.isoformat()}")
    plan = page.locator("#desk-map svg.floorplan")
    free = plan.locator("a .desk-free")
    taken = plan.locator(".desk-taken")
    expect(free.first).to_be_visible()
    # Free desks are links whose names say so; taken ones say so in their title and mark.
    names = plan.locator("a[aria-label]").evaluate_all("(links) => links.map(l => l.ariaLabel)")
    assert names and all(re.match(r"^Desk \S+, free.*Book it\.$", n) for n in names), names[:3]
    states = plan.locator("g.desk").evaluate_all(
        """(desks) => desks.map(d => ({
             state: [...d.classList].find(c => c.startsWith('desk-') && c !== 'desk-team'),
             title: d.querySelector('title').textContent,
             mark: d.querySelector('.desk-mark').textContent.trim(),
             fill: getComputedStyle(d.querySelector('rect')).fill}))"""
    )
    by_state: dict[str, set[tuple[str, str]]] = {}
    for desk in states:
        label = desk["title"].split(":", 1)[1].strip().split(" (")[0]
        by_state.setdefault(desk["state"], set()).add((label, desk["mark"]))
    assert {"desk-free", "desk-taken"} <= set(by_state), by_state.keys()
    # Different states never share a label: the words alone tell them apart.
    labels = {state: {label for label, _mark in pairs} for state, pairs in by_state.items()}
    for state, words in labels.items():
        for other, other_words in labels.items():
            if state != other:
                assert not words & other_words, (
                    f"{state} and {other} both say {words & other_words}"
                )
    # Taken desks are hatched (a pattern), free ones are not.
    if taken.count():
        assert "url(" in page.evaluate(
            "getComputedStyle(document.querySelector('#desk-map .desk-taken rect')).fill"
        )
    # The legend names each state in words next to its swatch.
    legend = page.get_by_role("list", name="Legend")
    for words in ("Free", "Taken", "Yours", "Unavailable"):
        expect(legend).to_contain_text(words)
    # The list view says the same in words, in a Status column.
    page.goto(f"/desks/?site=berlin&floor={floor}&date={day.isoformat()}&view=list")
    statuses = {text.strip() for text in page.locator(".desk-table .state").all_inner_texts()}
    assert {label for label, _mark in by_state["desk-free"]} <= statuses, statuses
    assert {label for label, _mark in by_state["desk-taken"]} <= statuses, statuses


# Reduced motion --------------------------------------------------------------------------------
def durations(page: Page, selector: str) -> list[dict[str, str]]:
    return page.locator(selector).evaluate_all(
        """(els) => els.map(e => { const s = getComputedStyle(e);
             return {what: e.className.baseVal ?? e.className, animation: s.animationName,
                     animationDuration: s.animationDuration, transition: s.transitionDuration}; })"""
    )


def moving(found: list[dict[str, str]]) -> list[dict[str, str]]:
    def seconds(value: str) -> float:
        # "" for an element that left the document while its style was read: it moves nothing.
        parts = [v.strip() for v in value.split(",") if v.strip()]
        return max(
            (float(v[:-2]) / 1000 if v.endswith("ms") else float(v[:-1]) for v in parts),
            default=0.0,
        )

    return [
        d
        for d in found
        if (d["animation"] != "none" and seconds(d["animationDuration"]) > 0.01)
        or seconds(d["transition"]) > 0.01
    ]


def test_reduced_motion_turns_animations_and_transitions_off(
    chromium: Any, live_server: Any, live_app: Flask
) -> None:
    """With "reduce motion" asked for, nothing that moves does: the kiosk's spinners and screen
    changes, the portal's buttons and panels."""
    code, _host = a_kiosk_without_an_agreement(live_app)
    checked = 0
    for motion, expect_moving in (("reduce", False), ("no-preference", True)):
        context = chromium.new_context(
            base_url=live_server.url,
            viewport={"width": 1280, "height": 800},
            locale="en-US",
            reduced_motion=motion,
        )
        try:
            page = context.new_page()
            Keyboard(page).sign_in(EMPLOYEE)
            page.goto("/desks/")
            found = durations(page, "button, a, .btn, .card, .desk, .spinner, details, summary")
            page.goto("/kiosk/")
            if motion == "reduce":
                page.fill("#f-code", code)
                page.keyboard.press("Enter")
                page.locator(".screen-welcome").wait_for()
            found += durations(page, "*")
            checked += len(found)
            if expect_moving:
                # Control: without the preference something does move, so the check can fail.
                assert moving(found), "nothing animates even without reduced motion"
            else:
                assert moving(found) == [], moving(found)[:5]
        finally:
            context.close()
    assert checked > 50
