"""The catalog: employees browse and search it with the stock of their office; administrators
keep its items and photos; coordinators count the stock of their own sites."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from portal.errors import NotFound, RuleViolation
from portal.models import ApprovalRule, Asset, AuditEvent, CatalogItem, ItemCategory
from portal.services import catalog
from tests import factories
from tests import requests_helpers as rh
from tests import service_desk_factories as sd

SYSTEM = rh.SYSTEM


# ---------------------------------------------------------------------------------------------
# Browsing


def test_browse_lists_active_items_with_their_stock_at_the_site(db):
    o = rh.office(db)
    paris = factories.site(db, "paris")
    monitor = rh.stocked(db, o.site, "Monitor", 12)
    sd.stock(db, monitor, paris, 1)
    rh.stocked(db, o.site, "Old fax", 3, active=False)
    sd.item(db, "Chair", category=ItemCategory.FURNITURE, lead_time_days=7)
    laptop = sd.item(db, "Laptop", tracked=True)
    db.add(Asset(item_id=laptop.id, site_id=o.site.id, asset_tag="L-1"))
    db.add(Asset(item_id=laptop.id, site_id=paris.id, asset_tag="L-2"))
    db.flush()
    ticket = rh.submit(db, o.employee, o.site, [(monitor, 2)])  # sets 2 aside
    assert ticket.lines[0].status == "approved"

    entries = {e.item.name: e for e in catalog.browse(db, o.site.id)}
    assert set(entries) == {"Monitor", "Chair", "Laptop"}
    assert (entries["Monitor"].on_hand, entries["Monitor"].available) == (12, 10)
    assert not entries["Chair"].in_stock
    assert entries["Laptop"].available == 1  # one asset in stock here


def test_search_matches_name_and_description_and_category_filters(db):
    o = rh.office(db)
    sd.item(db, "Ergonomic mouse", description="Vertical, wireless")
    sd.item(db, "Notebook A5", category=ItemCategory.OFFICE_SUPPLIES, description="Dotted")
    sd.item(db, "100% recycled paper", category=ItemCategory.OFFICE_SUPPLIES)
    names = lambda **kw: [e.item.name for e in catalog.browse(db, o.site.id, **kw)]  # noqa: E731
    assert names(query="wireless") == ["Ergonomic mouse"]
    assert names(query="MOUSE vertical") == ["Ergonomic mouse"]
    assert names(query="%") == ["100% recycled paper"]  # not a wildcard
    assert names(query="_") == []
    assert names(category=ItemCategory.OFFICE_SUPPLIES) == ["100% recycled paper", "Notebook A5"]
    assert names(query="notebook", category=ItemCategory.IT_PERIPHERALS) == []


def test_browsing_takes_a_fixed_number_of_queries(client, db):
    o = rh.office(db)
    db.commit()
    client.sign_in(o.employee.email)
    counts = []
    for batch in (2, 8):
        for n in range(batch):
            item = rh.stocked(db, o.site, f"Thing {batch}-{n}", n, tracked=n % 2 == 0)
            db.add(Asset(item_id=item.id, site_id=o.site.id, asset_tag=f"T-{batch}-{n}"))
        db.commit()
        statements: list[str] = []
        connection = db.connection()
        listener = lambda _c, _cur, sql, *rest: statements.append(sql)  # noqa: E731
        event.listen(connection, "before_cursor_execute", listener)
        assert client.get("/catalog").status_code == 200
        event.remove(connection, "before_cursor_execute", listener)
        counts.append([s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))])
    assert len(counts[0]) == len(counts[1]), "\n".join(counts[1])


def test_the_catalog_page_shows_stock_price_and_approval(client, db):
    o = rh.office(db)
    rh.stocked(db, o.site, "Monitor", 12, price_cents=199_00, unit="piece")
    rh.stocked(
        db, o.site, "Standing desk", 0, price_cents=480_00, lead_time_days=14,
        approval=ApprovalRule.ALWAYS, category=ItemCategory.FURNITURE,
    )  # fmt: skip
    db.commit()
    client.sign_in(o.employee.email)
    page = client.get("/catalog").get_data(as_text=True)
    assert "In stock: 12" in page
    assert "Out of stock — about 14 days" in page
    assert "€199.00" in page and "/ piece" in page
    assert "Needs a coordinator&#39;s approval" in page or "Needs a coordinator's approval" in page
    assert "<html" in page and 'id="draft"' in page


def test_search_as_you_type_answers_with_the_results_fragment(client, db):
    o = rh.office(db)
    rh.stocked(db, o.site, "Monitor", 12)
    rh.stocked(db, o.site, "Mouse", 3)
    db.commit()
    client.sign_in(o.employee.email)
    fragment = client.get("/catalog?q=mon", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert 'id="catalog-results"' in body and "<html" not in body
    assert "Monitor" in body and "Mouse" not in body
    assert "HX-Request" in fragment.headers.get("Vary", "")
    boosted = client.get("/catalog?q=mon", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)
    chips = client.get("/catalog?category=furniture&q=<script>").get_data(as_text=True)
    assert "<script>" not in chips.split("</header>", 1)[1].split("<footer")[0].replace(
        "<script src", ""
    )
    assert "Nothing matches" in chips


def test_adding_a_retired_or_bad_quantity_to_the_draft_is_refused(client, db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 10, max_per_request=5)
    fax = rh.stocked(db, o.site, "Fax", 1, active=False)
    db.commit()
    client.sign_in(o.employee.email)
    for data, message in (
        ({"item_id": fax.id, "quantity": "1"}, "Fax is not offered any more"),
        ({"item_id": "nope", "quantity": "1"}, "not offered any more"),
        ({"item_id": pens.id, "quantity": "-1"}, "cannot be negative"),
        ({"item_id": pens.id, "quantity": "6"}, "at most 5"),
        ({"item_id": pens.id, "quantity": "lots"}, "whole number"),
    ):
        answer = client.submit("/catalog/draft", data, htmx=True)
        assert answer.status_code == 422, data
        assert message in answer.get_data(as_text=True), data
    client.submit("/catalog/draft", {"item_id": pens.id, "quantity": "3"}, htmx=True)
    over = client.submit("/catalog/draft", {"item_id": pens.id, "quantity": "3"}, htmx=True)
    assert over.status_code == 422 and "at most 5" in over.get_data(as_text=True)
    removed = client.submit(f"/catalog/draft/{pens.id}", {"quantity": "0"}, htmx=True)
    assert "Nothing yet" in removed.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# Items


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("12.50", 1250), ("12,5", 1250), ("€ 1,234.50", 123450), ("7", 700), ("0", 0)],
)
def test_prices_are_typed_as_money_and_kept_in_cents(typed, cents):
    assert catalog.parse_money(typed) == cents


@pytest.mark.parametrize(
    ("typed", "message"),
    [("-1", "negative"), ("abc", "for example"), ("1.234", "two decimals"), ("", "Enter"),
     ("NaN", "for example"), ("99999999", "more than")],
)  # fmt: skip
def test_bad_prices_are_refused(typed, message):
    with pytest.raises(RuleViolation) as refused:
        catalog.parse_money(typed)
    assert message in refused.value.errors["price"]


def _item_form(**overrides):
    form = {
        "name": "Webcam",
        "category": "it_peripherals",
        "description": "1080p",
        "unit": "piece",
        "price": "59.90",
        "lead_time_days": "5",
        "approval": "above",
        "approval_above": "100",
        "max_per_request": "2",
        "vendor_id": "0",
    }
    form.update(overrides)
    return form


def test_an_admin_adds_an_item_with_a_photo_and_everyone_can_see_the_photo(client, db, admin):
    o = rh.office(db)
    db.commit()
    client.sign_in(admin.email)
    import io

    data = _item_form()
    data["photo"] = (io.BytesIO(rh.image_bytes("PNG")), "webcam.png")
    answer = client.submit("/admin/catalog/new", data, content_type="multipart/form-data")
    assert answer.status_code == 303, answer.get_data(as_text=True)[:3000]
    item = db.scalar(select(CatalogItem).where(CatalogItem.name == "Webcam"))
    assert (item.price_cents, item.approval_above_cents, item.max_per_request) == (5990, 10000, 2)
    assert item.photo_file and item.photo_file.endswith(".jpg")
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "catalog_item.created"))

    client.post("/sign-out")
    client.sign_in(o.employee.email)
    photo = client.get(f"/catalog/items/{item.id}/photo")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.data[:3] == b"\xff\xd8\xff"  # re-encoded as JPEG
    assert client.get("/catalog/items/999999/photo").status_code == 404


def test_item_form_refuses_bad_input_without_saving(client, db, admin):
    sd.item(db, "Webcam")
    db.commit()
    client.sign_in(admin.email)
    cases = [
        (_item_form(), "name", "already an item called Webcam"),
        (_item_form(name=""), "name", "Give the item a name"),
        (_item_form(name="Cam", price="-3"), "price", "negative"),
        (_item_form(name="Cam", approval_above="0"), "approval_above", "above zero"),
        (_item_form(name="Cam", max_per_request="0"), "max_per_request", "from 1 to"),
        (_item_form(name="Cam", lead_time_days="soon"), "lead_time_days", "whole number"),
        (_item_form(name="Cam", category="weapons"), "category", "Not a valid choice"),
        (_item_form(name="Cam", vendor_id="999"), "vendor_id", "active vendor"),
    ]
    for data, _field, message in cases:
        answer = client.submit("/admin/catalog/new", data, htmx=True)
        assert answer.status_code == 422, data
        assert message in answer.get_data(as_text=True), (data, message)
    assert db.scalar(select(CatalogItem).where(CatalogItem.name == "Cam")) is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"MZ\x90\x00" + b"\x00" * 200, "not a JPEG, PNG or WebP image"),  # a renamed .exe
        (b"GIF89a" + b"\x00" * 100, "not a JPEG, PNG or WebP image"),
    ],
)
def test_a_photo_that_is_not_an_image_is_refused(client, db, admin, payload, message):
    import io

    db.commit()
    client.sign_in(admin.email)
    data = _item_form()
    data["photo"] = (io.BytesIO(payload), "photo.jpg")
    answer = client.submit(
        "/admin/catalog/new", data, htmx=True, content_type="multipart/form-data"
    )
    assert answer.status_code == 422
    assert message in answer.get_data(as_text=True)
    assert db.scalar(select(CatalogItem).where(CatalogItem.name == "Webcam")) is None


def test_a_photo_over_5_mb_is_refused(db):
    item = sd.item(db, "Webcam")
    with pytest.raises(RuleViolation) as refused:
        catalog.set_photo(db, SYSTEM, item, b"\xff" * (5 * 1024 * 1024 + 10), None)  # type: ignore[arg-type]
    assert "most we accept is 5 MB" in refused.value.errors["photo"]
    assert item.photo_file is None


def test_coordinators_cannot_edit_items_and_employees_cannot_open_the_admin(client, db):
    o = rh.office(db)
    item = sd.item(db, "Webcam")
    db.commit()
    client.sign_in(o.coordinator.email)
    assert client.get("/admin/catalog/").status_code == 200
    assert client.get(f"/admin/catalog/{item.id}/edit").status_code == 403
    assert client.submit(f"/admin/catalog/{item.id}/retire").status_code == 403
    client.sign_in(o.employee.email)
    assert client.get("/admin/catalog/").status_code == 403
    assert client.get(f"/admin/catalog/{item.id}/stock").status_code == 403


def test_retiring_hides_an_item_but_keeps_its_history(client, db, admin):
    o = rh.office(db)
    chair = rh.stocked(db, o.site, "Chair", 3, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(chair, 1)])
    db.commit()
    client.sign_in(admin.email)
    assert client.submit(f"/admin/catalog/{chair.id}/retire").status_code == 303
    assert [e.item.name for e in catalog.browse(db, o.site.id)] == []
    retired = client.get("/admin/catalog/?show=retired").get_data(as_text=True)
    assert "Chair" in retired and "Retired" in retired
    client.post("/sign-out")
    client.sign_in(o.employee.email)
    assert "Chair" in client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    client.sign_in(admin.email)
    assert client.submit(f"/admin/catalog/{chair.id}/reactivate").status_code == 303
    actions = set(
        db.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(chair.id)))
    )
    assert {"catalog_item.retired", "catalog_item.reactivated"} <= actions


# ---------------------------------------------------------------------------------------------
# Stock per site


def test_a_coordinator_counts_the_stock_of_their_own_site_only(client, db):
    o = rh.office(db)
    paris = rh.office(db, "paris")
    pens = rh.stocked(db, o.site, "Pens", 10)
    db.commit()
    client.sign_in(o.coordinator.email)
    page = client.get(f"/admin/catalog/{pens.id}/stock").get_data(as_text=True)
    assert o.site.name in page and "Paris" not in page
    saved = client.submit(
        f"/admin/catalog/{pens.id}/stock/{o.site.id}", {"on_hand": "25", "reorder_point": "5"}
    )
    assert saved.status_code == 303
    stock = rh.level(db, pens, o.site)
    assert (stock.on_hand, stock.reorder_point) == (25, 5)
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "stock.counted"))
    other = client.submit(
        f"/admin/catalog/{pens.id}/stock/{paris.site.id}", {"on_hand": "5", "reorder_point": "1"}
    )
    assert other.status_code == 404
    with pytest.raises(NotFound):
        catalog.set_stock(db, SYSTEM, o.coordinator, pens, paris.site, on_hand=1, reorder_point=0)


@pytest.mark.parametrize(
    ("on_hand", "reorder_point", "message"),
    [("-1", "0", "cannot be negative"), ("ten", "0", "whole number"), ("", "0", "Enter"),
     ("5", "-2", "cannot be negative"), ("2", "0", "promised to approved requests")],
)  # fmt: skip
def test_bad_stock_counts_are_refused(client, db, on_hand, reorder_point, message):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 10)
    rh.submit(db, o.employee, o.site, [(pens, 3)])  # 3 promised
    db.commit()
    client.sign_in(o.coordinator.email)
    answer = client.submit(
        f"/admin/catalog/{pens.id}/stock/{o.site.id}",
        {"on_hand": on_hand, "reorder_point": reorder_point},
        htmx=True,
    )
    assert answer.status_code == 422
    assert message in answer.get_data(as_text=True)
    stock = rh.level(db, pens, o.site)
    assert (stock.on_hand, stock.reserved) == (10, 3)


def test_the_admin_list_marks_what_runs_low(client, db, admin):
    o = rh.office(db)
    rh.stocked(db, o.site, "Pens", 2, reorder_point=5)
    rh.stocked(db, o.site, "Paper", 50, reorder_point=5)
    db.commit()
    client.sign_in(admin.email)
    page = client.get("/admin/catalog/?show=low").get_data(as_text=True)
    assert "Pens" in page and "Paper" not in page and "rq-low-key" in page
    rows = catalog.stock_overview(db, [o.site.id])
    assert [r.item.name for r in rows if r.low_at(o.site.id)] == ["Pens"]


def test_categories_come_in_the_order_people_know_them_everywhere(client, db, admin):
    o = rh.office(db)
    for name, category in (
        ("Welcome box", ItemCategory.WELCOME_KITS),
        ("Drill", ItemCategory.EQUIPMENT),
        ("Chair", ItemCategory.FURNITURE),
        ("Mouse", ItemCategory.IT_PERIPHERALS),
        ("Pens", ItemCategory.OFFICE_SUPPLIES),
        ("Another mouse", ItemCategory.IT_PERIPHERALS),
    ):
        rh.stocked(db, o.site, name, 1, category=category)
    db.commit()
    expected = ["Pens", "Another mouse", "Mouse", "Chair", "Drill", "Welcome box"]
    assert [e.item.name for e in catalog.browse(db, o.site.id)] == expected
    overview = catalog.stock_overview(db, [o.site.id])
    assert [row.item.name for row in overview] == expected
    labels = ["Office supplies", "IT peripherals", "Furniture", "Equipment", "Welcome kits"]
    client.sign_in(o.employee.email)
    page = client.get("/catalog").get_data(as_text=True)
    chips = page.split('id="catalog-chips"', 1)[1].split("</fieldset>", 1)[0]
    positions = [chips.index(f"<span>{label}</span>") for label in labels]
    assert positions == sorted(positions)
    cards = [page.index(f'<h2 class="rq-card-title">{name}</h2>') for name in expected]
    assert cards == sorted(cards)
    client.post("/sign-out")
    client.sign_in(admin.email)
    form = client.get("/admin/catalog/new").get_data(as_text=True)
    options = [form.index(f">{label}</option>") for label in labels]
    assert options == sorted(options)
