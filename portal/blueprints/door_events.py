"""The door-event webhook: a site's access-control system posts badge reads here.

Machines cannot carry a CSRF token, so the blueprint is exempt from CSRF and every request is
verified instead: a signature over body and timestamp with the site's shared secret (see
integrations/access_control/webhook_signature.py), a time window, de-duplication by event id, a
body limit checked before reading, and a rate limit per address. Every refusal is a clear 4xx with
a short JSON reason, and is logged; nothing is stored unless the signature is right."""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from integrations.access_control import webhook_signature
from portal.db import utcnow
from portal.limits import limiter
from portal.models import Site
from portal.observability import request_id
from portal.request_scope import commit, db
from portal.security import csrf
from portal.services import access_control
from portal.services.audit import Actor

log = logging.getLogger("portal.door_events")

MAX_BODY = 64 * 1024  # one event is a few hundred bytes
DEFAULT_RATE_LIMIT = "120 per minute"

bp = Blueprint("door_events", __name__, url_prefix="/door-events")
csrf.exempt(bp)  # verified by signature instead (above)


def _rate_limit() -> str:
    return current_app.extensions["foyer.settings"].extra.get(
        "DOOR_EVENTS_RATE_LIMIT", DEFAULT_RATE_LIMIT
    )


def _refuse(status: int, reason: str, site: str) -> Response:
    log.warning("door event for %s refused (%s): %s", site, status, reason)
    response = jsonify(error=reason)
    response.status_code = status
    return response


@bp.post("/<site_slug>")
@limiter.limit(_rate_limit)
def receive(site_slug: str) -> Response:
    # Refuse an oversized body before reading any of it (and cap bodies sent without a length).
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _refuse(413, f"the body is larger than {MAX_BODY} bytes", site_slug)
    request.max_content_length = MAX_BODY
    site = db().scalar(select(Site).where(Site.slug == site_slug[:40]))
    key = current_app.extensions["foyer.settings"].secret_key.encode()
    settings = access_control.settings_for(db(), site.id) if site is not None else None
    secret = access_control.webhook_secret(settings, key)
    if site is None or secret is None:
        # One answer for "no such site" and "no webhook here", so slugs cannot be probed.
        return _refuse(404, "no door-event webhook here", site_slug)
    body = request.get_data(cache=False)  # raises 413 past max_content_length
    try:
        webhook_signature.verify(
            secret, body, request.headers.get(webhook_signature.HEADER), now=time.time()
        )
    except webhook_signature.SignatureRejected as exc:
        return _refuse(401, "bad or missing signature", f"{site_slug}: {exc}")
    now = utcnow()
    try:
        data = access_control.parse_event(json.loads(body), now=now)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        return _refuse(400, f"not a valid door event: {exc}"[:300], site_slug)
    actor = Actor(None, "door-event webhook", request_id(), request.remote_addr or "")
    event = access_control.record_door_event(db(), actor, site, data, source="webhook", now=now)
    if event is None:
        # A sender retries until it sees a 2xx: acknowledge the repeat, but do nothing again.
        return jsonify(status="duplicate", event_id=data.event_id)
    commit()
    return jsonify(status="recorded", event_id=data.event_id, outcome=event.outcome)
