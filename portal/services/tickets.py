"""What every ticket (request, facility issue, return task) shares: who may see and manage it,
its status machine, its thread (public comments and internal notes), assignment, the SLA clock
and telling the requester. The kind-specific rules live in requests.py and facility_issues.py.

Every change checks the version the person was looking at (`expected_version`), so a stale form
answers "changed by someone else" instead of overwriting what a colleague just did."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import Conflict, NotFound, RuleViolation
from portal.models import (
    FINISHED_STATUSES,
    IssueFollower,
    Priority,
    Role,
    RoleGrant,
    Site,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    User,
    Vendor,
)
from portal.services import audit, notices, notifications, sla
from portal.services.audit import Actor

COMMENT_MAX = 5000
TITLE_MAX = 200

STATUS_LABELS = {
    TicketStatus.SUBMITTED: "Submitted",
    TicketStatus.APPROVED: "Approved",
    TicketStatus.DECLINED: "Declined",
    TicketStatus.ORDERED: "Ordered",
    TicketStatus.READY: "Ready for pick-up",
    TicketStatus.DELIVERED: "Delivered",
    TicketStatus.IN_PROGRESS: "In progress",
    TicketStatus.WAITING: "Waiting for your reply",
    TicketStatus.RESOLVED: "Resolved",
    TicketStatus.CLOSED: "Closed",
    TicketStatus.CANCELLED: "Cancelled",
}
PRIORITY_LABELS = {
    Priority.LOW: "Low",
    Priority.NORMAL: "Normal",
    Priority.HIGH: "High",
    Priority.URGENT: "Urgent",
}
KIND_LABELS = {
    TicketKind.REQUEST: "Request",
    TicketKind.ISSUE: "Facility issue",
    TicketKind.RETURN: "Return task",
}

_S = TicketStatus
# Which status may follow which, per kind. Requests move to approved/declined through their lines
# (requests.py decides); coordinators move the rest by hand.
TRANSITIONS: dict[str, dict[str, set[str]]] = {
    TicketKind.REQUEST: {
        _S.SUBMITTED: {_S.APPROVED, _S.DECLINED, _S.WAITING, _S.CANCELLED},
        _S.WAITING: {_S.SUBMITTED, _S.APPROVED, _S.DECLINED, _S.CANCELLED},
        _S.APPROVED: {_S.ORDERED, _S.READY, _S.DELIVERED, _S.WAITING, _S.CANCELLED},
        _S.ORDERED: {_S.READY, _S.DELIVERED, _S.CANCELLED},
        _S.READY: {_S.DELIVERED, _S.CANCELLED},
        _S.DELIVERED: {_S.CLOSED},
        _S.DECLINED: {_S.CLOSED},
    },
    TicketKind.ISSUE: {
        _S.SUBMITTED: {_S.IN_PROGRESS, _S.WAITING, _S.RESOLVED, _S.CLOSED, _S.CANCELLED},
        _S.IN_PROGRESS: {_S.WAITING, _S.RESOLVED, _S.CLOSED, _S.CANCELLED},
        _S.WAITING: {_S.IN_PROGRESS, _S.RESOLVED, _S.CLOSED, _S.CANCELLED},
        _S.RESOLVED: {_S.IN_PROGRESS, _S.CLOSED},
    },
    TicketKind.RETURN: {
        _S.SUBMITTED: {_S.IN_PROGRESS, _S.CLOSED},
        _S.IN_PROGRESS: {_S.CLOSED},
    },
}
# Statuses in which the requester may still withdraw.
CANCELLABLE = {_S.SUBMITTED, _S.WAITING, _S.APPROVED, _S.ORDERED, _S.IN_PROGRESS}


class StaleTicket(Conflict):
    """Someone changed the ticket after the form was opened."""

    def __init__(self) -> None:
        super().__init__(
            "Changed by someone else since you opened it: here is the current state. "
            "Check it and try again."
        )


# ---------------------------------------------------------------------------------------------
# Who may see and do what


def may_manage(user: User, ticket: Ticket) -> bool:
    """Coordinators of the ticket's site and admins work on it."""
    return bool(
        user.is_authenticated and (user.is_admin or ticket.site_id in user.coordinated_site_ids())
    )


def is_follower(session: Session, user: User, ticket: Ticket) -> bool:
    return (
        session.scalar(
            select(IssueFollower.id).where(
                IssueFollower.ticket_id == ticket.id, IssueFollower.user_id == user.id
            )
        )
        is not None
    )


