"""The coordinator's inbox: one queue of requests, facility issues, return tasks and pending room
approvals for the sites a person coordinates, with filters, sorting, saved views and bulk actions.

The first page costs a fixed number of SQL statements whatever the filter or the data size: one
page of tickets with everything a row shows eager-loaded, one bounded count, one query for the
(few) pending room approvals that are merged into the list by the same sort key, one aggregate for
the built-in views' counts, and the filter bar's choices."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.exc import StaleDataError

from portal.db import db_id, db_int
from portal.errors import DomainError, NotFound, RuleViolation
from portal.models import (
    Booking,
    BookingStatus,
    Floor,
    IssueCategory,
    ItemCategory,
    LineStatus,
    Resource,
    Role,
    RoleGrant,
    SavedView,
    Site,
    Ticket,
    TicketKind,
    TicketStatus,
    User,
    Vendor,
)
from portal.services import bookings, sla, tickets
from portal.services.audit import Actor

PAGE_SIZE = 50
# Pending room approvals merged into the list: few by nature (they expire when the slot passes).
BOOKING_CAP = 200
# The total is counted up to here; beyond it the page says "1,000+" (a count must stay cheap).
COUNT_CAP = 1000
MAX_PAGE = 2000
SAVED_VIEWS_MAX = 30
SAVED_VIEW_NAME_MAX = 60
ROOM = "room"  # the inbox's kind for a pending room booking

KIND_LABELS = {
    TicketKind.REQUEST.value: "Request",
    TicketKind.ISSUE.value: "Facility issue",
    TicketKind.RETURN.value: "Return task",
    ROOM: "Room approval",
}
# Read after "sorted by" as well as in the Sort menu, so each is a phrase that stands alone.
SORTS = {
    "due": "SLA: due soonest first",
    "newest": "Newest first",
    "oldest": "Oldest first",
    "priority": "Priority: highest first",
}
AGES = {
    1: "Older than 1 day",
    3: "Older than 3 days",
    7: "Older than a week",
    30: "Older than 30 days",
}
SLA_FILTERS = {
    "overdue": "Overdue",
    "soon": "Due soon",
    "on_track": "On track",
    "paused": "Paused",
    "met": "Met",
    "breached": "Missed",
}
CATEGORY_LABELS = {
    **{c.value: c.value.replace("_", " ").capitalize() for c in IssueCategory},
    **{c.value: c.value.replace("_", " ").capitalize() for c in ItemCategory},
    IssueCategory.IT_AV.value: "IT / AV",
    ItemCategory.IT_PERIPHERALS.value: "IT peripherals",
}
PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
# A pending room booking: decided before it starts, so its deadline is its start.
ROOM_TARGET = "decision"


# ---------------------------------------------------------------------------------------------
# The filter: what the URL says


@dataclass(frozen=True)
class InboxFilter:
    """One view of the inbox; `from_args` reads it from a query string (ignoring what makes no
    sense, since URLs are edited by hand) and `query()` writes it back without defaults."""

    site: int | None = None
    kind: str = ""
    status: str = "open"  # open | all | a TicketStatus
    category: str = ""
    age: int | None = None  # older than this many days
    sla: str = ""
    assignee: str = ""  # "" | me | none | <user id> | v<vendor id>
    q: str = ""
    sort: str = ""  # "" = the default for the status (SLA due while open, else newest)
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> InboxFilter:
        def text(name: str, limit: int = 40) -> str:
            return (args.get(name) or "").strip()[:limit]

        def number(name: str) -> int | None:
            try:
                value = int(text(name))
            except ValueError:
                return None
            return value if value > 0 else None

        status = text("status") or "open"
        if status not in ("open", "all") and status not in {s.value for s in TicketStatus}:
            status = "open"
        assignee = text("assignee")
        if assignee not in ("me", "none") and db_id(assignee.removeprefix("v")) is None:
            assignee = ""
        age = number("age")
        return cls(
            site=number("site"),
            kind=text("kind") if text("kind") in KIND_LABELS else "",
            status=status,
            category=text("category") if text("category") in CATEGORY_LABELS else "",
            age=age if age in AGES else None,
            sla=text("sla") if text("sla") in SLA_FILTERS else "",
            assignee=assignee,
            q=text("q", 100),
            sort=text("sort") if text("sort") in SORTS else "",
            page=min(number("page") or 1, MAX_PAGE),
        )

    @property
    def effective_sort(self) -> str:
        if self.sort:
            return self.sort
        finished = {s.value for s in (TicketStatus.CLOSED, TicketStatus.CANCELLED)}
        return "newest" if self.status == "all" or self.status in finished else "due"

    def query(self, **changes: Any) -> dict[str, str]:
        """The query-string parameters of this view (defaults left out), with `changes`."""
        view = replace(self, **changes) if changes else self
        values = {
            "site": view.site,
            "kind": view.kind,
            "status": "" if view.status == "open" else view.status,
            "category": view.category,
            "age": view.age,
            "sla": view.sla,
            "assignee": view.assignee,
            "q": view.q,
            "sort": view.sort,
            "page": view.page if view.page > 1 else None,
        }
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    def query_string(self, **changes: Any) -> str:
        return urlencode(self.query(**changes))

    @property
    def narrowed(self) -> bool:
        return bool(self.query(page=1, sort=""))


BUILT_IN_VIEWS = [
    ("All open", InboxFilter()),
    ("My queue", InboxFilter(assignee="me")),
    ("Unassigned", InboxFilter(assignee="none")),
    ("Overdue", InboxFilter(sla="overdue")),
    ("Room approvals", InboxFilter(kind=ROOM)),
]


# ---------------------------------------------------------------------------------------------
# What a row shows


@dataclass
class InboxRow:
    kind: str  # request | issue | return | room
    id: int
    number: str
    title: str
    requester: str
    site: Site | None
    place: str
    created_at: datetime
    priority: str
    status: str
    status_label: str
    assignee: str
    vendor: str
    sla: sla.SlaState
    version: int
    url: str
    category: str = ""
    ticket: Ticket | None = None
    booking: Booking | None = None

    @property
    def key(self) -> str:
        """The checkbox value of bulk actions: what and which version the person looked at."""
        return f"{'b' if self.kind == ROOM else 't'}:{self.id}:{self.version}"

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS.get(self.category, self.category)

    @property
    def attention(self) -> str:
        """ "overdue" or "soon" for rows that must stand out; "" otherwise."""
        return self.sla.state if self.sla.state in ("overdue", "soon") else ""


@dataclass
class InboxPage:
    filter: InboxFilter
    rows: list[InboxRow]
    total: int  # up to COUNT_CAP + the room approvals
    total_capped: bool
    page: int
    has_next: bool
    sites: list[Site]
    staff: list[User]
    vendors: list[Vendor]
    view_counts: dict[str, int] = field(default_factory=dict)
    saved_views: list[SavedView] = field(default_factory=list)
    approvals: int = 0  # of `total`, the pending room approvals

    @property
    def tickets_label(self) -> str:
        """The tickets of `total` (those that are not room approvals), with the cap's "+"."""
        count = self.total - self.approvals
        return f"{count:,}+" if self.total_capped else f"{count:,}"

    @property
    def total_label(self) -> str:
        return f"{self.total:,}+" if self.total_capped else f"{self.total:,}"


