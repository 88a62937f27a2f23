"""Administration of the service desk: vendors and SLA policies. Coordinators may look; admins
change them (every change is audited)."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField, widgets
from wtforms.validators import Length

from portal import htmx
from portal.blueprints.context import actor
from portal.blueprints.forms import apply_violation
from portal.errors import RuleViolation
from portal.models import Role, SlaPolicy, Vendor
from portal.permissions import load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import sla_policies, tickets
from portal.services import vendors as vendor_service

bp = Blueprint("service_desk", __name__, url_prefix="/service-desk")


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class VendorForm(FlaskForm):
    name = StringField("Name", [Length(max=120, message="Keep the name under 120 characters.")])
    contact_name = StringField(
        "Contact person", [Length(max=120, message="Keep it under 120 characters.")]
    )
    email = StringField(
        "E-mail",
        [Length(max=254, message="Keep it under 254 characters.")],
        render_kw={"type": "email"},
    )
    phone = StringField("Phone", [Length(max=40, message="Keep it under 40 characters.")])
    categories = CheckboxesField("Categories served", choices=[], validate_choice=False)


class PolicyForm(FlaskForm):
    kind = SelectField("For", choices=list(sla_policies.KIND_CHOICES.items()))
    category = SelectField("Category", choices=[], validate_choice=False)
    priority = SelectField(
        "Priority",
        choices=[("", "Any priority"), *tickets.PRIORITY_LABELS.items()],
        validate_choice=False,
    )
    first_response_hours = StringField(
        "First response within (business hours)", render_kw={"inputmode": "decimal"}
    )
    resolution_hours = StringField(
        "Resolved within (business hours)", render_kw={"inputmode": "decimal"}
    )


def _vendor_form(vendor: Vendor | None = None, formdata: object = "from_request") -> VendorForm:
    form = VendorForm() if formdata == "from_request" else VendorForm(formdata=None, obj=vendor)
    form.categories.choices = list(vendor_service.CATEGORY_CHOICES.items())
    if formdata != "from_request" and vendor is not None:
        form.categories.data = list(vendor.categories or [])
    return form


def _policy_form(policy: SlaPolicy | None = None, from_request: bool = True) -> PolicyForm:
    form = PolicyForm() if from_request else PolicyForm(formdata=None)
    groups = [("", "Any category")]
    for kind, categories in sla_policies.CATEGORIES_BY_KIND.items():
        label = sla_policies.KIND_CHOICES[kind]
        groups += [(value, f"{name} ({label.lower()})") for value, name in categories.items()]
    seen: set[str] = set()
    form.category.choices = [c for c in groups if not (c[0] in seen or seen.add(c[0]))]
    if not from_request and policy is not None:
        form.kind.data = policy.kind
        form.category.data = policy.category
        form.priority.data = policy.priority
        form.first_response_hours.data = sla_policies.hours(policy.first_response_minutes)
        form.resolution_hours.data = sla_policies.hours(policy.resolution_minutes)
    return form


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    return redirect(url_for("admin.service_desk.vendors"))


# ---------------------------------------------------------------------------------------------
# Vendors


@bp.get("/vendors")
@role_required(Role.COORDINATOR)
def vendors() -> Response:
    return htmx.render(
        "admin/service_desk/vendors.html",
        vendors=vendor_service.list_vendors(db()),
        labels=vendor_service.CATEGORY_CHOICES,
        can_edit=current_user.is_admin,
    )


def _render_vendor(
    form: VendorForm, vendor: Vendor | None, status: int = 200, problem: str = ""
) -> Response:
    return htmx.render(
        "admin/service_desk/vendor_form.html",
        "admin/service_desk/_vendor_form.html",
        status=status,
        form=form,
        vendor=vendor,
        problem=problem,
        issue_categories=vendor_service.ISSUE_CATEGORIES,
        item_categories=vendor_service.ITEM_CATEGORIES,
    )


def _details(form: VendorForm) -> vendor_service.VendorDetails:
    return vendor_service.VendorDetails(
        name=form.name.data or "",
        contact_name=form.contact_name.data or "",
        email=form.email.data or "",
        phone=form.phone.data or "",
        categories=tuple(form.categories.data or ()),
    )


@bp.get("/vendors/new")
@role_required(Role.ADMIN)
def new_vendor() -> Response:
    return _render_vendor(_vendor_form(None, formdata=None), None)


@bp.post("/vendors/new")
@role_required(Role.ADMIN)
def create_vendor() -> Response:
    form = _vendor_form()
    if not form.validate():
        return _render_vendor(form, None, 422)
    try:
        vendor = vendor_service.create_vendor(db(), actor(), _details(form))
    except RuleViolation as violation:
        db().rollback()
        return _render_vendor(form, None, 422, apply_violation(form, violation))
    commit()
    flash(f"Added the vendor {vendor.name}.", "success")
    return htmx.redirect_to(url_for("admin.service_desk.vendors"))


@bp.get("/vendors/<int:vendor_id>")
@role_required(Role.ADMIN)
def edit_vendor(vendor_id: int) -> Response:
    vendor = load_or_404(db(), Vendor, vendor_id)
    return _render_vendor(_vendor_form(vendor, formdata=None), vendor)


@bp.post("/vendors/<int:vendor_id>")
@role_required(Role.ADMIN)
def update_vendor(vendor_id: int) -> Response:
    vendor = load_or_404(db(), Vendor, vendor_id)
    form = _vendor_form()
    if not form.validate():
        return _render_vendor(form, vendor, 422)
    try:
        vendor_service.update_vendor(db(), actor(), vendor, _details(form))
    except RuleViolation as violation:
        db().rollback()
        return _render_vendor(
            form, db().get(Vendor, vendor_id), 422, apply_violation(form, violation)
        )
    commit()
    flash(f"Saved {vendor.name}.", "success")
    return htmx.redirect_to(url_for("admin.service_desk.vendors"))


@bp.post("/vendors/<int:vendor_id>/active")
@role_required(Role.ADMIN)
def toggle_vendor(vendor_id: int) -> Response:
    vendor = load_or_404(db(), Vendor, vendor_id)
    active = request.form.get("active") == "1"
    vendor_service.set_active(db(), actor(), vendor, active)
    commit()
    flash(
        f"{vendor.name} is active again."
        if active
        else f"Deactivated {vendor.name}: no longer offered, history kept.",
        "success",
    )
    return htmx.redirect_to(url_for("admin.service_desk.vendors"))


# ---------------------------------------------------------------------------------------------
# SLA policies


@bp.get("/sla")
@role_required(Role.COORDINATOR)
def policies() -> Response:
    listed = sla_policies.list_policies(db())
    return htmx.render(
        "admin/service_desk/policies.html",
        policies=listed,
        kinds=sla_policies.KIND_CHOICES,
        categories=sla_policies.CATEGORIES_BY_KIND,
        priorities=tickets.PRIORITY_LABELS,
        hours=sla_policies.hours,
        can_edit=current_user.is_admin,
    )


def _render_policy(
    form: PolicyForm, policy: SlaPolicy | None, status: int = 200, problem: str = ""
) -> Response:
    return htmx.render(
        "admin/service_desk/policy_form.html",
        "admin/service_desk/_policy_form.html",
        status=status,
        form=form,
        policy=policy,
        problem=problem,
    )


def _policy_details(form: PolicyForm) -> sla_policies.PolicyDetails:
    return sla_policies.PolicyDetails(
        kind=form.kind.data or "",
        category=form.category.data or "",
        priority=form.priority.data or "",
        first_response_hours=form.first_response_hours.data,
        resolution_hours=form.resolution_hours.data,
    )


@bp.get("/sla/new")
@role_required(Role.ADMIN)
def new_policy() -> Response:
    return _render_policy(_policy_form(None, from_request=False), None)


@bp.post("/sla/new")
@role_required(Role.ADMIN)
def create_policy() -> Response:
    form = _policy_form()
    if not form.validate():
        return _render_policy(form, None, 422)
    try:
        policy = sla_policies.create_policy(db(), actor(), _policy_details(form))
    except RuleViolation as violation:
        db().rollback()
        return _render_policy(form, None, 422, apply_violation(form, violation))
    commit()
    flash(f"Added the policy: {sla_policies.describe(policy)}.", "success")
    return htmx.redirect_to(url_for("admin.service_desk.policies"))


@bp.get("/sla/<int:policy_id>")
@role_required(Role.ADMIN)
def edit_policy(policy_id: int) -> Response:
    policy = load_or_404(db(), SlaPolicy, policy_id)
    return _render_policy(_policy_form(policy, from_request=False), policy)


@bp.post("/sla/<int:policy_id>")
@role_required(Role.ADMIN)
def update_policy(policy_id: int) -> Response:
    policy = load_or_404(db(), SlaPolicy, policy_id)
    form = _policy_form()
    if not form.validate():
        return _render_policy(form, policy, 422)
    try:
        sla_policies.update_policy(db(), actor(), policy, _policy_details(form))
    except RuleViolation as violation:
        db().rollback()
        return _render_policy(
            form, db().get(SlaPolicy, policy_id), 422, apply_violation(form, violation)
        )
    commit()
    flash(
        f"Saved the policy: {sla_policies.describe(policy)}. Open tickets keep their deadlines.",
        "success",
    )
    return htmx.redirect_to(url_for("admin.service_desk.policies"))


@bp.post("/sla/<int:policy_id>/delete")
@role_required(Role.ADMIN)
def delete_policy(policy_id: int) -> Response:
    policy = load_or_404(db(), SlaPolicy, policy_id)
    described = sla_policies.describe(policy)
    sla_policies.delete_policy(db(), actor(), policy)
    commit()
    flash(f"Deleted the policy: {described}. Open tickets keep their deadlines.", "success")
    return htmx.redirect_to(url_for("admin.service_desk.policies"))
