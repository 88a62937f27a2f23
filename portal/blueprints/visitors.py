"""Visitors, for every employee: invite a visitor, see one's visitors (today, upcoming, past),
cancel an invitation or check a visitor out, and a visit's own page: its timeline, the agreement
signed, signature and photo, and the badge (print again, print in the browser, PDF)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from portal import htmx
from portal.blueprints.booking_views import new_idempotency_key, next_open_day
from portal.blueprints.context import actor
from portal.blueprints.forms import apply_violation
from portal.db import db_int, utcnow
from portal.errors import NotFound, RuleViolation
from portal.login import safe_next
from portal.models import (
    CheckoutMethod,
    DenyListEntry,
    KioskDevice,
    Site,
    User,
    Visit,
    VisitImage,
    VisitKind,
    VisitStatus,
)
from portal.permissions import coordinates_site
from portal.request_scope import commit, db
from portal.services import visitors
from portal.web_errors import error_response

bp = Blueprint("visitors", __name__, url_prefix="/visitors")

DEFAULT_START = time(10, 0)
DEFAULT_END = time(12, 0)
# The invitation form's one-time key shares the column the kiosk uses for its own form's key;
# the prefix keeps the two apart.
INVITE_KEY_PREFIX = "invite:"
IMAGE_KINDS = {"signature": "image/png", "photo": "image/jpeg"}
# An image opened on its own is a document: no scripts, no requests, no same-origin rights.
IMAGE_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def secret_key() -> bytes:
    """The key that signs a badge's check-out QR code."""
    return current_app.extensions["foyer.settings"].secret_key.encode()


def _visible_or_404(visit_id: int) -> Visit:
    """The visit, if the current person hosts it or coordinates its site; else 404 (whether or
    not it exists)."""
    try:
        return visitors.visible_visit(db(), current_user, visit_id)
    except NotFound:
        abort(404)


@bp.app_template_filter("visit_window")
def visit_window(visit: Visit, with_date: bool = True) -> str:
    """When a visit is expected, in its office's zone: "Tue 1 Dec, 10:00–12:00 CET"."""
    zone = ZoneInfo(visit.site.time_zone)
    start, end = visit.expected_start.astimezone(zone), visit.expected_end.astimezone(zone)
    text = f"{start:%H:%M}–{end:%H:%M} {end.tzname()}"
    return f"{start:%a %-d %b}, {text}" if with_date else text


@bp.app_template_filter("initials")
def initials(name: str) -> str:
    """ "AK" for "Anna Kowalski", "王" for "王小明": the first letter of the first and last word
    (punctuation and markup a visitor typed are skipped)."""
    words = [w for w in (name or "").split() if any(c.isalnum() for c in w)]
    if not words:
        return "?"
    first = next(c for c in words[0] if c.isalnum())
    last = next(c for c in words[-1] if c.isalnum()) if len(words) > 1 else ""
    return (first + last).upper()


@bp.app_template_filter("site_time")
def site_time(instant: datetime | None, site: Site, with_date: bool = False) -> str:
    """An instant as the office's clock shows it: "10:04" (or "Tue 1 Dec, 10:04")."""
    if instant is None:
        return "—"
    local = instant.astimezone(ZoneInfo(site.time_zone))
    return local.strftime("%a %-d %b, %H:%M" if with_date else "%H:%M")


# ---------------------------------------------------------------------------------------------
# My visitors


@bp.get("/")
@login_required
def index() -> Response:
    now = utcnow()
    today: list[Visit] = []
    upcoming: list[Visit] = []
    past: list[Visit] = []
    for visit in visitors.hosted_by(db(), current_user, now=now):
        day = visitors.today_at(visit.site, now)
        if visit.local_date == day:
            today.append(visit)
        elif visit.local_date > day:
            upcoming.append(visit)
        else:
            past.append(visit)
    today.sort(key=lambda v: (v.expected_start, v.id))
    upcoming.sort(key=lambda v: (v.expected_start, v.id))
    return htmx.render("visitors/index.html", today=today, upcoming=upcoming, past=past, now=now)


# ---------------------------------------------------------------------------------------------
# Inviting


