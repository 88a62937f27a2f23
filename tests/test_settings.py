"""Settings: the hub lists every area (a coordinator only their own sites'), sites' zone, hours and
holidays are validated and audited and holidays stop the SLA clock, and the SSO group-to-role
mapping kept in the database is what a real provider's sign-in uses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, Site
from portal.models.budgets import SiteHoliday, SsoGroupRole
from portal.services import sla
from tests import factories, test_sso
from tests.test_sso import (
    BERLIN_FACILITIES,
    GROUP_ROLES,
    change_at_provider,
    email_of,
    foyer_user,
    grants,
    sign_in_via_sso,
)

# The real OIDC provider (pytest-iam) and its fixtures, as tests/test_sso.py sets them up
iam_server = test_sso.iam_server
foyer_at_provider = test_sso.foyer_at_provider
provider_groups = test_sso.provider_groups
person = test_sso.person


@pytest.fixture
def app_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Single sign-on against the real provider for the tests that use it (as tests/test_sso.py
    sets it up, with FOYER_OIDC_GROUP_ROLES as the environment's default); none otherwise."""
    if "iam_server" not in request.fixturenames:
        return {}
    provider = request.getfixturevalue("iam_server")
    registration = request.getfixturevalue("foyer_at_provider")
    return {
        "oidc_discovery_url": provider.url + ".well-known/openid-configuration",
        "oidc_client_id": registration.client_id,
        "oidc_client_secret": registration.client_secret,
        "oidc_scopes": "openid email profile groups",
        "oidc_group_roles": GROUP_ROLES,
    }


def two_sites(db: Any) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    jonas = factories.user(db, email="jonas@example.com", coordinator_of=berlin)
    db.commit()
    return {"berlin": berlin, "new_york": new_york, "jonas": jonas}


def actions(db: Any) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# --- the hub ----------------------------------------------------------------------------------


def test_a_coordinator_sees_only_their_sites_settings(client, db):
    world = two_sites(db)
    client.sign_in("jonas@example.com")
    page = client.get("/admin/settings/").get_data(as_text=True)
    berlin_id, new_york_id = world["berlin"].id, world["new_york"].id
    assert f"/admin/settings/sites/{berlin_id}" in page
    assert f"/admin/rules/sites/{berlin_id}" in page
    assert f"/admin/visitor-settings/sites/{berlin_id}" in page
    assert "/admin/service-desk/sla" in page and "/admin/kiosks/" in page
    assert f"/sites/{new_york_id}" not in page
    assert "/admin/settings/sso" not in page  # admins only
    assert client.get(f"/admin/settings/sites/{new_york_id}").status_code == 404
    assert client.get(f"/admin/settings/budgets/sites/{new_york_id}").status_code == 404
    assert client.get("/admin/settings/sso").status_code == 403
    # and "Settings" is in their Manage menu
    assert 'href="/admin/settings/"' in client.get("/my-day").get_data(as_text=True)


def test_an_admin_sees_every_site_and_the_installation(client, db, admin):
    world = two_sites(db)
    client.sign_in(admin.email)
    page = client.get("/admin/settings/").get_data(as_text=True)
    assert f"/admin/settings/sites/{world['new_york'].id}" in page
    assert "/admin/settings/sso" in page and "/admin/jobs/" in page


def test_an_employee_has_no_settings(client, employee):
    client.sign_in(employee.email)
    assert client.get("/admin/settings/").status_code == 403


# --- hours and holidays -----------------------------------------------------------------------


def test_hours_are_validated_with_messages_and_nothing_half_saved(client, db):
    world = two_sites(db)
    client.sign_in("jonas@example.com")
    url = f"/admin/settings/sites/{world['berlin'].id}/hours"
    response = client.submit(
        url,
        {
            "time_zone": "Mars/Olympus_Mons",
            "opens_at": "18:00",
            "closes_at": "08:00",
            "open_weekdays": ["1", "2"],
        },
        htmx=True,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "is not a time zone Foyer knows" in page
    assert "Closing must be after opening (18:00)." in page
    assert page.lstrip().startswith('<form id="site-hours"')  # the fragment only
    response = client.submit(
        url, {"time_zone": "Europe/Berlin", "opens_at": "8 am", "closes_at": ""}, htmx=True
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter the opening time" in page and "Enter the closing time" in page
    assert "Tick at least one day the site is open." in page
    db.expire_all()
    site = db.get(Site, world["berlin"].id)
    assert (site.time_zone, site.opens_at, site.open_weekdays) == (
        "Europe/Berlin",
        time(8),
        "12345",
    )
    assert "site.hours_updated" not in actions(db)


def test_hours_are_saved_and_audited(client, db):
    world = two_sites(db)
    client.sign_in("jonas@example.com")
    response = client.submit(
        f"/admin/settings/sites/{world['berlin'].id}/hours",
        {
            "time_zone": "Europe/Lisbon",
            "opens_at": "07:30",
            "closes_at": "17:00",
            "open_weekdays": ["1", "2", "3", "4", "5", "6"],
        },
    )
    assert response.status_code == 303
    db.expire_all()
    site = db.get(Site, world["berlin"].id)
    assert (site.time_zone, site.opens_at, site.closes_at, site.open_weekdays) == (
        "Europe/Lisbon",
        time(7, 30),
        time(17),
        "123456",
    )
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "site.hours_updated"))
    assert event.before["time_zone"] == "Europe/Berlin" and event.after["opens_at"] == "07:30"
    assert "Hours and time zone of Berlin saved." in client.get(
        f"/admin/settings/sites/{site.id}"
    ).get_data(as_text=True)


