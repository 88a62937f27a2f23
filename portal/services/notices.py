"""Live notices in the portal header: written in the transaction of the event they announce, read
by the header's poll, so a notice raised on one app instance shows up on every other."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.models import Notice, User

KEEP_UNREAD = 20  # the header shows at most this many


def notify(session: Session, user: User, kind: str, message: str, *, link: str = "") -> Notice:
    notice = Notice(user_id=user.id, kind=kind, message=message[:400], link=link[:300])
    session.add(notice)
    return notice


def unread(session: Session, user_id: int) -> list[Notice]:
    return list(
        session.scalars(
            select(Notice)
            .where(Notice.user_id == user_id, Notice.read_at.is_(None))
            .order_by(Notice.created_at.desc(), Notice.id.desc())
            .limit(KEEP_UNREAD)
        )
    )


def unread_count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count(Notice.id)).where(Notice.user_id == user_id, Notice.read_at.is_(None))
        )
        or 0
    )


def mark_read(session: Session, user_id: int, notice_id: int | None, *, now: datetime) -> int:
    """Dismiss one notice (only the user's own) or, with None, all of them."""
    query = update(Notice).where(Notice.user_id == user_id, Notice.read_at.is_(None))
    if notice_id is not None:
        query = query.where(Notice.id == notice_id)
    return session.execute(query.values(read_at=now)).rowcount