def may_see(session: Session, user: User, ticket: Ticket) -> bool:
    """The requester, people who said "me too" on an issue, and the site's coordinators."""
    if not user.is_authenticated:
        return False
    if ticket.requester_id == user.id or may_manage(user, ticket):
        return True
    return ticket.kind == TicketKind.ISSUE and is_follower(session, user, ticket)


def visible_ticket(
    session: Session, user: User, ticket_id: object, kind: str | None = None
) -> Ticket:
    """The ticket if it exists, is of `kind` and `user` may see it; NotFound otherwise (so ids
    cannot be probed)."""
    try:
        ticket = session.get(Ticket, int(ticket_id))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        ticket = None
    if ticket is None or (kind and ticket.kind != kind) or not may_see(session, user, ticket):
        raise NotFound("There is no such request or issue.")
    return ticket


def check_version(ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != ticket.version:
        raise StaleTicket()


# ---------------------------------------------------------------------------------------------
# Opening


def open_ticket(
    session: Session,
    actor: Actor,
    *,
    kind: str,
    site: Site,
    requester: User,
    title: str,
    category: str,
    priority: str = Priority.NORMAL,
    description: str = "",
    now: datetime,
    **details: object,
) -> Ticket:
    """Create a ticket, start its SLA clock and tell the site's coordinators (a header notice).
    `details` are further Ticket columns (floor_id, resource_id, place_note, delivery, ...)."""
    if priority not in PRIORITY_LABELS:
        raise RuleViolation({"priority": "Choose a priority from the list."})
    ticket = Ticket(
        kind=kind,
        site_id=site.id,
        requester_id=requester.id,
        title=title.strip()[:TITLE_MAX],
        category=category,
        priority=priority,
        description=description,
        status=TicketStatus.SUBMITTED,
        created_at=now,
        updated_at=now,
        **details,
    )
    session.add(ticket)
    sla.start_clock(session, ticket, site)
    session.flush()
    _event(session, ticket, requester.id, "status", "Submitted", now=now)
    audit.record(session, actor, f"{kind}.submitted", ticket, after=snapshot(ticket))
    for coordinator in site_coordinators(session, site.id):
        if coordinator.id != requester.id:
            notices.notify(
                session,
                coordinator,
                f"{kind}.new",
                f"New {KIND_LABELS[kind].lower()} {ticket.number} from {requester.name}: "
                f"{ticket.title}",
                link=ticket_path(ticket),
            )
    return ticket


def site_coordinators(session: Session, site_id: int) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(
                RoleGrant.role == Role.COORDINATOR,
                RoleGrant.site_id == site_id,
                User.active.is_(True),
            )
            .distinct()
        )
    )


def snapshot(ticket: Ticket) -> dict[str, object]:
    return {
        "kind": ticket.kind,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee_id": ticket.assignee_id,
        "vendor_id": ticket.vendor_id,
        "site_id": ticket.site_id,
    }


# ---------------------------------------------------------------------------------------------
# Status


def change_status(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    new_status: str,
    *,
    by: User,
    now: datetime,
    note: str = "",
    expected_version: int | None = None,
    notify: bool = True,
) -> None:
    """Move a ticket on, if its kind allows that step; runs the SLA clock and tells the requester
    (and, for issues, everyone who said "me too")."""
    check_version(ticket, expected_version)
    if new_status == ticket.status:
        return
    allowed = TRANSITIONS.get(ticket.kind, {}).get(ticket.status, set())
    if new_status not in allowed:
        current = STATUS_LABELS.get(ticket.status, ticket.status)
        wanted = STATUS_LABELS.get(new_status, new_status)
        raise RuleViolation(
            {
                "status": f"A {KIND_LABELS[ticket.kind].lower()} that is {current.lower()} "
                f"cannot become {wanted.lower()}."
            },
            "transition",
        )
    before = snapshot(ticket)
    site = session.get(Site, ticket.site_id)
    assert site is not None
    previous = ticket.status
    ticket.status = new_status
    ticket.updated_at = now
    if new_status == TicketStatus.WAITING:
        sla.pause(ticket, now)
    elif previous == TicketStatus.WAITING:
        sla.resume(ticket, site, now)
    if by.id != ticket.requester_id:
        mark_responded(ticket, now)
    if new_status in FINISHED_STATUSES:
        if new_status in (TicketStatus.RESOLVED, TicketStatus.DELIVERED, TicketStatus.DECLINED):
            ticket.resolved_at = ticket.resolved_at or now
        if new_status in (TicketStatus.CLOSED, TicketStatus.CANCELLED, TicketStatus.DECLINED):
            ticket.closed = True
            ticket.closed_at = now
        if new_status in (TicketStatus.CLOSED, TicketStatus.CANCELLED):
            ticket.resolved_at = ticket.resolved_at or now
        if ticket.paused_at is not None:
            ticket.paused_at = None
    else:
        # Reopened (e.g. resolved -> in progress): the clock runs again from the old deadline.
        ticket.closed = False
        ticket.closed_at = None
        ticket.resolved_at = None
    label = STATUS_LABELS.get(new_status, new_status)
    _event(session, ticket, by.id, "status", label + (f": {note}" if note else ""), now=now)
    audit.record(
        session, actor, f"{ticket.kind}.status", ticket, before=before, after=snapshot(ticket)
    )
    if notify and by.id != ticket.requester_id:
        tell_requester(session, ticket, f"Now: {label}", note=note)