def test_holidays_are_added_once_and_removed_by_their_sites_coordinators(client, db):
    world = two_sites(db)
    client.sign_in("jonas@example.com")
    url = f"/admin/settings/sites/{world['berlin'].id}/holidays"
    assert client.submit(url, {"day": "2026-12-24", "name": "Christmas Eve"}).status_code == 303
    again = client.submit(url, {"day": "2026-12-24", "name": "Heiligabend"}, htmx=True)
    assert again.status_code == 422
    assert "24 December 2026 is already a holiday at Berlin." in again.get_data(as_text=True)
    empty = client.submit(url, {"day": "not a date", "name": ""}, htmx=True)
    assert empty.status_code == 422
    assert "Enter the date" in empty.get_data(as_text=True)
    assert "Name the holiday" in empty.get_data(as_text=True)
    [holiday] = db.scalars(select(SiteHoliday)).all()
    assert (holiday.day, holiday.name) == (date(2026, 12, 24), "Christmas Eve")
    assert "Christmas Eve" in client.get(f"/admin/settings/sites/{world['berlin'].id}").get_data(
        as_text=True
    )

    # Another site's coordinator cannot remove it (404, not 403: ids are not confirmed)
    factories.user(db, email="maya@example.com", coordinator_of=world["new_york"])
    db.commit()
    other = client.application.test_client()
    other.sign_in("maya@example.com")
    assert other.submit(f"/admin/settings/holidays/{holiday.id}/remove").status_code == 404
    assert client.submit(f"/admin/settings/holidays/{holiday.id}/remove").status_code == 303
    assert db.scalars(select(SiteHoliday)).all() == []
    assert {"site_holiday.added", "site_holiday.removed"} <= set(actions(db))


def test_the_sla_clock_skips_holidays(db):
    berlin = factories.site(db, "berlin", opens_at=time(9), closes_at=time(17))
    db.commit()
    # Thursday 24 Dec 2026, 16:00 Berlin: 1 hour left that day, then (Friday open) 7 more hours
    start = datetime(2026, 12, 24, 15, 0, tzinfo=UTC)
    without = sla.add_business_minutes(berlin, start, 8 * 60)
    assert without == datetime(2026, 12, 25, 15, 0, tzinfo=UTC)  # Friday 16:00

    from portal.services import site_settings
    from portal.services.audit import Actor

    for day, name in ((date(2026, 12, 25), "Christmas Day"), (date(2026, 12, 28), "Closed")):
        site_settings.add_holiday(db, Actor.system("tests"), berlin, day=day, name=name)
    db.commit()
    # Friday and Monday are holidays: the remaining 7 hours fall on Tuesday 29 Dec
    assert sla.add_business_minutes(berlin, start, 8 * 60) == datetime(
        2026, 12, 29, 15, 0, tzinfo=UTC
    )
    assert (
        sla.business_minutes_between(berlin, start, datetime(2026, 12, 29, 8, 0, tzinfo=UTC)) == 60
    )


# --- SSO group-to-role mapping ------------------------------------------------------------------


def test_sso_mappings_are_validated_and_audited(client, db, admin):
    world = two_sites(db)
    client.sign_in(admin.email)
    page = client.get("/admin/settings/sso").get_data(as_text=True)
    assert "FOYER_OIDC_GROUP_ROLES" in page
    cases = [
        ({"group": " ", "role": "admin"}, "Enter the group"),
        ({"group": "facilities", "role": "coordinator", "site": ""}, "Choose the site"),
        ({"group": "facilities", "role": "coordinator", "site": "99999"}, "does not exist"),
        ({"group": "facilities", "role": "owner"}, "Choose admin or coordinator"),
    ]
    for data, message in cases:
        response = client.submit("/admin/settings/sso", data, htmx=True)
        assert response.status_code == 422, data
        assert message in response.get_data(as_text=True), data
    assert db.scalars(select(SsoGroupRole)).all() == []
    good = {"group": "facilities-berlin", "role": "coordinator", "site": str(world["berlin"].id)}
    assert client.submit("/admin/settings/sso", good).status_code == 303
    duplicate = client.submit("/admin/settings/sso", good, htmx=True)
    assert duplicate.status_code == 422
    assert "already maps to that role" in duplicate.get_data(as_text=True)
    assert actions(db).count("sso_group_role.added") == 1


def test_a_coordinator_cannot_change_sso_mappings(client, db):
    two_sites(db)
    client.sign_in("jonas@example.com")
    assert client.submit("/admin/settings/sso", {"group": "x", "role": "admin"}).status_code == 403
    assert db.scalars(select(SsoGroupRole)).all() == []


def test_stored_mappings_replace_the_environment_default_at_sign_in(
    client,
    app,
    db,
    person,
    iam_server,
    provider_groups,
):
    """The provider says the person is in the Berlin facilities group. The environment maps that
    group to coordinator of Berlin; an admin stores a mapping to Munich instead in the UI."""
    factories.site(db, "berlin")
    munich = factories.site(db, "munich")
    admin_user = factories.user(db, email="ada@example.com", admin=True)
    db.commit()
    change_at_provider(iam_server, person, groups=[provider_groups[BERLIN_FACILITIES]])
    assert sign_in_via_sso(client).status_code == 303
    user = foyer_user(db, email_of(person))
    assert grants(db, user) == {("coordinator", "berlin", "sso")}  # the environment's default

    console = app.test_client()
    console.sign_in(admin_user.email)
    stored = {"group": BERLIN_FACILITIES, "role": "coordinator", "site": str(munich.id)}
    assert console.submit("/admin/settings/sso", stored).status_code == 303
    page = console.get("/admin/settings/sso").get_data(as_text=True)
    assert "Not in use" in page  # the environment's mapping, shown read-only

    later = app.test_client()
    assert sign_in_via_sso(later).status_code == 303
    assert grants(db, user) == {("coordinator", "munich", "sso")}
