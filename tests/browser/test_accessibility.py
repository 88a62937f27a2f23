"""axe-core, the accessibility engine, over every page of Foyer in Debian's Chromium (issue 8).

Every GET page of the portal (employee, coordinator and admin views) is opened at phone (390x844)
and desktop (1280x800) widths, and every step of the lobby kiosk on a tablet held either way
(1280x800 and 800x1280); axe-core checks each and the test fails on any violation of impact
"serious" or "critical". The page list comes from the app's URL map: a GET route that is neither
checked here nor excluded with a reason fails `test_every_page_is_checked_or_excused`.

axe-core is an npm devDependency (package.json): `make install` runs `npm ci`, which puts it in
node_modules; it is never served by the app. The app's CSP forbids inline scripts, so axe is
evaluated through the DevTools protocol (page.evaluate), which CSP does not govern.

The demo company with its visitors, service desk and history is loaded into a SQLite file of this
module's own (the session's shared live server keeps the plain demo that other tests expect).
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from portal import create_app
from portal.db import utcnow
from portal.limits import limiter
from portal.models import (
    Asset,
    Booking,
    CatalogItem,
    Desk,
    Equipment,
    KioskDevice,
    OutboxMessage,
    PurchaseOrder,
    Room,
    Site,
    SlaPolicy,
    Ticket,
    User,
    Vendor,
)
from portal.models.calendar_sync import CalendarLink, Provider
from portal.models.job_failures import JobFailure
from portal.schema import upgrade
from portal.services import (
    accounts,
    demo_company,
    demo_history,
    demo_service_desk,
    demo_visitors,
    kiosk_devices,
    offboarding,
    visitors,
)
from portal.services.audit import Actor
from portal.services.dashboards import DASHBOARDS
from portal.timezones import local_day_bounds
from tests.browser.live import (
    ADMIN,
    CHROMIUM,
    CHROMIUM_ARGS,
    EMPLOYEE,
    PASSWORD,
    VIEWPORTS,
    htmx_settled,
    serve,
    sign_in,
)
from tests.conftest import missing_service

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
COORDINATOR = "jonas.weber@example.com"  # coordinates Berlin, Lena's home site
TABLETS = {"landscape": {"width": 1280, "height": 800}, "portrait": {"width": 800, "height": 1280}}
FAILING_IMPACTS = ("serious", "critical")
SYSTEM = Actor.system("accessibility-tests")

# Who opens a page: the employee (Lena), Berlin's coordinator (Jonas), the admin (Amara), or nobody.
ANONYMOUS, EMPLOYEE_ROLE, COORDINATOR_ROLE, ADMIN_ROLE = (
    "anonymous",
    "employee",
    "coordinator",
    "admin",
)
SIGN_IN_AS = {EMPLOYEE_ROLE: EMPLOYEE, COORDINATOR_ROLE: COORDINATOR, ADMIN_ROLE: ADMIN}

# (endpoint, who, address): {name} is one of the demo objects in `facts` below. An endpoint may
# appear more than once, for a second state of the same page (a list view, a filled form).
PAGES: list[tuple[str, str, str]] = [
    ("auth.login", ANONYMOUS, "/sign-in"),
    # Employee pages
    ("home.my_day", EMPLOYEE_ROLE, "/my-day"),
    ("account.show", EMPLOYEE_ROLE, "/account/"),
    ("desks.floor_plan", EMPLOYEE_ROLE, "/desks/?site=berlin&floor={desk_floor}&date={day}"),
    (
        "desks.floor_plan",
        EMPLOYEE_ROLE,
        "/desks/?site=berlin&floor={desk_floor}&date={day}&view=list",
    ),
    ("desks.confirm", EMPLOYEE_ROLE, "/desks/{free_desk}/confirm?date={day}"),
    ("rooms.search", EMPLOYEE_ROLE, "/rooms/?site=berlin&date={day}&start=10:00&duration=60"),
    ("rooms.timeline", EMPLOYEE_ROLE, "/rooms/timeline?site=berlin&floor={room_floor}&date={day}"),
    ("rooms.book_form", EMPLOYEE_ROLE, "/rooms/{room}/book?date={day}&start=12:00&duration=60"),
    ("bookings.mine", EMPLOYEE_ROLE, "/bookings/"),
    ("bookings.detail", EMPLOYEE_ROLE, "/bookings/{lena_booking}"),
    ("bookings.qr", EMPLOYEE_ROLE, "/q/{desk_qr}"),
    ("service_hub.index", EMPLOYEE_ROLE, "/service-desk/"),
    ("requests.catalog", EMPLOYEE_ROLE, "/catalog"),
    ("requests.new", EMPLOYEE_ROLE, "/requests/new"),
    ("requests.mine", EMPLOYEE_ROLE, "/requests"),
    ("requests.detail", EMPLOYEE_ROLE, "/requests/{lena_request}"),
    ("issues.mine", EMPLOYEE_ROLE, "/issues/"),
    ("issues.new", EMPLOYEE_ROLE, "/issues/new"),
    ("issues.place", EMPLOYEE_ROLE, "/issues/new/place?site={site}"),
    ("issues.detail", EMPLOYEE_ROLE, "/issues/{lena_issue}"),
    ("equipment.mine", EMPLOYEE_ROLE, "/equipment"),
    ("equipment.browse", EMPLOYEE_ROLE, "/equipment/borrow"),
    ("equipment.loan_form", EMPLOYEE_ROLE, "/equipment/borrow/{equipment}"),
    ("feeds.index", EMPLOYEE_ROLE, "/feeds/"),
    ("visitors.index", EMPLOYEE_ROLE, "/visitors/"),
    ("visitors.invite_form", EMPLOYEE_ROLE, "/visitors/invite"),
    ("visitors.detail", EMPLOYEE_ROLE, "/visitors/{lena_visit}"),
    ("visitors.badge", EMPLOYEE_ROLE, "/visitors/{lena_visit}/badge"),
    # Coordinator pages (Berlin)
    ("bookings.approvals", COORDINATOR_ROLE, "/approvals/"),
    ("inbox.index", COORDINATOR_ROLE, "/inbox/"),
    ("inbox.return_task", COORDINATOR_ROLE, "/inbox/tickets/{return_ticket}"),
    ("inventory.index", COORDINATOR_ROLE, "/inventory"),
    ("inventory.orders", COORDINATOR_ROLE, "/inventory/purchase-orders"),
    ("inventory.order", COORDINATOR_ROLE, "/inventory/purchase-orders/{order}"),
    ("inventory.new_orders", COORDINATOR_ROLE, "/inventory/sites/{site}/purchase-orders/new"),
    ("equipment.register", COORDINATOR_ROLE, "/assets"),
    ("equipment.asset", COORDINATOR_ROLE, "/assets/{asset}"),
    ("equipment.new_asset", COORDINATOR_ROLE, "/assets/new"),
    ("equipment.loanable", COORDINATOR_ROLE, "/assets/loanable"),
    ("equipment.new_equipment", COORDINATOR_ROLE, "/assets/loanable/new"),
    ("equipment.edit_equipment", COORDINATOR_ROLE, "/assets/loanable/{equipment}"),
    ("lobby.index", COORDINATOR_ROLE, "/lobby/"),
    ("lobby.log", COORDINATOR_ROLE, "/lobby/sites/{site}/"),
    ("lobby.roll_call_home", COORDINATOR_ROLE, "/lobby/roll-call"),
    ("lobby.roll_call", COORDINATOR_ROLE, "/lobby/sites/{site}/roll-call"),
    ("dashboards.hub", COORDINATOR_ROLE, "/dashboards/"),
    ("dashboards.show", COORDINATOR_ROLE, "/dashboards/{dashboard}"),
    ("admin.spaces.index", COORDINATOR_ROLE, "/admin/spaces/"),
    ("admin.spaces.site", COORDINATOR_ROLE, "/admin/spaces/sites/{site}"),
    ("admin.spaces.floor", COORDINATOR_ROLE, "/admin/spaces/floors/{desk_floor}"),
    ("admin.spaces.new_desk", COORDINATOR_ROLE, "/admin/spaces/floors/{desk_floor}/desks/new"),
    ("admin.spaces.new_room", COORDINATOR_ROLE, "/admin/spaces/floors/{desk_floor}/rooms/new"),
    ("admin.spaces.edit_desk", COORDINATOR_ROLE, "/admin/spaces/desks/{free_desk}/edit"),
    ("admin.spaces.edit_room", COORDINATOR_ROLE, "/admin/spaces/rooms/{room}/edit"),
    ("admin.spaces.placement", COORDINATOR_ROLE, "/admin/spaces/floors/{desk_floor}/placement"),
    ("admin.spaces.qr_sheet", COORDINATOR_ROLE, "/admin/spaces/floors/{desk_floor}/qr-codes"),
    ("admin.rules.index", COORDINATOR_ROLE, "/admin/rules/"),
    ("admin.rules.site", COORDINATOR_ROLE, "/admin/rules/sites/{site}"),
    ("admin.settings.index", COORDINATOR_ROLE, "/admin/settings/"),
    ("admin.settings.site", COORDINATOR_ROLE, "/admin/settings/sites/{site}"),
    ("admin.settings.budgets_index", COORDINATOR_ROLE, "/admin/settings/budgets/"),
    ("admin.settings.budgets_site", COORDINATOR_ROLE, "/admin/settings/budgets/sites/{site}"),
    ("admin.access_control.index", COORDINATOR_ROLE, "/admin/access-control/"),
    ("admin.access_control.site", COORDINATOR_ROLE, "/admin/access-control/sites/{site}"),
    ("admin.calendar_links.index", COORDINATOR_ROLE, "/admin/calendars/"),
    ("admin.calendar_links.link", COORDINATOR_ROLE, "/admin/calendars/{calendar_link}"),
    ("admin.catalog.index", COORDINATOR_ROLE, "/admin/catalog/"),
    ("admin.catalog.stock", COORDINATOR_ROLE, "/admin/catalog/{item}/stock"),
    ("admin.kiosks.index", COORDINATOR_ROLE, "/admin/kiosks/"),
    ("admin.kiosks.device", COORDINATOR_ROLE, "/admin/kiosks/{kiosk}"),
    ("admin.visitor_settings.index", COORDINATOR_ROLE, "/admin/visitor-settings/"),
    ("admin.visitor_settings.site", COORDINATOR_ROLE, "/admin/visitor-settings/sites/{site}"),
    ("admin.service_desk.index", COORDINATOR_ROLE, "/admin/service-desk/"),
    ("admin.service_desk.policies", COORDINATOR_ROLE, "/admin/service-desk/sla"),
    ("admin.service_desk.vendors", COORDINATOR_ROLE, "/admin/service-desk/vendors"),
    # Admin pages
    ("admin.users.users", ADMIN_ROLE, "/admin/people/"),
    ("admin.users.person", ADMIN_ROLE, "/admin/people/{maya}"),
    ("admin.audit.audit_log", ADMIN_ROLE, "/admin/audit/"),
    ("admin.jobs.index", ADMIN_ROLE, "/admin/jobs/"),
    ("admin.jobs.failure", ADMIN_ROLE, "/admin/jobs/{job_failure}"),
    ("admin.outbox.outbox", ADMIN_ROLE, "/admin/outbox/"),
    ("admin.outbox.message", ADMIN_ROLE, "/admin/outbox/{message}"),
    ("admin.catalog.new_item", ADMIN_ROLE, "/admin/catalog/new"),
    ("admin.catalog.edit_item", ADMIN_ROLE, "/admin/catalog/{item}/edit"),
    ("admin.service_desk.new_policy", ADMIN_ROLE, "/admin/service-desk/sla/new"),
    ("admin.service_desk.edit_policy", ADMIN_ROLE, "/admin/service-desk/sla/{policy}"),
    ("admin.service_desk.new_vendor", ADMIN_ROLE, "/admin/service-desk/vendors/new"),
    ("admin.service_desk.edit_vendor", ADMIN_ROLE, "/admin/service-desk/vendors/{vendor}"),
    ("admin.settings.sso_mappings", ADMIN_ROLE, "/admin/settings/sso"),
    ("feeds.admin_list", ADMIN_ROLE, "/admin/feeds/"),
]

# GET routes that are not pages a person reads, each with the reason.
NOT_PAGES: dict[str, str] = {
    "home.index": "redirects to My day",
    "static": "CSS, scripts and images",
    "kiosk.static": "the kiosk's CSS, scripts and images",
    "kiosk.badge_css": "the badge label's stylesheet",
    "visitors.label_css": "the badge label's stylesheet",
    "ops.healthz": "load balancer probe, plain text",
    "ops.readyz": "load balancer probe, plain text",
    "metrics.scrape": "Prometheus text format",
    "auth.sso_start": "redirects to the identity provider (its pages are not Foyer's)",
    "auth.sso_callback": "redirects back from the identity provider",
    "feeds.feed": "an iCalendar feed for calendar programs",
    "admin.outbox.invitation": "an iCalendar file",
    "admin.audit.export": "a CSV download",
    "dashboards.download_csv": "a CSV download",
    "dashboards.download_xlsx": "a spreadsheet download",
    "dashboards.bookings_csv": "a CSV download",
    "lobby.export": "a CSV download",
    "inventory.order_csv": "a CSV download",
    "inventory.order_pdf": "a PDF download",
    "visitors.badge_pdf": "a PDF download",
    "visitors.image": "a signature or photo (PNG/JPEG)",
    "issues.photo": "a photo (JPEG)",
    "requests.item_photo": "a photo (JPEG)",
    "admin.spaces.plan_image": "a floor plan image",
    "admin.spaces.room_photo": "a room photo",
    "notices.poll": "an htmx fragment polled into the header, checked inside every portal page",
}

# Kiosk routes, checked by walking the kiosk's steps (test_every_kiosk_step...) rather than by
# address: its screens are reached by posting the previous step.
KIOSK_WALK: dict[str, str] = {
    "kiosk.home": "pairing, then the welcome screen",
    "kiosk.start_over": "back to the welcome screen",
    "kiosk.walk_in": "the walk-in's details, empty and with errors",
    "kiosk.hosts": "host search results, inside the walk-in's details",
    "kiosk.invitation": "scan or type the invitation code",
    "kiosk.invitation_find": "find one's invitation by name",
    "kiosk.invitation_matches": "matching names, inside the find screen",
    "kiosk.check_out": "check out by name",
    "kiosk.check_out_find": "check out: find by name",
    "kiosk.check_out_matches": "matching names, inside the check-out screen",
    "kiosk.badge_print": "the badge, printed in the browser",
    "kiosk.badge_status": "the badge's printing state, inside the done screen",
    "kiosk.badge_pdf": "a PDF download",
    "kiosk.elsewhere": "the kiosk's problem screen",
}


# The demo world --------------------------------------------------------------------------------
@dataclass
class Demo:
    url: str
    app: Flask
    facts: dict[str, Any]
    kiosk_codes: dict[str, str]  # tablet -> pairing code
    invitations: dict[str, str]  # tablet -> invitation code


def _one(session: Any, statement: Any) -> Any:
    found = session.scalar(statement.limit(1))
    assert found is not None, f"the demo world lacks {statement}"
    return found


def _arrange(session: Any, instance: Path) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    now = utcnow()
    demo_company.seed_demo(session)
    demo_visitors.seed_visitors(session, now)
    demo_service_desk.seed_service_desk(session, now, instance / "uploads")
    demo_history.seed_tickets_and_visits(session)
    berlin = session.scalars(select(Site).where(Site.slug == "berlin")).one()
    berlin.visitor_photo = True  # the kiosk's photo step is one of its screens
    lena = accounts.find_by_email(session, EMPLOYEE)
    maya = accounts.find_by_email(session, "maya.johnson@example.com")
    assert lena is not None and maya is not None
    today = visitors.today_at(berlin, now)
    day_start, _ = local_day_bounds(today, ZoneInfo(berlin.time_zone))
    # Invitations for today (whatever the time of day now): Lena's page, and one per tablet.
    invited: dict[str, str] = {}
    visit_id = 0
    for n, who in enumerate(["Rosa Lindgren", *(f"Anna Kowalski {t}" for t in TABLETS)]):
        visit, code = visitors.invite(
            session,
            SYSTEM,
            lena,
            site=berlin,
            details=visitors.VisitorDetails.from_form(who, f"guest{n}@example.org", "Nordlicht"),
            day=today,
            start_time="08:00",
            end_time="20:00",
            note="",
            now=day_start,
        )
        visit_id = visit_id or visit.id
        if n:
            invited[list(TABLETS)[n - 1]] = code
    visitors.add_deny_entry(
        session, SYSTEM, site=None, name="Mallory Mauser", email="", reason="demo"
    )
    # A leaver holding a Berlin asset: offboarding opens a return task in the inbox.
    demo_logins = [EMPLOYEE, COORDINATOR, ADMIN, "maya.johnson@example.com"]
    holder = _one(
        session,
        select(User)
        .join(Asset, Asset.holder_id == User.id)
        .where(Asset.site_id == berlin.id, User.email.not_in(demo_logins)),
    )
    offboarding.offboard(session, SYSTEM, holder, now)
    codes = {}
    for tablet in TABLETS:
        _device, codes[tablet] = kiosk_devices.create(
            session, SYSTEM, berlin, f"Lobby {tablet}", now=now
        )
    room = _one(session, select(Room).where(Room.site_id == berlin.id, ~Room.needs_approval))
    link = CalendarLink(resource_id=room.id, provider=Provider.CALDAV)
    failure = JobFailure(
        task_name="deliver_now",
        task_path="portal.jobs.deliver_now",
        arguments={"args": [1], "kwargs": {}},
        error_type="SMTPServerDisconnected",
        error_message="Connection unexpectedly closed",
        traceback="Traceback (most recent call last):\n  ...",
        attempts=3,
    )
    session.add_all([link, failure])
    session.flush()
    on_berlin = Desk.site_id == berlin.id
    free_desk = _one(
        session,
        select(Desk).where(on_berlin, Desk.active.is_(True)).order_by(Desk.id.desc()),
    )
    ticket_of = select(Ticket.id).where(Ticket.requester_id == lena.id)
    facts = {
        "site": berlin.id,
        "day": (today + timedelta(days=7)).isoformat(),
        "desk_floor": free_desk.floor_id,
        "free_desk": free_desk.id,
        "desk_qr": free_desk.qr_code,
        "room": room.id,
        "room_floor": room.floor_id,
        "lena_booking": _one(session, select(Booking.id).where(Booking.user_id == lena.id)),
        "lena_request": _one(session, ticket_of.where(Ticket.kind == "request")),
        "lena_issue": _one(session, ticket_of.where(Ticket.kind == "issue")),
        "lena_visit": visit_id,
        "return_ticket": _one(
            session, select(Ticket.id).where(Ticket.kind == "return", Ticket.site_id == berlin.id)
        ),
        "order": _one(session, select(PurchaseOrder.id).where(PurchaseOrder.site_id == berlin.id)),
        "asset": _one(session, select(Asset.id).where(Asset.site_id == berlin.id)),
        "equipment": _one(session, select(Equipment.id).where(Equipment.site_id == berlin.id)),
        "dashboard": next(iter(DASHBOARDS)),
        "calendar_link": link.id,
        "item": _one(session, select(CatalogItem.id)),
        "kiosk": _one(session, select(KioskDevice.id).where(KioskDevice.site_id == berlin.id)),
        "maya": maya.id,
        "job_failure": failure.id,
        "message": _one(session, select(OutboxMessage.id)),
        "policy": _one(session, select(SlaPolicy.id)),
        "vendor": _one(session, select(Vendor.id)),
    }
    return facts, codes, invited


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    if not AXE.exists():
        missing_service("axe-core", f"{AXE.relative_to(ROOT)} not found (run `make install`)")
    folder = tmp_path_factory.mktemp("a11y")
    app = create_app(
        {
            "TESTING": True,
            "database_url": f"sqlite:///{folder / 'foyer.sqlite3'}",
            "instance_path": folder / "instance",
            "secret_key": "a11y-" + secrets.token_hex(16),
            "RATELIMIT_ENABLED": False,
        }
    )
    upgrade(app.extensions["foyer.engine"])
    _reader, writer = app.extensions["foyer.sessions"]
    with app.app_context(), writer() as session, session.begin():
        facts, codes, invited = _arrange(session, folder / "instance")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    url, server = serve(app)
    yield Demo(url, app, facts, codes, invited)
    server.shutdown()
    server.server_close()
    app.extensions["foyer.engine"].dispose()


# Running axe -----------------------------------------------------------------------------------
@dataclass
class Findings:
    """What axe found, over every page a test checked."""

    failures: list[str] = field(default_factory=list)
    other: Counter = field(default_factory=Counter)  # moderate/minor, by impact and rule
    checked: int = 0

    def report(self) -> str:
        return f"{len(self.failures)} serious/critical violation(s):\n\n" + "\n\n".join(
            self.failures
        )


def run_axe(page: Any, where: str, findings: Findings) -> None:
    """axe-core over the page as it is now; records serious and critical violations with page,
    width, rule, help and the offending nodes."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())  # a page that replaced its document since it loaded
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
            nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary,
                                       html: n.html.slice(0, 160)})),
          }));
        }"""
    )
    findings.checked += 1
    for violation in result:
        if violation["impact"] in FAILING_IMPACTS:
            nodes = "\n".join(
                f"      {n['target']}  {n['html']}\n        {n['summary'].replace(chr(10), ' ')}"
                for n in violation["nodes"][:6]
            )
            more = len(violation["nodes"]) - 6
            findings.failures.append(
                f"{where}: {violation['id']} ({violation['impact']}): {violation['help']}\n"
                f"    {violation['helpUrl']}\n{nodes}"
                + (f"\n      ... and {more} more" if more > 0 else "")
            )
        else:
            findings.other[(violation["impact"], violation["id"])] += 1


def _summary(name: str, findings: Findings, started: float) -> None:
    """One line per test on stdout (pytest -s, or the captured output of a failure)."""
    other = ", ".join(
        f"{impact} {rule} x{n}" for (impact, rule), n in sorted(findings.other.items())
    )
    print(
        f"axe {name}: {findings.checked} checks in {time.monotonic() - started:.1f}s, "
        f"{len(findings.failures)} serious/critical; {other or 'no moderate/minor'}"
    )


@functools.cache
def _axe_source() -> str:
    return AXE.read_text()


def _context(chromium: Any, demo: Demo, viewport: dict[str, int], **options: Any) -> Any:
    """A browser context that loads axe into every document through the DevTools protocol (CSP
    does not govern it), before the page's own scripts."""
    context = chromium.new_context(base_url=demo.url, viewport=viewport, locale="en-US", **options)
    context.set_default_timeout(15_000)
    context.add_init_script(_axe_source())
    limiter.enabled = False  # as in conftest's `page`: the limiter is one object per process
    return context


