"""Signing in (password or single sign-on) and out."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length

from integrations import oidc
from portal import htmx
from portal.blueprints.context import actor, actor_for
from portal.errors import RuleViolation
from portal.limits import limiter
from portal.login import end_session, safe_next, start_session
from portal.request_scope import commit, db
from portal.services import accounts, audit, sso

bp = Blueprint("auth", __name__)
NEXT_KEY = "sso_next"


class SignInForm(FlaskForm):
    email = EmailField(
        "Work e-mail",
        validators=[DataRequired("Enter your e-mail address."), Length(max=254)],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    next = HiddenField()


def _settings():  # type: ignore[no-untyped-def]
    return current_app.extensions["foyer.settings"]


def _login_limit() -> str:
    return _settings().login_rate_limit


def _email_key() -> str:
    return "sign-in-email:" + request.form.get("email", "").strip().lower()[:254]


def _render_sign_in(form: SignInForm, status: int = 200, error: str | None = None) -> Response:
    ended = session.pop("ended", None)
    return htmx.render(
        "auth/sign_in.html",
        "auth/_sign_in_form.html",
        status=status,
        form=form,
        error=error,
        session_ended=bool(ended),
    )


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit("30 per hour", methods=["POST"], key_func=_email_key)
def login() -> Response:
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")) or url_for("home.my_day"))
    form = SignInForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        return _render_sign_in(form)
    if not _settings().password_login:
        return _render_sign_in(
            form, 403, "Password sign-in is turned off here. Use single sign-on."
        )
    if not form.validate():
        return _render_sign_in(form, 422)
    try:
        user = accounts.authenticate(db(), actor(), form.email.data or "", form.password.data or "")
    except RuleViolation as violation:
        commit()  # keep the audit record of the failed attempt
        for field, message in violation.errors.items():
            getattr(form, field, form.password).errors = [message]
        return _render_sign_in(form, 422)
    accounts.note_sign_in(db(), actor_for(user), user, "password")
    start_session(user, "password")
    commit()
    return htmx.redirect_to(safe_next(form.next.data) or url_for("home.my_day"))


@bp.errorhandler(429)
def too_many_attempts(error: Exception) -> Response:
    form = SignInForm(formdata=None)
    audit.record(db(), actor(), "login.rate_limited", object_type="users")
    commit()
    response = _render_sign_in(
        form, 429, "Too many sign-in attempts. Wait a minute, then try again."
    )
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.get("/sso/start")
@limiter.limit("30 per minute")
def sso_start() -> Response:
    session[NEXT_KEY] = safe_next(request.args.get("next")) or ""
    try:
        return oidc.start_sign_in(url_for("auth.sso_callback", _external=True))
    except oidc.SsoError as error:
        return _sso_failed(error)


@bp.get("/sso/callback")
@limiter.limit("30 per minute")
def sso_callback() -> Response:
    target = safe_next(session.pop(NEXT_KEY, None)) or url_for("home.my_day")
    try:
        group_roles = sso.parse_group_roles(_settings().oidc_group_roles)
    except ValueError as exc:
        # A configuration mistake: say so, rather than a 500 on every sign-in.
        return _sso_failed(
            oidc.SsoError("Single sign-on is not set up correctly here. Tell IT.", 503, str(exc))
        )
    try:
        result = oidc.finish_sign_in()
        user = sso.sign_in_from_claims(
            db(),
            actor(),
            issuer=result.issuer,
            claims=result.claims,
            group_roles=group_roles,
            groups_claim=_settings().oidc_groups_claim,
        )
    except oidc.SsoError as error:
        return _sso_failed(error)
    except RuleViolation as violation:
        # The service refuses before writing anything but its audit record, which is kept.
        return _sso_failed(oidc.SsoError(violation.message, 403), keep_pending=True)
    accounts.note_sign_in(db(), actor_for(user), user, "sso")
    start_session(user, "sso", sso_id_token=result.id_token)
    commit()
    return redirect(target, code=303)


def _sso_failed(error: oidc.SsoError, keep_pending: bool = False) -> Response:
    if not keep_pending:
        db().rollback()
    audit.record(
        db(),
        actor(),
        "sso.failed",
        object_type="users",
        after={"reason": error.message, "detail": error.detail[:500]},
    )
    commit()
    return _render_sign_in(SignInForm(formdata=None), error.status, error.message)


@bp.post("/sign-out")
def logout() -> Response:
    if not current_user.is_authenticated:
        return htmx.redirect_to(url_for("auth.login"))
    audit.record(db(), actor(), "logout", current_user)
    id_token = end_session("signed_out")
    commit()
    flash("You have signed out.", "success")
    after = url_for("auth.login", _external=True)
    provider_url = oidc.end_session_url(id_token, after) if id_token else None
    if provider_url:
        return redirect(provider_url, code=303)
    return htmx.redirect_to(url_for("auth.login"))
