"""Supplies and equipment requests for employees: the catalog, a request, my requests.

The request being put together (the draft) lives in the signed session cookie as a handful of
(item, quantity) pairs: "Add to request" on a catalog card adds a line, the side panel changes
quantities, and the review page carries every line as form fields, so what is submitted is
exactly what the person sees. Coordinators decide lines and fulfil the request on its page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    request,
    send_file,
    session,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import DateField, HiddenField, RadioField, SelectField, TextAreaField
from wtforms.validators import Length, Optional

from portal import htmx
from portal.blueprints.booking_views import new_idempotency_key
from portal.blueprints.context import actor
from portal.blueprints.tickets import ticket_context
from portal.db import INT_MAX, utcnow
from portal.errors import NotFound, RuleViolation
from portal.models import CatalogItem, LineStatus, Site, Ticket, TicketStatus
from portal.request_scope import commit, db
from portal.services import catalog, image_uploads, requests, tickets

bp = Blueprint("requests", __name__, url_prefix=None)

DRAFT_KEY = "request_draft"
OPEN_STATUSES = {
    TicketStatus.SUBMITTED,
    TicketStatus.WAITING,
    TicketStatus.APPROVED,
    TicketStatus.ORDERED,
    TicketStatus.READY,
}


def catalog_uploads() -> Path:
    return Path(current_app.extensions["foyer.settings"].instance_path) / "uploads"


def photo_url(item: CatalogItem) -> str:
    """The photo's address changes with the photo, so browsers may cache it for long."""
    return url_for("requests.item_photo", item_id=item.id, v=(item.photo_file or "")[:8])


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"catalog_photo_url": photo_url}


# ---------------------------------------------------------------------------------------------
# Which site, and the draft in the session


def _sites() -> list[Site]:
    return list(db().scalars(select(Site).order_by(Site.name)))


def _site(sites: list[Site]) -> Site | None:
    """The site asked for (?site=<slug>), else the draft's, else the person's home site."""
    slug = request.values.get("site")
    chosen = next((s for s in sites if s.slug == slug), None) if slug else None
    if chosen is None:
        draft_site = _draft().get("site")
        chosen = next((s for s in sites if s.id == draft_site), None)
    if chosen is None:
        chosen = next((s for s in sites if s.id == current_user.home_site_id), None)
    return chosen or (sites[0] if sites else None)


def _draft() -> dict[str, Any]:
    draft = session.get(DRAFT_KEY)
    if not isinstance(draft, dict) or draft.get("user") != current_user.id:
        return {"user": current_user.id, "site": None, "lines": []}
    return draft


def _draft_lines() -> list[tuple[int, int]]:
    lines = []
    for pair in _draft().get("lines", []):
        try:
            lines.append((int(pair[0]), int(pair[1])))
        except (TypeError, ValueError, IndexError):
            continue
    return lines


def _save_draft(lines: list[tuple[int, int]], site: Site | None) -> None:
    session[DRAFT_KEY] = {
        "user": current_user.id,
        "site": site.id if site else None,
        "lines": [
            [item_id, quantity]
            for item_id, quantity in lines
            if quantity > 0 and 0 < item_id <= INT_MAX
        ][: requests.MAX_LINES],
    }


@dataclass(frozen=True)
class DraftLine:
    entry: catalog.CatalogEntry
    quantity: int

    @property
    def item(self) -> CatalogItem:
        return self.entry.item

    @property
    def subtotal(self) -> int:
        return self.item.price_cents * self.quantity


def _draft_view(site: Site | None, lines: list[tuple[int, int]] | None = None) -> list[DraftLine]:
    """The draft's lines with each item's stock at the site (retired or vanished items drop out;
    the review page says so when it matters)."""
    lines = _draft_lines() if lines is None else lines
    if not lines:
        return []
    entries = {
        e.item.id: e
        for e in catalog.browse(
            db(), site.id if site else None, only_ids=[i for i, _q in lines], include_retired=True
        )
    }
    return [DraftLine(entries[i], q) for i, q in lines if i in entries]


