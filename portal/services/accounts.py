"""Accounts: creating people, passwords, roles, deactivation and reactivation."""

from __future__ import annotations

from zoneinfo import available_timezones

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import Role, RoleGrant, Site, User
from portal.services import audit, login_sessions
from portal.services.audit import Actor

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 10
SIGN_IN_FAILED = "That e-mail and password do not match an account."


def normalise_email(raw: str) -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise RuleViolation({"email": f"Enter a valid e-mail address ({exc})."}) from exc


def check_time_zone(name: str | None) -> None:
    if name and name not in available_timezones():
        raise RuleViolation({"time_zone": f"“{name}” is not a known time zone."})


def find_by_email(session: Session, email: str) -> User | None:
    if "\x00" in email:
        return None  # no address holds a NUL, and PostgreSQL refuses to even compare one
    return session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def create_user(
    session: Session,
    actor: Actor,
    *,
    email: str,
    name: str,
    department: str = "",
    password: str | None = None,
    home_site: Site | None = None,
    time_zone: str | None = None,
) -> User:
    email = normalise_email(email)
    name = name.strip()
    if not name:
        raise RuleViolation({"name": "Enter the person's name."})
    check_time_zone(time_zone)
    if find_by_email(session, email):
        raise RuleViolation({"email": f"An account for {email} already exists."})
    user = User(
        email=email,
        name=name,
        department=department.strip(),
        home_site=home_site,
        time_zone=time_zone or None,
        active=True,
        grants=[],
    )
    if password is not None:
        user.password_hash = hash_password(password)
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", user, after=user_snapshot(user))
    return user


def user_snapshot(user: User) -> dict[str, object]:
    return {
        "email": user.email,
        "name": user.name,
        "department": user.department,
        "active": user.active,
        "roles": user.role_names,
    }


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RuleViolation(
            {"password": f"Use at least {MIN_PASSWORD_LENGTH} characters for the password."}
        )
    return _hasher.hash(password)


def authenticate(session: Session, actor: Actor, email: str, password: str) -> User:
    """The user whose password this is, or RuleViolation with a message safe to show."""
    user = find_by_email(session, email.strip())
    stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
        matched = user is not None and user.password_hash is not None
    except (VerificationError, InvalidHashError):
        matched = False
    if not matched or user is None:
        audit.record(
            session, actor, "login.failed", object_type="users", after={"email": email[:254]}
        )
        raise RuleViolation({"password": SIGN_IN_FAILED})
    if not user.active:
        audit.record(session, actor, "login.refused_inactive", user)
        raise RuleViolation(
            {"email": "This account is deactivated. Ask your office coordinator to reactivate it."}
        )
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    return user


def note_sign_in(session: Session, actor: Actor, user: User, method: str) -> None:
    user.last_login_at = utcnow()
    audit.record(session, actor, "login.succeeded", user, after={"method": method})


def grant_role(
    session: Session,
    actor: Actor,
    user: User,
    role: Role | str,
    site: Site | None = None,
    source: str = "manual",
) -> RoleGrant:
    role = Role(role)
    if role == Role.COORDINATOR and site is None:
        raise RuleViolation({"site": "A coordinator role needs a site."})
    if role == Role.ADMIN:
        site = None
    for grant in user.grants:
        if (
            grant.role == role
            and grant.site_id == (site.id if site else None)
            and (grant.source == source)
        ):
            return grant
    grant = RoleGrant(role=role, site=site, source=source)
    user.grants.append(grant)
    session.flush()
    audit.record(
        session,
        actor,
        "role.granted",
        user,
        after={"role": role.value, "site": site.slug if site else None, "source": source},
    )
    return grant


def revoke_role(session: Session, actor: Actor, user: User, grant: RoleGrant) -> None:
    if grant.role == Role.ADMIN and grant.source == "manual" and _is_last_admin(session, user):
        raise RuleViolation({"role": "This is the last administrator; grant another one first."})
    user.grants.remove(grant)
    session.flush()
    audit.record(
        session,
        actor,
        "role.revoked",
        user,
        before={
            "role": grant.role,
            "site": grant.site.slug if grant.site else None,
            "source": grant.source,
        },
    )


def _is_last_admin(session: Session, user: User) -> bool:
    admins = session.scalar(
        select(func.count(func.distinct(RoleGrant.user_id)))
        .join(User, User.id == RoleGrant.user_id)
        .where(RoleGrant.role == Role.ADMIN, User.active.is_(True))
    )
    return bool(user.is_admin and (admins or 0) <= 1)


def deactivate_user(session: Session, actor: Actor, user: User) -> None:
    """A leaver: sign-in refused from now on and every open session ended on the server."""
    if not user.active:
        return
    if user.id == actor.user_id:
        raise RuleViolation({"": "You cannot deactivate your own account."})
    if _is_last_admin(session, user):
        raise RuleViolation({"": "This is the last administrator; grant another one first."})
    before = user_snapshot(user)
    user.active = False
    ended = login_sessions.end_all(session, user.id, reason="deactivated")
    audit.record(
        session,
        actor,
        "user.deactivated",
        user,
        before=before,
        after={**user_snapshot(user), "sessions_ended": ended},
    )


def sign_out_everywhere(session: Session, actor: Actor, user: User) -> int:
    """An admin ends every open session of someone (a lost laptop, a shared password); they
    can sign in again. Returns how many sessions ended."""
    ended = login_sessions.end_all(session, user.id, reason="signed_out_by_admin")
    audit.record(
        session, actor, "user.signed_out_everywhere", user, after={"sessions_ended": ended}
    )
    return ended


def reactivate_user(session: Session, actor: Actor, user: User) -> None:
    if user.active:
        return
    user.active = True
    audit.record(session, actor, "user.reactivated", user, after=user_snapshot(user))


def set_time_zone(session: Session, actor: Actor, user: User, time_zone: str | None) -> None:
    check_time_zone(time_zone)
    before = {"time_zone": user.time_zone}
    user.time_zone = time_zone or None
    audit.record(
        session,
        actor,
        "user.time_zone_set",
        user,
        before=before,
        after={"time_zone": user.time_zone},
    )
