"""Template set-up: navigation that lists only areas that exist, time filters, and the htmx
response conventions (Vary, flash messages as out-of-band swaps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, Response, current_app, get_flashed_messages, render_template
from flask_login import current_user

from portal import htmx, permissions
from portal.login import is_background_poll
from portal.timezones import format_local, zone_for


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    section: str  # endpoints equal to this or starting with "<section>." mark the item current
    also: tuple[str, ...] = ()  # more sections shown under this item (e.g. the lobby's admin pages)

    def is_current(self, endpoint: str | None) -> bool:
        return bool(endpoint) and any(
            endpoint == section or endpoint.startswith(section + ".")
            for section in (self.section, *self.also)
        )


# The employee's side of the service desk, and the coordinator's (the inbox and what it runs on:
# room approvals, stock, purchase orders, assets, loanable equipment, catalog, vendors, SLAs).
EMPLOYEE_SERVICE_DESK = (
    "requests",
    "issues",
    "equipment.mine",
    "equipment.browse",
    "equipment.loan_form",
    "equipment.reserve",
)
COORDINATOR_SERVICE_DESK = (
    "bookings.approvals",
    "inventory",
    "equipment.register",
    "equipment.asset",
    "equipment.new_asset",
    "equipment.loanable",
    "equipment.new_equipment",
    "equipment.edit_equipment",
    "admin.catalog",
    "admin.service_desk",
)


def navigation() -> list[NavItem]:
    if not current_user.is_authenticated:
        return []
    items = [
        NavItem("My day", "home.my_day", "home"),
        NavItem("Desks", "desks.floor_plan", "desks"),
        NavItem("Rooms", "rooms.search", "rooms"),
        NavItem("My bookings", "bookings.mine", "bookings.mine"),
        NavItem("Visitors", "visitors.index", "visitors"),
        NavItem("Service desk", "service_hub.index", "service_hub", EMPLOYEE_SERVICE_DESK),
    ]
    if permissions.is_coordinator_anywhere(current_user):
        items += [
            NavItem("Inbox", "inbox.index", "inbox", COORDINATOR_SERVICE_DESK),
            NavItem("Lobby", "lobby.index", "lobby", ("admin.kiosks", "admin.visitor_settings")),
            NavItem("Dashboards", "dashboards.hub", "dashboards"),
        ]
    return items


def manage_navigation() -> list[NavItem]:
    """Set-up areas, visited now and then: behind a "Manage" menu so the daily ones fit."""
    if not current_user.is_authenticated:
        return []
    items = []
    if permissions.is_coordinator_anywhere(current_user):
        items += [
            NavItem("Spaces", "admin.spaces.index", "admin.spaces"),
            NavItem("Booking rules", "admin.rules.index", "admin.rules"),
            NavItem("Access control", "admin.access_control.index", "admin.access_control"),
            NavItem("Calendars", "admin.calendar_links.index", "admin.calendar_links"),
            NavItem("Settings", "admin.settings.index", "admin.settings"),
        ]
    if permissions.is_admin(current_user):
        items += [
            NavItem("People", "admin.users.users", "admin.users"),
            NavItem("Audit log", "admin.audit.audit_log", "admin.audit"),
            NavItem("Outbox", "admin.outbox.outbox", "admin.outbox"),
            NavItem("Jobs", "admin.jobs.index", "admin.jobs"),
            NavItem("Calendar feeds", "feeds.admin_list", "feeds.admin_list"),
        ]
    return items


def configure_templates(app: Flask) -> None:
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def inject() -> dict[str, Any]:
        if is_background_poll():
            return {}  # a header poll renders a fragment: no navigation, no extra queries
        settings = current_app.extensions["foyer.settings"]
        return {
            "nav_items": navigation(),
            "manage_items": manage_navigation(),
            "show_roll_call": current_user.is_authenticated
            and permissions.is_coordinator_anywhere(current_user),
            "sso_enabled": settings.oidc_enabled,
            "sso_name": settings.oidc_provider_name,
            "password_login": settings.password_login,
        }

    @app.template_filter("money")
    def money(cents: int | None) -> str:
        """Integer cents in the installation's currency: "€1,234.50"."""
        symbol = current_app.extensions["foyer.settings"].currency_symbol
        value = (cents or 0) / 100
        sign = "−" if value < 0 else ""
        return f"{sign}{symbol}{abs(value):,.2f}"

    @app.template_filter("local")
    def local_time(instant: datetime | None, site: Any = None, with_date: bool = True) -> str:
        user = current_user if current_user.is_authenticated else None
        return format_local(instant, zone_for(user, site), with_date)

    @app.after_request
    def htmx_conventions(response: Response) -> Response:
        htmx.add_vary(response)
        if (
            htmx.wants_fragment()
            and response.mimetype == "text/html"
            and not response.direct_passthrough
            and "HX-Redirect" not in response.headers
            and "HX-Refresh" not in response.headers
            and not is_background_poll()  # a poll must not swallow the next page's messages
        ):
            messages = get_flashed_messages(with_categories=True)
            if messages:
                oob = render_template("_partials/flash.html", messages=messages, oob=True)
                response.set_data(response.get_data(as_text=True) + oob)
        return response
