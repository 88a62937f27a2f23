"""The weekly digest: every Monday morning each coordinator gets one e-mail covering all the sites
they coordinate, with last week's figures against the week before and what needs attention now.

When: from 07:00 on Monday in the zone of whichever of their sites reaches that moment first, and
for 24 hours after (so a worker that was down at 07:00 still sends it, but never days late). The
hourly job may run any number of times: a DigestSent row, unique per (coordinator, week), is
written with the message in one transaction, so each coordinator gets exactly one per week.
Admins get no digest for being admins; only explicit coordinator grants count.

Figures per site, for the Monday-to-Sunday week in the site's own zone:
- desk and room bookings: bookings starting in the week, not cancelled or declined;
- check-ins: of those, the ones checked in to; no-shows: the ones released for no check-in;
- visitors: visits checked in during the week;
- tickets opened (created in the week) and closed (closed in the week);
- SLA met: of the tickets with a resolution target finished (resolved, or closed) in the week,
  the share finished by their target."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlalchemy import false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import (
    Booking,
    BookingStatus,
    LineStatus,
    OutboxMessage,
    RequestLine,
    Resource,
    Role,
    RoleGrant,
    Site,
    StockLevel,
    Ticket,
    User,
    Visit,
)
from portal.models.budgets import DigestSent
from portal.services import inventory, notifications, sla
from portal.timezones import to_utc

SEND_AT = time(7, 0)
SEND_WINDOW = timedelta(hours=24)
NOT_COUNTED = (BookingStatus.CANCELLED, BookingStatus.DECLINED)


@dataclass(frozen=True)
class WeekFigures:
    desk_bookings: int = 0
    desk_check_ins: int = 0
    desk_no_shows: int = 0
    room_bookings: int = 0
    room_no_shows: int = 0
    visitors: int = 0
    tickets_opened: int = 0
    tickets_closed: int = 0
    sla_finished: int = 0
    sla_met: int = 0

    @property
    def sla_met_percent(self) -> int | None:
        return None if not self.sla_finished else round(100 * self.sla_met / self.sla_finished)


@dataclass
class SiteDigest:
    site: Site
    week_start: date  # the Monday of the reported week, in the site's zone
    this_week: WeekFigures
    previous_week: WeekFigures
    overdue_tickets: list[Ticket] = field(default_factory=list)
    overdue_count: int = 0
    pending_bookings: int = 0
    pending_lines: int = 0
    low_stock: list[StockLevel] = field(default_factory=list)


ROWS = [
    ("Desk bookings", "desk_bookings"),
    ("Desk check-ins", "desk_check_ins"),
    ("Desk no-shows", "desk_no_shows"),
    ("Room bookings", "room_bookings"),
    ("Room no-shows", "room_no_shows"),
    ("Visitors", "visitors"),
    ("Tickets opened", "tickets_opened"),
    ("Tickets closed", "tickets_closed"),
]


def change(now_value: int | None, before: int | None) -> str:
    """ "+3", "−2", "±0", or "" when either side is unknown."""
    if now_value is None or before is None:
        return ""
    diff = now_value - before
    return f"+{diff}" if diff > 0 else ("±0" if diff == 0 else f"−{-diff}")


def figure_rows(digest: SiteDigest) -> list[tuple[str, str, str, str]]:
    """(label, last week, the week before, change) for the e-mail's table."""
    rows = []
    for label, name in ROWS:
        this, before = getattr(digest.this_week, name), getattr(digest.previous_week, name)
        rows.append((label, str(this), str(before), change(this, before)))
    this_pct, before_pct = digest.this_week.sla_met_percent, digest.previous_week.sla_met_percent
    rows.append(
        (
            "SLA met",
            "—" if this_pct is None else f"{this_pct}%",
            "—" if before_pct is None else f"{before_pct}%",
            change(this_pct, before_pct) + (" pts" if change(this_pct, before_pct) else ""),
        )
    )
    return rows


# ---------------------------------------------------------------------------------------------
# When


def send_moment(site: Site, now: datetime) -> tuple[date, datetime]:
    """The site's most recent Monday 07:00 at or before `now`: (that Monday, as UTC instant)."""
    zone = ZoneInfo(site.time_zone)
    local = now.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    moment = to_utc(datetime.combine(monday, SEND_AT), zone)
    if moment > now:
        monday -= timedelta(days=7)
        moment = to_utc(datetime.combine(monday, SEND_AT), zone)
    return monday, moment


def due_week(sites: list[Site], now: datetime) -> date | None:
    """The Monday whose digest is due now for a coordinator of these sites, or None. The site
    reaching Monday 07:00 first decides; its Monday names the week."""
    if not sites:
        return None
    moments = [send_moment(site, now) for site in sites]
    week = max(monday for monday, _ in moments)
    first = min(moment for monday, moment in moments if monday == week)
    return week if now - first < SEND_WINDOW else None


# ---------------------------------------------------------------------------------------------
# What


