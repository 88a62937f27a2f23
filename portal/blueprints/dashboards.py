"""Coordinator dashboards: the hub, one page per dashboard with its filter bar, and downloads (CSV,
XLSX, and the raw bookings as a streamed CSV). Coordinators see only their sites; admins all."""

from __future__ import annotations

import os
from datetime import date

from flask import Blueprint, Response, abort, current_app, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField

from portal import htmx
from portal.blueprints.context import default_site, managed_sites
from portal.db import utcnow
from portal.errors import NotFound, RuleViolation
from portal.models import Floor, Role, Site
from portal.permissions import role_required
from portal.request_scope import db
from portal.services import dashboards
from portal.services.dashboards import exports, rollups
from portal.services.dashboards.desks import UNUSED_CHOICES
from portal.services.dashboards.period import Period, default_period, make_period, quick_ranges
from portal.services.dashboards.scope import Scope, resolve_scope

bp = Blueprint("dashboards", __name__, url_prefix="/dashboards")


class FilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    site = SelectField("Site", choices=[], validate_choice=False)
    floor = SelectField("Floor", choices=[], validate_choice=False)
    day_from = DateField("From")
    day_to = DateField("To")


def _dashboard_or_404(slug: str) -> dashboards.Dashboard:
    dashboard = dashboards.DASHBOARDS.get(slug)
    if dashboard is None:
        abort(404)
    return dashboard


def _scope(managed: list[Site]) -> Scope:
    floor = None
    floor_arg = request.args.get("floor", "")
    if floor_arg:
        try:
            floor = db().get(Floor, int(floor_arg))
        except ValueError:
            floor = None
        if floor is None:
            abort(404)
    try:
        return resolve_scope(managed, request.args.get("site"), floor, default_site(managed))
    except NotFound:
        abort(404)


def _today(scope: Scope) -> date:
    from zoneinfo import ZoneInfo

    return utcnow().astimezone(ZoneInfo(scope.sites[0].time_zone)).date()


def _period(form: FilterForm, today: date) -> Period:
    """The period from the quick range, the dates, or last month; RuleViolation when wrong."""
    quick = {key: period for key, _label, period in quick_ranges(today)}
    if request.args.get("range") in quick:
        return quick[request.args["range"]]
    if "day_from" not in request.args and "day_to" not in request.args:
        return default_period(today)
    form.validate()  # parses the dates; wrong ones become None with the field's own message
    errors: dict[str, str] = {}
    for name in ("day_from", "day_to"):
        if request.args.get(name) and getattr(form, name).data is None:
            errors[name] = "Enter a date as YYYY-MM-DD."
    if errors:
        raise RuleViolation(errors, "bad_date")
    return make_period(form.day_from.data, form.day_to.data, today)


def _prepare(dashboard: dashboards.Dashboard, scope: Scope, period: Period) -> None:
    """Fill missing roll-ups in a short writing transaction of its own, only when needed (a
    reading request on SQLite must not hold the write lock for nothing)."""
    if not dashboard.rollups:
        return
    first = period.previous().first
    if not any(rollups.missing_days(db(), s.id, first, period.last) for s in scope.sites):
        return
    # End the reading transaction first: its next statement starts a fresh snapshot that sees
    # the new roll-ups (SQLite would otherwise keep reading the old one).
    db().commit()
    _reader, writer = current_app.extensions["foyer.sessions"]
    session = writer()
    try:
        dashboards.prepare(session, dashboard, scope, period)
        session.commit()
    finally:
        session.close()


def _filters(dashboard: dashboards.Dashboard, managed: list[Site], scope: Scope) -> FilterForm:
    form = FilterForm(request.args)
    form.site.choices = [(str(s.id), s.name) for s in managed]
    if len(managed) > 1:
        form.site.choices.insert(0, ("all", "All my sites"))
    form.site.data = "all" if scope.all_sites else str(scope.sites[0].id)
    floors: list[tuple[str, str]] = [("", "All floors")]
    if dashboard.uses_floor and not scope.all_sites:
        floors += [
            (str(f.id), f"{b.name} · {f.name}" if len(scope.sites[0].buildings) > 1 else f.name)
            for b in scope.sites[0].buildings
            for f in b.floors
        ]
    form.floor.choices = floors
    form.floor.data = str(scope.floor.id) if scope.floor else ""
    return form


def _query(scope: Scope, period: Period, **extra: object) -> dict[str, object]:
    args: dict[str, object] = {
        "site": "all" if scope.all_sites else scope.sites[0].id,
        "day_from": period.first.isoformat(),
        "day_to": period.last.isoformat(),
    }
    if scope.floor:
        args["floor"] = scope.floor.id
    args.update({k: v for k, v in extra.items() if v is not None})
    return args


def _unused_days() -> int:
    value = request.args.get("unused", type=int)
    return value if value in UNUSED_CHOICES else 30


def _options(dashboard: dashboards.Dashboard, scope: Scope, period: Period) -> dict[str, object]:
    if dashboard.slug != "desks":
        return {}
    return {
        "unused_days": _unused_days(),
        "floor_link": lambda floor_id: url_for(
            "dashboards.show", slug="desks", **_query(scope, period, floor=floor_id)
        ),
    }


