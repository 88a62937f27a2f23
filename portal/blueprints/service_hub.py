"""The employee's service desk: one place to order supplies, report a problem or borrow equipment,
and to follow everything they have asked for."""

from __future__ import annotations

from flask import Blueprint, Response
from flask_login import current_user, login_required
from sqlalchemy import false, func, or_, select, true

from portal import htmx
from portal.db import utcnow
from portal.models import Asset, AssetStatus, IssueFollower, Ticket, TicketKind
from portal.request_scope import db
from portal.services import sla, tickets

bp = Blueprint("service_hub", __name__, url_prefix="/service-desk")

RECENTLY_CLOSED = 5
OPEN_SHOWN = 30


@bp.get("/")
@login_required
def index() -> Response:
    mine = or_(
        Ticket.requester_id == current_user.id,
        Ticket.id.in_(
            select(IssueFollower.ticket_id).where(IssueFollower.user_id == current_user.id)
        ),
    )
    visible = Ticket.kind.in_([TicketKind.REQUEST, TicketKind.ISSUE])
    open_tickets = list(
        db().scalars(
            select(Ticket)
            .where(mine, visible, Ticket.closed == false())
            .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
            .limit(OPEN_SHOWN)
        )
    )
    closed_tickets = list(
        db().scalars(
            select(Ticket)
            .where(mine, visible, Ticket.closed == true())
            .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
            .limit(RECENTLY_CLOSED)
        )
    )
    held = dict(
        db()
        .execute(
            select(Asset.status, func.count(Asset.id))
            .where(Asset.holder_id == current_user.id)
            .group_by(Asset.status)
        )
        .all()
    )
    now = utcnow()
    return htmx.render(
        "service_hub/index.html",
        open_tickets=open_tickets,
        closed_tickets=closed_tickets,
        sla_states={t.id: sla.state_of(t, now) for t in open_tickets},
        assets_held=sum(held.values()),
        assets_to_accept=held.get(AssetStatus.ASSIGNED, 0),
        ticket_path=tickets.ticket_path,
        kind_labels=tickets.KIND_LABELS,
        now=now,
    )