def _draft_context(site: Site | None, **extra: Any) -> dict[str, Any]:
    lines = _draft_view(site)
    return {
        "draft": lines,
        "draft_total": sum(line.subtotal for line in lines),
        "draft_count": sum(line.quantity for line in lines),
        "site": site,
        "draft_message": "",
        "draft_error": "",
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# The catalog


@bp.get("/catalog", endpoint="catalog")
@login_required
def browse_catalog() -> Response:
    sites = _sites()
    site = _site(sites)
    query = (request.args.get("q") or "").strip()[: catalog.SEARCH_MAX]
    category = request.args.get("category") or ""
    if category not in catalog.CATEGORY_LABELS:
        category = ""
    entries = catalog.browse(db(), site.id if site else None, query=query, category=category)
    in_draft = dict(_draft_lines())
    return htmx.render(
        "requests/catalog.html",
        "requests/_catalog_results.html",
        entries=entries,
        query=query,
        category=category,
        sites=sites,
        categories=catalog.CATEGORY_LABELS,
        in_draft=in_draft,
        **_draft_context(site),
    )


@bp.get("/catalog/items/<int:item_id>/photo")
@login_required
def item_photo(item_id: int) -> Response:
    """Catalog photos are for every signed-in person (retired items' too: old requests show
    them). Stored re-encoded under a random name, outside the web root."""
    item = db().get(CatalogItem, item_id)
    path = (
        image_uploads.stored_path(catalog_uploads() / catalog.PHOTOS_FOLDER, item.photo_file)
        if item is not None
        else None
    )
    if path is None:
        abort(404)
    response = send_file(path, mimetype="image/jpeg", max_age=86400, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def _draft_answer(
    site: Site | None, status: int = 200, message: str = "", error: str = ""
) -> Response:
    if not htmx.is_htmx():
        if error:
            flash(error, "error")
        elif message:
            flash(message, "success")
        back = request.form.get("next")
        if back == "review":
            return htmx.redirect_to(url_for("requests.new"))
        return htmx.redirect_to(url_for("requests.catalog", site=site.slug if site else None))
    return htmx.render(
        "requests/_draft.html",
        status=status,
        **_draft_context(site, draft_message=message, draft_error=error),
    )


@bp.post("/catalog/draft")
@login_required
def draft_add() -> Response:
    """ "Add to request": one more line (or more of an item already in the draft)."""
    site = _site(_sites())
    item = _item_or_none(request.form.get("item_id"))
    if item is None or not item.active:
        what = item.name if item else "That item"
        return _draft_answer(site, 422, error=f"{what} is not offered any more.")
    lines = _draft_lines()
    already = dict(lines).get(item.id, 0)
    try:
        quantity = requests.parse_quantity(request.form.get("quantity", "1"), item, "quantity")
        requests.parse_quantity(str(already + quantity), item, "quantity")
    except RuleViolation as violation:
        return _draft_answer(site, 422, error=violation.message)
    if already:
        lines = [(i, q + quantity if i == item.id else q) for i, q in lines]
    elif len(lines) >= requests.MAX_LINES:
        return _draft_answer(
            site, 422, error=f"A request can hold at most {requests.MAX_LINES} different items."
        )
    else:
        lines.append((item.id, quantity))
    _save_draft(lines, site)
    response = _draft_answer(site, message=f"Added {item.name} ×{quantity}.")
    return htmx.trigger(response, "draft-changed")


@bp.post("/catalog/draft/<int:item_id>")
@login_required
def draft_set(item_id: int) -> Response:
    """The side panel's stepper and remove button: set a line's quantity (0 removes it)."""
    site = _site(_sites())
    lines = _draft_lines()
    raw = (request.form.get("quantity") or "").strip()
    if raw == "0":
        _save_draft([(i, q) for i, q in lines if i != item_id], site)
        return htmx.trigger(_draft_answer(site, message="Removed."), "draft-changed")
    item = _item_or_none(item_id)
    if item is None or item_id not in dict(lines):
        return _draft_answer(site, 422, error="That item is not in your request any more.")
    try:
        quantity = requests.parse_quantity(raw, item, "quantity")
    except RuleViolation as violation:
        return _draft_answer(site, 422, error=violation.message)
    _save_draft([(i, quantity if i == item_id else q) for i, q in lines], site)
    return htmx.trigger(_draft_answer(site), "draft-changed")


def _item_or_none(raw: Any) -> CatalogItem | None:
    try:
        return db().get(CatalogItem, int(raw))
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Reviewing and submitting


class RequestForm(FlaskForm):
    """Shape only; the rules (lines, the place, the date) are the service's."""

    delivery = RadioField(
        "Where should it go?", choices=list(requests.DELIVERY_LABELS.items()), default="desk"
    )
    desk_id = SelectField("Desk", validate_choice=False)
    floor_id = SelectField("Floor", validate_choice=False)
    needed_by = DateField("Needed by (optional)", [Optional()])
    note = TextAreaField(
        "Note for the coordinator (optional)",
        [Length(max=requests.NOTE_MAX, message=f"Keep it under {requests.NOTE_MAX:,} characters.")],
        render_kw={"rows": 3, "maxlength": requests.NOTE_MAX},
    )
    submission_key = HiddenField()


def _request_form(site: Site, formdata: Any = None) -> RequestForm:
    form = RequestForm(formdata=formdata)
    groups: dict[str, list[tuple[str, str]]] = {}
    for desk in requests.desks_of(db(), site):
        label = desk.floor.name if desk.floor else "Desks"
        groups.setdefault(label, []).append((str(desk.id), desk.name))
    form.desk_id.choices = {"": [("", "Choose a desk")], **groups}  # type: ignore[assignment]
    form.floor_id.choices = [("", "Choose a floor")] + [
        (str(f.id), f"{f.name} · {f.building.name}") for f in requests.floors_of(db(), site)
    ]
    if formdata is None:
        desk = requests.default_desk(db(), current_user, site, utcnow())
        form.desk_id.data = str(desk.id) if desk else ""
        form.delivery.data = "desk" if desk else "pickup"
        form.submission_key.data = new_idempotency_key()
    return form


def _posted_lines() -> list[tuple[str, str]]:
    items = request.form.getlist("line_item")
    quantities = request.form.getlist("line_qty")
    return list(zip(items, quantities + [""] * (len(items) - len(quantities)), strict=False))


def _render_review(
    site: Site,
    form: RequestForm,
    lines: list[tuple[Any, Any]],
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    problem: str = "",
) -> Response:
    """The review form with the lines as posted (bad quantities stay as typed, beside their
    message), each with its item and stock."""
    ids = []
    for raw_id, _q in lines:
        try:
            item_id = int(raw_id)
        except (TypeError, ValueError):
            continue
        if 0 < item_id <= INT_MAX:  # a larger number names no item, and the database cannot hold it
            ids.append(item_id)
    entries = {
        e.item.id: e for e in catalog.browse(db(), site.id, only_ids=ids, include_retired=True)
    }
    rows = []
    total = 0
    for raw_id, raw_quantity in lines:
        try:
            entry = entries.get(int(raw_id))
        except (TypeError, ValueError):
            entry = None
        rows.append({"id": raw_id, "entry": entry, "quantity": raw_quantity})
        if entry is not None and str(raw_quantity).isdecimal():
            total += entry.item.price_cents * int(raw_quantity)
    checked = []
    for row in rows:
        if row["entry"] is not None and str(row["quantity"]).isdecimal():
            checked.append((row["entry"].item, int(row["quantity"])))
    warnings = requests.lead_time_warnings(db(), site, checked, form.needed_by.data, utcnow())
    return htmx.render(
        "requests/new.html",
        "requests/_request_form.html",
        status=status,
        form=form,
        site=site,
        sites=_sites(),
        rows=rows,
        total=total,
        errors=errors or {},
        problem=problem,
        warnings=warnings,
        today=requests.today_at(site, utcnow()),
    )


@bp.get("/requests/new")
@login_required
def new() -> Response:
    site = _site(_sites())
    if site is None:
        abort(404)
    form = _request_form(site)
    return _render_review(site, form, [(str(i), str(q)) for i, q in _draft_lines()])


def _apply(form: FlaskForm, violation: RuleViolation) -> dict[str, str]:
    """Put messages beside the form's fields; the rest (lines) go back to the template."""
    rest: dict[str, str] = {}
    for name, message in violation.errors.items():
        target = getattr(form, name, None) if name else None
        if target is not None and hasattr(target, "errors") and name != "lines":
            target.errors = [*list(target.errors or []), message]
        else:
            rest[name] = message
    return rest


@bp.post("/requests")
@login_required
def submit() -> Response:
    sites = _sites()
    site = _site(sites)
    if site is None:
        abort(404)
    form = _request_form(site, formdata=request.form)
    lines = _posted_lines()
    removing = request.form.get("remove")
    if removing is not None:
        # "Remove" on the review page: keep what was typed, drop that line, submit nothing.
        lines = [(i, q) for i, q in lines if i != removing]
        _save_draft(
            [(int(i), int(q)) for i, q in lines if str(i).isdecimal() and str(q).isdecimal()], site
        )
        return _render_review(site, form, lines)
    if request.form.get("refresh"):
        # The needed-by date changed: show lead-time warnings now, before anything is sent.
        form.validate()
        return _render_review(site, form, lines)
    earlier = requests.submitted_with(db(), current_user, form.submission_key.data)
    if earlier is not None:  # a double click: the first request, once
        return htmx.redirect_to(url_for("requests.detail", ticket_id=earlier.id))
    if not form.validate():
        return _render_review(site, form, lines, status=422)
    try:
        with db().begin_nested():
            submitted = requests.submit(
                db(),
                actor(),
                current_user,
                site=site,
                lines=lines,
                delivery=form.delivery.data or "",
                desk_id=form.desk_id.data,
                floor_id=form.floor_id.data,
                needed_by=form.needed_by.data,
                note=form.note.data or "",
                now=utcnow(),
                submission_key=form.submission_key.data,
            )
    except RuleViolation as violation:
        rest = _apply(form, violation)
        return _render_review(
            site, form, lines, status=422, errors=rest, problem=rest.get("lines", "")
        )
    except IntegrityError:  # the twin of this click committed first
        earlier = requests.submitted_with(db(), current_user, form.submission_key.data)
        if earlier is None:
            raise
        return htmx.redirect_to(url_for("requests.detail", ticket_id=earlier.id))
    ticket = submitted.ticket
    commit()
    session.pop(DRAFT_KEY, None)
    flash(f"Request {ticket.number} sent. You'll get an e-mail when it moves on.", "success")
    for warning in submitted.warnings:
        flash(warning, "warning")
    return htmx.redirect_to(url_for("requests.detail", ticket_id=ticket.id))


# ---------------------------------------------------------------------------------------------
# My requests


@bp.get("/requests", endpoint="mine")
@login_required
def my_requests() -> Response:
    mine = requests.requests_of(db(), current_user)
    open_ = [t for t in mine if t.status in OPEN_STATUSES]
    past = [t for t in mine if t.status not in OPEN_STATUSES]
    return htmx.render(
        "requests/mine.html",
        open_requests=open_,
        past_requests=past,
        line_labels=requests.LINE_LABELS,
        coming_total=requests.coming_total,
        dropped=requests.DROPPED,
        draft_count=sum(q for _i, q in _draft_lines()),
    )


# ---------------------------------------------------------------------------------------------
# One request


def _visible(ticket_id: int) -> Ticket:
    try:
        return requests.visible_request(db(), current_user, ticket_id)
    except NotFound:
        abort(404)


def _detail_context(ticket: Ticket, **extra: Any) -> dict[str, Any]:
    context = ticket_context(ticket)
    manage = context["can_manage"]
    statuses = [line.status for line in ticket.lines]
    pending = LineStatus.PENDING in statuses
    can_decide = manage and ticket.status in requests.DECIDABLE
    context.update(
        lines=ticket.lines,
        heading=requests.heading_for(ticket),
        coming_total=requests.coming_total(ticket),
        requested_total=requests.requested_total(ticket),
        dropped=requests.DROPPED,
        stock_notes=requests.stock_notes(db(), ticket) if can_decide else {},
        line_labels=requests.LINE_LABELS,
        delivery_labels=requests.DELIVERY_LABELS,
        can_cancel=requests.can_cancel(ticket, current_user),
        can_decide=can_decide,
        can_ready=manage
        and not pending
        and ticket.status in (TicketStatus.APPROVED, TicketStatus.ORDERED),
        can_deliver=manage
        and not pending
        and ticket.status in (TicketStatus.APPROVED, TicketStatus.ORDERED, TicketStatus.READY),
        can_close=manage and ticket.status in (TicketStatus.DELIVERED, TicketStatus.DECLINED),
        problem="",
        problem_tone="error",
        line_errors={},
        open_decline=None,
    )
    context.update(extra)
    return context


@bp.get("/requests/<int:ticket_id>")
@login_required
def detail(ticket_id: int) -> Response:
    ticket = _visible(ticket_id)
    return htmx.render("requests/detail.html", "requests/_request.html", **_detail_context(ticket))


def _version() -> int | None:
    raw = request.form.get("version")
    try:
        return int(raw) if raw else None
    except ValueError:
        return -1  # a mangled version can only be stale


def _fresh_answer(ticket_id: int, status: int, message: str, **extra: Any) -> Response:
    """The request again, fresh from the database, with what went wrong above it."""
    db().expire_all()
    ticket = _visible(ticket_id)
    if not htmx.is_htmx():
        flash(message, "error")
        return htmx.redirect_to(url_for("requests.detail", ticket_id=ticket.id))
    context = _detail_context(ticket, **{"problem": message, **extra})
    return htmx.render("requests/detail.html", "requests/_request.html", status=status, **context)


def _act(ticket_id: int, operation: Callable[[Ticket], str], **on_error: Any) -> Response:
    """Run one action on a request in a savepoint; answer with the request page (or fragment)."""
    ticket = _visible(ticket_id)
    try:
        with db().begin_nested():
            message = operation(ticket)
    except NotFound:
        abort(404)
    except tickets.StaleTicket as stale:
        return _fresh_answer(ticket_id, 409, stale.message)
    except RuleViolation as violation:
        extra = {key: value(violation) for key, value in on_error.items()}
        return _fresh_answer(ticket_id, 422, violation.message, **extra)
    commit()
    flash(message, "warning" if "purchase order" in message else "success")
    if not htmx.is_htmx():
        return htmx.redirect_to(url_for("requests.detail", ticket_id=ticket.id))
    db().expire_all()
    fresh = _visible(ticket_id)
    return htmx.render("requests/detail.html", "requests/_request.html", **_detail_context(fresh))


@bp.post("/requests/<int:ticket_id>/lines/<int:line_id>/approve")
@login_required
def approve_line(ticket_id: int, line_id: int) -> Response:
    def operation(ticket: Ticket) -> str:
        line = requests.line_of(ticket, line_id)
        decision = requests.approve(
            db(), actor(), line, by=current_user, now=utcnow(), expected_version=_version()
        )
        return decision.message

    return _act(ticket_id, operation)


@bp.post("/requests/<int:ticket_id>/lines/<int:line_id>/decline")
@login_required
def decline_line(ticket_id: int, line_id: int) -> Response:
    def operation(ticket: Ticket) -> str:
        line = requests.line_of(ticket, line_id)
        requests.decline_line(
            db(),
            actor(),
            line,
            by=current_user,
            reason=request.form.get("reason", ""),
            now=utcnow(),
            expected_version=_version(),
        )
        return f"Declined {line.item.name} ×{line.quantity}. {ticket.requester.name} is told why."

    return _act(
        ticket_id,
        operation,
        line_errors=lambda v: {line_id: v.errors["reason"]} if "reason" in v.errors else {},
        open_decline=lambda v: line_id if "reason" in v.errors else None,
        problem=lambda v: "" if "reason" in v.errors else v.message,
    )


@bp.post("/requests/<int:ticket_id>/ready")
@login_required
def mark_ready(ticket_id: int) -> Response:
    def operation(ticket: Ticket) -> str:
        requests.mark_ready(
            db(), actor(), ticket, by=current_user, now=utcnow(), expected_version=_version()
        )
        return f"{ticket.number} is ready. {ticket.requester.name} is told by e-mail."

    return _act(ticket_id, operation)


@bp.post("/requests/<int:ticket_id>/delivered")
@login_required
def mark_delivered(ticket_id: int) -> Response:
    def operation(ticket: Ticket) -> str:
        requests.mark_delivered(
            db(), actor(), ticket, by=current_user, now=utcnow(), expected_version=_version()
        )
        return f"{ticket.number} is delivered; the stock is updated."

    return _act(ticket_id, operation)


@bp.post("/requests/<int:ticket_id>/close")
@login_required
def close(ticket_id: int) -> Response:
    def operation(ticket: Ticket) -> str:
        requests.close(
            db(), actor(), ticket, by=current_user, now=utcnow(), expected_version=_version()
        )
        return f"{ticket.number} is closed."

    return _act(ticket_id, operation)


@bp.post("/requests/<int:ticket_id>/cancel")
@login_required
def cancel(ticket_id: int) -> Response:
    def operation(ticket: Ticket) -> str:
        requests.cancel(
            db(), actor(), ticket, by=current_user, now=utcnow(), expected_version=_version()
        )
        return f"{ticket.number} is cancelled."

    return _act(ticket_id, operation)
