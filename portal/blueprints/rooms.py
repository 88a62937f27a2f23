"""Room booking: search by time, size and equipment (saying why a room is not offered), a floor's
day timeline with clickable free slots, and the booking form with repeats and "on behalf of"."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, flash, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal import htmx
from portal.blueprints.booking_views import chosen_day, chosen_site, new_idempotency_key
from portal.blueprints.context import actor
from portal.db import db_int, utcnow
from portal.errors import RuleViolation
from portal.models import Room
from portal.permissions import load_or_404
from portal.request_scope import commit, db
from portal.services import accounts, availability, bookings, page_cache, recurrence, series
from portal.timezones import to_utc

bp = Blueprint("rooms", __name__, url_prefix="/rooms")
EQUIPMENT = ["display", "video conferencing", "whiteboard", "step-free access", "phone"]
DURATIONS = [
    (30, "30 minutes"),
    (60, "1 hour"),
    (90, "1½ hours"),
    (120, "2 hours"),
    (180, "3 hours"),
    (240, "4 hours"),
    (480, "All day (8 hours)"),
]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class RoomSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    date = DateField("Day", validators=[Optional()])
    start = TimeField("From", validators=[Optional()])
    duration = SelectField("For", coerce=int, choices=DURATIONS, default=60)
    attendees = IntegerField(
        "People",
        default=4,
        validators=[Optional(), NumberRange(1, 500, "Between 1 and 500 people.")],
    )
    equipment = MultiCheckboxField("Needs", choices=[(e, e) for e in EQUIPMENT])


@bp.get("/")
@login_required
def search() -> Response:
    site = chosen_site(db())
    now = utcnow()
    zone = ZoneInfo(site.time_zone)
    form = RoomSearchForm(request.args)
    results = None
    if request.args and form.validate():
        day = form.date.data or now.astimezone(zone).date()
        start_time = form.start.data or _next_quarter(now.astimezone(zone)).time()
        start = to_utc(datetime.combine(day, start_time), zone)
        end = start + timedelta(minutes=form.duration.data or 60)
        results = availability.search_rooms(
            db(),
            site,
            current_user,
            start,
            end,
            attendees=form.attendees.data or 1,
            equipment=form.equipment.data or [],
            now=now,
        )
        form.date.data, form.start.data = day, start_time
    status = 422 if form.errors else 200
    return htmx.render(
        "rooms/search.html",
        "rooms/_results.html",
        status=status,
        form=form,
        results=results,
        site=site,
        zone=zone,
    )


def _next_quarter(local: datetime) -> datetime:
    minutes = (local.minute // 15 + 1) * 15
    return local.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=minutes)


@bp.get("/timeline")
@login_required
def timeline() -> Response:
    site = chosen_site(db())
    now = utcnow()
    day, problem = chosen_day(site, now)
    floors = availability.floors_of_site(db(), site)
    if not floors:
        abort(404)
    wanted = request.args.get("floor", type=db_int)
    floor = next((f for f in floors if f.id == wanted), floors[0])
    cache = page_cache.cache_for(current_app.extensions)
    data = availability.room_timeline(db(), floor, day, current_user, now, cache)
    zone = ZoneInfo(site.time_zone)
    return htmx.render(
        "rooms/timeline.html",
        "rooms/_timeline.html",
        site=site,
        floors=floors,
        floor=floor,
        day=day,
        t=data,
        date_problem=problem,
        zone=zone,
        rows_markup=_rows_markup(data, url_for("rooms.search"), day, zone),
    )


def _rows_markup(
    timeline: availability.RoomTimeline, rooms_root: str, day: date, zone: ZoneInfo
) -> Markup:
    """The rooms' rows: each rendered once per version of the floor and kept with it; only the
    rows holding this viewer's own bookings afresh."""
    render = current_app.jinja_env.get_template("rooms/_row.html").module.timeline_row
    quarters = timeline.total_minutes // 15

    def markup(row: availability.TimelineRow) -> str:
        prefix = f"{rooms_root}{row.room.id}/book?duration=30&date={day.isoformat()}&start="
        return str(render(row, quarters, prefix, zone))

    memo = timeline.shared.rendered
    key = (rooms_root, day, quarters, zone.key)
    chunks = memo.get(key)
    if chunks is None:
        chunks = memo[key] = [markup(row) for row in timeline.shared.rows]
    if timeline.personal:
        chunks = list(chunks)
        for i in timeline.personal:
            chunks[i] = markup(timeline.rows[i])
    # Every chunk is the output of an autoescaped macro: joining them keeps them safe.
    return Markup("".join(chunks))  # noqa: S704  # nosec B704


