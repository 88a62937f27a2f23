"""Calendar feeds: the page where a person subscribes their calendar program to a room, a desk,
their own bookings or (coordinators) a site's visitors, regenerates or revokes each address; the
admins' list of every feed; and the feed itself, fetched by calendar programs with only the token
in the address to prove anything."""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, flash, request, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy.exc import OperationalError
from wtforms import HiddenField, RadioField

from portal import htmx
from portal.blueprints.context import actor, managed_sites
from portal.db import db_int, utcnow
from portal.errors import NotFound, RuleViolation
from portal.limits import limiter
from portal.models import Resource, Role, Site
from portal.models.feeds import CalendarFeed, FeedKind, FeedPrivacy
from portal.permissions import load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import feeds, page_cache

bp = Blueprint("feeds", __name__)
FEED_RATE_LIMIT = "120 per minute"  # per address: a calendar polls every 15 minutes
# One body for every refusal: unknown, revoked, regenerated-away or no longer allowed.
NOT_FOUND_BODY = "No calendar feed at this address.\n"


class FeedForm(FlaskForm):
    kind = HiddenField(default=FeedKind.MINE.value)
    resource_id = HiddenField()
    site_id = HiddenField()
    privacy = RadioField(
        "What the calendar shows",
        default=FeedPrivacy.DETAILS.value,
        choices=[
            (FeedPrivacy.DETAILS.value, "Titles and who booked (as far as you may see them)"),
            (FeedPrivacy.BUSY.value, "Busy only: times, without titles or names"),
        ],
    )


class PrivacyForm(FlaskForm):
    privacy = RadioField(
        "What the calendar shows",
        choices=[(p.value, label) for p, label in feeds.PRIVACY_LABELS.items()],
    )


# --- the feed ------------------------------------------------------------------------------------


def _feed_limit() -> str:
    return current_app.extensions["foyer.settings"].extra.get("FEED_RATE_LIMIT", FEED_RATE_LIMIT)


def _host() -> str:
    return urlsplit(current_app.extensions["foyer.settings"].base_url).hostname or "localhost"


def _not_found() -> Response:
    return Response(NOT_FOUND_BODY, 404, mimetype="text/plain")


@bp.get("/feeds/<token>.ics")
@limiter.limit(_feed_limit, key_func=get_remote_address)
def feed(token: str) -> Response:
    session = db()
    found = feeds.find_live(session, token)
    if found is None:
        return _not_found()
    now = utcnow()
    result = feeds.answer(
        session, found, now=now, host=_host(), cache=_feed_cache(current_app.extensions)
    )
    if feeds.note_fetch(session, found, now):
        try:
            commit()
        except OperationalError:  # a busy database: the fetch time can wait for the next poll
            session.rollback()
    headers = {
        "ETag": result.etag,
        # Private: the address is a credential. Clients revalidate with If-None-Match.
        "Cache-Control": "private, no-cache",
    }
    if _matches(request.headers.get("If-None-Match", ""), result.etag):
        return Response(status=304, headers=headers)
    response = Response(
        result.body, 200, headers=headers, content_type="text/calendar; charset=utf-8"
    )
    response.headers["Content-Disposition"] = 'inline; filename="foyer.ics"'
    # Never compressed: gzip on a feed URL has broken Outlook subscriptions.
    response.direct_passthrough = False
    return response


def _matches(if_none_match: str, etag: str) -> bool:
    candidates = [c.strip() for c in if_none_match.split(",") if c.strip()]
    return any(c == "*" or hmac.compare_digest(c, etag) for c in candidates)


def _feed_cache(extensions: dict[str, Any]) -> page_cache.PageCache:
    cache = extensions.get("foyer.feed_cache")
    if cache is None:
        cache = extensions.setdefault("foyer.feed_cache", page_cache.PageCache(128))
    return cache


# --- the person's page ---------------------------------------------------------------------------


def _addresses(token: str) -> dict[str, str]:
    base = current_app.extensions["foyer.settings"].base_url.rstrip("/")
    https = base + feeds.token_path(token)
    return {"https": https, "webcal": "webcal://" + https.split("://", 1)[1]}


def _offer() -> dict[str, Any]:
    """What the page offers to subscribe to: the resource or site named in the query, the
    person's own bookings, and the visitors of the sites they coordinate."""
    session = db()
    resource = None
    wanted = request.args.get("resource", type=db_int) or request.form.get(
        "resource_id", type=db_int
    )
    if wanted:
        resource = session.get(Resource, wanted)
        if resource is None or not feeds.may_see_resource(current_user, resource):
            abort(404)
    return {"resource": resource, "visitor_sites": managed_sites()}


