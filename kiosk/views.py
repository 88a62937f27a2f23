"""The kiosk's screens: pairing, welcome, the invited and walk-in check-in flows, the badge, and
check-out. Thin views: they read the form, call the visitor services and render one screen.

Every screen is one fragment (`kiosk/_<screen>.html`) swapped into the page's stage by htmx, or the
whole page around it for a plain request. What a visitor typed travels in hidden fields from step
to step and is checked again at every step; what the kiosk looked up (the invitation, the visit
to check out, the badge) travels as a ticket signed for this device. Nothing is kept in the browser's
history, and nothing lives in a server-side session."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException

from kiosk import device as identity
from kiosk import messages
from kiosk.locale import DEFAULT, LANGUAGE_COOKIE, LANGUAGES, chosen_language
from portal import htmx
from portal.db import db_id, utcnow
from portal.errors import RuleViolation
from portal.limits import limiter
from portal.models import CheckoutMethod, KioskDevice, User, Visit, VisitStatus
from portal.observability import request_id
from portal.request_scope import commit, db
from portal.services import kiosk_devices, visitors
from portal.services.audit import Actor

bp = Blueprint(
    "kiosk",
    __name__,
    url_prefix="/kiosk",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# Endpoints a tablet may use before it is paired (or after it was revoked).
OPEN_ENDPOINTS = {"kiosk.home", "kiosk.pair", "kiosk.start_over", "kiosk.static"}
# Limits per device (its cookie) and, for pairing, per client address.
CHECK_IN_LIMIT = "30 per minute;600 per hour"
SEARCH_LIMIT = "60 per minute;1200 per hour"
PAIRING_LIMIT = "30 per minute"
PAIRING_LOCKOUT = "20 per hour"  # wrong codes; the 21st try in the hour is refused
BADGE_WINDOW = timedelta(minutes=15)  # a badge can be printed here this long after check-in
FLOW_MAX_AGE = 3600  # seconds a ticket between steps stays good (the idle reset comes far sooner)
IDLE_SECONDS = 60
DONE_SECONDS = 20
GOODBYE_SECONDS = 10
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _pairing_failed(response: Response) -> bool:
    return response.status_code == 422


# ---------------------------------------------------------------------------------------------
# Every request: no portal session, a paired device, a kiosk CSRF token


@bp.url_value_preprocessor
def _isolate(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # Runs before any before_request hook (rate limits included): from here on, Flask-Login sees
    # nobody, whoever is signed in to the portal in this browser.
    identity.isolate_from_portal_session()


@bp.before_request
def _require_device() -> Response | None:
    device = identity.current_device()
    if device is None and request.endpoint not in OPEN_ENDPOINTS:
        return htmx.redirect_to(url_for("kiosk.home"))
    if request.method == "POST" and not identity.csrf_ok():
        # A page from before a re-pairing, or a request from elsewhere: start afresh.
        current_app.logger.warning("kiosk CSRF check failed on %s", request.path)
        if htmx.is_htmx():
            return htmx.refresh(status=400)
        return htmx.redirect_to(url_for("kiosk.home"))
    return None


@bp.after_request
def _after(response: Response) -> Response:
    identity.keep_pairing_nonce(response)
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Robots-Tag", "noindex")
    return response


@bp.context_processor
def _kiosk_context() -> dict[str, Any]:
    return {
        "kiosk_csrf_token": identity.csrf_token,
        "lang": chosen_language(),
        "languages": LANGUAGES,
        "device": g.get("kiosk_device"),
    }


def _device() -> KioskDevice:
    device = g.get("kiosk_device")
    assert device is not None  # _require_device let the request through
    return device


def _device_limit(limit: str, scope: str | None = None) -> Any:
    if scope:
        return limiter.shared_limit(limit, scope=scope, key_func=identity.rate_limit_key)
    return limiter.limit(limit, key_func=identity.rate_limit_key)


def show(screen: str, status: int = 200, **context: Any) -> Response:
    """One screen: the fragment for htmx, the page around it otherwise."""
    context.setdefault("errors", {})
    return htmx.render("kiosk/page.html", f"kiosk/_{screen}.html", status, screen=screen, **context)


def _actor() -> Actor:
    return Actor(
        None,
        f"kiosk:{_device().id}",
        request_id=request_id(),
        ip_address=request.remote_addr or "",
    )


# ---------------------------------------------------------------------------------------------
# Pairing, welcome, language, start over


@bp.get("/")
def home() -> Response:
    if identity.current_device() is None:
        return _pairing_screen()
    response = show("welcome", idle=chosen_language() != DEFAULT)
    if not htmx.wants_fragment():
        identity.renew_device_cookie(response)
    return response


def _pairing_screen(
    errors: dict[str, str] | None = None, code: str = "", status: int = 200, notice: str = ""
) -> Response:
    if not notice and identity.had_device_cookie():
        notice = gettext(
            "This tablet is no longer connected to Foyer. "
            "Ask an admin for a new pairing code and enter it below."
        )
    return show("pairing", status, errors=errors or {}, code=code, notice=notice)


@bp.post("/pair")
@limiter.limit(PAIRING_LIMIT, key_func=get_remote_address)
@limiter.limit(PAIRING_LOCKOUT, key_func=get_remote_address, deduct_when=_pairing_failed)
def pair() -> Response:
    code = request.form.get("code", "")[:40]
    try:
        _device, token = kiosk_devices.pair(
            db(), code, now=utcnow(), ip_address=request.remote_addr or ""
        )
    except kiosk_devices.PairingRefused as refused:
        return _pairing_screen(messages.for_rule(refused), code, 422)
    commit()
    g.kiosk_paired_now = True
    response = htmx.redirect_to(url_for("kiosk.home"))
    identity.set_device_cookie(response, token)
    response.delete_cookie(identity.PAIRING_COOKIE, path=identity.COOKIE_PATH)
    response.delete_cookie(LANGUAGE_COOKIE, path=identity.COOKIE_PATH)
    return response


@bp.post("/language")
def language() -> Response:
    lang = request.form.get("lang", DEFAULT)
    response = htmx.redirect_to(url_for("kiosk.home"))
    if lang in LANGUAGES and lang != DEFAULT:
        response.set_cookie(
            LANGUAGE_COOKIE,
            lang,
            path=identity.COOKIE_PATH,
            secure=identity.cookie_secure(),
            httponly=True,
            samesite="Strict",
        )
    else:
        response.delete_cookie(LANGUAGE_COOKIE, path=identity.COOKIE_PATH)
    return response


@bp.get("/start-over")
def start_over() -> Response:
    """Back to the welcome screen in English, with nothing of the last visitor left."""
    response = htmx.redirect_to(url_for("kiosk.home"))
    response.delete_cookie(LANGUAGE_COOKIE, path=identity.COOKIE_PATH)
    return response


# ---------------------------------------------------------------------------------------------
# What a visitor has given so far, carried between steps


@dataclass
class Flow:
    """The check-in form's fields, as posted; every step re-checks them."""

    key: str = ""
    ticket: str = ""
    name: str = ""
    email: str = ""
    company: str = ""
    purpose: str = ""
    host_id: int | None = None
    signed_name: str = ""
    signature: str = ""
    typed_signature: bool = False  # "I can't sign with a finger": the typed name is the signature
    photo: str = ""
    host: visitors.HostOption | None = None
    visit: Visit | None = None
    full_details: bool = False  # the visitor proved the invitation is theirs (code or QR)
    steps: list[str] = field(default_factory=list)

    @classmethod
    def from_form(cls) -> Flow:
        form = request.form
        key = form.get("key", "")
        host_id = form.get("host_id", "")
        return cls(
            key=key if KEY_PATTERN.fullmatch(key) else visitors.new_submission_key(),
            ticket=form.get("ticket", "")[:500],
            name=form.get("name", ""),
            email=form.get("email", ""),
            company=form.get("company", ""),
            purpose=form.get("purpose", ""),
            host_id=db_id(host_id),
            signed_name=form.get("signed_name", ""),
            signature=form.get("signature", ""),
            typed_signature=form.get("typed_signature") == "1",
            photo=form.get("photo", ""),
        )

    def details(self) -> visitors.VisitorDetails:
        return visitors.VisitorDetails.from_form(self.name, self.email, self.company, self.purpose)

    def signing(self) -> visitors.Signing:
        return visitors.Signing(
            signed_name=self.signed_name,
            signature_data_url="" if self.typed_signature else self.signature,
            typed_only=self.typed_signature,
            photo_data_url=self.photo,
            submission_key=self.key,
            host_id=self.host_id,
        )

    def hidden(self, *shown: str) -> dict[str, str]:
        """The fields this step does not show, to carry on as hidden inputs."""
        values = {
            "key": self.key,
            "ticket": self.ticket,
            "name": self.name,
            "email": self.email,
            "company": self.company,
            "purpose": self.purpose,
            "host_id": str(self.host_id or ""),
            "signed_name": self.signed_name,
            "signature": self.signature,
            "typed_signature": "1" if self.typed_signature else "",
            "photo": self.photo,
        }
        return {k: v for k, v in values.items() if k not in shown and v}


