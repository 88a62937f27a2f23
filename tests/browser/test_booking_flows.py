"""Booking end to end in a real browser: a desk on the floor plan, a room from search, a weekly
series around a clash, QR check-in, a released no-show, and a coordinator's approval.

Data a test needs beforehand (a clash, a booking that is under way now) is written straight into
the live server's database through its own session factory; the server runs in a thread of this
process. Each test books at its own time of day, and the two screen sizes on different days (or
whatever desk, room or day is still free), so the tests pass in any order and at any time of day.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import HOLDING_STATUSES, Booking, BookingStatus, Desk, Room, User
from portal.services import bookings
from portal.services.audit import Actor
from portal.timezones import local_day_bounds, to_utc
from tests.browser.conftest import WATCH_CSP
from tests.browser.live import EMPLOYEE, berlin, new_context, person, sign_in, writing

pytestmark = pytest.mark.browser

COORDINATOR = "jonas.weber@example.com"  # coordinates Berlin, Lena's home site
ZONE = ZoneInfo("Europe/Berlin")
SCREEN_OFFSET = {"phone": 0, "desktop": 1}  # the two sizes book on different days


# Arranging data in the live server's database ------------------------------------------------


def working_day(index: int) -> date:
    """The index-th working day (0 = the first) at least two days ahead in Berlin: inside every
    booking horizon and after the demo's busiest days, whatever the time of day now."""
    day = datetime.now(ZONE).date() + timedelta(days=2)
    while day.weekday() >= 5 or index > 0:
        if day.weekday() < 5:
            index -= 1
        day += timedelta(days=1)
    return day


def at(day: date, clock: str) -> datetime:
    return to_utc(datetime.combine(day, time.fromisoformat(clock)), ZONE)


def has_desk_that_day(session: Session, user: User, day: date) -> bool:
    start, end = local_day_bounds(day, ZONE)
    return (
        session.scalar(
            select(Booking.id)
            .join(Desk, Desk.id == Booking.resource_id)
            .where(
                Booking.user_id == user.id,
                Booking.status.in_(HOLDING_STATUSES),
                Booking.start_at < end,
                start < Booking.end_at,
            )
            .limit(1)
        )
        is not None
    )


def free_desk(session: Session, start: datetime, end: datetime) -> Desk:
    """A bookable Berlin desk nobody holds between start and end."""
    for desk in session.scalars(
        select(Desk)
        .where(Desk.site_id == berlin(session).id, Desk.active.is_(True))
        .order_by(Desk.floor_id.desc(), Desk.name)
    ):
        if bookings.overlapping(session, desk, start, end) is None:
            return desk
    pytest.fail("no free desk in Berlin")


def insert_booking(
    session: Session, user: User, resource: Desk | Room, start: datetime, end: datetime, **fields
) -> Booking:
    """A booking row written directly, as if made yesterday: no opening-hour or horizon rules."""
    booking = Booking(
        resource=resource,
        user=user,
        created_by=user,
        start_at=start,
        end_at=end,
        blocked_until=end + timedelta(minutes=resource.buffer_minutes),
        status=BookingStatus.CONFIRMED,
        created_at=start - timedelta(days=1),
        **fields,
    )
    session.add(booking)
    session.flush()
    return booking


# Looking at pages ------------------------------------------------------------------------------
def flash(page: Page) -> Any:
    return page.locator("#flash")


def heading(page: Page) -> Any:
    return page.get_by_role("heading", level=1)


