"""Every route in the URL map, walked: each non-public endpoint refuses anonymous visitors, the wrong
role and the wrong site (or the wrong person), for plain and htmx requests, GET and POST.

The world is the demo company (two sites, a coordinator of each, an employee, an admin, and real
objects of every kind), loaded once into a SQLite file. The checks only go through HTTP, so they say
nothing database-specific; they run on SQLite only to stay fast.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.db import make_engine, utcnow
from portal.models import (
    Asset,
    Blackout,
    Booking,
    Desk,
    Equipment,
    EquipmentLoan,
    Floor,
    IssuePhoto,
    KioskDevice,
    LoginSession,
    Notice,
    OutboxMessage,
    PurchaseOrder,
    RequestLine,
    Resource,
    Room,
    Site,
    Ticket,
    User,
    Vendor,
    Visit,
)
from portal.models.access_control import AccessGrant
from portal.models.budgets import SiteHoliday
from portal.models.calendar_sync import CalendarLink, Provider
from portal.models.feeds import CalendarFeed, FeedKind
from portal.models.job_failures import JobFailure
from portal.schema import upgrade
from portal.services import demo_company, demo_history, demo_service_desk, demo_visitors
from portal.services.dashboards import DASHBOARDS
from tests.conftest import Browser, make_test_app

# Endpoints anyone may call, each with the reason it is safe.
PUBLIC: dict[str, str] = {
    "auth.login": "the sign-in page itself",
    "auth.sso_start": "starts single sign-on; the provider authenticates",
    "auth.sso_callback": "single sign-on callback; the state and code are verified",
    "auth.logout": "signing out needs no session (CSRF still checked)",
    "ops.healthz": "liveness probe for the load balancer, no data",
    "ops.readyz": "readiness probe for the load balancer, no data",
    "metrics.scrape": "Prometheus scrape: its own bearer token (tests/test_metrics.py)",
    "static": "CSS, JS, images, no data",
    "feeds.feed": "calendar feed: the secret token in the URL is the credential (404 otherwise)",
    "door_events.receive": "door controller webhook: HMAC signature checked (test_access_control)",
    "kiosk.home": "lobby kiosk: authenticates by its paired device cookie",
    "kiosk.elsewhere": "lobby kiosk catch-all: answers 404 to unknown kiosk paths",
    "kiosk.badge_css": "lobby kiosk: the badge stylesheet, no data",
    "kiosk.static": "lobby kiosk static files, no data",
    "kiosk.pair": "lobby kiosk pairing: the one-time pairing code is the credential",
    "kiosk.language": "lobby kiosk: choose the visitor's language, device cookie checked",
    "kiosk.start_over": "lobby kiosk: device cookie",
    "kiosk.hosts": "lobby kiosk host search: device cookie",
    "kiosk.walk_in": "lobby kiosk: device cookie",
    "kiosk.walk_in_step": "lobby kiosk: device cookie",
    "kiosk.invitation": "lobby kiosk: device cookie",
    "kiosk.invitation_step": "lobby kiosk: device cookie",
    "kiosk.invitation_code": "lobby kiosk: device cookie",
    "kiosk.invitation_find": "lobby kiosk: device cookie",
    "kiosk.invitation_matches": "lobby kiosk: device cookie",
    "kiosk.invitation_pick": "lobby kiosk: device cookie",
    "kiosk.check_out": "lobby kiosk: device cookie",
    "kiosk.check_out_badge": "lobby kiosk: device cookie",
    "kiosk.check_out_confirm": "lobby kiosk: device cookie",
    "kiosk.check_out_find": "lobby kiosk: device cookie",
    "kiosk.check_out_matches": "lobby kiosk: device cookie",
    "kiosk.check_out_pick": "lobby kiosk: device cookie",
    "kiosk.badge_pdf": "lobby kiosk badge: device cookie and a signed badge ticket",
    "kiosk.badge_print": "lobby kiosk badge: device cookie and a signed badge ticket",
    "kiosk.badge_status": "lobby kiosk badge: device cookie and a signed badge ticket",
}


LENA = "lena.fischer@example.com"  # employee at site A
JONAS = "jonas.weber@example.com"  # coordinator of site A
DEMO_EMPLOYEES = (LENA, JONAS)


@dataclass
class World:
    app: Flask
    site_a: int  # Berlin: Jonas coordinates it, Lena works there
    site_b: int  # New York: Maya coordinates it
    args_b: dict[str, Any]  # URL arguments naming real objects of site B (or of someone else)


def _first(session: Any, statement: Any) -> int:
    found = session.scalar(statement.limit(1))
    assert found is not None, f"the seeded world lacks {statement}"
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("permissions")
    url = f"sqlite:///{tmp / 'foyer.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app = make_test_app(tmp, url)
    _reader, writer = app.extensions["foyer.sessions"]
    now = utcnow()
    with writer() as s, s.begin():
        demo_company.seed_demo(s)
        demo_visitors.seed_visitors(s, now)
        demo_service_desk.seed_service_desk(s, now, tmp / "instance" / "uploads")
        demo_history.seed_tickets_and_visits(s)  # the only visits and tickets on site B
        a = s.scalar(select(Site.id).where(Site.slug == "berlin"))
        b = s.scalar(select(Site.id).where(Site.slug != "berlin"))
        maya = s.scalar(select(User).where(User.email == "maya.johnson@example.com"))
        floor_b_id = _first(s, select(Floor.id).where(Floor.building.has(site_id=b)))
        on_site_b = Resource.site_id == b
        # objects the demo does not create: made directly, on site B
        blackout = Blackout(site_id=b, starts_at=now, ends_at=now + timedelta(hours=1))
        holiday = SiteHoliday(site_id=b, day=date.today() + timedelta(days=30), name="x")
        room_b = _first(s, select(Room.id).where(Room.site_id == b))
        vendor = _first(s, select(Vendor.id))
        order = PurchaseOrder(number="PO-WALK-0001", vendor_id=vendor, site_id=b)
        link = CalendarLink(resource_id=room_b, provider=Provider.CALDAV)
        feed = CalendarFeed(owner_id=maya.id, kind=FeedKind.MINE)
        camera = Equipment(site_id=b, name="Walk-test camera", qr_code="walk-test-camera")
        s.add_all([blackout, holiday, order, link, feed, camera])
        s.flush()
        args = {
            "site_id": b,
            "site_slug": s.get(Site, b).slug,
            "floor_id": floor_b_id,
            "desk_id": _first(s, select(Desk.id).where(on_site_b)),
            "room_id": room_b,
            "resource_id": _first(s, select(Resource.id).where(on_site_b)),
            "booking_id": _first(
                s,
                select(Booking.id).where(
                    Booking.resource_id.in_(select(Resource.id).where(on_site_b)),
                    Booking.user_id.not_in(select(User.id).where(User.email.in_(DEMO_EMPLOYEES))),
                ),
            ),
            "ticket_id": _first(s, select(Ticket.id).where(Ticket.site_id == b)),
            "visit_id": _first(s, select(Visit.id).where(Visit.site_id == b)),
            "asset_id": _first(s, select(Asset.id).where(Asset.site_id == b)),
            "order_id": order.id,
            "link_id": link.id,
            "feed_id": feed.id,
            "equipment_id": camera.id,
            "device_id": _first(s, select(KioskDevice.id).where(KioskDevice.site_id == b)),
            "blackout_id": blackout.id,
            "holiday_id": holiday.id,
            "user_id": maya.id,
            "slug": next(iter(DASHBOARDS)),
        }
        args["line_id"] = s.scalar(select(RequestLine.id).limit(1)) or 1
        args["photo_id"] = s.scalar(select(IssuePhoto.id).limit(1)) or 1
        args["loan_id"] = s.scalar(select(EquipmentLoan.id).limit(1)) or 1
        args["notice_id"] = s.scalar(select(Notice.id).limit(1)) or 1
        args["message_id"] = s.scalar(select(OutboxMessage.id).limit(1)) or 1
        args["grant_id"] = s.scalar(select(AccessGrant.id).limit(1)) or 1
        args["failure_id"] = s.scalar(select(JobFailure.id).limit(1)) or 1
    # a live session of someone else (Maya, site B's coordinator), for "end that session"
    signed_in(app, "maya.johnson@example.com")
    with writer() as s:
        args["session_id"] = s.scalar(
            select(LoginSession.id).where(LoginSession.user_id == args["user_id"])
        )
    yield World(app, a, b, args)
    app.extensions["foyer.engine"].dispose()


# Values for URL arguments that name no database object.
PLAIN_ARGS = {
    "filename": "css/booking.css",
    "name": "plan.png",
    "kind": "photo",
    "scope": "following",
    "step": "name",
    "ticket": "x",
    "token": "no-such-token",
    "code": "no-such-code",
    "_anything": "nothing-here",
    "entry_id": 1,
    "mapping_id": 1,
    "policy_id": 1,
    "vendor_id": 1,
    "item_id": 1,
    "view_id": 1,
}


def url_for_rule(rule: Any, args: dict[str, Any]) -> str:
    values = {name: args.get(name, PLAIN_ARGS.get(name)) for name in rule.arguments}
    missing = [name for name, value in values.items() if value is None]
    assert not missing, f"no value for {missing} in {rule.rule}"
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(values[m.group(1)]), rule.rule)


def signed_in(app: Flask, email: str | None) -> tuple[Browser, str]:
    app.test_client_class = Browser
    client: Browser = app.test_client()  # type: ignore[assignment]
    if email:
        client.sign_in(email, demo_company.DEMO_PASSWORD)
    return client, client.csrf_token()


def call(client: Browser, token: str, method: str, url: str, htmx: bool = False) -> Any:
    headers = {"X-CSRFToken": token}
    if htmx:
        headers["HX-Request"] = "true"
    if method == "GET":
        return client.get(url, headers=headers)
    return client.post(url, data={"csrf_token": token}, headers=headers)


def walk(app: Flask) -> Iterator[tuple[str, str, Any]]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            yield rule.endpoint, method, rule


# Admins only: employees and coordinators get 403.
ADMIN_ONLY = {
    "admin.audit.audit_log",
    "admin.audit.export",
    "admin.catalog.edit_item",
    "admin.catalog.new_item",
    "admin.catalog.reactivate",
    "admin.catalog.remove_photo",
    "admin.catalog.retire",
    "admin.jobs.dismiss",
    "admin.jobs.failure",
    "admin.jobs.index",
    "admin.jobs.retry",
    "admin.outbox.invitation",
    "admin.outbox.message",
    "admin.outbox.outbox",
    "admin.outbox.retry",
    "admin.service_desk.create_policy",
    "admin.service_desk.create_vendor",
    "admin.service_desk.delete_policy",
    "admin.service_desk.edit_policy",
    "admin.service_desk.edit_vendor",
    "admin.service_desk.new_policy",
    "admin.service_desk.new_vendor",
    "admin.service_desk.toggle_vendor",
    "admin.service_desk.update_policy",
    "admin.service_desk.update_vendor",
    "admin.settings.add_sso_mapping",
    "admin.settings.copy_sso_defaults",
    "admin.settings.remove_sso_mapping",
    "admin.settings.sso_mappings",
    "admin.users.deactivate",
    "admin.users.grant",
    "admin.users.person",
    "admin.users.reactivate",
    "admin.users.revoke",
    "admin.users.sign_out_everywhere",
    "admin.users.users",
    "feeds.admin_list",
}

# Coordinators (of some site) and admins: employees get 403 (or 404).
COORDINATOR = {
    "admin.access_control.day_pass",
    "admin.access_control.import_events",
    "admin.access_control.index",
    "admin.access_control.retry",
    "admin.access_control.save",
    "admin.access_control.site",
    "admin.calendar_links.create",
    "admin.calendar_links.index",
    "admin.calendar_links.link",
    "admin.calendar_links.pause",
    "admin.calendar_links.remove",
    "admin.calendar_links.sync_now",
    "admin.calendar_links.test",
    "admin.calendar_links.update",
    "admin.catalog.index",
    "admin.catalog.set_stock",
    "admin.catalog.stock",
    "admin.kiosks.create",
    "admin.kiosks.device",
    "admin.kiosks.index",
    "admin.kiosks.pairing_code",
    "admin.kiosks.printer",
    "admin.kiosks.revoke",
    "admin.rules.add_blackout",
    "admin.rules.index",
    "admin.rules.remove_blackout",
    "admin.rules.save",
    "admin.rules.site",
    "admin.service_desk.index",
    "admin.service_desk.policies",
    "admin.service_desk.vendors",
    "admin.settings.add_holiday",
    "admin.settings.budgets_index",
    "admin.settings.budgets_site",
    "admin.settings.index",
    "admin.settings.remove_holiday",
    "admin.settings.save_budgets",
    "admin.settings.save_hours",
    "admin.settings.site",
    "admin.spaces.add_floor",
    "admin.spaces.disable",
    "admin.spaces.edit_desk",
    "admin.spaces.edit_room",
    "admin.spaces.enable",
    "admin.spaces.floor",
    "admin.spaces.index",
    "admin.spaces.new_desk",
    "admin.spaces.new_room",
    "admin.spaces.place",
    "admin.spaces.placement",
    "admin.spaces.plan_image",
    "admin.spaces.qr_sheet",
    "admin.spaces.room_photo",
    "admin.spaces.site",
    "admin.spaces.unplace",
    "admin.spaces.upload_plan",
    "admin.visitor_settings.add_deny",
    "admin.visitor_settings.index",
    "admin.visitor_settings.publish",
    "admin.visitor_settings.remove_deny",
    "admin.visitor_settings.save",
    "admin.visitor_settings.site",
    "bookings.approvals",
    "bookings.decide",
    "dashboards.bookings_csv",
    "dashboards.download_csv",
    "dashboards.download_xlsx",
    "dashboards.hub",
    "dashboards.show",
    "equipment.add_asset",
    "equipment.asset",
    "equipment.create_equipment",
    "equipment.edit_equipment",
    "equipment.hand_over",
    "equipment.loanable",
    "equipment.lost",
    "equipment.new_asset",
    "equipment.new_equipment",
    "equipment.register",
    "equipment.retire",
    "equipment.returned",
    "equipment.update_equipment",
    "inbox.bulk",
    "inbox.delete_view",
    "inbox.index",
    "inbox.return_task",
    "inbox.save_view",
    "inventory.correct_count",
    "inventory.create_orders",
    "inventory.index",
    "inventory.new_orders",
    "inventory.order",
    "inventory.order_csv",
    "inventory.order_pdf",
    "inventory.orders",
    "inventory.receive_order",
    "inventory.receive_stock",
    "lobby.check_out",
    "lobby.export",
    "lobby.index",
    "lobby.log",
    "lobby.mark",
    "lobby.roll_call",
    "lobby.roll_call_home",
}

# Anyone signed in; anonymous visitors are sent to sign in.
SIGNED_IN = {
    "account.end_one_session",
    "account.end_other_sessions",
    "account.set_time_zone",
    "account.show",
    "bookings.cancel",
    "bookings.cancel_series_part",
    "bookings.check_in",
    "bookings.detail",
    "bookings.extend",
    "bookings.mine",
    "bookings.move",
    "bookings.qr",
    "desks.book",
    "desks.confirm",
    "desks.floor_plan",
    "equipment.accept",
    "equipment.browse",
    "equipment.cancel_loan",
    "equipment.loan_form",
    "equipment.mine",
    "equipment.request_return",
    "equipment.reserve",
    "feeds.create",
    "feeds.index",
    "feeds.privacy",
    "feeds.regenerate",
    "feeds.revoke",
    "home.index",
    "home.my_day",
    "issues.create",
    "issues.detail",
    "issues.me_too",
    "issues.mine",
    "issues.new",
    "issues.photo",
    "issues.place",
    "notices.open_notice",
    "notices.poll",
    "notices.read",
    "notices.read_all",
    "requests.approve_line",
    "requests.cancel",
    "requests.catalog",
    "requests.close",
    "requests.decline_line",
    "requests.detail",
    "requests.draft_add",
    "requests.draft_set",
    "requests.item_photo",
    "requests.mark_delivered",
    "requests.mark_ready",
    "requests.mine",
    "requests.new",
    "requests.submit",
    "rooms.book",
    "rooms.book_form",
    "rooms.search",
    "rooms.timeline",
    "service_hub.index",
    "tickets.assign",
    "tickets.cancel",
    "tickets.change_status",
    "tickets.comment",
    "visitors.badge",
    "visitors.badge_pdf",
    "visitors.cancel",
    "visitors.check_out",
    "visitors.detail",
    "visitors.image",
    "visitors.index",
    "visitors.invite",
    "visitors.invite_form",
    "visitors.label_css",
    "visitors.reprint",
}

# A coordinator of site A asking for site B's object gets 404.
SITE_SCOPED = {
    "admin.access_control.day_pass",
    "admin.access_control.import_events",
    "admin.access_control.retry",
    "admin.access_control.save",
    "admin.access_control.site",
    "admin.calendar_links.link",
    "admin.calendar_links.pause",
    "admin.calendar_links.remove",
    "admin.calendar_links.sync_now",
    "admin.calendar_links.test",
    "admin.calendar_links.update",
    "admin.catalog.set_stock",
    "admin.kiosks.device",
    "admin.kiosks.pairing_code",
    "admin.kiosks.printer",
    "admin.kiosks.revoke",
    "admin.rules.add_blackout",
    "admin.rules.remove_blackout",
    "admin.rules.save",
    "admin.rules.site",
    "admin.settings.add_holiday",
    "admin.settings.budgets_site",
    "admin.settings.remove_holiday",
    "admin.settings.save_budgets",
    "admin.settings.save_hours",
    "admin.settings.site",
    "admin.spaces.add_floor",
    "admin.spaces.disable",
    "admin.spaces.edit_desk",
    "admin.spaces.edit_room",
    "admin.spaces.enable",
    "admin.spaces.floor",
    "admin.spaces.new_desk",
    "admin.spaces.new_room",
    "admin.spaces.place",
    "admin.spaces.placement",
    "admin.spaces.plan_image",
    "admin.spaces.qr_sheet",
    "admin.spaces.room_photo",
    "admin.spaces.site",
    "admin.spaces.unplace",
    "admin.spaces.upload_plan",
    "admin.visitor_settings.add_deny",
    "admin.visitor_settings.publish",
    "admin.visitor_settings.remove_deny",
    "admin.visitor_settings.save",
    "admin.visitor_settings.site",
    "bookings.decide",
    "equipment.asset",
    "equipment.edit_equipment",
    "equipment.hand_over",
    "equipment.lost",
    "equipment.retire",
    "equipment.returned",
    "equipment.update_equipment",
    "inbox.delete_view",
    "inbox.return_task",
    "inventory.correct_count",
    "inventory.create_orders",
    "inventory.new_orders",
    "inventory.order",
    "inventory.order_csv",
    "inventory.order_pdf",
    "inventory.receive_order",
    "inventory.receive_stock",
    "lobby.check_out",
    "lobby.export",
    "lobby.log",
    "lobby.mark",
    "lobby.roll_call",
}

# An employee asking for someone else's object (on site B) gets 404.
OWN_OBJECTS = {
    "account.end_one_session",
    "bookings.cancel",
    "bookings.cancel_series_part",
    "bookings.check_in",
    "bookings.detail",
    "bookings.extend",
    "bookings.move",
    "desks.confirm",
    "equipment.accept",
    "equipment.request_return",
    "feeds.privacy",
    "feeds.regenerate",
    "feeds.revoke",
    "issues.detail",
    "issues.me_too",
    "issues.photo",
    "notices.open_notice",
    "requests.approve_line",
    "requests.cancel",
    "requests.close",
    "requests.decline_line",
    "requests.detail",
    "requests.mark_delivered",
    "requests.mark_ready",
    "tickets.assign",
    "tickets.cancel",
    "tickets.change_status",
    "tickets.comment",
    "visitors.badge",
    "visitors.badge_pdf",
    "visitors.cancel",
    "visitors.check_out",
    "visitors.detail",
    "visitors.image",
    "visitors.reprint",
}

# Redirects for everyone (no data behind them), so htmx gets the redirect too.
PLAIN_REDIRECTS = {"home.index"}


@pytest.fixture(scope="module")
def people(world: World) -> dict[str, tuple[Browser, str]]:
    return {
        "anonymous": signed_in(world.app, None),
        "employee": signed_in(world.app, LENA),
        "coordinator": signed_in(world.app, JONAS),
        "coordinator_b": signed_in(world.app, "maya.johnson@example.com"),
    }


def answers(
    world: World,
    who: tuple[Browser, str],
    endpoints: set[str],
    htmx: bool,
    methods: tuple[str, ...] = ("GET", "POST"),
) -> Iterator[tuple[str, str, Any]]:
    client, token = who
    for endpoint, method, rule in walk(world.app):
        if endpoint in endpoints and method in methods:
            url = url_for_rule(rule, world.args_b)
            yield (
                f"{method} {url} ({endpoint}{', htmx' if htmx else ''})",
                method,
                call(client, token, method, url, htmx=htmx),
            )


def test_every_endpoint_is_classified(world):
    """A new route fails here until someone decides who may call it."""
    groups = [set(PUBLIC), ADMIN_ONLY, COORDINATOR, SIGNED_IN]
    assert sum(len(g) for g in groups) == len(set().union(*groups)), "an endpoint in two groups"
    assert {rule.endpoint for rule in world.app.url_map.iter_rules()} == set().union(*groups)
    assert SITE_SCOPED <= COORDINATOR
    assert OWN_OBJECTS <= SIGNED_IN


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_anonymous_visitors_are_sent_to_sign_in(world, people, htmx):
    refused = []
    for where, _method, response in answers(
        world, people["anonymous"], ADMIN_ONLY | COORDINATOR | SIGNED_IN, htmx
    ):
        if htmx and where.split("(")[1].split(",")[0] not in PLAIN_REDIRECTS:
            ok = response.status_code == 401
        else:
            ok = response.status_code in (302, 303) and response.headers["Location"].startswith(
                "/sign-in"
            )
        if not ok:
            refused.append(f"{where}: {response.status_code}")
    assert refused == []


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_employees_are_refused_coordinator_and_admin_pages(world, people, htmx):
    employee = people["employee"]
    assert let_in(world, employee, ADMIN_ONLY | COORDINATOR, htmx, expected=(403, 404)) == []


def let_in(world, person, endpoints, htmx, expected: tuple[int, ...] | int) -> list[str]:
    """The endpoints that answered `person` anything but the `expected` refusal(s)."""
    return [
        f"{where}: {response.status_code}"
        for where, _m, response in answers(world, person, endpoints, htmx)
        if response.status_code not in (expected if isinstance(expected, tuple) else (expected,))
    ]


def test_coordinators_are_refused_admin_pages(world, people):
    assert let_in(world, people["coordinator"], ADMIN_ONLY, False, expected=403) == []


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_coordinator_sees_no_object_of_another_site(world, people, htmx):
    assert let_in(world, people["coordinator"], SITE_SCOPED, htmx, expected=404) == []


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_an_employee_sees_nobody_elses_objects(world, people, htmx):
    assert let_in(world, people["employee"], OWN_OBJECTS, htmx, expected=404) == []


# Site-B pages whose object the world does not hold (a 404 for everyone), so the control skips them.
NO_OBJECT_ON_SITE_B = {
    "admin.spaces.plan_image",
    "admin.spaces.room_photo",
    "inbox.return_task",  # answers only for tickets with a return task
}


def test_the_site_b_coordinator_reaches_the_same_pages(world, people):
    """Control: the 404s above come from the permission check, not from made-up ids."""
    missing = [
        f"{where}: {response.status_code}"
        for where, method, response in answers(
            world, people["coordinator_b"], SITE_SCOPED - NO_OBJECT_ON_SITE_B, False
        )
        if method == "GET" and response.status_code == 404
    ]
    assert missing == []


def test_dashboards_refuse_another_sites_figures(world, people):
    """Dashboards pick their site from the query string: another site's id is a 404, every
    dashboard and every download; its own coordinator gets the figures."""
    coordinator, _ = people["coordinator"]
    coordinator_b, _ = people["coordinator_b"]
    urls = [f"/dashboards/bookings.csv?site={world.site_b}"] + [
        f"/dashboards/{slug}{suffix}?site={world.site_b}"
        for slug in DASHBOARDS
        for suffix in ("", ".csv", ".xlsx")
    ]
    assert {url: coordinator.get(url).status_code for url in urls} == dict.fromkeys(urls, 404)
    assert {url: coordinator_b.get(url).status_code for url in urls} == dict.fromkeys(urls, 200)