def _steps(first: str, agreement: bool, photo: bool) -> list[str]:
    return [first] + (["agreement"] if agreement else []) + (["photo"] if photo else [])


def _signing_shape(flow: Flow) -> dict[str, str]:
    """The agreement step's own checks before moving on (the service checks the image)."""
    errors: dict[str, str] = {}
    signed = " ".join(flow.signed_name.split())
    if not signed:
        errors["signed_name"] = gettext("Please type your full name to sign.")
    elif len(signed) > visitors.NAME_MAX:
        errors["signed_name"] = messages.too_long(visitors.NAME_MAX)
    if not flow.typed_signature and not flow.signature.startswith("data:image/png;base64,"):
        errors["signature"] = gettext("Please sign with your finger in the box.")
    return errors


def _step_screen(
    flow_name: str, step: str, flow: Flow, status: int = 200, **context: Any
) -> Response:
    site = _device().site
    agreement = context.pop("agreement", None)
    if step == "agreement" and agreement is None:
        agreement = visitors.current_agreement(db(), site)
    return show(
        f"{flow_name}_{step}" if step in ("details", "confirm") else step,
        status,
        flow=flow,
        flow_name=flow_name,
        step=step,
        site=site,
        agreement=agreement,
        idle=True,
        **context,
    )


# ---------------------------------------------------------------------------------------------
# Walk-in


