"""What every ticket shares: the SLA clock in business hours (paused while waiting on the
requester), the conversation with internal notes, the coordinator's panel with optimistic locking,
and that nobody but the requester, followers and the site's coordinators can reach a ticket."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import IssueFollower, OutboxMessage, Site, SlaPolicy, Ticket, TicketEvent
from portal.services import sla, tickets
from portal.services.audit import Actor
from tests import factories
from tests import service_desk_factories as sd

REQUESTER = "rita@example.com"
OTHER = "olaf@example.com"
COORDINATOR = "cody@example.com"
NY_COORDINATOR = "nina@example.com"


def berlin_site() -> Site:
    """A Monday-to-Friday 08:00-18:00 site, not saved: enough for the arithmetic."""
    return Site(
        slug="b",
        name="Berlin",
        time_zone="Europe/Berlin",
        opens_at=time(8),
        closes_at=time(18),
        open_weekdays="12345",
    )


def berlin(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A wall-clock time in Berlin in 2026, as UTC (November: CET, UTC+1; March 30: CEST)."""
    from zoneinfo import ZoneInfo

    return datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(
        UTC
    )


# ---------------------------------------------------------------------------------------------
# Business-time arithmetic


def test_business_minutes_skip_nights_and_weekends():
    site = berlin_site()
    # Friday 27 Nov 2026, 17:00 + 2 business hours = Monday 30 Nov, 09:00.
    assert sla.add_business_minutes(site, berlin(27, 17), 120) == berlin(30, 9)
    # Saturday counts from Monday's opening.
    assert sla.add_business_minutes(site, berlin(28, 11), 30) == berlin(30, 8, 30)
    assert sla.business_minutes_between(site, berlin(27, 17), berlin(30, 9)) == 120
    assert sla.business_minutes_between(site, berlin(30, 9), berlin(27, 17)) == 0


def test_business_hours_follow_the_local_clock_across_a_dst_change():
    site = berlin_site()
    # Friday 27 March 2026 17:00 CET + 2 h lands on Monday 30 March 09:00 CEST (UTC+2).
    due = sla.add_business_minutes(site, berlin(27, 17, month=3), 120)
    assert due == berlin(30, 9, month=3)
    assert due.hour == 7  # 09:00 CEST is 07:00 UTC


def test_the_most_specific_policy_wins(db: Session):
    db.add_all(
        [
            SlaPolicy(
                kind="issue",
                category="",
                priority="",
                first_response_minutes=240,
                resolution_minutes=1440,
            ),
            SlaPolicy(
                kind="issue",
                category="plumbing",
                priority="",
                first_response_minutes=120,
                resolution_minutes=480,
            ),
            SlaPolicy(
                kind="issue",
                category="plumbing",
                priority="urgent",
                first_response_minutes=30,
                resolution_minutes=120,
            ),
        ]
    )
    db.flush()
    assert sla.policy_for(db, "issue", "plumbing", "urgent").first_response_minutes == 30
    assert sla.policy_for(db, "issue", "plumbing", "low").first_response_minutes == 120
    assert sla.policy_for(db, "issue", "cleaning", "low").first_response_minutes == 240
    assert sla.policy_for(db, "request", "furniture", "low") is None


# ---------------------------------------------------------------------------------------------
# Arrangements


@pytest.fixture
def office(db: Session) -> dict[str, Any]:
    site = factories.site(db, "berlin")  # Monday to Friday, 08:00-19:00
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    people = {
        "site": site,
        "requester": factories.user(db, name="Rita Requester", email=REQUESTER, home_site=site),
        "other": factories.user(db, name="Olaf Other", email=OTHER, home_site=site),
        "coordinator": factories.user(
            db, name="Cody Coordinator", email=COORDINATOR, coordinator_of=site
        ),
        "ny_coordinator": factories.user(
            db, name="Nina NY", email=NY_COORDINATOR, coordinator_of=new_york
        ),
    }
    db.add(
        SlaPolicy(
            kind="issue",
            category="",
            priority="",
            first_response_minutes=60,
            resolution_minutes=8 * 60,
        )
    )
    db.flush()
    # Monday 30 November 2026, 09:00 in Berlin: first response due 10:00, resolution 17:00.
    people["ticket"] = sd.ticket(
        db, people["requester"], site, title="Tap drips in kitchen", now=berlin(30, 9)
    )
    db.commit()
    return people


def mails_to(db: Session, address: str) -> list[OutboxMessage]:
    return list(db.scalars(select(OutboxMessage).where(OutboxMessage.to_address == address)))


# ---------------------------------------------------------------------------------------------
# The clock


