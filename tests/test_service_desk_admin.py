"""Service-desk settings: vendors and SLA policies. Admins change them (audited, validated);
coordinators may look; employees may not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import AuditEvent, SlaPolicy, Ticket, Vendor
from portal.services import sla
from tests import factories
from tests import service_desk_factories as sd


@pytest.fixture
def coordinator(db: Session) -> Any:
    user = factories.user(db, email="cora@example.com", coordinator_of=factories.site(db))
    db.commit()
    return user


def actions(db: Session) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# ---------------------------------------------------------------------------------------------
# Who may do what


def test_coordinators_look_admins_change_employees_stay_out(
    client: Any, db: Session, coordinator: Any, employee: Any
) -> None:
    vendor = sd.vendor(db, "Aqua Plumbing", categories=["plumbing"])
    policy = SlaPolicy(
        kind="issue",
        category="plumbing",
        priority="",
        first_response_minutes=120,
        resolution_minutes=960,
    )
    db.add(policy)
    db.commit()
    client.sign_in(employee.email)
    assert client.get("/admin/service-desk/vendors").status_code == 403
    assert client.get("/admin/service-desk/sla").status_code == 403
    client.post("/sign-out", data={"csrf_token": client.csrf_token()})

    client.sign_in(coordinator.email)
    listing = client.get("/admin/service-desk/vendors").get_data(as_text=True)
    assert "Aqua Plumbing" in listing and "Plumbing" in listing and "Add a vendor" not in listing
    policies = client.get("/admin/service-desk/sla").get_data(as_text=True)
    assert "Facility issues" in policies and "2 h" in policies and "16 h" in policies
    assert "Add a policy" not in policies
    assert client.get("/admin/service-desk/vendors/new").status_code == 403
    assert client.submit("/admin/service-desk/vendors/new", {"name": "Sneaky"}).status_code == 403
    assert (
        client.submit(
            f"/admin/service-desk/vendors/{vendor.id}/active", {"active": "0"}
        ).status_code
        == 403
    )
    assert client.submit(f"/admin/service-desk/sla/{policy.id}/delete").status_code == 403
    db.expire_all()
    assert db.get(Vendor, vendor.id).active
    assert db.get(SlaPolicy, policy.id) is not None


# ---------------------------------------------------------------------------------------------
# Vendors


def test_admin_adds_edits_and_deactivates_a_vendor(client: Any, db: Session, admin: Any) -> None:
    client.sign_in(admin.email)
    new_form = client.get("/admin/service-desk/vendors/new").get_data(as_text=True)
    assert "Facility issues it fixes" in new_form and "Catalog items it supplies" in new_form
    response = client.submit(
        "/admin/service-desk/vendors/new",
        {
            "name": "  Aqua   Plumbing ",
            "contact_name": "Petra Pipe",
            "email": "Orders@Aqua.example",
            "phone": "+49 30 1234-567",
            "categories": ["plumbing", "cleaning"],
        },
    )
    assert response.status_code == 303
    vendor = db.scalar(select(Vendor).where(Vendor.name == "Aqua Plumbing"))
    assert vendor.email == "orders@aqua.example"
    assert vendor.categories == ["cleaning", "plumbing"]
    listing = client.get("/admin/service-desk/vendors").get_data(as_text=True)
    assert "Aqua Plumbing" in listing and "Petra Pipe" in listing

    response = client.submit(
        f"/admin/service-desk/vendors/{vendor.id}",
        {
            "name": "Aqua Plumbing",
            "email": "",
            "phone": "",
            "categories": ["plumbing", "office_supplies"],
        },
        htmx=True,
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"].endswith("/vendors")
    db.expire_all()
    assert db.get(Vendor, vendor.id).categories == ["office_supplies", "plumbing"]

    assert (
        client.submit(
            f"/admin/service-desk/vendors/{vendor.id}/active", {"active": "0"}
        ).status_code
        == 303
    )
    db.expire_all()
    assert not db.get(Vendor, vendor.id).active
    assert "Deactivated" in client.get("/admin/service-desk/vendors").get_data(as_text=True)
    client.submit(f"/admin/service-desk/vendors/{vendor.id}/active", {"active": "1"})
    db.expire_all()
    assert db.get(Vendor, vendor.id).active
    assert [a for a in actions(db) if a.startswith("vendor.")] == [
        "vendor.created",
        "vendor.updated",
        "vendor.deactivated",
        "vendor.reactivated",
    ]


@pytest.mark.parametrize(
    ("form", "field_message"),
    [
        ({"name": ""}, "Give the vendor a name."),
        ({"name": "X" * 121}, "Keep the name under 120 characters."),
        ({"name": "Fine", "email": "not-an-address"}, "Enter an e-mail address like"),
        ({"name": "Fine", "phone": "call me<script>"}, "Enter a phone number"),
        ({"name": "Fine", "categories": ["teleportation"]}, "Choose categories from the list."),
        ({"name": "existing vendor"}, "There is already a vendor called Existing Vendor."),
    ],
)
def test_bad_vendor_input_is_refused_beside_the_field(
    client: Any, db: Session, admin: Any, form: dict[str, Any], field_message: str
) -> None:
    sd.vendor(db, "Existing Vendor")
    db.commit()
    client.sign_in(admin.email)
    before = db.scalar(select(Vendor.id).order_by(Vendor.id.desc()))
    response = client.submit("/admin/service-desk/vendors/new", form, htmx=True)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert field_message in body and 'id="vendor-form"' in body and "<html" not in body
    assert db.scalar(select(Vendor.id).order_by(Vendor.id.desc())) == before


def test_an_unknown_vendor_is_404(client: Any, db: Session, admin: Any) -> None:
    client.sign_in(admin.email)
    assert client.get("/admin/service-desk/vendors/999999").status_code == 404
    assert client.submit("/admin/service-desk/vendors/999999", {"name": "X"}).status_code == 404


# ---------------------------------------------------------------------------------------------
# SLA policies


def test_admin_manages_policies_in_business_hours(client: Any, db: Session, admin: Any) -> None:
    client.sign_in(admin.email)
    response = client.submit(
        "/admin/service-desk/sla/new",
        {
            "kind": "issue",
            "category": "plumbing",
            "priority": "urgent",
            "first_response_hours": "1.5",
            "resolution_hours": "8",
        },
    )
    assert response.status_code == 303
    policy = db.scalar(select(SlaPolicy).where(SlaPolicy.category == "plumbing"))
    assert (policy.first_response_minutes, policy.resolution_minutes) == (90, 480)
    listing = client.get("/admin/service-desk/sla").get_data(as_text=True)
    assert "1.5 h" in listing and "8 h" in listing and "Urgent" in listing
    edit = client.get(f"/admin/service-desk/sla/{policy.id}").get_data(as_text=True)
    assert 'value="1.5"' in edit
    client.submit(
        f"/admin/service-desk/sla/{policy.id}",
        {
            "kind": "issue",
            "category": "plumbing",
            "priority": "urgent",
            "first_response_hours": "2",
            "resolution_hours": "10",
        },
    )
    db.expire_all()
    assert db.get(SlaPolicy, policy.id).resolution_minutes == 600
    assert client.submit(f"/admin/service-desk/sla/{policy.id}/delete").status_code == 303
    assert db.scalar(select(SlaPolicy).where(SlaPolicy.id == policy.id)) is None
    assert [a for a in actions(db) if a.startswith("sla_policy.")] == [
        "sla_policy.created",
        "sla_policy.updated",
        "sla_policy.deleted",
    ]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"first_response_hours": "0"}, "must be more than zero hours"),
        ({"first_response_hours": "-2"}, "must be more than zero hours"),
        ({"first_response_hours": "soon"}, "as a number of hours"),
        ({"first_response_hours": ""}, "Enter the first response in business hours."),
        ({"resolution_hours": "99999"}, "at most 2,000 business hours"),
        (
            {"first_response_hours": "10", "resolution_hours": "4"},
            "Resolution cannot come before the first response.",
        ),
        ({"category": "office_supplies"}, "Choose a category of facility issues"),
        ({"priority": "whenever"}, "Choose a priority from the list"),
        ({"kind": "party"}, "Not a valid choice"),
        (
            {"category": "plumbing", "priority": ""},
            "There is already a policy for this kind, category and priority",
        ),
    ],
)
def test_bad_policies_are_refused(
    client: Any, db: Session, admin: Any, form: dict[str, str], message: str
) -> None:
    db.add(
        SlaPolicy(
            kind="issue",
            category="plumbing",
            priority="",
            first_response_minutes=60,
            resolution_minutes=600,
        )
    )
    db.commit()
    client.sign_in(admin.email)
    data = {
        "kind": "issue",
        "category": "",
        "priority": "",
        "first_response_hours": "4",
        "resolution_hours": "24",
        **form,
    }
    response = client.submit("/admin/service-desk/sla/new", data, htmx=True)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert len(db.scalars(select(SlaPolicy)).all()) == 1


def test_changing_a_policy_keeps_existing_deadlines(
    client: Any, db: Session, admin: Any, employee: Any
) -> None:
    site = factories.site(db)
    policy = SlaPolicy(
        kind="issue",
        category="plumbing",
        priority="",
        first_response_minutes=60,
        resolution_minutes=240,
    )
    db.add(policy)
    db.flush()
    opened = utcnow() - timedelta(hours=1)
    before = sd.ticket(db, employee, site, category="plumbing", now=opened)
    due = (before.first_response_due_at, before.resolution_due_at)
    db.commit()
    client.sign_in(admin.email)
    client.submit(
        f"/admin/service-desk/sla/{policy.id}",
        {
            "kind": "issue",
            "category": "plumbing",
            "priority": "",
            "first_response_hours": "40",
            "resolution_hours": "80",
        },
    )
    db.expire_all()
    assert (
        db.get(Ticket, before.id).first_response_due_at,
        db.get(Ticket, before.id).resolution_due_at,
    ) == due
    # New tickets get the new targets.
    after = sd.ticket(db, employee, site, category="plumbing", now=opened)
    assert after.resolution_due_at == sla.add_business_minutes(site, opened, 80 * 60)
    # Deleting it leaves the old ticket's deadlines as they were, too.
    client.submit(f"/admin/service-desk/sla/{policy.id}/delete")
    db.expire_all()
    assert db.get(Ticket, before.id).resolution_due_at == due[1]
