"""The lobby kiosk end to end in a real browser (issue 4): an admin pairs a tablet; a walk-in signs
with a drawn signature; an invited visitor checks in with the typed code and by showing the QR code
to the camera; a deny-list match is sent to reception; a visitor checks out; the idle reset wipes
what was typed; the host sees the arrival in the portal header; and the badge's QR code, read off
the downloaded PDF, is the visit's check-out code.

Every kiosk test runs on a 10-inch tablet in landscape (1280x800) and portrait (800x1280), each on
a tablet of its own (a fresh browser context paired with a fresh kiosk). Portal pages (the admin,
the host, the coordinator) open in further contexts at 1280x800. All of them report to the same
watchdog as the `page` fixture of conftest.py: a console error, script error, CSP violation or
server error anywhere fails the test.

The camera is Chromium's fake capture device playing a .y4m file made here from QR codes, in a
browser launched for the purpose. Visitors have a different name in each test and at each size,
so the tests pass in any order on the session's shared live server.
"""

from __future__ import annotations

import io
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import segno
from flask import Flask
from PIL import Image, ImageChops
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.limits import limiter
from portal.models import (
    BadgeState,
    CheckoutMethod,
    KioskDevice,
    Visit,
    VisitImage,
    VisitKind,
    VisitStatus,
)
from portal.services import kiosk_devices, visitors
from portal.services.audit import Actor
from portal.timezones import local_day_bounds
from tests.browser.conftest import WATCH_CSP, _fail_if_unclean
from tests.browser.live import (
    ADMIN,
    CHROMIUM,
    CHROMIUM_ARGS,
    EMPLOYEE,
    berlin,
    person,
    sign_in,
    writing,
)
from tests.conftest import missing_service

pytestmark = pytest.mark.browser

TABLETS = {"landscape": {"width": 1280, "height": 800}, "portrait": {"width": 800, "height": 1280}}
PORTAL = {"width": 1280, "height": 800}
SYSTEM = Actor.system("browser-tests")
HOST = EMPLOYEE  # Lena Fischer, Berlin (the demo has other Lena Fischers: departments tell apart)
HOST_NAME = "Lena Fischer"
COORDINATOR = "jonas.weber@example.com"  # coordinates Berlin
AGREEMENT = (
    "Visitor agreement",
    "1. Confidentiality: what you see here stays here.\n2. Safety: wear your badge.",
)


# Arranging data in the live server's database ------------------------------------------------


def visit_of(session: Session, name: str) -> Visit:
    """The one visit of the visitor called `name` (each test uses names of its own)."""
    return session.scalars(select(Visit).where(Visit.visitor_name == name)).one()


def secret(app: Flask) -> bytes:
    return app.extensions["foyer.settings"].secret_key.encode()


@pytest.fixture(scope="module")
def agreement_title(live_app: Flask) -> str:
    """Berlin's visitor agreement (the live server's demo data has none): walk-ins sign it."""
    with writing(live_app) as s:
        site = berlin(s)
        agreement = visitors.current_agreement(s, site)
        if agreement is None:
            title, body = AGREEMENT
            agreement = visitors.publish_agreement(s, SYSTEM, site, title=title, body=body)
        return agreement.title


def new_kiosk(app: Flask, name: str, printer_uri: str = "") -> str:
    """A Berlin lobby kiosk, as an admin creates it; returns its pairing code ("K7QF-2M9X")."""
    with writing(app) as s:
        device, code = kiosk_devices.create(s, SYSTEM, berlin(s), name, now=utcnow())
        device.printer_uri = printer_uri
    return code


def invite_for_today(app: Flask, name: str, email: str, company: str) -> tuple[int, str]:
    """Lena invites a visitor for today at Berlin; returns the visit's id and its code."""
    with writing(app) as s:
        site = berlin(s)
        today = visitors.today_at(site, utcnow())
        day_start, _ = local_day_bounds(today, ZoneInfo(site.time_zone))
        visit, code = visitors.invite(
            s,
            SYSTEM,
            person(s, HOST),
            site=site,
            details=visitors.VisitorDetails.from_form(name, email, company),
            day=today,
            start_time="08:00",
            end_time="20:00",
            note="",
            now=day_start,  # whatever the time of day now, the invitation is for today
        )
        return visit.id, code