@bp.get("/walk-in")
def walk_in() -> Response:
    flow = Flow(key=visitors.new_submission_key())
    flow.steps = _likely_walk_in_steps()
    return _step_screen("walk_in", "details", flow)


def _likely_walk_in_steps() -> list[str]:
    """Before we know who the visitor is: an agreement to sign if the site has one (a returning
    visitor who signed this version skips it once their details are in)."""
    site = _device().site
    return _steps("details", visitors.current_agreement(db(), site) is not None, site.visitor_photo)


@bp.get("/hosts")
@_device_limit(SEARCH_LIMIT, scope="kiosk-host-search")
def hosts() -> Response:
    query = request.args.get("host_query", "")[:100]
    chosen = request.args.get("host_id", "")
    options = visitors.search_hosts(db(), _device().site, query)
    chosen_id = db_id(chosen)
    selected = _chosen_host(chosen_id) if chosen_id is not None else None
    if selected is not None:
        options = [selected] + [o for o in options if o.id != selected.id]
    return make_response(
        _render("kiosk/_host_options.html", options=options, query=query, selected=selected)
    )


def _render(template: str, **context: Any) -> str:
    return render_template(template, **context)


def _chosen_host(host_id: int | None) -> visitors.HostOption | None:
    """The host picked earlier, shown again beside the form (name and department only)."""
    if not host_id:
        return None
    user = db().get(User, host_id)
    if user is None or user.home_site_id != _device().site_id or not user.active:
        return None
    return visitors.HostOption(user.id, user.name, user.department)


