"""My bookings: upcoming and past, and what can be done with one: check in, extend, move,
cancel (also once started), and series actions. Plus the QR check-in URL and approvals."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from portal import htmx
from portal.blueprints.context import actor
from portal.db import db_int, utcnow
from portal.errors import RuleViolation
from portal.login import safe_next
from portal.models import Booking, BookingSeries, BookingStatus, Resource, Role
from portal.permissions import coordinates_site, load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import availability, booking_rules, bookings, recurrence, series
from portal.timezones import to_utc

bp = Blueprint("bookings", __name__)


def _mine_or_404(booking_id: int) -> Booking:
    return load_or_404(db(), Booking, booking_id, bookings.may_manage)


@bp.get("/bookings/")
@login_required
def mine() -> Response:
    now = utcnow()
    return htmx.render(
        "bookings/mine.html",
        upcoming=availability.my_bookings(db(), current_user, now),
        past=availability.my_bookings(db(), current_user, now, past=True, limit=20),
        now=now,
        describe=recurrence.describe,
    )


@bp.get("/bookings/<int:booking_id>")
@login_required
def detail(booking_id: int) -> Response:
    booking = _mine_or_404(booking_id)
    return _render_detail(booking)


def _render_detail(booking: Booking, status: int = 200, error: str | None = None) -> Response:
    now = utcnow()
    policy = booking_rules.policy_for(db(), booking.resource.site)
    opens, closes = booking_rules.check_in_window(policy, booking)
    zone = ZoneInfo(booking.resource.site.time_zone)
    return htmx.render(
        "bookings/detail.html",
        status=status,
        b=booking,
        zone=zone,
        now=now,
        error=error,
        can_check_in=booking.status == BookingStatus.CONFIRMED and opens <= now <= closes,
        check_in_opens=opens,
        check_in_closes=closes,
        started=booking.start_at <= now < booking.end_at,
        describe=recurrence.describe,
        move_to=bookings.free_alternatives_for(db(), booking) if booking.holds_slot else [],
    )


def _act(booking: Booking, done: str, action) -> Response:  # type: ignore[no-untyped-def]
    try:
        action()
    except RuleViolation as violation:
        db().rollback()
        fresh = db().get(Booking, booking.id)
        return _render_detail(fresh or booking, violation.status, violation.message)
    commit()
    flash(done, "success")
    return htmx.redirect_to(
        safe_next(request.form.get("next")) or url_for("bookings.detail", booking_id=booking.id)
    )


@bp.post("/bookings/<int:booking_id>/check-in")
@login_required
def check_in(booking_id: int) -> Response:
    booking = _mine_or_404(booking_id)
    return _act(
        booking,
        f"Checked in to {booking.resource.name}.",
        lambda: bookings.check_in(db(), actor(), booking, via="portal"),
    )


@bp.post("/bookings/<int:booking_id>/cancel")
@login_required
def cancel(booking_id: int) -> Response:
    booking = _mine_or_404(booking_id)
    started = booking.start_at <= utcnow()
    done = "Ended; the rest of the time is free again." if started else "Cancelled."
    return _act(booking, done, lambda: bookings.cancel(db(), actor(), booking))


@bp.post("/bookings/<int:booking_id>/extend")
@login_required
def extend(booking_id: int) -> Response:
    booking = _mine_or_404(booking_id)
    minutes = request.form.get("minutes", type=int) or 0
    if minutes not in (15, 30, 60):
        return _render_detail(booking, 422, "Extend by 15, 30 or 60 minutes.")
    return _act(
        booking,
        f"Extended by {minutes} minutes.",
        lambda: bookings.change(
            db(), actor(), current_user, booking, end=booking.end_at + timedelta(minutes=minutes)
        ),
    )


@bp.post("/bookings/<int:booking_id>/move")
@login_required
def move(booking_id: int) -> Response:
    booking = _mine_or_404(booking_id)
    zone = ZoneInfo(booking.resource.site.time_zone)
    try:
        day = date.fromisoformat(request.form.get("date", ""))
        start = datetime.strptime(request.form.get("start", ""), "%H:%M").time()
        end = datetime.strptime(request.form.get("end", ""), "%H:%M").time()
    except ValueError:
        return _render_detail(booking, 422, "Give a day and start and end times like 09:30.")
    new_start = to_utc(datetime.combine(day, start), zone)
    new_end = to_utc(datetime.combine(day, end), zone)
    if request.form.get("scope") == "following" and booking.series is not None:
        if new_end <= new_start:
            return _render_detail(booking, 422, "The end must be after the start.")
        return _act(
            booking,
            f"This and the following occurrences now start at {start:%H:%M}.",
            lambda: series.retime_following(
                db(), actor(), current_user, booking, start=start, duration=new_end - new_start
            ),
        )
    resource_id = request.form.get("resource_id", type=db_int) or None
    if resource_id:
        load_or_404(db(), Resource, resource_id)
    return _act(
        booking,
        "Changed.",
        lambda: bookings.change(
            db(),
            actor(),
            current_user,
            booking,
            resource_id=resource_id,
            start=new_start,
            end=new_end,
            title=request.form.get("title"),
        ),
    )


@bp.post("/bookings/<int:booking_id>/series/<scope>")
@login_required
def cancel_series_part(booking_id: int, scope: str) -> Response:
    booking = _mine_or_404(booking_id)
    if booking.series is None:
        return _render_detail(booking, 422, "This booking is not part of a series.")
    the_series: BookingSeries = booking.series
    if scope == "one":
        return _act(
            booking,
            "This occurrence is cancelled; the series goes on.",
            lambda: series.cancel_occurrence(db(), actor(), booking),
        )
    if scope == "following":
        return _act(
            booking,
            "This and the following occurrences are cancelled.",
            lambda: series.cancel_following(db(), actor(), booking),
        )
    if scope == "all":
        return _act(
            booking,
            "The whole series is cancelled.",
            lambda: series.cancel_series(db(), actor(), the_series),
        )
    if scope == "range":
        try:
            first = date.fromisoformat(request.form.get("first", ""))
            last = date.fromisoformat(request.form.get("last", ""))
        except ValueError:
            return _render_detail(booking, 422, "Give the first and last day of the range.")
        return _act(
            booking,
            f"Cancelled from {first:%-d %b} to {last:%-d %b}.",
            lambda: series.cancel_range(db(), actor(), the_series, first, last),
        )
    return _render_detail(booking, 404, "Unknown series action.")


@bp.get("/q/<code>")
@login_required
def qr(code: str) -> Response:
    """The URL printed on a desk or room: checks in the person's booking there, or offers one."""
    resource = db().scalar(select(Resource).where(Resource.qr_code == code[:16]))
    if resource is None:
        return htmx.render(
            "bookings/qr.html",
            status=404,
            resource=None,
            booking=None,
            message="This code does not belong to any desk or room.",
        )
    now = utcnow()
    booking = db().scalar(
        select(Booking)
        .where(
            Booking.resource_id == resource.id,
            Booking.user_id == current_user.id,
            Booking.status.in_([BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN]),
            Booking.start_at <= now + timedelta(hours=1),
            Booking.end_at > now,
        )
        .order_by(Booking.start_at)
    )
    if booking is None:
        return htmx.render(
            "bookings/qr.html",
            resource=resource,
            booking=None,
            message="You have no booking here right now.",
        )
    try:
        bookings.check_in(db(), actor(), booking, via="qr", now=now)
    except RuleViolation as violation:
        db().rollback()
        return htmx.render(
            "bookings/qr.html",
            status=422,
            resource=resource,
            booking=booking,
            message=violation.message,
        )
    commit()
    return htmx.render(
        "bookings/qr.html",
        resource=resource,
        booking=booking,
        message=f"You are checked in to {resource.kind} {resource.name}.",
        checked_in=True,
    )


