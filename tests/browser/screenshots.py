"""Screenshots of Foyer's pages at phone and desktop sizes, for looking at the design.

Run: .venv/bin/python -m tests.browser.screenshots [--full-page] [--bookings-only]
Writes screenshots/<page>-<phone|desktop>.png (the folder is git-ignored). The demo company is
loaded into a throwaway SQLite file and served on a free loopback port, as in the browser tests.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import HOLDING_STATUSES, Booking, BookingStatus, Desk, Room, Site
from portal.services import accounts, booking_rules, bookings, recurrence, series
from portal.services.audit import Actor
from portal.timezones import to_utc
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


# Booking pages ---------------------------------------------------------------------------------
COORDINATOR = "jonas.weber@example.com"  # coordinates Berlin
SERIES_TITLE = "Weekly planning"


def _next_weekday(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def arrange_bookings(app: Flask) -> dict[str, Any]:
    """Give Lena (the demo employee) a lived-in set of bookings to look at: a desk on a busy demo
    day, a weekly room series, a request waiting for approval and a released no-show; and put
    someone else in another room in week two, so that room's series preview shows a clash."""
    actor = Actor.system("screenshots")
    now = utcnow()
    _reader, writer = app.extensions["foyer.sessions"]
    with app.app_context(), writer() as s, s.begin():
        site = s.scalars(select(Site).where(Site.slug == "berlin")).one()
        zone = ZoneInfo(site.time_zone)
        lena = accounts.find_by_email(s, EMPLOYEE)
        jonas = accounts.find_by_email(s, COORDINATOR)
        assert lena is not None and jonas is not None
        busy = _next_weekday(now.astimezone(zone).date() + timedelta(days=1))  # a demo day
        quiet = _next_weekday(busy + timedelta(days=7))  # after the demo's week

        def at(day: date, clock: str) -> datetime:
            return to_utc(datetime.combine(day, time.fromisoformat(clock)), zone)

        desks = list(
            s.scalars(
                select(Desk)
                .where(Desk.site_id == site.id, Desk.active.is_(True))
                .order_by(Desk.floor_id, Desk.name)
            )
        )
        start, end = booking_rules.DESK_SLOTS["day"].bounds(
            site, booking_rules.policy_for(s, site), busy
        )
        # A desk of Lena's own on the plan: the demo's, or one booked here.
        mine = s.scalars(
            select(Booking)
            .join(Desk, Desk.id == Booking.resource_id)
            .where(
                Booking.user_id == lena.id,
                Booking.status.in_(HOLDING_STATUSES),
                Booking.start_at < end,
                start < Booking.end_at,
            )
        ).first()
        if mine is None:
            desk = next(d for d in desks if bookings.overlapping(s, d, start, end) is None)
            mine = bookings.book(
                s, actor, lena, resource_id=desk.id, start=start, end=end, now=now, notify=False
            )
        floor_id = mine.resource.floor_id
        rooms = list(
            s.scalars(
                select(Room)
                .where(Room.site_id == site.id, Room.needs_approval.is_(False))
                .order_by(Room.floor_id, Room.name)
            )
        )
        series_room, clash_room = rooms[1], rooms[2]
        restricted = s.scalars(
            select(Room).where(Room.site_id == site.id, Room.needs_approval.is_(True))
        ).first()
        series.create(
            s,
            actor,
            lena,
            resource=series_room,
            booker=lena,
            title=SERIES_TITLE,
            first_local=datetime.combine(quiet, time(17, 0)),
            duration=timedelta(minutes=45),
            repeat=recurrence.Repeat(
                "weekly", weekdays=(recurrence.WEEKDAYS[quiet.weekday()],), count=4
            ),
            skip=set(),
            now=now,
        )
        week_two = quiet + timedelta(days=7)
        bookings.book(
            s,
            actor,
            jonas,
            resource_id=clash_room.id,
            start=at(week_two, "12:00"),
            end=at(week_two, "13:00"),
            title="Hiring panel",
            now=now,
            notify=False,
        )
        bookings.book(
            s,
            actor,
            lena,
            resource_id=restricted.id,
            start=at(quiet, "10:00"),
            end=at(quiet, "12:00"),
            title="Quarterly review",
            now=now,
            notify=False,
        )
        # A meeting of Lena's on the timeline of the busy day (12:00 is free in the demo).
        with contextlib.suppress(RuleViolation), s.begin_nested():
            bookings.book(
                s,
                actor,
                lena,
                resource_id=rooms[0].id,
                start=at(busy, "12:00"),
                end=at(busy, "13:00"),
                title="Lunch & learn",
                now=now,
                notify=False,
            )
        # A no-show from last week, released, with its reason.
        past = now - timedelta(days=7)
        free = next(
            d for d in desks if bookings.overlapping(s, d, past, past + timedelta(hours=2)) is None
        )
        s.add(
            Booking(
                resource=free,
                user=lena,
                created_by=lena,
                start_at=past,
                end_at=past + timedelta(hours=2),
                blocked_until=past + timedelta(hours=2),
                status=BookingStatus.RELEASED,
                created_at=past - timedelta(days=1),
                status_reason="No check-in before the window closed.",
            )
        )
        # A desk booked from a few minutes ago, to check in to by its QR code.
        here = next(
            d
            for d in reversed(desks)
            if bookings.overlapping(s, d, now - timedelta(minutes=5), now + timedelta(hours=2))
            is None
        )
        s.add(
            Booking(
                resource=here,
                user=lena,
                created_by=lena,
                start_at=now - timedelta(minutes=5),
                end_at=now + timedelta(hours=2),
                blocked_until=now + timedelta(hours=2),
                status=BookingStatus.CONFIRMED,
                created_at=now - timedelta(days=1),
            )
        )
        s.flush()
        first_of_series = s.scalars(
            select(Booking)
            .where(Booking.user_id == lena.id, Booking.title == SERIES_TITLE)
            .order_by(Booking.start_at)
        ).first()
        assert first_of_series is not None
        return {
            "busy": busy,
            "quiet": quiet,
            "desk_floor": floor_id,
            "room_floor": rooms[0].floor_id,
            "clash_room": clash_room.id,
            "series_booking": first_of_series.id,
            "qr_code": here.qr_code,
        }


