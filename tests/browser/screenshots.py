"""Screenshots of Foyer's pages at phone and desktop sizes, for looking at the design.

Run: .venv/bin/python -m tests.browser.screenshots [--full-page]
     [--bookings-only | --visitors-only | --service-desk-only | --kiosk-only]
Writes screenshots/<page>-<phone|desktop>.png (the folder is git-ignored), and every step of the
lobby kiosk at tablet sizes as screenshots/kiosk-<NN>-<step>-<landscape|portrait>.png, with a
rendered badge label as screenshots/kiosk-badge-label.png. The demo company is loaded into a
throwaway SQLite file and served on a free loopback port, as in the browser tests.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import subprocess
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
    CHROMIUM_ARGS,
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


# Visitors and the lobby ---------------------------------------------------------------------
VISITOR_SHOTS = Path("/tmp/portal-visitor-shots")


def _signature_data_url() -> str:
    """A drawn signature, as the kiosk's signature pad sends it."""
    import base64
    import io
    import math

    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (900, 300), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    points = [
        (60 + x * 2.6, 170 - 60 * math.sin(x / 23) * math.exp(-x / 420) - (x % 97) * 0.25)
        for x in range(0, 300)
    ]
    draw.line(points, fill=(20, 24, 40, 255), width=7, joint="curve")
    draw.line(
        [(600, 120), (640, 210), (700, 110), (760, 200), (820, 150)],
        fill=(20, 24, 40, 255),
        width=6,
        joint="curve",
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _photo_data_url() -> str:
    import base64
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 480), (214, 226, 222))
    draw = ImageDraw.Draw(image)
    draw.ellipse((160, 90, 320, 250), fill=(176, 132, 104))
    draw.ellipse((90, 270, 390, 600), fill=(46, 84, 122))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def arrange_visitors(app: Flask) -> dict[str, Any]:
    """The demo's lobby (agreements, kiosks) plus a lived-in visitor day at Berlin: Lena's
    visitors today, later and in the past (one checked in with signature and photo), a busy log,
    employees checked in for the roll call, notices for Lena, a deny list and kiosks in every
    state."""
    from portal.models import BadgeState, KioskDevice, User, Visit, VisitStatus
    from portal.services import demo_visitors, kiosk_devices, notices, visitors

    actor = Actor.system("screenshots")
    now = utcnow()
    _reader, writer = app.extensions["foyer.sessions"]
    with app.app_context(), writer() as s, s.begin():
        demo_visitors.seed_visitors(s, now)
        site = s.scalars(select(Site).where(Site.slug == "berlin")).one()
        zone = ZoneInfo(site.time_zone)
        today = now.astimezone(zone).date()
        lena = accounts.find_by_email(s, EMPLOYEE)
        jonas = accounts.find_by_email(s, COORDINATOR)
        assert lena is not None and jonas is not None
        site.visitor_photo = True
        lobby = s.scalars(select(KioskDevice).where(KioskDevice.site_id == site.id)).first()
        if not lobby.is_paired:
            code = kiosk_devices.new_pairing_code(s, actor, lobby, now=now)
            kiosk_devices.pair(s, code, now=now)
        lobby.printer_uri = "socket://192.0.2.40:9100"
        lobby.label_stock = "62x100"
        lobby.last_seen_at = now - timedelta(minutes=2)
        side, _code = kiosk_devices.create(s, actor, site, "Courtyard entrance", now=now)
        old, old_code = kiosk_devices.create(s, actor, site, "Old reception iPad", now=now)
        kiosk_devices.pair(s, old_code, now=now - timedelta(days=40))
        old.last_seen_at = now - timedelta(days=12)
        kiosk_devices.revoke(s, actor, old, now=now - timedelta(days=3))

        people = list(
            s.scalars(select(User).where(User.home_site_id == site.id).order_by(User.name))
        )
        hosts = [p for p in people if p.id not in (lena.id,)][:12]

        def visit(name, company, email, host, day_offset, start, hours, status, **extra):
            day = today + timedelta(days=day_offset)
            begin = to_utc(datetime.combine(day, time.fromisoformat(start)), zone)
            v = Visit(
                site_id=site.id,
                host_id=host.id,
                kind=extra.pop("kind", "invited"),
                status=status,
                visitor_name=name,
                visitor_email=email,
                visitor_company=company,
                name_key=visitors.name_key(name),
                email_key=visitors.email_key(email),
                expected_start=begin,
                expected_end=begin + timedelta(hours=hours),
                local_date=day,
                created_by_id=host.id,
                created_at=begin - timedelta(days=3),
                **extra,
            )
            if status in (VisitStatus.CHECKED_IN, VisitStatus.CHECKED_OUT):
                v.checked_in_at = v.checked_in_at or begin + timedelta(minutes=4)
                v.checked_in_device_id = lobby.id
            if status == VisitStatus.CHECKED_OUT:
                v.checked_out_at = v.checked_in_at + timedelta(hours=hours - 0.5)
                v.checkout_method = "kiosk"
            s.add(v)
            s.flush()
            return v

        # Lena's own visitors: the demo's expected ones (when the day allows), one of them in
        in_now = now - timedelta(minutes=47)
        star = s.scalars(
            select(Visit).where(
                Visit.host_id == lena.id,
                Visit.local_date == today,
                Visit.visitor_name == "Anna Kowalski",
            )
        ).first()
        if star is None:
            star = visit(
                "Anna Kowalski",
                "Nordlicht Design",
                "anna.kowalski@example.org",
                lena,
                0,
                in_now.astimezone(zone).strftime("%H:%M"),
                3,
                VisitStatus.EXPECTED,
            )
        star.status = VisitStatus.CHECKED_IN
        star.checked_in_at = in_now
        star.checked_in_device_id = lobby.id
        star.code_hash = None
        star.badge_state = BadgeState.PRINTED
        agreement = visitors.current_agreement(s, site)
        star.agreement_id = agreement.id
        star.signed_name = "Anna Kowalski"
        star.signed_at = in_now + timedelta(minutes=1)
        from portal.models import VisitImage
        from portal.services.visitors import _image_from_data_url

        s.add(
            VisitImage(
                visit_id=star.id,
                kind="signature",
                **_image_from_data_url(_signature_data_url(), "PNG", 400_000, (1200, 600)),
            )
        )
        s.add(
            VisitImage(
                visit_id=star.id,
                kind="photo",
                **_image_from_data_url(_photo_data_url(), "JPEG", 3_000_000, (800, 800)),
            )
        )
        visit(
            "Rafael Souza",
            "Brightline Studio",
            "rafael@brightline.example",
            lena,
            2,
            "10:00",
            2,
            VisitStatus.EXPECTED,
        )
        visit(
            "Jonathan Okoye",
            "Brightwater Capital",
            "j.okoye@example.com",
            lena,
            6,
            "14:30",
            1,
            VisitStatus.EXPECTED,
        )
        visit(
            "Sara Lindqvist",
            "Nordic Audit AB",
            "sara@nordic-audit.example",
            lena,
            -3,
            "09:30",
            4,
            VisitStatus.CHECKED_OUT,
        )
        visit(
            "Karim Haddad",
            "",
            "karim.haddad@example.org",
            lena,
            -8,
            "11:00",
            1,
            VisitStatus.CANCELLED,
        )

        # The rest of Berlin's lobby today
        names = [
            ("Lukas Brenner", "Brenner Bau", VisitStatus.CHECKED_IN),
            ("Chiara Russo", "Studio Russo", VisitStatus.CHECKED_IN),
            ("David Kim", "Kim & Partner", VisitStatus.CHECKED_OUT),
            ("Fatima Zahra", "Atlas Logistics", VisitStatus.CHECKED_IN),
            ("Olivia Grant", "Grant Legal LLP", VisitStatus.EXPECTED),
            ("Pieter de Vries", "Delta Energy", VisitStatus.CHECKED_OUT),
            ("Hiroshi Tanaka", "Tanaka Robotics", VisitStatus.EXPECTED),
            ("Marek Nowak", "", VisitStatus.DENIED),
        ]
        for n, (name, company, status) in enumerate(names):
            host = hosts[n % len(hosts)]
            email = name.lower().replace(" ", ".") + "@example.org"
            visit(
                name,
                company,
                email,
                host,
                0,
                f"{9 + n % 7:02d}:{(n * 15) % 60:02d}",
                2,
                status,
                kind="walk_in" if n % 3 == 2 else "invited",
            )
        for back in range(1, 25):
            host = hosts[back % len(hosts)]
            visit(
                f"Guest {back:02d} Example",
                "Various GmbH",
                f"guest{back}@example.org",
                host,
                -back // 3 - 1,
                "10:00",
                2,
                VisitStatus.CHECKED_OUT,
            )
        visitors.add_deny_entry(
            s, actor, site=site, name="Marek Nowak", email="", reason="Trespass notice, March 2026"
        )
        visitors.add_deny_entry(
            s,
            actor,
            site=None,
            name="",
            email="phish@badactor.example",
            reason="Impersonated a courier",
        )

        # Employees checked in to desks today, for the roll call
        desks = list(s.scalars(select(Desk).where(Desk.site_id == site.id).order_by(Desk.name)))
        taken = {
            b.resource_id
            for b in s.scalars(
                select(Booking).where(
                    Booking.start_at < now + timedelta(hours=1), Booking.end_at > now
                )
            )
        }
        free = [d for d in desks if d.id not in taken]
        for person, desk in zip(hosts[:9], free, strict=False):
            s.add(
                Booking(
                    resource=desk,
                    user=person,
                    created_by=person,
                    start_at=now - timedelta(hours=2),
                    end_at=now + timedelta(hours=4),
                    blocked_until=now + timedelta(hours=4),
                    status=BookingStatus.CHECKED_IN,
                    checked_in_at=now - timedelta(hours=2),
                    created_at=now - timedelta(days=1),
                )
            )
        s.flush()
        rc = visitors.roll_call(s, site, now=now)
        for person in (rc.visitors + rc.employees)[::3]:
            visitors.mark_accounted(s, actor, site, person.subject, True, now=now)

        # Notices in Lena's header
        notices.notify(
            s,
            lena,
            "visitor_arrived",
            "Tomás Ortega (Ortega & Hijos) has arrived at Berlin and is waiting in the lobby.",
            link="/visitors/",
        )
        notices.notify(
            s,
            lena,
            "visitor_arrived",
            "Anna Kowalski (Nordlicht Design) has arrived at Berlin and is waiting in the lobby.",
            link=f"/visitors/{star.id}",
        )
        return {"star": star.id, "site": site.id, "side_kiosk": side.id, "lobby_kiosk": lobby.id}


