"""Changing a site's booking rules and blackout periods (validated and audited)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import Blackout, BookingPolicy, Resource, Site
from portal.services import audit
from portal.services.audit import Actor


@dataclass(frozen=True)
class PolicyValues:
    desk_horizon_days: int
    room_horizon_days: int
    min_minutes: int
    room_max_minutes: int
    one_desk_per_day: bool
    max_upcoming_room_bookings: int
    midday: time
    check_in_opens_minutes: int
    check_in_grace_minutes: int
    show_booker_names: bool


LIMITS = {
    "desk_horizon_days": (1, 365, "Desks can be bookable 1 to 365 days ahead."),
    "room_horizon_days": (1, 730, "Rooms can be bookable 1 to 730 days ahead."),
    "min_minutes": (5, 240, "The shortest booking is 5 to 240 minutes."),
    "room_max_minutes": (15, 24 * 60, "The longest room booking is 15 minutes to 24 hours."),
    "max_upcoming_room_bookings": (1, 500, "Allow 1 to 500 upcoming room bookings."),
    "check_in_opens_minutes": (0, 240, "Check-in can open 0 to 240 minutes early."),
    "check_in_grace_minutes": (5, 240, "Allow 5 to 240 minutes to check in."),
}


def stored_policy(session: Session, site: Site) -> BookingPolicy:
    """The site's own row, created with the defaults the first time someone edits it."""
    policy = session.scalar(select(BookingPolicy).where(BookingPolicy.site_id == site.id))
    if policy is None:
        policy = BookingPolicy(site_id=site.id)
        session.add(policy)
        session.flush()
    return policy


def update_policy(
    session: Session, actor: Actor, site: Site, values: PolicyValues
) -> BookingPolicy:
    errors = {
        name: message
        for name, (low, high, message) in LIMITS.items()
        if not low <= getattr(values, name) <= high
    }
    if values.min_minutes > values.room_max_minutes:
        errors["min_minutes"] = "The shortest booking cannot be longer than the longest."
    if not site.opens_at < values.midday < site.closes_at:
        errors["midday"] = (
            f"Midday must fall within opening hours ({site.opens_at:%H:%M}–{site.closes_at:%H:%M})."
        )
    if errors:
        raise RuleViolation(errors, "policy")
    policy = stored_policy(session, site)
    before = {f.name: str(getattr(policy, f.name)) for f in fields(PolicyValues)}
    for f in fields(PolicyValues):
        setattr(policy, f.name, getattr(values, f.name))
    session.info.pop("booking_policies", None)  # the per-session cache of booking_rules
    audit.record(
        session,
        actor,
        "booking_policy.updated",
        site,
        before=before,
        after={f.name: str(getattr(values, f.name)) for f in fields(PolicyValues)},
    )
    return policy


def add_blackout(
    session: Session,
    actor: Actor,
    site: Site,
    *,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    resource_id: int | None = None,
) -> Blackout:
    reason = " ".join(reason.split())[:500]
    if ends_at <= starts_at:
        raise RuleViolation({"ends": "The blackout must end after it starts."}, "blackout")
    if not reason:
        raise RuleViolation(
            {"reason": "Say why (people see it when booking is refused)."}, "blackout"
        )
    if resource_id is not None:
        resource = session.get(Resource, resource_id)
        if resource is None or resource.site_id != site.id:
            raise RuleViolation({"resource": "Pick a room or desk of this site."}, "blackout")
    blackout = Blackout(
        site_id=site.id,
        resource_id=resource_id,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
    )
    session.add(blackout)
    session.flush()
    audit.record(
        session,
        actor,
        "blackout.added",
        blackout,
        after={
            "site": site.slug,
            "from": starts_at.isoformat(),
            "until": ends_at.isoformat(),
            "reason": reason,
        },
    )
    return blackout


def remove_blackout(session: Session, actor: Actor, blackout: Blackout) -> None:
    audit.record(
        session,
        actor,
        "blackout.removed",
        blackout,
        before={"from": blackout.starts_at.isoformat(), "reason": blackout.reason},
    )
    session.delete(blackout)
