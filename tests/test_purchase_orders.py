"""Purchase orders: approved request lines short of stock (and chosen low-stock items) become
one numbered order per vendor; the order prints as a PDF and exports as CSV; receiving against
it puts the goods on the shelf and sets them aside for the requests they were bought for."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import threading
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.db import session_factories, utcnow
from portal.models import (
    AuditEvent,
    LineStatus,
    OutboxMessage,
    PurchaseOrder,
    PurchaseOrderLine,
    RequestLine,
    StockLevel,
    Ticket,
    TicketKind,
    TicketStatus,
    User,
)
from portal.services import purchase_orders
from portal.services.audit import Actor
from tests import factories
from tests import service_desk_factories as sd

YEAR = utcnow().astimezone(ZoneInfo("Europe/Berlin")).year


def backordered(db, requester, site, *lines, title="Desk setup"):
    """An approved request whose lines are all short of stock: they must be bought."""
    ticket = sd.ticket(
        db,
        requester,
        site,
        kind=TicketKind.REQUEST,
        title=title,
        category="it_peripherals",
        lines=list(lines),
    )
    ticket.status = TicketStatus.APPROVED
    for line in ticket.lines:
        line.status = LineStatus.BACKORDERED
    db.flush()
    return ticket


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
def shop(db, berlin, employee):
    """Two vendors, one item without a vendor, and two requests waiting for stock."""
    acme = sd.vendor(db, "Acme Office", contact_name="Ann Acme")
    tech = sd.vendor(db, "Techworld")
    paper = sd.item(db, "Copy paper A4", price_cents=4_50, vendor_id=acme.id)
    pens = sd.item(db, "Gel pens (10)", price_cents=7_00, vendor_id=acme.id)
    monitor = sd.item(db, "27-inch monitor", price_cents=289_00, vendor_id=tech.id)
    lamp = sd.item(db, "Desk lamp", price_cents=39_00)  # no vendor
    colleague = factories.user(db, name="Colin Colleague", email="colin@example.com")
    first = backordered(db, employee, berlin, (monitor, 1), (paper, 2), title="New starter kit")
    second = backordered(
        db, colleague, berlin, (monitor, 2), (pens, 1), (lamp, 1), title="Team desk"
    )
    db.commit()
    return {
        "acme": acme,
        "tech": tech,
        "paper": paper,
        "pens": pens,
        "monitor": monitor,
        "lamp": lamp,
        "first": first,
        "second": second,
        "colleague": colleague,
    }


def orders_in(db):
    db.expire_all()
    return list(db.scalars(select(PurchaseOrder).order_by(PurchaseOrder.id)))


def create(client, site, restock=()):
    return client.submit(
        f"/inventory/sites/{site.id}/purchase-orders", {"restock": [str(i) for i in restock]}
    )


# ---------------------------------------------------------------------------------------------
# Creating: one order per vendor


def test_the_preview_groups_waiting_lines_by_vendor_and_names_what_needs_a_vendor(
    client, coordinator, berlin, shop
):
    client.sign_in(coordinator.email)
    page = client.get(f"/inventory/sites/{berlin.id}/purchase-orders/new").get_data(as_text=True)
    acme = page[page.index("Acme Office") : page.index("Techworld")]
    assert "Copy paper A4" in acme and "Gel pens" in acme and "monitor" not in acme
    tech = page[page.index("Techworld") :]
    assert "27-inch monitor" in tech and "€867.00" in tech  # 3 x €289.00
    needs = page[page.index("Needs a vendor") : page.index("Acme Office")]
    assert "Desk lamp" in needs and shop["second"].number in needs
    assert "Create 2 purchase orders" in page


def test_creating_makes_one_numbered_order_per_vendor(client, db, coordinator, berlin, shop):
    client.sign_in(coordinator.email)
    response = create(client, berlin)
    assert response.status_code == 303

    orders = orders_in(db)
    assert [(o.number, o.vendor.name) for o in orders] == [
        (f"PO-{YEAR}-0001", "Acme Office"),
        (f"PO-{YEAR}-0002", "Techworld"),
    ]
    acme, tech = orders
    assert [(ln.item.name, ln.quantity, ln.unit_price_cents) for ln in acme.lines] == [
        ("Copy paper A4", 2, 4_50),
        ("Gel pens (10)", 1, 7_00),
    ]
    assert [(ln.item.name, ln.quantity) for ln in tech.lines] == [("27-inch monitor", 3)]
    assert all(o.status == "open" and o.created_by_id == coordinator.id for o in orders)
    assert (
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "purchase_order.created")
        )
        == 2
    )

    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"PO-{YEAR}-0001 (Acme Office)" in page and "Not ordered, no vendor: Desk lamp" in page


def test_ordered_lines_point_at_their_order_and_requests_move_on(
    client, db, coordinator, berlin, shop
):
    client.sign_in(coordinator.email)
    create(client, berlin)
    db.expire_all()
    first, second = db.get(Ticket, shop["first"].id), db.get(Ticket, shop["second"].id)
    by_item = {
        line.item.name: line for line in first.lines + second.lines if line.ticket_id == second.id
    }
    assert by_item["Desk lamp"].status == LineStatus.BACKORDERED  # no vendor: not ordered
    assert by_item["Desk lamp"].purchase_order_id is None
    assert all(
        line.status == LineStatus.ORDERED and line.purchase_order_id is not None
        for line in first.lines
    )
    # every approved line of the first request is ordered: it is "ordered", and its requester told
    assert first.status == TicketStatus.ORDERED
    told = db.scalars(select(OutboxMessage).where(OutboxMessage.to_address == "erin@example.com"))
    assert any("Ordered" in message.subject for message in told)
    # the second still waits for the lamp
    assert second.status == TicketStatus.APPROVED


def test_low_stock_items_can_be_restocked_up_to_twice_the_reorder_point(
    client, db, coordinator, berlin, shop
):
    level = sd.stock(db, shop["pens"], berlin, on_hand=5, reorder_point=4)
    level.reserved = 2  # 3 available
    toner = sd.item(db, "Toner", price_cents=80_00, vendor_id=shop["tech"].id)
    sd.stock(db, toner, berlin, on_hand=1, reorder_point=3)
    db.commit()
    client.sign_in(coordinator.email)

    page = client.get(
        f"/inventory/sites/{berlin.id}/purchase-orders/new?restock={shop['pens'].id}"
    ).get_data(as_text=True)
    assert "Restock 5" in page  # 2 x 4 - 3 available
    assert "Toner" in page  # offered, not chosen

    create(client, berlin, restock=[shop["pens"].id])
    acme = next(o for o in orders_in(db) if o.vendor.name == "Acme Office")
    pens = next(ln for ln in acme.lines if ln.item.name == "Gel pens (10)")
    assert pens.quantity == 1 + 5  # the request's line plus the restock
    tech = next(o for o in orders_in(db) if o.vendor.name == "Techworld")
    assert [ln.item.name for ln in tech.lines] == ["27-inch monitor"]  # toner not chosen


def test_restocking_twice_counts_what_the_first_order_brings(client, db, coordinator, berlin):
    acme = sd.vendor(db, "Acme")
    toner = sd.item(db, "Toner", vendor_id=acme.id)
    sd.stock(db, toner, berlin, on_hand=1, reorder_point=5)  # up to 10: 9 to buy
    db.commit()
    client.sign_in(coordinator.email)
    create(client, berlin, restock=[toner.id])
    (first,) = orders_in(db)
    assert [ln.quantity for ln in first.lines] == [9]

    # a coordinator who asks again before it arrives is not sold the same 9 twice
    response = create(client, berlin, restock=[toner.id])
    assert response.status_code == 422 and "Nothing to order" in response.get_data(as_text=True)
    assert len(orders_in(db)) == 1

    # half of it arrives and 3 go out: 3 more are missing, and only those are ordered
    client.submit(
        f"/inventory/purchase-orders/{first.id}/receive",
        {f"line-{first.lines[0].id}": "4", "version": str(first.version)},
    )
    level = db.scalar(select(StockLevel).where(StockLevel.item_id == toner.id))
    level.on_hand -= 3
    db.commit()
    page = client.get("/inventory").get_data(as_text=True)
    assert "5 on order" in page and "Order 3" in page
    create(client, berlin, restock=[toner.id])
    assert [ln.quantity for o in orders_in(db) for ln in o.lines] == [9, 3]


def test_only_restocking_is_enough_for_an_order(client, db, coordinator, berlin):
    acme = sd.vendor(db, "Acme")
    toner = sd.item(db, "Toner", vendor_id=acme.id)
    sd.stock(db, toner, berlin, on_hand=0, reorder_point=2)
    db.commit()
    client.sign_in(coordinator.email)
    response = create(client, berlin, restock=[toner.id])
    (order,) = orders_in(db)
    assert response.headers["Location"] == f"/inventory/purchase-orders/{order.id}"
    assert [(ln.item.name, ln.quantity) for ln in order.lines] == [("Toner", 4)]


def test_nothing_to_order_is_said_plainly(client, db, coordinator, berlin):
    client.sign_in(coordinator.email)
    response = client.submit(f"/inventory/sites/{berlin.id}/purchase-orders", htmx=True)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert 'id="order-plan"' in text and "Nothing to order" in text
    assert orders_in(db) == []


def test_items_that_all_lack_a_vendor_are_refused_with_their_names(
    client, db, coordinator, berlin, employee
):
    lamp = sd.item(db, "Desk lamp")
    backordered(db, employee, berlin, (lamp, 1))
    db.commit()
    client.sign_in(coordinator.email)
    response = create(client, berlin)
    assert response.status_code == 422
    assert "Desk lamp need a vendor" in response.get_data(as_text=True)


def test_lines_already_ordered_are_not_ordered_twice(client, db, coordinator, berlin, shop):
    client.sign_in(coordinator.email)
    create(client, berlin)
    again = client.submit(f"/inventory/sites/{berlin.id}/purchase-orders", {})
    assert again.status_code == 422  # only the lamp is left, and it has no vendor
    assert len(orders_in(db)) == 2


# ---------------------------------------------------------------------------------------------
# Numbers


def test_numbers_continue_the_years_sequence(db, berlin, coordinator, shop):
    db.add(PurchaseOrder(number=f"PO-{YEAR}-0041", vendor_id=shop["acme"].id, site_id=berlin.id))
    db.add(
        PurchaseOrder(number=f"PO-{YEAR - 1}-0099", vendor_id=shop["acme"].id, site_id=berlin.id)
    )
    db.flush()
    created, _ = purchase_orders.create_orders(
        db, Actor.system("tests"), berlin, by=coordinator, now=utcnow()
    )
    assert [o.number for o in created] == [f"PO-{YEAR}-0042", f"PO-{YEAR}-0043"]


def test_numbers_past_9999_keep_counting(db, berlin, coordinator, shop):
    db.add(PurchaseOrder(number=f"PO-{YEAR}-9999", vendor_id=shop["acme"].id, site_id=berlin.id))
    db.add(PurchaseOrder(number=f"PO-{YEAR}-10000", vendor_id=shop["acme"].id, site_id=berlin.id))
    db.flush()
    created, _ = purchase_orders.create_orders(
        db, Actor.system("tests"), berlin, by=coordinator, now=utcnow()
    )
    assert created[0].number == f"PO-{YEAR}-10001"


def test_a_number_taken_meanwhile_is_retried_with_the_next(
    db, berlin, coordinator, shop, monkeypatch
):
    """A colleague committed PO-…-0001 after we looked: the unique constraint refuses our copy,
    and the order is saved as …-0002 with nothing else lost."""
    db.add(PurchaseOrder(number=f"PO-{YEAR}-0001", vendor_id=shop["acme"].id, site_id=berlin.id))
    db.flush()
    real = purchase_orders._last_sequence
    looks: list[int] = []

    def stale_then_real(session, year):
        looks.append(year)
        return 0 if len(looks) == 1 else real(session, year)

    monkeypatch.setattr(purchase_orders, "_last_sequence", stale_then_real)
    created, _ = purchase_orders.create_orders(
        db, Actor.system("tests"), berlin, by=coordinator, now=utcnow()
    )
    assert [o.number for o in created] == [f"PO-{YEAR}-0002", f"PO-{YEAR}-0003"]
    assert all(len(o.lines) > 0 for o in created)
    assert db.scalar(select(func.count()).select_from(PurchaseOrderLine)) == 3


RACERS = 8


def test_coordinators_creating_orders_at_the_same_instant_get_distinct_numbers(fresh_engine):
    """Real concurrent connections, one per coordinator and site, released together."""
    _reader, writer = session_factories(fresh_engine)
    with writer() as session, session.begin():
        vendor = sd.vendor(session, "Acme")
        item = sd.item(session, "Stapler", vendor_id=vendor.id)
        requester = factories.user(session, email="req@example.com", password=None)
        jobs = []
        for n in range(RACERS):
            site = factories.site(session, f"site-{n}")
            person = factories.user(
                session, email=f"coord{n}@example.com", password=None, coordinator_of=site
            )
            backordered(session, requester, site, (item, 1))
            jobs.append((site.id, person.id))

    barrier = threading.Barrier(RACERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(site_id: int, person_id: int) -> None:
        barrier.wait()
        with writer() as session:
            try:
                with session.begin():
                    from portal.models import Site

                    created, _ = purchase_orders.create_orders(
                        session,
                        Actor.system("race"),
                        session.get(Site, site_id),
                        by=session.get(User, person_id),
                        now=utcnow(),
                    )
                result = created[0].number
            except Exception as exc:  # noqa: BLE001 - any error is a failure we count
                result = f"error: {type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [o for o in outcomes if o.startswith("error")] == []
    assert sorted(outcomes) == [f"PO-{YEAR}-{n:04d}" for n in range(1, RACERS + 1)]
    with writer() as session:
        assert session.scalar(select(func.count()).select_from(PurchaseOrder)) == RACERS
        assert (
            session.scalar(
                select(func.count())
                .select_from(RequestLine)
                .where(RequestLine.status == LineStatus.ORDERED)
            )
            == RACERS
        )


# ---------------------------------------------------------------------------------------------
# Looking at orders


@pytest.fixture
def ordered(client, db, coordinator, berlin, shop):
    client.sign_in(coordinator.email)
    create(client, berlin)
    acme, tech = orders_in(db)
    return {**shop, "acme": acme, "tech": tech}


def test_the_list_shows_orders_and_filters_by_status(client, db, ordered):
    page = client.get("/inventory/purchase-orders").get_data(as_text=True)
    assert ordered["acme"].number in page and ordered["tech"].number in page
    assert "€16.00" in page  # acme: 2 x 4.50 + 7.00
    ordered["tech"].status = "received"
    db.commit()
    text = client.get(
        "/inventory/purchase-orders?status=received", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert text.lstrip().startswith('<div id="orders"')
    assert ordered["tech"].number in text and ordered["acme"].number not in text


def test_an_order_shows_its_lines_prices_total_and_the_requests_it_serves(client, ordered):
    tech = ordered["tech"]
    page = client.get(f"/inventory/purchase-orders/{tech.id}").get_data(as_text=True)
    assert tech.number in page and "Techworld" in page
    assert "27-inch monitor" in page and "€289.00" in page and "€867.00" in page
    assert ordered["first"].number in page and ordered["second"].number in page
    assert f"/requests/{ordered['first'].id}" in page


def pdf_text(data: bytes, tmp_path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "po.pdf"
    path.write_bytes(data)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_an_order_prints_as_an_a4_pdf(client, ordered, tmp_path):
    acme = ordered["acme"]
    response = client.get(f"/inventory/purchase-orders/{acme.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    data = response.get_data()
    assert data.startswith(b"%PDF")
    text = pdf_text(data, tmp_path)
    assert acme.number in text
    assert "Acme Office" in text and "Ann Acme" in text and "Berlin" in text
    assert "Copy paper A4" in text and "Gel pens (10)" in text
    assert "€16.00" in text
    assert ordered["first"].number in text


def test_an_order_exports_as_csv_that_a_spreadsheet_cannot_run(client, db, ordered):
    acme = ordered["acme"]
    ordered["pens"].name = '=HYPERLINK("http://evil.example","click")'
    ordered["acme"].vendor.name = "+Acme @ cmd"
    db.commit()
    response = client.get(f"/inventory/purchase-orders/{acme.id}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'filename="{acme.number}.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    header, *lines, total = rows
    assert header[0] == "Purchase order" and header[8] == "Quantity"
    assert [row[6] for row in lines] == [
        "Copy paper A4",
        '\'=HYPERLINK("http://evil.example","click")',
    ]
    assert {row[2] for row in lines} == {"'+Acme @ cmd"}
    assert [(row[8], row[10], row[11]) for row in lines] == [
        ("2", "4.50", "9.00"),
        ("1", "7.00", "7.00"),
    ]
    assert lines[0][12] == f"{ordered['first'].number}×2"
    assert total[0] == "Total" and total[11] == "16.00"
    for row in rows:
        for cell in row:
            assert not re.match(r"^[=+\-@\t\r]", cell), cell


# ---------------------------------------------------------------------------------------------
# Receiving


def receive(client, order, quantities, version=None, htmx=False):
    data = {f"line-{line_id}": str(q) for line_id, q in quantities.items()}
    data["version"] = str(order.version if version is None else version)
    return client.submit(f"/inventory/purchase-orders/{order.id}/receive", data, htmx=htmx)


def stock_of(db, item, site):
    db.expire_all()
    return db.scalar(
        select(StockLevel).where(StockLevel.item_id == item.id, StockLevel.site_id == site.id)
    )


def test_a_partial_delivery_goes_on_the_shelf_and_serves_the_oldest_request_first(
    client, db, ordered, berlin
):
    tech = ordered["tech"]  # 3 monitors: 1 for the first request, 2 for the second
    (line,) = tech.lines
    response = receive(client, tech, {line.id: 1})
    assert response.status_code == 303
    db.expire_all()
    order = db.get(PurchaseOrder, tech.id)
    assert order.status == "partial" and order.lines[0].received_quantity == 1
    level = stock_of(db, ordered["monitor"], berlin)
    assert (level.on_hand, level.reserved) == (1, 1)  # set aside for the first request
    first = db.get(Ticket, ordered["first"].id)
    monitor_line = next(ln for ln in first.lines if ln.item_id == ordered["monitor"].id)
    assert monitor_line.status == LineStatus.READY
    assert first.status == TicketStatus.ORDERED  # its paper has not come yet
    second = db.get(Ticket, ordered["second"].id)
    assert all(ln.status != LineStatus.READY for ln in second.lines)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "now partly received" in page and "1 request line is set aside" in page


def test_when_everything_arrives_the_request_is_ready_and_the_requester_told(
    client, db, ordered, berlin
):
    tech, acme = ordered["tech"], ordered["acme"]
    receive(client, tech, {tech.lines[0].id: 3})
    paper, pens = acme.lines
    receive(client, acme, {paper.id: 2, pens.id: 1})
    db.expire_all()
    assert db.get(PurchaseOrder, tech.id).status == "received"
    assert db.get(PurchaseOrder, tech.id).received_at is not None
    first = db.get(Ticket, ordered["first"].id)
    assert {ln.status for ln in first.lines} == {LineStatus.READY}
    assert first.status == TicketStatus.READY
    told = db.scalars(select(OutboxMessage).where(OutboxMessage.to_address == "erin@example.com"))
    assert any("Ready for pick-up" in message.subject for message in told)
    # the second request still waits for its lamp (no vendor): not ready yet
    assert db.get(Ticket, ordered["second"].id).status == TicketStatus.APPROVED
    level = stock_of(db, ordered["monitor"], berlin)
    assert (level.on_hand, level.reserved) == (3, 3)
    assert (
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "purchase_order.received")
        )
        == 2
    )


def test_receiving_more_than_was_ordered_is_refused(client, db, ordered, berlin):
    tech = ordered["tech"]
    (line,) = tech.lines
    receive(client, tech, {line.id: 2})
    db.expire_all()
    tech = db.get(PurchaseOrder, tech.id)
    response = receive(client, tech, {line.id: 2}, htmx=True)
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="po-body"' in text and "<html" not in text
    assert "At most 1 more: 3 ordered, 2 received already." in text
    assert 'value="2"' in text  # what was typed stays in the box
    db.expire_all()
    assert db.get(PurchaseOrder, tech.id).lines[0].received_quantity == 2
    assert stock_of(db, ordered["monitor"], berlin).on_hand == 2


@pytest.mark.parametrize(
    ("typed", "message"),
    [("-1", "cannot be negative"), ("lots", "whole number"), ("0", "at least one line")],
)
def test_bad_received_quantities_change_nothing(client, db, ordered, berlin, typed, message):
    tech = ordered["tech"]
    response = receive(client, tech, {tech.lines[0].id: typed}, htmx=True)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert stock_of(db, ordered["monitor"], berlin) is None


def test_a_stale_form_answers_409_with_the_fresh_state(client, db, ordered, berlin):
    tech = ordered["tech"]
    (line,) = tech.lines
    old_version = tech.version
    receive(client, tech, {line.id: 1})  # a colleague booked one
    response = receive(client, tech, {line.id: 1}, version=old_version, htmx=True)
    text = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "changed by someone else" in text
    assert 'id="po-body"' in text
    db.expire_all()
    fresh = db.get(PurchaseOrder, tech.id)
    assert f'name="version" value="{fresh.version}"' in text
    assert fresh.lines[0].received_quantity == 1  # not booked twice
    assert stock_of(db, ordered["monitor"], berlin).on_hand == 1


def test_a_fully_received_order_takes_no_more(client, db, ordered):
    tech = ordered["tech"]
    receive(client, tech, {tech.lines[0].id: 3})
    db.expire_all()
    tech = db.get(PurchaseOrder, tech.id)
    page = client.get(f"/inventory/purchase-orders/{tech.id}").get_data(as_text=True)
    assert "Book delivery" not in page
    response = receive(client, tech, {tech.lines[0].id: 1})
    assert response.status_code == 422
    assert "received in full" in response.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# Permissions


def test_a_coordinator_of_another_site_gets_404_on_every_order_route(client, db, ordered, berlin):
    hamburg = factories.site(db, "hamburg")
    other = factories.user(db, email="hugo@example.com", coordinator_of=hamburg)
    db.commit()
    other_client = client.application.test_client()
    other_client.sign_in(other.email)
    tech = ordered["tech"]
    gets = [
        f"/inventory/purchase-orders/{tech.id}",
        f"/inventory/purchase-orders/{tech.id}.pdf",
        f"/inventory/purchase-orders/{tech.id}.csv",
        f"/inventory/sites/{berlin.id}/purchase-orders/new",
        "/inventory/purchase-orders/999999",
    ]
    for url in gets:
        assert other_client.get(url).status_code == 404, url
    posts = [
        (
            f"/inventory/purchase-orders/{tech.id}/receive",
            {f"line-{tech.lines[0].id}": "1", "version": str(tech.version)},
        ),
        (f"/inventory/sites/{berlin.id}/purchase-orders", {}),
    ]
    for url, data in posts:
        assert other_client.submit(url, data).status_code == 404, url
    # and their list does not show Berlin's orders
    listing = other_client.get("/inventory/purchase-orders").get_data(as_text=True)
    assert tech.number not in listing
    db.expire_all()
    assert db.get(PurchaseOrder, tech.id).lines[0].received_quantity == 0


def test_employees_get_403_on_purchase_orders(client, db, ordered, employee):
    employee_client = client.application.test_client()
    employee_client.sign_in(employee.email)
    tech = ordered["tech"]
    assert employee_client.get("/inventory/purchase-orders").status_code == 403
    assert employee_client.get(f"/inventory/purchase-orders/{tech.id}").status_code == 403
    assert employee_client.get(f"/inventory/purchase-orders/{tech.id}.csv").status_code == 403


def test_an_admin_may_open_any_sites_order(client, db, ordered, admin):
    admin_client = client.application.test_client()
    admin_client.sign_in(admin.email)
    assert admin_client.get(f"/inventory/purchase-orders/{ordered['tech'].id}").status_code == 200


def test_the_pages_keep_to_the_content_security_policy(client, ordered, berlin):
    """No inline scripts or styles (the printable order's styles are only ever seen by the PDF
    renderer, never served)."""
    tech = ordered["tech"]
    for path in (
        "/inventory",
        "/inventory/purchase-orders",
        f"/inventory/sites/{berlin.id}/purchase-orders/new",
        f"/inventory/purchase-orders/{tech.id}",
    ):
        body = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
        assert " style=" not in body and "<style" not in body, path
        assert " on" + "click=" not in body, path
