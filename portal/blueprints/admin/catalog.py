"""Administration of the service desk's catalog: the list of items with stock per site (and what
runs low), new and edited items with their photo, retiring and bringing back, and counting stock.

Administrators keep the items (one catalog for every office); coordinators see the list and keep
the stock of their own sites. Forms check shape; portal.services.catalog checks the rules."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from portal import htmx
from portal.blueprints.context import actor
from portal.blueprints.forms import WholeNumberField
from portal.blueprints.requests import catalog_uploads
from portal.errors import NotFound, RuleViolation
from portal.models import CatalogItem, Role, Site, Vendor
from portal.permissions import is_admin, is_coordinator_anywhere, load_or_404, role_required
from portal.request_scope import after_commit, commit, db
from portal.services import catalog, image_uploads
from portal.web_errors import error_response

bp = Blueprint("catalog", __name__, url_prefix="/catalog")


class ItemForm(FlaskForm):
    name = StringField("Name", [Length(max=catalog.NAME_MAX, message="Keep it shorter.")])
    category = SelectField("Category", choices=list(catalog.CATEGORY_LABELS.items()))
    description = TextAreaField(
        "Description",
        [Length(max=catalog.DESCRIPTION_MAX, message="Keep it shorter.")],
        render_kw={"rows": 3, "maxlength": catalog.DESCRIPTION_MAX},
    )
    unit = StringField("Unit", default="piece", render_kw={"maxlength": catalog.UNIT_MAX})
    price = StringField(
        "Price per unit", render_kw={"inputmode": "decimal", "placeholder": "12.50"}
    )
    lead_time_days = WholeNumberField("Lead time when ordered (days)", [Optional()], default=0)
    approval = SelectField("Approval", choices=list(catalog.APPROVAL_LABELS.items()))
    approval_above = StringField(
        "Approval above (per request)", render_kw={"inputmode": "decimal", "placeholder": "100.00"}
    )
    tracked = BooleanField("Tracked asset (has a serial number and an asset tag)")
    max_per_request = WholeNumberField("Most per request", [Optional()], default=20)
    vendor_id = SelectField("Preferred vendor", coerce=int, validate_choice=False)
    photo = FileField("Photo (JPEG, PNG or WebP, at most 5 MB)")


def _item_form(item: CatalogItem | None = None, posted: bool = False) -> ItemForm:
    # Posted: Flask-WTF reads the request's form and files itself.
    form = ItemForm() if posted else ItemForm(formdata=None)
    vendors = db().scalars(select(Vendor).order_by(Vendor.name))
    form.vendor_id.choices = [(0, "None")] + [
        (v.id, v.name + ("" if v.active else " (inactive)"))
        for v in vendors
        if v.active or (item is not None and item.vendor_id == v.id)
    ]
    if not posted and item is not None:
        form.name.data = item.name
        form.category.data = item.category
        form.description.data = item.description
        form.unit.data = item.unit
        form.price.data = catalog.money_text(item.price_cents)
        form.lead_time_days.data = item.lead_time_days
        form.approval.data = item.approval
        form.approval_above.data = (
            catalog.money_text(item.approval_above_cents) if item.approval_above_cents else ""
        )
        form.tracked.data = item.tracked
        form.max_per_request.data = item.max_per_request
        form.vendor_id.data = item.vendor_id or 0
    elif not posted:
        form.price.data = ""
        form.vendor_id.data = 0
    return form


def _details(form: ItemForm) -> catalog.ItemDetails:
    return catalog.ItemDetails(
        name=form.name.data or "",
        category=form.category.data or "",
        description=form.description.data or "",
        unit=form.unit.data or "",
        price=form.price.data or "",
        lead_time_days=form.lead_time_days.data,
        approval=form.approval.data or "",
        approval_above=form.approval_above.data or "",
        tracked=bool(form.tracked.data),
        max_per_request=form.max_per_request.data,
        vendor_id=form.vendor_id.data or None,
    )


def _apply(form: FlaskForm, violation: RuleViolation) -> None:
    for key, message in violation.errors.items():
        target = getattr(form, key, None) if key else None
        if target is not None and hasattr(target, "errors"):
            target.errors = [*list(target.errors or []), message]
        else:
            form.form_errors.append(message)


def _sites_kept() -> list[Site]:
    """The sites whose stock the current person keeps."""
    query = select(Site).order_by(Site.name)
    if not is_admin(current_user):
        query = query.where(Site.id.in_(current_user.coordinated_site_ids() or {-1}))
    return list(db().scalars(query))


# ---------------------------------------------------------------------------------------------
# The list


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    sites = _sites_kept()
    query = (request.args.get("q") or "").strip()[: catalog.SEARCH_MAX]
    show = request.args.get("show") or "active"
    if show not in ("active", "low", "retired", "all"):
        show = "active"
    rows = catalog.stock_overview(db(), [s.id for s in sites], query=query, show=show)
    return htmx.render(
        "admin/catalog/index.html",
        "admin/catalog/_rows.html",
        rows=rows,
        sites=sites,
        query=query,
        show=show,
        categories=catalog.CATEGORY_LABELS,
        can_edit_items=is_admin(current_user),
    )


# ---------------------------------------------------------------------------------------------
# Items (administrators)


def _render_item(form: ItemForm, item: CatalogItem | None = None, status: int = 200) -> Response:
    return htmx.render(
        "admin/catalog/item.html",
        "admin/catalog/_item_form.html",
        status=status,
        form=form,
        item=item,
        max_photo_mb=catalog.MAX_PHOTO_BYTES // image_uploads.MEGABYTE,
    )


def _read_upload(storage: Any) -> bytes:
    # One byte over the limit is enough to say "too large" without reading everything.
    return storage.stream.read(catalog.MAX_PHOTO_BYTES + 1) if storage else b""


def _save_photo(form: ItemForm, item: CatalogItem) -> None:
    if form.photo.data:
        previous = catalog.set_photo(
            db(), actor(), item, _read_upload(form.photo.data), catalog_uploads()
        )
        if previous:
            directory = catalog_uploads() / catalog.PHOTOS_FOLDER
            after_commit(lambda: image_uploads.remove(directory, previous))


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def new_item() -> Response:
    if request.method == "GET":
        return _render_item(_item_form())
    form = _item_form(posted=True)
    if not form.validate():
        return _render_item(form, status=422)
    try:
        with db().begin_nested():
            item = catalog.create_item(db(), actor(), _details(form))
            _save_photo(form, item)
    except RuleViolation as violation:
        _apply(form, violation)
        return _render_item(form, status=422)
    commit()
    flash(f"{item.name} is in the catalog.", "success")
    return htmx.redirect_to(url_for(".index"))


@bp.route("/<int:item_id>/edit", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_item(item_id: int) -> Response:
    item = load_or_404(db(), CatalogItem, item_id)
    if request.method == "GET":
        return _render_item(_item_form(item), item)
    form = _item_form(item, posted=True)
    if not form.validate():
        return _render_item(form, item, 422)
    try:
        with db().begin_nested():
            catalog.update_item(db(), actor(), item, _details(form))
            _save_photo(form, item)
    except RuleViolation as violation:
        _apply(form, violation)
        db().refresh(item)
        return _render_item(form, item, 422)
    commit()
    flash(f"{item.name} saved.", "success")
    return htmx.redirect_to(url_for(".index"))


@bp.post("/<int:item_id>/retire")
@role_required(Role.ADMIN)
def retire(item_id: int) -> Response:
    item = load_or_404(db(), CatalogItem, item_id)
    catalog.set_active(db(), actor(), item, False)
    commit()
    flash(f"{item.name} is retired: nobody can ask for it; past requests keep it.", "success")
    return htmx.redirect_to(url_for(".edit_item", item_id=item.id))


@bp.post("/<int:item_id>/reactivate")
@role_required(Role.ADMIN)
def reactivate(item_id: int) -> Response:
    item = load_or_404(db(), CatalogItem, item_id)
    catalog.set_active(db(), actor(), item, True)
    commit()
    flash(f"{item.name} is back in the catalog.", "success")
    return htmx.redirect_to(url_for(".edit_item", item_id=item.id))


@bp.post("/<int:item_id>/photo/remove")
@role_required(Role.ADMIN)
def remove_photo(item_id: int) -> Response:
    item = load_or_404(db(), CatalogItem, item_id)
    previous = catalog.remove_photo(db(), actor(), item)
    commit()
    if previous:
        image_uploads.remove(catalog_uploads() / catalog.PHOTOS_FOLDER, previous)
    flash("Photo removed.", "success")
    return htmx.redirect_to(url_for(".edit_item", item_id=item.id))


# ---------------------------------------------------------------------------------------------
# Stock per site (coordinators for their sites, administrators everywhere)


def _stock_page(item: CatalogItem, status: int = 200, **extra: Any) -> Response:
    sites = _sites_kept()
    row = next(
        iter(catalog.stock_overview(db(), [s.id for s in sites], show="all", only_id=item.id)),
        None,
    )
    return htmx.render(
        "admin/catalog/stock.html",
        status=status,
        item=item,
        sites=sites,
        levels=row.levels if row else {},
        errors=extra.pop("errors", {}),
        values=extra.pop("values", {}),
        **extra,
    )


@bp.get("/<int:item_id>/stock")
@role_required(Role.COORDINATOR)
def stock(item_id: int) -> Response:
    item = load_or_404(db(), CatalogItem, item_id)
    return _stock_page(item)


@bp.post("/<int:item_id>/stock/<int:site_id>")
@role_required(Role.COORDINATOR)
def set_stock(item_id: int, site_id: int) -> Response:
    item = load_or_404(db(), CatalogItem, item_id)
    site = load_or_404(db(), Site, site_id, lambda user, s: catalog.may_keep_stock(user, s.id))
    values = {
        "on_hand": request.form.get("on_hand", ""),
        "reorder_point": request.form.get("reorder_point", ""),
    }
    try:
        with db().begin_nested():
            catalog.set_stock(db(), actor(), current_user, item, site, **values)
    except NotFound:
        abort(404)
    except RuleViolation as violation:
        return _stock_page(item, 422, errors={site.id: violation.errors}, values={site.id: values})
    commit()
    flash(f"Stock of {item.name} at {site.name} saved.", "success")
    if htmx.is_htmx():
        return _stock_page(item)
    return htmx.redirect_to(url_for(".stock", item_id=item.id))


# ---------------------------------------------------------------------------------------------
# A photo over the app's request size limit is refused before the view runs: answer it like
# any other invalid input (422, message beside the field), not with a bare error page.


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(_error: RequestEntityTooLarge) -> Response:
    limit_mb = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // image_uploads.MEGABYTE
    sent_mb = (request.content_length or 0) / image_uploads.MEGABYTE
    message = f"The file is {sent_mb:.0f} MB; the most we accept is {limit_mb} MB."
    if not current_user.is_authenticated or not is_coordinator_anywhere(current_user):
        return error_response(413, message)
    if not is_admin(current_user):
        return error_response(413, message)
    item_id = (request.view_args or {}).get("item_id")
    item = db().get(CatalogItem, item_id) if isinstance(item_id, int) else None
    form = _item_form(item)
    form.photo.errors = [f"{message} Nothing was saved; choose a smaller photo."]
    return _render_item(form, item, 422)
