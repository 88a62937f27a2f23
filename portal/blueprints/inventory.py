"""Inventory, for a site's coordinators (admins: every site): stock per site with the low-stock
list, receiving goods and correcting counts, and purchase orders: created from what requests
are waiting for, one per vendor, printable, exportable, and received against."""

from __future__ import annotations

import csv
import io
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField

from portal import htmx
from portal.blueprints.context import actor, default_site, managed_site_or_404, managed_sites
from portal.blueprints.forms import apply_violation
from portal.db import db_id, utcnow
from portal.errors import RuleViolation
from portal.models import PurchaseOrder, Role, Site, User
from portal.permissions import coordinates_site, load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import inventory, purchase_orders, tickets
from portal.services.inventory import CATEGORY_LABELS, StockFilter
from portal.services.spreadsheets import csv_safe

bp = Blueprint("inventory", __name__, url_prefix=None)

ALL_SITES = "all"


# ---------------------------------------------------------------------------------------------
# Forms: shape only; the services check the numbers and the items


def _item_choices() -> list[tuple[str, str]]:
    return [("", "Choose an item…")] + [
        (str(item.id), f"{item.name} ({item.unit})") for item in inventory.orderable_items(db())
    ]


QUANTITY_ATTRS = {"inputmode": "numeric", "autocomplete": "off", "maxlength": 12}


class ReceiveStockForm(FlaskForm):
    item = SelectField("Item", validate_choice=False)
    quantity = StringField("Quantity received", render_kw={**QUANTITY_ATTRS, "placeholder": "12"})
    note = StringField(
        "Note (optional)",
        render_kw={"maxlength": inventory.NOTE_MAX, "placeholder": "Delivery note, supplier…"},
    )


class CountForm(FlaskForm):
    item = SelectField("Item", validate_choice=False)
    counted = StringField("Counted on the shelf", render_kw={**QUANTITY_ATTRS, "placeholder": "0"})
    reason = StringField(
        "Reason",
        render_kw={"maxlength": inventory.REASON_MAX, "placeholder": "Stock take, damaged, lost…"},
    )


def _receive_form(formdata: Any = None, item_id: str = "") -> ReceiveStockForm:
    form = ReceiveStockForm(formdata=formdata, prefix="receive")
    form.item.choices = _item_choices()
    if formdata is None and item_id:
        form.item.data = item_id
    return form


def _count_form(formdata: Any = None, item_id: str = "") -> CountForm:
    form = CountForm(formdata=formdata, prefix="count")
    form.item.choices = _item_choices()
    if formdata is None and item_id:
        form.item.data = item_id
    return form


# ---------------------------------------------------------------------------------------------
# Stock


def _my_sites() -> list[Site]:
    return managed_sites()


def _chosen_sites(sites: list[Site]) -> tuple[Site | None, tuple[int, ...]]:
    """(the one site shown, or None for all of them; the ids shown) from ?site=."""
    wanted = request.args.get("site", "")
    if wanted == ALL_SITES and len(sites) > 1:
        return None, tuple(s.id for s in sites)
    site = next((s for s in sites if str(s.id) == wanted), None) or default_site(sites)
    return site, ((site.id,) if site else ())


def _stock_filter(site_ids: tuple[int, ...]) -> tuple[StockFilter, dict[str, str]]:
    category = request.args.get("category", "")
    if category not in CATEGORY_LABELS:
        category = ""
    text = request.args.get("q", "").strip()[: inventory.SEARCH_MAX]
    low_only = request.args.get("low") == "1"
    query = {"category": category, "q": text, "low": "1" if low_only else ""}
    return StockFilter(site_ids, category, text, low_only), query


