"""Vendor records: the outside suppliers and contractors that purchase orders go to and facility
issues are assigned to. Deactivated vendors keep their history but are no longer offered."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import IssueCategory, ItemCategory, Vendor
from portal.services import audit
from portal.services.audit import Actor

ISSUE_CATEGORIES = {
    IssueCategory.CLEANING.value: "Cleaning",
    IssueCategory.TEMPERATURE.value: "Temperature",
    IssueCategory.PLUMBING.value: "Plumbing",
    IssueCategory.ELECTRICAL.value: "Electrical",
    IssueCategory.FURNITURE.value: "Furniture (repairs)",
    IssueCategory.IT_AV.value: "IT / AV",
    IssueCategory.SAFETY.value: "Safety",
    IssueCategory.OTHER.value: "Other issues",
}
ITEM_CATEGORIES = {
    ItemCategory.OFFICE_SUPPLIES.value: "Office supplies",
    ItemCategory.IT_PERIPHERALS.value: "IT peripherals",
    ItemCategory.FURNITURE.value: "Furniture (supply)",
    ItemCategory.EQUIPMENT.value: "Equipment",
    ItemCategory.WELCOME_KITS.value: "Welcome kits",
}
# "furniture" is both an issue and an item category: one value serves both.
CATEGORY_CHOICES = {**ITEM_CATEGORIES, **ISSUE_CATEGORIES}
CATEGORY_CHOICES[IssueCategory.FURNITURE.value] = "Furniture"
EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
PHONE = re.compile(r"^[0-9+()./ \-]{5,40}$")


@dataclass(frozen=True)
class VendorDetails:
    name: str
    contact_name: str = ""
    email: str = ""
    phone: str = ""
    categories: tuple[str, ...] = ()


def list_vendors(session: Session, *, include_inactive: bool = True) -> list[Vendor]:
    query = select(Vendor).order_by(Vendor.active.desc(), func.lower(Vendor.name))
    if not include_inactive:
        query = query.where(Vendor.active.is_(True))
    return list(session.scalars(query))


def vendors_serving(session: Session, category: str) -> list[Vendor]:
    """Active vendors that serve a category (suggestions when assigning)."""
    return [v for v in list_vendors(session, include_inactive=False) if category in v.categories]


def _clean(session: Session, details: VendorDetails, vendor: Vendor | None) -> VendorDetails:
    errors: dict[str, str] = {}
    name = " ".join(details.name.split())
    if not name:
        errors["name"] = "Give the vendor a name."
    elif len(name) > 120:
        errors["name"] = "Keep the name under 120 characters."
    else:
        clash = session.scalar(select(Vendor).where(func.lower(Vendor.name) == name.lower()))
        if clash is not None and clash is not vendor:
            errors["name"] = f"There is already a vendor called {clash.name}."
    contact = " ".join(details.contact_name.split())
    if len(contact) > 120:
        errors["contact_name"] = "Keep the contact's name under 120 characters."
    email = details.email.strip()
    if email and (len(email) > 254 or not EMAIL.match(email)):
        errors["email"] = "Enter an e-mail address like orders@vendor.com."
    phone = details.phone.strip()
    if phone and not PHONE.match(phone):
        errors["phone"] = "Enter a phone number: digits, spaces, + ( ) - only."
    unknown = [c for c in details.categories if c not in CATEGORY_CHOICES]
    if unknown:
        errors["categories"] = "Choose categories from the list."
    if errors:
        raise RuleViolation(errors, "invalid")
    ordered = tuple(c for c in CATEGORY_CHOICES if c in set(details.categories))
    return VendorDetails(name, contact, email.lower(), phone, ordered)


def _snapshot(vendor: Vendor) -> dict[str, object]:
    return {
        "name": vendor.name,
        "contact_name": vendor.contact_name,
        "email": vendor.email,
        "phone": vendor.phone,
        "categories": list(vendor.categories or []),
        "active": vendor.active,
    }


def create_vendor(session: Session, actor: Actor, details: VendorDetails) -> Vendor:
    clean = _clean(session, details, None)
    vendor = Vendor(
        name=clean.name,
        contact_name=clean.contact_name,
        email=clean.email,
        phone=clean.phone,
        categories=list(clean.categories),
        active=True,
    )
    session.add(vendor)
    session.flush()
    audit.record(session, actor, "vendor.created", vendor, after=_snapshot(vendor))
    return vendor


def update_vendor(session: Session, actor: Actor, vendor: Vendor, details: VendorDetails) -> Vendor:
    clean = _clean(session, details, vendor)
    before = _snapshot(vendor)
    vendor.name = clean.name
    vendor.contact_name = clean.contact_name
    vendor.email = clean.email
    vendor.phone = clean.phone
    vendor.categories = list(clean.categories)
    after = _snapshot(vendor)
    if after != before:
        session.flush()
        audit.record(session, actor, "vendor.updated", vendor, before=before, after=after)
    return vendor


def set_active(session: Session, actor: Actor, vendor: Vendor, active: bool) -> Vendor:
    """Deactivate (kept for history; no longer offered) or reactivate a vendor."""
    if vendor.active == active:
        return vendor
    before = _snapshot(vendor)
    vendor.active = active
    session.flush()
    audit.record(
        session,
        actor,
        "vendor.reactivated" if active else "vendor.deactivated",
        vendor,
        before=before,
        after=_snapshot(vendor),
    )
    return vendor