@bp.post("/walk-in/<step>")
@_device_limit(CHECK_IN_LIMIT, scope="kiosk-check-in")
def walk_in_step(step: str) -> Response:
    if step not in ("details", "agreement", "photo"):
        abort(404)
    site = _device().site
    flow = Flow.from_form()
    flow.host = _chosen_host(flow.host_id)
    errors = messages.detail_problems(vars(flow))
    try:
        visitors.host_for_walk_in(db(), site, flow.host_id)
    except RuleViolation as refused:
        errors.update(messages.for_rule(refused))
    if errors:
        flow.steps = _likely_walk_in_steps()
        return _step_screen("walk_in", "details", flow, 422, errors=errors)
    agreement = visitors.agreement_to_sign(db(), site, flow.details())
    flow.steps = _steps("details", agreement is not None, site.visitor_photo)
    return _advance("walk_in", step, flow, agreement, flow.details())


def _advance(
    flow_name: str, step: str, flow: Flow, agreement: Any, details: visitors.VisitorDetails
) -> Response:
    """Show the step after `step`, or check in when `step` was the last."""
    if visitors.deny_match(db(), _device().site_id, details) is not None:
        # Not one more question: the service records the stop, alerts the coordinators, and the
        # visitor sees the same neutral screen as anyone sent to reception.
        return _check_in(flow_name, flow, agreement)
    order = flow.steps
    if step in order and request.form.get("back"):
        previous = order[max(order.index(step) - 1, 0)]
        return _step_screen(flow_name, previous, flow, agreement=agreement)
    if agreement is not None and step in order and order.index(step) > 0:
        problems = _signing_shape(flow)
        if problems:
            return _step_screen(
                flow_name, "agreement", flow, 422, errors=problems, agreement=agreement
            )
    if step in order and order.index(step) + 1 < len(order):
        return _step_screen(flow_name, order[order.index(step) + 1], flow, agreement=agreement)
    # The last step, or a step the flow no longer has (an agreement signed by a first tap a
    # moment ago): the service decides, and a repeated tap finds the first one's visit.
    return _check_in(flow_name, flow, agreement)


def _check_in(flow_name: str, flow: Flow, agreement: Any) -> Response:
    device = _device()
    try:
        if flow_name == "walk_in":
            outcome = visitors.check_in_walk_in(
                db(), device, flow.details(), flow.signing(), now=utcnow()
            )
        else:
            assert flow.visit is not None
            outcome = visitors.check_in_invited(
                db(),
                device,
                flow.visit.id,
                flow.signing(),
                company=_company_change(flow),
                now=utcnow(),
            )
    except RuleViolation as refused:
        return _refused_at_check_in(flow_name, flow, refused, agreement)
    commit()
    return _outcome_screen(outcome)


def _refused_at_check_in(
    flow_name: str, flow: Flow, refused: RuleViolation, agreement: Any
) -> Response:
    signing = messages.signing_problems(refused.errors, flow.signed_name)
    if signing:
        return _step_screen(flow_name, "agreement", flow, 422, errors=signing, agreement=agreement)
    if refused.rule in ("walk_in_form", "company"):
        errors = messages.detail_problems(vars(flow))
        if "host" in refused.errors:
            errors["host"] = str(messages.RULES["host_unknown"])
        first = "details" if flow_name == "walk_in" else "confirm"
        return _step_screen(
            flow_name, first, flow, 422, errors=errors or messages.for_rule(refused)
        )
    if refused.rule.startswith("invitation_") or refused.rule == "code_format":
        return _invitation_screen(422, errors=messages.for_rule(refused), key=flow.key)
    return _problem_screen(messages.for_rule(refused).popitem()[1], 422)