def assert_fits_the_screen(page: Page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def my_booking_items(page: Page, text: str) -> Any:
    page.goto("/bookings/")
    return page.locator(".booking-item").filter(has_text=text)


def second_page(chromium: Any, live_server: Any, screen: str, watchdog: Any) -> Any:
    """Another person's browser, watched like the `page` fixture's."""
    context = new_context(chromium, live_server.url, screen)
    context.set_default_timeout(5_000)
    context.expose_function("__foyerCspViolation", watchdog.csp_violation)
    context.add_init_script(WATCH_CSP)
    other = context.new_page()
    other.on("console", watchdog.on_console)
    other.on("pageerror", lambda error: watchdog.problems.append(f"script error: {error}"))
    return other


# (a) A desk in three clicks --------------------------------------------------------------------
def test_booking_a_desk_on_the_floor_plan_takes_three_clicks(page, live_app):
    with writing(live_app) as s:
        lena = person(s, EMPLOYEE)
        index = 0
        while has_desk_that_day(s, lena, working_day(index)):
            index += 1  # the demo (or the other screen size) already gave Lena a desk that day
        day = working_day(index)

    sign_in(page, EMPLOYEE)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Desks").click()
    expect(heading(page)).to_have_text("Book a desk")
    page.wait_for_load_state()  # htmx (a deferred script) is listening before the first change
    desk_map = page.locator("#desk-map")

    page.get_by_label("Day", exact=True).fill(day.isoformat())  # 1: the day
    expect(desk_map.get_by_role("heading", level=2)).to_contain_text(f"{day:%a %-d %b}")
    free = desk_map.get_by_role("link", name=re.compile(r"^Desk \S+, free.*Book it\.$"))
    expect(free.first).to_be_visible()
    label = free.first.get_attribute("aria-label")
    name = re.match(r"Desk (\S+),", label).group(1)

    free.first.click()  # 2: a free desk
    panel = page.locator("#desk-panel")
    expect(panel.get_by_role("heading", name=f"Desk {name}")).to_be_visible()
    expect(panel.get_by_role("radio", name="All day")).to_be_checked()
    page.evaluate("window.__samePage = true")
    panel.get_by_role("button", name=f"Book desk {name}").click()  # 3: confirm

    expect(flash(page)).to_contain_text(f"Desk {name} is yours for all day on {day:%A %-d %B}.")
    mine = desk_map.locator(".desk-mine")
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text(name)
    expect(mine).to_contain_text("✓ you")
    expect(mine.locator("title")).to_contain_text(f"Desk {name}: Your desk")
    expect(desk_map.locator(".count-mine")).to_have_text("1 yours")
    expect(
        desk_map.get_by_role("link", name=re.compile(rf"^Desk {re.escape(name)},"))
    ).to_have_count(0)
    assert page.evaluate("window.__samePage") is True, "the map was updated in place"
    expect(panel).to_contain_text(f"You have desk {name} all day on {day:%A %-d %B}.")
    expect(panel.get_by_role("button", name=f"Book desk {name}")).to_have_count(0)
    expect(page).to_have_url(re.compile(rf"date={day.isoformat()}"))
    assert_fits_the_screen(page)

    # The list view says the same in words.
    page.get_by_label("Show as").select_option("List")
    row = desk_map.get_by_role("row").filter(has=page.get_by_role("cell", name=name, exact=True))
    expect(row).to_contain_text("Your desk")


# (b) A room from search ------------------------------------------------------------------------
def test_booking_a_room_found_by_search(page, screen):
    day = working_day(SCREEN_OFFSET[screen])
    sign_in(page, EMPLOYEE)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Rooms").click()
    expect(heading(page)).to_have_text("Find a room")
    page.wait_for_load_state()

    page.get_by_label("Day", exact=True).fill(day.isoformat())
    page.get_by_label("From").fill("12:00")
    page.get_by_label("For", exact=True).select_option(label="30 minutes")
    page.get_by_label("People").fill("4")
    page.get_by_label("whiteboard").check()
    page.get_by_role("button", name="Search").click()

    results = page.get_by_role("region", name="Rooms")
    expect(results.get_by_role("heading", level=2)).to_have_text(
        re.compile(rf"^\d+ rooms? free {day:%a %-d %b} at 12:00$")
    )
    # Rooms that do not fit stay listed and say why.
    expect(
        results.get_by_role("listitem").filter(has_text="too small: seats 2").first
    ).to_be_visible()
    expect(results.get_by_role("listitem").filter(has_text="no whiteboard").first).to_be_visible()
    expect(page).to_have_url(re.compile(rf"date={day.isoformat()}"))
    assert_fits_the_screen(page)

    offer = results.get_by_role("link", name=re.compile(r"^Book ")).first
    room = offer.inner_text().removeprefix("Book ")
    offer.click()
    expect(heading(page)).to_have_text(f"Book {room}")
    expect(page.get_by_label("Day", exact=True)).to_have_value(day.isoformat())
    expect(page.get_by_label("Start")).to_have_value("12:00")
    expect(page.get_by_label("Minutes")).to_have_value("30")
    page.get_by_label("Title").fill(f"Team lunch ({screen})")
    page.get_by_role("button", name=f"Book {room}").click()

    page.wait_for_url(re.compile(r"/bookings/\d+$"))
    expect(flash(page)).to_contain_text(f"Booked {room}, {day:%a %-d %b} 12:00.")
    expect(heading(page)).to_contain_text(room)
    expect(heading(page).locator(".status")).to_have_text("Confirmed")
    expect(page.get_by_text(f"Team lunch ({screen})")).to_be_visible()
    assert_fits_the_screen(page)


# (c) A weekly series with one clashing week skipped --------------------------------------------
def test_a_weekly_series_skips_the_week_that_clashes(page, live_app, screen):
    first = working_day(SCREEN_OFFSET[screen])
    weeks = [first + timedelta(weeks=n) for n in range(3)]
    with writing(live_app) as s:
        rooms = s.scalars(
            select(Room)
            .where(Room.site_id == berlin(s).id, Room.active.is_(True))
            .where(Room.needs_approval.is_(False), Room.capacity >= 4)
            .order_by(Room.name)
        )
        room = next(
            r
            for r in rooms
            if all(
                bookings.overlapping(s, r, at(d, "17:30"), at(d, "18:00")) is None for d in weeks
            )
        )
        # Someone else has the room in week two.
        bookings.book(
            s,
            Actor.system("browser test"),
            person(s, COORDINATOR),
            resource_id=room.id,
            start=at(weeks[1], "17:30"),
            end=at(weeks[1], "18:00"),
            title="Already here",
            notify=False,
        )
        room_name, floor_id = room.name, room.floor_id

    title = f"Design crit ({screen})"
    sign_in(page, EMPLOYEE)
    # From the floor's day timeline: a free half-hour is a link to the booking form.
    page.goto(f"/rooms/timeline?site=berlin&floor={floor_id}&date={first.isoformat()}")
    expect(heading(page)).to_have_text("Rooms, day by day")
    assert_fits_the_screen(page)
    page.get_by_role("link", name=f"Book {room_name} at 17:30", exact=True).click()
    expect(heading(page)).to_have_text(f"Book {room_name}")

    page.get_by_label("Title").fill(title)
    page.locator("details.repeat > summary").click()
    page.get_by_label("Repeat", exact=True).select_option(label="Weekly")
    expect(page.get_by_label(f"{first:%a}", exact=True)).to_be_checked()
    page.get_by_label("Ends").select_option(label="After")
    page.get_by_label("Times").fill("3")
    page.get_by_role("button", name=f"Book {room_name}").click()

    preview = page.get_by_role("region", name=re.compile(r"^Repeats every week on"))
    expect(preview.get_by_role("heading")).to_contain_text("3 occurrences")
    expect(preview.get_by_role("alert")).to_contain_text("1 clash")
    occurrences = preview.get_by_role("listitem")
    expect(occurrences).to_have_count(3)
    clash = occurrences.filter(has_text=f"{weeks[1]:%a %-d %b %Y}, 17:30")
    expect(clash.get_by_role("checkbox", name="Skip")).to_be_checked()
    expect(clash).to_contain_text(f"{room_name} is already booked then")
    for week in (weeks[0], weeks[2]):
        fine = occurrences.filter(has_text=f"{week:%a %-d %b %Y}, 17:30")
        expect(fine.get_by_role("checkbox")).to_have_count(0)
        expect(fine).to_contain_text("✓")
    assert_fits_the_screen(page)

    page.get_by_role("button", name="Confirm 2 bookings").click()
    page.wait_for_url("**/bookings/")
    expect(flash(page)).to_contain_text(f"Booked {room_name} every week on {first:%a}, 3 times")
    expect(flash(page)).to_contain_text("skipping 1 date(s)")
    mine = page.locator(".booking-item").filter(has_text=title)
    expect(mine).to_have_count(2)
    expect(mine.nth(0)).to_contain_text(f"{weeks[0]:%a %-d %b %Y}, 17:30")
    expect(mine.nth(1)).to_contain_text(f"{weeks[2]:%a %-d %b %Y}, 17:30")
    for item in mine.all():
        expect(item).to_contain_text("Confirmed")
        expect(item).to_contain_text(f"repeats every week on {first:%a}")
    assert_fits_the_screen(page)


# (d) Check-in by scanning the QR code ----------------------------------------------------------
def test_scanning_the_qr_code_checks_in_after_signing_in(page, live_app):
    now = utcnow()
    with writing(live_app) as s:
        desk = free_desk(s, now - timedelta(minutes=5), now + timedelta(hours=2))
        insert_booking(
            s, person(s, EMPLOYEE), desk, now - timedelta(minutes=5), now + timedelta(hours=2)
        )
        code, name = desk.qr_code, desk.name

    # The code on the desk leads to the sign-in page and, once signed in, back to the check-in.
    page.goto(f"/q/{code}")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("Work e-mail").fill(EMPLOYEE)
    page.get_by_label("Password").fill("foyer-demo")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/q/{code}")
    expect(heading(page)).to_have_text("✓ Checked in")
    expect(page.get_by_text(f"You are checked in to desk {name}.")).to_be_visible()
    assert_fits_the_screen(page)

    # Scanning again changes nothing, and My bookings shows the check-in.
    page.reload()
    expect(heading(page)).to_have_text("✓ Checked in")
    item = my_booking_items(page, name).filter(has_text="Checked in")
    expect(item).to_have_count(1)
    item.get_by_role("link", name="Open").click()
    expect(heading(page).locator(".status")).to_have_text("Checked in")
    expect(page.get_by_text(re.compile(r"^✓ Checked in$"))).to_be_visible()


# (e) A no-show is released -------------------------------------------------------------------
def test_a_no_show_is_released_and_says_why(page, live_app, screen):
    """The app's own job (portal/jobs.py) runs release_no_shows every minute in the server's
    process; calling it here does the same work at once."""
    now = utcnow()
    title = f"Quiet morning ({screen})"
    with writing(live_app) as s:
        start, end = now - timedelta(minutes=30), now + timedelta(hours=1)
        desk = free_desk(s, start, end)
        booking = insert_booking(s, person(s, EMPLOYEE), desk, start, end, title=title)
        booking_id, name = booking.id, desk.name
    with writing(live_app) as s:
        bookings.release_no_shows(s, utcnow())
        assert s.get(Booking, booking_id).status == BookingStatus.RELEASED

    sign_in(page, EMPLOYEE)
    item = my_booking_items(page, title)
    expect(item).to_have_count(1)
    expect(item.locator(".status")).to_have_text("Released")
    assert_fits_the_screen(page)
    item.get_by_role("link", name="Open").click()
    expect(heading(page)).to_contain_text(name)
    expect(heading(page).locator(".status")).to_have_text("Released")
    expect(page.get_by_text("No check-in before the window closed.")).to_be_visible()
    # Nothing to do with a released booking: no check-in, no cancel, no change.
    expect(page.get_by_role("button", name=re.compile("Check in|Cancel|End now"))).to_have_count(0)
    expect(page.get_by_role("heading", name="Change time or place")).to_have_count(0)


# (f) A coordinator approves a restricted room ------------------------------------------------
def test_a_coordinator_approves_a_restricted_room(page, chromium, live_server, watchdog, screen):
    day = working_day(SCREEN_OFFSET[screen])
    title = f"Board prep ({screen})"
    sign_in(page, EMPLOYEE)
    page.goto("/rooms/")
    page.get_by_label("Day", exact=True).fill(day.isoformat())
    page.get_by_label("From").fill("18:00")
    page.get_by_label("For", exact=True).select_option(label="30 minutes")
    page.get_by_label("People").fill("16")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("region", name="Rooms")
    expect(results.get_by_role("heading", level=2)).to_contain_text(f"{day:%a %-d %b} at 18:00")
    offer = results.get_by_role("link", name=re.compile(r"^Request ")).first
    room = offer.inner_text().removeprefix("Request ")
    offered = results.get_by_role("listitem").filter(
        has=page.get_by_role("link", name=f"Request {room}", exact=True)
    )
    expect(offered.get_by_text("needs a coordinator's approval")).to_be_visible()
    offer.click()

    expect(heading(page)).to_have_text(f"Request {room}")
    expect(page.get_by_text("Needs approval", exact=True)).to_be_visible()
    page.get_by_label("Title").fill(title)
    page.get_by_role("button", name="Send request").click()
    page.wait_for_url(re.compile(r"/bookings/\d+$"))
    detail_url = page.url
    expect(flash(page)).to_contain_text(f"Requested {room}, {day:%a %-d %b} 18:00.")
    expect(heading(page).locator(".status")).to_have_text("Pending")
    expect(page.get_by_text("Waiting for a coordinator's approval.")).to_be_visible()

    coordinator = second_page(chromium, live_server, screen, watchdog)
    try:
        sign_in(coordinator, COORDINATOR)
        nav = coordinator.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Inbox").click()
        tabs = coordinator.get_by_role("navigation", name="Service desk")
        tabs.get_by_role("link", name="Room approvals").click()
        expect(heading(coordinator)).to_have_text("Approvals")
        pending = coordinator.locator(".booking-item").filter(has_text=title)
        expect(pending).to_contain_text(f"{room} · Berlin · requested by Lena Fischer")
        expect(pending).to_contain_text(f"{day:%a %-d %b %Y}, 18:00")
        assert_fits_the_screen(coordinator)
        pending.get_by_role("button", name="Approve").click()
        coordinator.wait_for_url("**/approvals/")
        expect(flash(coordinator)).to_contain_text(f"Approved: {room} for Lena Fischer.")
        expect(coordinator.locator(".booking-item").filter(has_text=title)).to_have_count(0)
    finally:
        coordinator.context.close()

    page.goto(detail_url)
    expect(heading(page).locator(".status")).to_have_text("Confirmed")
    expect(page.get_by_text("Waiting for a coordinator's approval.")).to_have_count(0)
    expect(my_booking_items(page, title).locator(".status")).to_have_text("Confirmed")