def week_figures(session: Session, site: Site, monday: date) -> WeekFigures:
    zone = ZoneInfo(site.time_zone)
    start = to_utc(datetime.combine(monday, time(0)), zone)
    end = to_utc(datetime.combine(monday + timedelta(days=7), time(0)), zone)
    counted = Booking.status.not_in(NOT_COUNTED)
    bookings = {
        kind: (total, checked_in, no_shows)
        for kind, total, checked_in, no_shows in session.execute(
            select(
                Resource.kind,
                func.count(Booking.id).filter(counted),
                func.count(Booking.checked_in_at).filter(counted),
                func.count(Booking.id).filter(Booking.status == BookingStatus.RELEASED),
            )
            .join(Resource, Resource.id == Booking.resource_id)
            .where(Resource.site_id == site.id, Booking.start_at >= start, Booking.start_at < end)
            .group_by(Resource.kind)
        )
    }
    desks = bookings.get("desk", (0, 0, 0))
    rooms = bookings.get("room", (0, 0, 0))
    visitors = session.scalar(
        select(func.count(Visit.id)).where(
            Visit.site_id == site.id, Visit.checked_in_at >= start, Visit.checked_in_at < end
        )
    )
    opened = session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.site_id == site.id, Ticket.created_at >= start, Ticket.created_at < end
        )
    )
    closed = session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.site_id == site.id, Ticket.closed_at >= start, Ticket.closed_at < end
        )
    )
    finished_at = func.coalesce(Ticket.resolved_at, Ticket.closed_at)
    finished, met = session.execute(
        select(
            func.count(Ticket.id),
            func.count(Ticket.id).filter(finished_at <= Ticket.resolution_due_at),
        ).where(
            Ticket.site_id == site.id,
            Ticket.resolution_due_at.is_not(None),
            finished_at >= start,
            finished_at < end,
        )
    ).one()
    return WeekFigures(
        desk_bookings=desks[0],
        desk_check_ins=desks[1],
        desk_no_shows=desks[2],
        room_bookings=rooms[0],
        room_no_shows=rooms[2],
        visitors=visitors or 0,
        tickets_opened=opened or 0,
        tickets_closed=closed or 0,
        sla_finished=finished or 0,
        sla_met=met or 0,
    )


def site_digest(session: Session, site: Site, now: datetime, this_monday: date) -> SiteDigest:
    """The week before `this_monday` (Monday to Sunday, in the site's zone) against the week
    before that, and what is waiting now. A coordinator's sites all report the same dates, even
    when one of them is a zone behind and its Sunday has a few hours left."""
    reported = this_monday - timedelta(days=7)
    overdue = sla.filter_clause("overdue", now)
    overdue_count = session.scalar(
        select(func.count(Ticket.id)).where(Ticket.site_id == site.id, overdue)
    )
    overdue_tickets = list(
        session.scalars(
            select(Ticket)
            .where(Ticket.site_id == site.id, overdue)
            .order_by(sla.next_due(), Ticket.id)
            .limit(5)
        )
    )
    pending_bookings = session.scalar(
        select(func.count(Booking.id))
        .join(Resource, Resource.id == Booking.resource_id)
        .where(
            Resource.site_id == site.id,
            Booking.status == BookingStatus.PENDING,
            Booking.end_at > now,
        )
    )
    pending_lines = session.scalar(
        select(func.count(RequestLine.id))
        .join(Ticket, Ticket.id == RequestLine.ticket_id)
        .where(
            Ticket.site_id == site.id,
            RequestLine.status == LineStatus.PENDING,
            Ticket.closed == false(),
        )
    )
    return SiteDigest(
        site=site,
        week_start=reported,
        this_week=week_figures(session, site, reported),
        previous_week=week_figures(session, site, reported - timedelta(days=7)),
        overdue_tickets=overdue_tickets,
        overdue_count=overdue_count or 0,
        pending_bookings=pending_bookings or 0,
        pending_lines=pending_lines or 0,
        low_stock=inventory.low_stock(session, (site.id,)),
    )


# ---------------------------------------------------------------------------------------------
# Sending


def coordinators(session: Session) -> dict[User, list[Site]]:
    """Active people with coordinator grants, and the sites they coordinate."""
    found: dict[User, list[Site]] = defaultdict(list)
    rows = session.execute(
        select(User, Site)
        .join(RoleGrant, RoleGrant.user_id == User.id)
        .join(Site, Site.id == RoleGrant.site_id)
        .where(RoleGrant.role == Role.COORDINATOR, User.active.is_(True))
        .order_by(User.id, Site.name)
    )
    for user, site in rows:
        if site not in found[user]:
            found[user].append(site)
    return dict(found)