@bp.get("/")
@role_required(Role.COORDINATOR)
def hub() -> Response:
    managed = managed_sites()
    if not managed:
        return htmx.render("dashboards/hub.html", dashboards=[], scope=None, ranges=[])
    scope = resolve_scope(managed, None, None, default_site(managed))
    today = _today(scope)
    return htmx.render(
        "dashboards/hub.html",
        dashboards=list(dashboards.DASHBOARDS.values()),
        scope=scope,
        sites=managed,
        ranges=quick_ranges(today)[:3],
    )


@bp.get("/<slug>")
@role_required(Role.COORDINATOR)
def show(slug: str) -> Response:
    dashboard = _dashboard_or_404(slug)
    managed = managed_sites()
    if not managed:
        abort(404)
    scope = _scope(managed)
    form = _filters(dashboard, managed, scope)
    today = _today(scope)
    context: dict[str, object] = {
        "dashboard": dashboard,
        "form": form,
        "scope": scope,
        "ranges": quick_ranges(today),
        "unused_choices": UNUSED_CHOICES,
        "unused_days": _unused_days(),
    }
    try:
        period = _period(form, today)
    except RuleViolation as error:
        for name, message in error.errors.items():
            getattr(form, name).errors = [message]
        return htmx.render(
            "dashboards/page.html", "dashboards/_body.html", status=422, data=None, **context
        )
    form.day_from.data, form.day_to.data = period.first, period.last
    _prepare(dashboard, scope, period)
    data = dashboards.build(db(), dashboard, scope, period, **_options(dashboard, scope, period))
    return htmx.render(
        "dashboards/page.html",
        "dashboards/_body.html",
        data=data,
        period=period,
        query=_query(scope, period),
        active_range=request.args.get("range", "" if "day_from" in request.args else "last-month"),
        **context,
    )


def _download(slug: str) -> tuple[dashboards.Dashboard, Scope, Period, object]:
    dashboard = _dashboard_or_404(slug)
    managed = managed_sites()
    if not managed:
        abort(404)
    scope = _scope(managed)
    form = FilterForm(request.args)
    try:
        period = _period(form, _today(scope))
    except RuleViolation as error:
        abort(Response("; ".join(error.errors.values()), 422, mimetype="text/plain"))
    _prepare(dashboard, scope, period)
    data = dashboards.build(db(), dashboard, scope, period, **_options(dashboard, scope, period))
    return dashboard, scope, period, data


def _filename(dashboard: str, scope: Scope, period: Period, ext: str) -> str:
    place = "all-sites" if scope.all_sites else scope.sites[0].slug
    if scope.floor:
        place += f"-floor-{scope.floor.id}"
    return f"{dashboard}-{place}-{period.first.isoformat()}-{period.last.isoformat()}.{ext}"


def _attachment(response: Response, filename: str) -> Response:
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/<slug>.csv")
@role_required(Role.COORDINATOR)
def download_csv(slug: str) -> Response:
    dashboard, scope, period, data = _download(slug)
    # A few small tables: written whole while the request's session is open.
    body = "".join(exports.dashboard_csv(dashboard.title, scope, period, data))  # type: ignore[arg-type]
    response = Response(body, mimetype="text/csv")
    return _attachment(response, _filename(dashboard.slug, scope, period, "csv"))


@bp.get("/<slug>.xlsx")
@role_required(Role.COORDINATOR)
def download_xlsx(slug: str) -> Response:
    dashboard, scope, period, data = _download(slug)
    path = exports.dashboard_xlsx(dashboard.title, scope, period, data)  # type: ignore[arg-type]

    def chunks():
        try:
            with open(path, "rb") as handle:
                while block := handle.read(64 * 1024):
                    yield block
        finally:
            os.unlink(path)

    response = Response(
        chunks(), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return _attachment(response, _filename(dashboard.slug, scope, period, "xlsx"))


@bp.get("/bookings.csv")
@role_required(Role.COORDINATOR)
def bookings_csv() -> Response:
    """Every booking of the scope and period, streamed: a year of a busy site is many MB."""
    managed = managed_sites()
    if not managed:
        abort(404)
    scope = _scope(managed)
    try:
        period = _period(FilterForm(request.args), _today(scope))
    except RuleViolation as error:
        abort(Response("; ".join(error.errors.values()), 422, mimetype="text/plain"))
    sites = [exports.ExportSite(s.id, s.name, s.time_zone) for s in scope.sites]
    reader, _writer = current_app.extensions["foyer.sessions"]
    floor_id = scope.floor.id if scope.floor else None
    name = _filename("bookings", scope, period, "csv")
    response = Response(exports.bookings_csv(reader, sites, period, floor_id), mimetype="text/csv")
    return _attachment(response, name)


@bp.context_processor
def chart_helpers() -> dict[str, object]:
    """The pure chart geometry and the formula texts, for the dashboard templates."""
    from portal.services.dashboards.formulas import formula
    from portal.services.dashboards.geometry import layout

    return {"chart_layout": layout, "formula": formula}