def checked_in_visit(app: Flask, name: str, company: str) -> int:
    """A walk-in who checked in at Berlin an hour ago, visiting Lena."""
    with writing(app) as s:
        site = berlin(s)
        now = utcnow()
        visit = Visit(
            site_id=site.id,
            host_id=person(s, HOST).id,
            kind=VisitKind.WALK_IN,
            status=VisitStatus.CHECKED_IN,
            visitor_name=name,
            visitor_company=company,
            name_key=visitors.name_key(name),
            expected_start=now - timedelta(hours=1),
            expected_end=now + timedelta(hours=2),
            local_date=visitors.today_at(site, now),
            checked_in_at=now - timedelta(hours=1),
        )
        s.add(visit)
        s.flush()
        return visit.id


def ink_pixels(png: bytes) -> int:
    """How many pixels of a signature image carry dark ink."""
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    dark = image.convert("L").point(lambda v: 255 if v < 128 else 0)
    opaque = image.getchannel("A").point(lambda v: 255 if v > 128 else 0)
    return ImageChops.multiply(dark, opaque).histogram()[255]


# A label printer that is on (records every job) and one that is off -------------------------
@pytest.fixture
def printer() -> Iterator[tuple[str, list[bytes]]]:
    """A raw (port 9100 style) printer on a loopback port: (its address, the jobs it received)."""
    jobs: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                chunks = []
                while data := conn.recv(65536):
                    chunks.append(data)
                jobs.append(b"".join(chunks))

    thread = threading.Thread(target=serve, name="fake-printer", daemon=True)
    thread.start()
    yield f"socket://127.0.0.1:{listener.getsockname()[1]}", jobs
    stop.set()
    thread.join()
    listener.close()


def switched_off_printer() -> str:
    """The address of a loopback port nobody listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"socket://127.0.0.1:{port}"


# Browsers ------------------------------------------------------------------------------------
class Browsers:
    """Opens watched pages (a context each) and camera browsers; closes them all afterwards."""

    def __init__(self, chromium: Any, live_server: Any, watchdog: Any) -> None:
        self.chromium = chromium
        self.live_server = live_server
        self.base_url = live_server.url
        self.watchdog = watchdog
        self.contexts: list[Any] = []
        self.browsers: list[Any] = []

    def open(self, viewport: dict[str, int] = PORTAL, browser: Any = None, **options: Any) -> Page:
        context = (browser or self.chromium).new_context(
            base_url=self.base_url, viewport=viewport, **options
        )
        # Generous, as in conftest's `page`: another xdist worker shares the two cores.
        context.set_default_timeout(10_000)
        context.expose_function("__foyerCspViolation", self.watchdog.csp_violation)
        context.add_init_script(WATCH_CSP)
        page = context.new_page()
        page.on("console", self.watchdog.on_console)
        page.on("pageerror", lambda error: self.watchdog.problems.append(f"script error: {error}"))
        self.contexts.append(context)
        # As in conftest's `page`: the limiter takes the settings of the app created last.
        limiter.enabled = False
        return page

    def with_camera(self, video: Path) -> Any:
        """Another Chromium whose camera shows `video` (a .y4m file), allowed without asking."""
        browser = self.chromium.browser_type.launch(
            executable_path=str(CHROMIUM),
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        self.browsers.append(browser)
        return browser

    def assert_clean(self) -> None:
        """The watchdog's verdict now, for a test without the `page` fixture (which conftest's
        hook judges on its own)."""
        _fail_if_unclean(self.watchdog, self.live_server)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        for browser in self.browsers:
            browser.close()


@pytest.fixture(params=list(TABLETS))
def tablet(request: pytest.FixtureRequest) -> str:
    """Every kiosk test runs on a tablet in landscape (1280x800) and in portrait (800x1280)."""
    return request.param


@pytest.fixture
def browsers(chromium: Any, live_server: Any, watchdog: Any) -> Iterator[Browsers]:
    opened = Browsers(chromium, live_server, watchdog)
    live_server.errors.records.clear()
    yield opened
    opened.close()
    _fail_if_unclean(watchdog, live_server)  # anything that arrived after the test's own check


@pytest.fixture
def page(browsers: Browsers, tablet: str) -> Page:
    """The lobby tablet (not paired yet). Named `page` so conftest's watchdog judges the test."""
    return browsers.open(TABLETS[tablet], has_touch=True)


