"""The lobby kiosk: a paired tablet's own pages, in the visitor's language.

It has its own blueprint, device identity (kiosk/device.py), CSRF tokens and translations, and
shares nothing with the portal's sign-in: see kiosk/device.py for why."""

from __future__ import annotations

from flask import Flask


def configure_kiosk(app: Flask) -> None:
    """Call from create_app: the kiosk's blueprint and its translations."""
    from kiosk.locale import configure_babel
    from kiosk.views import bp
    from portal.security import csrf

    configure_babel(app)
    # The kiosk checks its own CSRF tokens, bound to the device rather than to a portal session
    # cookie that an employee's sign-in or sign-out in the same browser would replace.
    csrf.exempt(bp)
    app.register_blueprint(bp)