def _outcome_screen(outcome: visitors.CheckInOutcome) -> Response:
    visit = outcome.visit
    if outcome.denied or visit.status == VisitStatus.DENIED:
        return show("see_reception", return_after=DONE_SECONDS)
    return show(
        "done",
        visit=visit,
        first_name=(visit.visitor_name.split() or [""])[0],
        host_unavailable=outcome.host_unavailable or not visit.host.active,
        badge=_badge_status(visit),
        return_after=DONE_SECONDS,
    )


# ---------------------------------------------------------------------------------------------
# Invited visitors: a code (typed or scanned) or a name from today's list


def _invitation_screen(status: int = 200, **context: Any) -> Response:
    context.setdefault("key", visitors.new_submission_key())
    return show("invitation", status, idle=True, code=context.pop("code", ""), **context)


@bp.get("/invitation")
def invitation() -> Response:
    return _invitation_screen()


@bp.post("/invitation/code")
@_device_limit(CHECK_IN_LIMIT, scope="kiosk-code")
def invitation_code() -> Response:
    code = request.form.get("code", "")[:100]
    key = Flow.from_form().key
    try:
        visit = visitors.find_invitation(db(), _device().site, code, now=utcnow())
    except RuleViolation as refused:
        return _invitation_screen(422, errors=messages.for_rule(refused), code=code, key=key)
    flow = Flow(key=key, ticket=identity.sign("invitation", _device(), v=visit.id, full=True))
    flow.company = visit.visitor_company
    return _invited_step("confirm", flow, fresh=True)


@bp.get("/invitation/find")
@_device_limit(SEARCH_LIMIT, scope="kiosk-name-search")
def invitation_find() -> Response:
    query = request.args.get("q", "")[:100]
    key = request.args.get("key", "")
    matches = visitors.expected_today(db(), _device().site, query, now=utcnow()) if query else []
    return show(
        "find_invitation",
        idle=True,
        query=query,
        matches=matches,
        key=key if KEY_PATTERN.fullmatch(key) else visitors.new_submission_key(),
    )


@bp.get("/invitation/matches")
@_device_limit(SEARCH_LIMIT, scope="kiosk-name-search")
def invitation_matches() -> Response:
    query = request.args.get("q", "")[:100]
    key = request.args.get("key", "")
    matches = visitors.expected_today(db(), _device().site, query, now=utcnow())
    return make_response(
        _render(
            "kiosk/_invitation_matches.html",
            query=query,
            matches=matches,
            key=key if KEY_PATTERN.fullmatch(key) else visitors.new_submission_key(),
        )
    )


@bp.post("/invitation/pick")
@_device_limit(CHECK_IN_LIMIT, scope="kiosk-code")
def invitation_pick() -> Response:
    flow = Flow.from_form()
    visit_id = db_id(request.form.get("visit_id", ""))
    problem = ""
    try:
        if visit_id is None:
            problem = str(messages.RULES["invitation_unknown"])
        else:
            visit = visitors.expected_invitation(db(), _device().site, visit_id, now=utcnow())
    except RuleViolation as refused:
        problem = messages.for_rule(refused).popitem()[1]
    if problem:
        return show(
            "find_invitation",
            422,
            idle=True,
            query="",
            matches=[],
            key=flow.key,
            errors={"q": problem},
        )
    flow.ticket = identity.sign("invitation", _device(), v=visit.id, full=False)
    return _invited_step("confirm", flow, fresh=True)


@bp.post("/invitation/<step>")
@_device_limit(CHECK_IN_LIMIT, scope="kiosk-check-in")
def invitation_step(step: str) -> Response:
    if step not in ("confirm", "agreement", "photo"):
        abort(404)
    return _invited_step(step, Flow.from_form())