# The kiosk, as a visitor uses it --------------------------------------------------------------
def heading(page: Page) -> Any:
    return page.get_by_role("heading", level=1)


def assert_fits_the_screen(page: Page) -> None:
    """Nothing on a kiosk screen scrolls sideways: there is no way to scroll back on a tablet."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def pair(page: Page, code: str) -> None:
    """Type the pairing code on the tablet as a person would: lower case, without the dash."""
    page.goto("/kiosk/")
    expect(heading(page)).to_have_text("Connect this tablet")
    field = page.get_by_label("Pairing code")
    field.press_sequentially(code.replace("-", "").lower())
    expect(field).to_have_value(code)  # shown as people read it: upper case, with the dash
    page.get_by_role("button", name="Connect").click()
    expect(heading(page)).to_have_text("Welcome to Berlin")
    assert_fits_the_screen(page)


def paired_kiosk(page: Page, app: Flask, tablet: str, printer_uri: str = "") -> None:
    pair(page, new_kiosk(app, f"Lobby ({tablet})", printer_uri))


@pytest.fixture(scope="module")
def host_department(live_app: Flask) -> str:
    with writing(live_app) as s:
        return person(s, HOST).department


def fill_walk_in(page: Page, name: str, company: str, department: str) -> None:
    """From the welcome screen: who the visitor is and whom they visit (picked by typeahead)."""
    page.get_by_role("link", name="I'm here to see someone").click()
    expect(heading(page)).to_have_text("Tell us who you are")
    page.get_by_label("Your full name").fill(name)
    page.get_by_label("Company").fill(company)
    page.get_by_label("Who are you visiting?").press_sequentially("fisch")
    option = page.locator(".host-option").filter(has_text=f"{HOST_NAME} {department}")
    # Name and department only: never an e-mail address or anything else about the employee.
    expect(option).to_have_text(re.compile(rf"^\s*{HOST_NAME}\s+{department}\s*$"))
    option.click()
    expect(page.get_by_role("radio", name=f"{HOST_NAME} {department}")).to_be_checked()
    assert_fits_the_screen(page)


def draw_signature(page: Page) -> None:
    """Sign with the mouse: one zig-zag stroke across the signature box."""
    canvas = page.get_by_role("img", name="Sign with your finger")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    points = [
        (0.1, 0.6),
        (0.2, 0.3),
        (0.3, 0.7),
        (0.45, 0.35),
        (0.6, 0.65),
        (0.75, 0.3),
        (0.9, 0.5),
    ]
    at = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def sign(page: Page, name: str, agreement_title: str) -> None:
    """The agreement step: read it, type one's name, draw a signature, agree."""
    expect(heading(page)).to_have_text("Please read and sign")
    expect(page.get_by_role("heading", name=agreement_title)).to_be_visible()
    page.get_by_label("Type your full name").fill(name)
    draw_signature(page)
    expect(page.locator("#f-signature")).to_have_value(re.compile(r"^data:image/png;base64,"))
    assert_fits_the_screen(page)
    page.get_by_role("button", name="I agree, check in").click()


def expect_welcomed(page: Page, first_name: str) -> None:
    expect(heading(page)).to_have_text(f"Welcome, {first_name}.")
    expect(page.get_by_text(f"{HOST_NAME} knows you're here.")).to_be_visible()
    assert_fits_the_screen(page)


