"""Supply and equipment requests: an employee asks for things from the catalog, coordinators
approve or decline each line, stock is set aside, handed over or given back, and nobody else
ever sees the request."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

from portal.db import session_factories, utcnow
from portal.errors import NotFound, RuleViolation
from portal.models import (
    ApprovalRule,
    Asset,
    AssetStatus,
    AuditEvent,
    Booking,
    LineStatus,
    RequestLine,
    StockLevel,
    Ticket,
    TicketStatus,
)
from portal.services import requests, tickets
from tests import factories
from tests import requests_helpers as rh
from tests import service_desk_factories as sd

SYSTEM = rh.SYSTEM


def _ticket(db, ticket_id: int) -> Ticket:
    db.expire_all()
    ticket = db.get(Ticket, ticket_id)
    assert ticket is not None
    return ticket


# ---------------------------------------------------------------------------------------------
# Building a request in the browser


def test_employee_builds_a_request_from_the_catalog_and_sends_it(client, db):
    o = rh.office(db)
    monitor = rh.stocked(db, o.site, "Monitor 27 inch", 5, price_cents=199_00)
    chair = rh.stocked(
        db, o.site, "Office chair", 2, price_cents=349_50, category="furniture",
        approval=ApprovalRule.ALWAYS,
    )  # fmt: skip
    db.commit()
    client.sign_in(o.employee.email)

    added = client.submit("/catalog/draft", {"item_id": monitor.id, "quantity": "1"}, htmx=True)
    assert added.status_code == 200
    panel = added.get_data(as_text=True)
    assert 'id="draft"' in panel and "<html" not in panel
    assert "Added Monitor 27 inch ×1." in panel
    client.submit("/catalog/draft", {"item_id": chair.id, "quantity": "1"}, htmx=True)
    stepped = client.submit(f"/catalog/draft/{chair.id}", {"quantity": "2"}, htmx=True)
    assert "€699.00" in stepped.get_data(as_text=True) or "€898.00" in stepped.get_data(
        as_text=True
    )

    review = client.get("/requests/new").get_data(as_text=True)
    assert "Monitor 27 inch" in review and "Office chair" in review
    key = re.search(r'name="submission_key" type="hidden" value="([^"]+)"', review).group(1)
    sent = client.submit(
        "/requests",
        {
            "site": o.site.slug,
            "line_item": [str(monitor.id), str(chair.id)],
            "line_qty": ["1", "1"],
            "delivery": "pickup",
            "note": "For the new starter",
            "submission_key": key,
        },
    )
    assert sent.status_code == 303, sent.get_data(as_text=True)[:2000]
    ticket = db.scalar(select(Ticket).where(Ticket.requester_id == o.employee.id))
    assert sent.headers["Location"].endswith(f"/requests/{ticket.id}")
    assert ticket.kind == "request"
    assert ticket.title == "Monitor 27 inch ×1, Office chair ×1"
    assert ticket.category == "it_peripherals"  # the first line's
    assert ticket.priority == "normal"
    assert ticket.total_cents == 199_00 + 349_50
    assert [(line.item.name, line.status) for line in ticket.lines] == [
        ("Monitor 27 inch", LineStatus.APPROVED),  # needs no approval: set aside at once
        ("Office chair", LineStatus.PENDING),
    ]
    assert rh.level(db, monitor, o.site).reserved == 1
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    assert "Waiting for approval" in page and "For the new starter" in page
    assert client.get("/requests/new").get_data(as_text=True).count("line_item") == 0


def test_the_same_form_sent_twice_makes_one_request(client, db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 50)
    db.commit()
    client.sign_in(o.employee.email)
    form = {
        "site": o.site.slug,
        "line_item": [str(pens.id)],
        "line_qty": ["3"],
        "delivery": "pickup",
        "submission_key": "double-click-key",
    }
    first = client.submit("/requests", form)
    second = client.submit("/requests", form, htmx=True)
    assert first.status_code == 303
    assert second.headers["HX-Redirect"] == first.headers["Location"]
    assert rh.ticket_count(db) == 1
    assert rh.level(db, pens, o.site).reserved == 3


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("-2", "cannot be negative"),
        ("0", "Ask for at least 1"),
        ("100000000000000000000000", "at most 20"),
        ("21", "at most 20"),
        ("two", "whole number"),
        ("1.5", "whole number"),
        ("", "how many"),
    ],
)
def test_bad_quantities_are_refused_beside_the_line_and_nothing_is_saved(
    client, db, typed, message
):
    o = rh.office(db)
    paper = rh.stocked(db, o.site, "Printer paper", 100)
    db.commit()
    client.sign_in(o.employee.email)
    answer = client.submit(
        "/requests",
        {
            "site": o.site.slug,
            "line_item": [str(paper.id)],
            "line_qty": [typed],
            "delivery": "pickup",
            "submission_key": "k1",
        },
        htmx=True,
    )
    assert answer.status_code == 422
    body = answer.get_data(as_text=True)
    assert message in body
    assert 'id="request-form"' in body and "<html" not in body
    assert rh.ticket_count(db) == 0
    assert rh.level(db, paper, o.site).reserved == 0


def test_unknown_and_retired_items_are_named(client, db):
    o = rh.office(db)
    lamp = rh.stocked(db, o.site, "Desk lamp", 3, active=False)
    db.commit()
    client.sign_in(o.employee.email)
    answer = client.submit(
        "/requests",
        {
            "site": o.site.slug,
            "line_item": [str(lamp.id), "999999"],
            "line_qty": ["1", "1"],
            "delivery": "pickup",
        },
        htmx=True,
    )
    assert answer.status_code == 422
    body = answer.get_data(as_text=True)
    assert "Desk lamp is no longer offered" in body
    assert "Item #999999 is not in the catalog" in body
    assert rh.ticket_count(db) == 0


def test_an_empty_request_is_refused(db):
    o = rh.office(db)
    with pytest.raises(RuleViolation) as refused:
        rh.submit(db, o.employee, o.site, [])
    assert "at least one item" in refused.value.errors["lines"]


def test_duplicate_lines_of_an_item_are_merged(db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 50)
    ticket = rh.submit(db, o.employee, o.site, [(pens, 2), (pens, 3)])
    assert [(line.item_id, line.quantity) for line in ticket.lines] == [(pens.id, 5)]
    assert ticket.title == "Pens ×5"


def test_merged_duplicates_still_respect_the_most_per_request(db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 50, max_per_request=4)
    with pytest.raises(RuleViolation) as refused:
        rh.submit(db, o.employee, o.site, [(pens, 3), (pens, 3)])
    assert "at most 4 × Pens" in refused.value.errors[f"qty_{pens.id}"]


def test_html_in_the_note_is_shown_as_text(client, db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 50)
    ticket = rh.submit(
        db, o.employee, o.site, [(pens, 1)], note="<script>alert('x')</script><b>now</b>"
    )
    db.commit()
    client.sign_in(o.employee.email)
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    assert "<script>alert" not in page and "<b>now</b>" not in page
    assert "&lt;script&gt;alert(" in page


# ---------------------------------------------------------------------------------------------
# Where and when


def test_the_desk_booked_today_is_the_default_delivery(client, db):
    o = rh.office(db)
    rh.stocked(db, o.site, "Pens", 50)
    now = utcnow()
    db.add(
        Booking(
            resource_id=o.desk.id,
            user_id=o.employee.id,
            created_by_id=o.employee.id,
            start_at=now - timedelta(minutes=30),
            end_at=now + timedelta(minutes=30),
            blocked_until=now + timedelta(minutes=30),
        )
    )
    db.commit()
    assert requests.default_desk(db, o.employee, o.site, now).id == o.desk.id
    client.sign_in(o.employee.email)
    page = client.get("/requests/new").get_data(as_text=True)
    assert re.search(
        rf'<option selected value="{o.desk.id}">|<option value="{o.desk.id}" selected', page
    )


def test_a_place_that_does_not_exist_or_is_elsewhere_is_refused(db):
    o = rh.office(db)
    other = rh.office(db, "paris")
    pens = rh.stocked(db, o.site, "Pens", 50)
    for details, field in (
        ({"delivery": "desk", "desk_id": "999999"}, "desk_id"),
        ({"delivery": "desk", "desk_id": str(other.desk.id)}, "desk_id"),
        ({"delivery": "desk", "desk_id": "abc"}, "desk_id"),
        ({"delivery": "floor", "floor_id": str(other.floor.id)}, "floor_id"),
        ({"delivery": "floor", "floor_id": "999999"}, "floor_id"),
        ({"delivery": "roof"}, "delivery"),
    ):
        with pytest.raises(RuleViolation) as refused:
            rh.submit(db, o.employee, o.site, [(pens, 1)], **details)
        assert field in refused.value.errors, details
    assert rh.ticket_count(db) == 0
    ticket = rh.submit(db, o.employee, o.site, [(pens, 1)], delivery="floor", floor_id=o.floor.id)
    assert ticket.floor_id == o.floor.id and ticket.delivery == "floor"


def test_a_past_needed_by_date_is_refused_and_a_short_one_warns(db):
    o = rh.office(db)
    chair = rh.stocked(db, o.site, "Office chair", 0, lead_time_days=10)
    now = utcnow()
    today = requests.today_at(o.site, now)
    with pytest.raises(RuleViolation) as refused:
        rh.submit(db, o.employee, o.site, [(chair, 1)], needed_by=today - timedelta(days=1))
    assert "passed" in refused.value.errors["needed_by"]
    done = requests.submit(
        db,
        SYSTEM,
        o.employee,
        site=o.site,
        lines=[(chair.id, 1)],
        delivery="pickup",
        needed_by=today + timedelta(days=3),
        now=now,
    )
    assert done.warnings and "usually takes 10 days" in done.warnings[0]


# ---------------------------------------------------------------------------------------------
# Approval rules and decisions


def test_approval_rules_decide_which_lines_wait_for_a_coordinator(db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 50, price_cents=1_00)
    cheap = rh.stocked(
        db, o.site, "Headset", 10, price_cents=40_00, approval=ApprovalRule.ABOVE,
        approval_above_cents=100_00,
    )  # fmt: skip
    dear = rh.stocked(
        db, o.site, "Keyboard", 10, price_cents=60_00, approval=ApprovalRule.ABOVE,
        approval_above_cents=100_00,
    )  # fmt: skip
    chair = rh.stocked(db, o.site, "Chair", 10, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(pens, 2), (cheap, 2), (dear, 2), (chair, 1)])
    statuses = {line.item.name: line.status for line in ticket.lines}
    assert statuses == {
        "Pens": LineStatus.APPROVED,
        "Headset": LineStatus.APPROVED,  # €80 is not above €100
        "Keyboard": LineStatus.PENDING,  # €120 is
        "Chair": LineStatus.PENDING,
    }
    assert ticket.status == TicketStatus.SUBMITTED
    everything_free = rh.submit(db, o.employee, o.site, [(pens, 1)])
    assert everything_free.status == TicketStatus.APPROVED


def test_coordinator_approves_one_line_and_declines_the_other_and_the_employee_sees_both(
    client, db
):
    o = rh.office(db)
    monitor = rh.stocked(db, o.site, "Monitor", 4, approval=ApprovalRule.ALWAYS)
    chair = rh.stocked(db, o.site, "Chair", 4, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(monitor, 1), (chair, 1)])
    db.commit()
    monitor_line, chair_line = ticket.lines
    client.sign_in(o.coordinator.email)
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    version = rh.version_on(page, ticket)

    approved = client.submit(
        f"/requests/{ticket.id}/lines/{monitor_line.id}/approve", {"version": version}, htmx=True
    )
    assert approved.status_code == 200
    assert f'id="ticket-{ticket.id}"' in approved.get_data(as_text=True)
    assert rh.level(db, monitor, o.site).reserved == 1
    fresh = _ticket(db, ticket.id)
    assert fresh.status == TicketStatus.SUBMITTED  # one line is still undecided

    empty = client.submit(
        f"/requests/{ticket.id}/lines/{chair_line.id}/decline",
        {"version": str(fresh.version), "reason": "   "},
        htmx=True,
    )
    assert empty.status_code == 422
    assert "Say why" in empty.get_data(as_text=True)
    declined = client.submit(
        f"/requests/{ticket.id}/lines/{chair_line.id}/decline",
        {"version": str(fresh.version), "reason": "Use the <em>spare</em> one on floor 2"},
        htmx=True,
    )
    assert declined.status_code == 200
    fresh = _ticket(db, ticket.id)
    assert fresh.status == TicketStatus.APPROVED
    assert [line.status for line in fresh.lines] == [LineStatus.APPROVED, LineStatus.DECLINED]
    assert fresh.first_responded_at is not None
    mails = rh.mails_to(db, o.employee)
    assert mails and "Approved" in mails[-1].subject
    assert any("Use the <em>spare</em> one on floor 2" in m.text_body for m in mails)
    assert (
        db.scalar(select(AuditEvent).where(AuditEvent.action == "request_line.declined"))
        is not None
    )

    client.post("/sign-out")
    client.sign_in(o.employee.email)
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    assert "Approved" in page and "Declined" in page
    assert "Use the &lt;em&gt;spare&lt;/em&gt; one on floor 2" in page
    assert "Approve</button>" not in page  # the employee cannot decide


def test_declining_every_line_declines_the_request(db):
    o = rh.office(db)
    chair = rh.stocked(db, o.site, "Chair", 4, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(chair, 1)])
    requests.decline_line(
        db, SYSTEM, ticket.lines[0], by=o.coordinator, reason="Budget", now=utcnow()
    )
    assert ticket.status == TicketStatus.DECLINED and ticket.closed


def test_approving_more_than_is_left_backorders_the_line(client, db):
    o = rh.office(db)
    toner = rh.stocked(db, o.site, "Toner", 2, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(toner, 3)])
    db.commit()
    client.sign_in(o.coordinator.email)
    answer = client.submit(
        f"/requests/{ticket.id}/lines/{ticket.lines[0].id}/approve",
        {"version": str(ticket.version)},
        htmx=True,
    )
    assert answer.status_code == 200
    assert "Only 2 left in stock: it goes onto the next purchase order" in answer.get_data(
        as_text=True
    )
    line = db.get(RequestLine, ticket.lines[0].id)
    db.refresh(line)
    assert line.status == LineStatus.BACKORDERED
    assert rh.level(db, toner, o.site).reserved == 0  # nothing promised that is not there


def test_a_stale_approval_form_answers_409_with_the_fresh_state(client, db):
    o = rh.office(db)
    chair = rh.stocked(db, o.site, "Chair", 4, approval=ApprovalRule.ALWAYS)
    desk_lamp = rh.stocked(db, o.site, "Lamp", 4, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(chair, 1), (desk_lamp, 1)])
    db.commit()
    stale_version = str(ticket.version)
    colleague = factories.user(db, coordinator_of=o.site)
    requests.decline_line(
        db, SYSTEM, ticket.lines[1], by=colleague, reason="Not in budget", now=utcnow()
    )
    db.commit()
    client.sign_in(o.coordinator.email)
    answer = client.submit(
        f"/requests/{ticket.id}/lines/{ticket.lines[0].id}/approve",
        {"version": stale_version},
        htmx=True,
    )
    assert answer.status_code == 409
    body = answer.get_data(as_text=True)
    assert "Changed by someone else" in body
    assert "Not in budget" in body  # the fresh state: what the colleague did
    assert rh.level(db, chair, o.site).reserved == 0


def test_approving_what_was_cancelled_a_second_ago_says_so(client, db):
    o = rh.office(db)
    chair = rh.stocked(db, o.site, "Chair", 4, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(chair, 1)])
    db.commit()
    line_id = ticket.lines[0].id
    client.sign_in(o.coordinator.email)
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    version = rh.version_on(page, ticket)
    requests.cancel(db, SYSTEM, ticket, by=o.employee, now=utcnow())
    db.commit()
    answer = client.submit(
        f"/requests/{ticket.id}/lines/{line_id}/approve", {"version": version}, htmx=True
    )
    assert answer.status_code == 422
    assert "cancelled" in answer.get_data(as_text=True)
    assert "nothing left to approve" in answer.get_data(as_text=True)
    plain = client.submit(f"/requests/{ticket.id}/lines/{line_id}/decline", {"reason": "x"})
    assert plain.status_code == 303  # a plain form: back to the page, with the message
    assert rh.level(db, chair, o.site).reserved == 0


def test_service_refuses_deciding_a_line_twice(db):
    o = rh.office(db)
    chair = rh.stocked(db, o.site, "Chair", 4, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(chair, 1)])
    line = requests.approve_line(db, SYSTEM, ticket.lines[0], by=o.coordinator, now=utcnow())
    with pytest.raises(RuleViolation) as refused:
        requests.approve_line(db, SYSTEM, line, by=o.coordinator, now=utcnow())
    assert "already" in refused.value.message
    with pytest.raises(tickets.StaleTicket):
        other = rh.submit(db, o.employee, o.site, [(chair, 1)])
        requests.decline_line(
            db, SYSTEM, other.lines[0], by=o.coordinator, reason="no", now=utcnow(),
            expected_version=other.version - 1,
        )  # fmt: skip
    with pytest.raises(NotFound):
        requests.approve_line(db, SYSTEM, other.lines[0], by=o.employee, now=utcnow())


# ---------------------------------------------------------------------------------------------
# Fulfilment and cancelling


def test_ready_delivered_and_closed_move_the_stock(client, db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 10)
    ticket = rh.submit(db, o.employee, o.site, [(pens, 4)])
    db.commit()
    assert rh.level(db, pens, o.site).reserved == 4
    client.sign_in(o.coordinator.email)
    for action in ("ready", "delivered", "close"):
        version = str(_ticket(db, ticket.id).version)
        answer = client.submit(f"/requests/{ticket.id}/{action}", {"version": version}, htmx=True)
        assert answer.status_code == 200, (action, answer.get_data(as_text=True)[:3000])
    stock = rh.level(db, pens, o.site)
    assert (stock.on_hand, stock.reserved) == (6, 0)
    fresh = _ticket(db, ticket.id)
    assert fresh.status == TicketStatus.CLOSED
    assert fresh.lines[0].status == LineStatus.FULFILLED
    assert any("Delivered" in m.subject for m in rh.mails_to(db, o.employee))


def test_a_backordered_line_is_delivered_only_once_stock_arrives(db):
    o = rh.office(db)
    toner = rh.stocked(db, o.site, "Toner", 0)
    ticket = rh.submit(db, o.employee, o.site, [(toner, 2)])
    assert ticket.lines[0].status == LineStatus.BACKORDERED
    with pytest.raises(RuleViolation) as refused:
        requests.mark_delivered(db, SYSTEM, ticket, by=o.coordinator, now=utcnow())
    assert "Toner ×2" in refused.value.message
    db.execute(
        StockLevel.__table__.update().where(StockLevel.item_id == toner.id).values(on_hand=5)
    )
    requests.mark_delivered(db, SYSTEM, ticket, by=o.coordinator, now=utcnow())
    stock = rh.level(db, toner, o.site)
    assert (stock.on_hand, stock.reserved) == (3, 0)


def test_cancelling_gives_the_stock_back_and_cancels_open_lines(client, db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 10)
    chair = rh.stocked(db, o.site, "Chair", 2, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(pens, 3), (chair, 1)])
    db.commit()
    client.sign_in(o.employee.email)
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    assert "Cancel request" in page
    answer = client.submit(
        f"/requests/{ticket.id}/cancel", {"version": str(ticket.version)}, htmx=True
    )
    assert answer.status_code == 200
    assert "Cancel request" not in answer.get_data(as_text=True)
    fresh = _ticket(db, ticket.id)
    assert fresh.status == TicketStatus.CANCELLED
    assert {line.status for line in fresh.lines} == {LineStatus.CANCELLED}
    assert rh.level(db, pens, o.site).reserved == 0


def test_a_delivered_request_cannot_be_cancelled(db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 10)
    ticket = rh.submit(db, o.employee, o.site, [(pens, 3)])
    requests.mark_delivered(db, SYSTEM, ticket, by=o.coordinator, now=utcnow())
    with pytest.raises(RuleViolation) as refused:
        requests.cancel(db, SYSTEM, ticket, by=o.employee, now=utcnow())
    assert "can no longer be cancelled" in refused.value.message
    assert rh.level(db, pens, o.site).on_hand == 7


def test_tracked_items_hand_over_assets_on_delivery(db):
    o = rh.office(db)
    laptop = sd.item(db, "Laptop", tracked=True, approval=ApprovalRule.ALWAYS)
    for tag in ("LAP-1", "LAP-2"):
        db.add(Asset(item_id=laptop.id, site_id=o.site.id, asset_tag=tag))
    db.flush()
    ticket = rh.submit(db, o.employee, o.site, [(laptop, 1)])
    requests.approve_line(db, SYSTEM, ticket.lines[0], by=o.coordinator, now=utcnow())
    assert ticket.lines[0].status == LineStatus.APPROVED  # nothing reserved on a shelf
    requests.mark_delivered(db, SYSTEM, ticket, by=o.coordinator, now=utcnow())
    handed = db.get(Asset, ticket.lines[0].asset_id)
    assert handed.holder_id == o.employee.id and handed.status == AssetStatus.ASSIGNED
    second = rh.submit(db, o.employee, o.site, [(laptop, 2)])
    requests.approve_line(db, SYSTEM, second.lines[0], by=o.coordinator, now=utcnow())
    with pytest.raises(RuleViolation) as refused:
        requests.mark_delivered(db, SYSTEM, second, by=o.coordinator, now=utcnow())
    assert "Only 1 Laptop in stock" in refused.value.message


# ---------------------------------------------------------------------------------------------
# Lists and permissions


def test_my_requests_lists_open_and_past(client, db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 10)
    chair = rh.stocked(db, o.site, "Chair", 2, approval=ApprovalRule.ALWAYS)
    rh.submit(db, o.employee, o.site, [(chair, 1)])
    done = rh.submit(db, o.employee, o.site, [(pens, 1)])
    requests.cancel(db, SYSTEM, done, by=o.employee, now=utcnow())
    rh.submit(db, o.coordinator, o.site, [(pens, 2)])  # someone else's
    db.commit()
    client.sign_in(o.employee.email)
    page = client.get("/requests").get_data(as_text=True)
    open_part, _, past_part = page.partition('id="past-title"')
    assert "Chair ×1" in open_part and "Pens ×1" in past_part
    assert "Cancelled" in past_part
    assert "Pens ×2" not in page


def test_every_request_route_is_404_for_anyone_but_requester_and_site_staff(client, db):
    o = rh.office(db)
    elsewhere = rh.office(db, "paris")
    chair = rh.stocked(db, o.site, "Chair", 2, approval=ApprovalRule.ALWAYS)
    ticket = rh.submit(db, o.employee, o.site, [(chair, 1)])
    stranger = factories.user(db, name="Stan Stranger")
    db.commit()
    line_id = ticket.lines[0].id
    data = {"version": str(ticket.version), "reason": "nope"}
    posts = [
        f"/requests/{ticket.id}/lines/{line_id}/approve",
        f"/requests/{ticket.id}/lines/{line_id}/decline",
        f"/requests/{ticket.id}/ready",
        f"/requests/{ticket.id}/delivered",
        f"/requests/{ticket.id}/close",
        f"/requests/{ticket.id}/cancel",
    ]
    for person in (stranger, elsewhere.coordinator, elsewhere.employee):
        client.sign_in(person.email)
        assert client.get(f"/requests/{ticket.id}").status_code == 404
        for url in posts:
            assert client.submit(url, data).status_code == 404, (person.name, url)
            assert client.submit(url, data, htmx=True).status_code == 404, (person.name, url)
        client.post("/sign-out")
    client.sign_in(o.employee.email)  # the requester may not decide or fulfil
    for url in posts[:-1]:
        assert client.submit(url, data).status_code == 404, url
    assert client.get("/requests/999999").status_code == 404
    assert client.get(f"/requests/{ticket.id}/lines/999/approve").status_code == 405
    answer = client.submit(f"/requests/{ticket.id}/lines/999999/approve", data)
    assert answer.status_code == 404
    fresh = _ticket(db, ticket.id)
    assert fresh.status == TicketStatus.SUBMITTED
    assert fresh.lines[0].status == LineStatus.PENDING


# ---------------------------------------------------------------------------------------------
# Two coordinators, two tabs, the last units


def test_two_coordinators_approving_the_last_units_never_oversell(fresh_engine):
    """Real concurrent transactions: both approvals want the last 3 monitors; exactly one gets
    them, the other line is backordered, and stock never goes below zero."""
    _reader, writer = session_factories(fresh_engine)
    with writer() as session, session.begin():
        o = rh.office(session)
        colleague = factories.user(session, password=None, coordinator_of=o.site)
        monitor = rh.stocked(session, o.site, "Monitor", 3, approval=ApprovalRule.ALWAYS)
        first = rh.submit(session, o.employee, o.site, [(monitor, 3)])
        second = rh.submit(session, o.employee, o.site, [(monitor, 3)])
        plan = [
            (o.coordinator.id, first.lines[0].id),
            (colleague.id, second.lines[0].id),
        ]
        item_id, site_id = monitor.id, o.site.id

    barrier = threading.Barrier(len(plan))
    outcomes: list[str] = []
    lock = threading.Lock()

    def approve(coordinator_id: int, line_id: int) -> None:
        barrier.wait()
        with writer() as session:
            try:
                with session.begin():
                    from portal.models import User

                    line = session.get(RequestLine, line_id)
                    coordinator = session.get(User, coordinator_id)
                    requests.approve_line(session, SYSTEM, line, by=coordinator, now=utcnow())
                    result = line.status
            except Exception as exc:  # noqa: BLE001 - every other outcome is a failure we count
                result = f"error: {type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(str(result))

    threads = [threading.Thread(target=approve, args=pair) for pair in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(outcomes) == [LineStatus.APPROVED, LineStatus.BACKORDERED], outcomes
    with writer() as session:
        stock = session.scalar(
            select(StockLevel).where(StockLevel.item_id == item_id, StockLevel.site_id == site_id)
        )
        assert (stock.on_hand, stock.reserved) == (3, 3)


def test_the_request_page_answers_as_page_fragment_and_boosted_page(client, db):
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 10)
    ticket = rh.submit(db, o.employee, o.site, [(pens, 1)])
    db.commit()
    client.sign_in(o.employee.email)
    url = f"/requests/{ticket.id}"
    page = client.get(url).get_data(as_text=True)
    fragment = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    boosted = client.get(url, headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in page and f'id="ticket-{ticket.id}"' in page
    assert f'id="ticket-{ticket.id}"' in fragment and "<html" not in fragment
    assert "<html" in boosted.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# What the request page shows


def _h1(page: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert match, "no heading"
    return match.group(1).strip()


def _total(page: str) -> str:
    match = re.search(r'class="rq-review-total"><span>Total</span><strong>([^<]+)</strong>', page)
    assert match, "no total"
    return match.group(1)


def test_the_total_leaves_out_declined_and_cancelled_lines(client, db):
    o = rh.office(db)
    monitor = rh.stocked(db, o.site, "Monitor", 4, price_cents=200_00, approval="always")
    chair = rh.stocked(db, o.site, "Chair", 4, price_cents=300_00, approval="always")
    ticket = rh.submit(db, o.employee, o.site, [(monitor, 1), (chair, 1)])
    requests.decline_line(
        db, SYSTEM, ticket.lines[1], by=o.coordinator, reason="Use the spare", now=utcnow()
    )
    db.commit()
    client.sign_in(o.employee.email)
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    assert _total(page) == "€200.00"
    assert "€500.00" in page.split('class="rq-requested"', 1)[1][:200]  # what was asked for
    assert "rq-line-declined rq-line-dropped" in page  # struck through
    assert page.count("Reason:") == 1  # said once, and read once (no CSS text beside it)
    css = (Path(client.application.static_folder) / "css" / "requests.css").read_text()
    assert 'content: "Reason' not in css
    mine = client.get("/requests").get_data(as_text=True)
    assert '<span class="rq-item-total">€200.00</span>' in mine

    requests.cancel(db, SYSTEM, _ticket(db, ticket.id), by=o.employee, now=utcnow())
    db.commit()
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    assert _total(page) == "€0.00"


def test_the_request_heading_is_short_and_the_lines_follow_it(client, db):
    o = rh.office(db)
    desk = rh.stocked(db, o.site, "Sit-stand desk converter", 2)
    arm = rh.stocked(db, o.site, "Monitor arm, single", 2)
    keyboard = rh.stocked(db, o.site, "Wireless keyboard", 2)
    ticket = rh.submit(db, o.employee, o.site, [(desk, 1), (arm, 1), (keyboard, 1)])
    single = rh.submit(db, o.employee, o.site, [(keyboard, 1)])
    db.commit()
    client.sign_in(o.employee.email)
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    assert _h1(page) == "Sit-stand desk converter ×1 + 2 more"
    lines = page.split('class="rq-detail-lines"', 1)[1].split("</p>", 1)[0]
    assert "Monitor arm, single ×1" in lines and "Wireless keyboard ×1" in lines
    assert _h1(client.get(f"/requests/{single.id}").get_data(as_text=True)) == (
        "Wireless keyboard ×1"
    )


def test_the_coordinator_sees_the_stock_beside_each_line_to_decide(client, db):
    o = rh.office(db)
    monitor = rh.stocked(db, o.site, "Monitor", 3, approval="always")
    chair = rh.stocked(db, o.site, "Chair", 0, approval="always")
    toner = rh.stocked(db, o.site, "Toner", 1, approval="always")
    ticket = rh.submit(db, o.employee, o.site, [(monitor, 2), (chair, 1), (toner, 2)])
    db.commit()
    client.sign_in(o.coordinator.email)
    page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
    notes = re.findall(r'class="rq-decide-stock[^"]*">([^<]+)<', page)
    assert notes == [
        "3 in stock",
        "Out of stock — will be ordered",
        "Only 1 in stock — will be ordered",
    ]
    client.post("/sign-out")
    client.sign_in(o.employee.email)
    assert "in stock" not in client.get(f"/requests/{ticket.id}").get_data(as_text=True)


def test_the_stock_beside_the_lines_takes_a_fixed_number_of_queries(client, db):
    o = rh.office(db)
    db.commit()
    client.sign_in(o.coordinator.email)
    counts = []
    for size in (2, 6):
        items = [
            rh.stocked(db, o.site, f"Thing {size}-{n}", n, approval="always", tracked=n % 2 == 1)
            for n in range(size)
        ]
        ticket = rh.submit(db, o.employee, o.site, [(item, 1) for item in items])
        db.commit()
        statements: list[str] = []
        connection = db.connection()
        listener = lambda _c, _cur, sql, *rest: statements.append(sql)  # noqa: E731
        event.listen(connection, "before_cursor_execute", listener)
        page = client.get(f"/requests/{ticket.id}").get_data(as_text=True)
        event.remove(connection, "before_cursor_execute", listener)
        assert page.count('class="rq-decide-stock') == size
        counts.append([s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))])
    assert len(counts[0]) == len(counts[1]), "\n".join(counts[1])


def test_a_search_after_an_add_does_not_send_back_a_cookie_without_the_item(client, db, app):
    """Search and "Add to request" may run at the same time; a search's answer must not carry
    the session (and with it the draft as it was before the add)."""
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False  # as portal.security sets it
    o = rh.office(db)
    pens = rh.stocked(db, o.site, "Pens", 10)
    db.commit()
    client.sign_in(o.employee.email)
    client.get("/catalog")
    name = app.config["SESSION_COOKIE_NAME"]
    before_add = client.get_cookie(name).value
    added = client.submit("/catalog/draft", {"item_id": pens.id, "quantity": "2"}, htmx=True)
    assert name in added.headers.get("Set-Cookie", "")
    after_add = client.get_cookie(name).value
    client.set_cookie(name, before_add)  # the search was sent before the add's answer came
    search = client.get("/catalog?q=pen", headers={"HX-Request": "true"})
    assert search.status_code == 200 and "Pens" in search.get_data(as_text=True)
    assert "Set-Cookie" not in search.headers
    client.set_cookie(name, after_add)  # the browser keeps the add's cookie
    review = client.get("/requests/new").get_data(as_text=True)
    assert f'name="line_item" value="{pens.id}"' in review
    page = client.get("/catalog").get_data(as_text=True)
    assert 'hx-sync="this:queue all"' in page
    search_form = page.split('id="catalog-search"', 1)[1].split(">", 1)[0]
    trigger = re.search(r'hx-trigger="([^"]+)"', search_form).group(1)
    assert "input changed delay:300ms from:#catalog-q" in trigger
    assert all(part.strip() != "change" for part in trigger.split(","))
