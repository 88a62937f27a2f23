"""Admin: a site's floors, rooms and desks, the floor plan with its placement editor, and the
printable QR sheet. Coordinators manage their own sites; administrators every site.

Forms check shape (present, a number, short enough); portal.services.spaces checks the rules and
its RuleViolation messages are put back beside the fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import segno
from flask import Blueprint, Response, current_app, flash, request, send_file, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from markupsafe import Markup
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from wtforms import (
    BooleanField,
    FloatField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from portal import htmx
from portal.blueprints.context import actor
from portal.blueprints.forms import WholeNumberField
from portal.db import db_id
from portal.errors import RuleViolation
from portal.models import Desk, DeskAssignment, Floor, Resource, Role, Room, Site
from portal.permissions import (
    coordinates_site,
    is_admin,
    is_coordinator_anywhere,
    load_or_404,
    role_required,
)
from portal.request_scope import after_commit, commit, db
from portal.services import image_uploads, spaces
from portal.web_errors import error_response

bp = Blueprint("spaces", __name__, url_prefix="/spaces")


# ---------------------------------------------------------------------------------------------
# Forms


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class PercentField(FloatField):
    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or valuelist[0] in ("", None):
            self.data = None
            return
        try:
            self.data = float(str(valuelist[0]).strip().rstrip("%").replace(",", "."))
        except ValueError as exc:
            self.data = None
            raise ValueError("Enter a number from 0 to 100.") from exc


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form: Any) -> None:
        if self.validate_choice and self.data:
            offered = {str(choice.value) for choice in self.iter_choices()}
            if any(str(value) not in offered for value in self.data):
                raise ValidationError("Choose from the list.")


NAME = [DataRequired("Give it a name."), Length(max=120, message="Keep it under 120 characters.")]


class RoomForm(FlaskForm):
    name = StringField("Name", NAME, filters=[_strip])
    capacity = WholeNumberField("Seats", [Optional()])
    equipment = CheckboxesField("Equipment", choices=list(spaces.ROOM_EQUIPMENT.items()))
    allowed_departments = CheckboxesField("Who may book it", validate_choice=False)
    needs_approval = BooleanField("Bookings need a coordinator's approval")
    buffer_minutes = WholeNumberField("Buffer between bookings (minutes)", [Optional()], default=0)
    photo = FileField("Photo (JPEG, PNG or WebP, optional)")


class DeskForm(FlaskForm):
    name = StringField("Name or number", NAME, filters=[_strip])
    zone = StringField(
        "Zone or neighbourhood", [Length(max=80, message="Keep it under 80 characters.")]
    )
    attributes = CheckboxesField("Attributes", choices=list(spaces.DESK_ATTRIBUTES.items()))
    assignment = SelectField(
        "Kind", choices=list(spaces.DESK_KINDS.items()), default=DeskAssignment.HOT.value
    )
    assigned_email = StringField(
        "Assigned to (e-mail)", [Length(max=254, message="That is too long for an e-mail.")]
    )


class DisableForm(FlaskForm):
    reason = StringField(
        "Why is it out of service?",
        [DataRequired("Say why, so people know."), Length(max=200, message="Keep it short.")],
        filters=[_strip],
    )


class PlanForm(FlaskForm):
    plan = FileField("Floor plan image", [FileRequired("Choose a PNG, JPEG or SVG image.")])


class PlacementForm(FlaskForm):
    resource = SelectField("Room or desk", validate_choice=False)
    x = PercentField("Across (%)", [Optional()])
    y = PercentField("Down (%)", [Optional()])


class FloorForm(FlaskForm):
    building = StringField(
        "Building", [DataRequired("Name the building."), Length(max=120)], filters=[_strip]
    )
    level = WholeNumberField("Level", [Optional()])
    name = StringField("Name (optional)", [Length(max=120)], filters=[_strip])


# ---------------------------------------------------------------------------------------------
# Loading with permission: someone else's site answers 404, so its ids cannot be probed.


def _may_manage_site(user: Any, site: Site) -> bool:
    return coordinates_site(user, site.id)


def _may_manage_floor(user: Any, floor: Floor) -> bool:
    return coordinates_site(user, floor.building.site_id)


def _may_manage_resource(user: Any, resource: Resource) -> bool:
    return coordinates_site(user, resource.site_id)


def _floor(floor_id: int) -> Floor:
    return load_or_404(db(), Floor, floor_id, _may_manage_floor)


def _uploads() -> Path:
    return Path(current_app.extensions["foyer.settings"].instance_path) / "uploads"


def _forget_file_after_commit(folder: str, name: str | None) -> None:
    if name:
        directory = _uploads() / folder
        after_commit(lambda: image_uploads.remove(directory, name))


def _apply(form: FlaskForm, violation: RuleViolation) -> None:
    """Put a service's messages beside the form's fields (or at the top, for unknown fields)."""
    for key, message in violation.errors.items():
        target = getattr(form, key, None) if key else None
        if target is not None and hasattr(target, "errors"):
            target.errors = [*list(target.errors or []), message]
        else:
            form.form_errors.append(message)


def _read_upload(storage: Any, limit: int) -> bytes:
    # One byte over the limit is enough to say "too large" without reading everything.
    return storage.stream.read(limit + 1) if storage else b""


# ---------------------------------------------------------------------------------------------
# Sites and floors


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    site_ids = None if is_admin(current_user) else current_user.coordinated_site_ids()
    sites = spaces.coordinated_sites(db(), site_ids)
    return htmx.render(
        "admin/spaces/index.html",
        sites=[(site, spaces.floors_of(db(), site)) for site in sites],
    )


def _render_site(site: Site, form: FloorForm | None = None, status: int = 200) -> Response:
    return htmx.render(
        "admin/spaces/site.html",
        "admin/spaces/_floor_form.html",
        status=status,
        site=site,
        floors=spaces.floors_of(db(), site),
        form=form or FloorForm(),
    )


@bp.get("/sites/<int:site_id>")
@role_required(Role.COORDINATOR)
def site(site_id: int) -> Response:
    return _render_site(load_or_404(db(), Site, site_id, _may_manage_site))


@bp.post("/sites/<int:site_id>/floors")
@role_required(Role.COORDINATOR)
def add_floor(site_id: int) -> Response:
    site = load_or_404(db(), Site, site_id, _may_manage_site)
    form = FloorForm()
    if not form.validate():
        return _render_site(site, form, 422)
    try:
        floor = spaces.add_floor(
            db(), actor(), site, form.building.data or "", form.level.data, form.name.data or ""
        )
    except RuleViolation as violation:
        _apply(form, violation)
        return _render_site(site, form, 422)
    commit()
    flash(f"{floor.name} added to {floor.building.name}.", "success")
    return htmx.redirect_to(url_for(".floor", floor_id=floor.id))


def _render_floor(floor: Floor, plan_form: PlanForm | None = None, status: int = 200) -> Response:
    return htmx.render(
        "admin/spaces/floor.html",
        "admin/spaces/_plan_form.html",
        status=status,
        floor=floor,
        contents=spaces.floor_contents(db(), floor),
        plan_form=plan_form or PlanForm(formdata=None),
        equipment_labels=spaces.ROOM_EQUIPMENT,
        attribute_labels=spaces.DESK_ATTRIBUTES,
        max_plan_mb=spaces.MAX_PLAN_BYTES // image_uploads.MEGABYTE,
    )


@bp.get("/floors/<int:floor_id>")
@role_required(Role.COORDINATOR)
def floor(floor_id: int) -> Response:
    return _render_floor(_floor(floor_id))


# ---------------------------------------------------------------------------------------------
# Rooms


def _room_form(obj: Room | None = None, *, blank: bool = False) -> RoomForm:
    # blank: ignore the request's form data (it may be unreadable, e.g. too large)
    options: dict[str, Any] = {"formdata": None} if blank else {}
    form = RoomForm(obj=obj, **options)
    departments = spaces.known_departments(db())
    current = list(obj.allowed_departments) if obj is not None else []
    form.allowed_departments.choices = [(d, d) for d in sorted({*departments, *current})]
    return form


def _room_details(form: RoomForm) -> spaces.RoomDetails:
    return spaces.RoomDetails(
        name=form.name.data or "",
        capacity=form.capacity.data,
        equipment=list(form.equipment.data or []),
        allowed_departments=list(form.allowed_departments.data or []),
        needs_approval=bool(form.needs_approval.data),
        buffer_minutes=form.buffer_minutes.data,
    )


def _render_room(
    floor: Floor, form: RoomForm, room: Room | None = None, status: int = 200, **extra: Any
) -> Response:
    return _render_space("room", floor, form, room, status, **extra)


def _render_space(
    kind: str, floor: Floor, form: FlaskForm, resource: Resource | None, status: int, **extra: Any
) -> Response:
    """A room's or desk's page (or its form fragment for htmx), with its disable form."""
    return htmx.render(
        f"admin/spaces/{kind}.html",
        extra.pop("fragment", f"admin/spaces/_{kind}_form.html"),
        status=status,
        floor=floor,
        resource=resource,
        form=form,
        disable_form=extra.pop("disable_form", None) or DisableForm(formdata=None),
        upcoming=spaces.upcoming_bookings(db(), resource) if resource is not None else 0,
        **{kind: resource},
        **extra,
    )


def _save_photo(form: RoomForm, room: Room) -> None:
    if form.photo.data:
        data = _read_upload(form.photo.data, spaces.MAX_PHOTO_BYTES)
        previous = spaces.set_room_photo(db(), actor(), room, data, _uploads())
        _forget_file_after_commit(spaces.PHOTOS_FOLDER, previous)


@bp.route("/floors/<int:floor_id>/rooms/new", methods=["GET", "POST"])
@role_required(Role.COORDINATOR)
def new_room(floor_id: int) -> Response:
    floor = _floor(floor_id)
    form = _room_form()
    if request.method == "GET":
        return _render_room(floor, form)
    if not form.validate():
        return _render_room(floor, form, status=422)
    try:
        room = spaces.create_room(db(), actor(), floor, _room_details(form))
        _save_photo(form, room)
    except RuleViolation as violation:
        _apply(form, violation)
        return _render_room(floor, form, status=422)
    commit()
    flash(f"Room {room.name} added.", "success")
    return htmx.redirect_to(url_for(".floor", floor_id=floor.id))


@bp.route("/rooms/<int:room_id>/edit", methods=["GET", "POST"])
@role_required(Role.COORDINATOR)
def edit_room(room_id: int) -> Response:
    room = load_or_404(db(), Room, room_id, _may_manage_resource)
    form = _room_form(room)
    if request.method == "GET":
        return _render_room(room.floor, form, room)
    if not form.validate():
        return _render_room(room.floor, form, room, 422)
    try:
        spaces.update_room(db(), actor(), room, _room_details(form))
        _save_photo(form, room)
    except RuleViolation as violation:
        _apply(form, violation)
        return _render_room(room.floor, form, room, 422)
    commit()
    flash(f"Room {room.name} saved.", "success")
    return htmx.redirect_to(url_for(".floor", floor_id=room.floor_id))


@bp.get("/rooms/<int:room_id>/photo/<name>")
@login_required
def room_photo(room_id: int, name: str) -> Response:
    """Any signed-in person may see room photos (room search shows them)."""
    room = load_or_404(db(), Room, room_id)
    if room.photo_file != name:
        raise NotFound()
    return _send_upload(spaces.PHOTOS_FOLDER, name, "image/jpeg")


# ---------------------------------------------------------------------------------------------
# Desks


def _desk_details(form: DeskForm) -> spaces.DeskDetails:
    return spaces.DeskDetails(
        name=form.name.data or "",
        zone=form.zone.data or "",
        attributes=list(form.attributes.data or []),
        assignment=form.assignment.data or "",
        assigned_email=form.assigned_email.data or "",
    )


def _render_desk(
    floor: Floor, form: DeskForm, desk: Desk | None = None, status: int = 200, **extra: Any
) -> Response:
    return _render_space("desk", floor, form, desk, status, **extra)


@bp.route("/floors/<int:floor_id>/desks/new", methods=["GET", "POST"])
@role_required(Role.COORDINATOR)
def new_desk(floor_id: int) -> Response:
    floor = _floor(floor_id)
    form = DeskForm()
    if request.method == "GET":
        return _render_desk(floor, form)
    if not form.validate():
        return _render_desk(floor, form, status=422)
    try:
        desk = spaces.create_desk(db(), actor(), floor, _desk_details(form))
    except RuleViolation as violation:
        _apply(form, violation)
        return _render_desk(floor, form, status=422)
    commit()
    flash(f"Desk {desk.name} added.", "success")
    return htmx.redirect_to(url_for(".floor", floor_id=floor.id))


@bp.route("/desks/<int:desk_id>/edit", methods=["GET", "POST"])
@role_required(Role.COORDINATOR)
def edit_desk(desk_id: int) -> Response:
    desk = load_or_404(db(), Desk, desk_id, _may_manage_resource)
    form = DeskForm(obj=desk)
    if request.method == "GET":
        form.assigned_email.data = desk.assigned_user.email if desk.assigned_user else ""
        return _render_desk(desk.floor, form, desk)
    if not form.validate():
        return _render_desk(desk.floor, form, desk, 422)
    try:
        spaces.update_desk(db(), actor(), desk, _desk_details(form))
    except RuleViolation as violation:
        _apply(form, violation)
        return _render_desk(desk.floor, form, desk, 422)
    commit()
    flash(f"Desk {desk.name} saved.", "success")
    return htmx.redirect_to(url_for(".floor", floor_id=desk.floor_id))


# ---------------------------------------------------------------------------------------------
# Disabling and enabling (rooms and desks alike)


def _render_resource(resource: Resource, **extra: Any) -> Response:
    if isinstance(resource, Room):
        return _render_room(resource.floor, _room_form(resource, blank=True), resource, **extra)
    assert isinstance(resource, Desk)
    form = DeskForm(formdata=None, obj=resource)
    form.assigned_email.data = resource.assigned_user.email if resource.assigned_user else ""
    return _render_desk(resource.floor, form, resource, **extra)


@bp.post("/resources/<int:resource_id>/disable")
@role_required(Role.COORDINATOR)
def disable(resource_id: int) -> Response:
    resource = load_or_404(db(), Resource, resource_id, _may_manage_resource)
    form = DisableForm()
    try:
        if not form.validate():
            raise RuleViolation({})
        upcoming = spaces.disable_resource(db(), actor(), resource, form.reason.data or "")
    except RuleViolation as violation:
        _apply(form, violation)
        return _render_resource(
            resource, status=422, disable_form=form, fragment="admin/spaces/_availability.html"
        )
    commit()
    note = (
        f" {upcoming} upcoming booking{'s' if upcoming != 1 else ''} still hold it: "
        "tell those people or move them."
        if upcoming
        else ""
    )
    flash(f"{resource.name} is out of service.{note}", "warning" if upcoming else "success")
    return htmx.redirect_to(url_for(".floor", floor_id=resource.floor_id))


@bp.post("/resources/<int:resource_id>/enable")
@role_required(Role.COORDINATOR)
def enable(resource_id: int) -> Response:
    resource = load_or_404(db(), Resource, resource_id, _may_manage_resource)
    spaces.enable_resource(db(), actor(), resource)
    commit()
    flash(f"{resource.name} is back in service.", "success")
    return htmx.redirect_to(url_for(".floor", floor_id=resource.floor_id))


# ---------------------------------------------------------------------------------------------
# The floor plan


@bp.post("/floors/<int:floor_id>/plan")
@role_required(Role.COORDINATOR)
def upload_plan(floor_id: int) -> Response:
    floor = _floor(floor_id)
    form = PlanForm()
    if not form.validate():
        return _render_floor(floor, form, 422)
    data = _read_upload(form.plan.data, spaces.MAX_PLAN_BYTES)
    try:
        previous = spaces.store_floor_plan(db(), actor(), floor, data, _uploads())
    except RuleViolation as violation:
        _apply(form, violation)
        return _render_floor(floor, form, 422)
    _forget_file_after_commit(spaces.PLANS_FOLDER, previous)
    commit()
    flash("The floor plan is saved. Now place the rooms and desks on it.", "success")
    return htmx.redirect_to(url_for(".placement", floor_id=floor.id))


@bp.get("/floors/<int:floor_id>/plan/<name>")
@login_required
def plan_image(floor_id: int, name: str) -> Response:
    """Any signed-in person may see a floor plan (desk booking shows it). The name is part of the
    address, so a new plan gets a new address and the old one can be cached for long."""
    floor = load_or_404(db(), Floor, floor_id)
    if floor.plan_file != name:
        raise NotFound()
    return _send_upload(spaces.PLANS_FOLDER, name, floor.plan_content_type or "")


def _send_upload(folder: str, name: str, content_type: str) -> Response:
    path = image_uploads.stored_path(_uploads() / folder, name)
    if path is None or content_type not in (
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/svg+xml",
    ):
        raise NotFound()
    response = send_file(path, mimetype=content_type, max_age=86400, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Opened on its own, an SVG is a document: no scripts, no requests, no same-origin rights.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    )
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


# ---------------------------------------------------------------------------------------------
# Placement editor


def _placement_form(
    contents: spaces.FloorContents, chosen: Resource | None = None
) -> PlacementForm:
    form = PlacementForm()
    form.resource.choices = [
        (str(r.id), f"{'Room' if isinstance(r, Room) else 'Desk'} {r.name}"
         + ("" if r.plan_x is not None else " (not placed yet)"))
        for r in contents.resources
    ]  # fmt: skip
    if request.method == "GET" or chosen is not None:
        # Offer the next thing that is not on the plan yet.
        pending = [r for r in contents.resources if r.plan_x is None]
        pick = chosen or (pending or contents.resources or [None])[0]
        if request.method == "GET" and request.args.get("resource", "").isdecimal():
            pick = next(
                (r for r in contents.resources if r.id == int(request.args["resource"])), pick
            )
        form.resource.data = str(pick.id) if pick else ""
        form.x.data = round(pick.plan_x * 100, 1) if pick and pick.plan_x is not None else None
        form.y.data = round(pick.plan_y * 100, 1) if pick and pick.plan_y is not None else None
    return form


def _render_placement(
    floor: Floor, form: PlacementForm | None = None, status: int = 200, **extra: Any
) -> Response:
    contents = spaces.floor_contents(db(), floor)
    return htmx.render(
        "admin/spaces/placement.html",
        "admin/spaces/_plan_editor.html",
        status=status,
        floor=floor,
        contents=contents,
        form=form or _placement_form(contents),
        **extra,
    )


@bp.get("/floors/<int:floor_id>/placement")
@role_required(Role.COORDINATOR)
def placement(floor_id: int) -> Response:
    return _render_placement(_floor(floor_id))


@bp.post("/floors/<int:floor_id>/placement")
@role_required(Role.COORDINATOR)
def place(floor_id: int) -> Response:
    floor = _floor(floor_id)
    form = _placement_form(spaces.floor_contents(db(), floor))
    form.validate()  # shape errors (not a number) are already on the fields
    raw_id = form.resource.data or ""
    try:
        if form.errors:
            raise RuleViolation({})
        resource = spaces.place_on_plan(
            db(),
            actor(),
            floor,
            db_id(raw_id),
            form.x.data,
            form.y.data,
        )
    except RuleViolation as violation:
        _apply(form, violation)
        return _render_placement(floor, form, 422)
    commit()
    message = f"{resource.name} is placed at {form.x.data:g} % across, {form.y.data:g} % down."
    if htmx.wants_fragment():
        contents = spaces.floor_contents(db(), floor)
        response = htmx.render(
            "admin/spaces/placement.html",
            "admin/spaces/_plan_editor.html",
            floor=floor,
            contents=contents,
            form=_placement_form(contents, chosen=_next_unplaced(contents, resource)),
            placed_message=message,
        )
        return htmx.trigger(response, "spaces:placed", {"resource": resource.id})
    flash(message, "success")
    return htmx.redirect_to(url_for(".placement", floor_id=floor.id))


def _next_unplaced(contents: spaces.FloorContents, just_placed: Resource) -> Resource:
    pending = [r for r in contents.resources if r.plan_x is None]
    return pending[0] if pending else just_placed


@bp.post("/resources/<int:resource_id>/unplace")
@role_required(Role.COORDINATOR)
def unplace(resource_id: int) -> Response:
    resource = load_or_404(db(), Resource, resource_id, _may_manage_resource)
    spaces.remove_from_plan(db(), actor(), resource)
    commit()
    flash(f"{resource.name} is no longer on the plan.", "success")
    return htmx.redirect_to(url_for(".placement", floor_id=resource.floor_id))


# ---------------------------------------------------------------------------------------------
# Printable QR codes


def check_in_url(qr_code: str) -> str:
    """The short address a printed code opens; /q/<code> checks in after sign-in."""
    base = current_app.extensions["foyer.settings"].base_url.rstrip("/")
    return f"{base}/q/{qr_code}"


def _qr_svg(url: str) -> Markup:
    # segno writes only attributes (no style=), so the code renders under our strict CSP.
    svg = segno.make(url, error="m").svg_inline(
        scale=1, border=4, omitsize=True, svgclass="qr-code"
    )
    return Markup(svg)  # noqa: S704 - segno's own markup for our own URL (token is URL-safe)  # nosec B704


@bp.get("/floors/<int:floor_id>/qr-codes")
@role_required(Role.COORDINATOR)
def qr_sheet(floor_id: int) -> Response:
    floor = _floor(floor_id)
    base_url = current_app.extensions["foyer.settings"].base_url
    contents = spaces.floor_contents(db(), floor)
    active = [r for r in contents.resources if r.active]
    codes = [(r, check_in_url(r.qr_code), _qr_svg(check_in_url(r.qr_code))) for r in active]
    return htmx.render(
        "admin/spaces/qr_sheet.html",
        floor=floor,
        codes=codes,
        disabled_count=len(contents.resources) - len(active),
        base_url=base_url,
        loopback=urlsplit(base_url).hostname in ("127.0.0.1", "localhost", "::1"),
    )


# ---------------------------------------------------------------------------------------------
# A too-large upload is refused before the view runs (the app caps request size); answer it
# like any other invalid input, 422 with the message beside the file field, instead of with a bare
# error page. (htmx swaps 422 as a validation answer; 413 would be logged as a failure.)


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(_error: RequestEntityTooLarge) -> Response:
    """Runs before any view (and before the CSRF check), so it must not read the form, and it
    checks permission itself; it only renders, nothing is saved."""
    limit_mb = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // image_uploads.MEGABYTE
    sent_mb = (request.content_length or 0) / image_uploads.MEGABYTE
    message = f"The file is {sent_mb:.0f} MB; the most we accept is {limit_mb} MB."
    if not current_user.is_authenticated or not is_coordinator_anywhere(current_user):
        return error_response(413, message)
    args = request.view_args or {}
    view = current_app.view_functions.get(request.endpoint or "")
    if view is upload_plan:
        floor = _owned(Floor, args.get("floor_id"), _may_manage_floor)
        if floor is None:
            return error_response(404)
        form = PlanForm(formdata=None)
        plan_mb = spaces.MAX_PLAN_BYTES // image_uploads.MEGABYTE
        form.plan.errors = [
            f"The file is {sent_mb:.0f} MB; a plan may be at most {plan_mb} MB. Nothing was saved."
        ]
        return _render_floor(floor, form, 422)
    if view in (new_room, edit_room):
        room = _owned(Room, args.get("room_id"), _may_manage_resource)
        floor = room.floor if room else _owned(Floor, args.get("floor_id"), _may_manage_floor)
        if floor is None:
            return error_response(404)
        form = _room_form(room, blank=True)
        form.photo.errors = [f"{message} Nothing was saved; choose a smaller photo."]
        return _render_room(floor, form, room, 422)
    return error_response(413, message)


def _owned(model: type[Any], object_id: Any, allowed: Any) -> Any:
    """Like load_or_404, for error handlers, where aborting would turn into a 500."""
    obj = db().get(model, object_id) if isinstance(object_id, int) else None
    return obj if obj is not None and allowed(current_user, obj) else None