def _invited_step(step: str, flow: Flow, *, fresh: bool = False) -> Response:
    """Check the carried invitation again (for this device's site), then go on from `step`."""
    device = _device()
    ticket = identity.unsign("invitation", device, flow.ticket, FLOW_MAX_AGE)
    if ticket is None or not isinstance(ticket.get("v"), int):
        return _problem_screen(str(messages.SOMETHING_WRONG), 422)
    try:
        flow.visit = visitors.expected_invitation(db(), device.site, ticket["v"], now=utcnow())
    except RuleViolation as refused:
        if refused.rule == "invitation_used" and not fresh:
            # A second tap on "Check in": the first tap's check-in, found by the form's key.
            return _check_in_repeat(ticket["v"], flow, refused)
        return _invitation_screen(422, errors=messages.for_rule(refused), key=flow.key)
    flow.full_details = bool(ticket.get("full"))
    site = device.site
    errors: dict[str, str] = {}
    company = _company_change(flow)
    if company is not None and len(" ".join(company.split())) > visitors.COMPANY_MAX:
        errors["company"] = messages.too_long(visitors.COMPANY_MAX)
    flow.steps = _steps("confirm", False, site.visitor_photo)
    if errors:
        return _step_screen("invited", "confirm", flow, 422, errors=errors)
    details = visitors.VisitorDetails(
        flow.visit.visitor_name,
        flow.visit.visitor_email,
        company if company is not None else flow.visit.visitor_company,
    )
    agreement = visitors.agreement_to_sign(db(), site, details)
    flow.steps = _steps("confirm", agreement is not None, site.visitor_photo)
    if fresh:
        return _step_screen("invited", "confirm", flow, agreement=agreement)
    return _advance("invited", step, flow, agreement, details)


def _company_change(flow: Flow) -> str | None:
    """The company as the visitor left it. Found by name, they saw the field empty (the
    invitation's company is not shown to whoever picks a name): empty then means "no change"."""
    if flow.full_details:
        return flow.company
    return flow.company if flow.company.strip() else None


def _check_in_repeat(visit_id: int, flow: Flow, refused: RuleViolation) -> Response:
    try:
        outcome = visitors.check_in_invited(
            db(), _device(), visit_id, visitors.Signing(submission_key=flow.key), now=utcnow()
        )
    except RuleViolation:
        return _invitation_screen(422, errors=messages.for_rule(refused), key=flow.key)
    commit()
    return _outcome_screen(outcome)


# ---------------------------------------------------------------------------------------------
# The badge: its printing status, and printing it here when the printer does not answer


def _badge_status(visit: Visit) -> dict[str, Any]:
    return {
        "state": visit.badge_state,
        "ticket": identity.sign("badge", _device(), v=visit.id),
        "has_printer": bool(_device().printer_uri),
    }


def _badge_visit(ticket: str) -> Visit:
    """This device's visit checked in within the last 15 minutes, or 404."""
    device = _device()
    values = identity.unsign("badge", device, ticket, int(BADGE_WINDOW.total_seconds()))
    visit = db().get(Visit, values["v"]) if values and isinstance(values.get("v"), int) else None
    if (
        visit is None
        or visit.site_id != device.site_id
        or visit.checked_in_device_id != device.id
        or visit.status != VisitStatus.CHECKED_IN
        or visit.checked_in_at is None
        or utcnow() - visit.checked_in_at > BADGE_WINDOW
    ):
        abort(404)
    return visit


@bp.get("/badge/<ticket>/status")
def badge_status(ticket: str) -> Response:
    visit = _badge_visit(ticket)
    return make_response(
        _render("kiosk/_badge_status.html", badge=_badge_status(visit), visit=visit)
    )


