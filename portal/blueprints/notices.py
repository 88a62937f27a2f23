"""Live notices in the portal header ("Anna Kowalski has arrived"): the header polls `GET
/notices` every few seconds and shows a bell with the unread count and the list; a notice is
opened (read, then its page) or dismissed, one or all at once.

The poll reads the database, so a notice raised on any app instance shows on every other. It is
kept cheap (one query, a second only past 20 unread), answers 204 when nothing changed, and does
not count as activity: an open tab must not keep an idle session alive (`background_poll`)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, redirect, request, url_for
from flask_login import current_user, login_required

from portal import htmx
from portal.db import utcnow
from portal.login import background_poll, safe_next
from portal.models import Notice
from portal.permissions import load_or_404
from portal.request_scope import commit, db
from portal.services import notices
from portal.timezones import zone_for

bp = Blueprint("notices", __name__)


@bp.app_template_filter("notice_time")
def notice_time(instant: datetime) -> str:
    """ "14:05" today, "Mon 30 Nov, 14:05" before, in the person's zone."""
    zone = zone_for(current_user if current_user.is_authenticated else None)
    local = instant.astimezone(zone)
    if local.date() == utcnow().astimezone(zone).date():
        return local.strftime("%H:%M")
    return local.strftime("%a %-d %b, %H:%M")


def _unread() -> tuple[list[Notice], int, str]:
    items = notices.unread(db(), current_user.id)
    count = len(items)
    if count >= notices.KEEP_UNREAD:  # the list is capped: only then is a count needed
        count = notices.unread_count(db(), current_user.id)
    state = f"{count}.{items[0].id if items else 0}"
    return items, count, state


def _panel(unread: tuple[list[Notice], int, str] | None = None) -> Response:
    items, count, state = unread or _unread()
    if htmx.wants_fragment():
        return htmx.render("notices/_panel.html", items=items, count=count, state=state, oob=True)
    return htmx.render("notices/page.html", items=items, count=count, state=state)


@bp.get("/notices")
@background_poll
@login_required
def poll() -> Response:
    unread = _unread()
    if htmx.wants_fragment() and request.args.get("state") == unread[2]:
        return Response(status=204)  # nothing new: the header keeps what it shows
    return _panel(unread)


def _after_change() -> Response:
    if htmx.wants_fragment():
        return _panel()
    return redirect(safe_next(request.form.get("next")) or url_for("notices.poll"), code=303)


@bp.post("/notices/<int:notice_id>/read")
@login_required
def read(notice_id: int) -> Response:
    """Dismiss one notice. Only one's own: another person's id changes nothing."""
    notices.mark_read(db(), current_user.id, notice_id, now=utcnow())
    commit()
    return _after_change()


@bp.post("/notices/read")
@login_required
def read_all() -> Response:
    notices.mark_read(db(), current_user.id, None, now=utcnow())
    commit()
    return _after_change()


@bp.post("/notices/<int:notice_id>/open")
@login_required
def open_notice(notice_id: int) -> Response:
    """Follow a notice's link, marking it read on the way."""
    notice = load_or_404(db(), Notice, notice_id, lambda user, n: n.user_id == user.id)
    notices.mark_read(db(), current_user.id, notice.id, now=utcnow())
    commit()
    return redirect(safe_next(notice.link) or url_for("notices.poll"), code=303)
