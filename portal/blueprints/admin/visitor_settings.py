"""Visitor settings per site (its coordinators; admins: every site): directions for invitations,
the kiosk photo, how long visitors' data is kept, the visitor agreement's versions, and the deny
list (entries for one site, or for every site: those only admins add or remove)."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from portal import htmx
from portal.blueprints.context import actor, default_site, managed_site_or_404, managed_sites
from portal.errors import RuleViolation
from portal.login import safe_next
from portal.models import DenyListEntry, Role, Site, User, VisitorAgreement
from portal.permissions import coordinates_site, is_admin, load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import visitors

bp = Blueprint("visitor_settings", __name__, url_prefix="/visitor-settings")


class SettingsForm(FlaskForm):
    directions = TextAreaField(
        "Directions for visitors",
        [Length(max=2000, message="Use at most 2,000 characters.")],
        render_kw={"rows": 4, "maxlength": 2000},
    )
    photo = BooleanField("Take a photo of each visitor at the kiosk")
    retention_days = StringField(
        "Keep visitors' personal data for (days)",
        render_kw={"inputmode": "numeric", "maxlength": 4},
    )


class AgreementForm(FlaskForm):
    title = StringField(
        "Title",
        [Length(max=200, message="Use at most 200 characters.")],
        render_kw={"placeholder": "e.g. Visitor agreement and safety notice", "maxlength": 200},
    )
    body = TextAreaField(
        "Text",
        [Length(max=20_000, message="Use at most 20,000 characters.")],
        render_kw={"rows": 10, "maxlength": 20_000},
    )


class DenyForm(FlaskForm):
    name = StringField(
        "Name",
        [Length(max=200, message="Use at most 200 characters.")],
        render_kw={"autocomplete": "off"},
    )
    email = StringField(
        "E-mail",
        [Length(max=254, message="That e-mail address is too long.")],
        render_kw={"type": "email", "autocomplete": "off", "spellcheck": "false"},
    )
    reason = StringField(
        "Reason (for coordinators only)",
        [Length(max=500, message="Use at most 500 characters.")],
        render_kw={"placeholder": "e.g. Trespass notice, March 2026"},
    )
    scope = SelectField("Applies to", choices=[("site", "This site")], default="site")


def _deny_form(site: Site, formdata: bool = True) -> DenyForm:
    form = DenyForm() if formdata else DenyForm(formdata=None)
    form.scope.choices = [("site", f"{site.name} only")]
    if is_admin(current_user):
        form.scope.choices.append(("all", "Every site"))
    return form


def _render(
    site: Site,
    *,
    settings_form: SettingsForm | None = None,
    agreement_form: AgreementForm | None = None,
    deny_form: DenyForm | None = None,
    fragment: str | None = None,
    status: int = 200,
) -> Response:
    versions = list(
        db().scalars(
            select(VisitorAgreement)
            .where(VisitorAgreement.site_id == site.id)
            .order_by(VisitorAgreement.version.desc())
        )
    )
    if settings_form is None:
        settings_form = SettingsForm(formdata=None)
        settings_form.directions.data = site.visitor_directions
        settings_form.photo.data = site.visitor_photo
        settings_form.retention_days.data = str(site.visitor_retention_days)
    if agreement_form is None:
        agreement_form = AgreementForm(formdata=None)
        if versions:  # a new version starts from the current text
            agreement_form.title.data = versions[0].title
            agreement_form.body.data = versions[0].body
    entries = visitors.deny_entries(db(), {site.id})
    authors = _names({a.created_by_id for a in versions} | {e.created_by_id for e in entries})
    return htmx.render(
        "admin/visitor_settings/site.html",
        fragment,
        status=status,
        site=site,
        sites=managed_sites(),
        settings_form=settings_form,
        agreement_form=agreement_form,
        deny_form=deny_form or _deny_form(site, formdata=False),
        versions=versions,
        entries=entries,
        authors=authors,
        may_remove=lambda entry: entry.site_id is not None or is_admin(current_user),
    )


def _names(user_ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return dict(db().execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def _apply(form: FlaskForm, violation: RuleViolation, fallback: str) -> None:
    for name, message in violation.errors.items():
        field = getattr(form, name, None) if name else None
        (field if field is not None else getattr(form, fallback)).errors = [message]


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    site = default_site(managed_sites())
    if site is None:
        return htmx.render("lobby/no_site.html", status=404)
    return redirect(url_for("admin.visitor_settings.site", site_id=site.id))


@bp.get("/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def site(site_id: int) -> Response:
    return _render(managed_site_or_404(site_id))


@bp.post("/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def save(site_id: int) -> Response:
    the_site = managed_site_or_404(site_id)
    form = SettingsForm()
    fragment = "admin/visitor_settings/_settings_form.html"
    if not form.validate():
        return _render(the_site, settings_form=form, fragment=fragment, status=422)
    try:
        visitors.update_settings(
            db(),
            actor(),
            the_site,
            directions=form.directions.data or "",
            photo=bool(form.photo.data),
            retention_days=form.retention_days.data or "",
        )
    except RuleViolation as violation:
        db().rollback()
        _apply(form, violation, "directions")
        return _render(the_site, settings_form=form, fragment=fragment, status=422)
    commit()
    flash(f"Visitor settings for {the_site.name} saved.", "success")
    return htmx.redirect_to(url_for("admin.visitor_settings.site", site_id=the_site.id))


@bp.post("/sites/<int:site_id>/agreements")
@role_required(Role.COORDINATOR)
def publish(site_id: int) -> Response:
    the_site = managed_site_or_404(site_id)
    form = AgreementForm()
    fragment = "admin/visitor_settings/_agreement_form.html"
    if not form.validate():
        return _render(the_site, agreement_form=form, fragment=fragment, status=422)
    try:
        agreement = visitors.publish_agreement(
            db(), actor(), the_site, title=form.title.data or "", body=form.body.data or ""
        )
    except RuleViolation as violation:
        db().rollback()
        _apply(form, violation, "body")
        return _render(the_site, agreement_form=form, fragment=fragment, status=422)
    commit()
    flash(
        f"Version {agreement.version} is published: visitors sign it from their next check-in.",
        "success",
    )
    return htmx.redirect_to(url_for("admin.visitor_settings.site", site_id=the_site.id))


@bp.post("/sites/<int:site_id>/deny-list")
@role_required(Role.COORDINATOR)
def add_deny(site_id: int) -> Response:
    the_site = managed_site_or_404(site_id)
    form = _deny_form(the_site)
    fragment = "admin/visitor_settings/_deny_form.html"
    if not form.validate():  # "every site" is offered (and so valid) only to admins
        return _render(the_site, deny_form=form, fragment=fragment, status=422)
    try:
        entry = visitors.add_deny_entry(
            db(),
            actor(),
            site=None if form.scope.data == "all" else the_site,
            name=form.name.data or "",
            email=form.email.data or "",
            reason=form.reason.data or "",
        )
    except RuleViolation as violation:
        db().rollback()
        _apply(form, violation, "name")
        return _render(the_site, deny_form=form, fragment=fragment, status=422)
    commit()
    who = entry.name or entry.email
    where = "every site" if entry.site_id is None else the_site.name
    flash(f"{who} is on the deny list for {where}.", "success")
    return htmx.redirect_to(url_for("admin.visitor_settings.site", site_id=the_site.id))


def _may_manage_entry(user: User, entry: DenyListEntry) -> bool:
    if entry.site_id is None:
        return is_admin(user)
    return coordinates_site(user, entry.site_id)


@bp.post("/deny-list/<int:entry_id>/remove")
@role_required(Role.COORDINATOR)
def remove_deny(entry_id: int) -> Response:
    entry = load_or_404(db(), DenyListEntry, entry_id, _may_manage_entry)
    if not entry.active:
        flash("That entry was already removed.", "info")
    else:
        visitors.remove_deny_entry(db(), actor(), entry)
        commit()
        flash(f"{entry.name or entry.email} is off the deny list.", "success")
    return htmx.redirect_to(
        safe_next(request.form.get("next")) or url_for("admin.visitor_settings.index")
    )