def test_the_watchdog_watches_the_tablet(page, watchdog):
    """Proof that the CSP check is not vacuous in this file's own browser contexts."""
    page.goto("/kiosk/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    page.wait_for_timeout(100)
    problems = watchdog.take()
    assert any(p.startswith("CSP violation: style-src") for p in problems), problems


# 1. Pairing ----------------------------------------------------------------------------------
def test_an_admin_creates_a_kiosk_and_pairs_the_tablet_with_its_code(page, browsers, tablet):
    name = f"Reception {tablet}"
    admin = browsers.open()
    sign_in(admin, ADMIN)
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Lobby").click()
    admin.get_by_role("navigation", name="Lobby sections").get_by_role(
        "link", name="Kiosks"
    ).click()
    expect(heading(admin)).to_have_text("Kiosks")
    admin.get_by_label("Site").select_option(label="Berlin")
    admin.get_by_label("Name", exact=True).fill(name)
    admin.get_by_role("button", name="Add kiosk and get a code").click()

    card = admin.locator("#kiosk-code")
    expect(card.get_by_role("heading", level=2)).to_have_text(f"Pair “{name}”")
    expect(card).to_contain_text("Expires in 10 minutes")
    code = card.locator(".pair-code").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}", code), code

    pair(page, code)  # the tablet: a browser of its own
    expect(page).to_have_title("Berlin · Visitor check-in")
    for choice in ("I have an invitation", "I'm here to see someone", "Check out"):
        expect(page.get_by_role("link", name=choice)).to_be_visible()

    # The admin's list shows the kiosk paired and online.
    card.get_by_role("link", name="Done").click()
    row = admin.get_by_role("row").filter(has=admin.get_by_role("link", name=name))
    expect(row).to_contain_text("Paired")
    expect(row).to_contain_text("Online · just now")
    # The code worked once: typed again on another tablet, it is refused.
    browsers.watchdog.allow_status(422)
    other = browsers.open(TABLETS[tablet], has_touch=True)
    other.goto("/kiosk/")
    other.get_by_label("Pairing code").fill(code)
    other.get_by_role("button", name="Connect").click()
    expect(other.get_by_text("That code is not valid.")).to_be_visible()


# 2. Walk-in with a drawn signature -------------------------------------------------------------
WALK_INS = {"landscape": ("Siobhán O'Brien", "Harbour & Co."), "portrait": ("Jörg Wüst", "Wüst AG")}


def test_a_walk_in_checks_in_with_a_drawn_signature(
    page, live_app, tablet, printer, agreement_title, host_department
):
    name, company = WALK_INS[tablet]
    printer_uri, printed = printer
    paired_kiosk(page, live_app, tablet, printer_uri)

    fill_walk_in(page, name, company, host_department)
    steps = page.get_by_role("list", name="Progress")
    expect(steps.get_by_role("listitem")).to_have_text(["1 Your details", "2 Agreement"])
    page.get_by_label("Purpose of your visit").fill("Interview")
    page.get_by_role("button", name="Continue").click()
    expect(steps.locator("[aria-current=step]")).to_have_text("2 Agreement")
    sign(page, name, agreement_title)

    expect_welcomed(page, name.split()[0])
    expect(page.get_by_role("status")).to_contain_text(
        "Please take your badge from the printer.", timeout=15_000
    )
    expect(page.get_by_text(re.compile(r"This screen closes in \d+ seconds\."))).to_be_visible()

    with writing(live_app) as s:
        visit = visit_of(s, name)
        assert visit.status == VisitStatus.CHECKED_IN
        assert visit.kind == VisitKind.WALK_IN
        assert (visit.visitor_company, visit.purpose) == (company, "Interview")
        assert visit.host.email == HOST
        assert visit.signed_name == name
        assert visit.agreement is not None and visit.agreement.title == agreement_title
        assert visit.badge_state == BadgeState.PRINTED
        signature = s.scalars(
            select(VisitImage).where(
                VisitImage.visit_id == visit.id, VisitImage.kind == "signature"
            )
        ).one()
        assert signature.content_type == "image/png"
        assert ink_pixels(signature.data) > 200, "the drawn stroke is in the stored signature"
    assert len(printed) == 1 and printed[0].startswith(b"%PDF-"), "one label went to the printer"


# 3. Pre-registered: the code typed, and the QR code shown to the camera ------------------------
INVITED = {
    "landscape": ("Anna Kowalczyk", "anna.kowalczyk@example.org", "Nordlicht Design"),
    "portrait": ("Tomás Ortega", "tomas.ortega@example.org", "Ortega & Hijos"),
}


def test_an_invited_visitor_checks_in_with_the_typed_code(page, live_app, tablet, agreement_title):
    name, email, company = INVITED[tablet]
    visit_id, code = invite_for_today(live_app, name, email, company)
    paired_kiosk(page, live_app, tablet)

    page.get_by_role("link", name="I have an invitation").click()
    expect(heading(page)).to_have_text("Check in with your invitation")
    field = page.get_by_label("Or type your code")
    field.press_sequentially(code.replace("-", "").lower())
    expect(field).to_have_value(code)
    page.get_by_role("button", name="Continue").click()

    expect(heading(page)).to_have_text("Is this you?")
    facts = page.locator(".facts")
    expect(facts).to_contain_text(name)  # the code proves who they are: full names
    expect(facts).to_contain_text(HOST_NAME)
    expect(page.get_by_label("Company")).to_have_value(company)
    page.get_by_role("button", name="Continue").click()
    sign(page, name, agreement_title)
    expect_welcomed(page, name.split()[0])

    with writing(live_app) as s:
        visit = s.get(Visit, visit_id)
        assert visit.status == VisitStatus.CHECKED_IN
        assert visit.checked_in_at is not None
        assert visit.code_hash is None, "an invitation code works once"


