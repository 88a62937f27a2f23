"""Admin: the audit trail, newest first, filterable by who, action, object and dates, and
downloadable as CSV (streamed, so a year of entries never sits in memory)."""

from __future__ import annotations

from flask import Blueprint, Response, request, stream_with_context
from flask_login import current_user

from portal import htmx
from portal.db import db_int, utcnow
from portal.errors import RuleViolation
from portal.models import Role
from portal.permissions import role_required
from portal.request_scope import db
from portal.services import audit_search
from portal.timezones import zone_for

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("/")
@role_required(Role.ADMIN)
def audit_log() -> Response:
    view = audit_search.AuditFilter.from_args(request.args)
    zone = zone_for(current_user)
    problems = view.problems()
    events, more = [], False
    if not problems:
        events, more = audit_search.page(db(), view, zone, request.args.get("before", type=db_int))
    return htmx.render(
        "admin/audit_log.html",
        "admin/_audit_rows.html",
        status=422 if problems else 200,
        events=events,
        more=more,
        view=view,
        problems=problems,
        zone=zone,
        object_types=audit_search.object_types(db()),
    )


@bp.get("/export.csv")
@role_required(Role.ADMIN)
def export() -> Response:
    view = audit_search.AuditFilter.from_args(request.args)
    zone = zone_for(current_user)
    try:
        lines = audit_search.export_csv(db(), view, zone)
    except RuleViolation as exc:
        return Response(
            "Nothing was exported: " + " ".join(exc.errors.values()) + "\n",
            status=422,
            mimetype="text/plain",
        )
    name = audit_search.export_name(view, utcnow().astimezone(zone).date())
    response = Response(stream_with_context(lines), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
