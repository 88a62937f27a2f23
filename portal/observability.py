"""Request ids and logging: every log line and audit event carries the id of its request."""

from __future__ import annotations

import logging
import re
import secrets

from flask import Flask, Response, g, has_request_context, request

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# A calendar feed's address is its only credential: access logs must never hold it in full.
_FEED_TOKEN = re.compile(r"(/feeds/)[^/\s\"?]+(\.ics)")
# Loggers that write request paths: ours, the development server's and gunicorn's access log.
REDACTED_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def redact_feed_tokens(text: str) -> str:
    return _FEED_TOKEN.sub(r"\1[redacted]\2", text) if "/feeds/" in text else text


class FeedTokenRedaction(logging.Filter):
    """Rewrites /feeds/<token>.ics as /feeds/[redacted].ics in every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: logging reports it, not us
            return True
        redacted = redact_feed_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(app: Flask) -> None:
    settings = app.extensions["foyer.settings"]
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.addFilter(FeedTokenRedaction())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    logger = logging.getLogger("portal")
    logger.handlers[:] = [handler]
    logger.setLevel(settings.log_level)
    logger.propagate = False
    for name in REDACTED_LOGGERS:
        other = logging.getLogger(name)
        if not any(isinstance(f, FeedTokenRedaction) for f in other.filters):
            other.addFilter(FeedTokenRedaction())

    @app.before_request
    def assign_request_id() -> None:
        # A proxy's X-Request-ID is kept when well-formed so logs line up across hops.
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)

    @app.after_request
    def expose_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response


def request_id() -> str:
    return g.get("request_id", "") if has_request_context() else ""
