"""Lobby kiosks (admins; coordinators for their own sites): the tablets, whether each is paired
and when it was last seen, its label printer; create one and pair it with a code shown once, pair
it again, or revoke it."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, current_app, flash, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length

from portal import htmx
from portal.blueprints.context import actor, default_site, managed_site_or_404, managed_sites
from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import KioskDevice, Role
from portal.permissions import coordinates_site, load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import kiosk_devices

bp = Blueprint("kiosks", __name__, url_prefix="/kiosks")


@bp.app_template_filter("ago")
def ago(instant: datetime | None, now: datetime | None = None) -> str:
    """ "just now", "3 min ago", "2 h ago", "5 days ago"; "never" for None."""
    if instant is None:
        return "never"
    seconds = max(0, int(((now or utcnow()) - instant).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''} ago"


def kiosk_state(device: KioskDevice, now: datetime) -> str:
    """revoked | paired | pairing (a code is waiting to be used) | unpaired."""
    if device.revoked_at is not None:
        return "revoked"
    if device.token_hash is not None:
        return "paired"
    if device.pairing_expires_at is not None and device.pairing_expires_at > now:
        return "pairing"
    return "unpaired"


class KioskForm(FlaskForm):
    site = SelectField("Site", coerce=int)
    name = StringField(
        "Name",
        [Length(max=120, message="Use at most 120 characters.")],
        render_kw={"placeholder": "e.g. Main lobby", "maxlength": 120, "autocomplete": "off"},
    )


class PrinterForm(FlaskForm):
    printer_uri = StringField(
        "Label printer address",
        [Length(max=300, message="Use at most 300 characters.")],
        render_kw={
            "placeholder": "socket://192.0.2.10:9100 or ipp://printer.local/ipp/print",
            "spellcheck": "false",
            "autocomplete": "off",
        },
    )
    label_stock = SelectField("Label", choices=[])


def _stock_choices() -> list[tuple[str, str]]:
    from portal.services.badges import LABEL_STOCKS  # label rendering loads only when used

    return [(key, stock.title) for key, stock in LABEL_STOCKS.items()]


def _kiosk_form() -> KioskForm:
    form = KioskForm()
    sites = managed_sites()
    form.site.choices = [(s.id, s.name) for s in sites]
    if form.site.data is None:
        chosen = default_site(sites)
        form.site.data = chosen.id if chosen else None
    return form


def _printer_form(device: KioskDevice, formdata: bool = True) -> PrinterForm:
    form = PrinterForm() if formdata else PrinterForm(formdata=None, obj=device)
    form.label_stock.choices = _stock_choices()
    return form


def _managed_or_404(device_id: int) -> KioskDevice:
    return load_or_404(db(), KioskDevice, device_id, lambda u, d: coordinates_site(u, d.site_id))


def _kiosk_url() -> str:
    return current_app.extensions["foyer.settings"].base_url.rstrip("/") + "/kiosk"


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    return _render_index(_kiosk_form())


def _render_index(form: KioskForm, status: int = 200) -> Response:
    sites = managed_sites()
    site_ids = None if current_user.is_admin else {s.id for s in sites}
    now = utcnow()
    devices = kiosk_devices.for_sites(db(), site_ids)
    return htmx.render(
        "admin/kiosks/index.html",
        "admin/kiosks/_create.html",
        status=status,
        devices=devices,
        states={d.id: kiosk_state(d, now) for d in devices},
        stocks=dict(_stock_choices()),
        form=form,
        sites=sites,
        site=default_site(sites),
        now=now,
    )


def _render_code(device: KioskDevice, code: str, *, new: bool) -> Response:
    """The code, big, as the whole page: for htmx, swapped into <main> (it is never a GET
    page of its own, so there is no address to push)."""
    response = htmx.render(
        "admin/kiosks/code.html",
        "admin/kiosks/_code_main.html",
        device=device,
        code=code,
        new=new,
        kiosk_url=_kiosk_url(),
        minutes=int(kiosk_devices.PAIRING_LIFETIME.total_seconds() // 60),
        now=utcnow(),
    )
    return htmx.retarget(response, "#main", "innerHTML show:window:top")


@bp.post("/")
@role_required(Role.COORDINATOR)
def create() -> Response:
    form = _kiosk_form()
    if not form.validate():
        return _render_index(form, 422)
    site = managed_site_or_404(form.site.data)
    try:
        device, code = kiosk_devices.create(db(), actor(), site, form.name.data or "", now=utcnow())
    except RuleViolation as violation:
        db().rollback()
        form.name.errors = list(violation.errors.values())
        return _render_index(form, 422)
    commit()
    return _render_code(device, code, new=True)


def _render_device(
    device: KioskDevice, form: PrinterForm | None = None, status: int = 200
) -> Response:
    now = utcnow()
    return htmx.render(
        "admin/kiosks/device.html",
        "admin/kiosks/_printer.html",
        status=status,
        device=device,
        state=kiosk_state(device, now),
        form=form or _printer_form(device, formdata=False),
        stocks=dict(_stock_choices()),
        sites=managed_sites(),
        site=device.site,
        now=now,
    )


@bp.get("/<int:device_id>")
@role_required(Role.COORDINATOR)
def device(device_id: int) -> Response:
    return _render_device(_managed_or_404(device_id))


@bp.post("/<int:device_id>/pairing-code")
@role_required(Role.COORDINATOR)
def pairing_code(device_id: int) -> Response:
    kiosk = _managed_or_404(device_id)
    if kiosk.revoked_at is not None:
        flash("This kiosk is revoked. Create a new one for the tablet.", "error")
        return htmx.redirect_to(url_for("admin.kiosks.device", device_id=kiosk.id))
    code = kiosk_devices.new_pairing_code(db(), actor(), kiosk, now=utcnow())
    commit()
    return _render_code(kiosk, code, new=False)


@bp.post("/<int:device_id>/revoke")
@role_required(Role.COORDINATOR)
def revoke(device_id: int) -> Response:
    kiosk = _managed_or_404(device_id)
    kiosk_devices.revoke(db(), actor(), kiosk, now=utcnow())
    commit()
    flash(f"{kiosk.name} is revoked: the tablet shows the pairing screen from now on.", "success")
    return htmx.redirect_to(url_for("admin.kiosks.index"))


@bp.post("/<int:device_id>/printer")
@role_required(Role.COORDINATOR)
def printer(device_id: int) -> Response:
    kiosk = _managed_or_404(device_id)
    form = _printer_form(kiosk)
    if not form.validate():
        return _render_device(kiosk, form, 422)
    try:
        kiosk_devices.update_printer(
            db(),
            actor(),
            kiosk,
            printer_uri=form.printer_uri.data or "",
            label_stock=form.label_stock.data or "",
        )
    except RuleViolation as violation:
        db().rollback()
        for name, message in violation.errors.items():
            field = getattr(form, name, None)
            (field or form.printer_uri).errors = [message]
        return _render_device(_managed_or_404(device_id), form, 422)
    commit()
    where = kiosk.printer_uri or "the browser (no label printer)"
    flash(f"{kiosk.name} prints badges on {where}.", "success")
    return htmx.redirect_to(url_for("admin.kiosks.device", device_id=kiosk.id))
