"""Who is acting, and the append-only audit trail every operation writes to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from portal.models import AuditEvent, User


@dataclass(frozen=True)
class Actor:
    """The person (or process) behind an operation, with the request it came from."""

    user_id: int | None
    label: str
    request_id: str = ""
    ip_address: str = ""

    @classmethod
    def for_user(cls, user: User, request_id: str = "", ip_address: str = "") -> Actor:
        return cls(user.id, user.email, request_id, ip_address)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(None, label)


def record(
    session: Session,
    actor: Actor,
    action: str,
    obj: Any = None,
    *,
    object_type: str = "",
    object_id: str | int = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    if obj is not None:
        object_type = object_type or obj.__tablename__
        object_id = object_id or obj.id
    event = AuditEvent(
        actor_id=actor.user_id,
        actor_label=actor.label[:254],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
        request_id=actor.request_id,
        ip_address=actor.ip_address[:45],
    )
    session.add(event)
    return event
