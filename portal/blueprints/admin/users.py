"""Admin: people, their roles, and deactivation (which ends their sessions)."""

from __future__ import annotations

from flask import Blueprint, Response, flash, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField

from portal import htmx
from portal.blueprints.context import actor
from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import Role, RoleGrant, Site, User
from portal.permissions import load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import accounts, login_sessions, offboarding
from portal.services.people_directory import search_people

bp = Blueprint("users", __name__, url_prefix="/people")


class GrantRoleForm(FlaskForm):
    role = SelectField(
        "Role",
        choices=[(Role.COORDINATOR.value, "Coordinator"), (Role.ADMIN.value, "Administrator")],
    )
    site = SelectField("Site (for coordinators)", coerce=str)


def _grant_form() -> GrantRoleForm:
    form = GrantRoleForm()
    sites = db().scalars(select(Site).order_by(Site.name))
    form.site.choices = [("", "—")] + [(str(s.id), s.name) for s in sites]
    return form


@bp.get("/")
@role_required(Role.ADMIN)
def users() -> Response:
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        page = 1
    query = request.args.get("q", "")
    status = request.args.get("status", "")
    result = search_people(db(), query, status, page)
    return htmx.render(
        "admin/users.html", "admin/_users_table.html", result=result, q=query, status_filter=status
    )


def _render_person(person: User, form: GrantRoleForm | None = None, status: int = 200) -> Response:
    return htmx.render(
        "admin/user.html",
        status=status,
        person=person,
        form=form or _grant_form(),
        sessions=login_sessions.open_sessions(db(), person.id),
    )


@bp.get("/<int:user_id>")
@role_required(Role.ADMIN)
def person(user_id: int) -> Response:
    return _render_person(load_or_404(db(), User, user_id))


@bp.post("/<int:user_id>/roles")
@role_required(Role.ADMIN)
def grant(user_id: int) -> Response:
    person = load_or_404(db(), User, user_id)
    form = _grant_form()
    if not form.validate():
        return _render_person(person, form, 422)
    site = db().get(Site, int(form.site.data)) if form.site.data else None
    try:
        accounts.grant_role(db(), actor(), person, form.role.data or "", site)
    except RuleViolation as violation:
        form.site.errors = list(violation.errors.values())
        return _render_person(person, form, 422)
    commit()
    flash(f"{person.name} now has the {form.role.data} role.", "success")
    return htmx.redirect_to(url_for("admin.users.person", user_id=person.id))


@bp.post("/<int:user_id>/roles/<int:grant_id>/revoke")
@role_required(Role.ADMIN)
def revoke(user_id: int, grant_id: int) -> Response:
    person = load_or_404(db(), User, user_id)
    grant_row = load_or_404(db(), RoleGrant, grant_id, lambda _u, g: g.user_id == person.id)
    try:
        accounts.revoke_role(db(), actor(), person, grant_row)
    except RuleViolation as violation:
        flash(violation.message, "error")
        return htmx.redirect_to(url_for("admin.users.person", user_id=person.id))
    commit()
    flash("Role removed.", "success")
    return htmx.redirect_to(url_for("admin.users.person", user_id=person.id))


@bp.post("/<int:user_id>/deactivate")
@role_required(Role.ADMIN)
def deactivate(user_id: int) -> Response:
    person = load_or_404(db(), User, user_id)
    was_active = person.active
    try:
        accounts.deactivate_user(db(), actor(), person)
        # In the same transaction: their bookings, loans, desk and assets are handled too.
        summary = offboarding.offboard(db(), actor(), person, utcnow()) if was_active else None
    except RuleViolation as violation:
        db().rollback()
        flash(violation.message, "error")
        return htmx.redirect_to(url_for("admin.users.person", user_id=person.id))
    commit()
    done = summary.sentence() if summary is not None else ""
    flash(
        f"{person.name} is deactivated and signed out everywhere."
        + (f" Offboarding: {done}." if done else ""),
        "success",
    )
    return htmx.redirect_to(url_for("admin.users.person", user_id=person.id))


@bp.post("/<int:user_id>/sign-out")
@role_required(Role.ADMIN)
def sign_out_everywhere(user_id: int) -> Response:
    person = load_or_404(db(), User, user_id)
    ended = accounts.sign_out_everywhere(db(), actor(), person)
    commit()
    sessions = "1 session" if ended == 1 else f"{ended} sessions"
    flash(f"{person.name} is signed out everywhere ({sessions} ended).", "success")
    return htmx.redirect_to(url_for("admin.users.person", user_id=person.id))


@bp.post("/<int:user_id>/reactivate")
@role_required(Role.ADMIN)
def reactivate(user_id: int) -> Response:
    person = load_or_404(db(), User, user_id)
    accounts.reactivate_user(db(), actor(), person)
    commit()
    flash(f"{person.name} can sign in again.", "success")
    return htmx.redirect_to(url_for("admin.users.person", user_id=person.id))