class InviteForm(FlaskForm):
    """Shape only (lengths, a parseable date); the rules (e-mail, times in the future, the
    longest visit) are the service's, mapped back onto these fields."""

    name = StringField(
        "Visitor's full name",
        [Length(max=visitors.NAME_MAX, message=f"Use at most {visitors.NAME_MAX} characters.")],
        render_kw={"autocomplete": "off", "maxlength": visitors.NAME_MAX},
    )
    email = StringField(
        "E-mail",
        [Length(max=254, message="That e-mail address is too long.")],
        render_kw={
            "type": "email",
            "autocomplete": "off",
            "maxlength": 254,
            "spellcheck": "false",
            "placeholder": "name@company.com",
        },
    )
    company = StringField(
        "Company (optional)",
        [
            Length(
                max=visitors.COMPANY_MAX, message=f"Use at most {visitors.COMPANY_MAX} characters."
            )
        ],
        render_kw={"autocomplete": "off", "maxlength": visitors.COMPANY_MAX},
    )
    site = SelectField("Office", coerce=int)
    day = DateField("Day", [Optional()])
    start_time = StringField("Arrives", render_kw={"type": "time", "step": 300})
    end_time = StringField("Leaves", render_kw={"type": "time", "step": 300})
    note = TextAreaField(
        "Note to your visitor (optional)",
        [Length(max=visitors.NOTE_MAX, message=f"Use at most {visitors.NOTE_MAX:,} characters.")],
        render_kw={"rows": 3, "maxlength": visitors.NOTE_MAX},
    )
    idempotency_key = HiddenField()


def _sites() -> list[Site]:
    return list(db().scalars(select(Site).order_by(Site.name)))


def _invite_form(formdata: Any = None) -> InviteForm:
    form = InviteForm() if formdata is None else InviteForm(formdata=formdata)
    form.site.choices = [(s.id, f"{s.name}") for s in _sites()]
    return form


def _default_day(site: Site, now: datetime) -> date:
    """Today while a 10:00 arrival is still comfortably ahead, else the next open day."""
    local = now.astimezone(ZoneInfo(site.time_zone))
    day = local.date()
    if local.time() >= time(9, 30) or str(day.isoweekday()) not in site.open_weekdays:
        day = next_open_day(site, day + timedelta(days=1))
    return day


def _prefilled_form() -> InviteForm:
    form = _invite_form(formdata=None)
    sites = _sites()
    home = current_user.home_site or (sites[0] if sites else None)
    wanted = request.args.get("site", type=db_int)
    site = next((s for s in sites if s.id == wanted), home)
    if site is not None:
        form.site.data = site.id
        form.day.data = _default_day(site, utcnow())
    form.start_time.data = DEFAULT_START.strftime("%H:%M")
    form.end_time.data = DEFAULT_END.strftime("%H:%M")
    form.idempotency_key.data = new_idempotency_key()
    return form


def _render_invite(form: InviteForm, status: int = 200, problem: str = "") -> Response:
    sites = {s.id: s for s in _sites()}
    return htmx.render(
        "visitors/invite.html",
        "visitors/_invite_form.html",
        status=status,
        form=form,
        problem=problem,
        sites=sites,
        chosen=sites.get(form.site.data) if form.site.data else None,
    )


@bp.get("/invite")
@login_required
def invite_form() -> Response:
    return _render_invite(_prefilled_form())


def _invited_with(key: str) -> Visit | None:
    if not key:
        return None
    return db().scalar(
        select(Visit).where(
            Visit.submission_key == INVITE_KEY_PREFIX + key,
            Visit.created_by_id == current_user.id,
        )
    )


@bp.post("/invite")
@login_required
def invite() -> Response:
    form = _invite_form()
    if not form.validate():
        return _render_invite(form, 422)
    key = (form.idempotency_key.data or "")[:40]
    earlier = _invited_with(key)
    if earlier is not None:  # a double click or a retry: the first answer again
        return _render_invited(earlier, code=None)
    site = db().get(Site, form.site.data)
    if site is None:
        abort(404)
    details = visitors.VisitorDetails.from_form(form.name.data, form.email.data, form.company.data)
    try:
        with db().begin_nested():
            visit, code = visitors.invite(
                db(),
                actor(),
                current_user,
                site=site,
                details=details,
                day=form.day.data,
                start_time=form.start_time.data or "",
                end_time=form.end_time.data or "",
                note=form.note.data or "",
                now=utcnow(),
            )
            visit.submission_key = INVITE_KEY_PREFIX + key if key else None
            db().flush()
    except RuleViolation as violation:
        problem = apply_violation(form, violation)
        return _render_invite(form, 422, problem)
    except IntegrityError:  # the twin of this request committed first
        earlier = _invited_with(key)
        if earlier is None:
            raise
        return _render_invited(earlier, code=None)
    commit()
    return _render_invited(visit, code=code)


def _render_invited(visit: Visit, code: str | None) -> Response:
    return htmx.render("visitors/invited.html", "visitors/_invited.html", visit=visit, code=code)


# ---------------------------------------------------------------------------------------------
# One visit


@dataclass(frozen=True)
class Step:
    """One line of a visit's timeline."""

    title: str
    when: datetime | None
    detail: str = ""
    tone: str = "done"  # done | current | problem | muted


