"""Access control per site (its coordinators; admins: every site): the connection to the site's
badge system (secrets are write-only), the deliveries of visitor credentials with their state and
a Retry button on failures, a day pass for an employee without their badge, the recent door
events, and a CSV import of door events for systems without webhooks."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import Length

from portal import htmx
from portal.blueprints.context import actor, default_site, managed_site_or_404, managed_sites
from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import Role, Site
from portal.models.access_control import AccessGrant, GrantMoment, GrantState
from portal.permissions import coordinates_site, load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import access_control

bp = Blueprint("access_control", __name__, url_prefix="/access-control")

CSV_MAX_BYTES = 2 * 1024 * 1024
GRANT_MOMENTS = [
    (GrantMoment.CHECK_IN.value, "When the visitor checks in at the kiosk"),
    (GrantMoment.INVITATION.value, "When the visitor is invited (the credential arrives ahead)"),
]


class SettingsForm(FlaskForm):
    enabled = BooleanField("Create credentials for visitors")
    base_url = StringField(
        "System address",
        [Length(max=300, message="Use at most 300 characters.")],
        render_kw={"placeholder": "https://access-bridge.example.com/api", "spellcheck": "false"},
    )
    api_key = PasswordField(
        "API key",
        [Length(max=500, message="Use at most 500 characters.")],
        render_kw={"autocomplete": "new-password"},
    )
    door_group = StringField(
        "Door group for visitors",
        [Length(max=120, message="Use at most 120 characters.")],
        render_kw={"placeholder": "e.g. Lobby and 3rd floor"},
    )
    grant_at = SelectField("Visitors get their credential", choices=GRANT_MOMENTS)
    webhook_secret = PasswordField(
        "Webhook secret",
        [Length(max=200, message="Use at most 200 characters.")],
        render_kw={"autocomplete": "new-password"},
    )
    new_webhook_secret = BooleanField("Generate a new webhook secret and show it once")


class ImportForm(FlaskForm):
    file = FileField("CSV file of door events")


class DayPassForm(FlaskForm):
    email = StringField(
        "Employee's e-mail",
        [Length(max=254, message="That e-mail address is too long.")],
        render_kw={"type": "email", "autocomplete": "off", "spellcheck": "false"},
    )


def _key() -> bytes:
    return current_app.extensions["foyer.settings"].secret_key.encode()


def _render(
    site: Site,
    *,
    settings_form: SettingsForm | None = None,
    import_form: ImportForm | None = None,
    day_pass_form: DayPassForm | None = None,
    report: access_control.ImportReport | None = None,
    shown_secret: str | None = None,
    fragment: str | None = None,
    status: int = 200,
) -> Response:
    row = access_control.settings_for(db(), site.id)
    if settings_form is None:
        settings_form = SettingsForm(formdata=None)
        if row is not None:
            settings_form.enabled.data = row.enabled
            settings_form.base_url.data = row.base_url
            settings_form.door_group.data = row.door_group
            settings_form.grant_at.data = row.grant_at
    grants = access_control.deliveries(db(), {site.id}, limit=50)
    response = htmx.render(
        "admin/access_control/site.html",
        fragment,
        status=status,
        site=site,
        sites=managed_sites(),
        row=row,
        settings_form=settings_form,
        import_form=import_form or ImportForm(formdata=None),
        day_pass_form=day_pass_form or DayPassForm(formdata=None),
        report=report,
        shown_secret=shown_secret,
        grants=grants,
        failed=sum(1 for g in grants if g.state == GrantState.FAILED),
        holder_name=access_control.holder_name,
        events=access_control.recent_events(db(), {site.id}, limit=30),
        webhook_url=url_for("door_events.receive", site_slug=site.slug, _external=False),
        base_url=current_app.extensions["foyer.settings"].base_url.rstrip("/"),
        now=utcnow(),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _apply(form: FlaskForm, violation: RuleViolation, fallback: str) -> None:
    for name, message in violation.errors.items():
        field: Any = getattr(form, name, None) if name else None
        (field if field is not None else getattr(form, fallback)).errors = [message]


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    site = default_site(managed_sites())
    if site is None:
        return htmx.render("lobby/no_site.html", status=404)
    return redirect(url_for("admin.access_control.site", site_id=site.id))


@bp.get("/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def site(site_id: int) -> Response:
    return _render(managed_site_or_404(site_id))


@bp.post("/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def save(site_id: int) -> Response:
    the_site = managed_site_or_404(site_id)
    form = SettingsForm()
    fragment = "admin/access_control/_settings_form.html"
    if not form.validate():
        return _render(the_site, settings_form=form, fragment=fragment, status=422)
    generated = access_control.new_webhook_secret() if form.new_webhook_secret.data else None
    try:
        access_control.update_settings(
            db(),
            actor(),
            the_site,
            _key(),
            enabled=bool(form.enabled.data),
            base_url=form.base_url.data or "",
            door_group=form.door_group.data or "",
            grant_at=form.grant_at.data or "",
            api_key=form.api_key.data,
            webhook_secret=generated or form.webhook_secret.data,
        )
    except RuleViolation as violation:
        db().rollback()
        _apply(form, violation, "base_url")
        return _render(the_site, settings_form=form, fragment=fragment, status=422)
    commit()
    if generated:
        # Shown once, in this answer only: it is sealed from now on.
        flash("Settings saved. Copy the new webhook secret now: it is not shown again.", "success")
        return _render(the_site, shown_secret=generated, fragment=fragment)
    flash(f"Access control for {the_site.name} saved.", "success")
    return htmx.redirect_to(url_for("admin.access_control.site", site_id=the_site.id))


def _managed_grant(grant_id: int) -> AccessGrant:
    return load_or_404(db(), AccessGrant, grant_id, lambda u, g: coordinates_site(u, g.site_id))


@bp.post("/grants/<int:grant_id>/retry")
@role_required(Role.COORDINATOR)
def retry(grant_id: int) -> Response:
    grant = _managed_grant(grant_id)
    try:
        access_control.retry(db(), actor(), grant, now=utcnow())
    except RuleViolation as violation:
        db().rollback()
        flash(violation.message, "info")
    else:
        commit()
        flash(f"Trying again for {access_control.holder_name(grant)}.", "success")
    return htmx.redirect_to(url_for("admin.access_control.site", site_id=grant.site_id))


@bp.post("/sites/<int:site_id>/day-pass")
@role_required(Role.COORDINATOR)
def day_pass(site_id: int) -> Response:
    the_site = managed_site_or_404(site_id)
    form = DayPassForm()
    fragment = "admin/access_control/_day_pass_form.html"
    if not form.validate():
        return _render(the_site, day_pass_form=form, fragment=fragment, status=422)
    try:
        grant = access_control.issue_day_pass(
            db(), actor(), the_site, form.email.data or "", now=utcnow()
        )
    except RuleViolation as violation:
        db().rollback()
        _apply(form, violation, "email")
        return _render(the_site, day_pass_form=form, fragment=fragment, status=422)
    commit()
    flash(f"A day pass for {access_control.holder_name(grant)} is on its way.", "success")
    return htmx.redirect_to(url_for("admin.access_control.site", site_id=the_site.id))


@bp.post("/sites/<int:site_id>/import")
@role_required(Role.COORDINATOR)
def import_events(site_id: int) -> Response:
    the_site = managed_site_or_404(site_id)
    form = ImportForm()
    fragment = "admin/access_control/_import_form.html"
    upload = form.file.data
    content = upload.stream.read(CSV_MAX_BYTES + 1) if upload else b""
    if not form.validate() or not upload or not content:
        form.file.errors = ["Choose a CSV file of door events."]
        return _render(the_site, import_form=form, fragment=fragment, status=422)
    if len(content) > CSV_MAX_BYTES:
        form.file.errors = [f"The file is larger than {CSV_MAX_BYTES // 1024 // 1024} MB."]
        return _render(the_site, import_form=form, fragment=fragment, status=422)
    report = access_control.import_csv(db(), actor(), the_site, content, now=utcnow())
    commit()
    status = 422 if report.errors and not report.recorded else 200
    return _render(
        the_site,
        import_form=ImportForm(formdata=None),
        report=report,
        fragment=fragment,
        status=status,
    )
