"""The weekly digest: on Monday from 07:00 in the site's zone each coordinator gets one e-mail with
last week's figures against the week before and what needs attention; never twice a week, however
often the job runs. Delivered to a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from portal.models import (
    Booking,
    BookingStatus,
    CatalogItem,
    StockLevel,
    Ticket,
    TicketStatus,
    Visit,
)
from portal.models.budgets import DigestSent
from portal.services import digest, notifications
from tests import factories
from tests.test_mail_and_jobs import SENDER, inbox, mail_settings  # noqa: F401 - the SMTP fixture

# Monday 7 December 2026, 07:05 in Berlin (CET, UTC+1)
MONDAY_0705_BERLIN = datetime(2026, 12, 7, 6, 5, tzinfo=UTC)
REPORTED = date(2026, 11, 30)  # Monday to Sunday 6 December
BEFORE = date(2026, 11, 23)


def at_berlin(day: date, hour: int) -> datetime:
    return factories.at(day, hour)


def book(db: Any, resource: Any, person: Any, start: datetime, status: str) -> Booking:
    booking = Booking(
        resource_id=resource.id,
        user_id=person.id,
        created_by_id=person.id,
        start_at=start,
        end_at=start + timedelta(hours=1),
        blocked_until=start + timedelta(hours=1),
        status=status,
        checked_in_at=start if status == BookingStatus.CHECKED_IN else None,
    )
    db.add(booking)
    return booking


def ticket(db: Any, site: Any, person: Any, title: str, **values: Any) -> Ticket:
    new = Ticket(
        kind="issue",
        site_id=site.id,
        requester_id=person.id,
        title=title,
        category="cleaning",
        **values,
    )
    db.add(new)
    return new


def a_berlin_week(db: Any) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    floor = factories.floor(db, berlin)
    desks = [factories.desk(db, floor) for _ in range(4)]
    room = factories.room(db, floor)
    person = factories.user(db, name="Erin Employee")
    both = factories.user(db, name="Jonas Weber", email="jonas@example.com", coordinator_of=berlin)
    from portal.models import Role
    from portal.services import accounts
    from portal.services.audit import Actor

    accounts.grant_role(db, Actor.system("tests"), both, Role.COORDINATOR, new_york)
    maya = factories.user(
        db, name="Maya Johnson", email="maya@example.com", coordinator_of=new_york
    )
    factories.user(db, email="ada@example.com", admin=True)  # admins get no digest
    factories.user(db, email="gone@example.com", coordinator_of=berlin, active=False)

    tuesday, wednesday = REPORTED + timedelta(days=1), REPORTED + timedelta(days=2)
    # Last week: 3 desk bookings counted (1 checked in, 1 no-show), 1 cancelled (not counted),
    # 2 room bookings (1 no-show)
    book(db, desks[0], person, at_berlin(tuesday, 9), BookingStatus.CHECKED_IN)
    book(db, desks[1], person, at_berlin(tuesday, 9), BookingStatus.RELEASED)
    book(db, desks[2], person, at_berlin(wednesday, 9), BookingStatus.CONFIRMED)
    book(db, desks[3], person, at_berlin(wednesday, 9), BookingStatus.CANCELLED)
    book(db, room, person, at_berlin(tuesday, 10), BookingStatus.COMPLETED)
    book(db, room, person, at_berlin(tuesday, 14), BookingStatus.RELEASED)
    # The week before: one desk booking, checked in
    book(db, desks[0], person, at_berlin(BEFORE + timedelta(days=1), 9), BookingStatus.CHECKED_IN)
    # Sunday 23:00 in Berlin is still last week; Monday 00:00 is this week
    book(db, desks[1], person, at_berlin(REPORTED + timedelta(days=6), 23), BookingStatus.CONFIRMED)
    book(db, desks[2], person, at_berlin(REPORTED + timedelta(days=7), 0), BookingStatus.CONFIRMED)
    # Waiting now: a room booking for approval
    book(db, room, person, at_berlin(REPORTED + timedelta(days=8), 10), BookingStatus.PENDING)
    # Visitors: two checked in last week, one the week before
    for day, hour in ((tuesday, 9), (wednesday, 11), (BEFORE, 10)):
        start = at_berlin(day, hour)
        db.add(
            Visit(
                site_id=berlin.id,
                host_id=person.id,
                status="checked_in",
                visitor_name="V",
                expected_start=start,
                expected_end=start + timedelta(hours=1),
                local_date=day,
                checked_in_at=start,
            )
        )
    # Tickets: opened last week 3; closed last week 2 (one by its target, one after it)
    ticket(
        db,
        berlin,
        person,
        "Spill in the kitchen",
        created_at=at_berlin(tuesday, 9),
        resolution_due_at=at_berlin(tuesday, 17),
        resolved_at=at_berlin(tuesday, 12),
        closed_at=at_berlin(tuesday, 12),
        closed=True,
        status=TicketStatus.CLOSED,
    )
    ticket(
        db,
        berlin,
        person,
        "Broken chair",
        created_at=at_berlin(tuesday, 9),
        resolution_due_at=at_berlin(tuesday, 17),
        closed_at=at_berlin(wednesday, 9),
        closed=True,
        status=TicketStatus.CLOSED,
    )
    ticket(
        db,
        berlin,
        person,
        "Too cold on floor 2",
        created_at=at_berlin(wednesday, 9),
        resolution_due_at=at_berlin(wednesday, 17),
        status=TicketStatus.SUBMITTED,
    )
    item = CatalogItem(name="Printer paper A4", category="office_supplies", price_cents=450)
    db.add(item)
    db.flush()
    db.add(StockLevel(item_id=item.id, site_id=berlin.id, on_hand=2, reorder_point=10))
    db.commit()
    return {"berlin": berlin, "new_york": new_york, "jonas": both, "maya": maya}


def row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(label))
    return line[len(label) :].split()


def test_monday_digest_reports_last_week_against_the_week_before(db, inbox, tmp_path):  # noqa: F811
    world = a_berlin_week(db)
    db.info[notifications.SENDER_KEY] = SENDER  # as the app's sessions carry it

    assert digest.send_due(db, MONDAY_0705_BERLIN) == 1  # Jonas (Berlin's morning); not Maya yet
    db.commit()
    from integrations.mail import deliver_due

    assert deliver_due(db, mail_settings(tmp_path, inbox.port), MONDAY_0705_BERLIN).sent == 1
    [message] = inbox.messages
    assert message["To"] == "Jonas Weber <jonas@example.com>"
    assert message["Subject"] == "Your week at Berlin, New York: week of 30 Nov 2026"
    text = message.get_body(("plain",)).get_content()
    berlin_part = text.split("New York · week of")[0]
    assert "Berlin · week of 30 Nov 2026" in berlin_part
    assert row(berlin_part, "Desk bookings") == ["4", "1", "+3"]
    assert row(berlin_part, "Desk check-ins") == ["1", "1", "±0"]
    assert row(berlin_part, "Desk no-shows") == ["1", "0", "+1"]
    assert row(berlin_part, "Room bookings") == ["2", "0", "+2"]
    assert row(berlin_part, "Room no-shows") == ["1", "0", "+1"]
    assert row(berlin_part, "Visitors") == ["2", "1", "+1"]
    assert row(berlin_part, "Tickets opened") == ["3", "0", "+3"]
    assert row(berlin_part, "Tickets closed") == ["2", "0", "+2"]
    assert row(berlin_part, "SLA met") == ["50%", "—"]
    assert "- 1 overdue tickets" in berlin_part and "Too cold on floor 2" in berlin_part
    assert "- 1 room bookings waiting for approval" in berlin_part
    assert "- 1 items low on stock" in berlin_part and "Printer paper A4 (2 left)" in berlin_part
    new_york_part = text.split("New York · week of")[1]
    assert row(new_york_part, "Desk bookings") == ["0", "0", "±0"]
    html = message.get_body(("html",)).get_content()
    berlin_id = world["berlin"].id
    assert f'href="https://foyer.test/inbox/?sla=overdue&amp;site={berlin_id}"' in html
    assert f'href="https://foyer.test/inventory?site={berlin_id}&amp;low=1"' in html
    assert '<td align="right">50%</td>' in html


def test_the_digest_goes_once_a_week_however_often_the_job_runs(db):
    world = a_berlin_week(db)
    berlin_0655 = MONDAY_0705_BERLIN - timedelta(minutes=10)
    assert digest.send_due(db, berlin_0655) == 0  # before 07:00 in Berlin: nobody

    for minutes in (0, 15, 30, 45, 60 * 5):
        digest.send_due(db, MONDAY_0705_BERLIN + timedelta(minutes=minutes))
    # Up to 11:05 UTC: only Berlin has reached Monday 07:00, so only Jonas's digest
    weeks = {(d.user_id, d.week_start) for d in db.scalars(select(DigestSent))}
    assert weeks == {(world["jonas"].id, date(2026, 12, 7))}

    new_york_0700 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert digest.send_due(db, new_york_0700) == 1  # Maya, New York's morning
    assert digest.send_due(db, new_york_0700 + timedelta(hours=3)) == 0
    assert digest.send_due(db, datetime(2026, 12, 8, 13, 0, tzinfo=UTC)) == 0  # Tuesday: late
    next_monday = MONDAY_0705_BERLIN + timedelta(days=7)
    assert digest.send_due(db, next_monday) == 1  # a new week for Jonas
    db.commit()
    counts = {user_id: 0 for user_id in (world["jonas"].id, world["maya"].id)}
    for sent in db.scalars(select(DigestSent)):
        counts[sent.user_id] += 1
        assert sent.outbox_message_id is not None
    assert counts == {world["jonas"].id: 2, world["maya"].id: 1}


def test_the_job_is_registered_for_every_quarter_hour(app):
    jobs = app.extensions["foyer.jobs"]
    runs_at = jobs.periodic_tasks()["send_weekly_digests"]
    assert runs_at(datetime(2026, 12, 7, 6, 0)) and runs_at(datetime(2026, 12, 7, 1, 30))
    assert not runs_at(datetime(2026, 12, 7, 6, 7))


def test_change_is_written_with_signs():
    assert [digest.change(5, 2), digest.change(2, 5), digest.change(3, 3)] == ["+3", "−3", "±0"]
    assert digest.change(None, 4) == ""
    assert re.fullmatch(r"[+−±]\d+", digest.change(0, 10))
