"""Error responses: a page in the layout, or a fragment for htmx requests. Never a bare 500."""

from __future__ import annotations

import logging

from flask import Flask, Response, flash, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from portal import htmx
from portal.errors import DomainError
from portal.request_scope import db

log = logging.getLogger("portal.errors")

MESSAGES = {
    400: ("Something in that request was not right", "Please go back and try again."),
    401: ("Please sign in", "You need to sign in to see this page."),
    403: ("Not allowed", "Your account does not have access to this page."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Not allowed", "That page does not accept this kind of request."),
    409: (
        "Changed by someone else",
        "Someone changed this at the same moment, so nothing was saved. Please try again.",
    ),
    413: ("Too large", "What you sent is larger than this form accepts."),
    422: ("Please check your input", "Something you entered needs a change."),
    429: ("Too many attempts", "Please wait a moment before trying again."),
    500: ("Something went wrong on our side", "Nothing was saved. Please try again in a minute."),
    503: ("Temporarily unavailable", "A service Foyer relies on is not reachable. Try again soon."),
}


def error_response(status: int, detail: str | None = None) -> Response:
    title, message = MESSAGES.get(status, MESSAGES[400])
    context = {"status": status, "title": title, "message": detail or message}
    template = "errors/_error.html" if htmx.wants_fragment() else "errors/error.html"
    response = make_response(render_template(template, **context), status)
    if htmx.is_htmx():
        # Error fragments go to the page's alert region, not into the element that asked.
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> Response:
        log.warning("CSRF check failed on %s: %s", request.path, error.description)
        text = "This page was open too long or came from elsewhere, so nothing was saved."
        if htmx.is_htmx():
            flash(f"{text} The page has been reloaded; please try again.", "error")
            return htmx.refresh(status=400)
        return error_response(400, f"{text} Reload the page and try again.")

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError) -> Response:
        return error_response(error.status, error.message or None)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        detail = None
        if status == 429:
            detail = f"Too many attempts. Please wait and try again ({error.description})."
        response = error_response(status, detail)
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        if isinstance(error, OperationalError | InterfaceError):
            # The database is unreachable or restarting (bench/faults.py): a 503 that clients
            # and load balancers retry, not a 500 that reads like a bug.
            log.warning("database unavailable on %s: %s", request.path, error.orig or error)
            return database_unavailable()
        if isinstance(error, StaleDataError):
            # A versioned row (ticket, booking, asset) changed under this request after it was
            # read, e.g. two comments at the same instant: nothing of this request was kept.
            log.warning("concurrent change on %s: %s", request.path, error)
            db().rollback()
            return error_response(409)
        log.exception("unhandled error on %s", request.path)
        return error_response(500)


def database_unavailable() -> Response:
    """503 while the database is unreachable. The request's session is rolled back first (it
    cannot be used again until then); if the page around the message needs the database too,
    the message comes without it."""
    try:
        db().rollback()
        response = error_response(503)
    except SQLAlchemyError:
        title, message = MESSAGES[503]
        response = Response(f"{title}. {message}\n", 503, mimetype="text/plain")
    response.headers["Retry-After"] = "5"
    return response
