"""What every ticket page shares (a request, a facility issue, a return task): the conversation
(comments and internal notes), and the coordinator's panel (status, assignee, vendor, priority,
SLA clock). Each kind's own page renders these with `ticket_context()` and includes
`tickets/_thread.html` and `tickets/_manage.html`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, make_response, render_template, request
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, HiddenField, SelectField, TextAreaField
from wtforms.validators import Length

from portal import htmx
from portal.blueprints.context import actor
from portal.db import utcnow
from portal.errors import NotFound, RuleViolation
from portal.models import Role, RoleGrant, Ticket, TicketKind, TicketStatus, User, Vendor
from portal.request_scope import commit, db
from portal.services import sla, tickets

bp = Blueprint("tickets", __name__, url_prefix="/tickets")

# Requests move through these on the request page (requests.py), which reserves, hands over and
# releases stock on the way; the generic status form must not skip that.
REQUEST_OWN_STEPS = {
    TicketStatus.APPROVED,
    TicketStatus.DECLINED,
    TicketStatus.READY,
    TicketStatus.DELIVERED,
    TicketStatus.CANCELLED,
}


# The status list in the coordinator's panel speaks from their side.
STAFF_LABELS = {
    TicketStatus.WAITING: "Waiting on the requester (pauses the SLA clock)",
    TicketStatus.IN_PROGRESS: "In progress",
    TicketStatus.SUBMITTED: "Back to submitted",
}


class CommentForm(FlaskForm):
    body = TextAreaField(
        "Add a comment",
        [
            Length(
                max=tickets.COMMENT_MAX,
                message=f"Keep it under {tickets.COMMENT_MAX:,} characters.",
            )
        ],
        render_kw={"rows": 3, "maxlength": tickets.COMMENT_MAX},
    )
    internal = BooleanField("Internal note (only coordinators see it)")


class StatusForm(FlaskForm):
    status = SelectField("New status")
    note = TextAreaField(
        "Note to the requester (optional)",
        [Length(max=500, message="Keep the note under 500 characters.")],
        render_kw={"rows": 2, "maxlength": 500},
    )
    version = HiddenField()


class AssignForm(FlaskForm):
    assignee_id = SelectField("Assignee", coerce=int)
    vendor_id = SelectField("Vendor", coerce=int)
    priority = SelectField("Priority", choices=list(tickets.PRIORITY_LABELS.items()))
    version = HiddenField()


@bp.app_template_filter("due_text")
def due_text(due: datetime | None, now: datetime | None = None) -> str:
    """ "due in 3 h 20 min", "overdue by 1 d 4 h": how far a deadline is, in words."""
    if due is None:
        return "no target"
    now = now or utcnow()
    gap = due - now
    words = _span(abs(gap))
    return f"due in {words}" if gap >= timedelta(0) else f"overdue by {words}"


def _span(gap: timedelta) -> str:
    minutes = int(gap.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{max(minutes, 1)} min"


def _staff_choices(ticket: Ticket) -> list[User]:
    """People a ticket can be given to: its site's coordinators, then admins."""
    rows = db().scalars(
        select(User)
        .join(RoleGrant, RoleGrant.user_id == User.id)
        .where(
            User.active.is_(True),
            (RoleGrant.role == Role.ADMIN)
            | ((RoleGrant.role == Role.COORDINATOR) & (RoleGrant.site_id == ticket.site_id)),
        )
        .distinct()
        .order_by(User.name)
    )
    return list(rows)


def _next_statuses(ticket: Ticket) -> list[tuple[str, str]]:
    allowed = tickets.TRANSITIONS.get(ticket.kind, {}).get(ticket.status, set())
    if ticket.kind == TicketKind.REQUEST:
        allowed = allowed - REQUEST_OWN_STEPS
    order = list(tickets.STATUS_LABELS)
    labels = {**tickets.STATUS_LABELS, **STAFF_LABELS}
    return [(s, labels[s]) for s in sorted(allowed, key=order.index)]


def _status_form(ticket: Ticket, formdata: Any = None) -> StatusForm:
    form = StatusForm(formdata=formdata) if formdata is not None else StatusForm(formdata=None)
    form.status.choices = _next_statuses(ticket)
    if formdata is None:
        form.version.data = str(ticket.version)
    return form


def _assign_form(ticket: Ticket, formdata: Any = None) -> AssignForm:
    form = AssignForm(formdata=formdata) if formdata is not None else AssignForm(formdata=None)
    form.assignee_id.choices = [(0, "Nobody yet")] + [
        (u.id, u.name) for u in _staff_choices(ticket)
    ]
    vendors = db().scalars(select(Vendor).where(Vendor.active.is_(True)).order_by(Vendor.name))
    form.vendor_id.choices = [(0, "No vendor")] + [(v.id, v.name) for v in vendors]
    if formdata is None:
        form.assignee_id.data = ticket.assignee_id or 0
        form.vendor_id.data = ticket.vendor_id or 0
        form.priority.data = ticket.priority
        form.version.data = str(ticket.version)
    return form


