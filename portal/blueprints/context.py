"""What views pass to services: the acting person with the request they came from."""

from __future__ import annotations

from flask import request
from flask_login import current_user

from portal.models import User
from portal.observability import request_id
from portal.services.audit import Actor


def actor_for(user: User) -> Actor:
    """The person signing in, before Flask-Login knows them: their sign-in is theirs in the log."""
    return Actor.for_user(user, request_id(), request.remote_addr or "")


def actor() -> Actor:
    ip = request.remote_addr or ""
    if current_user.is_authenticated:
        return Actor.for_user(current_user, request_id(), ip)
    return Actor(None, "anonymous", request_id(), ip)