def qr_frame(value: str) -> Image.Image:
    """A 640x480 camera frame showing a QR code (not Micro QR: jsQR cannot read those)."""
    buffer = io.BytesIO()
    segno.make_qr(value, error="m").save(buffer, kind="png", scale=8, border=4)
    code = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    frame = Image.new("L", (640, 480), 200)
    frame.paste(code, ((640 - code.width) // 2, (480 - code.height) // 2))
    return frame


def write_y4m(path: Path, frames: list[Image.Image], repeat: int = 5) -> Path:
    """A 10 fps video for Chromium's fake camera; each frame shown `repeat` times, then looped."""
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for frame in frames:
            luma = frame.convert("L").resize((640, 480)).tobytes()
            for _ in range(repeat):
                out.write(b"FRAME\n" + luma + bytes([128]) * (320 * 240 * 2))
    return path


SCANNED = {
    "landscape": ("Mei Chen", "mei.chen@example.org", "Lumen Labs"),
    "portrait": ("Kwame Mensah", "kwame.mensah@example.org", "Accra Data"),
}


def test_an_invited_visitor_shows_the_qr_codes_to_the_camera_to_check_in_and_out(
    browsers, live_app, tablet, agreement_title, tmp_path
):
    name, email, company = SCANNED[tablet]
    visit_id, code = invite_for_today(live_app, name, email, company)
    with writing(live_app) as s:
        badge_value = visitors.checkout_code(s.get(Visit, visit_id), secret(live_app))
    # The camera sees the invitation's QR code and the badge's, by turns.
    video = write_y4m(tmp_path / "camera.y4m", [qr_frame(code), qr_frame(badge_value)])
    page = browsers.open(TABLETS[tablet], browser=browsers.with_camera(video), has_touch=True)
    paired_kiosk(page, live_app, tablet)

    page.get_by_role("link", name="I have an invitation").click()
    expect(heading(page)).to_have_text("Is this you?", timeout=15_000)  # scanned, no typing
    expect(page.locator(".facts")).to_contain_text(name)
    page.get_by_role("button", name="Continue").click()
    sign(page, name, agreement_title)
    expect_welcomed(page, name.split()[0])
    page.get_by_role("link", name="Done").click()

    page.get_by_role("link", name="Check out").click()
    expect(heading(page)).to_have_text(f"Check out {name}?", timeout=15_000)  # the badge, scanned
    page.get_by_role("button", name="Yes, check me out").click()
    expect(heading(page)).to_have_text(f"Goodbye, {name.split()[0]}.")

    with writing(live_app) as s:
        visit = s.get(Visit, visit_id)
        assert visit.status == VisitStatus.CHECKED_OUT
        assert visit.checkout_method == CheckoutMethod.KIOSK
    page.wait_for_timeout(50)  # a late console line or CSP report
    browsers.assert_clean()


# 4. The deny list ------------------------------------------------------------------------------
DENIED = {  # (on the list, as typed at the kiosk)
    "landscape": ("Renée Dubois", "  RENEE   dubois "),
    "portrait": ("Zoë Ångström", "zoe ANGSTROM"),
}


def test_a_deny_list_match_is_sent_to_reception_and_nothing_is_printed(
    page, browsers, live_app, tablet, printer, host_department
):
    listed, typed = DENIED[tablet]
    shown = " ".join(typed.split())
    with writing(live_app) as s:
        visitors.add_deny_entry(s, SYSTEM, site=berlin(s), name=listed, email="", reason="test")
    printer_uri, printed = printer
    paired_kiosk(page, live_app, tablet, printer_uri)

    fill_walk_in(page, typed, "Acme", host_department)
    page.get_by_role("button", name="Continue").click()
    # Straight to a neutral screen: no agreement, no welcome, no badge, no reason given.
    expect(heading(page)).to_have_text("Please see reception")
    expect(
        page.get_by_text("A member of our team will help you with your check-in.")
    ).to_be_visible()
    expect(page.locator("#stage")).not_to_contain_text(re.compile("badge|deny|list", re.I))

    with writing(live_app) as s:
        visit = visit_of(s, shown)
        assert visit.status == VisitStatus.DENIED
        assert (visit.badge_state, visit.badge_attempts) == (BadgeState.NONE, 0)
        assert visit.checked_in_at is None

    # The coordinator has a notice in the portal header.
    coordinator = browsers.open()
    sign_in(coordinator, COORDINATOR)
    coordinator.locator("details.notices > summary").click()
    notice = coordinator.locator("#notices-panel .notice").filter(has_text=shown)
    expect(notice).to_contain_text(
        f"Deny-list match at the Berlin kiosk: {shown}. "
        "The visitor was asked to see reception; nothing was printed."
    )
    assert printed == [], "the printer (switched on) received nothing"


# 5. Check-out by name --------------------------------------------------------------------------
LEAVING = {"landscape": ("Folake Oyelaran", "Lagos Labs"), "portrait": ("Hamid Farouk", "Nilo")}


def test_a_visitor_checks_out_at_the_kiosk_by_name(page, live_app, tablet):
    name, company = LEAVING[tablet]
    visit_id = checked_in_visit(live_app, name, company)
    paired_kiosk(page, live_app, tablet)

    page.get_by_role("link", name="Check out").click()
    expect(heading(page)).to_have_text("Check out")
    page.get_by_label("Or find your name").press_sequentially(name.split()[1][:4].lower())
    first, last = name.split()
    match = page.get_by_role("button", name=re.compile(rf"^{first} {last[0]}\. Visiting Lena F\."))
    expect(match).to_have_count(1)  # only "Folake O.": enough to recognise oneself
    match.click()
    expect(heading(page)).to_have_text(f"Check out {first} {last[0]}.?")
    page.get_by_role("button", name="Yes, check me out").click()
    expect(heading(page)).to_have_text(f"Goodbye, {first}.")
    expect(page.get_by_text("You're checked out.")).to_be_visible()

    with writing(live_app) as s:
        visit = s.get(Visit, visit_id)
        assert visit.status == VisitStatus.CHECKED_OUT
        assert visit.checkout_method == CheckoutMethod.KIOSK
        assert visit.checked_out_at is not None
    page.get_by_role("link", name="Done").click()
    expect(heading(page)).to_have_text("Welcome to Berlin")


# 6. The idle reset -----------------------------------------------------------------------------
def test_the_idle_reset_returns_to_the_welcome_screen_and_clears_the_form(
    page, live_app, tablet, host_department
):
    paired_kiosk(page, live_app, tablet)
    page.clock.install()  # the kiosk waits 60 s: time is fast-forwarded instead
    page.goto("/kiosk/")
    fill_walk_in(page, "Zoë Papadopoulou", "Kyma Shipping", host_department)
    page.get_by_label("E-mail").fill("zoe@kyma.example")
    page.get_by_label("Purpose of your visit").fill("Delivery")

    page.clock.fast_forward("00:50")  # nobody touched the screen for 50 s
    warning = page.get_by_role("alertdialog", name="Are you still there?")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(re.compile(r"Starting over in \d+ seconds"))
    page.clock.fast_forward("00:15")
    expect(heading(page)).to_have_text("Welcome to Berlin")
    expect(warning).to_be_hidden()

    page.get_by_role("link", name="I'm here to see someone").click()
    expect(heading(page)).to_have_text("Tell us who you are")
    for label in ("Your full name", "Company", "E-mail", "Who are you visiting?", "Purpose"):
        expect(page.get_by_label(label)).to_have_value("")
    expect(page.get_by_role("radio")).to_have_count(0)  # no host chosen or listed


# 7. The host's notice --------------------------------------------------------------------------
ARRIVING = {"landscape": ("Ingrid Halvorsen", "Fjord AS"), "portrait": ("Yusuf Demirci", "Ada Ltd")}


def test_the_host_sees_the_arrival_in_the_portal_header(
    page, browsers, live_app, tablet, agreement_title, host_department
):
    name, company = ARRIVING[tablet]
    host = browsers.open()
    host.clock.install()  # time runs as usual, and can skip ahead to the header's next poll
    sign_in(host, HOST)  # on My day: the header's bell asks for notices on load and every 10 s
    panel = host.locator("#notices-panel")
    expect(panel.locator(".notices-title")).to_be_attached()  # the first poll has answered
    count = host.locator("#notices-count")
    unread = int(re.match(r"\d*", count.text_content() or "").group() or 0)
    paired_kiosk(page, live_app, tablet)

    fill_walk_in(page, name, company, host_department)
    page.get_by_role("button", name="Continue").click()
    sign(page, name, agreement_title)
    expect_welcomed(page, name.split()[0])

    host.clock.fast_forward("00:10")  # the next poll comes now instead of within 10 s
    expect(count).to_be_visible(timeout=15_000)
    expect(count).to_have_text(f"{unread + 1} unread", timeout=15_000)
    host.locator("details.notices > summary").click()
    arrival = f"{name} ({company}) has arrived at Berlin and is waiting in the lobby."
    notice = panel.get_by_role("button", name=re.compile("^" + re.escape(arrival)))
    expect(notice).to_be_visible()
    expect(panel.get_by_role("button", name=f"Dismiss: {arrival}")).to_be_visible()


# 8. The badge when the printer is off ----------------------------------------------------------
BADGED = {"landscape": ("Chiara Rossi", "Vetro Srl"), "portrait": ("Pieter de Vries", "Dijk BV")}


def test_with_the_printer_off_the_badge_pdf_carries_the_check_out_code(
    page, live_app, tablet, agreement_title, host_department, tmp_path
):
    tools = {tool: shutil.which(tool) for tool in ("pdftoppm", "zbarimg", "pdftotext")}
    for tool, found in tools.items():
        if found is None:
            package = "zbar-tools" if tool == "zbarimg" else "poppler-utils"
            missing_service(package, f"{tool} not found (apt-get install {package})")
    name, company = BADGED[tablet]
    paired_kiosk(page, live_app, tablet, switched_off_printer())

    fill_walk_in(page, name, company, host_department)
    page.get_by_role("button", name="Continue").click()
    sign(page, name, agreement_title)
    expect_welcomed(page, name.split()[0])  # the check-in does not wait for the printer
    badge = page.get_by_role("status")
    expect(badge).to_contain_text(
        "The printer is not answering. Reception will give you your badge.", timeout=15_000
    )
    expect(badge.get_by_role("link", name="Print badge here")).to_be_visible()

    with page.expect_download() as download_info:
        badge.get_by_role("link", name="Badge as PDF").click()
    download = download_info.value
    assert re.fullmatch(r"visitor-badge-\d+\.pdf", download.suggested_filename)
    pdf = tmp_path / "badge.pdf"
    download.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")

    subprocess.run(
        [tools["pdftoppm"], "-r", "300", "-png", "-singlefile", str(pdf), str(tmp_path / "badge")],
        check=True,
        timeout=60,
    )
    scanned = subprocess.run(
        [tools["zbarimg"], "--raw", "-q", str(tmp_path / "badge.png")],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    text = " ".join(
        subprocess.run(
            [tools["pdftotext"], str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    with writing(live_app) as s:
        visit = visit_of(s, name)
        assert visit.status == VisitStatus.CHECKED_IN
        assert visit.badge_state == BadgeState.FAILED
        assert "refused" in visit.badge_error
        expected = visitors.checkout_code(visit, secret(live_app))
        device = s.get(KioskDevice, visit.checked_in_device_id)
        assert device is not None and device.printer_uri.startswith("socket://127.0.0.1:")
    assert len(scanned) == 1 and scanned[0].startswith("FOYER-OUT:"), scanned
    assert scanned == [expected], "the badge's QR code checks out exactly this visit"
    for words in (name, company, HOST_NAME, "Berlin"):
        assert words in text, f"{words!r} is not on the badge: {text!r}"

    # Printing it here, in the browser, shows the same badge, and "Done" starts over.
    badge.get_by_role("link", name="Print badge here").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.get_by_role("img", name="QR code to check out")).to_be_visible()
    expect(page.get_by_text(f"Host: {HOST_NAME}")).to_be_visible()
    page.get_by_role("navigation", name="Print your badge").get_by_role("link", name="Done").click()
    expect(heading(page)).to_have_text("Welcome to Berlin")
