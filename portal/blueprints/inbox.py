"""The coordinator's inbox: requests, facility issues and room approvals in one queue."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, Response, abort, flash, request, url_for
from flask_login import current_user

from portal import htmx
from portal.blueprints.context import actor
from portal.db import utcnow
from portal.errors import NotFound, RuleViolation
from portal.models import Role, User, Vendor
from portal.permissions import role_required
from portal.request_scope import commit, db
from portal.services import inbox, sla, tickets

bp = Blueprint("inbox", __name__, url_prefix="/inbox")


def _view_from(query: str) -> inbox.InboxFilter:
    return inbox.InboxFilter.from_args(dict(parse_qsl(query or "", keep_blank_values=True)))


def _render(
    view: inbox.InboxFilter,
    *,
    result: inbox.BulkResult | None = None,
    problem: str = "",
    view_problem: str = "",
    view_name: str = "",
    status: int = 200,
) -> Response:
    now = utcnow()
    page = inbox.inbox_page(db(), current_user, view, now)
    response = htmx.render(
        "inbox/index.html",
        "inbox/_queue.html",
        status=status,
        queue=page,
        view=view,
        now=now,
        built_in_views=inbox.BUILT_IN_VIEWS,
        kinds=inbox.KIND_LABELS,
        sorts=inbox.SORTS,
        ages=inbox.AGES,
        sla_filters=inbox.SLA_FILTERS,
        categories=inbox.CATEGORY_LABELS,
        statuses=tickets.STATUS_LABELS,
        priorities=tickets.PRIORITY_LABELS,
        bulk_actions=inbox.BULK_ACTIONS,
        result=result,
        problem=problem,
        view_problem=view_problem,
        view_name=view_name,
        sla_states=sla.SLA_STATES,
        default_sort=replace(view, sort="").effective_sort,
    )
    return response


def _inbox_url(back: str) -> str:
    """The inbox with the filters the form came from. `back` is re-encoded, not pasted: a raw
    line break in it would otherwise end in the Location header (a 500, found by wapiti)."""
    query = urlencode(parse_qsl(back, keep_blank_values=True))
    return url_for("inbox.index") + (f"?{query}" if query else "")


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    return _render(inbox.InboxFilter.from_args(request.args))


@bp.post("/bulk")
@role_required(Role.COORDINATOR)
def bulk() -> Response:
    back = request.form.get("back", "")[:1000]
    view = _view_from(back)
    action = request.form.get("action", "")
    selection = inbox.parse_selection(request.form.getlist("selected"))
    assignee, vendor = _assign_target(request.form.get("assign_to", ""))
    try:
        result = inbox.bulk(
            db(),
            actor(),
            current_user,
            action,
            selection,
            now=utcnow(),
            assignee=assignee,
            vendor=vendor,
        )
    except RuleViolation as violation:
        db().rollback()
        message = " ".join(m for m in violation.errors.values() if m)
        if not htmx.is_htmx():
            flash(message, "error")
            return htmx.redirect_to(_inbox_url(back))
        return _render(view, problem=message, status=422)
    commit()
    if not htmx.is_htmx():
        flash(result.summary, "success" if not result.skipped else "warning")
        return htmx.redirect_to(_inbox_url(back))
    db().expire_all()
    return _render(view, result=result)


def _assign_target(raw: str) -> tuple[User | None, Vendor | None]:
    """ "u12" a person, "v3" a vendor; anything else nothing (the service then asks for one)."""
    kind, number = raw[:1], raw[1:]
    if not number.isdecimal() or len(number) > 9:
        return None, None
    if kind == "u":
        person = db().get(User, int(number))
        return (person if person is not None and person.active else None), None
    if kind == "v":
        return None, db().get(Vendor, int(number))
    return None, None


@bp.post("/views")
@role_required(Role.COORDINATOR)
def save_view() -> Response:
    back = request.form.get("back", "")[:1000]
    view = _view_from(back)
    name = request.form.get("name", "")
    try:
        saved, new = inbox.save_view(db(), actor(), current_user, name, view)
    except RuleViolation as violation:
        db().rollback()
        message = " ".join(m for m in violation.errors.values() if m)
        if not htmx.is_htmx():
            flash(message, "error")
            return htmx.redirect_to(_inbox_url(back))
        return _render(view, view_problem=message, view_name=name[:100], status=422)
    commit()
    flash(f"{'Saved' if new else 'Updated'} the view “{saved.name}”.", "success")
    if not htmx.is_htmx():
        return htmx.redirect_to(_inbox_url(back))
    return _render(view)


@bp.post("/views/<int:view_id>/delete")
@role_required(Role.COORDINATOR)
def delete_view(view_id: int) -> Response:
    try:
        saved = inbox.delete_view(db(), current_user, view_id)
    except NotFound:
        abort(404)
    name = saved.name
    commit()
    flash(f"Deleted the view “{name}”.", "success")
    back = request.form.get("back", "")[:1000]
    return htmx.redirect_to(_inbox_url(back))


@bp.get("/tickets/<int:ticket_id>")
@role_required(Role.COORDINATOR)
def return_task(ticket_id: int) -> Response:
    try:
        ticket = inbox.ticket_for_return_page(db(), current_user, ticket_id)
    except NotFound:
        abort(404)
    if not tickets.may_manage(current_user, ticket):
        abort(404)
    from portal.blueprints.tickets import ticket_context

    return htmx.render(
        "inbox/return_task.html",
        items=inbox.return_items(ticket),
        **ticket_context(ticket),
    )