def mark_responded(ticket: Ticket, now: datetime) -> None:
    """The first thing staff did that the requester can see stops the first-response clock."""
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now


def cancel(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    by: User,
    *,
    now: datetime,
    expected_version: int | None = None,
) -> None:
    """The requester withdraws. Requests only until fulfilled (requests.py releases stock)."""
    check_version(ticket, expected_version)
    if ticket.requester_id != by.id and not may_manage(by, ticket):
        raise NotFound("There is no such request or issue.")
    if ticket.status not in CANCELLABLE:
        label = STATUS_LABELS.get(ticket.status, ticket.status).lower()
        raise RuleViolation(
            {"": f"It is already {label}; it can no longer be cancelled."}, "not_cancellable"
        )
    change_status(session, actor, ticket, TicketStatus.CANCELLED, by=by, now=now, notify=False)


# ---------------------------------------------------------------------------------------------
# The thread


def add_comment(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    author: User,
    body: str,
    *,
    now: datetime,
    internal: bool = False,
) -> TicketEvent:
    """A public comment (the requester is told by e-mail) or, for staff, an internal note.
    A reply from the requester while the ticket waits on them starts the clock again."""
    text = (body or "").strip()
    if not text:
        raise RuleViolation({"body": "Write something first."}, "empty")
    if len(text) > COMMENT_MAX:
        raise RuleViolation({"body": f"Keep it under {COMMENT_MAX:,} characters."}, "too_long")
    staff = may_manage(author, ticket)
    if internal and not staff:
        raise RuleViolation({"body": "Only coordinators can write internal notes."}, "internal")
    if ticket.status in (TicketStatus.CANCELLED, TicketStatus.CLOSED) and not staff:
        raise RuleViolation(
            {"body": "This is closed. Open a new one if you still need something."}, "closed"
        )
    event = _event(
        session,
        ticket,
        author.id,
        "note" if internal else "comment",
        text,
        internal=internal,
        now=now,
    )
    ticket.updated_at = now
    if internal:
        return event
    if author.id == ticket.requester_id:
        if ticket.status == TicketStatus.WAITING:
            back = (
                TicketStatus.IN_PROGRESS
                if ticket.kind != TicketKind.REQUEST
                else TicketStatus.SUBMITTED
            )
            change_status(session, actor, ticket, back, by=author, now=now, notify=False)
        for person in (
            [ticket.assignee] if ticket.assignee else site_coordinators(session, ticket.site_id)
        ):
            if person is not None and person.id != author.id:
                notices.notify(
                    session,
                    person,
                    "ticket.comment",
                    f"{author.name} commented on {ticket.number}: {text[:120]}",
                    link=ticket_path(ticket),
                )
    else:
        mark_responded(ticket, now)
        tell_requester(session, ticket, f"{author.name} replied", note=text)
    # Bumps the version, so an open form of a colleague notices the thread moved on.
    session.flush()
    return event


def thread(session: Session, ticket: Ticket, viewer: User) -> list[TicketEvent]:
    """The thread as `viewer` may see it: internal notes only for staff."""
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    if not may_manage(viewer, ticket):
        query = query.where(TicketEvent.internal.is_(False))
    return list(session.scalars(query.order_by(TicketEvent.id)))


def _event(
    session: Session,
    ticket: Ticket,
    author_id: int | None,
    kind: str,
    body: str,
    *,
    now: datetime,
    internal: bool = False,
) -> TicketEvent:
    event = TicketEvent(
        ticket_id=ticket.id,
        author_id=author_id,
        kind=kind,
        body=body,
        internal=internal,
        created_at=now,
    )
    session.add(event)
    return event