def capture_visitors(base_url: str, app: Flask, full_page: bool, out: Path) -> list[Path]:
    facts = arrange_visitors(app)
    out.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []

    def snap(page, name: str, screen: str, whole: bool = full_page) -> None:
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(150)
        path = out / f"{name}-{screen}.png"
        page.screenshot(path=str(path), full_page=whole)
        taken.append(path)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for screen in VIEWPORTS:
            context = new_context(browser, base_url, screen)
            page = context.new_page()
            sign_in(page, EMPLOYEE)
            page.goto("/visitors/")
            snap(page, "30-my-visitors", screen)
            page.locator("details.notices > summary").click()
            page.locator(".notice-list").wait_for()
            snap(page, "31-notices", screen, False)
            page.keyboard.press("Escape")
            page.goto("/visitors/invite")
            snap(page, "32-invite", screen)
            page.get_by_label("Visitor's full name").fill("Ana María <b>Gómez</b>")
            page.get_by_label("E-mail").fill("ana.gomez@")
            page.get_by_label("Arrives").fill("15:00")
            page.get_by_label("Leaves").fill("14:00")
            page.get_by_role("button", name="Send invitation").click()
            page.locator("#email-error").wait_for()
            snap(page, "33-invite-errors", screen)
            page.get_by_label("E-mail").fill("ana.gomez@example.org")
            page.get_by_label("Leaves").fill("17:00")
            page.get_by_role("button", name="Send invitation").click()
            page.locator(".code-value").wait_for()
            snap(page, "34-invited", screen)
            page.goto(f"/visitors/{facts['star']}")
            snap(page, "35-visit", screen)
            page.goto(f"/visitors/{facts['star']}/badge?stock=62x100")
            snap(page, "36-badge-print", screen, False)
            context.close()

            context = new_context(browser, base_url, screen)
            page = context.new_page()
            sign_in(page, COORDINATOR)
            page.goto("/lobby/")
            snap(page, "37-lobby-log", screen)
            page.goto(f"/lobby/sites/{facts['site']}/roll-call")
            snap(page, "38-roll-call", screen)
            page.emulate_media(media="print")
            snap(page, "39-roll-call-print", screen)
            page.emulate_media(media="screen")
            page.goto("/admin/kiosks/")
            snap(page, "40-kiosks", screen)
            page.get_by_label("Name").fill("Visitor entrance B")
            page.get_by_role("button", name="Add kiosk and get a code").click()
            page.locator(".pair-code").wait_for()
            snap(page, "41-kiosk-code", screen)
            page.goto(f"/admin/kiosks/{facts['lobby_kiosk']}")
            page.get_by_label("Label printer address").fill("http://printer.local")
            page.get_by_role("button", name="Save printer").click()
            page.locator("#printer_uri-error").wait_for()
            snap(page, "42-kiosk-printer-error", screen)
            page.goto("/admin/visitor-settings/")
            snap(page, "43-visitor-settings", screen)
            context.close()
        browser.close()
    return taken


