"""Service levels: targets counted in the site's business hours, paused while waiting on the
requester. Every deadline is stored as a UTC instant so the inbox can filter and sort on it in SQL;
pausing and resuming move the deadlines on by the business time that passed while paused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, true
from sqlalchemy.orm import Session

from portal.models import Site, SlaPolicy, Ticket
from portal.timezones import to_utc

# An open ticket whose next deadline is this close (wall-clock) is "due soon".
SOON = timedelta(hours=4)
SLA_STATES = {
    "overdue": "Overdue",
    "soon": "Due soon",
    "on_track": "On track",
    "paused": "Paused (waiting on requester)",
    "met": "Met",
    "breached": "Missed",
    "none": "No target",
}
# What an installation starts with when no policy matches (business minutes).
DEFAULT_TARGETS = {"request": (8 * 60, 5 * 8 * 60), "issue": (4 * 60, 3 * 8 * 60)}


# ---------------------------------------------------------------------------------------------
# Business-time arithmetic


def _open_intervals(site: Site, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The site's opening hours as UTC intervals, from the day containing `start` onwards."""
    zone = ZoneInfo(site.time_zone)
    day = start.astimezone(zone).date()
    closed = _holidays(site)
    for _ in range(3660):  # ten years of days: a site open on no weekday yields nothing
        if (
            str(day.isoweekday()) in site.open_weekdays
            and site.opens_at < site.closes_at
            and day not in closed
        ):
            opens = to_utc(datetime.combine(day, site.opens_at), zone)
            closes = to_utc(datetime.combine(day, site.closes_at), zone)
            if closes > start:
                yield max(opens, start), closes
        day += timedelta(days=1)


def _holidays(site: Site) -> set[date]:
    """The site's holidays (portal/services/site_settings.py): closed, so no business time."""
    return {holiday.day for holiday in getattr(site, "holidays", None) or ()}


def add_business_minutes(site: Site, start: datetime, minutes: int) -> datetime:
    """The instant `minutes` of the site's opening hours after `start`."""
    remaining = timedelta(minutes=max(minutes, 0))
    last = start
    for opens, closes in _open_intervals(site, start):
        span = closes - opens
        if remaining <= span:
            return opens + remaining
        remaining -= span
        last = closes
    return last + remaining  # never open: fall back to wall-clock time


def business_minutes_between(site: Site, start: datetime, end: datetime) -> int:
    """Whole minutes of opening hours in [start, end); 0 if end is not after start."""
    if end <= start:
        return 0
    total = timedelta()
    for opens, closes in _open_intervals(site, start):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return int(total.total_seconds() // 60)


# ---------------------------------------------------------------------------------------------
# Policies and the clock


def policy_for(session: Session, kind: str, category: str, priority: str) -> SlaPolicy | None:
    """The most specific policy: category and priority, then category, then priority, then any."""
    candidates = session.scalars(
        select(SlaPolicy).where(
            SlaPolicy.kind == kind,
            SlaPolicy.category.in_([category, ""]),
            SlaPolicy.priority.in_([priority, ""]),
        )
    ).all()
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p.category != "", p.priority != ""))


def start_clock(session: Session, ticket: Ticket, site: Site) -> None:
    """Set the ticket's policy and deadlines from its creation time (also after a priority or
    category change; time already spent waiting on the requester is not given back)."""
    policy = policy_for(session, ticket.kind, ticket.category, ticket.priority)
    ticket.sla_policy_id = policy.id if policy else None
    if policy is not None:
        first, resolution = policy.first_response_minutes, policy.resolution_minutes
    elif ticket.kind in DEFAULT_TARGETS:
        first, resolution = DEFAULT_TARGETS[ticket.kind]
    else:
        ticket.first_response_due_at = ticket.resolution_due_at = None
        return
    began = ticket.created_at
    ticket.first_response_due_at = add_business_minutes(site, began, first)
    ticket.resolution_due_at = add_business_minutes(site, began, resolution)


