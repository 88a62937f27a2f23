"""Server-side sign-in sessions: started at sign-in, checked on every request, ended for real.

The browser keeps only a random token (in Flask's signed cookie); the database keeps its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from portal.db import utcnow
from portal.models import LoginSession, User

# last_seen_at is written at most this often, so reading pages does not write on every request
TOUCH_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session,
    user: User,
    method: str,
    *,
    ip_address: str = "",
    user_agent: str = "",
    sso_id_token: str | None = None,
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            user_id=user.id,
            token_hash=token_hash(token),
            method=method,
            ip_address=ip_address[:45],
            user_agent=user_agent[:255],
            sso_id_token=sso_id_token,
        )
    )
    session.flush()
    return token


def resolve(
    session: Session,
    token: str,
    *,
    idle: timedelta,
    absolute: timedelta,
    now: datetime | None = None,
) -> LoginSession | None:
    """The open session for this token, or None when unknown, ended or timed out.

    A timed-out session is only reported here; `expire` records the end in a writing request."""
    now = now or utcnow()
    row = session.scalar(
        select(LoginSession)
        .options(joinedload(LoginSession.user))  # the user comes in the same query
        .where(LoginSession.token_hash == token_hash(token), LoginSession.ended_at.is_(None))
    )
    if row is None or not row.user.active:
        return None
    if now - row.last_seen_at > idle or now - row.created_at > absolute:
        return None
    return row


def needs_touch(row: LoginSession, now: datetime | None = None) -> bool:
    return (now or utcnow()) - row.last_seen_at > TOUCH_EVERY


def touch(session: Session, row_id: int, now: datetime | None = None) -> None:
    session.execute(
        update(LoginSession).where(LoginSession.id == row_id).values(last_seen_at=now or utcnow())
    )


def end(session: Session, token: str, reason: str) -> str | None:
    """Ends the session of this token; returns its ID token, for sign-out at the provider."""
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))
    if row is None:
        return None
    id_token = row.sso_id_token
    end_row(row, reason)
    return id_token


def end_row(row: LoginSession, reason: str) -> bool:
    """Ends one session; False when it had ended already."""
    if row.ended_at is not None:
        return False
    row.ended_at = utcnow()
    row.end_reason = reason
    row.sso_id_token = None
    return True


def end_all(session: Session, user_id: int, reason: str, *, keep_id: int | None = None) -> int:
    """Ends every open session of a user (optionally all but one); returns how many."""
    stmt = (
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason, sso_id_token=None)
    )
    if keep_id is not None:
        stmt = stmt.where(LoginSession.id != keep_id)
    return session.execute(stmt).rowcount or 0


def open_sessions(session: Session, user_id: int) -> list[LoginSession]:
    return list(
        session.scalars(
            select(LoginSession)
            .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
            .order_by(LoginSession.last_seen_at.desc())
        )
    )
