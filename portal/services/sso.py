"""Single sign-on accounts: just-in-time creation and update from verified ID-token claims, and the
mapping from the provider's groups to Foyer roles. The OIDC protocol itself is in integrations/oidc.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import ExternalIdentity, Role, Site, User
from portal.models.budgets import SsoGroupRole
from portal.services import accounts, audit
from portal.services.audit import Actor


@dataclass(frozen=True)
class GroupRole:
    group: str
    role: Role
    site_slug: str | None = None


def parse_group_roles(spec: str) -> list[GroupRole]:
    """Parses "foyer-admins=admin; facilities-berlin=coordinator@berlin"."""
    mapping: list[GroupRole] = []
    for part in spec.split(";"):
        part = part.strip()
        if not part:
            continue
        group, sep, target = part.partition("=")
        role_name, _, site_slug = target.strip().partition("@")
        if not sep or not group.strip() or role_name not in {r.value for r in Role}:
            raise ValueError(f"bad group-to-role mapping: {part!r}")
        if role_name == Role.COORDINATOR and not site_slug:
            raise ValueError(f"coordinator needs a site, e.g. {group}=coordinator@berlin")
        mapping.append(GroupRole(group.strip(), Role(role_name), site_slug or None))
    return mapping


def _claim_groups(claims: dict[str, Any], groups_claim: str) -> set[str]:
    raw = claims.get(groups_claim) or []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        return set()  # a malformed claim grants nothing rather than failing the sign-in
    return {str(g) for g in raw}


def _claim_email(claims: dict[str, Any]) -> str | None:
    try:
        return accounts.normalise_email(str(claims.get("email") or ""))
    except RuleViolation:
        return None


def sign_in_from_claims(
    session: Session,
    actor: Actor,
    *,
    issuer: str,
    claims: dict[str, Any],
    group_roles: list[GroupRole],
    groups_claim: str = "groups",
) -> User:
    """The Foyer user for these verified claims, created or updated; roles synced from groups.

    Every refusal (RuleViolation) is decided before anything but its audit record is written, so
    the caller can commit that record."""
    subject = str(claims.get("sub") or "")
    if not subject or not issuer or len(subject) > 255 or len(issuer) > 255:
        raise RuleViolation("The identity provider sent no usable subject; sign-in refused.")
    if session.get_bind().dialect.name == "postgresql":
        # Two first sign-ins of one person (two tabs) would both create the account: queue them.
        # (SQLite's writing transactions are serialised already.)
        session.execute(
            text("SELECT pg_advisory_xact_lock(7303, hashtext(:key))"),
            {"key": f"{issuer}|{subject}"},
        )
    identity = session.scalar(
        select(ExternalIdentity).where(
            ExternalIdentity.issuer == issuer, ExternalIdentity.subject == subject
        )
    )
    email = _claim_email(claims)
    fallback = (email or "").split("@")[0] or subject
    name = str(claims.get("name") or claims.get("preferred_username") or "").strip()[:120]
    if identity is not None:
        user = identity.user
        _refuse_if_inactive(session, actor, user)
    else:
        if email is None:
            raise RuleViolation(
                "The sign-in provider sent no valid e-mail address for your account, so Foyer "
                "cannot create it. Ask IT to add one."
            )
        existing = accounts.find_by_email(session, email)
        if existing is not None:
            if claims.get("email_verified") is not True:
                # Linking by an unverified address would let anyone claim an existing account.
                audit.record(session, actor, "sso.link_refused", existing, after={"issuer": issuer})
                raise RuleViolation(
                    f"An account for {email} exists already and the provider did not confirm the "
                    "address. Ask an administrator to link it."
                )
            _refuse_if_inactive(session, actor, existing)
        user = existing or accounts.create_user(
            session,
            actor,
            email=email,
            name=name or fallback[:120],
            department=str(claims.get("department") or "")[:120],
        )
        identity = ExternalIdentity(user=user, issuer=issuer, subject=subject)
        session.add(identity)
        session.flush()
        audit.record(session, actor, "sso.linked", user, after={"issuer": issuer})
    _update_profile(session, actor, user, email=email, name=name, claims=claims)
    group_roles = effective_group_roles(session, group_roles)
    _sync_group_roles(session, actor, user, _claim_groups(claims, groups_claim), group_roles)
    identity.last_login_at = utcnow()
    return user


def _refuse_if_inactive(session: Session, actor: Actor, user: User) -> None:
    if not user.active:
        audit.record(session, actor, "login.refused_inactive", user)
        raise RuleViolation("This account is deactivated. Ask your office coordinator.")


def _update_profile(
    session: Session,
    actor: Actor,
    user: User,
    *,
    email: str | None,
    name: str,
    claims: dict[str, Any],
) -> None:
    before = accounts.user_snapshot(user)
    # An address taken by another account stays where it is; the account is keyed on the subject.
    if email and email != user.email and accounts.find_by_email(session, email) is None:
        user.email = email
    if name:
        user.name = name
    if claims.get("department"):
        user.department = str(claims["department"])[:120]
    after = accounts.user_snapshot(user)
    if after != before:
        audit.record(session, actor, "user.updated_from_sso", user, before=before, after=after)


def _sync_group_roles(
    session: Session, actor: Actor, user: User, groups: set[str], group_roles: list[GroupRole]
) -> None:
    sites = {s.slug: s for s in session.scalars(select(Site))}
    wanted: set[tuple[str, int | None]] = set()
    for mapping in group_roles:
        if mapping.group not in groups:
            continue
        site = sites.get(mapping.site_slug) if mapping.site_slug else None
        if mapping.site_slug and site is None:
            continue  # mapping names a site that does not exist (yet)
        wanted.add((mapping.role.value, site.id if site else None))
        accounts.grant_role(session, actor, user, mapping.role, site, source="sso")
    for grant in [g for g in user.grants if g.source == "sso"]:
        if (grant.role, grant.site_id) not in wanted:
            user.grants.remove(grant)
            audit.record(
                session,
                actor,
                "role.revoked",
                user,
                before={"role": grant.role, "site_id": grant.site_id, "source": "sso"},
            )
    session.flush()


# ---------------------------------------------------------------------------------------------
# Mappings kept in the database (admins: Settings › Single sign-on). While none is stored, the
# FOYER_OIDC_GROUP_ROLES variable's mappings apply; once any is stored, only the stored ones do,
# so an admin can withdraw a mapping the variable makes (the page offers to copy the variable's).


def stored_group_roles(session: Session) -> list[SsoGroupRole]:
    return list(
        session.scalars(select(SsoGroupRole).order_by(SsoGroupRole.group_name, SsoGroupRole.role))
    )


def effective_group_roles(session: Session, from_environment: list[GroupRole]) -> list[GroupRole]:
    """The mappings that apply at sign-in: the stored ones, or else the variable's."""
    rows = session.execute(
        select(SsoGroupRole.group_name, SsoGroupRole.role, Site.slug).outerjoin(
            Site, Site.id == SsoGroupRole.site_id
        )
    ).all()
    if not rows:
        return from_environment
    return [GroupRole(group, Role(role), slug) for group, role, slug in rows]


