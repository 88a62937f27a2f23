"""Facility issues: report a problem (from a phone, or from the QR code on a room or desk), say
"me too" on one already reported at the same place, and follow one's issues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    request,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import (
    HiddenField,
    MultipleFileField,
    RadioField,
    StringField,
    TextAreaField,
)

from portal import htmx
from portal.blueprints.booking_views import new_idempotency_key
from portal.blueprints.context import actor
from portal.blueprints.tickets import ticket_context
from portal.db import utcnow
from portal.errors import NotFound, RuleViolation
from portal.models import Priority, Ticket, TicketKind
from portal.request_scope import commit, db
from portal.services import facility_issues as issues
from portal.services import tickets
from portal.web_errors import error_response

bp = Blueprint("issues", __name__, url_prefix="/issues")

# Three photos of at most 10 MB each, plus the rest of the form. Only this form accepts that much:
# the app's own cap stays as it is for every other request.
REPORT_MAX_BYTES = issues.MAX_PHOTOS * issues.MAX_PHOTO_BYTES + issues.MEGABYTE
# An image opened on its own is a document: no scripts, no requests, no same-origin rights.
IMAGE_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


class IssueForm(FlaskForm):
    """Shape only; the service checks the choices, the place and the photos, and its messages
    are put beside these fields."""

    category = RadioField(
        "What is wrong?", choices=list(issues.CATEGORY_LABELS.items()), validate_choice=False
    )
    # Rendered by hand (dependent lists with optgroups); the service checks what comes back.
    site = StringField("Office")
    floor = StringField("Floor")
    resource = StringField("Room or desk")
    place_note = StringField(
        "Where exactly",
        render_kw={
            "maxlength": issues.PLACE_NOTE_MAX,
            "placeholder": "e.g. by the window, men's toilet, kitchen sink",
            "autocomplete": "off",
        },
    )
    description = TextAreaField(
        "What is the problem?",
        render_kw={
            "rows": 4,
            "maxlength": issues.DESCRIPTION_MAX,
            "placeholder": "e.g. The tap in the kitchen keeps dripping and the sink is flooding.",
            "required": True,
        },
    )
    photos = MultipleFileField("Photos")
    priority = RadioField(
        "How urgent is it?",
        choices=list(tickets.PRIORITY_LABELS.items()),
        default=Priority.NORMAL,
        validate_choice=False,
    )
    submission_key = HiddenField()
    # Opened from the QR code on a room or desk: the place is shown as a summary, not as lists.
    from_code = HiddenField()


def _uploads() -> Path:
    return Path(current_app.extensions["foyer.settings"].instance_path) / "uploads"


def _visible_issue(ticket_id: int) -> Ticket:
    try:
        return tickets.visible_ticket(db(), current_user, ticket_id, TicketKind.ISSUE)
    except NotFound:
        abort(404)


# ---------------------------------------------------------------------------------------------
# The report form


@bp.url_value_preprocessor
def allow_photo_uploads(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Runs before every before-request hook (the CSRF check reads the body), so the larger
    limit is in place when the form is parsed."""
    if endpoint == "issues.create":
        request.max_content_length = REPORT_MAX_BYTES


def _place_context(form: IssueForm, place: issues.Place | None, from_code: bool) -> dict[str, Any]:
    """What the place section shows: the office, floor and room/desk lists for what is chosen,
    and the open issues already reported there."""
    form.site.data = str(place.site.id) if place else ""
    form.floor.data = str(place.floor.id) if place and place.floor else ""
    form.resource.data = str(place.resource.id) if place and place.resource else ""
    form.from_code.data = "1" if from_code and place and place.resource else ""
    duplicates = issues.open_at(db(), place) if place else []
    return {
        "place": place,
        "from_code": bool(form.from_code.data),
        "sites": issues.sites(db()),
        "floors": issues.floors_in(db(), place.site) if place else [],
        "spaces": issues.spaces_on(db(), place.floor) if place and place.floor else None,
        "duplicates": duplicates,
        "following": issues.followed_among(db(), current_user, duplicates),
    }


def _render_form(
    form: IssueForm,
    place: issues.Place | None,
    *,
    status: int = 200,
    problem: str = "",
    from_code: bool = False,
) -> Response:
    context = _place_context(form, place, from_code)
    return htmx.render(
        "issues/new.html",
        "issues/_form.html",
        status=status,
        form=form,
        problem=problem,
        categories=issues.CATEGORY_LABELS,
        category_hints=issues.CATEGORY_HINTS,
        urgency_hints=issues.URGENCY_HINTS,
        max_photos=issues.MAX_PHOTOS,
        max_photo_mb=issues.MAX_PHOTO_BYTES // issues.MEGABYTE,
        **context,
    )