# The tests -------------------------------------------------------------------------------------
def test_every_page_is_checked_or_excused(demo: Demo) -> None:
    """A new page fails here until it is added to PAGES (or excused in NOT_PAGES with a reason);
    and each address in PAGES is really served by the endpoint it is listed under."""
    get_endpoints = {
        rule.endpoint for rule in demo.app.url_map.iter_rules() if "GET" in (rule.methods or ())
    }
    checked = {endpoint for endpoint, _who, _url in PAGES}
    groups = [checked, set(NOT_PAGES), set(KIOSK_WALK)]
    assert sum(map(len, groups)) == len(set().union(*groups)), "an endpoint in two lists"
    assert sorted(get_endpoints - set().union(*groups)) == [], "GET routes nobody checks"
    assert sorted(set().union(*groups) - get_endpoints) == [], "listed routes that do not exist"
    adapter = demo.app.url_map.bind("localhost")
    wrong = []
    for endpoint, _who, url in PAGES:
        path = url.format(**demo.facts).split("?")[0]
        found, _args = adapter.match(path, method="GET")
        if found != endpoint:
            wrong.append(f"{url} is {found}, not {endpoint}")
    assert wrong == []


@pytest.mark.parametrize("screen", list(VIEWPORTS))
@pytest.mark.parametrize("who", [ANONYMOUS, EMPLOYEE_ROLE, COORDINATOR_ROLE, ADMIN_ROLE])
def test_portal_pages_have_no_serious_violations(chromium, demo: Demo, who: str, screen: str):
    started, findings = time.monotonic(), Findings()
    context = _context(
        chromium, demo, VIEWPORTS[screen], is_mobile=screen == "phone", has_touch=screen == "phone"
    )
    page = context.new_page()
    try:
        if who != ANONYMOUS:
            sign_in(page, SIGN_IN_AS[who], PASSWORD)
        for endpoint, page_who, url in PAGES:
            if page_who != who:
                continue
            address = url.format(**demo.facts)
            response = page.goto(address)
            assert response is not None and response.status == 200, (
                f"{address} ({endpoint}) answered {response and response.status}"
            )
            htmx_settled(page)  # what a page loads on its own ("load" triggers) is in
            run_axe(page, f"{address} [{screen} {VIEWPORTS[screen]['width']}px, {who}]", findings)
        if who == ANONYMOUS:
            _error_states_of_sign_in(page, screen, findings)
        if who == EMPLOYEE_ROLE:
            _error_states_of_employee_forms(page, screen, findings)
    finally:
        context.close()
    _summary(f"{who}-{screen}", findings, started)
    assert not findings.failures, findings.report()