def send_due(session: Session, now: datetime) -> int:
    """Queue the digests due now; returns how many. Safe to run any number of times, in any
    number of processes at once: each is claimed by its unique DigestSent row."""
    sent = 0
    for user, sites in coordinators(session).items():
        week = due_week(sites, now)
        if week is None:
            continue
        already = session.scalar(
            select(DigestSent.id).where(
                DigestSent.user_id == user.id, DigestSent.week_start == week
            )
        )
        if already:
            continue
        savepoint = session.begin_nested()
        try:
            claim = DigestSent(user_id=user.id, week_start=week, sent_at=now)
            session.add(claim)
            session.flush()  # another process claimed it first: IntegrityError here
            message = queue_digest(
                session, user, [site_digest(session, s, now, week) for s in sites]
            )
            session.flush()
            claim.outbox_message_id = message.id
            savepoint.commit()
        except IntegrityError:
            savepoint.rollback()
            continue
        sent += 1
    return sent


_html = Environment(autoescape=True, keep_trailing_newline=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body>
<p>Hello {{ name }},</p>
<p>Here is last week at {{ site_names }}, against the week before, and what is waiting for you.</p>
{% for d in digests %}
<h2>{{ d.site.name }} <small>· week of {{ d.week_start.strftime("%-d %b %Y") }}</small></h2>
<table cellpadding="4" cellspacing="0" border="1">
<thead><tr><th align="left" scope="col">Figure</th><th scope="col">Last week</th><th scope="col">Week before</th><th scope="col">Change</th></tr></thead>
<tbody>
{% for label, this, before, delta in rows(d) %}<tr><th align="left" scope="row">{{ label }}</th><td align="right">{{ this }}</td><td align="right">{{ before }}</td><td align="right">{{ delta }}</td></tr>
{% endfor %}</tbody></table>
<h3>Needs attention</h3>
<ul>
<li><a href="{{ base }}/inbox/?sla=overdue&amp;site={{ d.site.id }}">{{ d.overdue_count }} overdue ticket{{ "" if d.overdue_count == 1 else "s" }}</a>{% if d.overdue_tickets %}:
  {% for t in d.overdue_tickets %}{{ t.number }} {{ t.title }}{{ "; " if not loop.last }}{% endfor %}{% endif %}</li>
<li><a href="{{ base }}/approvals/">{{ d.pending_bookings }} room booking{{ "" if d.pending_bookings == 1 else "s" }} waiting for approval</a></li>
<li><a href="{{ base }}/inbox/?site={{ d.site.id }}">{{ d.pending_lines }} request line{{ "" if d.pending_lines == 1 else "s" }} waiting for approval</a></li>
<li><a href="{{ base }}/inventory?site={{ d.site.id }}&amp;low=1">{{ d.low_stock | length }} item{{ "" if d.low_stock | length == 1 else "s" }} low on stock</a>{% if d.low_stock %}:
  {% for s in d.low_stock[:5] %}{{ s.item.name }} ({{ s.available }} left){{ "; " if not loop.last }}{% endfor %}{% endif %}</li>
</ul>
{% endfor %}
<p><a href="{{ base }}/inbox/">Open your inbox</a></p>
<p>— Foyer</p>
</body></html>
"""
)


def _text(name: str, digests: list[SiteDigest], base: str) -> str:
    lines = [f"Hello {name},", "", "Here is last week, against the week before.", ""]
    for d in digests:
        lines += [f"{d.site.name} · week of {d.week_start:%-d %b %Y}", ""]
        lines.append(f"{'':<16}{'Last week':>10}{'Before':>10}{'Change':>12}")
        for label, this, before, delta in figure_rows(d):
            lines.append(f"{label:<16}{this:>10}{before:>10}{delta:>12}")
        lines += ["", "Needs attention:"]
        lines.append(
            f"- {d.overdue_count} overdue tickets: {base}/inbox/?sla=overdue&site={d.site.id}"
        )
        lines += [f"    {t.number} {t.title}" for t in d.overdue_tickets]
        lines.append(
            f"- {d.pending_bookings} room bookings waiting for approval: {base}/approvals/"
        )
        lines.append(
            f"- {d.pending_lines} request lines waiting for approval: {base}/inbox/?site={d.site.id}"
        )
        lines.append(
            f"- {len(d.low_stock)} items low on stock: {base}/inventory?site={d.site.id}&low=1"
        )
        lines += [f"    {s.item.name} ({s.available} left)" for s in d.low_stock[:5]]
        lines.append("")
    lines += ["— Foyer"]
    return "\n".join(lines)


def queue_digest(session: Session, user: User, digests: list[SiteDigest]) -> OutboxMessage:
    base = notifications.sender_for(session).base_url.rstrip("/")
    week = min(d.week_start for d in digests)
    site_names = ", ".join(d.site.name for d in digests)
    subject = f"Your week at {site_names}: week of {week:%-d %b %Y}"
    message = OutboxMessage(
        to_address=user.email,
        to_name=user.name[:120],
        subject=subject[:250],
        text_body=_text(user.name, digests, base),
        html_body=_html.render(
            subject=subject,
            name=user.name,
            site_names=site_names,
            digests=digests,
            rows=figure_rows,
            base=base,
        ),
        related_type="digest",
        related_id=str(user.id),
    )
    session.add(message)
    session.info[notifications.OUTBOX_PENDING] = True
    return message