def scope(viewer: User) -> set[int] | None:
    """The sites whose inbox `viewer` works; None means every site (admins)."""
    return None if viewer.is_admin else viewer.coordinated_site_ids()


def inbox_page(session: Session, viewer: User, view: InboxFilter, now: datetime) -> InboxPage:
    sites_in_scope = scope(viewer)
    sites = _sites(session, sites_in_scope)
    site_by_id = {s.id: s for s in sites}
    sort = view.effective_sort
    offset = (view.page - 1) * PAGE_SIZE

    pending = _room_approvals(session, viewer, view, now, sites_in_scope)
    keyed = sorted(pending, key=_booking_key(sort))
    # Enough tickets to fill the page whatever number of approvals fall before it.
    first = max(0, offset - len(keyed))
    limit = PAGE_SIZE + 1 + min(offset, len(keyed))
    ticket_list: list[Ticket] = []
    total_tickets, capped = 0, False
    if view.kind != ROOM:
        conditions = _ticket_conditions(viewer, view, now, sites_in_scope)
        # Pick the page's ids on the narrow table first, then join what the rows show to those
        # few: joining first would widen every candidate row before the sort.
        page_ids = (
            select(Ticket.id)
            .where(*conditions)
            .order_by(*_ticket_order(sort))
            .offset(first)
            .limit(limit)
            .subquery()
        )
        query = (
            select(Ticket)
            .join(page_ids, page_ids.c.id == Ticket.id)
            .options(
                joinedload(Ticket.requester).lazyload(User.home_site),
                joinedload(Ticket.assignee).lazyload(User.home_site),
                joinedload(Ticket.vendor),
                joinedload(Ticket.floor).lazyload(Floor.building),
                joinedload(Ticket.resource),
            )
            .order_by(*_ticket_order(sort))
        )
        ticket_list = list(session.scalars(query).unique())
        counted = session.scalar(
            select(func.count()).select_from(
                select(Ticket.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
            )
        )
        total_tickets = min(counted or 0, COUNT_CAP)
        capped = (counted or 0) > COUNT_CAP
    has_more_tickets = len(ticket_list) == limit
    rows = _merge(ticket_list, first, has_more_tickets, keyed, sort, offset, now, site_by_id)
    total = total_tickets + len(keyed)
    return InboxPage(
        filter=view,
        rows=rows[:PAGE_SIZE],
        total=total,
        total_capped=capped,
        page=view.page,
        has_next=len(rows) > PAGE_SIZE,
        sites=sites,
        staff=_staff(session, sites_in_scope),
        vendors=list(
            session.scalars(select(Vendor).where(Vendor.active.is_(True)).order_by(Vendor.name))
        ),
        view_counts=_view_counts(session, viewer, now, sites_in_scope),
        saved_views=saved_views(session, viewer),
        approvals=len(keyed),
    )


def _merge(
    ticket_list: list[Ticket],
    first: int,
    has_more: bool,
    approvals: list[Booking],
    sort: str,
    offset: int,
    now: datetime,
    site_by_id: dict[int, Site],
) -> list[InboxRow]:
    """Put the approvals among the tickets by the sort key and return the page's rows (plus one
    more, which tells whether there is a next page). Tickets keep the database's order; only a
    ticket and an approval are compared in Python."""
    ticket_key, booking_key = _ticket_key(sort), _booking_key(sort)
    ticket_keys = [ticket_key(t) for t in ticket_list]
    placed: list[tuple[int, int, InboxRow]] = []  # (position in the whole list, tie, row)
    for i, booking in enumerate(approvals):
        key = booking_key(booking)
        before = bisect.bisect_left(ticket_keys, key)
        if first > 0 and before == 0:
            continue  # it sorts before the tickets fetched, so before this page
        if has_more and before == len(ticket_keys):
            continue  # after every ticket fetched, so after this page
        placed.append((i + first + before, 1, _booking_row(booking, now, site_by_id)))
    approval_keys = [booking_key(b) for b in approvals]
    for j, ticket in enumerate(ticket_list):
        before = bisect.bisect_right(approval_keys, ticket_keys[j])
        placed.append((first + j + before, 0, _ticket_row(ticket, now)))
    placed.sort(key=lambda p: (p[0], p[1]))
    return [row for position, _, row in placed if offset <= position <= offset + PAGE_SIZE]


# -- tickets --------------------------------------------------------------------------------


def _ticket_conditions(
    viewer: User, view: InboxFilter, now: datetime, sites: set[int] | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if sites is not None:
        conditions.append(Ticket.site_id.in_(sorted(sites)))
    if view.site is not None:
        conditions.append(Ticket.site_id == view.site)
    if view.kind:
        conditions.append(Ticket.kind == view.kind)
    if view.status == "open":
        conditions.append(Ticket.closed == false())
    elif view.status != "all":
        conditions.append(Ticket.status == view.status)
    if view.category:
        conditions.append(Ticket.category == view.category)
    if view.age:
        conditions.append(Ticket.created_at < now - timedelta(days=view.age))
    if view.sla:
        conditions.append(sla.filter_clause(view.sla, now))
    if view.assignee == "me":
        conditions.append(Ticket.assignee_id == viewer.id)
    elif view.assignee == "none":
        conditions.append(Ticket.assignee_id.is_(None))
    elif view.assignee.startswith("v"):
        conditions.append(Ticket.vendor_id == int(view.assignee[1:]))
    elif view.assignee:
        conditions.append(Ticket.assignee_id == int(view.assignee))
    if view.q:
        conditions.append(_text_match(view.q))
    return conditions


def _text_match(q: str) -> ColumnElement[bool]:
    """A number ("REQ-00012", "#12", "12") finds that ticket; anything else searches titles and
    descriptions (an issue's title is its category and place; the reporter's words are in the
    description)."""
    digits = q.upper().removeprefix("#")
    for prefix in ("REQ-", "ISS-", "RET-", "T-"):
        digits = digits.removeprefix(prefix)
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    by_title = or_(
        func.lower(Ticket.title).like(f"%{escaped}%", escape="\\"),
        func.lower(Ticket.description).like(f"%{escaped}%", escape="\\"),
    )
    if digits.isdecimal() and len(digits) <= 9:
        return or_(Ticket.id == int(digits), by_title)
    return by_title


def _priority_rank() -> ColumnElement[int]:
    return case(*((Ticket.priority == p, r) for p, r in PRIORITY_RANK.items()), else_=1)


def _ticket_order(sort: str) -> list[Any]:
    if sort == "newest":
        return [Ticket.created_at.desc(), Ticket.id.desc()]
    if sort == "oldest":
        return [Ticket.created_at.asc(), Ticket.id.asc()]
    # Resolved or delivered but not yet closed: nothing is due any more, so they go last.
    done = case((Ticket.resolved_at.is_not(None), 1), else_=0)
    due = [done.asc(), sla.next_due().asc().nulls_last(), Ticket.id.asc()]
    if sort == "priority":
        return [_priority_rank().desc(), *due]
    return due


def ticket_next_due(ticket: Ticket) -> datetime | None:
    """Python's twin of `sla.next_due` (to merge approvals in the same order)."""
    first, resolution = ticket.first_response_due_at, ticket.resolution_due_at
    if (
        ticket.first_responded_at is None
        and first is not None
        and resolution is not None
        and first < resolution
    ):
        return first
    return resolution


SortKey = tuple[Any, ...]


def _key(
    sort: str, created: datetime, due: datetime | None, rank: int, src: int, id_: int, done: int = 0
) -> SortKey:
    """Ascending keys consistent with `_ticket_order` (src breaks ties: tickets first)."""
    stamp = created.timestamp()
    if sort == "newest":
        return (-stamp, src, -id_)
    if sort == "oldest":
        return (stamp, src, id_)
    due_part = (done, due is None, due.timestamp() if due else 0.0)
    if sort == "priority":
        return (-rank, *due_part, src, id_)
    return (*due_part, src, id_)


def _ticket_key(sort: str) -> Callable[[Ticket], SortKey]:
    return lambda t: _key(
        sort,
        t.created_at,
        ticket_next_due(t),
        PRIORITY_RANK.get(t.priority, 1),
        0,
        t.id,
        1 if t.resolved_at is not None else 0,
    )


def _booking_key(sort: str) -> Callable[[Booking], SortKey]:
    return lambda b: _key(sort, b.created_at, b.start_at, PRIORITY_RANK["normal"], 1, b.id)


def _ticket_row(ticket: Ticket, now: datetime) -> InboxRow:
    place = ticket.resource.name if ticket.resource else (ticket.floor.name if ticket.floor else "")
    if ticket.place_note:
        place = f"{place} · {ticket.place_note}" if place else ticket.place_note
    return InboxRow(
        kind=ticket.kind,
        id=ticket.id,
        number=ticket.number,
        title=ticket.title,
        requester=ticket.requester.name if ticket.requester else "",
        site=ticket.site,
        place=place,
        created_at=ticket.created_at,
        priority=ticket.priority,
        status=ticket.status,
        status_label=tickets.STATUS_LABELS.get(ticket.status, ticket.status),
        assignee=ticket.assignee.name if ticket.assignee else "",
        vendor=ticket.vendor.name if ticket.vendor else "",
        sla=sla.state_of(ticket, now),
        version=ticket.version,
        url=tickets.ticket_path(ticket),
        category=ticket.category,
        ticket=ticket,
    )


# -- room approvals -------------------------------------------------------------------------


def _approval_conditions(
    view: InboxFilter, now: datetime, sites: set[int] | None
) -> list[ColumnElement[bool]] | None:
    """What picks the pending room bookings `view` holds (joined to their Resource); None when
    the view holds none. Shared by the list and the views' counts so the two always agree."""
    if view.kind not in ("", ROOM) or view.category:
        return None
    if view.status not in ("open", "all", TicketStatus.SUBMITTED.value):
        return None
    if view.assignee not in ("", "none"):
        return None  # nobody is assigned to an approval: "me", a person or a vendor excludes them
    if view.sla and view.sla not in ("overdue", "soon", "on_track"):
        return None
    conditions: list[ColumnElement[bool]] = [
        Booking.status == BookingStatus.PENDING,
        Booking.end_at > now,
    ]
    if sites is not None:
        conditions.append(Resource.site_id.in_(sorted(sites)))
    if view.site is not None:
        conditions.append(Resource.site_id == view.site)
    if view.age:
        conditions.append(Booking.created_at < now - timedelta(days=view.age))
    if view.sla == "overdue":
        conditions.append(Booking.start_at < now)
    elif view.sla == "soon":
        conditions.append(and_(Booking.start_at >= now, Booking.start_at < now + sla.SOON))
    elif view.sla == "on_track":
        conditions.append(Booking.start_at >= now + sla.SOON)
    if view.q:
        escaped = view.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(
            or_(
                func.lower(Booking.title).like(f"%{escaped}%", escape="\\"),
                func.lower(Resource.name).like(f"%{escaped}%", escape="\\"),
            )
        )
    return conditions


def _room_approvals(
    session: Session, viewer: User, view: InboxFilter, now: datetime, sites: set[int] | None
) -> list[Booking]:
    """Pending bookings of restricted rooms that still lie ahead (or are under way), filtered
    like the tickets where the filter means something for a booking."""
    conditions = _approval_conditions(view, now, sites)
    if conditions is None:
        return []
    order = {
        "newest": [Booking.created_at.desc()],
        "oldest": [Booking.created_at.asc()],
    }.get(view.effective_sort, [Booking.start_at.asc()])
    query = (
        select(Booking)
        .join(Resource, Resource.id == Booking.resource_id)
        .where(*conditions)
        .order_by(*order, Booking.id)
        .limit(BOOKING_CAP)
    )
    return list(session.scalars(query).unique())


def booking_sla(booking: Booking, now: datetime) -> sla.SlaState:
    due = booking.start_at
    if due < now:
        return sla.SlaState("overdue", ROOM_TARGET, due)
    if due < now + sla.SOON:
        return sla.SlaState("soon", ROOM_TARGET, due)
    return sla.SlaState("on_track", ROOM_TARGET, due)


def _booking_row(booking: Booking, now: datetime, site_by_id: dict[int, Site]) -> InboxRow:
    resource = booking.resource
    return InboxRow(
        kind=ROOM,
        id=booking.id,
        number=f"BKG-{booking.id:05d}",
        title=booking.title or f"Booking of {resource.name}",
        requester=booking.user.name if booking.user else "",
        site=site_by_id.get(resource.site_id),
        place=resource.name,
        created_at=booking.created_at,
        priority="normal",
        status="pending",
        status_label="Needs approval",
        assignee="",
        vendor="",
        sla=booking_sla(booking, now),
        version=booking.version,
        url="/approvals/",
        booking=booking,
    )


# -- the filter bar and the views -----------------------------------------------------------


def _sites(session: Session, sites: set[int] | None) -> list[Site]:
    query = select(Site).order_by(Site.name)
    if sites is not None:
        query = query.where(Site.id.in_(sorted(sites)))
    return list(session.scalars(query))


def _staff(session: Session, sites: set[int] | None) -> list[User]:
    """People tickets can be given to: coordinators of these sites, and admins."""
    coordinators = RoleGrant.role == Role.COORDINATOR
    if sites is not None:
        coordinators = and_(coordinators, RoleGrant.site_id.in_(sorted(sites)))
    query = (
        select(User)
        .where(
            User.active.is_(True),
            User.id.in_(
                select(RoleGrant.user_id).where(or_(RoleGrant.role == Role.ADMIN, coordinators))
            ),
        )
        .order_by(User.name)
    )
    return list(session.scalars(query))


def _view_counts(
    session: Session, viewer: User, now: datetime, sites: set[int] | None
) -> dict[str, int]:
    """How many items each built-in view lists: its open tickets plus the room approvals the
    same view shows (so "All open 22" above a list of 22 items). Two aggregate queries."""
    conditions: list[ColumnElement[bool]] = [Ticket.closed == false()]
    if sites is not None:
        conditions.append(Ticket.site_id.in_(sorted(sites)))

    def count_of(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = session.execute(
        select(
            func.count(),
            count_of(Ticket.assignee_id == viewer.id),
            count_of(Ticket.assignee_id.is_(None)),
            count_of(sla.filter_clause("overdue", now)),
        ).where(*conditions)
    ).one()
    tickets_in = {"All open": row[0], "My queue": row[1], "Unassigned": row[2], "Overdue": row[3]}
    # Each view's approvals, picked by the very conditions its list uses, in one query.
    approval_views = {
        label: where
        for label, view in BUILT_IN_VIEWS
        if (where := _approval_conditions(view, now, sites)) is not None
    }
    approvals: dict[str, int] = {}
    if approval_views:
        labels = list(approval_views)
        counted = session.execute(
            select(*(count_of(and_(*approval_views[label])) for label in labels))
            .select_from(Booking)
            .join(Resource, Resource.id == Booking.resource_id)
            .where(Booking.status == BookingStatus.PENDING, Booking.end_at > now)
        ).one()
        approvals = {
            label: min(int(n), BOOKING_CAP) for label, n in zip(labels, counted, strict=True)
        }
    return {
        label: tickets_in.get(label, 0) + approvals.get(label, 0) for label, _ in BUILT_IN_VIEWS
    }


# ---------------------------------------------------------------------------------------------
# Saved views


def saved_views(session: Session, viewer: User) -> list[SavedView]:
    return list(
        session.scalars(
            select(SavedView).where(SavedView.user_id == viewer.id).order_by(SavedView.name)
        )
    )


def save_view(
    session: Session, actor: Actor, viewer: User, name: str, view: InboxFilter
) -> tuple[SavedView, bool]:
    """Save the view under a name (replacing the filter of a view of that name).
    Returns the view and whether it was new."""
    name = " ".join((name or "").split())
    if not name:
        raise RuleViolation({"name": "Give the view a name."}, "empty")
    if len(name) > SAVED_VIEW_NAME_MAX:
        raise RuleViolation(
            {"name": f"Keep the name under {SAVED_VIEW_NAME_MAX} characters."}, "too_long"
        )
    if name.casefold() in {label.casefold() for label, _ in BUILT_IN_VIEWS}:
        raise RuleViolation({"name": f"“{name}” is a built-in view; choose another name."})
    query = view.query_string(page=1)
    existing = {v.name.casefold(): v for v in saved_views(session, viewer)}
    found = existing.get(name.casefold())
    if found is not None:
        found.query = query
        session.flush()
        return found, False
    if len(existing) >= SAVED_VIEWS_MAX:
        raise RuleViolation(
            {"name": f"You have {SAVED_VIEWS_MAX} saved views; delete one first."}, "too_many"
        )
    saved = SavedView(user_id=viewer.id, name=name, query=query)
    session.add(saved)
    session.flush()
    return saved, True


def delete_view(session: Session, viewer: User, view_id: int) -> SavedView:
    saved = session.get(SavedView, view_id)
    if saved is None or saved.user_id != viewer.id:
        raise NotFound("There is no such saved view.")
    session.delete(saved)
    session.flush()
    return saved


# ---------------------------------------------------------------------------------------------
# Bulk actions


@dataclass
class Outcome:
    number: str
    done: bool
    message: str


@dataclass
class BulkResult:
    action: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def done(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.done]

    @property
    def skipped(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.done]

    @property
    def summary(self) -> str:
        """ "3 approved, 1 skipped: REQ-00012 was cancelled a moment ago"."""
        verb = {"approve": "approved", "assign": "assigned", "close": "closed"}[self.action]
        parts = [f"{len(self.done)} {verb}"]
        if self.skipped:
            reasons = "; ".join(f"{o.number} {o.message}" for o in self.skipped)
            parts.append(f"{len(self.skipped)} skipped: {reasons}")
        return ", ".join(parts)


BULK_ACTIONS = {"approve": "Approve", "assign": "Assign", "close": "Close"}
MAX_BULK = 200


def parse_selection(values: list[str]) -> list[tuple[str, int, int | None]]:
    """Checkbox values "t:<id>:<version>" / "b:<id>:<version>" -> (source, id, version)."""
    picked = []
    for value in values[:MAX_BULK]:
        parts = value.split(":")
        number = db_id(parts[1]) if len(parts) == 3 else None
        if number is None or parts[0] not in ("t", "b"):
            continue
        try:
            version: int | None = db_int(parts[2])
        except ValueError:
            version = None
        picked.append((parts[0], number, version))
    return picked


def bulk(
    session: Session,
    actor: Actor,
    viewer: User,
    action: str,
    selection: list[tuple[str, int, int | None]],
    *,
    now: datetime,
    assignee: User | None = None,
    vendor: Vendor | None = None,
) -> BulkResult:
    """Do `action` on each selected row on its own (a savepoint each): one row that cannot be done
    is reported and skipped; the others go through."""
    if action not in BULK_ACTIONS:
        raise RuleViolation({"action": "Choose what to do with the selected rows."})
    if not selection:
        raise RuleViolation({"": "Select at least one row first."}, "empty")
    if action == "assign" and assignee is None and vendor is None:
        raise RuleViolation({"assignee": "Choose a person or a vendor to assign to."})
    result = BulkResult(action)
    for source, object_id, version in selection:
        if source == "b":
            result.outcomes.append(
                _bulk_booking(session, actor, viewer, action, object_id, version)
            )
        else:
            result.outcomes.append(
                _bulk_ticket(
                    session, actor, viewer, action, object_id, version, now, assignee, vendor
                )
            )
    return result


_GONE = "is no longer in your inbox"


def _describe(error: Exception) -> str:
    if isinstance(error, tickets.StaleTicket | StaleDataError):
        return "was changed by someone else a moment ago; look at it again"
    if isinstance(error, RuleViolation):
        return "could not be done: " + "; ".join(m for m in error.errors.values() if m)
    if isinstance(error, DomainError) and error.message:
        return "could not be done: " + error.message
    return "could not be done"


def _bulk_ticket(
    session: Session,
    actor: Actor,
    viewer: User,
    action: str,
    ticket_id: int,
    version: int | None,
    now: datetime,
    assignee: User | None,
    vendor: Vendor | None,
) -> Outcome:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or not tickets.may_manage(viewer, ticket):
        return Outcome(f"#{ticket_id}", False, _GONE)
    number = ticket.number
    if ticket.closed or ticket.status == TicketStatus.CANCELLED:
        label = tickets.STATUS_LABELS.get(ticket.status, ticket.status).lower()
        changed = version is not None and version != ticket.version
        return Outcome(number, False, f"was {label} {'a moment ago' if changed else 'already'}")
    try:
        with session.begin_nested():
            tickets.check_version(ticket, version)
            message = _apply_to_ticket(
                session, actor, viewer, action, ticket, now, assignee, vendor
            )
    except (DomainError, SQLAlchemyError) as error:  # the savepoint undid this row only
        return Outcome(number, False, _describe(error))
    if message:
        return Outcome(number, False, message)
    return Outcome(number, True, "")


def _apply_to_ticket(
    session: Session,
    actor: Actor,
    viewer: User,
    action: str,
    ticket: Ticket,
    now: datetime,
    assignee: User | None,
    vendor: Vendor | None,
) -> str:
    """Does it; returns why not when it does not apply (nothing was changed then)."""
    if action == "approve":
        if ticket.kind != TicketKind.REQUEST:
            return f"is a {tickets.KIND_LABELS[ticket.kind].lower()}: nothing to approve"
        pending = [line for line in ticket.lines if line.status == LineStatus.PENDING]
        if not pending:
            return "has no lines waiting for approval"
        try:
            from portal.services import requests as request_service
        except ImportError:  # the request workflow is not installed: approve on its page
            return "must be approved on its own page"
        for line in pending:
            request_service.approve_line(session, actor, line, by=viewer, now=now)
        return ""
    if action == "assign":
        tickets.assign(
            session,
            actor,
            ticket,
            by=viewer,
            now=now,
            assignee=assignee if assignee is not None else ticket.assignee,
            vendor=vendor if vendor is not None else ticket.vendor,
        )
        return ""
    allowed = tickets.TRANSITIONS.get(ticket.kind, {}).get(ticket.status, set())
    for target in (TicketStatus.CLOSED, TicketStatus.RESOLVED):
        if target in allowed:
            tickets.change_status(session, actor, ticket, target, by=viewer, now=now)
            return ""
    label = tickets.STATUS_LABELS.get(ticket.status, ticket.status).lower()
    return f"is {label} and cannot be closed yet"


def _bulk_booking(
    session: Session,
    actor: Actor,
    viewer: User,
    action: str,
    booking_id: int,
    version: int | None,
) -> Outcome:
    booking = session.get(Booking, booking_id)
    number = f"BKG-{booking_id:05d}"
    if booking is None or not bookings.coordinates(viewer, booking.resource):
        return Outcome(number, False, _GONE)
    if action != "approve":
        return Outcome(number, False, "is a room approval: approve or decline it instead")
    if booking.status != BookingStatus.PENDING:
        return Outcome(number, False, f"was {booking.status} a moment ago")
    try:
        with session.begin_nested():
            bookings.decide(session, actor, viewer, booking, approve=True, expected_version=version)
    except (DomainError, StaleDataError) as error:
        return Outcome(number, False, _describe(error))
    return Outcome(number, True, "")


def ticket_for_return_page(session: Session, viewer: User, ticket_id: object) -> Ticket:
    """A return task the viewer may see (NotFound otherwise)."""
    return tickets.visible_ticket(session, viewer, ticket_id, TicketKind.RETURN)


def return_items(ticket: Ticket) -> list[str]:
    """The assets a leaver holds, one per line of the return task's description."""
    items = []
    for line in ticket.description.splitlines():
        text = line.strip().lstrip("-•*").strip()
        if text:
            items.append(text)
    return items