def shoot_whole(page, name: str, screen: str, full_page: bool) -> Path:
    """As shoot(), but a whole-page shot starts at the top: the sticky top bar stays on top."""
    if full_page:
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # any scrolling htmx started has finished
        page.evaluate("window.scrollTo(0, 0)")
    return shoot(page, name, screen, full_page)


def capture_bookings(base_url: str, app: Flask, full_page: bool) -> list[Path]:
    facts = arrange_bookings(app)
    day, later = facts["busy"], facts["quiet"]
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for screen in VIEWPORTS:
            context = new_context(browser, base_url, screen)
            page = context.new_page()
            sign_in(page, EMPLOYEE)
            page.goto(f"/desks/?site=berlin&floor={facts['desk_floor']}&date={day.isoformat()}")
            taken.append(shoot(page, "13-desk-map", screen, full_page))
            page.locator("#desk-map a[aria-label$='Book it.']").first.click()
            page.locator("#desk-panel form").wait_for()
            if not full_page:
                page.locator("#desk-panel").scroll_into_view_if_needed()
            taken.append(shoot_whole(page, "14-desk-confirm", screen, full_page))
            page.goto(
                f"/desks/?site=berlin&floor={facts['desk_floor']}&date={day.isoformat()}&view=list"
            )
            taken.append(shoot(page, "15-desk-list", screen, full_page))
            page.goto(
                f"/rooms/?site=berlin&date={day.isoformat()}&start=10:00&duration=60"
                "&attendees=6&equipment=display"
            )
            taken.append(shoot(page, "16-room-search", screen, full_page))
            page.goto(
                f"/rooms/timeline?site=berlin&floor={facts['room_floor']}&date={day.isoformat()}"
            )
            taken.append(shoot(page, "17-room-timeline", screen, full_page))
            page.goto(
                f"/rooms/{facts['clash_room']}/book?date={later.isoformat()}"
                "&start=12:00&duration=60"
            )
            page.get_by_label("Title").fill("Design review")
            page.locator("details.repeat > summary").click()
            page.get_by_label("Repeat", exact=True).select_option("weekly")
            page.get_by_label("Times").fill("4")
            page.locator("#room-booking button[type=submit]").click()
            page.locator(".series-preview").wait_for()
            if not full_page:
                page.locator(".series-preview").scroll_into_view_if_needed()
            taken.append(shoot_whole(page, "18-series-preview", screen, full_page))
            page.goto("/bookings/")
            taken.append(shoot(page, "19-my-bookings", screen, full_page))
            page.goto(f"/bookings/{facts['series_booking']}")
            taken.append(shoot(page, "20-booking-detail", screen, full_page))
            page.goto(f"/q/{facts['qr_code']}")
            taken.append(shoot(page, "22-qr-check-in", screen, full_page))
            context.close()

            context = new_context(browser, base_url, screen)
            page = context.new_page()
            sign_in(page, COORDINATOR)
            page.goto("/approvals/")
            taken.append(shoot(page, "21-approvals", screen, full_page))
            context.close()
        browser.close()
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-page", action="store_true", help="capture whole pages")
    parser.add_argument(
        "--bookings-only", action="store_true", help="only the booking pages (13 onwards)"
    )
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
            for path in [] if args.bookings_only else capture(base_url, args.full_page):
                print(path.relative_to(OUT.parent))
            for path in capture_bookings(base_url, app, args.full_page):
                print(path.relative_to(OUT.parent))
        finally:
            server.shutdown()
            server.server_close()
            app.extensions["foyer.engine"].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
