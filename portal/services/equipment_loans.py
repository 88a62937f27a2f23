"""Loanable equipment (a projector, a camera) and its loans.

Equipment is a bookable resource, so a loan is one booking per local day it covers and the booking
engine's guarantee applies unchanged: the per-resource lock serialises writers, and the database's
no-overlap constraint (an exclusion constraint on PostgreSQL, triggers on SQLite) decides any race.
Callers own the commit."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload

from portal.errors import NotFound, RuleViolation, SlotTaken
from portal.models import (
    HOLDING_STATUSES,
    Booking,
    BookingStatus,
    Equipment,
    EquipmentLoan,
    Resource,
    Site,
    User,
)
from portal.services import audit, booking_rules, bookings, notifications
from portal.services.audit import Actor
from portal.timezones import local_day_bounds

NAME_MAX = 120
PICKUP_MAX = 200
DESCRIPTION_MAX = 2000
PURPOSE_MAX = 200
MAX_LOAN_DAYS_LIMIT = 90
FORBIDDEN_IN_NAMES = re.compile(r"[<>\x00-\x1f\x7f]")
RESERVED = "reserved"
CANCELLED = "cancelled"


# ---------------------------------------------------------------------------------------------
# Managing the equipment


@dataclass(frozen=True)
class EquipmentDetails:
    name: str
    description: str = ""
    pickup_point: str = ""
    max_loan_days: int | None = 14
    active: bool = True


def may_manage(user: User, equipment: Resource) -> bool:
    return bool(
        user.is_authenticated
        and (user.is_admin or equipment.site_id in user.coordinated_site_ids())
    )


def _load(session: Session, equipment_id: object) -> Equipment | None:
    try:
        return session.get(Equipment, int(equipment_id))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def managed_equipment(session: Session, user: User, equipment_id: object) -> Equipment:
    equipment = _load(session, equipment_id)
    if equipment is None or not may_manage(user, equipment):
        raise NotFound("There is no such equipment.")
    return equipment


def loanable(session: Session, equipment_id: object) -> Equipment:
    """Equipment anyone may borrow: it exists and is offered."""
    equipment = _load(session, equipment_id)
    if equipment is None or not equipment.active:
        raise NotFound("There is no such equipment.")
    return equipment


def equipment_at(
    session: Session, site: Site, *, include_inactive: bool = False
) -> list[Equipment]:
    query = select(Equipment).where(Equipment.site_id == site.id).order_by(Equipment.name)
    if not include_inactive:
        query = query.where(Equipment.active.is_(True))
    return list(session.scalars(query))


def _checked(
    session: Session, site: Site, details: EquipmentDetails, ignore_id: int | None = None
) -> dict[str, object]:
    errors: dict[str, str] = {}
    name = " ".join((details.name or "").split())
    if not name:
        errors["name"] = "Give it a name people recognise, e.g. “Projector Epson 1”."
    elif len(name) > NAME_MAX:
        errors["name"] = f"Keep the name under {NAME_MAX} characters."
    elif FORBIDDEN_IN_NAMES.search(name):
        errors["name"] = "Names cannot contain < or >."
    elif session.scalar(
        select(Equipment.id).where(
            Equipment.site_id == site.id, Equipment.name == name, Equipment.id != (ignore_id or 0)
        )
    ):
        errors["name"] = f"{site.name} already has equipment called {name}."
    pickup = " ".join((details.pickup_point or "").split())
    if len(pickup) > PICKUP_MAX:
        errors["pickup_point"] = f"Keep it under {PICKUP_MAX} characters."
    elif FORBIDDEN_IN_NAMES.search(pickup):
        errors["pickup_point"] = "The pick-up point cannot contain < or >."
    description = (details.description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = f"Keep the description under {DESCRIPTION_MAX:,} characters."
    days = details.max_loan_days
    if days is None or not 1 <= days <= MAX_LOAN_DAYS_LIMIT:
        errors["max_loan_days"] = f"Between 1 and {MAX_LOAN_DAYS_LIMIT} days."
    if errors:
        raise RuleViolation(errors, "invalid")
    return {
        "name": name,
        "pickup_point": pickup,
        "description": description,
        "max_loan_days": days,
        "active": bool(details.active),
    }


def create_equipment(
    session: Session, actor: Actor, by: User, site: Site, details: EquipmentDetails
) -> Equipment:
    if not (by.is_admin or site.id in by.coordinated_site_ids()):
        raise NotFound("There is no such site.")
    values = _checked(session, site, details)
    equipment = Equipment(site_id=site.id, qr_code=secrets.token_urlsafe(6), **values)
    session.add(equipment)
    session.flush()
    audit.record(session, actor, "equipment.created", equipment, after=_snapshot(equipment))
    return equipment


def update_equipment(
    session: Session, actor: Actor, by: User, equipment: Equipment, details: EquipmentDetails
) -> Equipment:
    if not may_manage(by, equipment):
        raise NotFound("There is no such equipment.")
    values = _checked(session, equipment.site, details, ignore_id=equipment.id)
    before = _snapshot(equipment)
    for key, value in values.items():
        setattr(equipment, key, value)
    equipment.disabled_reason = "" if equipment.active else "Not offered for loan"
    session.flush()
    audit.record(
        session, actor, "equipment.updated", equipment, before=before, after=_snapshot(equipment)
    )
    return equipment


def _snapshot(equipment: Equipment) -> dict[str, object]:
    return {
        "name": equipment.name,
        "site": equipment.site_id,
        "pickup_point": equipment.pickup_point,
        "max_loan_days": equipment.max_loan_days,
        "active": equipment.active,
    }


# ---------------------------------------------------------------------------------------------
# Dates and availability


def zone_of(equipment: Resource) -> ZoneInfo:
    return ZoneInfo(equipment.site.time_zone)


def today_at(site: Site, now: datetime) -> date:
    return now.astimezone(ZoneInfo(site.time_zone)).date()


def last_bookable_day(session: Session, equipment: Resource, now: datetime) -> date:
    """Loans reach as far ahead as room bookings at the site."""
    policy = booking_rules.policy_for(session, equipment.site)
    return today_at(equipment.site, now) + timedelta(days=policy.room_horizon_days)


def days_of(first_day: date, last_day: date) -> list[date]:
    return [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]


def check_dates(
    session: Session,
    equipment: Equipment,
    first_day: date | None,
    last_day: date | None,
    now: datetime,
) -> None:
    """From today (in the site's zone) on, in order, at most max_loan_days, within the horizon."""
    if first_day is None:
        raise RuleViolation({"first_day": "Choose the first day."}, "dates")
    if last_day is None:
        raise RuleViolation({"last_day": "Choose the last day."}, "dates")
    today = today_at(equipment.site, now)
    if first_day < today:
        raise RuleViolation({"first_day": "That day is in the past; start today or later."}, "past")
    if last_day < first_day:
        raise RuleViolation({"last_day": "The last day is before the first day."}, "reversed")
    length = (last_day - first_day).days + 1
    if length > equipment.max_loan_days:
        raise RuleViolation(
            {
                "last_day": f"{equipment.name} can be borrowed for at most "
                f"{_days(equipment.max_loan_days)}; you chose {_days(length)}."
            },
            "too_long",
        )
    horizon = last_bookable_day(session, equipment, now)
    if last_day > horizon:
        raise RuleViolation(
            {"last_day": f"Loans can be reserved up to {horizon:%a %-d %b %Y}."}, "horizon"
        )


def taken_days(session: Session, equipment: Resource, first_day: date, last_day: date) -> set[date]:
    """The local days in [first_day, last_day] on which something holds the equipment."""
    return taken_days_of(session, [equipment], first_day, last_day).get(equipment.id, set())


def taken_days_of(
    session: Session, equipment: list[Equipment] | list[Resource], first_day: date, last_day: date
) -> dict[int, set[date]]:
    """Per equipment id, its taken local days in the range (one query for the whole list)."""
    if not equipment:
        return {}
    zone = zone_of(equipment[0])
    start, _ = local_day_bounds(first_day, zone)
    _, end = local_day_bounds(last_day, zone)
    rows = session.execute(
        select(Booking.resource_id, Booking.start_at, Booking.blocked_until).where(
            Booking.resource_id.in_([e.id for e in equipment]),
            Booking.status.in_(HOLDING_STATUSES),
            and_(Booking.start_at < end, Booking.blocked_until > start),
        )
    )
    taken: dict[int, set[date]] = {}
    for resource_id, starts, blocked_until in rows:
        day = max(starts.astimezone(zone).date(), first_day)
        last = min((blocked_until - timedelta(microseconds=1)).astimezone(zone).date(), last_day)
        while day <= last:
            taken.setdefault(resource_id, set()).add(day)
            day += timedelta(days=1)
    return taken


def nearest_free_range(
    session: Session, equipment: Equipment, first_day: date, length: int, now: datetime
) -> tuple[date, date] | None:
    """The free run of `length` days starting nearest to `first_day` (later first on a tie),
    not in the past and within the horizon."""
    today = today_at(equipment.site, now)
    horizon = last_bookable_day(session, equipment, now)
    if horizon < today:
        return None
    taken = taken_days(session, equipment, today, horizon)
    for distance in range(1, (horizon - today).days + 2):
        for start in (first_day + timedelta(days=distance), first_day - timedelta(days=distance)):
            end = start + timedelta(days=length - 1)
            if start < today or end > horizon:
                continue
            if not any(day in taken for day in days_of(start, end)):
                return start, end
    return None


# ---------------------------------------------------------------------------------------------
# Reserving and cancelling


def find_by_idempotency_key(
    session: Session, creator: User, key: str | None
) -> EquipmentLoan | None:
    if not key:
        return None
    return session.scalar(
        select(EquipmentLoan).where(
            EquipmentLoan.created_by_id == creator.id, EquipmentLoan.idempotency_key == key
        )
    )


def reserve(
    session: Session,
    actor: Actor,
    by: User,
    *,
    equipment_id: object,
    first_day: date | None,
    last_day: date | None,
    purpose: str = "",
    idempotency_key: str | None = None,
    now: datetime,
) -> EquipmentLoan:
    """Reserve equipment for a range of days: one booking per day, all or nothing. A repeated
    idempotency key returns the first loan unchanged."""
    previous = find_by_idempotency_key(session, by, idempotency_key)
    if previous is not None:
        return previous
    equipment = loanable(session, equipment_id)
    if not by.active:
        raise RuleViolation({"": f"{by.name} no longer has an account."}, "inactive")
    purpose = " ".join((purpose or "").split())
    if len(purpose) > PURPOSE_MAX:
        raise RuleViolation({"purpose": f"Keep it under {PURPOSE_MAX} characters."}, "too_long")
    check_dates(session, equipment, first_day, last_day, now)
    assert first_day is not None and last_day is not None

    bookings.lock_for_booking(session, [equipment.id], by.id)
    previous = find_by_idempotency_key(session, by, idempotency_key)  # a twin just finished
    if previous is not None:
        return previous
    zone = zone_of(equipment)
    days = days_of(first_day, last_day)
    bounds = [local_day_bounds(day, zone) for day in days]
    taken = [
        day
        for day, (start, end) in zip(days, bounds, strict=True)
        if bookings.overlapping(session, equipment, start, end) is not None
    ]
    if taken:
        raise _taken(session, equipment, first_day, len(days), taken, now)

    savepoint = session.begin_nested()
    try:
        loan = EquipmentLoan(
            equipment_id=equipment.id,
            user_id=by.id,
            created_by_id=by.id,
            first_day=first_day,
            last_day=last_day,
            purpose=purpose,
            status=RESERVED,
            idempotency_key=idempotency_key or None,
            created_at=now,
        )
        session.add(loan)
        session.flush()
        booking = None
        for start, end in bounds:
            booking = Booking(
                resource=equipment,
                user=by,
                created_by=by,
                title=f"Loan: {equipment.name}"[: bookings.MAX_TITLE],
                start_at=start,
                end_at=end,
                blocked_until=end,
                status=BookingStatus.CONFIRMED,
                loan_id=loan.id,
                created_at=now,
                updated_at=now,
            )
            session.add(booking)
        assert booking is not None
        bookings.flush_or_taken(session, booking, [])
    except SlotTaken as lost_race:
        savepoint.rollback()
        raise _taken(session, equipment, first_day, len(days), [], now) from lost_race
    except DBAPIError as exc:
        # flush_or_taken opens its savepoint with begin_nested(), which flushes the pending day
        # bookings first, outside its own try: a constraint violation can surface here raw.
        savepoint.rollback()
        if not _lost_race(exc):
            raise
        raise _taken(session, equipment, first_day, len(days), [], now) from exc
    savepoint.commit()
    audit.record(session, actor, "loan.reserved", loan, after=_loan_snapshot(loan))
    _tell(session, loan, "Reserved", f"{equipment.name} is reserved for you.")
    return loan


def _lost_race(exc: DBAPIError) -> bool:
    """The no-overlap constraint (PostgreSQL's exclusion constraint or deadlock, SQLite's
    trigger) refused the write: someone else got there first."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in {"23P01", "40P01"} or "ex_bookings_no_overlap" in str(exc.orig)


def _taken(
    session: Session,
    equipment: Equipment,
    first_day: date,
    length: int,
    taken: list[date],
    now: datetime,
) -> SlotTaken:
    """The refusal: which days are taken, and the nearest free range of the same length."""
    if taken:
        what = f"{equipment.name} is already lent out on {_day_list(taken)}."
    else:
        what = f"{equipment.name} was just reserved by someone else for those days."
    free = nearest_free_range(session, equipment, first_day, length, now)
    if free is not None:
        what += f" Nearest free: {_range(*free)}."
    return SlotTaken({"first_day": what}, "overlap", [free] if free else [])


def may_see_loan(user: User, loan: EquipmentLoan) -> bool:
    return user.id in (loan.user_id, loan.created_by_id) or may_manage(user, loan.equipment)


def visible_loan(session: Session, user: User, loan_id: object) -> EquipmentLoan:
    try:
        loan = session.get(EquipmentLoan, int(loan_id))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        loan = None
    if loan is None or not may_see_loan(user, loan):
        raise NotFound("There is no such loan.")
    return loan


def cancel_loan(
    session: Session,
    actor: Actor,
    loan: EquipmentLoan,
    by: User,
    *,
    now: datetime,
    reason: str = "",
    notify: bool = True,
) -> int:
    """Cancel a loan (its owner or a coordinator): the loan and its days still ahead are
    cancelled, a day under way ends now. Returns how many day-bookings were freed."""
    if not may_see_loan(by, loan):
        raise NotFound("There is no such loan.")
    if loan.status != RESERVED:
        raise RuleViolation({"": "This loan is already cancelled."}, "not_active")
    if loan.last_day < today_at(loan.equipment.site, now):
        raise RuleViolation({"": "This loan is already over."}, "over")
    freed = 0
    for booking in _holding_days(session, loan, now):
        bookings.cancel(session, actor, booking, now=now, reason=reason, notify=False)
        freed += 1
    before = _loan_snapshot(loan)
    loan.status = CANCELLED
    session.flush()
    audit.record(session, actor, "loan.cancelled", loan, before=before, after=_loan_snapshot(loan))
    if notify and by.id != loan.user_id:
        _tell(
            session,
            loan,
            "Cancelled",
            f"{by.name} cancelled your loan of {loan.equipment.name}.",
            reason,
        )
    return freed


def _holding_days(session: Session, loan: EquipmentLoan, now: datetime) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(
                Booking.loan_id == loan.id,
                Booking.status.in_(HOLDING_STATUSES),
                Booking.end_at > now,
            )
            .order_by(Booking.start_at)
        )
    )


@dataclass
class MyLoans:
    current: list[EquipmentLoan]
    upcoming: list[EquipmentLoan]
    past: list[EquipmentLoan]


def loans_of(session: Session, user: User, now: datetime, past_limit: int = 20) -> MyLoans:
    """A person's loans: under way today, still ahead, and over or cancelled (newest first)."""
    loans = list(
        session.scalars(
            select(EquipmentLoan)
            .where(EquipmentLoan.user_id == user.id)
            .options(selectinload(EquipmentLoan.equipment).selectinload(Equipment.site))
            .order_by(EquipmentLoan.first_day, EquipmentLoan.id)
        )
    )
    mine = MyLoans([], [], [])
    for loan in loans:
        today = today_at(loan.equipment.site, now)
        if loan.status != RESERVED or loan.last_day < today:
            mine.past.append(loan)
        elif loan.first_day <= today:
            mine.current.append(loan)
        else:
            mine.upcoming.append(loan)
    mine.past = sorted(mine.past, key=lambda loan: (loan.first_day, loan.id), reverse=True)
    mine.past = mine.past[:past_limit]
    return mine


def active_loans_of(session: Session, user: User, now: datetime) -> list[EquipmentLoan]:
    """Loans not cancelled and not over: what offboarding cancels."""
    mine = loans_of(session, user, now, past_limit=0)
    return mine.current + mine.upcoming


def loans_of_equipment(
    session: Session, equipment: Equipment, now: datetime, limit: int = 50
) -> list[EquipmentLoan]:
    """Reserved loans of this equipment that are not over, soonest first (coordinator's view)."""
    today = today_at(equipment.site, now)
    return list(
        session.scalars(
            select(EquipmentLoan)
            .where(
                EquipmentLoan.equipment_id == equipment.id,
                EquipmentLoan.status == RESERVED,
                EquipmentLoan.last_day >= today,
            )
            .options(selectinload(EquipmentLoan.user))
            .order_by(EquipmentLoan.first_day)
            .limit(limit)
        )
    )


# ---------------------------------------------------------------------------------------------
# Wording


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _range(first: date, last: date) -> str:
    if first == last:
        return f"{first:%a %-d %b}"
    return f"{first:%a %-d %b} – {last:%a %-d %b}"


def loan_range(loan: EquipmentLoan) -> str:
    return _range(loan.first_day, loan.last_day)


def _day_list(days: list[date]) -> str:
    days = sorted(days)
    shown = ", ".join(f"{d:%a %-d %b}" for d in days[:5])
    return shown + (f" and {len(days) - 5} more" if len(days) > 5 else "")


def _loan_snapshot(loan: EquipmentLoan) -> dict[str, object]:
    return {
        "equipment": loan.equipment_id,
        "user": loan.user_id,
        "first_day": loan.first_day.isoformat(),
        "last_day": loan.last_day.isoformat(),
        "status": loan.status,
    }


def _tell(
    session: Session, loan: EquipmentLoan, status: str, headline: str, reason: str = ""
) -> None:
    equipment = session.get(Equipment, loan.equipment_id)
    assert equipment is not None
    person = session.get(User, loan.user_id)
    assert person is not None
    if not person.active:
        return
    sender = notifications.sender_for(session)
    facts = [("What", equipment.name), ("When", loan_range(loan)), ("Site", equipment.site.name)]
    if equipment.pickup_point:
        facts.append(("Pick up", equipment.pickup_point))
    if reason:
        facts.append(("Reason", reason))
    notifications.queue_message(
        session,
        to_address=person.email,
        to_name=person.name,
        subject=f"{status}: {equipment.name}, {loan_range(loan)}",
        headline=headline,
        facts=facts,
        notes=[],
        link=sender.base_url + "/equipment",
        link_text="Open My equipment",
        related=("loan", loan.id),
    )
