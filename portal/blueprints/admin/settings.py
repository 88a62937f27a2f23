"""Settings: one page listing every setting area with a link to where it lives, and the settings
that had no page before: a site's zone, business hours and holidays, the monthly budgets per site
and category, and (admins only) the single sign-on group-to-role mapping. Coordinators see and
change their own sites' settings; admins every site's."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import available_timezones

from flask import Blueprint, Response, abort, current_app, flash, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, SelectField, SelectMultipleField, StringField, TimeField, widgets
from wtforms.validators import Length

from portal import htmx
from portal.blueprints.context import actor, default_site, managed_site_or_404, managed_sites
from portal.blueprints.forms import apply_violation
from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import Role, Site
from portal.models.budgets import SiteHoliday, SsoGroupRole
from portal.permissions import coordinates_site, is_admin, load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import budgets, site_settings, sso

bp = Blueprint("settings", __name__, url_prefix="/settings")


# ---------------------------------------------------------------------------------------------
# The hub


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    return htmx.render(
        "admin/settings/index.html",
        sites=managed_sites(),
        admin=is_admin(current_user),
        sso_mappings=len(sso.stored_group_roles(db())) if is_admin(current_user) else 0,
    )


# ---------------------------------------------------------------------------------------------
# A site's zone, hours and holidays


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class HoursForm(FlaskForm):
    time_zone = StringField(
        "Time zone",
        [Length(max=64, message="Use an IANA name such as Europe/Berlin.")],
        render_kw={"list": "zones", "autocomplete": "off", "spellcheck": "false"},
    )
    opens_at = TimeField("Opens at", format="%H:%M")
    closes_at = TimeField("Closes at", format="%H:%M")
    open_weekdays = CheckboxesField(
        "Open on", choices=list(site_settings.WEEKDAY_NAMES.items()), validate_choice=False
    )


class HolidayForm(FlaskForm):
    day = DateField("Date")
    name = StringField(
        "Name",
        [Length(max=120, message="Use at most 120 characters.")],
        render_kw={"placeholder": "e.g. Christmas Eve", "maxlength": 120},
    )


def _hours_form(site: Site) -> HoursForm:
    form = HoursForm(formdata=None)
    form.time_zone.data = site.time_zone
    form.opens_at.data = site.opens_at
    form.closes_at.data = site.closes_at
    form.open_weekdays.data = list(site.open_weekdays)
    return form


def _render_site(
    site: Site,
    *,
    hours_form: HoursForm | None = None,
    holiday_form: HolidayForm | None = None,
    fragment: str | None = None,
    status: int = 200,
) -> Response:
    return htmx.render(
        "admin/settings/site.html",
        fragment,
        status=status,
        site=site,
        sites=managed_sites(),
        hours_form=hours_form or _hours_form(site),
        holiday_form=holiday_form or HolidayForm(formdata=None),
        holidays=site_settings.holidays(db(), site),
        zones=sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/")),
        today=utcnow().date(),
    )


@bp.get("/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def site(site_id: int) -> Response:
    return _render_site(managed_site_or_404(site_id))


@bp.post("/sites/<int:site_id>/hours")
@role_required(Role.COORDINATOR)
def save_hours(site_id: int) -> Response:
    the_site = managed_site_or_404(site_id)
    form = HoursForm()
    fragment = "admin/settings/_hours_form.html"
    form.validate()  # parses the times; CSRFProtect already checked the token
    try:
        # A time that did not parse arrives as None, and the service names it beside its field.
        site_settings.update_hours(
            db(),
            actor(),
            the_site,
            time_zone=form.time_zone.data or "",
            opens_at=None if form.opens_at.errors else form.opens_at.data,
            closes_at=None if form.closes_at.errors else form.closes_at.data,
            open_weekdays=[str(d) for d in form.open_weekdays.data or []],
        )
    except RuleViolation as violation:
        db().rollback()
        for field in form:
            field.errors = []
        apply_violation(form, violation)
        return _render_site(the_site, hours_form=form, fragment=fragment, status=422)
    commit()
    flash(f"Hours and time zone of {the_site.name} saved.", "success")
    return htmx.redirect_to(url_for("admin.settings.site", site_id=the_site.id))


@bp.post("/sites/<int:site_id>/holidays")
@role_required(Role.COORDINATOR)
def add_holiday(site_id: int) -> Response:
    the_site = managed_site_or_404(site_id)
    form = HolidayForm()
    fragment = "admin/settings/_holidays.html"
    form.validate()  # parses the date; a date that did not parse arrives as None
    try:
        holiday = site_settings.add_holiday(
            db(),
            actor(),
            the_site,
            day=None if form.day.errors else form.day.data,
            name=form.name.data or "",
        )
    except RuleViolation as violation:
        db().rollback()
        for field in form:
            field.errors = []
        apply_violation(form, violation)
        return _render_site(the_site, holiday_form=form, fragment=fragment, status=422)
    commit()
    flash(f"{holiday.name} ({holiday.day:%-d %b %Y}) is a holiday at {the_site.name}.", "success")
    return htmx.redirect_to(url_for("admin.settings.site", site_id=the_site.id))


@bp.post("/holidays/<int:holiday_id>/remove")
@role_required(Role.COORDINATOR)
def remove_holiday(holiday_id: int) -> Response:
    holiday = load_or_404(
        db(), SiteHoliday, holiday_id, lambda user, h: coordinates_site(user, h.site_id)
    )
    site_id, name = holiday.site_id, holiday.name
    site_settings.remove_holiday(db(), actor(), holiday)
    commit()
    flash(f"{name} is no longer a holiday.", "success")
    return htmx.redirect_to(url_for("admin.settings.site", site_id=site_id))


# ---------------------------------------------------------------------------------------------
# Budgets

MONTHS_SHOWN = 6


def _first_month(raw: str | None) -> date:
    """The grid's first month from ?from=YYYY-MM; by default three months back, so the grid
    shows recent spend beside the coming months' budgets."""
    try:
        parsed = datetime.strptime(raw or "", "%Y-%m").date()
        if 2000 <= parsed.year <= 2100:
            return parsed
    except ValueError:
        pass
    return budgets.add_months(budgets.first_of_month(utcnow().date()), -3)


