"""Security defaults for every response: CSRF, a strict Content-Security-Policy, cookie flags and
the proxy set-up. Nothing here is optional; the README explains each header."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from portal.db import INT_MAX

csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def content_security_policy(sso_discovery_url: str = "") -> str:
    """The policy for this installation. Signing out of single sign-on is a form POST answered by
    a redirect to the provider, and browsers check form-action on that redirect too: the
    provider's origin must be allowed there, on every page that shows the sign-out button."""
    if not sso_discovery_url:
        return CONTENT_SECURITY_POLICY
    parts = urlsplit(sso_discovery_url)
    return CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
    )


LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


def is_local_request(req: Request) -> bool:
    host = (
        req.host.rsplit(":", 1)[0] if not req.host.startswith("[") else req.host.split("]")[0] + "]"
    )
    return host in LOCAL_HOSTS


class HostAwareSessionInterface(SecureCookieSessionInterface):
    """Secure cookies everywhere except on a loopback host, where the demo runs over plain http."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return not is_local_request(request)


FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def _has_nul(values: Any) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in values.items(multi=True))


class DatabaseIntConverter(IntegerConverter):
    """`<int:...>` capped at what an INTEGER column holds."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", INT_MAX)
        super().__init__(url_map, *args, **kwargs)


def configure_security(app: Flask) -> None:
    settings = app.extensions["foyer.settings"]
    if settings.proxy_count:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.proxy_count,
            x_proto=settings.proxy_count,
            x_host=settings.proxy_count,
        )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="foyer_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # The server-side session row enforces the real timeouts; the cookie lives as long.
        PERMANENT_SESSION_LIFETIME=settings.session_max_hours * 3600,
        # Send the cookie only when the session changed: parallel htmx requests would otherwise
        # each write back the session they started with, and the last answer would undo what
        # another just stored (e.g. an item added to a request draft).
        SESSION_REFRESH_EACH_REQUEST=False,
        # The token lives with the session: long-open pages (dashboards, the kiosk) keep working.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=True,
        MAX_CONTENT_LENGTH=settings.extra.get("MAX_CONTENT_LENGTH", 16 * 1024 * 1024),
        MAX_FORM_MEMORY_SIZE=500_000,
    )
    app.session_interface = HostAwareSessionInterface()
    csrf.init_app(app)
    # A path id past INTEGER is a 404 like any unknown id, not a database error (PostgreSQL).
    app.url_map.converters["int"] = DatabaseIntConverter

    @app.before_request
    def refuse_nul_bytes() -> Response | None:
        # PostgreSQL text cannot hold NUL and nobody types one: a crafted %00 in the path, a
        # filter or a form field would otherwise reach a query and fail there (a 500 on
        # PostgreSQL only). Uploaded files are not text fields and are checked on their own.
        if "\x00" in request.path or _has_nul(request.args):
            from portal.web_errors import error_response

            return error_response(400, "The address contains a character that cannot be used.")
        posted = request.method not in ("GET", "HEAD") and request.mimetype in FORM_TYPES
        if posted and _has_nul(request.form):
            from portal.web_errors import error_response

            return error_response(
                400, "A field contains a character that cannot be used. Nothing was saved."
            )
        return None

    policy = content_security_policy(settings.oidc_discovery_url if settings.oidc_enabled else "")

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # same-origin, not no-referrer: Flask-WTF's HTTPS check needs the Referer on POSTs
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(self), geolocation=(), microphone=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        # never on a loopback host: HSTS there would pin every local dev server to https
        if request.is_secure and not is_local_request(request):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html":
            headers.setdefault("Cache-Control", "no-store")
        return response
