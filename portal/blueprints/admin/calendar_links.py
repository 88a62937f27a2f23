"""Room calendars (admins; coordinators for their own sites): which rooms and desks are linked to a
calendar on a CalDAV server, Microsoft 365 or Google, each link's sync status and last error; link,
edit, pause or remove one, "Sync now" and "Test connection". The password or key is write-only: the
form never shows it back."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import Length

from integrations.calendar_sync import adapters
from integrations.calendar_sync.base import SyncError
from portal import htmx
from portal.blueprints.context import actor, managed_sites
from portal.db import utcnow
from portal.errors import RuleViolation
from portal.limits import limiter
from portal.models import Resource, Role
from portal.models.calendar_sync import CalendarLink
from portal.permissions import coordinates_site, load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import calendar_sync

bp = Blueprint("calendar_links", __name__, url_prefix="/calendars")

_LONG = [Length(max=300, message="Use at most 300 characters.")]
_PLAIN = {"spellcheck": "false", "autocomplete": "off"}


class LinkForm(FlaskForm):
    resource = SelectField("Room or desk", coerce=int)
    provider = SelectField(
        "Calendar system",
        choices=[(key, spec.label) for key, spec in adapters.PROVIDERS.items()],
    )
    caldav_url = StringField("Calendar address", _LONG, render_kw=_PLAIN)
    caldav_username = StringField("User name", _LONG, render_kw=_PLAIN)
    m365_tenant_id = StringField("Tenant (directory) ID", _LONG, render_kw=_PLAIN)
    m365_client_id = StringField("Application (client) ID", _LONG, render_kw=_PLAIN)
    m365_mailbox = StringField("Room mailbox", _LONG, render_kw=_PLAIN)
    m365_login_base = StringField("Sign-in address (optional)", _LONG, render_kw=_PLAIN)
    m365_graph_base = StringField("Graph address (optional)", _LONG, render_kw=_PLAIN)
    google_calendar_id = StringField("Calendar ID", _LONG, render_kw=_PLAIN)
    google_api_base = StringField("Calendar API address (optional)", _LONG, render_kw=_PLAIN)
    # Never rendered with its value (PasswordField), so a stored secret cannot leak into a page.
    secret = PasswordField(
        "Password or key",
        [Length(max=20_000, message="That is too long for a password or key.")],
        render_kw={"autocomplete": "new-password"},
    )

    def provider_values(self, provider: str) -> dict[str, str]:
        spec = adapters.PROVIDERS.get(provider)
        if spec is None:
            return {}
        return {f.name: getattr(self, f"{provider}_{f.name}").data or "" for f in spec.fields}

    def fill_from(self, link: CalendarLink) -> None:
        for spec_field in adapters.PROVIDERS[link.provider].fields:
            getattr(self, f"{link.provider}_{spec_field.name}").data = (link.settings or {}).get(
                spec_field.name, ""
            )


def _resources() -> list[Resource]:
    site_ids = [s.id for s in managed_sites()]
    return list(
        db().scalars(
            select(Resource)
            .where(Resource.site_id.in_(site_ids or [0]), Resource.active.is_(True))
            .order_by(Resource.site_id, Resource.kind.desc(), Resource.name)
        )
    )


def _form(link: CalendarLink | None = None, formdata: bool = True) -> LinkForm:
    form = LinkForm() if formdata else LinkForm(formdata=None)
    resources = _resources()
    if link is not None and all(r.id != link.resource_id for r in resources):
        resources.append(link.resource)
    form.resource.choices = [
        (r.id, f"{str(r.kind).capitalize()} {r.name} · {r.site.name}") for r in resources
    ]
    if link is not None and not formdata:
        form.resource.data = link.resource_id
        form.provider.data = link.provider
        form.fill_from(link)
    return form


def _managed_or_404(link_id: int) -> CalendarLink:
    return load_or_404(
        db(), CalendarLink, link_id, lambda u, link: coordinates_site(u, link.resource.site_id)
    )


def _key() -> bytes:
    return current_app.extensions["foyer.settings"].secret_key.encode()


def _site_ids() -> set[int] | None:
    return None if current_user.is_admin else {s.id for s in managed_sites()}


def _render_index(form: LinkForm, status: int = 200) -> Response:
    return htmx.render(
        "admin/calendar_links/index.html",
        "admin/calendar_links/_form.html",
        status=status,
        links=calendar_sync.links_for(db(), _site_ids()),
        form=form,
        link=None,
        providers=adapters.PROVIDERS,
        now=utcnow(),
    )


def _render_link(link: CalendarLink, form: LinkForm | None = None, status: int = 200) -> Response:
    return htmx.render(
        "admin/calendar_links/link.html",
        "admin/calendar_links/_form.html",
        status=status,
        link=link,
        form=form or _form(link, formdata=False),
        providers=adapters.PROVIDERS,
        now=utcnow(),
    )


def _apply_violation(form: LinkForm, provider: str, violation: RuleViolation) -> None:
    for name, message in violation.errors.items():
        field = getattr(form, f"{provider}_{name}", None) or getattr(form, name, None)
        (field or form.resource).errors = [message]


def _save(form: LinkForm, link: CalendarLink | None) -> CalendarLink | None:
    """Validate and save; None (with the messages on the form) when refused."""
    if not form.validate():
        return None
    resource = db().get(Resource, form.resource.data or 0)
    if resource is None or not coordinates_site(current_user, resource.site_id):
        form.resource.errors = ["Choose a room or desk of a site you look after."]
        return None
    provider = form.provider.data or ""
    try:
        saved = calendar_sync.save_link(
            db(),
            actor(),
            _key(),
            resource=resource,
            provider=provider,
            settings=form.provider_values(provider),
            secret=form.secret.data or "",
            link=link,
            now=utcnow(),
        )
    except RuleViolation as violation:
        db().rollback()
        _apply_violation(form, provider, violation)
        return None
    commit()
    return saved


@bp.get("/")
@role_required(Role.COORDINATOR)
def index() -> Response:
    return _render_index(_form())


@bp.post("/")
@role_required(Role.COORDINATOR)
def create() -> Response:
    form = _form()
    link = _save(form, None)
    if link is None:
        return _render_index(form, 422)
    flash(f"{link.resource.name} is linked. The first sync runs in a moment.", "success")
    return htmx.redirect_to(url_for("admin.calendar_links.link", link_id=link.id))


@bp.get("/<int:link_id>")
@role_required(Role.COORDINATOR)
def link(link_id: int) -> Response:
    return _render_link(_managed_or_404(link_id))


@bp.post("/<int:link_id>")
@role_required(Role.COORDINATOR)
def update(link_id: int) -> Response:
    existing = _managed_or_404(link_id)
    form = _form(existing)
    saved = _save(form, existing)
    if saved is None:
        return _render_link(_managed_or_404(link_id), form, 422)
    flash("Saved. The calendar syncs again in a moment.", "success")
    return htmx.redirect_to(url_for("admin.calendar_links.link", link_id=saved.id))


@bp.post("/<int:link_id>/sync")
@role_required(Role.COORDINATOR)
@limiter.limit("20 per minute")
def sync_now(link_id: int) -> Response:
    link = _managed_or_404(link_id)
    if link.state == "paused":
        flash("This link is paused: resume it to sync.", "error")
        return htmx.redirect_to(url_for("admin.calendar_links.link", link_id=link.id))
    commit()  # no transaction stays open while we talk to the calendar server
    result = calendar_sync.sync_link(db(), _key(), link_id, now=utcnow(), force=True)
    if result.skipped:
        flash("A sync of this calendar is already running.", "info")
    elif result.ok:
        parts = [
            f"{count} {label}"
            for count, label in (
                (result.pushed, "sent to the calendar"),
                (result.removed, "removed from it"),
                (result.booked, "booked from it"),
                (result.changed, "changed"),
                (result.cancelled, "cancelled"),
                (result.declined, "declined"),
            )
            if count
        ]
        flash("Synced: " + (", ".join(parts) if parts else "nothing had changed") + ".", "success")
    else:
        flash(f"The sync failed: {result.error}", "error")
    return htmx.redirect_to(url_for("admin.calendar_links.link", link_id=link_id))


@bp.post("/<int:link_id>/test")
@role_required(Role.COORDINATOR)
@limiter.limit("20 per minute")
def test(link_id: int) -> Response:
    link = _managed_or_404(link_id)
    try:
        adapter = adapters.adapter_for(link, _key())
        db().rollback()  # nothing to write; hold no transaction during the network call
        flash(calendar_sync.test_connection(adapter), "success")
    except SyncError as exc:
        flash(f"The connection failed: {exc}", "error")
    except (TypeError, ValueError) as exc:
        flash(f"The connection failed: {exc}", "error")
    return htmx.redirect_to(url_for("admin.calendar_links.link", link_id=link_id))


@bp.post("/<int:link_id>/pause")
@role_required(Role.COORDINATOR)
def pause(link_id: int) -> Response:
    link = _managed_or_404(link_id)
    paused = request.form.get("paused", "1") == "1"
    calendar_sync.set_paused(db(), actor(), link, paused, now=utcnow())
    commit()
    flash("Paused: nothing syncs until you resume." if paused else "Resumed.", "success")
    return htmx.redirect_to(url_for("admin.calendar_links.link", link_id=link_id))


@bp.post("/<int:link_id>/remove")
@role_required(Role.COORDINATOR)
def remove(link_id: int) -> Response:
    link = _managed_or_404(link_id)
    name = link.resource.name
    calendar_sync.remove_link(db(), actor(), link)
    commit()
    flash(f"{name} is no longer linked. Its bookings and the calendar's events stay.", "success")
    return htmx.redirect_to(url_for("admin.calendar_links.index"))
