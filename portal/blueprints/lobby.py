"""The lobby, for a site's coordinators (admins: every site): the visitor log with search,
filters and a CSV export, checking visitors out, and the roll call of who is on site now, made
for a phone in one hand during an evacuation and for paper."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional

from portal import htmx
from portal.blueprints.context import actor, default_site, managed_site_or_404, managed_sites
from portal.db import utcnow
from portal.errors import RuleViolation
from portal.login import safe_next
from portal.models import CheckoutMethod, Role, Site, Visit, VisitStatus
from portal.permissions import coordinates_site, load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import visitors
from portal.services.spreadsheets import csv_safe

bp = Blueprint("lobby", __name__, url_prefix="/lobby")

PAGE_SIZE = 50
EXPORT_CHUNK = 1000
STATUS_CHOICES = [
    ("", "Any status"),
    (VisitStatus.EXPECTED.value, "Expected"),
    (VisitStatus.CHECKED_IN.value, "On site"),
    (VisitStatus.CHECKED_OUT.value, "Checked out"),
    (VisitStatus.CANCELLED.value, "Cancelled"),
    (VisitStatus.DENIED.value, "Stopped at the kiosk"),
]


# ---------------------------------------------------------------------------------------------
# Which sites: shared with the kiosk and visitor-settings admin pages


def _no_site() -> Response:
    return htmx.render("lobby/no_site.html", status=404)


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    site = default_site(managed_sites())
    if site is None:
        return _no_site()
    return redirect(url_for("lobby.log", site_id=site.id))


# ---------------------------------------------------------------------------------------------
# The visitor log


class LogForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField(
        "Search",
        [Length(max=100, message="Use at most 100 characters.")],
        render_kw={"placeholder": "Name, e-mail, company", "type": "search"},
    )
    day_from = DateField("From", [Optional()])
    day_to = DateField("To", [Optional()])
    host = StringField(
        "Host",
        [Length(max=100, message="Use at most 100 characters.")],
        render_kw={"placeholder": "Any host"},
    )
    status = SelectField("Status", choices=STATUS_CHOICES, default="")


def _log_form(site: Site) -> tuple[LogForm, visitors.LogFilter | None]:
    """The filters from the query string (today when there are none), and the LogFilter they
    make, or None when they need correcting."""
    if request.args:
        form = LogForm(request.args)
    else:
        today = visitors.today_at(site, utcnow())
        form = LogForm(formdata=None, day_from=today, day_to=today)
    ok = form.validate() if request.args else True
    if ok and form.day_from.data and form.day_to.data and form.day_to.data < form.day_from.data:
        form.day_to.errors = ["The end is before the start."]
        ok = False
    if not ok:
        return form, None
    return form, visitors.LogFilter(
        day_from=form.day_from.data,
        day_to=form.day_to.data,
        host=(form.host.data or "").strip(),
        status=form.status.data or "",
        text=(form.q.data or "").strip(),
    )


def _page() -> int:
    page = request.args.get("page", 1, type=int) or 1
    return min(max(page, 1), 10_000)


def _query_args(form: LogForm, **extra: object) -> dict[str, object]:
    """The filters as query arguments, for links that keep them (pages, export)."""
    args: dict[str, object] = {
        "q": form.q.data or None,
        "day_from": form.day_from.data.isoformat() if form.day_from.data else "",
        "day_to": form.day_to.data.isoformat() if form.day_to.data else "",
        "host": form.host.data or None,
        "status": form.status.data or None,
    }
    args.update(extra)
    return args


def _presets(site: Site) -> list[tuple[str, dict[str, str]]]:
    today = visitors.today_at(site, utcnow())
    iso = date.isoformat
    return [
        ("Today", {"day_from": iso(today), "day_to": iso(today)}),
        ("Upcoming", {"day_from": iso(today + timedelta(days=1)), "day_to": ""}),
        ("Last 7 days", {"day_from": iso(today - timedelta(days=6)), "day_to": iso(today)}),
        ("Last 30 days", {"day_from": iso(today - timedelta(days=29)), "day_to": iso(today)}),
        ("All", {"day_from": "", "day_to": ""}),
    ]


def _today_counts(site: Site) -> dict[str, int]:
    rows = db().execute(
        select(Visit.status, func.count(Visit.id))
        .where(Visit.site_id == site.id, Visit.local_date == visitors.today_at(site, utcnow()))
        .group_by(Visit.status)
    )
    return {status: count for status, count in rows}


@bp.get("/sites/<int:site_id>/")
@role_required(Role.COORDINATOR)
def log(site_id: int) -> Response:
    site = managed_site_or_404(site_id)
    form, flt = _log_form(site)
    page = _page()
    rows: list[Visit] = []
    if flt is not None:
        rows = visitors.visitor_log(
            db(), site, flt, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
    return htmx.render(
        "lobby/log.html",
        "lobby/_log.html",
        status=200 if flt is not None else 422,
        site=site,
        sites=managed_sites(),
        form=form,
        visits=rows[:PAGE_SIZE],
        page_no=page,
        has_next=len(rows) > PAGE_SIZE,
        first=(page - 1) * PAGE_SIZE + 1,
        query=_query_args(form),
        presets=_presets(site),
        counts=_today_counts(site),
        here=request.full_path.rstrip("?"),
    )


# CSV export ----------------------------------------------------------------------------------

CSV_COLUMNS = [
    "Date",
    "Expected from",
    "Expected until",
    "Visitor",
    "E-mail",
    "Company",
    "Host",
    "Kind",
    "Status",
    "Checked in",
    "Checked out",
    "Checked out by",
    "Agreement version",
    "Signed as",
]


# A cell that starts with one of these is a formula to Excel, LibreOffice and Google Sheets.
def _csv_row(visit: Visit) -> list[str]:
    zone = ZoneInfo(visit.site.time_zone)

    def clock(instant: object) -> str:
        return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M") if instant else ""  # type: ignore[attr-defined]

    return [
        csv_safe(cell)
        for cell in (
            visit.local_date.isoformat(),
            clock(visit.expected_start),
            clock(visit.expected_end),
            visit.visitor_name if not visit.erased_at else "(erased)",
            visit.visitor_email,
            visit.visitor_company,
            visit.host.name,
            visit.kind.replace("_", "-"),
            visit.status.replace("_", " "),
            clock(visit.checked_in_at),
            clock(visit.checked_out_at),
            (visit.checkout_method or "").replace("_", " "),
            visit.agreement.version if visit.agreement_id and visit.agreement else "",
            visit.signed_name,
        )
    ]


@bp.get("/sites/<int:site_id>/visitors.csv")
@role_required(Role.COORDINATOR)
def export(site_id: int) -> Response:
    site = managed_site_or_404(site_id)
    form, flt = _log_form(site)
    if flt is None:
        flash("Correct the filters to export the log.", "error")
        return redirect(url_for("lobby.log", site_id=site.id, **_query_args(form)))

    # Written whole before answering: the request's database session ends with the view.
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel reads UTF-8 (names in any script) only with a BOM
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    offset = 0
    while True:
        chunk = visitors.visitor_log(db(), site, flt, limit=EXPORT_CHUNK, offset=offset)
        for visit in chunk:
            writer.writerow(_csv_row(visit))
            db().expunge(visit)  # a year of visits need not stay in the session
        if len(chunk) < EXPORT_CHUNK:
            break
        offset += EXPORT_CHUNK

    span = "-".join(d.isoformat() for d in (flt.day_from, flt.day_to) if d) or "all"
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="visitors-{site.slug}-{span}.csv"'
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# Checking out from the log -------------------------------------------------------------------


@bp.post("/visits/<int:visit_id>/check-out")
@role_required(Role.COORDINATOR)
def check_out(visit_id: int) -> Response:
    visit = load_or_404(db(), Visit, visit_id, lambda user, v: coordinates_site(user, v.site_id))
    done = visitors.check_out(db(), actor(), visit, CheckoutMethod.COORDINATOR, now=utcnow())
    if done:
        commit()
        flash(f"{visit.visitor_name} is checked out.", "success")
    else:
        db().rollback()
        visit = db().get(Visit, visit_id) or visit
        flash(f"{visit.visitor_name} was not checked in; nothing changed.", "info")
    if htmx.wants_fragment():
        return htmx.render("lobby/_log_row.html", v=visit, here=request.form.get("next", ""))
    return htmx.redirect_to(
        safe_next(request.form.get("next")) or url_for("lobby.log", site_id=visit.site_id)
    )


# ---------------------------------------------------------------------------------------------
# Roll call


@bp.get("/roll-call")
@role_required(Role.COORDINATOR)
def roll_call_home() -> Response:
    """The header's one-tap link: straight to the person's own site when there is one to pick."""
    sites = managed_sites()
    home = next((s for s in sites if s.id == current_user.home_site_id), None)
    if home is not None or len(sites) == 1:
        return redirect(url_for("lobby.roll_call", site_id=(home or sites[0]).id))
    if not sites:
        return _no_site()
    return htmx.render("lobby/roll_call_sites.html", sites=sites)


def _render_roll_call(site: Site, status: int = 200) -> Response:
    return htmx.render(
        "lobby/roll_call.html",
        "lobby/_roll_call.html",
        status=status,
        site=site,
        sites=managed_sites(),
        rc=visitors.roll_call(db(), site, now=utcnow()),
        now=utcnow(),
    )


@bp.get("/sites/<int:site_id>/roll-call")
@role_required(Role.COORDINATOR)
def roll_call(site_id: int) -> Response:
    return _render_roll_call(managed_site_or_404(site_id))


@bp.post("/sites/<int:site_id>/roll-call")
@role_required(Role.COORDINATOR)
def mark(site_id: int) -> Response:
    """Tap a person: accounted for, or (tapped again) not."""
    site = managed_site_or_404(site_id)
    subject = request.form.get("subject", "")[:40]
    accounted = request.form.get("accounted") == "1"
    now = utcnow()
    before = visitors.roll_call(db(), site, now=now)
    if not any(p.subject == subject for p in before.visitors + before.employees):
        flash("That person is no longer on site; the list is up to date now.", "info")
        if htmx.is_htmx():
            return htmx.refresh(200)
        return redirect(url_for("lobby.roll_call", site_id=site.id), code=303)
    try:
        visitors.mark_accounted(db(), actor(), site, subject, accounted, now=now)
    except RuleViolation:
        db().rollback()
        flash("That person is no longer on site; the list is up to date now.", "info")
        return htmx.redirect_to(url_for("lobby.roll_call", site_id=site.id))
    commit()
    if not htmx.wants_fragment():
        return redirect(
            url_for("lobby.roll_call", site_id=site.id, _anchor=subject.replace(":", "-")),
            code=303,
        )
    after = visitors.roll_call(db(), site, now=now)
    person = next(p for p in after.visitors + after.employees if p.subject == subject)
    return htmx.render("lobby/_roll_mark.html", site=site, rc=after, person=person, now=now)
