"""My equipment (assets I hold: accept, ask to return; my equipment loans), borrowing loanable
equipment for dates, and for coordinators the asset register and the loanable equipment of their
sites. Thin views: the rules live in services/assets.py and services/equipment_loans.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length, Optional

from portal import htmx
from portal.blueprints.booking_views import new_idempotency_key
from portal.blueprints.context import actor
from portal.blueprints.forms import WholeNumberField, apply_violation
from portal.db import db_int, utcnow
from portal.errors import Conflict, NotFound, RuleViolation, SlotTaken
from portal.login import safe_next
from portal.models import Asset, AssetStatus, Equipment, Role, Site, User
from portal.permissions import role_required
from portal.request_scope import commit, db
from portal.services import assets, equipment_loans, spaces
from portal.services.equipment_loans import EquipmentDetails
from portal.web_errors import error_response

bp = Blueprint("equipment", __name__)

CALENDAR_WEEKS = 5


def _version() -> int | None:
    return request.form.get("version", type=db_int)


# ---------------------------------------------------------------------------------------------
# My equipment


class VersionForm(FlaskForm):
    version = HiddenField()


@bp.get("/equipment")
@login_required
def mine() -> Response:
    now = utcnow()
    return htmx.render(
        "equipment/mine.html",
        held=assets.held_by(db(), current_user),
        loans=equipment_loans.loans_of(db(), current_user, now),
        labels=assets.STATUS_LABELS,
        loan_range=equipment_loans.loan_range,
        now=now,
    )


def _holder_action(asset_id: int, action: Any, done: str) -> Response:
    form = VersionForm()
    if not form.validate():
        abort(400)
    try:
        asset = assets.held_asset(db(), current_user, asset_id)
    except NotFound:
        abort(404)
    try:
        action(asset)
    except (RuleViolation, Conflict) as problem:
        db().rollback()
        flash(problem.message, "error")
        return htmx.redirect_to(url_for("equipment.mine"))
    commit()
    flash(done.format(what=assets.describe(asset)), "success")
    return htmx.redirect_to(url_for("equipment.mine"))


@bp.post("/equipment/assets/<int:asset_id>/accept")
@login_required
def accept(asset_id: int) -> Response:
    return _holder_action(
        asset_id,
        lambda a: assets.accept(
            db(), actor(), a, current_user, utcnow(), expected_version=_version()
        ),
        "You confirmed you have {what}.",
    )


@bp.post("/equipment/assets/<int:asset_id>/return")
@login_required
def request_return(asset_id: int) -> Response:
    return _holder_action(
        asset_id,
        lambda a: assets.request_return(
            db(), actor(), a, current_user, utcnow(), expected_version=_version()
        ),
        "The coordinators know you want to return {what}; they will arrange the hand-back.",
    )


@bp.post("/equipment/loans/<int:loan_id>/cancel")
@login_required
def cancel_loan(loan_id: int) -> Response:
    if not VersionForm().validate():
        abort(400)
    try:
        loan = equipment_loans.visible_loan(db(), current_user, loan_id)
    except NotFound:
        abort(404)
    back = safe_next(request.form.get("next")) or url_for("equipment.mine")
    try:
        equipment_loans.cancel_loan(db(), actor(), loan, current_user, now=utcnow())
    except RuleViolation as violation:
        db().rollback()
        flash(violation.message, "error")
        return htmx.redirect_to(back)
    commit()
    flash(
        f"Loan of {loan.equipment.name} ({equipment_loans.loan_range(loan)}) cancelled.",
        "success",
    )
    return htmx.redirect_to(back)


# ---------------------------------------------------------------------------------------------
# Borrowing


def _site_from_args() -> Site | None:
    sites = list(db().scalars(select(Site).order_by(Site.name)))
    wanted = request.args.get("site", "")
    for site in sites:
        if site.slug == wanted:
            return site
    home = current_user.home_site
    return home or (sites[0] if sites else None)


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


@bp.get("/equipment/borrow")
@login_required
def browse() -> Response:
    """Loanable equipment at a site, with whether each is free for the chosen days."""
    now = utcnow()
    site = _site_from_args()
    sites = list(db().scalars(select(Site).order_by(Site.name)))
    items: list[Equipment] = equipment_loans.equipment_at(db(), site) if site else []
    today = equipment_loans.today_at(site, now) if site else now.date()
    first = _date_arg("first") or today
    last = _date_arg("last") or first
    problem = ""
    if first < today:
        problem, first = "The first day was in the past; showing from today.", today
    if last < first:
        problem, last = "The last day was before the first; showing one day.", first
    if (last - first).days > 90:
        problem, last = "Showing the first 90 days of that range.", first + timedelta(days=89)
    taken = equipment_loans.taken_days_of(db(), items, first, last)
    return htmx.render(
        "equipment/browse.html",
        "equipment/_browse_results.html",
        site=site,
        sites=sites,
        items=items,
        taken=taken,
        first=first,
        last=last,
        today=today,
        problem=problem,
        length=(last - first).days + 1,
    )


class LoanForm(FlaskForm):
    first_day = DateField("First day", [Optional()])
    last_day = DateField("Last day", [Optional()])
    purpose = StringField(
        "What for (optional)",
        [Length(max=equipment_loans.PURPOSE_MAX, message="Keep it under 200 characters.")],
        render_kw={"maxlength": equipment_loans.PURPOSE_MAX, "placeholder": "Offsite workshop"},
    )
    idempotency_key = HiddenField()


def _calendar(equipment: Equipment, now: datetime, around: date) -> list[list[dict[str, Any]]]:
    """Weeks (Monday first) from the week of `around`, each day free, taken, past or beyond."""
    today = equipment_loans.today_at(equipment.site, now)
    horizon = equipment_loans.last_bookable_day(db(), equipment, now)
    start = max(around, today)
    start -= timedelta(days=start.weekday())
    end = start + timedelta(days=7 * CALENDAR_WEEKS - 1)
    taken = equipment_loans.taken_days(db(), equipment, start, end)
    weeks = []
    for w in range(CALENDAR_WEEKS):
        week = []
        for d in range(7):
            day = start + timedelta(days=7 * w + d)
            if day < today:
                state = "past"
            elif day > horizon:
                state = "beyond"
            elif day in taken:
                state = "taken"
            else:
                state = "free"
            week.append(
                {
                    "day": day,
                    "state": state,
                    "today": day == today,
                    "month": day.day == 1 or (w == 0 and d == 0),
                }
            )
        weeks.append(week)
    return weeks


def _render_loan_page(
    equipment: Equipment,
    form: LoanForm,
    status: int = 200,
    problem: str = "",
    suggestion: tuple[date, date] | None = None,
) -> Response:
    now = utcnow()
    around = form.first_day.data or equipment_loans.today_at(equipment.site, now)
    return htmx.render(
        "equipment/borrow.html",
        "equipment/_loan_form.html",
        status=status,
        equipment=equipment,
        form=form,
        problem=problem,
        suggestion=suggestion,
        weeks=_calendar(equipment, now, around),
        horizon=equipment_loans.last_bookable_day(db(), equipment, now),
    )


def _loanable_or_404(equipment_id: int) -> Equipment:
    try:
        return equipment_loans.loanable(db(), equipment_id)
    except NotFound:
        abort(404)


@bp.get("/equipment/borrow/<int:equipment_id>")
@login_required
def loan_form(equipment_id: int) -> Response:
    equipment = _loanable_or_404(equipment_id)
    form = LoanForm(formdata=None)
    today = equipment_loans.today_at(equipment.site, utcnow())
    form.first_day.data = _date_arg("first") or today
    form.last_day.data = _date_arg("last") or form.first_day.data
    form.idempotency_key.data = new_idempotency_key()
    return _render_loan_page(equipment, form)


@bp.post("/equipment/borrow/<int:equipment_id>")
@login_required
def reserve(equipment_id: int) -> Response:
    equipment = _loanable_or_404(equipment_id)
    form = LoanForm()
    if not form.validate():
        return _render_loan_page(equipment, form, 422)
    try:
        loan = equipment_loans.reserve(
            db(),
            actor(),
            current_user,
            equipment_id=equipment.id,
            first_day=form.first_day.data,
            last_day=form.last_day.data,
            purpose=form.purpose.data or "",
            idempotency_key=(form.idempotency_key.data or "")[:64] or None,
            now=utcnow(),
        )
    except RuleViolation as violation:
        db().rollback()
        equipment = _loanable_or_404(equipment_id)
        # Taken days concern the whole range, so they go above the form with the way out.
        problem = (
            violation.message
            if isinstance(violation, SlotTaken)
            else apply_violation(form, violation)
        )
        form.idempotency_key.data = new_idempotency_key()
        suggestion = violation.alternatives[0] if violation.alternatives else None
        return _render_loan_page(equipment, form, violation.status, problem, suggestion)
    commit()
    pickup = f" Pick it up at {equipment.pickup_point}." if equipment.pickup_point else ""
    flash(
        f"{equipment.name} is yours {equipment_loans.loan_range(loan)}.{pickup}",
        "success",
    )
    return htmx.redirect_to(url_for("equipment.mine"))


# ---------------------------------------------------------------------------------------------
# The asset register (coordinators)


def _my_sites() -> list[Site]:
    return spaces.coordinated_sites(
        db(), None if current_user.is_admin else current_user.coordinated_site_ids()
    )


def _int_arg(name: str) -> int | None:
    try:
        return int(request.args.get(name, ""))
    except ValueError:
        return None


@bp.get("/assets")
@role_required(Role.COORDINATOR)
def register() -> Response:
    q = request.args.get("q", "")[:100]
    status = request.args.get("status", "")
    item_id = _int_arg("item")
    site_id = _int_arg("site")
    found = assets.search(db(), current_user, q=q, status=status, item_id=item_id, site_id=site_id)
    return htmx.render(
        "equipment/register.html",
        "equipment/_asset_results.html",
        found=found,
        q=q,
        status_filter=status,
        item_id=item_id,
        site_id=site_id,
        sites=_my_sites(),
        items=assets.tracked_items(db()),
        labels=assets.STATUS_LABELS,
        limit=200,
    )


class AssetForm(FlaskForm):
    site_id = SelectField("Site", coerce=int)
    # The service says what is wrong with an item (retired, a consumable), not "not a choice".
    item_id = SelectField("Item", coerce=int, validate_choice=False)
    asset_tag = StringField(
        "Asset tag",
        render_kw={"maxlength": assets.TAG_MAX, "autocomplete": "off", "placeholder": "IT-0042"},
    )
    serial_number = StringField(
        "Serial number (optional)",
        render_kw={"maxlength": assets.SERIAL_MAX, "autocomplete": "off"},
    )
    note = TextAreaField("Note (optional)", render_kw={"rows": 2, "maxlength": assets.NOTE_MAX})


def _asset_form(formdata: Any = None) -> AssetForm:
    form = AssetForm() if formdata is None else AssetForm(formdata=formdata)
    form.site_id.choices = [(s.id, s.name) for s in _my_sites()]
    form.item_id.choices = [(0, "Choose a tracked item…")] + [
        (i.id, i.name) for i in assets.tracked_items(db())
    ]
    return form


@bp.get("/assets/new")
@role_required(Role.COORDINATOR)
def new_asset() -> Response:
    form = _asset_form(formdata=None)
    if current_user.home_site_id and any(
        current_user.home_site_id == s for s, _ in form.site_id.choices
    ):
        form.site_id.data = current_user.home_site_id
    return htmx.render("equipment/new_asset.html", form=form, problem="")


@bp.post("/assets/new")
@role_required(Role.COORDINATOR)
def add_asset() -> Response:
    form = _asset_form()
    if not form.validate():
        return htmx.render("equipment/new_asset.html", status=422, form=form, problem="")
    site = db().get(Site, form.site_id.data)
    if site is None:
        abort(404)
    try:
        asset = assets.add_asset(
            db(),
            actor(),
            current_user,
            site,
            assets.NewAsset(
                item_id=form.item_id.data or None,
                asset_tag=form.asset_tag.data or "",
                serial_number=form.serial_number.data or "",
                note=form.note.data or "",
            ),
            now=utcnow(),
        )
    except RuleViolation as violation:
        db().rollback()
        form = _asset_form(request.form)
        form.validate()
        problem = apply_violation(form, violation)
        return htmx.render("equipment/new_asset.html", status=422, form=form, problem=problem)
    except NotFound:
        abort(404)
    commit()
    flash(f"{asset.asset_tag} is in the register.", "success")
    return htmx.redirect_to(url_for("equipment.asset", asset_id=asset.id))


class HandOverForm(FlaskForm):
    email = StringField(
        "Hand over to (e-mail)",
        [Length(max=254, message="That e-mail address is too long.")],
        render_kw={
            "type": "email",
            "autocomplete": "off",
            "spellcheck": "false",
            "placeholder": "name@company.com",
        },
    )
    note = StringField("Note (optional)", render_kw={"maxlength": assets.NOTE_MAX})
    version = HiddenField()


class AssetActionForm(FlaskForm):
    note = StringField("Note (optional)", render_kw={"maxlength": assets.NOTE_MAX})
    version = HiddenField()


def _managed_or_404(asset_id: int) -> Asset:
    try:
        return assets.managed_asset(db(), current_user, asset_id)
    except NotFound:
        abort(404)


def _render_asset(
    asset: Asset,
    status: int = 200,
    problem: str = "",
    hand_over: HandOverForm | None = None,
) -> Response:
    if status >= 400 and htmx.wants_fragment():
        # the buttons post with htmx: a whole page would land inside the button's form
        return error_response(status, problem or None)
    hand_over = hand_over or HandOverForm(formdata=None)
    hand_over.version.data = str(asset.version)
    action = AssetActionForm(formdata=None)
    action.version.data = str(asset.version)
    return htmx.render(
        "equipment/asset.html",
        status=status,
        asset=asset,
        events=assets.history(db(), asset),
        labels=assets.STATUS_LABELS,
        event_labels=assets.EVENT_LABELS,
        held=asset.status in assets.HELD_STATUSES,
        hand_over=hand_over,
        action=action,
        problem=problem,
    )


@bp.get("/assets/<int:asset_id>")
@role_required(Role.COORDINATOR)
def asset(asset_id: int) -> Response:
    return _render_asset(_managed_or_404(asset_id))


def _fresh(asset_id: int) -> Asset:
    db().rollback()
    return _managed_or_404(asset_id)


@bp.post("/assets/<int:asset_id>/hand-over")
@role_required(Role.COORDINATOR)
def hand_over(asset_id: int) -> Response:
    asset = _managed_or_404(asset_id)
    form = HandOverForm()
    if not form.validate():
        return _render_asset(asset, 422, hand_over=form)
    email = (form.email.data or "").strip().lower()
    person = (
        db().scalar(select(User).where(func.lower(User.email) == email, User.active.is_(True)))
        if email
        else None
    )
    if person is None:
        form.email.errors = [
            "Enter the e-mail of the person receiving it."
            if not email
            else "Nobody with an active account has that e-mail address."
        ]
        return _render_asset(asset, 422, hand_over=form)
    try:
        assets.hand_over(
            db(),
            actor(),
            asset,
            person,
            current_user,
            utcnow(),
            expected_version=_version(),
            note=form.note.data or "",
        )
    except Conflict as stale:
        return _render_asset(_fresh(asset_id), stale.status, stale.message)
    except RuleViolation as violation:
        fresh = _fresh(asset_id)
        if fresh.status != AssetStatus.IN_STOCK:  # no hand-over form to show the message in
            return _render_asset(fresh, violation.status, violation.message)
        form = HandOverForm()
        form.validate()
        problem = apply_violation(
            form,
            RuleViolation(
                {("email" if k == "to_user" else k): v for k, v in violation.errors.items()}
            ),
        )
        return _render_asset(fresh, violation.status, problem, hand_over=form)
    commit()
    flash(
        f"{asset.asset_tag} handed over to {person.name}; they are asked to accept it.", "success"
    )
    return htmx.redirect_to(url_for("equipment.asset", asset_id=asset.id))


def _coordinator_action(asset_id: int, operation: Any, done: str) -> Response:
    asset = _managed_or_404(asset_id)
    form = AssetActionForm()
    if not form.validate():
        return _render_asset(asset, 422)
    try:
        operation(
            db(),
            actor(),
            asset,
            current_user,
            utcnow(),
            expected_version=_version(),
            note=form.note.data or "",
        )
    except (Conflict, RuleViolation) as problem:
        return _render_asset(_fresh(asset_id), problem.status, problem.message)
    commit()
    flash(done.format(tag=asset.asset_tag), "success")
    return htmx.redirect_to(url_for("equipment.asset", asset_id=asset.id))


@bp.post("/assets/<int:asset_id>/returned")
@role_required(Role.COORDINATOR)
def returned(asset_id: int) -> Response:
    return _coordinator_action(asset_id, assets.mark_returned, "{tag} is back in stock.")


@bp.post("/assets/<int:asset_id>/lost")
@role_required(Role.COORDINATOR)
def lost(asset_id: int) -> Response:
    return _coordinator_action(asset_id, assets.mark_lost, "{tag} is marked lost.")


@bp.post("/assets/<int:asset_id>/retire")
@role_required(Role.COORDINATOR)
def retire(asset_id: int) -> Response:
    return _coordinator_action(asset_id, assets.retire, "{tag} is retired.")


# ---------------------------------------------------------------------------------------------
# Loanable equipment (coordinators)


class EquipmentForm(FlaskForm):
    site_id = SelectField("Site", coerce=int)
    name = StringField(
        "Name",
        render_kw={"maxlength": equipment_loans.NAME_MAX, "placeholder": "Projector Epson 1"},
    )
    description = TextAreaField(
        "Description (optional)",
        render_kw={"rows": 3, "maxlength": equipment_loans.DESCRIPTION_MAX},
    )
    pickup_point = StringField(
        "Pick-up point",
        render_kw={"maxlength": equipment_loans.PICKUP_MAX, "placeholder": "Reception, 2nd floor"},
    )
    max_loan_days = WholeNumberField(
        "Longest loan (days)", render_kw={"min": 1, "max": equipment_loans.MAX_LOAN_DAYS_LIMIT}
    )
    active = BooleanField("Offered for loan", default=True)


def _equipment_form(formdata: Any = None) -> EquipmentForm:
    form = EquipmentForm() if formdata is None else EquipmentForm(formdata=formdata)
    form.site_id.choices = [(s.id, s.name) for s in _my_sites()]
    return form


def _details(form: EquipmentForm) -> EquipmentDetails:
    return EquipmentDetails(
        name=form.name.data or "",
        description=form.description.data or "",
        pickup_point=form.pickup_point.data or "",
        max_loan_days=form.max_loan_days.data,
        active=bool(form.active.data),
    )


@bp.get("/assets/loanable")
@role_required(Role.COORDINATOR)
def loanable() -> Response:
    now = utcnow()
    sites = _my_sites()
    per_site = []
    for site in sites:
        items = equipment_loans.equipment_at(db(), site, include_inactive=True)
        today = equipment_loans.today_at(site, now)
        taken = equipment_loans.taken_days_of(db(), items, today, today)
        per_site.append((site, items, taken, today))
    return htmx.render("equipment/loanable.html", per_site=per_site)


@bp.get("/assets/loanable/new")
@role_required(Role.COORDINATOR)
def new_equipment() -> Response:
    form = _equipment_form(formdata=None)
    form.max_loan_days.data = 14
    form.active.data = True
    if current_user.home_site_id in [s for s, _ in form.site_id.choices]:
        form.site_id.data = current_user.home_site_id
    return htmx.render("equipment/equipment_form.html", form=form, equipment=None, loans=[])


@bp.post("/assets/loanable/new")
@role_required(Role.COORDINATOR)
def create_equipment() -> Response:
    form = _equipment_form()
    if not form.validate():
        return htmx.render(
            "equipment/equipment_form.html", status=422, form=form, equipment=None, loans=[]
        )
    site = db().get(Site, form.site_id.data)
    if site is None:
        abort(404)
    try:
        equipment = equipment_loans.create_equipment(
            db(), actor(), current_user, site, _details(form)
        )
    except RuleViolation as violation:
        db().rollback()
        form = _equipment_form(request.form)
        form.validate()
        problem = apply_violation(form, violation)
        return htmx.render(
            "equipment/equipment_form.html",
            status=422,
            form=form,
            equipment=None,
            loans=[],
            problem=problem,
        )
    except NotFound:
        abort(404)
    commit()
    flash(f"{equipment.name} can now be borrowed.", "success")
    return htmx.redirect_to(url_for("equipment.loanable"))


def _managed_equipment_or_404(equipment_id: int) -> Equipment:
    try:
        return equipment_loans.managed_equipment(db(), current_user, equipment_id)
    except NotFound:
        abort(404)


def _render_equipment(
    equipment: Equipment, form: EquipmentForm, status: int = 200, problem: str = ""
) -> Response:
    return htmx.render(
        "equipment/equipment_form.html",
        status=status,
        form=form,
        equipment=equipment,
        loans=equipment_loans.loans_of_equipment(db(), equipment, utcnow()),
        loan_range=equipment_loans.loan_range,
        problem=problem,
    )


@bp.get("/assets/loanable/<int:equipment_id>")
@role_required(Role.COORDINATOR)
def edit_equipment(equipment_id: int) -> Response:
    equipment = _managed_equipment_or_404(equipment_id)
    form = EquipmentForm(formdata=None, obj=equipment)
    del form.site_id  # equipment stays at its site
    return _render_equipment(equipment, form)


@bp.post("/assets/loanable/<int:equipment_id>")
@role_required(Role.COORDINATOR)
def update_equipment(equipment_id: int) -> Response:
    equipment = _managed_equipment_or_404(equipment_id)
    form = EquipmentForm()
    del form.site_id  # equipment stays at its site
    if not form.validate():
        return _render_equipment(equipment, form, 422)
    try:
        equipment_loans.update_equipment(db(), actor(), current_user, equipment, _details(form))
    except RuleViolation as violation:
        db().rollback()
        equipment = _managed_equipment_or_404(equipment_id)
        problem = apply_violation(form, violation)
        return _render_equipment(equipment, form, 422, problem)
    commit()
    flash(f"{equipment.name} saved.", "success")
    return htmx.redirect_to(url_for("equipment.edit_equipment", equipment_id=equipment.id))


@bp.app_template_filter("asset_status_tone")
def asset_status_tone(status: str) -> str:
    return {
        AssetStatus.IN_STOCK: "stock",
        AssetStatus.ASSIGNED: "pending",
        AssetStatus.ACCEPTED: "held",
        AssetStatus.RETURN_REQUESTED: "returning",
        AssetStatus.LOST: "lost",
        AssetStatus.RETIRED: "retired",
    }.get(status, "stock")
