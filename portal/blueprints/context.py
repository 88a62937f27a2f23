"""What views pass to services (the acting person with the request they came from), and the sites
the current person looks after."""

from __future__ import annotations

from flask import request
from flask_login import current_user
from sqlalchemy import select

from portal.models import Site, User
from portal.observability import request_id
from portal.permissions import coordinates_site, load_or_404
from portal.request_scope import db
from portal.services.audit import Actor


def actor_for(user: User) -> Actor:
    """The person signing in, before Flask-Login knows them: their sign-in is theirs in the log."""
    return Actor.for_user(user, request_id(), request.remote_addr or "")


def actor() -> Actor:
    ip = request.remote_addr or ""
    if current_user.is_authenticated:
        return Actor.for_user(current_user, request_id(), ip)
    return Actor(None, "anonymous", request_id(), ip)


def managed_sites() -> list[Site]:
    """The sites the current person looks after: all for admins, their own for coordinators."""
    sites = db().scalars(select(Site).order_by(Site.name))
    return [s for s in sites if coordinates_site(current_user, s.id)]


def managed_site_or_404(site_id: int) -> Site:
    return load_or_404(db(), Site, site_id, lambda user, site: coordinates_site(user, site.id))


def default_site(sites: list[Site]) -> Site | None:
    """The person's home site when they look after it, else the first."""
    home = current_user.home_site_id
    return next((s for s in sites if s.id == home), sites[0] if sites else None)
