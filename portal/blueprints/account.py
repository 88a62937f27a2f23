"""My account: profile, time zone, and the sessions signed in as me (with "sign out everywhere")."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import Blueprint, Response, flash, session, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField

from portal import htmx
from portal.blueprints.context import actor
from portal.login import SESSION_TOKEN_KEY
from portal.models import LoginSession
from portal.permissions import load_or_404
from portal.request_scope import commit, db
from portal.services import accounts, audit, login_sessions

bp = Blueprint("account", __name__, url_prefix="/account")
ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


class TimeZoneForm(FlaskForm):
    time_zone = SelectField("Show times in", validate_choice=True)


def _zone_form() -> TimeZoneForm:
    form = TimeZoneForm()
    site_zone = current_user.home_site.time_zone if current_user.home_site else "UTC"
    form.time_zone.choices = [("", f"My site's zone ({site_zone})")] + [(z, z) for z in ZONES]
    return form


def _current_session_id() -> int | None:
    token = session.get(SESSION_TOKEN_KEY)
    if not token:
        return None
    hashed = login_sessions.token_hash(token)
    return next(
        (
            s.id
            for s in login_sessions.open_sessions(db(), current_user.id)
            if s.token_hash == hashed
        ),
        None,
    )


def _render(form: TimeZoneForm, status: int = 200) -> Response:
    return htmx.render(
        "account/account.html",
        status=status,
        form=form,
        sessions=login_sessions.open_sessions(db(), current_user.id),
        current_session_id=_current_session_id(),
    )


@bp.get("/")
@login_required
def show() -> Response:
    form = _zone_form()
    form.time_zone.data = current_user.time_zone or ""
    return _render(form)


@bp.post("/time-zone")
@login_required
def set_time_zone() -> Response:
    form = _zone_form()
    if not form.validate():
        return _render(form, 422)
    accounts.set_time_zone(db(), actor(), current_user, form.time_zone.data or None)
    commit()
    flash(
        "Saved. Times are now shown in " + (form.time_zone.data or "your site's zone") + ".",
        "success",
    )
    return htmx.redirect_to(url_for("account.show"))


@bp.post("/sessions/<int:session_id>/end")
@login_required
def end_one_session(session_id: int) -> Response:
    row = load_or_404(db(), LoginSession, session_id, lambda u, s: s.user_id == u.id)
    if login_sessions.end_row(row, "ended_by_user"):
        audit.record(db(), actor(), "session.ended", current_user, after={"session": row.id})
    commit()
    flash("That session has been signed out.", "success")
    return htmx.redirect_to(url_for("account.show"))


@bp.post("/sessions/end-others")
@login_required
def end_other_sessions() -> Response:
    ended = login_sessions.end_all(
        db(), current_user.id, "signed_out_everywhere", keep_id=_current_session_id()
    )
    audit.record(db(), actor(), "session.ended_others", current_user, after={"count": ended})
    commit()
    flash(f"Signed out of {ended} other session{'s' if ended != 1 else ''}.", "success")
    return htmx.redirect_to(url_for("account.show"))