def record(
    session: Session,
    ticket: Ticket,
    by: User | None,
    body: str,
    *,
    now: datetime,
    internal: bool = False,
    kind: str = "line",
) -> TicketEvent:
    """A line in the thread for a change made elsewhere (a line approved, stock reserved)."""
    return _event(session, ticket, by.id if by else None, kind, body, now=now, internal=internal)


# ---------------------------------------------------------------------------------------------
# Assignment and priority


def assign(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    *,
    by: User,
    now: datetime,
    assignee: User | None = None,
    vendor: Vendor | None = None,
    priority: str | None = None,
    expected_version: int | None = None,
) -> None:
    """Give a ticket to a coordinator of its site and/or an outside vendor, and set its
    priority (which re-targets the SLA)."""
    check_version(ticket, expected_version)
    if not may_manage(by, ticket):
        raise NotFound("There is no such request or issue.")
    if assignee is not None and not may_manage(assignee, ticket):
        raise RuleViolation({"assignee": f"{assignee.name} does not coordinate this site."})
    if vendor is not None and not vendor.active:
        raise RuleViolation({"vendor": f"{vendor.name} is no longer an active vendor."})
    if priority is not None and priority not in PRIORITY_LABELS:
        raise RuleViolation({"priority": "Choose a priority from the list."})
    before = snapshot(ticket)
    changes = []
    if (assignee.id if assignee else None) != ticket.assignee_id:
        ticket.assignee_id = assignee.id if assignee else None
        changes.append(f"assigned to {assignee.name}" if assignee else "unassigned")
        if assignee is not None and assignee.id != by.id:
            notices.notify(
                session,
                assignee,
                "ticket.assigned",
                f"{by.name} assigned {ticket.number} to you: {ticket.title}",
                link=ticket_path(ticket),
            )
    if (vendor.id if vendor else None) != ticket.vendor_id:
        ticket.vendor_id = vendor.id if vendor else None
        changes.append(f"vendor {vendor.name}" if vendor else "no vendor")
    if priority is not None and priority != ticket.priority:
        ticket.priority = priority
        changes.append(f"priority {PRIORITY_LABELS[priority].lower()}")
        site = session.get(Site, ticket.site_id)
        assert site is not None
        sla.start_clock(session, ticket, site)
    if not changes:
        return
    ticket.updated_at = now
    summary = "; ".join(changes)  # not .capitalize(): it would lower-case people's names
    _event(
        session, ticket, by.id, "assign", summary[:1].upper() + summary[1:], internal=True, now=now
    )
    audit.record(
        session, actor, f"{ticket.kind}.assigned", ticket, before=before, after=snapshot(ticket)
    )
    session.flush()


# ---------------------------------------------------------------------------------------------
# Telling people


def ticket_path(ticket: Ticket) -> str:
    """Where a ticket lives in the portal (also in e-mails and notices)."""
    if ticket.kind == TicketKind.REQUEST:
        return f"/requests/{ticket.id}"
    if ticket.kind == TicketKind.ISSUE:
        return f"/issues/{ticket.id}"
    return f"/inbox/tickets/{ticket.id}"


def tell_requester(session: Session, ticket: Ticket, headline: str, *, note: str = "") -> None:
    """An e-mail to the requester (and "me too" followers of an issue) about a public change."""
    people = [ticket.requester]
    if ticket.kind == TicketKind.ISSUE:
        people += followers(session, ticket)
    sender = notifications.sender_for(session)
    status = STATUS_LABELS.get(ticket.status, ticket.status)
    for person in _unique_active(people):
        notifications.queue_message(
            session,
            to_address=person.email,
            to_name=person.name,
            subject=f"{ticket.number} · {status}: {ticket.title}",
            headline=f"{ticket.number} — {ticket.title}. {headline}.",
            facts=[("Status", status), ("Number", ticket.number)],
            notes=[note] if note else [],
            link=sender.base_url + ticket_path(ticket),
            link_text=f"Open {ticket.number}",
            related=("ticket", ticket.id),
        )


def followers(session: Session, ticket: Ticket) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(IssueFollower, IssueFollower.user_id == User.id)
            .where(IssueFollower.ticket_id == ticket.id)
        )
    )


def _unique_active(people: Iterable[User | None]) -> list[User]:
    seen: dict[int, User] = {}
    for person in people:
        if person is not None and person.active and person.id not in seen:
            seen[person.id] = person
    return list(seen.values())