def _error_states_of_sign_in(page: Any, screen: str, findings: Findings) -> None:
    """A wrong password: the form comes back (422) with the message beside the field."""
    page.goto("/sign-in")
    page.get_by_label("Work e-mail").fill(EMPLOYEE)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    page.locator("#password-error").wait_for()
    run_axe(page, f"/sign-in, wrong password [{screen}]", findings)


def _error_states_of_employee_forms(page: Any, screen: str, findings: Findings) -> None:
    """An invitation with a broken e-mail address and times the wrong way round: htmx swaps in
    the form answered with 422, the messages beside the fields."""
    page.goto("/visitors/invite")
    page.get_by_label("Visitor's full name").fill("Ana María Gómez")
    page.get_by_label("E-mail").fill("ana.gomez@")
    page.get_by_label("Arrives").fill("15:00")
    page.get_by_label("Leaves").fill("14:00")
    with page.expect_response(lambda r: r.status == 422):
        page.get_by_role("button", name="Send invitation").click()
    page.locator("#email-error").wait_for()
    htmx_settled(page)
    run_axe(page, f"/visitors/invite after a 422 swap [{screen}]", findings)


# The kiosk ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def camera_browser(chromium: Any) -> Iterator[Any]:
    """Chromium with a fake camera (a test pattern), allowed without asking: the kiosk's
    invitation scanner and badge photo screens show the camera."""
    browser = chromium.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
        ],
    )
    yield browser
    browser.close()


