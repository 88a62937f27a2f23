"""Months of past bookings for the demo, with check-ins, no-shows, cancellations and early ends, plus
fulfilled supply requests, monthly budgets and Berlin's door events, so the dashboards have
something to say. Bulk-inserted in one statement per table chunk (fast)."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import (
    Booking,
    BookingStatus,
    CatalogItem,
    Desk,
    DeskAssignment,
    LineStatus,
    RequestLine,
    Room,
    Site,
    Ticket,
    TicketKind,
    TicketStatus,
    User,
    Visit,
    VisitKind,
    VisitStatus,
)
from portal.models.access_control import DoorEvent
from portal.models.budgets import Budget
from portal.services.budgets import add_months, first_of_month
from portal.timezones import to_utc

DAYS = 120
KEY_PREFIX = "history-"


def seed_history(session: Session, sites: list[Site], people: list[User], days: int = DAYS) -> int:
    """Bookings for the `days` days before today at each site; nothing if already there.
    Returns the number of bookings added."""
    if session.scalar(
        select(Booking.id).where(Booking.idempotency_key.like(KEY_PREFIX + "%")).limit(1)
    ):
        return 0
    rng = random.Random(7)  # noqa: S311 - deterministic demo data, not security  # nosec B311
    now = utcnow()
    rows: list[dict] = []
    for site in sites:
        zone = ZoneInfo(site.time_zone)
        today = now.astimezone(zone).date()
        desks = session.scalars(
            select(Desk).where(Desk.site_id == site.id, Desk.active.is_(True))
        ).all()
        rooms = session.scalars(
            select(Room).where(
                Room.site_id == site.id, Room.active.is_(True), Room.needs_approval.is_(False)
            )
        ).all()
        local_people = [p for p in people if p.home_site_id == site.id] or people
        # One assigned desk stays unused, so "assigned desks unused" has something to show.
        idle = next((d.id for d in desks if d.assignment == DeskAssignment.ASSIGNED), None)
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            if str(day.isoweekday()) not in site.open_weekdays:
                continue
            # Busier mid-week, and a slow ramp up over the months.
            busy = {0: 0.45, 1: 0.7, 2: 0.75, 3: 0.65, 4: 0.35}.get(day.weekday(), 0.1)
            busy *= 0.8 + 0.25 * (days - back) / days
            # One desk per person a day, as the booking rules demand: owners of assigned desks
            # first, then people from a shuffled list for the hot desks.
            seated: set[int] = set()
            for desk in desks:
                owner = desk.assigned_user_id
                if (
                    desk.id != idle
                    and desk.assignment == DeskAssignment.ASSIGNED
                    and owner not in seated
                    and rng.random() < 0.7
                ):
                    seated.add(owner)
                    rows.append(_desk(rng, desk, owner, day, zone, now, 0.95))
            pool = [p.id for p in local_people if p.id not in seated]
            rng.shuffle(pool)
            for desk in desks:
                if desk.assignment != DeskAssignment.ASSIGNED and pool and rng.random() < busy:
                    rows.append(_desk(rng, desk, pool.pop(), day, zone, now, 0.84))
            for room in rooms:
                minute = 8 * 60 + rng.choice((0, 30, 60))
                while minute < 17 * 60:
                    if rng.random() < busy * 0.8:
                        length = rng.choice((30, 30, 60, 60, 60, 90, 120))
                        who = rng.choice(local_people).id
                        rows.append(_room(rng, room, who, day, minute, length, zone, now))
                        minute += length + room.buffer_minutes + rng.choice((0, 0, 30, 60))
                    else:
                        minute += rng.choice((30, 60, 90))
    for n, row in enumerate(rows):
        row["idempotency_key"] = f"{KEY_PREFIX}{n}"
    for start in range(0, len(rows), 2000):
        session.execute(insert(Booking.__table__), rows[start : start + 2000])
    _door_events(session, sites[0], rows, people, rng)
    return len(rows)


SPEND_KEY = "history-spend-"
# Monthly budgets (cents) per category at each site: furniture and welcome kits run tight, so
# some months go over and the dashboard has something to flag.
BUDGETS = {
    "office_supplies": 400_00,
    "it_peripherals": 1_800_00,
    "furniture": 900_00,
    "equipment": 600_00,
    "welcome_kits": 350_00,
}


def seed_spend(session: Session, days: int = DAYS) -> int:
    """Fulfilled requests over the past months and budgets for this month and the five before,
    at every site; nothing if already there or if there is no catalog (seed-demo calls it after
    the service desk's catalog). Returns requests added."""
    sites = list(session.scalars(select(Site).order_by(Site.id)))
    people = list(session.scalars(select(User).where(User.active.is_(True)).order_by(User.id)))
    items = session.scalars(select(CatalogItem).where(CatalogItem.active.is_(True))).all()
    if not items or session.scalar(
        select(Ticket.id).where(Ticket.submission_key.like(SPEND_KEY + "%")).limit(1)
    ):
        return 0
    rng = random.Random(11)  # noqa: S311 - deterministic demo data, not security  # nosec B311
    now = utcnow()
    tickets, lines, budgets = [], [], []
    for site in sites:
        zone = ZoneInfo(site.time_zone)
        today = now.astimezone(zone).date()
        local_people = [p for p in people if p.home_site_id == site.id] or people
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            if day.weekday() >= 5 or rng.random() > 0.55:
                continue
            created = to_utc(datetime.combine(day, time(rng.randint(9, 15))), zone)
            picked = rng.sample(items, k=rng.choice((1, 1, 2)))
            key = f"{SPEND_KEY}{site.id}-{back}"
            tickets.append(
                {
                    "kind": TicketKind.REQUEST,
                    "site_id": site.id,
                    "requester_id": rng.choice(local_people).id,
                    "title": ", ".join(f"{i.name} ×1" for i in picked),
                    "category": picked[0].category,
                    "status": TicketStatus.DELIVERED,
                    "closed": True,
                    "total_cents": sum(i.price_cents for i in picked),
                    "created_at": created,
                    "updated_at": created + timedelta(hours=4),
                    "closed_at": created + timedelta(hours=4),
                    "submission_key": key,
                    "version": 1,
                }
            )
            for item in picked:
                quantity = 1 if item.price_cents > 100_00 else rng.randint(1, 6)
                lines.append((key, item, quantity, created + timedelta(hours=rng.randint(2, 30))))
        month = first_of_month(today)
        for offset in range(-5, 1):
            for category, cents in BUDGETS.items():
                budgets.append(
                    {
                        "site_id": site.id,
                        "category": category,
                        "month": add_months(month, offset),
                        "amount_cents": cents,
                        "updated_at": now,
                    }
                )
    if not tickets:
        return 0
    session.execute(insert(Ticket.__table__), tickets)
    ids = dict(
        session.execute(
            select(Ticket.submission_key, Ticket.id).where(
                Ticket.submission_key.like(SPEND_KEY + "%")
            )
        ).all()
    )
    session.execute(
        insert(RequestLine.__table__),
        [
            {
                "ticket_id": ids[key],
                "item_id": item.id,
                "quantity": quantity,
                "unit_price_cents": item.price_cents,
                "status": LineStatus.FULFILLED,
                "decided_at": fulfilled - timedelta(hours=1),
                "fulfilled_at": fulfilled,
            }
            for key, item, quantity, fulfilled in lines
        ],
    )
    existing = {
        tuple(row) for row in session.execute(select(Budget.site_id, Budget.category, Budget.month))
    }
    fresh = [b for b in budgets if (b["site_id"], b["category"], b["month"]) not in existing]
    if fresh:
        session.execute(insert(Budget.__table__), fresh)
    return len(tickets)


def _door_events(session: Session, site: Site, rows: list[dict], people, rng) -> int:
    """Berlin's doors: everyone with a checked-in desk day badges in that morning (a few twice,
    after lunch), and on some days people come in without booking a desk."""
    zone = ZoneInfo(site.time_zone)
    desk_ids = set(session.scalars(select(Desk.id).where(Desk.site_id == site.id)))
    emails = {p.id: p.email for p in people}
    local = [p.email for p in people if p.home_site_id == site.id] or list(emails.values())
    events: list[dict] = []
    days: set = set()
    for row in rows:
        if row["resource_id"] not in desk_ids or row["checked_in_at"] is None:
            continue
        arrived = row["checked_in_at"] - timedelta(minutes=rng.randint(2, 15))
        days.add(arrived.astimezone(zone).date())
        events.append(_door(site, emails[row["user_id"]], arrived, len(events)))
        if rng.random() < 0.2:
            events.append(
                _door(site, emails[row["user_id"]], arrived + timedelta(hours=4), len(events))
            )
    for day in sorted(days):
        for email in rng.sample(local, k=min(len(local), rng.randint(1, 4))):
            start = to_utc(
                datetime.combine(day, time(rng.randint(7, 11), rng.randint(0, 59))), zone
            )
            events.append(_door(site, email, start, len(events)))
    for start in range(0, len(events), 2000):
        session.execute(insert(DoorEvent.__table__), events[start : start + 2000])
    return len(events)


def _door(site: Site, email: str, at: datetime, n: int) -> dict:
    return {
        "site_id": site.id,
        "event_id": f"{KEY_PREFIX}door-{n}",
        "person": email,
        "door": "Main entrance",
        "direction": "in",
        "occurred_at": at,
        "received_at": at,
        "source": "csv",
        "outcome": "Demo history.",
    }


def _row(
    resource_id: int, user_id: int, start: datetime, end: datetime, status: str, buffer: int, now
) -> dict:
    return {
        "resource_id": resource_id,
        "user_id": user_id,
        "created_by_id": user_id,
        "title": "",
        "start_at": start,
        "end_at": end,
        "blocked_until": end + timedelta(minutes=buffer),
        "status": status,
        "checked_in_at": None,
        "checked_in_via": None,
        "cancelled_at": None,
        "status_reason": "",
        "sequence": 0,
        "version": 1,
        "created_at": start - timedelta(days=3),
        "updated_at": now,
    }


def _desk(rng, desk: Desk, user_id, day: date, zone, now, show_rate: float) -> dict:
    start = to_utc(datetime.combine(day, time(8)), zone)
    end = to_utc(datetime.combine(day, time(18)), zone)
    roll = rng.random()
    row = _row(desk.id, user_id, start, end, BookingStatus.COMPLETED, 0, now)
    if roll < show_rate:
        row["checked_in_at"] = start + timedelta(minutes=rng.randint(20, 100))
        row["checked_in_via"] = rng.choice(("portal", "qr", "qr", "badge"))
        row["status"] = BookingStatus.CHECKED_IN  # a past desk day stays "checked in"
    elif roll < show_rate + 0.05:
        row["status"] = BookingStatus.CANCELLED
        row["cancelled_at"] = start - timedelta(hours=rng.randint(2, 40))
    else:
        row["status"] = BookingStatus.RELEASED
        row["status_reason"] = "No check-in before the window closed."
    return row


def _room(rng, room: Room, user_id, day: date, minute: int, length: int, zone, now) -> dict:
    start = to_utc(datetime.combine(day, time(minute // 60, minute % 60)), zone)
    end = start + timedelta(minutes=length)
    row = _row(room.id, user_id, start, end, BookingStatus.CHECKED_IN, room.buffer_minutes, now)
    roll = rng.random()
    if roll < 0.12:
        row["status"] = BookingStatus.RELEASED
        row["status_reason"] = "No check-in before the window closed."
    elif roll < 0.2:
        row["status"] = BookingStatus.CANCELLED
        row["cancelled_at"] = start - timedelta(hours=rng.randint(1, 48))
    else:
        row["checked_in_at"] = start + timedelta(minutes=rng.randint(0, 8))
        row["checked_in_via"] = rng.choice(("portal", "qr", "kiosk"))
        if roll > 0.93:  # ended early: the rest of the slot was given back
            row["status"] = BookingStatus.COMPLETED
            row["end_at"] = start + timedelta(minutes=max(15, length // 2))
            row["blocked_until"] = row["end_at"]
    return row


TICKET_KEY = "history-ticket-"
VISIT_KEY = "history-visit-"
ISSUE_TITLES = {
    "plumbing": "Leaking tap in the kitchenette",
    "cleaning": "Spilled coffee on the carpet",
    "temperature": "Too warm in the meeting room",
    "electrical": "Light flickers above the desks",
    "it_av": "Screen in the room stays dark",
    "furniture": "Chair will not adjust",
}
VISITOR_NAMES = ["Ana Souza", "Ben Carter", "Chen Wei", "Dara Okoye", "Eli Novak", "Fatima Zahra"]
COMPANIES = ["Nordwind GmbH", "Acme Corp", "Brightline", "City Council", ""]


def seed_tickets_and_visits(session: Session, days: int = DAYS) -> tuple[int, int]:
    """Facility issues and requests (with their SLA outcomes) and visits (invited, walk-in, a few
    stopped by the deny list) over the past `days` weekdays at every site, so the Service desk
    and Visitors dashboards have history; nothing if already there. Returns (tickets, visits)."""
    if session.scalar(
        select(Ticket.id).where(Ticket.submission_key.like(TICKET_KEY + "%")).limit(1)
    ):
        return 0, 0
    rng = random.Random(23)  # noqa: S311 - deterministic demo data, not security  # nosec B311
    now = utcnow()
    tickets: list[dict] = []
    visits: list[dict] = []
    for site in session.scalars(select(Site).order_by(Site.id)):
        zone = ZoneInfo(site.time_zone)
        people = list(
            session.scalars(
                select(User.id).where(User.home_site_id == site.id, User.active.is_(True))
            )
        )
        places = list(
            session.execute(
                select(Room.id, Room.floor_id).where(Room.site_id == site.id).order_by(Room.id)
            )
        )
        if not people or not places:
            continue
        hot_spots = places[:6]  # a few rooms report most problems: "top problem locations"
        today = now.astimezone(zone).date()
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            if day.weekday() >= 5:
                continue
            for _ in range(rng.randint(2, 7)):
                tickets.append(
                    _history_ticket(rng, site.id, day, zone, people, hot_spots, places, now)
                )
            for _ in range(rng.randint(3, 12)):
                visits.append(_history_visit(rng, site.id, day, zone, people))
    for n, row in enumerate(tickets):
        row["submission_key"] = f"{TICKET_KEY}{n}"
    for n, row in enumerate(visits):
        row["submission_key"] = f"{VISIT_KEY}{n}"
    for start in range(0, len(tickets), 2000):
        session.execute(insert(Ticket.__table__), tickets[start : start + 2000])
    for start in range(0, len(visits), 2000):
        session.execute(insert(Visit.__table__), visits[start : start + 2000])
    return len(tickets), len(visits)


def _history_ticket(rng, site_id, day, zone, people, hot_spots, places, now) -> dict:
    created = to_utc(datetime.combine(day, time(8)) + timedelta(minutes=rng.randint(0, 600)), zone)
    kind = TicketKind.ISSUE if rng.random() < 0.6 else TicketKind.REQUEST
    if kind == TicketKind.ISSUE:
        category = rng.choice(list(ISSUE_TITLES))
        title = ISSUE_TITLES[category]
        resource_id, floor_id = rng.choice(hot_spots if rng.random() < 0.7 else places)
    else:
        category = rng.choice(["office_supplies", "it_peripherals", "furniture", "welcome_kits"])
        title = "Supplies for the team"
        resource_id, floor_id = None, rng.choice(places)[1]
    first_due = created + timedelta(hours=4)
    resolution_due = created + timedelta(days=rng.choice((1, 2, 3, 5)))
    # Most are answered and finished in time; some run late, as in any office.
    responded = created + timedelta(hours=rng.uniform(0.2, 3.5 if rng.random() < 0.85 else 9))
    finished = created + timedelta(
        days=rng.uniform(0.1, 1.0) * (resolution_due - created).days
        if rng.random() < 0.8
        else rng.uniform(1.0, 2.0) * (resolution_due - created).days
    )
    done = finished <= now - timedelta(hours=1)
    return {
        "kind": kind.value,
        "site_id": site_id,
        "requester_id": rng.choice(people),
        "title": title,
        "description": "",
        "category": category,
        "status": TicketStatus.CLOSED.value if done else TicketStatus.IN_PROGRESS.value,
        "closed": done,
        "priority": "normal",
        "floor_id": floor_id,
        "resource_id": resource_id,
        "place_note": "",
        "delivery": "",
        "total_cents": 0,
        "first_response_due_at": first_due,
        "resolution_due_at": resolution_due,
        "first_responded_at": responded if responded <= now else None,
        "resolved_at": finished if done else None,
        "closed_at": finished if done else None,
        "me_too_count": 0,
        "created_at": created,
        "updated_at": finished if done else created,
        "version": 1,
    }


def _history_visit(rng, site_id, day, zone, people) -> dict:
    start = to_utc(datetime.combine(day, time(9)) + timedelta(minutes=rng.randint(0, 420)), zone)
    kind = VisitKind.INVITED if rng.random() < 0.7 else VisitKind.WALK_IN
    roll = rng.random()
    status = (
        VisitStatus.CHECKED_OUT
        if roll < 0.9
        else VisitStatus.DENIED
        if roll < 0.92
        else VisitStatus.CANCELLED
        if kind == VisitKind.INVITED
        else VisitStatus.CHECKED_OUT
    )
    arrived = start + timedelta(minutes=rng.randint(-10, 20))
    stayed = timedelta(minutes=rng.choice((30, 45, 60, 90, 120, 180, 240, 360)))
    return {
        "site_id": site_id,
        "host_id": rng.choice(people),
        "kind": kind.value,
        "status": status.value,
        "visitor_name": rng.choice(VISITOR_NAMES),
        "visitor_email": "",
        "visitor_company": rng.choice(COMPANIES),
        "purpose": "",
        "host_note": "",
        "name_key": "",
        "email_key": "",
        "expected_start": start,
        "expected_end": start + timedelta(hours=2),
        "local_date": day,
        "checked_in_at": arrived if status == VisitStatus.CHECKED_OUT else None,
        "checked_out_at": arrived + stayed if status == VisitStatus.CHECKED_OUT else None,
        "checkout_method": "kiosk" if status == VisitStatus.CHECKED_OUT else None,
        "signed_name": "",
        "badge_state": "none",
        "badge_error": "",
        "badge_attempts": 0,
        "created_at": start - timedelta(days=1 if kind == VisitKind.INVITED else 0),
        "updated_at": start,
    }