def _timeline(visit: Visit, may_see_security: bool) -> list[Step]:
    steps: list[Step] = []
    creator = db().get(User, visit.created_by_id) if visit.created_by_id else None
    if visit.kind == VisitKind.INVITED:
        by = creator.name if creator else visit.host.name
        steps.append(
            Step("Invited", visit.created_at, f"by {by}; the e-mail with the code was sent")
        )
    else:
        steps.append(Step("Walked in", visit.created_at, "registered at the kiosk"))
    if visit.status == VisitStatus.EXPECTED:
        steps.append(Step("Expected", visit.expected_start, "waiting for the visitor", "current"))
    if visit.status == VisitStatus.CANCELLED:
        steps.append(
            Step("Invitation cancelled", visit.updated_at, "the code stopped working", "muted")
        )
    if visit.status == VisitStatus.DENIED:
        detail = "Asked to see reception; no badge was printed."
        if may_see_security and visit.denied_by_entry_id:
            entry = db().get(DenyListEntry, visit.denied_by_entry_id)
            if entry is not None:
                detail = f"Matched the deny list ({entry.reason or 'no reason given'}). " + detail
        steps.append(Step("Stopped at the kiosk", visit.updated_at, detail, "problem"))
    if visit.checked_in_at:
        device = (
            db().get(KioskDevice, visit.checked_in_device_id)
            if visit.checked_in_device_id
            else None
        )
        where = f"at the {device.name} kiosk" if device else "at the kiosk"
        steps.append(Step("Checked in", visit.checked_in_at, where))
    if visit.signed_at:
        version = f"version {visit.agreement.version}" if visit.agreement else "the agreement"
        title = visit.agreement.title if visit.agreement else ""
        steps.append(
            Step("Signed", visit.signed_at, f"{title} ({version}) as “{visit.signed_name}”")
        )
    if visit.status == VisitStatus.CHECKED_IN:
        steps.append(Step("On site", None, "until checked out", "current"))
    if visit.checked_out_at:
        how = {
            CheckoutMethod.KIOSK: "at the kiosk",
            CheckoutMethod.HOST: "by the host",
            CheckoutMethod.COORDINATOR: "by reception",
            CheckoutMethod.END_OF_DAY: "automatically when the office closed",
        }.get(visit.checkout_method or "", "")
        steps.append(Step("Checked out", visit.checked_out_at, how))
    if visit.erased_at:
        steps.append(
            Step(
                "Personal data erased",
                visit.erased_at,
                f"after the office's retention period of {visit.site.visitor_retention_days} days",
                "muted",
            )
        )
    return steps


def _image_kinds(visit: Visit) -> set[str]:
    return set(db().scalars(select(VisitImage.kind).where(VisitImage.visit_id == visit.id)))


def badge_printable(visit: Visit) -> bool:
    return visit.erased_at is None and visit.status in (
        VisitStatus.EXPECTED,
        VisitStatus.CHECKED_IN,
    )


def _render_detail(visit: Visit, status: int = 200, problem: str = "") -> Response:
    if status >= 400 and htmx.wants_fragment():
        # the buttons post with htmx: a whole page would land inside the button's form
        return error_response(status, problem or None)
    device = (
        db().get(KioskDevice, visit.checked_in_device_id) if visit.checked_in_device_id else None
    )
    coordinator = coordinates_site(current_user, visit.site_id)
    return htmx.render(
        "visitors/detail.html",
        status=status,
        v=visit,
        steps=_timeline(visit, coordinator),
        images=_image_kinds(visit),
        device=device,
        problem=problem,
        is_host=visit.host_id == current_user.id,
        coordinator=coordinator,
        printable=badge_printable(visit),
        stocks=_stocks(),
        stock=_stock_for(visit, device),
    )


@bp.get("/<int:visit_id>")
@login_required
def detail(visit_id: int) -> Response:
    return _render_detail(_visible_or_404(visit_id))


def _done(visit: Visit, message: str) -> Response:
    commit()
    flash(message, "success")
    return htmx.redirect_to(
        safe_next(request.form.get("next")) or url_for("visitors.detail", visit_id=visit.id)
    )


@bp.post("/<int:visit_id>/cancel")
@login_required
def cancel(visit_id: int) -> Response:
    visit = _visible_or_404(visit_id)
    try:
        visitors.cancel_invitation(db(), actor(), visit, now=utcnow())
    except RuleViolation as violation:
        db().rollback()
        return _render_detail(_visible_or_404(visit_id), 422, violation.message)
    return _done(visit, f"The invitation for {visit.visitor_name} is cancelled; they were told.")


