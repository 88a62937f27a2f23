"""Factories for the service desk (catalog, stock, tickets, vendors), shared by its test modules."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import (
    CatalogItem,
    ItemCategory,
    RequestLine,
    Site,
    StockLevel,
    Ticket,
    TicketKind,
    User,
    Vendor,
)
from portal.services import tickets
from portal.services.audit import Actor

_seq = itertools.count(1)


def vendor(session: Session, name: str | None = None, **kwargs: Any) -> Vendor:
    new = Vendor(name=name or f"Vendor {next(_seq)}", email="orders@vendor.example", **kwargs)
    session.add(new)
    session.flush()
    return new


def item(
    session: Session,
    name: str | None = None,
    *,
    category: str = ItemCategory.IT_PERIPHERALS,
    price_cents: int = 10_00,
    **kwargs: Any,
) -> CatalogItem:
    new = CatalogItem(
        name=name or f"Item {next(_seq)}", category=category, price_cents=price_cents, **kwargs
    )
    session.add(new)
    session.flush()
    return new


def stock(
    session: Session, of_item: CatalogItem, at_site: Site, on_hand: int, reorder_point: int = 0
) -> StockLevel:
    level = StockLevel(
        item_id=of_item.id, site_id=at_site.id, on_hand=on_hand, reorder_point=reorder_point
    )
    session.add(level)
    session.flush()
    return level


def ticket(
    session: Session,
    requester: User,
    at_site: Site,
    *,
    kind: str = TicketKind.ISSUE,
    title: str = "Leaking tap",
    category: str = "plumbing",
    priority: str = "normal",
    now: datetime | None = None,
    lines: list[tuple[CatalogItem, int]] | None = None,
    **details: Any,
) -> Ticket:
    """A ticket opened through tickets.open_ticket (so its SLA clock runs), with request lines."""
    new = tickets.open_ticket(
        session,
        Actor.system("tests"),
        kind=kind,
        site=at_site,
        requester=requester,
        title=title,
        category=category,
        priority=priority,
        now=now or utcnow(),
        **details,
    )
    for what, quantity in lines or []:
        session.add(
            RequestLine(
                ticket_id=new.id,
                item_id=what.id,
                quantity=quantity,
                unit_price_cents=what.price_cents,
            )
        )
    session.flush()
    return new