class RoomBookingForm(FlaskForm):
    title = StringField(
        "Title", validators=[Length(max=200)], render_kw={"placeholder": "e.g. Weekly planning"}
    )
    date = DateField("Day", validators=[DataRequired("Pick a day.")])
    start = TimeField("Start", validators=[DataRequired("Pick a start time.")])
    duration = IntegerField(
        "Minutes",
        default=60,
        validators=[
            InputRequired("How long?"),
            NumberRange(15, 24 * 60, "Between 15 minutes and a day."),
        ],
    )
    on_behalf_of = EmailField(
        "On behalf of (optional)",
        validators=[Optional(), Length(max=254)],
        render_kw={"placeholder": "colleague@example.com"},
    )
    repeat = SelectField(
        "Repeat",
        default="none",
        choices=[
            ("none", "Does not repeat"),
            ("daily", "Daily"),
            ("weekly", "Weekly"),
            ("monthly_date", "Monthly on the same date"),
            ("monthly_weekday", "Monthly on the same weekday"),
        ],
    )
    interval = IntegerField("Every", default=1, validators=[Optional(), NumberRange(1, 12)])
    weekdays = MultiCheckboxField(
        "On",
        choices=[
            (d, n)
            for d, n in zip(
                recurrence.WEEKDAYS, ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], strict=True
            )
        ],
    )
    ends = SelectField("Ends", default="count", choices=[("count", "After"), ("until", "On date")])
    count = IntegerField("Times", default=10, validators=[Optional()])
    until = DateField("Until", validators=[Optional()])
    idempotency_key = HiddenField()
    skip = MultiCheckboxField("Skip", choices=[], validate_choice=False)
    confirm = HiddenField()


def _prefill(form: RoomBookingForm, room: Room) -> None:
    zone = ZoneInfo(room.site.time_zone)
    now_local = utcnow().astimezone(zone)
    try:
        form.date.data = date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        form.date.data = now_local.date()
    try:
        form.start.data = time.fromisoformat(request.args.get("start", ""))
    except ValueError:
        form.start.data = _next_quarter(now_local).time()
    form.duration.data = request.args.get("duration", 60, type=int)
    form.idempotency_key.data = new_idempotency_key()
    form.weekdays.data = [recurrence.WEEKDAYS[form.date.data.weekday()]]


def _render_form(room: Room, form: RoomBookingForm, status: int = 200, **extra: Any) -> Response:
    return htmx.render(
        "rooms/book.html",
        "rooms/_book_form.html",
        status=status,
        room=room,
        form=form,
        zone=ZoneInfo(room.site.time_zone),
        **extra,
    )


@bp.get("/<int:room_id>/book")
@login_required
def book_form(room_id: int) -> Response:
    room = load_or_404(db(), Room, room_id)
    form = RoomBookingForm(formdata=None)
    _prefill(form, room)
    return _render_form(room, form)


@bp.post("/<int:room_id>/book")
@login_required
def book(room_id: int) -> Response:
    room = load_or_404(db(), Room, room_id)
    form = RoomBookingForm()
    if not form.validate():
        return _render_form(room, form, 422)
    zone = ZoneInfo(room.site.time_zone)
    first_local = datetime.combine(form.date.data, form.start.data)
    duration = timedelta(minutes=form.duration.data or 0)
    booker = current_user
    if form.on_behalf_of.data:
        booker = accounts.find_by_email(db(), form.on_behalf_of.data)
        if booker is None or not booker.active:
            form.on_behalf_of.errors = ["No colleague with that e-mail has an account."]
            return _render_form(room, form, 422)
    try:
        if form.repeat.data == "none":
            booking = bookings.book(
                db(),
                actor(),
                current_user,
                resource_id=room.id,
                start=to_utc(first_local, zone),
                end=to_utc(first_local + duration, zone),
                title=form.title.data or "",
                on_behalf_of=booker if booker is not current_user else None,
                idempotency_key=(form.idempotency_key.data or "")[:64] or None,
            )
            commit()
            flash(_booked_message(booking), "success" if booking.status != "pending" else "info")
            return htmx.redirect_to(url_for("bookings.detail", booking_id=booking.id))
        repeat = _repeat_from(form)
        skip = {date.fromisoformat(d) for d in form.skip.data or [] if _is_iso_date(d)}
        if form.confirm.data != "yes":
            plan = series.plan(db(), room, booker, first_local, duration, repeat, now=utcnow())
            return _render_form(room, form, plan=plan)
        created = series.create(
            db(),
            actor(),
            current_user,
            resource=room,
            booker=booker,
            title=form.title.data or "",
            first_local=first_local,
            duration=duration,
            repeat=repeat,
            skip=skip,
            idempotency_key=(form.idempotency_key.data or "")[:64] or None,
        )
        commit()
        flash(
            f"Booked {room.name} {recurrence.describe(created.rrule)}"
            f"{f', skipping {len(skip)} date(s)' if skip else ''}.",
            "success",
        )
        return htmx.redirect_to(url_for("bookings.mine"))
    except RuleViolation as violation:
        db().rollback()
        plan = violation.alternatives[0] if violation.rule == "series_conflicts" else None
        for field, message in violation.errors.items():
            target = getattr(form, {"resource": "start", "": "start"}.get(field, field), None)
            if target is not None and hasattr(target, "errors"):
                target.errors = [*list(target.errors), message]
        return _render_form(room, form, violation.status, violation=violation, plan=plan)


def _repeat_from(form: RoomBookingForm) -> recurrence.Repeat:
    return recurrence.Repeat(
        frequency=form.repeat.data or "",
        interval=form.interval.data or 1,
        weekdays=tuple(form.weekdays.data or ()),
        until=form.until.data if form.ends.data == "until" else None,
        count=form.count.data if form.ends.data == "count" else None,
    )


def _is_iso_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _booked_message(booking: Any) -> str:
    zone = ZoneInfo(booking.resource.site.time_zone)
    when = booking.start_at.astimezone(zone)
    text = f"{booking.resource.name}, {when:%a %-d %b %H:%M}"
    if booking.status == "pending":
        return (
            f"Requested {text}. A coordinator will approve or decline it; you will get an e-mail."
        )
    return f"Booked {text}."
