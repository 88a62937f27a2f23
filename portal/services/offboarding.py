"""Offboarding a leaver, in the transaction that deactivates their account: their future bookings
and equipment loans are cancelled (the history stays), an assigned desk becomes a hot desk again,
and everything they still hold is collected through one return task listing every asset."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import false, select
from sqlalchemy.orm import Session

from portal.models import (
    HOLDING_STATUSES,
    Asset,
    Booking,
    BookingSeries,
    Desk,
    DeskAssignment,
    Site,
    Ticket,
    TicketKind,
    User,
)
from portal.services import (
    access_control,
    assets,
    audit,
    bookings,
    equipment_loans,
    series,
    tickets,
)
from portal.services.audit import Actor

CATEGORY = "offboarding"


@dataclass
class OffboardingSummary:
    bookings_cancelled: int = 0
    loans_cancelled: int = 0
    desks_freed: list[str] = field(default_factory=list)
    return_task: Ticket | None = None
    assets: list[Asset] = field(default_factory=list)

    def sentence(self) -> str:
        """E.g. "3 future bookings cancelled, desk D-12 freed, return task RET-00042 opened for
        2 assets"; empty when there was nothing to do."""
        parts = []
        if self.bookings_cancelled:
            parts.append(_count(self.bookings_cancelled, "future booking") + " cancelled")
        if self.loans_cancelled:
            parts.append(_count(self.loans_cancelled, "equipment loan") + " cancelled")
        for name in self.desks_freed:
            parts.append(f"desk {name} freed")
        if self.return_task is not None:
            parts.append(
                f"return task {self.return_task.number} opened for "
                + _count(len(self.assets), "asset")
            )
        return ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def offboard(session: Session, actor: Actor, user: User, now: datetime) -> OffboardingSummary:
    """Undo what a leaver holds. Safe to run twice: the second run finds nothing left."""
    summary = OffboardingSummary()
    reason = f"{user.name} has left the organisation."
    by = session.get(User, actor.user_id) if actor.user_id else None

    # Loans first, so their day-bookings are not counted as ordinary bookings.
    for loan in equipment_loans.active_loans_of(session, user, now):
        equipment_loans.cancel_loan(
            session, actor, loan, by or user, now=now, reason=reason, notify=False
        )
        summary.loans_cancelled += 1

    for one_series in session.scalars(
        select(BookingSeries).where(
            BookingSeries.user_id == user.id, BookingSeries.active.is_(True)
        )
    ).all():
        summary.bookings_cancelled += series.cancel_series(session, actor, one_series, now=now)
    for booking in session.scalars(
        select(Booking)
        .where(
            Booking.user_id == user.id,
            Booking.status.in_(HOLDING_STATUSES),
            Booking.end_at > now,
            Booking.loan_id.is_(None),
        )
        .order_by(Booking.start_at)
    ).all():
        bookings.cancel(session, actor, booking, now=now, reason=reason)
        summary.bookings_cancelled += 1

    for desk in session.scalars(
        select(Desk).where(Desk.assigned_user_id == user.id).order_by(Desk.name)
    ).all():
        before = {"assignment": desk.assignment, "assigned_user": desk.assigned_user_id}
        desk.assignment = DeskAssignment.HOT
        desk.assigned_user_id = None
        session.flush()
        audit.record(
            session,
            actor,
            "desk.unassigned",
            desk,
            before=before,
            after={"assignment": desk.assignment, "assigned_user": None, "reason": reason},
        )
        summary.desks_freed.append(desk.name)

    access_control.user_deactivated(session, actor, user, now=now)  # badges revoked by a job

    held = assets.held_by(session, user)
    already = session.scalar(
        select(Ticket.id).where(
            Ticket.kind == TicketKind.RETURN,
            Ticket.requester_id == user.id,
            Ticket.category == CATEGORY,
            Ticket.closed == false(),
        )
    )
    if held and already is None:
        site = user.home_site or session.get(Site, held[0].site_id)
        assert site is not None
        summary.return_task = tickets.open_ticket(
            session,
            actor,
            kind=TicketKind.RETURN,
            site=site,
            requester=user,
            title=f"Return equipment: {user.name}",
            category=CATEGORY,
            description=_asset_list(user, held),
            now=now,
        )
        for asset in held:
            assets.mark_return_requested(
                session,
                actor,
                asset,
                by or user,
                now,
                note=f"Offboarding: {summary.return_task.number}",
            )
        summary.assets = held

    audit.record(
        session,
        actor,
        "user.offboarded",
        user,
        after={
            "bookings_cancelled": summary.bookings_cancelled,
            "loans_cancelled": summary.loans_cancelled,
            "desks_freed": summary.desks_freed,
            "return_task": summary.return_task.number if summary.return_task else None,
            "assets": [a.asset_tag for a in summary.assets],
        },
    )
    return summary


def _asset_list(user: User, held: list[Asset]) -> str:
    lines = [f"{user.name} ({user.email}) has left. Collect everything they hold:", ""]
    for asset in held:
        serial = f" · S/N {asset.serial_number}" if asset.serial_number else ""
        where = f" · {asset.site.name}" if asset.site is not None else ""
        lines.append(f"- {asset.asset_tag} · {asset.item.name}{serial}{where}")
    return "\n".join(lines)