def _render_index(
    receive_form: ReceiveStockForm | None = None,
    count_form: CountForm | None = None,
    status: int = 200,
    problem: str = "",
    site: Site | None = None,
    fragment: str | None = "inventory/_stock.html",
) -> Response:
    sites = _my_sites()
    if not sites:
        return htmx.render("inventory/no_site.html", status=404)
    if site is None:
        site, site_ids = _chosen_sites(sites)
    else:
        site_ids = (site.id,)
    flt, query = _stock_filter(site_ids)
    levels = inventory.stock_levels(db(), flt)
    low = inventory.restock_needs(db(), site_ids)
    item_id = request.args.get("item", "")
    everything = inventory.stock_levels(db(), StockFilter(site_ids))
    return htmx.render(
        "inventory/index.html",
        fragment,
        status=status,
        sites=sites,
        site=site,
        site_by_id={s.id: s for s in sites},
        levels=levels,
        low=low,
        query=query,
        categories=CATEGORY_LABELS,
        to_order=[need for need in low if not need.covered],
        on_order=inventory.on_order(db(), site_ids),
        nothing_on_order=inventory.NOTHING_ON_ORDER,
        stock_value=inventory.stock_value_cents,
        is_low=inventory.is_low,
        totals={
            "items": len(everything),
            "low": len(low),
            "reserved": sum(level.reserved for level in everything),
            "value": sum(inventory.stock_value_cents(level) for level in everything),
        },
        receive_form=receive_form or _receive_form(item_id=item_id),
        count_form=count_form or _count_form(item_id=item_id),
        problem=problem,
    )


@bp.get("/inventory")
@role_required(Role.COORDINATOR)
def index() -> Response:
    return _render_index()


def _back_to_stock(site: Site) -> Response:
    return htmx.redirect_to(url_for("inventory.index", site=site.id))


@bp.post("/inventory/sites/<int:site_id>/receive")
@role_required(Role.COORDINATOR)
def receive_stock(site_id: int) -> Response:
    site = managed_site_or_404(site_id)
    form = _receive_form(request.form)
    if not form.validate():
        return _render_index(form, status=422, site=site, fragment="inventory/_receive_form.html")
    try:
        with db().begin_nested():
            level = inventory.receive_stock(
                db(),
                actor(),
                site,
                item_id=form.item.data,
                quantity=form.quantity.data,
                note=form.note.data or "",
            )
    except RuleViolation as violation:
        problem = apply_violation(form, violation)
        return _render_index(
            form, status=422, problem=problem, site=site, fragment="inventory/_receive_form.html"
        )
    name, on_hand = level.item.name, level.on_hand
    commit()
    flash(f"Received {form.quantity.data.strip()} × {name}. On hand now: {on_hand}.", "success")
    return _back_to_stock(site)


@bp.post("/inventory/sites/<int:site_id>/count")
@role_required(Role.COORDINATOR)
def correct_count(site_id: int) -> Response:
    site = managed_site_or_404(site_id)
    form = _count_form(request.form)
    if not form.validate():
        return _render_index(
            count_form=form, status=422, site=site, fragment="inventory/_count_form.html"
        )
    try:
        with db().begin_nested():
            level, change = inventory.correct_count(
                db(),
                actor(),
                site,
                item_id=form.item.data,
                counted=form.counted.data,
                reason=form.reason.data or "",
            )
    except RuleViolation as violation:
        problem = apply_violation(form, violation)
        return _render_index(
            count_form=form,
            status=422,
            problem=problem,
            site=site,
            fragment="inventory/_count_form.html",
        )
    name, on_hand = level.item.name, level.on_hand
    commit()
    moved = "no change" if change == 0 else f"{change:+d}"
    flash(f"Count of {name} recorded: {on_hand} on hand ({moved}).", "success")
    return _back_to_stock(site)


# ---------------------------------------------------------------------------------------------
# Purchase orders: the list and creating them


def _order_or_404(order_id: int) -> PurchaseOrder:
    return load_or_404(
        db(), PurchaseOrder, order_id, lambda user, order: coordinates_site(user, order.site_id)
    )


