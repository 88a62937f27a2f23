"""Coordinator: a site's booking rules (horizons, lengths, quotas, check-in) and blackout periods."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, DateField, IntegerField, StringField, TimeField
from wtforms.validators import DataRequired, InputRequired, Length

from portal import htmx
from portal.blueprints.context import actor
from portal.errors import RuleViolation
from portal.models import Blackout, Role, Site
from portal.permissions import coordinates_site, load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import site_rules
from portal.timezones import to_utc

bp = Blueprint("rules", __name__, url_prefix="/rules")


class PolicyForm(FlaskForm):
    desk_horizon_days = IntegerField("Desks bookable this many days ahead", [InputRequired()])
    room_horizon_days = IntegerField("Rooms bookable this many days ahead", [InputRequired()])
    min_minutes = IntegerField("Shortest room booking (minutes)", [InputRequired()])
    room_max_minutes = IntegerField("Longest room booking (minutes)", [InputRequired()])
    max_upcoming_room_bookings = IntegerField(
        "Upcoming room bookings per person", [InputRequired()]
    )
    one_desk_per_day = BooleanField("One desk per person per day")
    midday = TimeField("Morning ends / afternoon starts", [DataRequired("Give a time.")])
    check_in_opens_minutes = IntegerField(
        "Check-in opens (minutes before the start)", [InputRequired()]
    )
    check_in_grace_minutes = IntegerField(
        "No-show release after (minutes past the start)", [InputRequired()]
    )
    show_booker_names = BooleanField("Show who booked a desk or room to colleagues")


class BlackoutForm(FlaskForm):
    first_day = DateField("From", [DataRequired("Pick the first day.")])
    last_day = DateField("To (inclusive)", [DataRequired("Pick the last day.")])
    reason = StringField(
        "Reason",
        [DataRequired("Say why."), Length(max=500)],
        render_kw={"placeholder": "e.g. Public holiday"},
    )


def _site_or_404(site_id: int) -> Site:
    return load_or_404(db(), Site, site_id, lambda u, s: coordinates_site(u, s.id))


def _render(
    site: Site,
    form: PolicyForm | None = None,
    blackout_form: BlackoutForm | None = None,
    status: int = 200,
) -> Response:
    policy = site_rules.stored_policy(db(), site) if form is None else None
    form = form or PolicyForm(obj=policy)
    blackouts = list(
        db().scalars(
            select(Blackout).where(Blackout.site_id == site.id).order_by(Blackout.starts_at)
        )
    )
    return htmx.render(
        "admin/rules.html",
        status=status,
        site=site,
        form=form,
        blackout_form=blackout_form or BlackoutForm(formdata=None),
        blackouts=blackouts,
        zone=ZoneInfo(site.time_zone),
    )


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    sites = [
        s
        for s in db().scalars(select(Site).order_by(Site.name))
        if coordinates_site(current_user, s.id)
    ]
    if not sites:
        return htmx.render("admin/rules.html", site=None, status=404)
    return redirect(url_for("admin.rules.site", site_id=sites[0].id))


@bp.get("/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def site(site_id: int) -> Response:
    return _render(_site_or_404(site_id))


@bp.post("/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def save(site_id: int) -> Response:
    the_site = _site_or_404(site_id)
    form = PolicyForm()
    if not form.validate():
        return _render(the_site, form, status=422)
    values = site_rules.PolicyValues(
        **{name: getattr(form, name).data for name in site_rules.PolicyValues.__dataclass_fields__}
    )
    try:
        site_rules.update_policy(db(), actor(), the_site, values)
    except RuleViolation as violation:
        for name, message in violation.errors.items():
            getattr(form, name).errors = [message]
        return _render(the_site, form, status=422)
    commit()
    flash(f"Booking rules for {the_site.name} saved.", "success")
    return htmx.redirect_to(url_for("admin.rules.site", site_id=the_site.id))


@bp.post("/sites/<int:site_id>/blackouts")
@role_required(Role.COORDINATOR)
def add_blackout(site_id: int) -> Response:
    the_site = _site_or_404(site_id)
    form = BlackoutForm()
    if not form.validate():
        return _render(the_site, blackout_form=form, status=422)
    zone = ZoneInfo(the_site.time_zone)
    try:
        site_rules.add_blackout(
            db(),
            actor(),
            the_site,
            starts_at=to_utc(datetime.combine(form.first_day.data, datetime.min.time()), zone),
            ends_at=to_utc(datetime.combine(form.last_day.data, datetime.max.time()), zone),
            reason=form.reason.data or "",
        )
    except RuleViolation as violation:
        form.last_day.errors = list(violation.errors.values())
        return _render(the_site, blackout_form=form, status=422)
    commit()
    flash("Blackout added: nothing can be booked then.", "success")
    return htmx.redirect_to(url_for("admin.rules.site", site_id=the_site.id))


@bp.post("/blackouts/<int:blackout_id>/remove")
@role_required(Role.COORDINATOR)
def remove_blackout(blackout_id: int) -> Response:
    blackout = load_or_404(db(), Blackout, blackout_id, lambda u, b: coordinates_site(u, b.site_id))
    site_id = blackout.site_id
    site_rules.remove_blackout(db(), actor(), blackout)
    commit()
    flash("Blackout removed.", "success")
    return htmx.redirect_to(url_for("admin.rules.site", site_id=site_id))