@bp.get("/new")
@login_required
def new() -> Response:
    """The form, with the place prefilled: from a QR code or a room/desk link, from ?site and
    ?floor, else today's booked desk or the person's home site."""
    form = IssueForm(formdata=None)
    form.submission_key.data = new_idempotency_key()
    problem = ""
    place: issues.Place | None = None
    from_code = False
    resource = None
    if request.args.get("qr"):
        resource = issues.resource_by_qr(db(), request.args["qr"])
        if resource is None:
            problem = "That code does not belong to any room or desk: choose the place below."
    elif request.args.get("resource"):
        resource = issues.resource_by_id(db(), request.args.get("resource"))
        if resource is None:
            problem = "That room or desk does not exist (any more): choose the place below."
    if resource is not None:
        place = issues.Place(resource.site, resource.floor, resource)
        from_code = True
    elif request.args.get("site"):
        place = issues.partial_place(
            db(),
            site_id=request.args.get("site"),
            floor_id=request.args.get("floor"),
        )
    if place is None:
        place = issues.default_place(db(), current_user, utcnow())
    category = request.args.get("category", "")
    if category in issues.CATEGORY_LABELS:
        form.category.data = category
    return _render_form(form, place, problem=problem, from_code=from_code)


@bp.get("/new/place")
@login_required
def place() -> Response:
    """The place lists again for what is chosen so far, with the open issues already reported
    there (htmx, as the reporter picks the office, the floor and the room or desk)."""
    form = IssueForm(formdata=None)
    chosen = issues.partial_place(
        db(),
        site_id=request.args.get("site"),
        floor_id=request.args.get("floor"),
        resource_id=request.args.get("resource"),
    )
    if not htmx.wants_fragment():  # without htmx: the whole form, with this place chosen
        args = {}
        if chosen is not None:
            args = {"site": chosen.site.id, "floor": chosen.floor.id if chosen.floor else None}
        return redirect(url_for("issues.new", **args), code=303)
    context = _place_context(form, chosen, from_code=False)
    return htmx.render("issues/_place.html", form=form, **context)


def _uploaded_photos() -> list[issues.Upload]:
    """The chosen files (a form with none sends one empty part), read up to just past the
    limit: enough to say a photo is too large without holding more of it."""
    files: list[FileStorage] = request.files.getlist("photos")
    chosen = []
    for storage in files:
        data = storage.stream.read(issues.MAX_PHOTO_BYTES + 1)
        if not storage.filename and not data:
            continue
        chosen.append(issues.Upload(storage.filename or "", data))
    return chosen


@bp.post("/new")
@login_required
def create() -> Response:
    form = IssueForm()
    key = (form.submission_key.data or "")[:40]
    earlier = issues.by_submission_key(db(), current_user, key)
    if earlier is not None:  # the same form sent twice: one issue
        return htmx.redirect_to(url_for("issues.detail", ticket_id=earlier.id))
    category = form.category.data or ""
    priority = form.priority.data or ""
    description = form.description.data or ""
    errors: dict[str, str] = {}
    chosen: issues.Place | None = None
    photos = []
    uploads = _uploaded_photos()
    try:
        chosen = issues.resolve_place(
            db(),
            site_id=form.site.data,
            floor_id=form.floor.data,
            resource_id=form.resource.data,
            note=form.place_note.data or "",
        )
    except RuleViolation as violation:
        errors.update(violation.errors)
    try:
        issues.check_report(category, priority, description)
    except RuleViolation as violation:
        errors.update(violation.errors)
    try:
        photos = issues.check_photos(uploads)
    except RuleViolation as violation:
        errors.update(violation.errors)
    if errors:
        return _refused(form, errors, bool(uploads))
    assert chosen is not None
    stored: list[str] = []
    try:
        with db().begin_nested():
            ticket, stored = issues.report_issue(
                db(),
                actor(),
                reporter=current_user,
                category=category,
                place=chosen,
                description=description,
                priority=priority,
                photos=photos,
                uploads=_uploads(),
                key=key,
                now=utcnow(),
            )
        commit()
    except RuleViolation as violation:
        issues.remove_files(_uploads(), stored)
        return _refused(form, violation.errors, bool(uploads))
    except IntegrityError:  # the twin of this request committed first
        issues.remove_files(_uploads(), stored)
        db().rollback()
        earlier = issues.by_submission_key(db(), current_user, key)
        if earlier is None:
            raise
        return htmx.redirect_to(url_for("issues.detail", ticket_id=earlier.id))
    except BaseException:
        issues.remove_files(_uploads(), stored)
        raise
    flash(
        f"Thank you: {ticket.number} is reported. The coordinators of {ticket.site.name} have "
        "been told, and you will get an e-mail whenever it moves on.",
        "success",
    )
    return htmx.redirect_to(url_for("issues.detail", ticket_id=ticket.id))