@bp.get("/inventory/purchase-orders")
@role_required(Role.COORDINATOR)
def orders() -> Response:
    sites = _my_sites()
    if not sites:
        return htmx.render("inventory/no_site.html", status=404)
    wanted = request.args.get("site", "")
    chosen = next((s for s in sites if str(s.id) == wanted), None)
    site_ids = (chosen.id,) if chosen else tuple(s.id for s in sites)
    status = request.args.get("status", "")
    if status not in purchase_orders.STATUS_LABELS:
        status = ""
    found = purchase_orders.list_orders(db(), site_ids, status)
    waiting = {
        s.id: len(purchase_orders.backordered_lines(db(), s))
        for s in ([chosen] if chosen else sites)
    }
    return htmx.render(
        "inventory/orders.html",
        "inventory/_orders_table.html",
        orders=found,
        totals=purchase_orders.order_totals(db(), [o.id for o in found]),
        sites=sites,
        site=chosen,
        site_by_id={s.id: s for s in sites},
        chosen_status=status,
        statuses=purchase_orders.STATUS_LABELS,
        waiting=waiting,
        new_site=chosen or default_site(sites),
    )


def _restock_ids(values: list[str]) -> set[int]:
    return {number for number in map(db_id, values) if number is not None}


def _render_plan(site: Site, restock: set[int], status: int = 200, problem: str = "") -> Response:
    the_plan = purchase_orders.plan(db(), site, restock)
    return htmx.render(
        "inventory/new_orders.html",
        "inventory/_plan.html",
        status=status,
        site=site,
        sites=_my_sites(),
        plan=the_plan,
        restock=restock,
        problem=problem,
        ticket_path=tickets.ticket_path,
    )


@bp.get("/inventory/sites/<int:site_id>/purchase-orders/new")
@role_required(Role.COORDINATOR)
def new_orders(site_id: int) -> Response:
    site = managed_site_or_404(site_id)
    return _render_plan(site, _restock_ids(request.args.getlist("restock")))


@bp.post("/inventory/sites/<int:site_id>/purchase-orders")
@role_required(Role.COORDINATOR)
def create_orders(site_id: int) -> Response:
    site = managed_site_or_404(site_id)
    restock = _restock_ids(request.form.getlist("restock"))
    try:
        with db().begin_nested():
            created, needs_vendor = purchase_orders.create_orders(
                db(), actor(), site, by=current_user, now=utcnow(), restock_item_ids=restock
            )
    except RuleViolation as violation:
        return _render_plan(site, restock, status=422, problem=" ".join(violation.errors.values()))
    numbers = [(o.id, o.number, o.vendor.name) for o in created]
    missing = [p.item.name for p in needs_vendor]
    commit()
    listed = ", ".join(f"{number} ({vendor})" for _id, number, vendor in numbers)
    flash(
        f"Created {len(numbers)} purchase order{'s' if len(numbers) != 1 else ''}: {listed}.",
        "success",
    )
    if missing:
        flash(f"Not ordered, no vendor: {', '.join(missing)}.", "warning")
    if len(numbers) == 1:
        return htmx.redirect_to(url_for("inventory.order", order_id=numbers[0][0]))
    return htmx.redirect_to(url_for("inventory.orders", site=site.id))


# ---------------------------------------------------------------------------------------------
# One purchase order


def _order_context(order: PurchaseOrder) -> dict[str, Any]:
    site = db().get(Site, order.site_id)
    creator = db().get(User, order.created_by_id) if order.created_by_id else None
    return {
        "order": order,
        "site": site,
        "creator": creator,
        "served": purchase_orders.served_lines(db(), order),
        "total": purchase_orders.total_cents(order),
        "outstanding": purchase_orders.outstanding,
        "statuses": purchase_orders.STATUS_LABELS,
        "ticket_path": tickets.ticket_path,
    }


def _render_order(
    order: PurchaseOrder,
    status: int = 200,
    problem: str = "",
    errors: dict[str, str] | None = None,
    entered: dict[int, str] | None = None,
    stale: str = "",
) -> Response:
    return htmx.render(
        "inventory/order.html",
        "inventory/_order_body.html",
        status=status,
        problem=problem,
        errors=errors or {},
        entered=entered or {},
        stale=stale,
        **_order_context(order),
    )