def test_waiting_on_the_requester_pauses_the_clock_and_a_reply_resumes_it(db, office):
    ticket: Ticket = office["ticket"]
    start = ticket.created_at
    assert ticket.resolution_due_at == berlin(30, 17)
    coordinator, requester = office["coordinator"], office["requester"]
    actor = Actor.system("tests")
    tickets.change_status(
        db, actor, ticket, "waiting", by=coordinator, now=start + timedelta(hours=1)
    )
    assert sla.state_of(ticket, start + timedelta(hours=30)).state == "paused"
    # Three hours later the requester answers: the deadlines move on by those three hours.
    tickets.add_comment(
        db, actor, ticket, requester, "It is the cold tap.", now=start + timedelta(hours=4)
    )
    assert ticket.status == "in_progress"
    assert ticket.paused_at is None
    # 7 business hours were left at 10:00; from 13:00 they run to 19:00 and 1 h on Tuesday.
    assert ticket.resolution_due_at == berlin(1, 9, month=12)
    assert sla.state_of(ticket, berlin(30, 13, 30)).state == "on_track"
    assert sla.state_of(ticket, berlin(1, 8, 59, month=12)).state == "soon"
    assert sla.state_of(ticket, berlin(1, 9, 1, month=12)).state == "overdue"


def test_sla_states_match_their_sql_filters(db, office):
    ticket: Ticket = office["ticket"]
    for offset, expected in (
        (timedelta(0), "on_track"),
        (timedelta(hours=5), "soon"),
        (timedelta(hours=9), "overdue"),
    ):
        now = ticket.created_at + offset
        # Unanswered: first response (1 h) decides until someone replies.
        tickets.mark_responded(ticket, ticket.created_at + timedelta(minutes=5))
        assert sla.state_of(ticket, now).state == expected
        ids = db.scalars(select(Ticket.id).where(sla.filter_clause(expected, now))).all()
        assert ticket.id in ids
        others = {"on_track", "soon", "overdue", "paused", "met", "breached"} - {expected}
        for other in others:
            assert (
                ticket.id
                not in db.scalars(select(Ticket.id).where(sla.filter_clause(other, now))).all()
            ), other


def test_an_unanswered_ticket_is_overdue_on_first_response(db, office):
    ticket: Ticket = office["ticket"]
    state = sla.state_of(ticket, ticket.created_at + timedelta(minutes=90))
    assert (state.state, state.target) == ("overdue", "first response")


# ---------------------------------------------------------------------------------------------
# The conversation, through the web