def ticket_context(ticket: Ticket, **overrides: Any) -> dict[str, Any]:
    """What `tickets/_thread.html` and `tickets/_manage.html` need, for the current viewer."""
    now = utcnow()
    can_manage = tickets.may_manage(current_user, ticket)
    context: dict[str, Any] = {
        "ticket": ticket,
        "now": now,
        "events": tickets.thread(db(), ticket, current_user),
        "can_manage": can_manage,
        "is_requester": ticket.requester_id == current_user.id,
        "sla_state": sla.state_of(ticket, now),
        "can_cancel": ticket.requester_id == current_user.id
        and ticket.status in tickets.CANCELLABLE,
        "comment_form": CommentForm(formdata=None),
        "thread_open": can_manage
        or ticket.status not in (TicketStatus.CLOSED, TicketStatus.CANCELLED),
        "status_labels": tickets.STATUS_LABELS,
        "priority_labels": tickets.PRIORITY_LABELS,
        "manage_problem": "",
    }
    if can_manage:
        context["status_form"] = _status_form(ticket)
        context["assign_form"] = _assign_form(ticket)
    context.update(overrides)
    return context


def _ticket_or_404(ticket_id: int) -> Ticket:
    try:
        return tickets.visible_ticket(db(), current_user, ticket_id)
    except NotFound:
        abort(404)


def _version(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return -1  # a mangled version can only be stale


def _manage_answer(ticket: Ticket, status: int, problem: str, **forms: Any) -> Response:
    """The coordinator's panel again, fresh from the database, with what went wrong."""
    if not htmx.is_htmx():
        flash(problem, "error")
        return htmx.redirect_to(tickets.ticket_path(ticket))
    db().expire_all()
    fresh = db().get(Ticket, ticket.id)
    assert fresh is not None
    context = ticket_context(fresh, manage_problem=problem, **forms)
    return make_response(render_template("tickets/_manage.html", **context), status)


# ---------------------------------------------------------------------------------------------
# The conversation


@bp.post("/<int:ticket_id>/comments")
@login_required
def comment(ticket_id: int) -> Response:
    ticket = _ticket_or_404(ticket_id)
    form = CommentForm()
    status = 200
    if form.validate():
        try:
            with db().begin_nested():
                tickets.add_comment(
                    db(),
                    actor(),
                    ticket,
                    current_user,
                    form.body.data or "",
                    now=utcnow(),
                    internal=bool(form.internal.data),
                )
            commit()
            form = CommentForm(formdata=None)
        except RuleViolation as violation:
            form.body.errors = [*form.body.errors, *violation.errors.values()]
            status = 422
    else:
        status = 422
    if not htmx.is_htmx():
        if status != 200:
            flash(" ".join(form.body.errors), "error")
        return htmx.redirect_to(tickets.ticket_path(ticket))
    context = ticket_context(ticket, comment_form=form)
    return make_response(render_template("tickets/_thread.html", **context), status)


# ---------------------------------------------------------------------------------------------
# The coordinator's panel


@bp.post("/<int:ticket_id>/status")
@login_required
def change_status(ticket_id: int) -> Response:
    ticket = _ticket_or_404(ticket_id)
    if not tickets.may_manage(current_user, ticket):
        abort(404)
    form = _status_form(ticket, formdata=request.form)
    if not form.validate():
        return _manage_answer(ticket, 422, "Choose one of the statuses offered.", status_form=form)
    return _save_from_panel(
        ticket,
        lambda: tickets.change_status(
            db(),
            actor(),
            ticket,
            form.status.data,
            by=current_user,
            now=utcnow(),
            note=(form.note.data or "").strip(),
            expected_version=_version(form.version.data),
        ),
        lambda: f"{ticket.number} is now {tickets.STATUS_LABELS[ticket.status].lower()}.",
    )


@bp.post("/<int:ticket_id>/assign")
@login_required
def assign(ticket_id: int) -> Response:
    ticket = _ticket_or_404(ticket_id)
    if not tickets.may_manage(current_user, ticket):
        abort(404)
    form = _assign_form(ticket, formdata=request.form)
    if not form.validate():
        return _manage_answer(ticket, 422, "Choose from the lists offered.", assign_form=form)
    assignee = db().get(User, form.assignee_id.data) if form.assignee_id.data else None
    vendor = db().get(Vendor, form.vendor_id.data) if form.vendor_id.data else None
    return _save_from_panel(
        ticket,
        lambda: tickets.assign(
            db(),
            actor(),
            ticket,
            by=current_user,
            now=utcnow(),
            assignee=assignee,
            vendor=vendor,
            priority=form.priority.data,
            expected_version=_version(form.version.data),
        ),
        lambda: f"{ticket.number} saved.",
    )


def _save_from_panel(
    ticket: Ticket, change: Callable[[], object], done: Callable[[], str]
) -> Response:
    """Run one change from the coordinator's panel: saved and back to the page, or the panel
    again with the reason (422) or the fresh state (409)."""
    try:
        with db().begin_nested():
            change()
    except RuleViolation as violation:
        return _manage_answer(ticket, 422, violation.message)
    except tickets.StaleTicket as stale:
        return _manage_answer(ticket, 409, stale.message)
    commit()
    flash(done(), "success")
    return htmx.redirect_to(tickets.ticket_path(ticket))


@bp.post("/<int:ticket_id>/cancel")
@login_required
def cancel(ticket_id: int) -> Response:
    """The requester withdraws an issue. (Requests have their own cancel on the request page:
    they hold stock that must be let go of.)"""
    ticket = _ticket_or_404(ticket_id)
    if ticket.kind == TicketKind.REQUEST:
        abort(404)
    try:
        with db().begin_nested():
            tickets.cancel(
                db(),
                actor(),
                ticket,
                current_user,
                now=utcnow(),
                expected_version=_version(request.form.get("version")),
            )
    except (RuleViolation, tickets.StaleTicket) as problem:
        flash(problem.message, "error")
        return htmx.redirect_to(tickets.ticket_path(ticket))
    commit()
    flash(f"{ticket.number} is cancelled.", "success")
    return htmx.redirect_to(tickets.ticket_path(ticket))