# The lobby kiosk ------------------------------------------------------------------------------
KIOSK_SCREENS = {
    "landscape": {"width": 1280, "height": 800},
    "portrait": {"width": 800, "height": 1280},
}
# Grant the camera without a prompt and give Chromium a fake one (a test pattern), for the
# invitation scanner and the badge photo.
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
KIOSK_AGREEMENT = """Welcome to our Berlin office. While you are here:

1. Confidentiality. Anything you see or hear about our products, customers and plans stays \
confidential, during and after your visit.
2. Safety. Wear your visitor badge where it can be seen. Stay with your host outside the lobby. \
In an alarm, follow the green signs to the assembly point in the courtyard.
3. Photos. Please do not take photos or recordings inside the building without your host's \
permission.
4. Wi-Fi. Use the "Foyer Guest" network; the password is on the card at reception.

Thank you, and enjoy your visit."""
KIOSK_INVITED = (("Anna Kowalski", "Nordlicht GmbH"), ("Annika Berg", "Berg & Söhne"))
DENIED_VISITOR = "Mallory Mauser"
# Client errors the kiosk shows on purpose (a wrong code, a missing field, an unknown page).
EXPECTED_CONSOLE = "Failed to load resource: the server responded with a status of 4"


def arrange_kiosk(app: Flask) -> dict[str, Any]:
    """For each tablet size: a Berlin kiosk to pair (with a printer nobody answers at, so the
    badge fails) and an invitation for today; plus a visitor agreement to sign, the badge photo
    switched on and a deny-list entry, for the "see reception" screen."""
    from portal.services import kiosk_devices, visitors

    actor = Actor.system("screenshots")
    now = utcnow()
    _reader, writer = app.extensions["foyer.sessions"]
    with app.app_context(), writer() as s, s.begin():
        berlin = s.scalars(select(Site).where(Site.slug == "berlin")).one()
        berlin.visitor_photo = True
        jonas = accounts.find_by_email(s, COORDINATOR)
        assert jonas is not None
        pairing_codes = []
        for _screen in KIOSK_SCREENS:
            device, code = kiosk_devices.create(s, actor, berlin, "Main lobby", now=now)
            device.printer_uri = "socket://127.0.0.1:9"  # the discard port: nothing listens
            pairing_codes.append(code)
        visitors.publish_agreement(
            s, actor, berlin, title="Visitor agreement", body=KIOSK_AGREEMENT
        )
        invitations, visit_ids = [], []
        for name, company in KIOSK_INVITED:
            details = visitors.VisitorDetails.from_form(
                name, f"{name.split()[0].lower()}@example.org", company
            )
            visit, code = visitors.invite(
                s,
                actor,
                jonas,
                site=berlin,
                details=details,
                day=(now + timedelta(days=1)).date(),
                start_time="09:00",
                end_time="17:00",
                note="",
                now=now,
            )
            # Invited for tomorrow, but expected today: the kiosk finds today's invitations.
            visit.local_date = visitors.today_at(berlin, now)
            invitations.append(code)
            visit_ids.append(visit.id)
        visitors.add_deny_entry(s, actor, site=None, name=DENIED_VISITOR, email="", reason="demo")
        s.flush()
    return {"pairing": pairing_codes, "invitations": invitations, "visits": visit_ids}


