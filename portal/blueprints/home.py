"""My day: the page an employee lands on."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, url_for
from flask_login import current_user, login_required

from portal import htmx
from portal.db import utcnow
from portal.models import BookingStatus
from portal.request_scope import db
from portal.services import availability, booking_rules, visitors
from portal.timezones import zone_for

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> Response:
    if current_user.is_authenticated:
        return redirect(url_for("home.my_day"))
    return redirect(url_for("auth.login"))


@bp.get("/my-day")
@login_required
def my_day() -> Response:
    zone = zone_for(current_user)
    instant = utcnow()
    now = instant.astimezone(zone)
    today = availability.bookings_on_day(db(), current_user, now.date(), zone)
    checkable = set()
    for booking in today:
        if booking.status == BookingStatus.CONFIRMED:
            opens, closes = booking_rules.check_in_window(
                booking_rules.policy_for(db(), booking.resource.site), booking
            )
            if opens <= instant <= closes:
                checkable.add(booking.id)
    expected = visitors.hosted_on_day(db(), current_user, now.date())
    return htmx.render(
        "home/my_day.html",
        now=now,
        zone=zone,
        user=current_user,
        today=today,
        checkable=checkable,
        visitors_today=expected,
    )
