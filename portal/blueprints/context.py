"""What views pass to services: the acting person with the request they came from."""

from __future__ import annotations

from flask import request
from flask_login import current_user

from portal.observability import request_id
from portal.services.audit import Actor


def actor() -> Actor:
    ip = request.remote_addr or ""
    if current_user.is_authenticated:
        return Actor.for_user(current_user, request_id(), ip)
    return Actor(None, "anonymous", request_id(), ip)