@bp.post("/<int:visit_id>/check-out")
@login_required
def check_out(visit_id: int) -> Response:
    visit = _visible_or_404(visit_id)
    method = CheckoutMethod.HOST if visit.host_id == current_user.id else CheckoutMethod.COORDINATOR
    if not visitors.check_out(db(), actor(), visit, method, now=utcnow()):
        db().rollback()
        return _render_detail(
            _visible_or_404(visit_id), 422, f"{visit.visitor_name} is not checked in."
        )
    return _done(visit, f"{visit.visitor_name} is checked out.")


@bp.post("/<int:visit_id>/reprint")
@login_required
def reprint(visit_id: int) -> Response:
    visit = _visible_or_404(visit_id)
    device = (
        db().get(KioskDevice, visit.checked_in_device_id) if visit.checked_in_device_id else None
    )
    if visit.status != VisitStatus.CHECKED_IN or device is None or not device.printer_uri:
        return _render_detail(
            visit, 422, "There is no label printer for this visit: print the badge in the browser."
        )
    from portal.services import lobby_printing  # the printer client loads only when printing

    lobby_printing.reprint(db(), visit)
    return _done(visit, f"The badge is on its way to the {device.name} printer.")


# ---------------------------------------------------------------------------------------------
# Badges: printed from the browser, or as a PDF


def _stocks() -> dict[str, Any]:
    from portal.services.badges import LABEL_STOCKS

    return dict(LABEL_STOCKS)


def _stock_for(visit: Visit, device: KioskDevice | None) -> str:
    wanted = request.args.get("stock", "")
    stocks = _stocks()
    if wanted in stocks:
        return wanted
    if device is not None and device.label_stock in stocks:
        return device.label_stock
    return "a4" if "a4" in stocks else next(iter(stocks))


def _badge_content(visit: Visit) -> Any:
    from portal.services import lobby_printing

    return lobby_printing.badge_content(visit, secret_key())


def _printable_or_404(visit_id: int) -> tuple[Visit, KioskDevice | None]:
    visit = _visible_or_404(visit_id)
    if not badge_printable(visit):
        abort(404)
    device = (
        db().get(KioskDevice, visit.checked_in_device_id) if visit.checked_in_device_id else None
    )
    return visit, device


@bp.get("/<int:visit_id>/badge")
@login_required
def badge(visit_id: int) -> Response:
    """The label as a page to print from the browser: the badge's own document (the same HTML
    the PDF is made from), with a toolbar that is not printed."""
    from portal.services.badges import render_label_html

    visit, device = _printable_or_404(visit_id)
    stock = _stock_for(visit, device)
    document = render_label_html(
        _badge_content(visit), stock, stylesheet_href=url_for("visitors.label_css")
    )
    toolbar = render_template(
        "visitors/_badge_toolbar.html", v=visit, stock=stock, stocks=_stocks()
    )
    head_extra = (
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="{escape(url_for("static", filename="img/foyer-mark.svg"))}"'
        ' type="image/svg+xml">'
        f'<link rel="stylesheet" href="{escape(url_for("static", filename="css/visitors.css"))}">'
        f'<script src="{escape(url_for("static", filename="js/visitors.js"))}" defer></script>'
    )
    document = document.replace("</head>", head_extra + "</head>", 1)
    document = re.sub(r"(<body[^>]*>)", lambda m: m[1] + toolbar, document, count=1)
    response = make_response(document)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/<int:visit_id>/badge.pdf")
@login_required
def badge_pdf(visit_id: int) -> Response:
    from portal.services.badges import render_label_pdf

    visit, device = _printable_or_404(visit_id)
    pdf = render_label_pdf(_badge_content(visit), _stock_for(visit, device))
    response = make_response(pdf)
    response.mimetype = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="visitor-badge-{visit.id}.pdf"'
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/label.css")
@login_required
def label_css() -> Response:
    from portal.services.badges import label_stylesheet

    response = make_response(label_stylesheet())
    response.mimetype = "text/css"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# ---------------------------------------------------------------------------------------------
# Signature and photo


@bp.get("/<int:visit_id>/images/<kind>")
@login_required
def image(visit_id: int, kind: str) -> Response:
    """A visitor's signature or photo: personal data, so checked per request, never cached, and
    served so that a browser can only ever show it as an image."""
    if kind not in IMAGE_KINDS:
        abort(404)
    visit = _visible_or_404(visit_id)
    stored = db().scalar(
        select(VisitImage).where(VisitImage.visit_id == visit.id, VisitImage.kind == kind)
    )
    if stored is None or stored.content_type not in IMAGE_KINDS.values():
        abort(404)
    response = make_response(stored.data)
    response.mimetype = stored.content_type
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = IMAGE_POLICY
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