@bp.get("/inventory/purchase-orders/<int:order_id>")
@role_required(Role.COORDINATOR)
def order(order_id: int) -> Response:
    return _render_order(_order_or_404(order_id))


@bp.post("/inventory/purchase-orders/<int:order_id>/receive")
@role_required(Role.COORDINATOR)
def receive_order(order_id: int) -> Response:
    order = _order_or_404(order_id)
    entered = {line.id: request.form.get(f"line-{line.id}", "") for line in order.lines}
    try:
        expected = int(request.form.get("version", ""))
    except ValueError:
        expected = None
    try:
        with db().begin_nested():
            ready = purchase_orders.receive(
                db(),
                actor(),
                order,
                dict(entered),
                by=current_user,
                now=utcnow(),
                expected_version=expected if expected is not None else -1,
            )
    except purchase_orders.StalePurchaseOrder as stale:
        db().refresh(order)
        for line in order.lines:
            db().refresh(line)
        return _render_order(order, status=409, stale=stale.message)
    except RuleViolation as violation:
        errors = {k: v for k, v in violation.errors.items() if k}
        return _render_order(
            order,
            status=422,
            problem=violation.errors.get("", ""),
            errors=errors,
            entered={k: v for k, v in entered.items() if v},
        )
    number, state = order.number, purchase_orders.STATUS_LABELS[order.status]
    commit()
    message = f"{number}: delivery booked, now {state.lower()}."
    if ready:
        message += (
            f" {len(ready)} request line{'s are' if len(ready) != 1 else ' is'} set aside "
            "for pick-up."
        )
    flash(message, "success")
    return htmx.redirect_to(url_for("inventory.order", order_id=order_id))


@bp.get("/inventory/purchase-orders/<int:order_id>.pdf")
@role_required(Role.COORDINATOR)
def order_pdf(order_id: int) -> Response:
    order = _order_or_404(order_id)
    context = _order_context(order)
    zone = ZoneInfo(context["site"].time_zone)
    html = render_template(
        "inventory/po_print.html",
        created_local=order.created_at.astimezone(zone),
        organisation=_organisation(),
        **context,
    )
    response = Response(purchase_orders.render_pdf(html), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{order.number}.pdf"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _organisation() -> str:
    from portal.services import notifications

    return notifications.sender_for(db()).name or "Foyer"


CSV_COLUMNS = [
    "Purchase order",
    "Status",
    "Vendor",
    "Vendor e-mail",
    "Deliver to",
    "Created",
    "Item",
    "Unit",
    "Quantity",
    "Received",
    "Unit price",
    "Line total",
    "For requests",
]


def _amount(cents: int) -> str:
    return f"{cents / 100:.2f}"


@bp.get("/inventory/purchase-orders/<int:order_id>.csv")
@role_required(Role.COORDINATOR)
def order_csv(order_id: int) -> Response:
    order = _order_or_404(order_id)
    context = _order_context(order)
    site = context["site"]
    created = order.created_at.astimezone(ZoneInfo(site.time_zone)).strftime("%Y-%m-%d %H:%M")
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel reads UTF-8 only with a BOM
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for line in order.lines:
        served = context["served"].get(line.item_id, [])
        writer.writerow(
            [
                csv_safe(cell)
                for cell in (
                    order.number,
                    purchase_orders.STATUS_LABELS.get(order.status, order.status),
                    order.vendor.name,
                    order.vendor.email,
                    site.name,
                    created,
                    line.item.name,
                    line.item.unit,
                    line.quantity,
                    line.received_quantity,
                    _amount(line.unit_price_cents),
                    _amount(line.quantity * line.unit_price_cents),
                    " ".join(f"{r.ticket.number}×{r.quantity}" for r in served),
                )
            ]
        )
    blanks = [""] * (len(CSV_COLUMNS) - 3)
    writer.writerow(["Total", *blanks, _amount(context["total"]), ""])
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{order.number}.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