def _render_page(
    *,
    form: FeedForm | None = None,
    status: int = 200,
    new_feed: CalendarFeed | None = None,
    new_token: str | None = None,
    error: str | None = None,
) -> Response:
    session = db()
    mine = feeds.for_owner(session, current_user)
    return htmx.render(
        "feeds/index.html",
        "feeds/_page.html",
        status=status,
        feeds_list=mine,
        names={f.id: feeds.feed_name(f) for f in mine},
        labels=feeds.PRIVACY_LABELS,
        form=form or FeedForm(formdata=None),
        new_feed=new_feed,
        new_name=feeds.feed_name(new_feed) if new_feed else "",
        addresses=_addresses(new_token) if new_token else None,
        error=error,
        has_mine=any(f.kind == FeedKind.MINE for f in mine),
        now=utcnow(),
        **_offer(),
    )


@bp.get("/feeds/")
@login_required
def index() -> Response:
    return _render_page()


@bp.post("/feeds/")
@login_required
def create() -> Response:
    form = FeedForm()
    if not form.validate():
        return _render_page(form=form, status=422)
    session = db()
    kind = form.kind.data or ""
    resource = site = None
    if kind == FeedKind.RESOURCE:
        resource = load_or_404(session, Resource, form.resource_id.data)
    elif kind == FeedKind.VISITORS:
        site = load_or_404(session, Site, form.site_id.data)
    elif kind != FeedKind.MINE:
        abort(404)
    try:
        new_feed, token = feeds.create(
            session,
            actor(),
            current_user,
            kind,
            privacy=form.privacy.data or "",
            resource=resource,
            site=site,
            now=utcnow(),
        )
    except NotFound:
        abort(404)
    except RuleViolation as violation:
        session.rollback()
        return _render_page(form=form, status=422, error=" ".join(violation.errors.values()))
    commit()
    return _shown_once(new_feed, token)


def _shown_once(feed: CalendarFeed, token: str) -> Response:
    """The page with the new address on top: the only time it is ever shown."""
    response = _render_page(new_feed=feed, new_token=token)
    return htmx.retarget(response, "#main", "innerHTML show:window:top")


def _managed_or_404(feed_id: int) -> CalendarFeed:
    return load_or_404(db(), CalendarFeed, feed_id, lambda user, f: feeds.may_manage(user, f))


@bp.post("/feeds/<int:feed_id>/regenerate")
@login_required
def regenerate(feed_id: int) -> Response:
    found = _managed_or_404(feed_id)
    if not found.active:
        abort(404)
    token = feeds.regenerate(db(), actor(), found, now=utcnow())
    commit()
    if found.owner_id != current_user.id:  # an admin: the owner has to subscribe again
        flash(
            f"The address of “{feeds.feed_name(found)}” was changed; the old one stopped.",
            "success",
        )
        return htmx.redirect_to(url_for("feeds.admin_list"))
    return _shown_once(found, token)


@bp.post("/feeds/<int:feed_id>/revoke")
@login_required
def revoke(feed_id: int) -> Response:
    found = _managed_or_404(feed_id)
    name = feeds.feed_name(found)
    feeds.revoke(db(), actor(), found, now=utcnow())
    commit()
    flash(f"“{name}” is revoked: calendars subscribed to it stop updating.", "success")
    mine = found.owner_id == current_user.id
    return htmx.redirect_to(url_for("feeds.index" if mine else "feeds.admin_list"))


@bp.post("/feeds/<int:feed_id>/privacy")
@login_required
def privacy(feed_id: int) -> Response:
    found = _managed_or_404(feed_id)
    if not found.active or found.owner_id != current_user.id:
        abort(404)
    form = PrivacyForm()
    if not form.validate():
        return _render_page(status=422, error="Choose what the feed shows.")
    feeds.set_privacy(db(), actor(), found, form.privacy.data or "")
    commit()
    flash(
        f"“{feeds.feed_name(found)}” now shows: {feeds.PRIVACY_LABELS[found.privacy]}.", "success"
    )
    return htmx.redirect_to(url_for("feeds.index"))


# --- admins --------------------------------------------------------------------------------------


@bp.get("/admin/feeds/")
@role_required(Role.ADMIN)
def admin_list() -> Response:
    every = feeds.every_live_feed(db())
    return htmx.render(
        "feeds/admin.html",
        None,
        feeds_list=every,
        names={f.id: feeds.feed_name(f) for f in every},
        labels=feeds.PRIVACY_LABELS,
        now=utcnow(),
    )
