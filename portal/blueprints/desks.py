"""Desk booking: a floor's plan (and the same as a list) for a day, click a free desk, confirm."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy.orm import joinedload

from portal import htmx
from portal.blueprints.booking_views import (
    chosen_day,
    chosen_site,
    horizon_days,
    new_idempotency_key,
    today_at,
)
from portal.blueprints.context import actor
from portal.db import db_int, utcnow
from portal.errors import RuleViolation
from portal.models import BookingStatus, Desk, Site
from portal.permissions import load_or_404
from portal.request_scope import commit, db
from portal.services import availability, booking_rules, bookings, page_cache

bp = Blueprint("desks", __name__, url_prefix="/desks")


def _slot() -> str:
    slot = request.values.get("slot", "day")
    return slot if slot in booking_rules.DESK_SLOTS else "day"


@dataclass(frozen=True)
class MapQuery:
    """What the person is looking at: site, floor, day, half of the day, filters."""

    site: Site
    day: date
    floor_id: int | None
    slot: str
    zone: str = ""
    attributes: tuple[str, ...] = ()
    view: str = "plan"
    date_problem: str | None = None


def _query_from_request() -> MapQuery:
    site = chosen_site(db())
    day, problem = chosen_day(site, utcnow())
    return MapQuery(
        site,
        day,
        request.args.get("floor", type=db_int),
        _slot(),
        zone=request.args.get("zone", "")[:80],
        attributes=tuple(a[:40] for a in request.args.getlist("attr") if a),
        view="list" if request.args.get("view") == "list" else "plan",
        date_problem=problem,
    )


def _context(query: MapQuery) -> dict[str, Any]:
    floors = availability.floors_of_site(db(), query.site)
    if not floors:
        abort(404)
    floor = next((f for f in floors if f.id == query.floor_id), floors[0])
    cache = page_cache.cache_for(current_app.extensions)
    desk_map = availability.desk_map(
        db(), floor, query.day, query.slot, current_user, utcnow(), cache
    )
    desks_root = url_for("desks.floor_plan")
    confirm_tail = f"/confirm?date={query.day.isoformat()}&slot={query.slot}"
    context: dict[str, Any] = {
        "q": query,
        "site": query.site,
        "floors": floors,
        "floor": floor,
        "day": query.day,
        "slot": query.slot,
        "slots": booking_rules.DESK_SLOTS,
        "map": desk_map,
        "team": [desk_map.desks[i] for i in desk_map.team if desk_map.desks[i].state == "taken"],
        "horizon": horizon_days(db(), query.site, desks=True),
        "desks_root": desks_root,
        "all_attributes": desk_map.shared.attributes,
    }
    if query.view == "list":
        shown = [
            i
            for i, place in enumerate(desk_map.shared.places)
            if (not query.zone or place.zone == query.zone)
            and all(a in place.attributes for a in query.attributes)
        ]
        context["shown_count"] = len(shown)
        context["rows_markup"] = _desks_markup(
            desk_map, "list_row", desks_root, confirm_tail, shown
        )
    else:
        placed = [i for i, place in enumerate(desk_map.shared.places) if place.plan_x]
        context["plan_markup"] = _desks_markup(
            desk_map, "plan_desk", desks_root, confirm_tail, placed
        )
    return context


def _desks_markup(
    desk_map: availability.DeskMap, macro: str, root: str, tail: str, indexes: list[int]
) -> Markup:
    """The desks' markup: each desk rendered once per version of the floor and kept with it,
    the team's desks once per department, and only this viewer's own desks afresh."""
    render = getattr(current_app.jinja_env.get_template("desks/_desk.html").module, macro)
    memo = desk_map.shared.rendered

    def markup(state: availability.DeskState) -> str:
        return str(render(state, f"{root}{state.desk.id}{tail}"))

    base = memo.get((macro, root, tail))
    if base is None:
        base = memo[(macro, root, tail)] = [markup(s) for s in desk_map.shared.neutral]
    chunks = base
    if desk_map.team or desk_map.personal:
        chunks = list(base)
        department = current_user.department
        team = memo.get((macro, root, tail, department))
        if team is None:
            team = memo[(macro, root, tail, department)] = {
                i: markup(s) for i, s in desk_map.team.items()
            }
        for i, chunk in team.items():
            chunks[i] = chunk
        for i in desk_map.personal:
            chunks[i] = markup(desk_map.desks[i])
    # Every chunk is the output of an autoescaped macro: joining them keeps them safe.
    return Markup("".join([chunks[i] for i in indexes]))  # noqa: S704  # nosec B704


@bp.get("/")
@login_required
def floor_plan() -> Response:
    return htmx.render("desks/floor.html", "desks/_map.html", **_context(_query_from_request()))


def _desk_or_404(desk_id: int) -> Desk:
    return load_or_404(db(), Desk, desk_id)


def _day_from(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return None


@bp.get("/<int:desk_id>/confirm")
@login_required
def confirm(desk_id: int) -> Response:
    desk = _desk_or_404(desk_id)
    day = _day_from(request.args.get("date"))
    if day is None:
        abort(404)
    return htmx.render(
        "desks/confirm.html",
        "desks/_confirm.html",
        desk=desk,
        day=day,
        slot=_slot(),
        slots=booking_rules.DESK_SLOTS,
        idempotency_key=new_idempotency_key(),
        violation=None,
        panel=htmx.wants_fragment(),
    )


@bp.post("/<int:desk_id>/book")
@login_required
def book(desk_id: int) -> Response:
    # With its floor and site: the rules and the invitation's location need them (one statement).
    desk = db().get(Desk, desk_id, options=[joinedload(Desk.floor), joinedload(Desk.site)])
    if desk is None:
        abort(404)
    day = _day_from(request.form.get("date"))
    slot = _slot()
    if day is None:
        violation = RuleViolation({"date": "Pick a day."}, "date")
        return _refused(desk, today_at(desk.site, utcnow()), slot, violation)
    site = desk.site
    start, end = booking_rules.DESK_SLOTS[slot].bounds(
        site, booking_rules.policy_for(db(), site), day
    )
    try:
        booking = bookings.book(
            db(),
            actor(),
            current_user,
            resource_id=desk.id,
            start=start,
            end=end,
            idempotency_key=request.form.get("idempotency_key", "")[:64] or None,
        )
    except RuleViolation as violation:
        db().rollback()
        return _refused(desk, day, slot, violation)
    commit()
    when = f"{booking_rules.DESK_SLOTS[slot].label.lower()} on {day:%A %-d %B}"
    if booking.status == BookingStatus.PENDING:
        flash(f"Desk {desk.name} is held for {when}, waiting for a coordinator's approval.", "info")
    else:
        flash(f"Desk {desk.name} is yours for {when}.", "success")
    target = url_for(
        "desks.floor_plan", site=site.slug, floor=desk.floor_id, date=day.isoformat(), slot=slot
    )
    if htmx.is_htmx():
        query = MapQuery(site, day, desk.floor_id, slot)
        response = htmx.render("desks/floor.html", "desks/_map.html", **_context(query))
        return htmx.trigger(htmx.push_url(response, target), "booking-changed")
    return htmx.redirect_to(target)


def _refused(desk: Desk, day: date, slot: str, violation: RuleViolation) -> Response:
    response = htmx.render(
        "desks/confirm.html",
        "desks/_confirm.html",
        status=violation.status,
        desk=desk,
        day=day,
        slot=slot,
        slots=booking_rules.DESK_SLOTS,
        idempotency_key=new_idempotency_key(),
        violation=violation,
        panel=htmx.is_htmx(),
    )
    return htmx.retarget(response, "#desk-panel")