def pause(ticket: Ticket, now: datetime) -> None:
    if ticket.paused_at is None:
        ticket.paused_at = now


def resume(ticket: Ticket, site: Site, now: datetime) -> None:
    """Move the open deadlines on by the business time that passed while paused."""
    if ticket.paused_at is None:
        return
    paused_at = ticket.paused_at
    ticket.paused_at = None
    for field in ("first_response_due_at", "resolution_due_at"):
        if field == "first_response_due_at" and ticket.first_responded_at is not None:
            continue
        due = getattr(ticket, field)
        if due is None:
            continue
        left = business_minutes_between(site, paused_at, due) if due > paused_at else 0
        overdue_by = business_minutes_between(site, due, paused_at) if due < paused_at else 0
        if overdue_by:
            continue  # it was already late when paused: the lateness stands
        setattr(ticket, field, add_business_minutes(site, now, left))


# ---------------------------------------------------------------------------------------------
# What the inbox shows


@dataclass(frozen=True)
class SlaState:
    state: str  # a key of SLA_STATES
    target: str  # "first response" | "resolution" | ""
    due_at: datetime | None

    @property
    def label(self) -> str:
        return SLA_STATES[self.state]


def state_of(ticket: Ticket, now: datetime) -> SlaState:
    """Where a ticket stands against its targets: the next open deadline decides."""
    if ticket.resolution_due_at is None:
        return SlaState("none", "", None)
    if ticket.closed or ticket.resolved_at is not None:
        finished = ticket.resolved_at or ticket.closed_at or now
        met = finished <= ticket.resolution_due_at
        return SlaState("met" if met else "breached", "resolution", ticket.resolution_due_at)
    if ticket.paused_at is not None:
        return SlaState("paused", "resolution", ticket.resolution_due_at)
    if ticket.first_responded_at is None and ticket.first_response_due_at is not None:
        target, due = "first response", ticket.first_response_due_at
        if ticket.resolution_due_at < due:
            target, due = "resolution", ticket.resolution_due_at
    else:
        target, due = "resolution", ticket.resolution_due_at
    if due < now:
        return SlaState("overdue", target, due)
    if due < now + SOON:
        return SlaState("soon", target, due)
    return SlaState("on_track", target, due)


def next_due() -> ColumnElement[datetime]:
    """SQL for the next open deadline (first response while unanswered, else resolution)."""
    return case(
        (
            and_(
                Ticket.first_responded_at.is_(None),
                Ticket.first_response_due_at < Ticket.resolution_due_at,
            ),
            Ticket.first_response_due_at,
        ),
        else_=Ticket.resolution_due_at,
    )


def filter_clause(state: str, now: datetime) -> ColumnElement[bool]:
    """SQL matching tickets in `state` (the inbox's SLA filter), consistent with `state_of`."""
    running = and_(
        Ticket.closed == false(),
        Ticket.resolved_at.is_(None),
        Ticket.paused_at.is_(None),
        Ticket.resolution_due_at.is_not(None),
    )
    due = next_due()
    if state == "overdue":
        return and_(running, due < now)
    if state == "soon":
        return and_(running, due >= now, due < now + SOON)
    if state == "on_track":
        return and_(running, due >= now + SOON)
    if state == "paused":
        return and_(
            Ticket.closed == false(),
            Ticket.resolved_at.is_(None),
            Ticket.paused_at.is_not(None),
        )
    finished = or_(Ticket.closed == true(), Ticket.resolved_at.is_not(None))
    if state == "met":
        return and_(
            finished,
            Ticket.resolution_due_at.is_not(None),
            _finished_at() <= Ticket.resolution_due_at,
        )
    if state == "breached":
        return and_(
            finished,
            Ticket.resolution_due_at.is_not(None),
            _finished_at() > Ticket.resolution_due_at,
        )
    if state == "none":
        return Ticket.resolution_due_at.is_(None)
    return true() if state == "" else false()


def _finished_at() -> ColumnElement[datetime]:
    return func.coalesce(Ticket.resolved_at, Ticket.closed_at)
