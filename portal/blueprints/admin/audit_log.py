"""Admin: the audit trail, newest first, filterable by action and person."""

from __future__ import annotations

from flask import Blueprint, Response, request
from sqlalchemy import func, select

from portal import htmx
from portal.models import AuditEvent, Role
from portal.permissions import role_required
from portal.request_scope import db

bp = Blueprint("audit", __name__, url_prefix="/audit")
PAGE_SIZE = 100


@bp.get("/")
@role_required(Role.ADMIN)
def audit_log() -> Response:
    action = request.args.get("action", "").strip()[:60]
    who = request.args.get("who", "").strip()[:254]
    before_id = request.args.get("before", type=int)
    stmt = select(AuditEvent)
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action))
    if who:
        stmt = stmt.where(func.lower(AuditEvent.actor_label).contains(who.lower()))
    if before_id:
        stmt = stmt.where(AuditEvent.id < before_id)
    events = list(db().scalars(stmt.order_by(AuditEvent.id.desc()).limit(PAGE_SIZE + 1)))
    more = len(events) > PAGE_SIZE
    return htmx.render(
        "admin/audit_log.html",
        "admin/_audit_rows.html",
        events=events[:PAGE_SIZE],
        more=more,
        action=action,
        who=who,
    )