def _draw_signature(page) -> None:
    """Sign the agreement's pad with the mouse, as a finger would."""
    box = page.locator("canvas.signature-pad").bounding_box()
    assert box is not None
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    points = [
        (0.12, 0.62),
        (0.2, 0.35),
        (0.27, 0.7),
        (0.36, 0.4),
        (0.45, 0.66),
        (0.55, 0.32),
        (0.63, 0.62),
        (0.72, 0.45),
        (0.85, 0.55),
    ]
    page.mouse.move(x + w * points[0][0], y + h * points[0][1])
    page.mouse.down()
    for px, py in points[1:]:
        page.mouse.move(x + w * px, y + h * py, steps=8)
    page.mouse.up()


def capture_kiosk(base_url: str, app: Flask, full_page: bool) -> list[Path]:
    """Every kiosk step, on a tablet held either way: pairing, the welcome (in German too), an
    invitation by code and by name, the agreement and signature, the photo, the done screen
    while the badge prints and once the printer has failed, printing the badge in the browser,
    a walk-in, the deny list's "see reception", checking out, the idle warning and a problem."""
    facts = arrange_kiosk(app)
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *FAKE_CAMERA_ARGS]
        )
        for index, (screen, viewport) in enumerate(KIOSK_SCREENS.items()):
            context = browser.new_context(
                base_url=base_url,
                viewport=viewport,
                has_touch=True,
                locale="en-US",
                reduced_motion="reduce",  # still spinners, the same picture every run
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def shot(step: str, page=page, screen=screen) -> None:
                page.wait_for_timeout(350)  # htmx has settled the swapped screen
                path = OUT / f"kiosk-{step}-{screen}.png"
                page.screenshot(path=str(path), full_page=full_page)
                taken.append(path)

            def start_over(page=page) -> None:
                page.goto("/kiosk/start-over")
                page.locator(".screen-welcome").wait_for()

            # Pairing the tablet, then the welcome screen and its languages.
            page.goto("/kiosk/")
            shot("01-pairing")
            page.fill("#f-code", "WRONG123")
            page.get_by_role("button", name="Connect").click()
            page.locator(".field-error").wait_for()
            shot("02-pairing-wrong")
            page.fill("#f-code", facts["pairing"][index])
            page.get_by_role("button", name="Connect").click()
            page.locator(".screen-welcome").wait_for()
            shot("03-welcome")
            page.get_by_role("button", name="Deutsch").click()
            page.get_by_text("Ich habe eine Einladung").wait_for()
            shot("04-welcome-german")
            page.get_by_role("button", name="English").click()
            page.get_by_text("I have an invitation").wait_for()

            # An invitation: the scanner, a wrong code, finding one's name, then the code.
            page.get_by_text("I have an invitation").click()
            page.locator(".screen-invitation").wait_for()
            page.wait_for_timeout(800)  # the (fake) camera has started
            shot("05-invitation-scan-or-type")
            page.fill("#f-code", "ZZZZ-ZZZZ")
            page.locator("#code-form button[type=submit]").click()
            page.locator(".field-error").wait_for()
            shot("06-invitation-unknown-code")
            page.get_by_text("Find me by name").click()
            page.locator("#f-q").fill("ann")
            page.locator(".match").first.wait_for()
            shot("07-find-by-name")
            page.locator(".match").first.click()
            page.locator(".screen-confirm").wait_for()
            shot("08-confirm-name-pick")
            start_over()
            page.get_by_text("I have an invitation").click()
            page.fill("#f-code", facts["invitations"][index])
            page.locator("#code-form button[type=submit]").click()
            page.locator(".screen-confirm").wait_for()
            shot("09-confirm-by-code")
            page.get_by_role("button", name="Continue").click()
            page.locator(".screen-agreement").wait_for()
            shot("10-agreement")
            page.get_by_role("button", name="I agree").click()
            page.locator(".field-error").first.wait_for()
            shot("11-agreement-missing")
            page.fill("#f-signed_name", KIOSK_INVITED[index][0])
            page.locator("#f-typed-signature").check()
            shot("11b-agreement-typed-name")
            page.locator("#f-typed-signature").uncheck()
            _draw_signature(page)
            shot("12-agreement-signed")
            page.get_by_role("button", name="I agree").click()
            page.locator(".screen-photo").wait_for()
            page.wait_for_timeout(1200)  # the camera shows a picture
            shot("13-photo")
            page.locator("[data-photo-take]").click()
            shot("14-photo-taken")
            page.locator("[data-photo-submit]").click()
            page.locator(".screen-done").wait_for()
            shot("15-done-printing")
            page.locator(".badge-failed").wait_for(timeout=20_000)
            shot("16-done-printer-failed")
            page.get_by_role("link", name="Print badge here").click()
            page.locator(".kiosk-print-bar").wait_for()
            shot("17-print-badge")
            start_over()

            # A walk-in: the empty form's errors, finding the host, filled in; then a visitor
            # on the deny list, who is sent to reception.
            page.get_by_text("I'm here to see someone").click()
            page.locator(".screen-details").wait_for()
            page.get_by_role("button", name="Continue").click()
            page.locator(".field-error").first.wait_for()
            shot("18-walk-in-empty")
            page.fill("#f-name", "Siobhán O'Brien")
            page.fill("#f-company", "Harbour & Co.")
            page.fill("#f-host-query", "we")
            page.locator(".host-option").first.wait_for()
            shot("19-walk-in-host-search")
            page.locator(".host-option").first.click()
            page.fill("#f-purpose", "Interview")
            shot("20-walk-in-filled")
            start_over()
            page.get_by_text("I'm here to see someone").click()
            page.fill("#f-name", DENIED_VISITOR)
            page.fill("#f-host-query", "jo")
            page.locator(".host-option").first.click()
            page.get_by_role("button", name="Continue").click()
            page.locator(".screen-reception").wait_for()
            shot("21-see-reception")
            start_over()

            # Checking out by name, the idle warning, and an address that is no kiosk screen.
            page.get_by_text("Check out").first.click()
            page.locator(".screen-check-out").wait_for()
            page.fill("#f-q", "an")
            page.locator(".match").first.wait_for()
            shot("22-check-out")
            page.locator(".match").first.click()
            page.locator(".screen-check-out-confirm").wait_for()
            shot("23-check-out-confirm")
            page.get_by_role("button", name="Yes, check me out").click()
            page.locator(".screen-goodbye").wait_for()
            shot("24-goodbye")
            start_over()
            page.get_by_text("I'm here to see someone").click()
            page.fill("#f-name", "Zoë")
            # Shorten the screen's idle time so its last 15 seconds (the warning) begin now.
            page.evaluate("document.querySelector('#stage > .screen').dataset.idle = '16'")
            page.locator("#idle-overlay").wait_for(state="visible", timeout=5_000)
            shot("25-idle-warning")
            page.goto("/kiosk/walk-in/nonsense")
            shot("26-problem")
            context.close()
            for error in errors:
                if not error.startswith(EXPECTED_CONSOLE):
                    print(f"kiosk {screen}: browser console: {error}", file=sys.stderr)
        browser.close()
    label = render_badge_label(app, facts["visits"][0])
    if label is not None:
        taken.append(label)
    return taken


def render_badge_label(app: Flask, visit_id: int) -> Path | None:
    """The badge of the first kiosk visitor as the printer gets it (a 62 x 100 mm label PDF),
    as a PNG at 200 dpi; None, with a note, where pdftoppm (poppler-utils) or Pango is missing."""
    from portal.models import Visit
    from portal.services.badges import LabelUnavailable, render_label_pdf
    from portal.services.lobby_printing import badge_content

    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        print("kiosk-badge-label.png skipped: pdftoppm not found (apt-get install poppler-utils)")
        return None
    key = app.extensions["foyer.settings"].secret_key.encode()
    reader, _writer = app.extensions["foyer.sessions"]
    with app.app_context(), reader() as s:
        visit = s.get(Visit, visit_id)
        assert visit is not None
        content = badge_content(visit, key)
    try:
        pdf = render_label_pdf(content, "62x100")
    except LabelUnavailable as error:
        print(f"kiosk-badge-label.png skipped: {error}")
        return None
    path = OUT / "kiosk-badge-label.png"
    with tempfile.TemporaryDirectory(prefix="foyer-badge-") as folder:
        source = Path(folder) / "label.pdf"
        source.write_bytes(pdf)
        # -singlefile: the one page as <prefix>.png, without a page number.
        subprocess.run(
            [pdftoppm, "-png", "-r", "200", "-singlefile", str(source), str(path.with_suffix(""))],
            check=True,
        )
    return path


# The service desk ------------------------------------------------------------------------------
def arrange_service_desk(app: Flask) -> dict[str, Any]:
    """The demo's service desk (catalog with pictures, issues in every SLA state, requests in
    every status, assets, a loan); returns the ids of the pages to show."""
    from portal.models import Ticket
    from portal.services import demo_service_desk

    uploads = Path(app.extensions["foyer.settings"].instance_path) / "uploads"
    _reader, writer = app.extensions["foyer.sessions"]
    with app.app_context(), writer() as s, s.begin():
        demo_service_desk.seed_service_desk(s, utcnow(), uploads)
        keys = {
            t.submission_key: t.id
            for t in s.scalars(select(Ticket).where(Ticket.submission_key.is_not(None)))
        }
    demo = demo_service_desk.KEY + "request:"
    issue = next(k for k in keys if k.endswith(":demo-radiator"))
    return {
        "pending_request": keys[demo + "lena-chair"],
        "decided_request": keys[demo + "lena-desk-setup"],
        "issue": keys[issue],
    }


def capture_service_desk(base_url: str, app: Flask, full_page: bool) -> list[Path]:
    facts = arrange_service_desk(app)
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for screen in VIEWPORTS:
            context = new_context(browser, base_url, screen)
            page = context.new_page()
            sign_in(page, EMPLOYEE)
            page.goto("/catalog")
            page.locator(".rq-card img").first.wait_for()
            taken.append(shoot(page, "40-catalog", screen, full_page))
            page.locator(".rq-card").nth(7).get_by_role("button", name="Add to request").click()
            page.locator("#draft .rq-draft-line").wait_for(state="attached")
            taken.append(shoot(page, "41-catalog-with-draft", screen, full_page))
            page.goto(f"/requests/{facts['decided_request']}")
            taken.append(shoot(page, "42-request-employee", screen, full_page))
            page.goto("/requests")
            taken.append(shoot(page, "43-my-requests", screen, full_page))
            page.goto("/issues/new")
            taken.append(shoot(page, "44-issue-form", screen, full_page))
            page.goto("/equipment")
            taken.append(shoot(page, "45-my-equipment", screen, full_page))
            context.close()

            context = new_context(browser, base_url, screen)
            page = context.new_page()
            sign_in(page, COORDINATOR)
            page.goto(f"/requests/{facts['pending_request']}")
            taken.append(shoot(page, "46-request-coordinator", screen, full_page))
            page.goto("/inbox/")
            taken.append(shoot(page, "47-inbox", screen, full_page))
            page.goto(f"/issues/{facts['issue']}")
            taken.append(shoot(page, "48-issue-coordinator", screen, full_page))
            page.goto("/inventory")
            taken.append(shoot(page, "49-inventory", screen, full_page))
            context.close()
        browser.close()
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-page", action="store_true", help="capture whole pages")
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--bookings-only", action="store_true", help="only the booking pages (13 onwards)"
    )
    only.add_argument(
        "--visitors-only",
        action="store_true",
        help=f"only the visitor and lobby pages (30 onwards), into {VISITOR_SHOTS}",
    )
    only.add_argument(
        "--service-desk-only",
        action="store_true",
        help="only the service desk pages (40 onwards): catalog, requests, issues, inbox",
    )
    only.add_argument(
        "--kiosk-only",
        action="store_true",
        help="only the lobby kiosk's steps at tablet sizes (kiosk-*), and a badge label",
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
            if args.visitors_only:
                out = VISITOR_SHOTS / "full" if args.full_page else VISITOR_SHOTS
                for path in capture_visitors(base_url, app, args.full_page, out):
                    print(path)
                return 0
            sections = []
            desk_only = args.service_desk_only
            if not (args.bookings_only or args.kiosk_only or desk_only):
                sections.append(lambda: capture(base_url, args.full_page))
            if not (args.kiosk_only or desk_only):
                sections.append(lambda: capture_bookings(base_url, app, args.full_page))
            if not (args.bookings_only or args.kiosk_only):
                sections.append(lambda: capture_service_desk(base_url, app, args.full_page))
            if not (args.bookings_only or desk_only):
                sections.append(lambda: capture_kiosk(base_url, app, args.full_page))
            for section in sections:
                for path in section():
                    print(path.relative_to(OUT.parent))
        finally:
            server.shutdown()
            server.server_close()
            app.extensions["foyer.engine"].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
