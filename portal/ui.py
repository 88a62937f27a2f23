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


def navigation() -> list[NavItem]:
    if not current_user.is_authenticated:
        return []
    items = [
        NavItem("My day", "home.my_day", "home"),
        NavItem("Desks", "desks.floor_plan", "desks"),
        NavItem("Rooms", "rooms.search", "rooms"),
        NavItem("My bookings", "bookings.mine", "bookings.mine"),
        NavItem("Visitors", "visitors.index", "visitors"),
    ]
    if permissions.is_coordinator_anywhere(current_user):
        items += [
            NavItem("Approvals", "bookings.approvals", "bookings.approvals"),
            NavItem("Lobby", "lobby.index", "lobby", ("admin.kiosks", "admin.visitor_settings")),
            NavItem("Spaces", "admin.spaces.index", "admin.spaces"),
            NavItem("Rules", "admin.rules.index", "admin.rules"),
        ]
    if permissions.is_admin(current_user):
        items += [
            NavItem("People", "admin.users.users", "admin.users"),
            NavItem("Audit log", "admin.audit.audit_log", "admin.audit"),
            NavItem("Outbox", "admin.outbox.outbox", "admin.outbox"),
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
            "show_roll_call": current_user.is_authenticated
            and permissions.is_coordinator_anywhere(current_user),
            "sso_enabled": settings.oidc_enabled,
            "sso_name": settings.oidc_provider_name,
            "password_login": settings.password_login,
        }

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
