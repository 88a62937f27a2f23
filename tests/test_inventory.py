"""Stock per site: a coordinator sees what is on hand, reserved and available, which items run
low, receives goods that came without a purchase order and corrects a count after a stock take."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.errors import RuleViolation
from portal.models import (
    AuditEvent,
    ItemCategory,
    LineStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    StockLevel,
    TicketKind,
)
from portal.services import inventory
from tests import factories
from tests import service_desk_factories as sd


@pytest.fixture
def berlin(db):
    return factories.site(db, "berlin")


@pytest.fixture
def coordinator(db, berlin):
    person = factories.user(
        db, name="Cora Coordinator", email="cora@example.com", coordinator_of=berlin
    )
    db.commit()
    return person


@pytest.fixture
def stocked(db, berlin):
    """Paper is plentiful, toner is low (2 available, reorder at 5), a chair has no reorder point."""
    acme = sd.vendor(db, "Acme Office")
    paper = sd.item(
        db,
        "Copy paper A4",
        category=ItemCategory.OFFICE_SUPPLIES,
        price_cents=4_50,
        vendor_id=acme.id,
    )
    toner = sd.item(
        db,
        "Toner cartridge",
        category=ItemCategory.OFFICE_SUPPLIES,
        price_cents=89_00,
        vendor_id=acme.id,
    )
    chair = sd.item(db, "Task chair", category=ItemCategory.FURNITURE, price_cents=249_00)
    levels = {
        "paper": sd.stock(db, paper, berlin, on_hand=40, reorder_point=10),
        "toner": sd.stock(db, toner, berlin, on_hand=4, reorder_point=5),
        "chair": sd.stock(db, chair, berlin, on_hand=3),
    }
    levels["toner"].reserved = 2
    db.commit()
    return levels


def stock_table(page: str) -> str:
    """The stock table of the page (the item pickers of the forms list the whole catalog)."""
    start = page.index('id="stock"')
    end = page.find('id="receive-form"', start)
    return page[start : end if end > 0 else len(page)]


def on_order(db, level, quantity, *, received=0, for_request=0, requester=None):
    """An open purchase order for `quantity` of the level's item at its site, `received` of
    them delivered already, `for_request` of them bought for an approved request."""
    order = PurchaseOrder(
        number=f"PO-2026-{db.query(PurchaseOrder).count() + 1:04d}",
        vendor_id=level.item.vendor_id,
        site_id=level.site_id,
        status="partial" if received else "open",
    )
    order.lines.append(
        PurchaseOrderLine(
            item_id=level.item_id,
            quantity=quantity,
            received_quantity=received,
            unit_price_cents=level.item.price_cents,
        )
    )
    db.add(order)
    db.flush()
    if for_request:
        ticket = sd.ticket(
            db,
            requester,
            level.site,
            kind=TicketKind.REQUEST,
            title="Toner for the team",
            category="office_supplies",
            lines=[(level.item, for_request)],
        )
        for line in ticket.lines:
            line.status = LineStatus.ORDERED
            line.purchase_order_id = order.id
    db.commit()
    return order


def low_list(page: str) -> str:
    return page[page.index('id="low-title"') : page.index('id="stock"')]


def level_of(db, level):
    db.expire_all()
    return db.get(StockLevel, level.id)


# ---------------------------------------------------------------------------------------------
# Seeing stock


def test_the_stock_page_shows_each_items_numbers_and_value(client, coordinator, stocked):
    client.sign_in(coordinator.email)
    page = client.get("/inventory").get_data(as_text=True)

    assert "Copy paper A4" in page and "Toner cartridge" in page and "Task chair" in page
    # toner: 4 on hand, 2 reserved, 2 available; value 4 x €89.00
    assert "€356.00" in page
    # paper: 40 x €4.50
    assert "€180.00" in page
    # total stock value: 180 + 356 + 3 x 249
    assert "€1,283.00" in page


def test_low_stock_lists_only_what_runs_low_with_an_order_shortcut(
    client, coordinator, stocked, berlin
):
    client.sign_in(coordinator.email)
    page = client.get("/inventory").get_data(as_text=True)

    low = page[page.index('id="low-title"') : page.index('id="stock"')]
    assert "Toner cartridge" in low
    assert "Copy paper A4" not in low  # 40 available, reorder at 10
    assert "Task chair" not in low  # no reorder point: not tracked for reordering
    toner = stocked["toner"]
    # restock up to twice the reorder point: 2 x 5 - 2 available = 8
    assert "Order 8" in low
    assert f"/inventory/sites/{berlin.id}/purchase-orders/new?restock={toner.item_id}" in low


def test_low_stock_counts_what_open_purchase_orders_still_bring(
    client, db, coordinator, stocked, berlin, employee
):
    toner = stocked["toner"]  # 2 available, reorder at 5: up to 10 means 8 to buy
    on_order(db, toner, 4, for_request=1, requester=employee)  # 3 of them for the shelf
    on_order(db, toner, 5, received=4)  # 1 more still to come
    client.sign_in(coordinator.email)
    low = low_list(client.get("/inventory").get_data(as_text=True))

    assert "Toner cartridge" in low
    assert "5 on order" in low and "(1 for requests)" in low
    assert "Order 4" in low and "Order 8" not in low  # 10 - 2 available - 4 coming to the shelf
    table = stock_table(client.get("/inventory").get_data(as_text=True))
    assert "5 on order" in table

    # "Create purchase orders" restocks by the same rule
    page = client.get(
        f"/inventory/sites/{berlin.id}/purchase-orders/new?restock={toner.item_id}"
    ).get_data(as_text=True)
    assert "Restock 4" in page and "5 on order" in page


def test_an_item_whose_orders_cover_it_is_shown_on_order_not_to_order_again(
    client, db, coordinator, stocked, berlin
):
    toner = stocked["toner"]
    on_order(db, toner, 8)  # 2 available + 8 coming = twice the reorder point
    client.sign_in(coordinator.email)
    page = client.get("/inventory").get_data(as_text=True)
    low = low_list(page)

    assert "Toner cartridge" in low and "8 on order" in low and "On order" in low
    assert "Order 0" not in low and f"restock={toner.item_id}" not in low
    assert "Everything low is on order" in low and "Order all" not in low
    assert inventory.restock_needs(db, (berlin.id,))[0].covered

    plan = client.get(f"/inventory/sites/{berlin.id}/purchase-orders/new").get_data(as_text=True)
    assert 'name="restock"' not in plan  # nothing offered to restock
    assert "already on order" in plan and "Toner cartridge" in plan
    response = client.submit(
        f"/inventory/sites/{berlin.id}/purchase-orders", {"restock": [str(toner.item_id)]}
    )
    assert response.status_code == 422  # asking anyway orders nothing
    assert db.query(PurchaseOrder).count() == 1


def test_received_orders_and_other_sites_orders_do_not_count(db, stocked, berlin):
    toner = stocked["toner"]
    on_order(db, toner, 6, received=6)  # all delivered (and already on the shelf)
    hamburg = factories.site(db, "hamburg")
    elsewhere = sd.stock(db, toner.item, hamburg, on_hand=0, reorder_point=1)
    on_order(db, elsewhere, 6)
    (need,) = inventory.restock_needs(db, (berlin.id,))
    assert need.on_order.quantity == 0 and need.quantity == 8


def test_low_stock_follows_availability_not_what_is_on_hand(db, berlin, stocked):
    paper = stocked["paper"]
    paper.reserved = 30  # 40 on hand but only 10 available: at the reorder point
    db.flush()
    low = inventory.low_stock(db, (berlin.id,))
    assert [level.item.name for level in low] == ["Toner cartridge", "Copy paper A4"]
    assert inventory.restock_quantity(paper) == 10


def test_filters_by_category_and_search_answer_htmx_with_the_table_only(
    client, coordinator, stocked
):
    client.sign_in(coordinator.email)
    response = client.get("/inventory?category=furniture", headers={"HX-Request": "true"})
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert text.lstrip().startswith('<div id="stock"')
    assert "Task chair" in text and "Copy paper" not in text

    text = client.get("/inventory?q=toner").get_data(as_text=True)
    table = text[text.index('id="stock"') : text.index('id="receive-form"')]
    assert "Toner cartridge" in table and "Copy paper" not in table

    text = client.get("/inventory?low=1").get_data(as_text=True)
    table = text[text.index('id="stock"') : text.index('id="receive-form"')]
    assert "Toner cartridge" in table and "Task chair" not in table


def test_a_search_with_like_wildcards_matches_them_literally(client, coordinator, stocked):
    client.sign_in(coordinator.email)
    text = client.get("/inventory?q=%25").get_data(as_text=True)
    assert "No stock matches these filters" in text


def test_a_coordinator_sees_only_their_own_sites_stock(client, db, coordinator, stocked):
    hamburg = factories.site(db, "hamburg")
    secret = sd.item(db, "Hamburg-only stapler")
    sd.stock(db, secret, hamburg, on_hand=7)
    db.commit()
    client.sign_in(coordinator.email)
    for url in ("/inventory", f"/inventory?site={hamburg.id}", "/inventory?site=all"):
        page = client.get(url).get_data(as_text=True)
        assert "Copy paper A4" in stock_table(page)
        assert "Hamburg-only stapler" not in stock_table(page)


def test_an_admin_sees_every_site(client, db, admin, stocked):
    hamburg = factories.site(db, "hamburg")
    sd.stock(db, sd.item(db, "Hamburg stapler"), hamburg, on_hand=7)
    db.commit()
    client.sign_in(admin.email)
    table = stock_table(client.get("/inventory?site=all").get_data(as_text=True))
    assert "Hamburg stapler" in table and "Copy paper A4" in table


def test_employees_may_not_see_inventory(client, employee):
    client.sign_in(employee.email)
    assert client.get("/inventory").status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/inventory")
    assert response.status_code in (302, 303)
    assert "/sign-in" in response.headers["Location"]


# ---------------------------------------------------------------------------------------------
# Receiving stock without a purchase order


def test_receiving_stock_adds_to_what_is_on_hand_and_is_audited(
    client, db, coordinator, stocked, berlin
):
    client.sign_in(coordinator.email)
    toner = stocked["toner"]
    response = client.submit(
        f"/inventory/sites/{berlin.id}/receive",
        {
            "receive-item": toner.item_id,
            "receive-quantity": "6",
            "receive-note": "Courier delivery",
        },
    )
    assert response.status_code == 303
    assert level_of(db, toner).on_hand == 10
    assert level_of(db, toner).reserved == 2
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "stock.received"))
    assert event.before["on_hand"] == 4 and event.after["on_hand"] == 10
    assert event.after["note"] == "Courier delivery"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Received 6 × Toner cartridge. On hand now: 10." in page


def test_receiving_an_item_never_stocked_here_starts_its_stock(client, db, coordinator, berlin):
    mouse = sd.item(db, "Wireless mouse")
    db.commit()
    client.sign_in(coordinator.email)
    response = client.submit(
        f"/inventory/sites/{berlin.id}/receive",
        {"receive-item": mouse.id, "receive-quantity": "12"},
        htmx=True,
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/inventory")
    level = db.scalar(select(StockLevel).where(StockLevel.item_id == mouse.id))
    assert (level.site_id, level.on_hand, level.reserved) == (berlin.id, 12, 0)


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("-3", "cannot be negative"),
        ("0", "at least 1"),
        ("1000000", "more than 100,000"),
        ("99999999999999999999999", "more than 100,000"),
        ("twelve", "whole number"),
        ("1.5", "whole number"),
        ("", "how many arrived"),
    ],
)
def test_bad_quantities_are_refused_with_a_clear_message(
    client, db, coordinator, stocked, berlin, quantity, message
):
    client.sign_in(coordinator.email)
    paper = stocked["paper"]
    response = client.submit(
        f"/inventory/sites/{berlin.id}/receive",
        {"receive-item": paper.item_id, "receive-quantity": quantity},
        htmx=True,
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="receive-form"' in text and "<html" not in text
    assert message in text
    assert level_of(db, paper).on_hand == 40


def test_a_retired_or_unknown_item_cannot_be_received(client, db, coordinator, berlin):
    old = sd.item(db, "Fax paper", active=False)
    db.commit()
    client.sign_in(coordinator.email)
    url = f"/inventory/sites/{berlin.id}/receive"
    text = client.submit(url, {"receive-item": old.id, "receive-quantity": "5"}).get_data(
        as_text=True
    )
    assert "retired from the catalog" in text
    response = client.submit(url, {"receive-item": "999999", "receive-quantity": "5"})
    assert response.status_code == 422
    assert "Choose an item from the list" in response.get_data(as_text=True)
    assert db.scalar(select(StockLevel).where(StockLevel.item_id == old.id)) is None


def test_a_plain_form_error_renders_the_whole_page(client, coordinator, stocked, berlin):
    client.sign_in(coordinator.email)
    response = client.submit(
        f"/inventory/sites/{berlin.id}/receive",
        {"receive-item": stocked["paper"].item_id, "receive-quantity": "-1"},
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in text and "Copy paper A4" in text


# ---------------------------------------------------------------------------------------------
# Correcting a count


def test_a_count_sets_what_is_on_hand_and_keeps_the_reason(
    client, db, coordinator, stocked, berlin
):
    client.sign_in(coordinator.email)
    paper = stocked["paper"]
    response = client.submit(
        f"/inventory/sites/{berlin.id}/count",
        {
            "count-item": paper.item_id,
            "count-counted": "37",
            "count-reason": "Quarterly stock take",
        },
    )
    assert response.status_code == 303
    assert level_of(db, paper).on_hand == 37
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "stock.counted"))
    assert event.before["on_hand"] == 40 and event.after["on_hand"] == 37
    assert event.after["change"] == -3 and event.after["reason"] == "Quarterly stock take"
    assert "37 on hand (-3)" in client.get("/inventory").get_data(as_text=True)


def test_a_count_of_zero_is_allowed(client, db, coordinator, stocked, berlin):
    client.sign_in(coordinator.email)
    chair = stocked["chair"]
    response = client.submit(
        f"/inventory/sites/{berlin.id}/count",
        {"count-item": chair.item_id, "count-counted": "0", "count-reason": "Broken, thrown away"},
    )
    assert response.status_code == 303
    assert level_of(db, chair).on_hand == 0


def test_a_count_needs_a_reason(client, db, coordinator, stocked, berlin):
    client.sign_in(coordinator.email)
    paper = stocked["paper"]
    response = client.submit(
        f"/inventory/sites/{berlin.id}/count",
        {"count-item": paper.item_id, "count-counted": "30", "count-reason": "  "},
        htmx=True,
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="count-form"' in text
    assert "Say why the count changed" in text
    assert level_of(db, paper).on_hand == 40
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "stock.counted")) is None


def test_a_count_below_what_is_reserved_is_refused(client, db, coordinator, stocked, berlin):
    client.sign_in(coordinator.email)
    toner = stocked["toner"]  # 2 reserved
    response = client.submit(
        f"/inventory/sites/{berlin.id}/count",
        {"count-item": toner.item_id, "count-counted": "1", "count-reason": "Stock take"},
        htmx=True,
    )
    assert response.status_code == 422
    assert "set aside for approved requests" in response.get_data(as_text=True)
    assert level_of(db, toner).on_hand == 4


def test_a_negative_count_is_refused(client, db, coordinator, stocked, berlin):
    client.sign_in(coordinator.email)
    response = client.submit(
        f"/inventory/sites/{berlin.id}/count",
        {"count-item": stocked["paper"].item_id, "count-counted": "-5", "count-reason": "x"},
        htmx=True,
    )
    assert response.status_code == 422
    assert "cannot be negative" in response.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# Permissions on a site's stock


def test_a_coordinator_of_another_site_gets_404_when_changing_its_stock(
    client, db, stocked, berlin
):
    hamburg = factories.site(db, "hamburg")
    other = factories.user(db, email="hugo@example.com", coordinator_of=hamburg)
    db.commit()
    client.sign_in(other.email)
    paper = stocked["paper"]
    receive = client.submit(
        f"/inventory/sites/{berlin.id}/receive",
        {"receive-item": paper.item_id, "receive-quantity": "5"},
    )
    count = client.submit(
        f"/inventory/sites/{berlin.id}/count",
        {"count-item": paper.item_id, "count-counted": "0", "count-reason": "Gone"},
    )
    missing = client.submit(
        "/inventory/sites/999999/receive", {"receive-item": paper.item_id, "receive-quantity": "5"}
    )
    assert (receive.status_code, count.status_code, missing.status_code) == (404, 404, 404)
    assert level_of(db, paper).on_hand == 40


def test_employees_may_not_change_stock(client, employee, stocked, berlin):
    client.sign_in(employee.email)
    response = client.submit(
        f"/inventory/sites/{berlin.id}/receive",
        {"receive-item": stocked["paper"].item_id, "receive-quantity": "5"},
    )
    assert response.status_code == 403


# ---------------------------------------------------------------------------------------------
# The rules on their own


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12", 12), (" 7 ", 7), ("1,000", 1000), ("+3", 3), ("100000", 100_000), ("007", 7)],
)
def test_quantities_people_type_are_read_as_whole_numbers(raw, expected):
    assert inventory.parse_quantity(raw, "quantity") == expected


@pytest.mark.parametrize("raw", ["0", "-1", "-0.5", "1e3", "100001", "١٢", "12 pcs", None])
def test_quantities_that_are_not_a_positive_whole_number_are_refused(raw):
    with pytest.raises(RuleViolation) as refused:
        inventory.parse_quantity(raw, "quantity")
    assert set(refused.value.errors) == {"quantity"}


def test_reserving_never_promises_more_than_is_available(db, berlin, stocked):
    toner = stocked["toner"]  # 4 on hand, 2 reserved
    assert inventory.reserve(db, toner, 3) is False
    assert inventory.reserve(db, toner, 2) is True
    assert (toner.on_hand, toner.reserved) == (4, 4)
    assert inventory.reserve(db, toner, 1) is False


def test_a_boosted_request_gets_the_whole_page(client, coordinator, stocked):
    client.sign_in(coordinator.email)
    response = client.get(
        "/inventory?category=furniture", headers={"HX-Request": "true", "HX-Boosted": "true"}
    )
    text = response.get_data(as_text=True)
    assert "<html" in text and "Task chair" in stock_table(text)
    assert "HX-Request" in response.headers["Vary"]
