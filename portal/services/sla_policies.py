"""SLA policies: time to first response and to resolution, in business hours of the ticket's
site, per kind x category x priority ("" = any). A ticket takes its deadlines when it is opened
(or re-prioritised); editing a policy changes what new tickets get, never existing deadlines."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import SlaPolicy, TicketKind
from portal.services import audit, tickets
from portal.services.audit import Actor
from portal.services.vendors import ISSUE_CATEGORIES, ITEM_CATEGORIES

KIND_CHOICES = {
    TicketKind.ISSUE.value: "Facility issues",
    TicketKind.REQUEST.value: "Requests",
    TicketKind.RETURN.value: "Return tasks",
}
CATEGORIES_BY_KIND = {
    TicketKind.ISSUE.value: ISSUE_CATEGORIES,
    TicketKind.REQUEST.value: ITEM_CATEGORIES,
    TicketKind.RETURN.value: {},
}
MAX_HOURS = 2000  # about a year of business days


@dataclass(frozen=True)
class PolicyDetails:
    kind: str
    category: str
    priority: str
    first_response_hours: str | float | int | Decimal | None
    resolution_hours: str | float | int | Decimal | None


def list_policies(session: Session) -> list[SlaPolicy]:
    policies = list(session.scalars(select(SlaPolicy)))
    kinds = list(KIND_CHOICES)
    priorities = ["", *tickets.PRIORITY_LABELS]
    return sorted(
        policies,
        key=lambda p: (
            kinds.index(p.kind) if p.kind in kinds else 99,
            p.category,
            priorities.index(p.priority) if p.priority in priorities else 99,
        ),
    )


def hours(minutes: int) -> str:
    """Business minutes as hours for forms and tables: 90 -> "1.5", 480 -> "8"."""
    value = Decimal(minutes) / 60
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text


def _minutes(raw: object, field: str, label: str, errors: dict[str, str]) -> int | None:
    text = str(raw if raw is not None else "").strip().replace(",", ".")
    if not text:
        errors[field] = f"Enter the {label} in business hours."
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        errors[field] = f"Enter the {label} as a number of hours, e.g. 4 or 1.5."
        return None
    if not value.is_finite() or value <= 0:
        errors[field] = f"The {label} must be more than zero hours."
        return None
    if value > MAX_HOURS:
        errors[field] = f"The {label} can be at most {MAX_HOURS:,} business hours."
        return None
    minutes = int(math.ceil(value * 60))
    return max(minutes, 1)


def _clean(session: Session, details: PolicyDetails, policy: SlaPolicy | None) -> dict[str, object]:
    errors: dict[str, str] = {}
    kind = details.kind
    if kind not in KIND_CHOICES:
        errors["kind"] = "Choose what kind of ticket this is for."
    category = details.category or ""
    if kind in CATEGORIES_BY_KIND and category and category not in CATEGORIES_BY_KIND[kind]:
        errors["category"] = f"Choose a category of {KIND_CHOICES[kind].lower()}, or any."
    priority = details.priority or ""
    if priority and priority not in tickets.PRIORITY_LABELS:
        errors["priority"] = "Choose a priority from the list, or any."
    first = _minutes(details.first_response_hours, "first_response_hours", "first response", errors)
    resolution = _minutes(details.resolution_hours, "resolution_hours", "resolution", errors)
    if first is not None and resolution is not None and resolution < first:
        errors["resolution_hours"] = "Resolution cannot come before the first response."
    if not errors:
        clash = session.scalar(
            select(SlaPolicy).where(
                SlaPolicy.kind == kind,
                SlaPolicy.category == category,
                SlaPolicy.priority == priority,
            )
        )
        if clash is not None and clash is not policy:
            errors["category"] = (
                "There is already a policy for this kind, category and priority: edit that one."
            )
    if errors:
        raise RuleViolation(errors, "invalid")
    return {
        "kind": kind,
        "category": category,
        "priority": priority,
        "first_response_minutes": first,
        "resolution_minutes": resolution,
    }


def _snapshot(policy: SlaPolicy) -> dict[str, object]:
    return {
        "kind": policy.kind,
        "category": policy.category,
        "priority": policy.priority,
        "first_response_minutes": policy.first_response_minutes,
        "resolution_minutes": policy.resolution_minutes,
    }


def create_policy(session: Session, actor: Actor, details: PolicyDetails) -> SlaPolicy:
    policy = SlaPolicy(**_clean(session, details, None))
    session.add(policy)
    session.flush()
    audit.record(session, actor, "sla_policy.created", policy, after=_snapshot(policy))
    return policy


def update_policy(
    session: Session, actor: Actor, policy: SlaPolicy, details: PolicyDetails
) -> SlaPolicy:
    values = _clean(session, details, policy)
    before = _snapshot(policy)
    for name, value in values.items():
        setattr(policy, name, value)
    session.flush()
    if _snapshot(policy) != before:
        audit.record(
            session, actor, "sla_policy.updated", policy, before=before, after=_snapshot(policy)
        )
    return policy


def delete_policy(session: Session, actor: Actor, policy: SlaPolicy) -> None:
    """Tickets that used it keep their deadlines (their policy link is cleared by the database)."""
    before = _snapshot(policy)
    audit.record(session, actor, "sla_policy.deleted", policy, before=before)
    session.delete(policy)
    session.flush()


def describe(policy: SlaPolicy) -> str:
    kind = KIND_CHOICES.get(policy.kind, policy.kind)
    category = CATEGORIES_BY_KIND.get(policy.kind, {}).get(policy.category, policy.category)
    priority = tickets.PRIORITY_LABELS.get(policy.priority, policy.priority)  # type: ignore[call-overload]
    return f"{kind} · {category or 'any category'} · {priority or 'any priority'}"
