"""Admin: the mail outbox. Every e-mail Foyer sends or keeps, its delivery attempts and errors, the
message itself with its calendar invitation, and "send again" for failed (or kept) ones."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, make_response, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import defer

from portal import htmx
from portal.blueprints.context import actor
from portal.db import db_int, utcnow
from portal.errors import RuleViolation
from portal.models import OutboxMessage, OutboxStatus, Role
from portal.permissions import load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import notifications

bp = Blueprint("outbox", __name__, url_prefix="/outbox")
PAGE_SIZE = 50
STATUSES = [s.value for s in OutboxStatus]


def _mail_configured() -> bool:
    return bool(current_app.extensions["foyer.settings"].mail_server)


def _retryable(message: OutboxMessage) -> bool:
    return message.status == OutboxStatus.FAILED or (
        message.status == OutboxStatus.KEPT and _mail_configured()
    )


@bp.get("/")
@role_required(Role.ADMIN)
def outbox() -> Response:
    status = request.args.get("status", "")
    status = status if status in STATUSES else ""
    before_id = request.args.get("before", type=db_int)
    # The list shows no bodies: leave them in the database.
    stmt = select(OutboxMessage).options(
        defer(OutboxMessage.text_body),
        defer(OutboxMessage.html_body),
        defer(OutboxMessage.ics_body),
    )
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    if before_id:
        stmt = stmt.where(OutboxMessage.id < before_id)
    messages = list(db().scalars(stmt.order_by(OutboxMessage.id.desc()).limit(PAGE_SIZE + 1)))
    counts = dict(
        db()
        .execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
        .all()
    )
    return htmx.render(
        "admin/outbox.html",
        "admin/_outbox_rows.html",
        rows=messages[:PAGE_SIZE],
        more=len(messages) > PAGE_SIZE,
        status_filter=status,
        statuses=STATUSES,
        counts=counts,
        mail_configured=_mail_configured(),
    )


@bp.get("/<int:message_id>")
@role_required(Role.ADMIN)
def message(message_id: int) -> Response:
    found = load_or_404(db(), OutboxMessage, message_id)
    return htmx.render(
        "admin/outbox_message.html",
        mail=found,
        retryable=_retryable(found),
        mail_configured=_mail_configured(),
    )


@bp.get("/<int:message_id>/invite.ics")
@role_required(Role.ADMIN)
def invitation(message_id: int) -> Response:
    """The invitation as a file, to open in a calendar program when checking what was sent."""
    found = load_or_404(db(), OutboxMessage, message_id, lambda _u, m: bool(m.ics_body))
    response = make_response(found.ics_body or "")
    response.mimetype = "text/calendar"
    response.headers["Content-Disposition"] = f'attachment; filename="foyer-{found.id}.ics"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<int:message_id>/retry")
@role_required(Role.ADMIN)
def retry(message_id: int) -> Response:
    found = load_or_404(db(), OutboxMessage, message_id)
    here = url_for("admin.outbox.message", message_id=found.id)
    try:
        notifications.requeue(
            db(), actor(), found, now=utcnow(), mail_configured=_mail_configured()
        )
    except RuleViolation as violation:
        flash(violation.message, "error")
        return htmx.redirect_to(here)
    commit()  # the commit asks the job queue for an immediate delivery (portal/jobs.py)
    flash("Queued again: it goes out within a minute.", "success")
    return htmx.redirect_to(here)
