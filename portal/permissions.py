"""Who may do what: every view asks here. Objects a user may not see answer 404, not 403, so ids
cannot be probed."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required
from sqlalchemy.orm import Session

from portal.models import Role, User

T = TypeVar("T")


def is_admin(user: User) -> bool:
    return user.is_authenticated and user.is_admin


def coordinates_site(user: User, site_id: int | None) -> bool:
    """Admins coordinate every site; coordinators their own."""
    return is_admin(user) or (site_id is not None and site_id in user.coordinated_site_ids())


def is_coordinator_anywhere(user: User) -> bool:
    return is_admin(user) or bool(user.coordinated_site_ids())


def load_or_404(
    session: Session,
    model: type[T],
    object_id: Any,
    allowed: Callable[[User, T], bool] | None = None,
) -> T:
    """The object, if it exists and the current user may see it; otherwise a 404."""
    try:
        obj = session.get(model, int(object_id))
    except (TypeError, ValueError):
        obj = None
    if obj is None or (allowed is not None and not allowed(current_user, obj)):
        abort(404)
    return obj


def role_required(role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """For whole areas: admin pages need ADMIN; coordinator pages need a coordinator grant anywhere
    (per-site checks still happen on each object)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            allowed = (
                is_admin(current_user)
                if role == Role.ADMIN
                else is_coordinator_anywhere(current_user)
            )
            if not allowed:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