@bp.get("/budgets/")
@role_required(Role.COORDINATOR)
def budgets_index() -> Response:
    the_site = default_site(managed_sites())
    if the_site is None:
        abort(404)
    return htmx.redirect_to(url_for("admin.settings.budgets_site", site_id=the_site.id))


def _render_budgets(
    site: Site,
    first: date,
    *,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    months = budgets.months_from(first, MONTHS_SHOWN)
    stored = budgets.budgets_for(db(), site, months)
    spend = {
        (row.category, row.month): row for row in budgets.spend_vs_budget(db(), [site.id], months)
    }
    values = {
        budgets.cell_key(category, month): f"{cents / 100:.2f}"
        for (category, month), cents in stored.items()
    }
    values.update(typed or {})
    return htmx.render(
        "admin/settings/budgets.html",
        "admin/settings/_budget_grid.html",
        status=status,
        site=site,
        sites=managed_sites(),
        months=months,
        first=first,
        previous=budgets.add_months(first, -MONTHS_SHOWN),
        following=budgets.add_months(first, MONTHS_SHOWN),
        categories=[(c, budgets.category_label(c)) for c in budgets.CATEGORIES],
        cell_key=budgets.cell_key,
        values=values,
        spend=spend,
        errors=errors or {},
        currency=current_app.extensions["foyer.settings"].currency_symbol,
    )


@bp.get("/budgets/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def budgets_site(site_id: int) -> Response:
    return _render_budgets(managed_site_or_404(site_id), _first_month(request.args.get("from")))


@bp.post("/budgets/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def save_budgets(site_id: int) -> Response:
    the_site = managed_site_or_404(site_id)
    first = _first_month(request.form.get("from"))
    months = budgets.months_from(first, MONTHS_SHOWN)
    typed: dict[str, str] = {}
    cells: dict[tuple[str, date], str] = {}
    for category in budgets.CATEGORIES:
        for month in months:
            key = budgets.cell_key(category, month)
            if key in request.form:
                typed[key] = request.form[key][:40]
                cells[(category, month)] = typed[key]
    try:
        changed = budgets.save_grid(db(), actor(), the_site, months, cells)
    except RuleViolation as violation:
        db().rollback()
        return _render_budgets(the_site, first, typed=typed, errors=violation.errors, status=422)
    commit()
    flash(
        f"{changed} budget{'' if changed == 1 else 's'} of {the_site.name} saved."
        if changed
        else "Nothing changed.",
        "success" if changed else "info",
    )
    return htmx.redirect_to(
        url_for("admin.settings.budgets_site", site_id=the_site.id, **{"from": f"{first:%Y-%m}"})
    )


# ---------------------------------------------------------------------------------------------
# Single sign-on: group-to-role mapping (admins)


class GroupRoleForm(FlaskForm):
    group = StringField(
        "Group at the identity provider",
        [Length(max=200, message="Use at most 200 characters.")],
        render_kw={"placeholder": "e.g. facilities-berlin", "spellcheck": "false"},
    )
    role = SelectField(
        "Role",
        choices=[("coordinator", "Coordinator of a site"), ("admin", "Administrator")],
        validate_choice=False,
    )
    site = SelectField("Site (for coordinators)", choices=[], validate_choice=False)


def _group_role_form(formdata: bool = True) -> GroupRoleForm:
    form = GroupRoleForm() if formdata else GroupRoleForm(formdata=None)
    sites = db().scalars(select(Site).order_by(Site.name))
    form.site.choices = [("", "—")] + [(str(s.id), s.name) for s in sites]
    return form


def _environment_mappings() -> tuple[list[sso.GroupRole], str]:
    spec = current_app.extensions["foyer.settings"].oidc_group_roles
    try:
        return sso.parse_group_roles(spec), ""
    except ValueError as exc:
        return [], str(exc)


def _render_sso(form: GroupRoleForm | None = None, status: int = 200) -> Response:
    defaults, problem = _environment_mappings()
    stored = sso.stored_group_roles(db())
    return htmx.render(
        "admin/settings/sso.html",
        "admin/settings/_sso_form.html",
        status=status,
        form=form or _group_role_form(formdata=False),
        stored=stored,
        defaults=defaults,
        defaults_problem=problem,
        sites_by_slug={s.slug: s for s in db().scalars(select(Site))},
        sso_enabled=current_app.extensions["foyer.settings"].oidc_enabled,
    )


@bp.get("/sso")
@role_required(Role.ADMIN)
def sso_mappings() -> Response:
    return _render_sso()


@bp.post("/sso")
@role_required(Role.ADMIN)
def add_sso_mapping() -> Response:
    form = _group_role_form()
    form.validate()
    try:
        site_id = int(form.site.data) if form.site.data else None
    except ValueError:
        site_id = -1  # not a site: the service says so
    if site_id is not None and not 0 < site_id < 2**31:
        site_id = -1  # beyond any id the database can hold: looking it up would fail
    try:
        if form.errors:
            raise RuleViolation({}, "shape")
        mapping = sso.add_group_role(
            db(), actor(), group=form.group.data or "", role=form.role.data or "", site_id=site_id
        )
    except RuleViolation as violation:
        db().rollback()
        apply_violation(form, violation)
        return _render_sso(form, status=422)
    commit()
    flash(f"Members of “{mapping.group_name}” now get that role at sign-in.", "success")
    return htmx.redirect_to(url_for("admin.settings.sso_mappings"))


@bp.post("/sso/<int:mapping_id>/remove")
@role_required(Role.ADMIN)
def remove_sso_mapping(mapping_id: int) -> Response:
    mapping = load_or_404(db(), SsoGroupRole, mapping_id)
    group = mapping.group_name
    sso.remove_group_role(db(), actor(), mapping)
    commit()
    flash(
        f"“{group}” no longer grants that role; members lose it at their next sign-in.", "success"
    )
    return htmx.redirect_to(url_for("admin.settings.sso_mappings"))


@bp.post("/sso/copy-defaults")
@role_required(Role.ADMIN)
def copy_sso_defaults() -> Response:
    defaults, problem = _environment_mappings()
    sites = {s.slug: s for s in db().scalars(select(Site))}
    copied, skipped = 0, []
    for mapping in defaults:
        site = sites.get(mapping.site_slug) if mapping.site_slug else None
        if mapping.site_slug and site is None:
            skipped.append(f"{mapping.group} (no site “{mapping.site_slug}”)")
            continue
        try:
            with db().begin_nested():
                sso.add_group_role(
                    db(),
                    actor(),
                    group=mapping.group,
                    role=mapping.role.value,
                    site_id=site.id if site else None,
                )
            copied += 1
        except RuleViolation:
            skipped.append(f"{mapping.group} (already here)")
    commit()
    message = f"{copied} mapping{'' if copied == 1 else 's'} copied from FOYER_OIDC_GROUP_ROLES."
    if skipped:
        message += " Skipped: " + "; ".join(skipped) + "."
    flash(message, "success" if copied else "info")
    return htmx.redirect_to(url_for("admin.settings.sso_mappings"))