@bp.get("/badge/<ticket>/print")
def badge_print(ticket: str) -> Response:
    from portal.services.badges import LABEL_STOCKS, render_label_html
    from portal.services.lobby_printing import badge_content

    visit = _badge_visit(ticket)
    stock = request.args.get("stock") or _device().label_stock
    if stock not in LABEL_STOCKS:
        stock = _device().label_stock if _device().label_stock in LABEL_STOCKS else "62x100"
    label = render_label_html(
        badge_content(visit, _secret()),
        stock,
        stylesheet_href=url_for("kiosk.badge_css"),
    )
    toolbar = _render("kiosk/_print_toolbar.html", ticket=ticket, stock=stock, stocks=LABEL_STOCKS)
    head = _render("kiosk/_print_head.html")
    # The label is a complete document of its own: the kiosk's print controls go around it.
    label = label.replace("</head>", head + "</head>", 1)
    label = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + toolbar, label, count=1)
    return make_response(label)


@bp.get("/badge/<ticket>/badge.pdf")
def badge_pdf(ticket: str) -> Response:
    from portal.services.badges import LABEL_STOCKS, LabelUnavailable, render_label_pdf
    from portal.services.lobby_printing import badge_content

    visit = _badge_visit(ticket)
    stock = request.args.get("stock") or _device().label_stock
    if stock not in LABEL_STOCKS:
        stock = "62x100"
    try:
        pdf = render_label_pdf(badge_content(visit, _secret()), stock)
    except LabelUnavailable:
        return _problem_screen(
            gettext("The badge cannot be made here right now. Reception will give you your badge."),
            503,
        )
    response = make_response(pdf)
    response.headers["Content-Type"] = "application/pdf"
    # A download, not a page: a kiosk browser has no way back from a PDF viewer.
    response.headers["Content-Disposition"] = f'attachment; filename="visitor-badge-{visit.id}.pdf"'
    return response


@bp.get("/badge.css")
def badge_css() -> Response:
    from portal.services.badges import label_stylesheet

    response = make_response(label_stylesheet())
    response.headers["Content-Type"] = "text/css; charset=utf-8"
    return response


def _secret() -> bytes:
    return current_app.extensions["foyer.settings"].secret_key.encode()


# ---------------------------------------------------------------------------------------------
# Check-out: scan the badge, or find one's name


@bp.get("/check-out")
def check_out() -> Response:
    return show("check_out", idle=True, query="", matches=None)


@bp.post("/check-out/badge")
@_device_limit(CHECK_IN_LIMIT, scope="kiosk-code")
def check_out_badge() -> Response:
    scanned = request.form.get("code", "")[:200]
    try:
        visit = visitors.visit_for_checkout_code(db(), _device().site, scanned, _secret())
    except RuleViolation as refused:
        if refused.rule == "already_checked_out":
            return show("goodbye", first_name="", already=True, return_after=GOODBYE_SECONDS)
        return show(
            "check_out",
            422,
            idle=True,
            query="",
            matches=None,
            errors=messages.for_rule(refused),
        )
    return _check_out_confirm(visit, by_badge=True)


@bp.get("/check-out/find")
@_device_limit(SEARCH_LIMIT, scope="kiosk-name-search")
def check_out_find() -> Response:
    query = request.args.get("q", "")[:100]
    matches = visitors.checked_in_now(db(), _device().site, query) if query else None
    return show("check_out", idle=True, query=query, matches=matches)


@bp.get("/check-out/matches")
@_device_limit(SEARCH_LIMIT, scope="kiosk-name-search")
def check_out_matches() -> Response:
    query = request.args.get("q", "")[:100]
    matches = visitors.checked_in_now(db(), _device().site, query)
    return make_response(_render("kiosk/_check_out_matches.html", query=query, matches=matches))