def _refused(form: IssueForm, errors: dict[str, str], had_photos: bool) -> Response:
    """The form again with the messages beside their fields; nothing was saved."""
    rest = []
    for name, message in errors.items():
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors), message]
        else:
            rest.append(message)
    if had_photos and not form.photos.errors:
        form.photos.errors = ["Nothing was saved yet: choose your photos again before sending."]
    chosen = issues.partial_place(
        db(), site_id=form.site.data, floor_id=form.floor.data, resource_id=form.resource.data
    )
    return _render_form(
        form,
        chosen,
        status=422,
        problem=" ".join(rest),
        from_code=form.from_code.data == "1"
        and not (errors.keys() & {"site", "floor", "resource"}),
    )


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_error: RequestEntityTooLarge) -> Response:
    """More than the report form accepts (three 10 MB photos): the form again with a message
    beside the photos, instead of a bare error page. Runs before the view and before the CSRF
    check, so it reads nothing of the body and saves nothing."""
    sent_mb = (request.content_length or 0) / issues.MEGABYTE
    limit = issues.MAX_PHOTO_BYTES // issues.MEGABYTE
    message = (
        f"Your photos add up to {sent_mb:.0f} MB; each photo may be at most {limit} MB. "
        "Nothing was sent: choose smaller photos and try again."
    )
    if request.endpoint != "issues.create" or not current_user.is_authenticated:
        return error_response(413, message)
    form = IssueForm(formdata=None)
    form.submission_key.data = new_idempotency_key()
    form.photos.errors = [message]
    place = issues.default_place(db(), current_user, utcnow())
    return _render_form(form, place, status=422)


# ---------------------------------------------------------------------------------------------
# "Me too"


@bp.post("/<int:ticket_id>/me-too")
@login_required
def me_too(ticket_id: int) -> Response:
    try:
        ticket = issues.joinable_issue(db(), ticket_id)
    except NotFound:
        abort(404)
    changed = issues.me_too(db(), actor(), ticket, current_user, now=utcnow())
    commit()
    if ticket.requester_id == current_user.id:
        flash(f"You reported {ticket.number} yourself: it is already on its way.", "info")
    elif changed:
        flash(
            f"Added you to {ticket.number}: you will get an e-mail whenever it moves on. "
            "No need to report it again.",
            "success",
        )
    else:
        flash(f"You already follow {ticket.number}.", "info")
    return htmx.redirect_to(url_for("issues.detail", ticket_id=ticket.id))


# ---------------------------------------------------------------------------------------------
# My issues and one issue


@bp.get("/")
@login_required
def mine() -> Response:
    rows = issues.mine(db(), current_user)
    open_rows = [t for t in rows if issues.is_open(t)]
    done_rows = [t for t in rows if not issues.is_open(t)]
    now = utcnow()
    return htmx.render(
        "issues/mine.html",
        open_issues=open_rows,
        done_issues=done_rows,
        categories=issues.CATEGORY_LABELS,
        place_of=issues.place_of,
        heading_for=issues.heading_for,
        aim_of=lambda ticket: issues.aim_of(ticket, now),
    )


@bp.get("/<int:ticket_id>")
@login_required
def detail(ticket_id: int) -> Response:
    ticket = _visible_issue(ticket_id)
    now = utcnow()
    place = issues.place_of(ticket)
    return htmx.render(
        "issues/detail.html",
        place=place,
        heading=issues.heading_for(ticket.category, place),
        photos=issues.photos_of(db(), ticket),
        steps=issues.progress(db(), ticket, now),
        aim=issues.aim_of(ticket, now),
        categories=issues.CATEGORY_LABELS,
        is_open=issues.is_open(ticket),
        is_follower=tickets.is_follower(db(), current_user, ticket),
        **ticket_context(ticket),
    )


@bp.get("/<int:ticket_id>/photos/<int:photo_id>")
@login_required
def photo(ticket_id: int, photo_id: int) -> Response:
    """A photo of an issue, only to people who may see the issue, and only ever as an image."""
    ticket = _visible_issue(ticket_id)
    try:
        path = issues.photo_path(db(), ticket, photo_id, _uploads())
    except NotFound:
        abort(404)
    response = make_response(path.read_bytes())
    response.mimetype = "image/jpeg"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = IMAGE_POLICY
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
