"""Flask-Login wired to server-side sessions: the cookie names a session row, and the row decides."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    current_app,
    flash,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, login_user, logout_user

from portal import htmx
from portal.models import User
from portal.request_scope import SAFE_METHODS, db
from portal.services import login_sessions

login_manager = LoginManager()
SESSION_TOKEN_KEY = "sid"  # noqa: S105 - a cookie key, not a secret  # nosec B105


def configure_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = None  # the server-side session row is the protection
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)


def _timeouts() -> tuple[timedelta, timedelta]:
    settings = current_app.extensions["foyer.settings"]
    return (
        timedelta(minutes=settings.session_idle_minutes),
        timedelta(hours=settings.session_max_hours),
    )


def _load_user(user_id: str) -> User | None:
    token = session.get(SESSION_TOKEN_KEY)
    if not token:
        return None
    idle, absolute = _timeouts()
    row = login_sessions.resolve(db(), token, idle=idle, absolute=absolute)
    if row is None or str(row.user_id) != user_id:
        session.clear()
        session["ended"] = True  # tells the sign-in page to explain why
        return None
    if login_sessions.needs_touch(row) and not is_background_poll():
        if db().get_bind().dialect.name == "sqlite" and request.method not in SAFE_METHODS:
            # A writing request already holds SQLite's write lock (BEGIN IMMEDIATE): a second
            # writer would wait on it until the busy timeout and fail (a 500, found by the scan).
            login_sessions.touch(db(), row.id)
        else:
            _touch_in_own_transaction(row.id)
    return row.user


def background_poll(view: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a view the page calls by itself (the header's notice poll): it is not the person
    being active, so it must not push the idle timeout back, or an open tab would never time out."""
    view.background_poll = True  # type: ignore[attr-defined]
    return view


def is_background_poll() -> bool:
    """This request is a page polling by itself (htmx), not the person opening something."""
    if not has_request_context():
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "background_poll", False)) and htmx.is_htmx()


def _touch_in_own_transaction(row_id: int) -> None:
    # A short writing transaction of its own, so reading requests stay read-only.
    _reader, writer = current_app.extensions["foyer.sessions"]
    with writer() as write_session, write_session.begin():
        login_sessions.touch(write_session, row_id)


def start_session(user: User, method: str, sso_id_token: str | None = None) -> None:
    """A fresh session at sign-in: old cookie contents (and CSRF token) are dropped."""
    session.clear()
    token = login_sessions.start(
        db(),
        user,
        method,
        ip_address=request.remote_addr or "",
        user_agent=request.user_agent.string,
        sso_id_token=sso_id_token,
    )
    session[SESSION_TOKEN_KEY] = token
    session.permanent = True
    login_user(user)


def end_session(reason: str) -> str | None:
    """Ends the current session on the server; returns its ID token for provider sign-out."""
    token = session.get(SESSION_TOKEN_KEY)
    id_token = login_sessions.end(db(), token, reason) if token else None
    logout_user()
    session.clear()
    return id_token


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _unauthorized() -> Response:
    if htmx.is_htmx():
        # Never swap a sign-in page into a fragment: send the browser to it.
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        target = safe_next(current.path + (f"?{current.query}" if current.query else ""))
        response = htmx.redirect_to(url_for("auth.login", next=target))
        response.status_code = 401
        return response
    if session.get("ended") is None:
        flash("Please sign in to continue.", "info")
    return redirect(url_for("auth.login", next=safe_next(request.full_path.rstrip("?"))))