def add_group_role(
    session: Session, actor: Actor, *, group: str, role: str, site_id: int | None
) -> SsoGroupRole:
    group = group.strip()
    errors: dict[str, str] = {}
    if not group:
        errors["group"] = "Enter the group's name exactly as the provider sends it."
    elif len(group) > 200:
        errors["group"] = "Use at most 200 characters."
    if role not in {Role.ADMIN.value, Role.COORDINATOR.value}:
        errors["role"] = "Choose admin or coordinator."
    site = session.get(Site, site_id) if site_id is not None else None
    if role == Role.COORDINATOR and site is None:
        errors["site"] = (
            "Choose the site this group coordinates."
            if site_id is None
            else ("That site does not exist.")
        )
    if role == Role.ADMIN:
        site = None  # admins cover every site
    if not errors and session.scalar(
        select(SsoGroupRole.id).where(
            SsoGroupRole.group_name == group,
            SsoGroupRole.role == role,
            SsoGroupRole.site_id.is_(None) if site is None else SsoGroupRole.site_id == site.id,
        )
    ):
        errors["group"] = f"“{group}” already maps to that role."
    if errors:
        raise RuleViolation(errors, "sso_group_role")
    mapping = SsoGroupRole(group_name=group, role=role, site_id=site.id if site else None)
    session.add(mapping)
    session.flush()
    audit.record(
        session,
        actor,
        "sso_group_role.added",
        mapping,
        after={"group": group, "role": role, "site": site.slug if site else None},
    )
    return mapping


def remove_group_role(session: Session, actor: Actor, mapping: SsoGroupRole) -> None:
    audit.record(
        session,
        actor,
        "sso_group_role.removed",
        mapping,
        before={
            "group": mapping.group_name,
            "role": mapping.role,
            "site": mapping.site.slug if mapping.site else None,
        },
    )
    session.delete(mapping)
    session.flush()
