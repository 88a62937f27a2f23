"""Feature blueprints: thin views that parse input, call services, commit once and render."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from portal.blueprints import (
        account,
        admin,
        auth,
        bookings,
        dashboards,
        desks,
        door_events,
        equipment,
        feeds,
        home,
        inbox,
        inventory,
        issues,
        lobby,
        metrics,
        notices,
        ops,
        requests,
        rooms,
        service_hub,
        tickets,
        visitors,
    )

    for module in (
        ops,
        auth,
        home,
        desks,
        rooms,
        bookings,
        visitors,
        lobby,
        notices,
        service_hub,
        requests,
        issues,
        inventory,
        equipment,
        inbox,
        tickets,
        feeds,
        door_events,
        dashboards,
        metrics,
        account,
        admin,
    ):
        app.register_blueprint(module.bp)