@bp.post("/check-out/pick")
@_device_limit(CHECK_IN_LIMIT, scope="kiosk-code")
def check_out_pick() -> Response:
    visit_id = db_id(request.form.get("visit_id", ""))
    visit = db().get(Visit, visit_id) if visit_id is not None else None
    if visit is None or visit.site_id != _device().site_id:
        return show(
            "check_out",
            422,
            idle=True,
            query="",
            matches=None,
            errors={"q": gettext("We could not find you. Please see reception.")},
        )
    if visit.status != VisitStatus.CHECKED_IN:
        return show("goodbye", first_name="", already=True, return_after=GOODBYE_SECONDS)
    return _check_out_confirm(visit, by_badge=False)


def _check_out_confirm(visit: Visit, *, by_badge: bool) -> Response:
    return show(
        "check_out_confirm",
        idle=True,
        ticket=identity.sign("checkout", _device(), v=visit.id),
        display_name=visit.visitor_name if by_badge else short_name(visit.visitor_name),
    )


@bp.post("/check-out/confirm")
@_device_limit(CHECK_IN_LIMIT, scope="kiosk-check-in")
def check_out_confirm() -> Response:
    device = _device()
    values = identity.unsign("checkout", device, request.form.get("ticket", ""), FLOW_MAX_AGE)
    visit = db().get(Visit, values["v"]) if values and isinstance(values.get("v"), int) else None
    if visit is None or visit.site_id != device.site_id:
        return _problem_screen(str(messages.SOMETHING_WRONG), 422)
    checked_out = visitors.check_out(db(), _actor(), visit, CheckoutMethod.KIOSK, now=utcnow())
    commit()
    return show(
        "goodbye",
        first_name=(visit.visitor_name.split() or [""])[0] if checked_out else "",
        already=not checked_out,
        return_after=GOODBYE_SECONDS,
    )


def short_name(name: str) -> str:
    """ "Anna K.": enough to recognise oneself, as the services' name lists show it."""
    parts = name.split()
    if len(parts) < 2:
        return name
    return f"{parts[0]} {parts[-1][0]}."


# ---------------------------------------------------------------------------------------------
# Problems: a calm screen with a way back, never a stack trace or the portal's error page


@bp.route("/<path:_anything>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def elsewhere(_anything: str) -> Response:
    """Any other address under /kiosk/ (or a form sent the wrong way) stays in the kiosk: the
    portal's error page would offer links out of it."""
    abort(404)


def _problem_screen(message: str, status: int) -> Response:
    response = show("problem", status, message=message, idle=True)
    return htmx.retarget(response, "#stage")


SEARCH_ENDPOINTS = {
    "kiosk.hosts",
    "kiosk.invitation_matches",
    "kiosk.check_out_matches",
}


@bp.errorhandler(429)
def too_many(_error: HTTPException) -> Response:
    if request.endpoint == "kiosk.pair":
        return _pairing_screen(
            {
                "code": gettext(
                    "Too many wrong codes were entered on this tablet. "
                    "Pairing is locked for an hour; then try again with a new code."
                )
            },
            request.form.get("code", "")[:40],
            429,
        )
    text = gettext("Too many tries in a short time. Please wait a minute and try again.")
    if request.endpoint in SEARCH_ENDPOINTS:
        return make_response(_render("kiosk/_search_notice.html", message=text), 429)
    return _problem_screen(text, 429)


@bp.errorhandler(HTTPException)
def http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 404:
        text = gettext("This page is not available any more. Please start again.")
    elif status == 413:
        text = gettext("That was more than this kiosk can take. Please start again.")
    else:
        text = str(messages.SOMETHING_WRONG)
    return _problem_screen(text, status if status >= 400 else 400)


@bp.errorhandler(Exception)
def unexpected(_error: Exception) -> Response:
    current_app.logger.exception("unhandled error on kiosk %s", request.path)
    return _problem_screen(
        gettext("Something went wrong on our side. Nothing was saved. Please see reception."),
        500,
    )


bp.app_template_filter("kiosk_short_name")(short_name)