@bp.get("/approvals/")
@role_required(Role.COORDINATOR)
def approvals() -> Response:
    sites = None if current_user.is_admin else current_user.coordinated_site_ids()
    query = (
        select(Booking)
        .join(Resource, Resource.id == Booking.resource_id)
        .where(Booking.status == BookingStatus.PENDING, Booking.end_at > utcnow())
        .order_by(Booking.start_at)
    )
    if sites is not None:
        query = query.where(Resource.site_id.in_(sites))
    return htmx.render("bookings/approvals.html", pending=list(db().scalars(query.limit(200))))


@bp.post("/approvals/<int:booking_id>")
@role_required(Role.COORDINATOR)
def decide(booking_id: int) -> Response:
    booking = load_or_404(
        db(), Booking, booking_id, lambda u, b: coordinates_site(u, b.resource.site_id)
    )
    approve = request.form.get("decision") == "approve"
    try:
        bookings.decide(
            db(),
            actor(),
            current_user,
            booking,
            approve=approve,
            reason=request.form.get("reason", ""),
            expected_version=request.form.get("version", type=db_int),
        )
    except RuleViolation as violation:
        db().rollback()
        flash(violation.message, "error")
        return htmx.redirect_to(url_for("bookings.approvals"))
    commit()
    flash(
        f"{'Approved' if approve else 'Declined'}: {booking.resource.name} for {booking.user.name}.",
        "success",
    )
    return htmx.redirect_to(url_for("bookings.approvals"))
