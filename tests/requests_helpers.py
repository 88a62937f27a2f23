"""Helpers for the catalog and request tests: an office with a coordinator and an employee, stocked
items, images, and submitting a request through the service."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import (
    ApprovalRule,
    CatalogItem,
    Desk,
    Floor,
    OutboxMessage,
    Site,
    StockLevel,
    Ticket,
    User,
)
from portal.services import requests
from portal.services.audit import Actor
from tests import factories
from tests import service_desk_factories as sd

SYSTEM = Actor.system("tests")


@dataclass
class Office:
    site: Site
    floor: Floor
    desk: Desk
    coordinator: User
    employee: User


def office(db: Session, slug: str = "berlin") -> Office:
    site = factories.site(db, slug)
    floor = factories.floor(db, site)
    desk = factories.desk(db, floor, name=f"{slug[:3].upper()}-1.01")
    coordinator = factories.user(db, name=f"Cora {slug.title()}", coordinator_of=site)
    employee = factories.user(db, name=f"Emil {slug.title()}", home_site=site)
    db.flush()
    return Office(site, floor, desk, coordinator, employee)


def stocked(
    db: Session,
    site: Site,
    name: str,
    on_hand: int,
    *,
    price_cents: int = 10_00,
    approval: str = ApprovalRule.NEVER,
    reorder_point: int = 0,
    **kwargs: Any,
) -> CatalogItem:
    item = sd.item(db, name, price_cents=price_cents, approval=approval, **kwargs)
    sd.stock(db, item, site, on_hand, reorder_point=reorder_point)
    return item


def level(db: Session, item: CatalogItem, site: Site) -> StockLevel:
    db.expire_all()
    found = db.scalar(
        select(StockLevel).where(StockLevel.item_id == item.id, StockLevel.site_id == site.id)
    )
    assert found is not None
    return found


def submit(
    db: Session,
    requester: User,
    site: Site,
    lines: list[tuple[CatalogItem, int]],
    *,
    now: datetime | None = None,
    **kwargs: Any,
) -> Ticket:
    kwargs.setdefault("delivery", "pickup")
    done = requests.submit(
        db,
        SYSTEM,
        requester,
        site=site,
        lines=[(str(item.id), str(quantity)) for item, quantity in lines],
        now=now or utcnow(),
        **kwargs,
    )
    db.flush()
    return done.ticket


def ticket_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Ticket)) or 0


def mails_to(db: Session, user: User) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.to_address == user.email)
            .order_by(OutboxMessage.id)
        )
    )


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, kind)
    return buffer.getvalue()


def version_on(page: str, ticket: Ticket) -> str:
    """The version the page's forms carry (what a stale tab would send back)."""
    match = re.search(r'name="version" value="(\d+)"', page)
    assert match, "no version field on the page"
    return match.group(1)