def test_requester_and_coordinator_talk_and_internal_notes_stay_internal(client, db, office):
    ticket: Ticket = office["ticket"]
    client.sign_in(COORDINATOR)
    response = client.submit(
        f"/tickets/{ticket.id}/comments",
        {"body": "Plumber booked; <b>needs</b> the key", "internal": "y"},
        htmx=True,
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Internal note" in page and "&lt;b&gt;needs&lt;/b&gt;" in page
    response = client.submit(
        f"/tickets/{ticket.id}/comments", {"body": "We are on it, thank you!"}, htmx=True
    )
    assert response.status_code == 200
    mails = mails_to(db, REQUESTER)
    assert len(mails) == 1 and "We are on it" in mails[0].text_body
    assert "Plumber booked" not in mails[0].text_body
    db.expire_all()
    assert db.get(Ticket, ticket.id).first_responded_at is not None

    client.post("/sign-out", data={"csrf_token": client.csrf_token()})
    client.sign_in(REQUESTER)
    response = client.submit(f"/tickets/{ticket.id}/comments", {"body": "Great"}, htmx=True)
    page = response.get_data(as_text=True)
    assert "We are on it" in page and "Great" in page
    assert "Plumber booked" not in page and "Internal note" not in page
    # A requester cannot write internal notes by adding the field.
    response = client.submit(
        f"/tickets/{ticket.id}/comments", {"body": "x", "internal": "y"}, htmx=True
    )
    assert response.status_code == 422
    assert "Only coordinators" in response.get_data(as_text=True)


@pytest.mark.parametrize("body", ["", "   ", "x" * 5001])
def test_bad_comments_are_refused_beside_the_box(client, db, office, body):
    client.sign_in(REQUESTER)
    response = client.submit(f"/tickets/{office['ticket'].id}/comments", {"body": body}, htmx=True)
    assert response.status_code == 422
    assert "field-error" in response.get_data(as_text=True)
    assert db.scalar(select(TicketEvent).where(TicketEvent.kind == "comment")) is None


@pytest.mark.parametrize("who", [OTHER, NY_COORDINATOR])
def test_nobody_else_reaches_a_ticket(client, db, office, who):
    ticket_id = office["ticket"].id
    client.sign_in(who)
    for url, data in (
        (f"/tickets/{ticket_id}/comments", {"body": "hi"}),
        (f"/tickets/{ticket_id}/status", {"status": "closed", "version": "1"}),
        (f"/tickets/{ticket_id}/assign", {"assignee_id": "0", "vendor_id": "0", "priority": "low"}),
        (f"/tickets/{ticket_id}/cancel", {}),
        ("/tickets/999999/comments", {"body": "hi"}),
    ):
        assert client.submit(url, data, htmx=True).status_code == 404, url
    assert db.scalar(select(TicketEvent).where(TicketEvent.kind == "comment")) is None


def test_a_follower_sees_the_issue_and_the_requester_cannot_manage_it(client, db, office):
    ticket: Ticket = office["ticket"]
    db.add(IssueFollower(ticket_id=ticket.id, user_id=office["other"].id))
    db.commit()
    client.sign_in(OTHER)
    assert (
        client.submit(
            f"/tickets/{ticket.id}/comments", {"body": "Me too, floor 2"}, htmx=True
        ).status_code
        == 200
    )
    assert (
        client.submit(
            f"/tickets/{ticket.id}/status",
            {"status": "closed", "version": str(ticket.version)},
            htmx=True,
        ).status_code
        == 404
    )


# ---------------------------------------------------------------------------------------------
# The coordinator's panel


def test_status_changes_are_told_to_the_requester_and_stale_forms_are_refused(client, db, office):
    ticket: Ticket = office["ticket"]
    version = ticket.version
    client.sign_in(COORDINATOR)
    response = client.submit(
        f"/tickets/{ticket.id}/status",
        {"status": "in_progress", "note": "Plumber comes at 3", "version": str(version)},
        htmx=True,
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"] == f"/issues/{ticket.id}"
    db.expire_all()
    assert db.get(Ticket, ticket.id).status == "in_progress"
    assert any("Plumber comes at 3" in m.text_body for m in mails_to(db, REQUESTER))
    # A second tab, opened before that change, tries to resolve it: refused with the fresh state.
    response = client.submit(
        f"/tickets/{ticket.id}/status", {"status": "resolved", "version": str(version)}, htmx=True
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Changed by someone else" in page
    assert f'name="version" type="hidden" value="{version + 1}"' in page
    db.expire_all()
    assert db.get(Ticket, ticket.id).status == "in_progress"


def test_a_status_the_ticket_cannot_take_is_refused(client, db, office):
    ticket: Ticket = office["ticket"]
    client.sign_in(COORDINATOR)
    for status in ("delivered", "nonsense", ""):
        response = client.submit(
            f"/tickets/{ticket.id}/status",
            {"status": status, "version": str(ticket.version)},
            htmx=True,
        )
        assert response.status_code == 422, status
    db.expire_all()
    assert db.get(Ticket, ticket.id).status == "submitted"


def test_assigning_sets_person_vendor_and_priority_and_retargets_the_sla(client, db, office):
    ticket: Ticket = office["ticket"]
    db.add(
        SlaPolicy(
            kind="issue",
            category="",
            priority="urgent",
            first_response_minutes=15,
            resolution_minutes=120,
        )
    )
    plumber = sd.vendor(db, "Rohr & Co")
    db.commit()
    client.sign_in(COORDINATOR)
    response = client.submit(
        f"/tickets/{ticket.id}/assign",
        {
            "assignee_id": str(office["coordinator"].id),
            "vendor_id": str(plumber.id),
            "priority": "urgent",
            "version": str(ticket.version),
        },
        htmx=True,
    )
    assert response.status_code == 204
    db.expire_all()
    fresh = db.get(Ticket, ticket.id)
    assert (fresh.assignee_id, fresh.vendor_id, fresh.priority) == (
        office["coordinator"].id,
        plumber.id,
        "urgent",
    )
    assert fresh.resolution_due_at == fresh.created_at + timedelta(hours=2)
    # Only people who coordinate the site can be given the ticket.
    response = client.submit(
        f"/tickets/{ticket.id}/assign",
        {
            "assignee_id": str(office["other"].id),
            "vendor_id": "0",
            "priority": "low",
            "version": str(fresh.version),
        },
        htmx=True,
    )
    assert response.status_code == 422


def test_the_requester_cancels_an_open_issue_but_not_a_closed_one(client, db, office):
    ticket: Ticket = office["ticket"]
    client.sign_in(REQUESTER)
    response = client.submit(
        f"/tickets/{ticket.id}/cancel", {"version": str(ticket.version)}, htmx=True
    )
    assert response.status_code == 204
    db.expire_all()
    assert db.get(Ticket, ticket.id).status == "cancelled"
    response = client.submit(f"/tickets/{ticket.id}/cancel", {}, htmx=True)
    assert response.status_code == 204  # back to the page, with the reason as a message
    response = client.submit(f"/tickets/{ticket.id}/comments", {"body": "wait"}, htmx=True)
    assert response.status_code == 422 and "closed" in response.get_data(as_text=True)


def test_requests_move_on_stock_steps_only_through_their_own_page(client, db, office):
    chair = sd.item(db, "Office chair")
    sd.stock(db, chair, office["site"], on_hand=2)
    request = sd.ticket(
        db,
        office["requester"],
        office["site"],
        kind="request",
        title="Office chair ×1",
        category="furniture",
        lines=[(chair, 1)],
    )
    db.commit()
    client.sign_in(COORDINATOR)
    for status in ("approved", "ready", "delivered", "cancelled"):
        response = client.submit(
            f"/tickets/{request.id}/status",
            {"status": status, "version": str(request.version)},
            htmx=True,
        )
        assert response.status_code == 422, status
    db.expire_all()
    assert db.get(Ticket, request.id).status == "submitted"
