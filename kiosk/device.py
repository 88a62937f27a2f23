"""Who is asking: the paired tablet behind a kiosk request, its cookie, and the kiosk's own CSRF
tokens and signed tickets.

The kiosk shares nothing with the portal's sign-in. Its cookie (path /kiosk, HttpOnly,
SameSite=Strict) carries the device token from `kiosk_devices.pair`; the portal never reads it, and
kiosk requests never load the portal's signed-in user. Its CSRF token is an HMAC of the device's
token digest, so it lives exactly as long as the pairing: a kiosk page open for days keeps working,
and an employee signing in or out in the same browser cannot break it. Before pairing, a random
cookie of its own stands in for the device (double submit)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from flask import Response, current_app, g, request
from flask_login import AnonymousUserMixin
from itsdangerous import BadData, URLSafeTimedSerializer

from portal.db import utcnow
from portal.models import KioskDevice
from portal.request_scope import db
from portal.security import is_local_request
from portal.services import kiosk_devices

DEVICE_COOKIE = "foyer_kiosk"
PAIRING_COOKIE = "foyer_kiosk_pairing"
COOKIE_PATH = "/kiosk"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie; renewed on every visit


def isolate_from_portal_session() -> None:
    """Make Flask-Login see nobody for the rest of this request, so a portal session in the
    same browser is never loaded, touched or trusted by a kiosk page."""
    g._login_user = AnonymousUserMixin()


def _secret() -> bytes:
    return current_app.extensions["foyer.settings"].secret_key.encode()


def current_device() -> KioskDevice | None:
    """The paired, unrevoked tablet making this request, or None (cached per request)."""
    if "kiosk_device" in g:
        return g.kiosk_device
    token = request.cookies.get(DEVICE_COOKIE)
    device = None
    if token:
        session = db()
        device = kiosk_devices.authenticate(session, token, now=utcnow())
        if device is not None and device in session.dirty and request.method == "GET":
            _note_seen_in_own_transaction(device)
    g.kiosk_device = device
    return device


def _note_seen_in_own_transaction(device: KioskDevice) -> None:
    # Reading requests stay read-only: "last seen" is written in a short transaction of its own
    # (as the portal does for its sessions), and the reading session forgets its own copy.
    seen = device.last_seen_at
    db().expire(device, ["last_seen_at"])
    _reader, writer = current_app.extensions["foyer.sessions"]
    with writer() as write_session, write_session.begin():
        row = write_session.get(KioskDevice, device.id)
        if row is not None:
            row.last_seen_at = seen


def had_device_cookie() -> bool:
    return bool(request.cookies.get(DEVICE_COOKIE))


def cookie_secure() -> bool:
    return not is_local_request(request)


def set_device_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=COOKIE_MAX_AGE,
        path=COOKIE_PATH,
        secure=cookie_secure(),
        httponly=True,
        samesite="Strict",
    )


def renew_device_cookie(response: Response) -> None:
    """Browsers cap a cookie's life at 400 days: each full load of the kiosk page renews it."""
    token = request.cookies.get(DEVICE_COOKIE)
    if token and g.get("kiosk_device") is not None:
        set_device_cookie(response, token)


# ---------------------------------------------------------------------------------------------
# CSRF


def _pairing_nonce() -> str:
    nonce = request.cookies.get(PAIRING_COOKIE, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{32,64}", nonce):
        nonce = g.get("kiosk_new_pairing_nonce") or secrets.token_urlsafe(32)
        g.kiosk_new_pairing_nonce = nonce  # set on the response by `keep_pairing_nonce`
    return nonce


def keep_pairing_nonce(response: Response) -> None:
    nonce = g.get("kiosk_new_pairing_nonce")
    if nonce and not g.get("kiosk_paired_now"):
        response.set_cookie(
            PAIRING_COOKIE,
            nonce,
            max_age=COOKIE_MAX_AGE,
            path=COOKIE_PATH,
            secure=cookie_secure(),
            httponly=True,
            samesite="Strict",
        )


def csrf_token() -> str:
    """The token this page's forms and htmx requests send back."""
    device = g.get("kiosk_device")
    if device is not None and device.token_hash:
        message = f"kiosk-device:{device.token_hash}"
    else:
        message = f"kiosk-pairing:{_pairing_nonce()}"
    return hmac.new(_secret(), message.encode(), hashlib.sha256).hexdigest()


def csrf_ok() -> bool:
    sent = request.headers.get("X-CSRFToken") or request.form.get("csrf_token", "")
    return bool(sent) and hmac.compare_digest(sent, csrf_token())


# ---------------------------------------------------------------------------------------------
# Signed tickets: what a later step may trust without asking the visitor again


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(), salt=f"foyer.kiosk.{purpose}")


def sign(purpose: str, device: KioskDevice, **values: Any) -> str:
    return _serializer(purpose).dumps({"d": device.id, **values})


def unsign(purpose: str, device: KioskDevice, ticket: str, max_age: int) -> dict[str, Any] | None:
    """The ticket's values if this device signed it for this purpose within max_age seconds."""
    if not ticket or len(ticket) > 500:
        return None
    try:
        values = _serializer(purpose).loads(ticket, max_age=max_age)
    except BadData:
        return None
    if not isinstance(values, dict) or values.get("d") != device.id:
        return None
    return values


def rate_limit_key() -> str:
    """Per-device limits, keyed on the cookie's digest (checked before the device is loaded)."""
    token = request.cookies.get(DEVICE_COOKIE, "")
    return "kiosk-device:" + hashlib.sha256(token.encode()).hexdigest()[:24]