def _sign_on_pad(page: Any) -> None:
    canvas = page.locator("canvas.signature-pad")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    points = [(0.1, 0.6), (0.3, 0.3), (0.5, 0.7), (0.7, 0.3), (0.9, 0.5)]
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.6)
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + box["width"] * x, box["y"] + box["height"] * y, steps=5)
    page.mouse.up()


@pytest.mark.parametrize("tablet", list(TABLETS))
def test_every_kiosk_step_has_no_serious_violations(camera_browser, demo: Demo, tablet: str):
    started, findings = time.monotonic(), Findings()
    context = _context(camera_browser, demo, TABLETS[tablet], has_touch=True)
    page = context.new_page()
    size = f"{tablet} {TABLETS[tablet]['width']}x{TABLETS[tablet]['height']}"

    def check(step: str) -> None:
        htmx_settled(page)
        run_axe(page, f"kiosk {step} [{size}]", findings)

    def fill(selector: str, text: str) -> None:
        """Type into a field of a screen htmx has just swapped in, once its listeners are on."""
        htmx_settled(page)
        page.fill(selector, text)

    def start_over() -> None:
        page.goto("/kiosk/start-over")
        page.locator(".screen-welcome").wait_for()

    try:
        page.goto("/kiosk/")
        check("pairing")
        fill("#f-code", "WRONG123")
        page.get_by_role("button", name="Connect").click()
        page.locator(".field-error").wait_for()
        check("pairing, wrong code (422)")
        fill("#f-code", demo.kiosk_codes[tablet])
        page.get_by_role("button", name="Connect").click()
        page.locator(".screen-welcome").wait_for()
        check("welcome")
        page.get_by_role("button", name="Deutsch").click()
        page.get_by_text("Ich habe eine Einladung").wait_for()
        check("welcome in German")
        page.get_by_role("button", name="English").click()
        page.get_by_text("I have an invitation").wait_for()

        # A walk-in: empty form, host search, agreement, photo, done, badge printed here.
        page.get_by_role("link", name="I'm here to see someone").click()
        page.locator(".screen-details").wait_for()
        check("walk-in details")
        page.get_by_role("button", name="Continue").click()
        page.locator(".field-error").first.wait_for()
        check("walk-in details with errors (422)")
        fill("#f-name", f"Siobhán O'Brien {tablet}")
        fill("#f-company", "Harbour & Co.")
        fill("#f-host-query", "we")
        page.locator(".host-option").first.wait_for()
        check("walk-in host search")
        page.locator(".host-option").first.click()
        fill("#f-purpose", "Interview")
        page.get_by_role("button", name="Continue").click()
        page.locator(".screen-agreement").wait_for()
        check("agreement")
        page.get_by_role("button", name=re.compile("I agree")).click()
        page.locator(".field-error").first.wait_for()
        check("agreement, not signed (422)")
        fill("#f-signed_name", f"Siobhán O'Brien {tablet}")
        _sign_on_pad(page)
        page.get_by_role("button", name=re.compile("I agree")).click()
        page.locator(".screen-photo").wait_for()
        # The (fake) camera shows a picture: only then is there a still to take.
        page.wait_for_function("() => document.querySelector('.photo-video').videoWidth > 0")
        check("photo")
        page.locator("[data-photo-take]").click()
        page.locator("[data-photo-submit]").wait_for()
        check("photo taken")
        page.locator("[data-photo-submit]").click()
        page.locator(".screen-done").wait_for()
        check("done")
        page.get_by_role("link", name="Print badge here").click()
        page.locator(".kiosk-print-bar").wait_for()
        check("badge printed in the browser")
        start_over()

        # An invitation: the code screen, an unknown code, by name, then confirmed.
        page.get_by_role("link", name="I have an invitation").click()
        page.locator(".screen-invitation").wait_for()
        check("invitation code")
        fill("#f-code", "ZZZZ-ZZZZ")
        page.locator("#code-form button[type=submit]").click()
        page.locator(".field-error").wait_for()
        check("invitation, unknown code (422)")
        page.get_by_text("Find me by name").click()
        fill("#f-q", "Anna Kow")
        page.locator(".match").first.wait_for()
        check("invitation found by name")
        start_over()
        page.get_by_role("link", name="I have an invitation").click()
        fill("#f-code", demo.invitations[tablet])
        page.locator("#code-form button[type=submit]").click()
        page.locator(".screen-confirm").wait_for()
        check("invitation confirmed by code")
        start_over()

        # The deny list sends the visitor to reception.
        page.get_by_role("link", name="I'm here to see someone").click()
        fill("#f-name", "Mallory Mauser")
        fill("#f-host-query", "jo")
        page.locator(".host-option").first.click()
        page.get_by_role("button", name="Continue").click()
        page.locator(".screen-reception").wait_for()
        check("see reception")
        start_over()

        # Checking out by name.
        page.get_by_role("link", name="Check out").first.click()
        page.locator(".screen-check-out").wait_for()
        check("check out")
        fill("#f-q", f"O'Brien {tablet}")
        page.locator(".match").first.wait_for()
        check("check out, found by name")
        page.locator(".match").first.click()
        page.locator(".screen-check-out-confirm").wait_for()
        check("check out, confirm")
        page.get_by_role("button", name="Yes, check me out").click()
        page.locator(".screen-goodbye").wait_for()
        check("goodbye")
        start_over()

        # The idle warning, and an address that is no kiosk screen.
        page.get_by_role("link", name="I'm here to see someone").click()
        fill("#f-name", "Zoë")
        page.evaluate("document.querySelector('#stage > .screen').dataset.idle = '16'")
        page.locator("#idle-overlay").wait_for(state="visible", timeout=5_000)
        check("idle warning")
        page.goto("/kiosk/walk-in/nonsense")
        check("problem screen (404)")
    finally:
        context.close()
    _summary(f"kiosk-{tablet}", findings, started)
    assert not findings.failures, findings.report()
