"""Coordinators set their site's booking rules and blackouts; bookings follow them at once."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.fixture
def berlin(db):
    site = factories.site(db, "berlin")
    floor = factories.floor(db, site)
    desk = factories.desk(db, floor, "1.01")
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    factories.user(db, email="coord@example.com", coordinator_of=site)
    db.commit()
    return site, desk, new_york


RULES = {
    "desk_horizon_days": "3",
    "room_horizon_days": "90",
    "min_minutes": "15",
    "room_max_minutes": "480",
    "max_upcoming_room_bookings": "20",
    "one_desk_per_day": "y",
    "midday": "13:00",
    "check_in_opens_minutes": "15",
    "check_in_grace_minutes": "15",
    "show_booker_names": "y",
}


def test_coordinator_shortens_the_desk_horizon_and_bookings_follow(client, employee, berlin):
    site, desk, _ny = berlin
    client.sign_in("coord@example.com")
    assert client.get("/admin/rules/").status_code == 302
    saved = client.submit(f"/admin/rules/sites/{site.id}", RULES)
    assert saved.status_code == 303
    client.submit("/sign-out")
    client.sign_in("erin@example.com")
    day = factories.weekday_ahead(days=6)
    refused = client.submit(f"/desks/{desk.id}/book", {"date": day.isoformat(), "slot": "day"})
    assert refused.status_code == 422
    assert "up to 3 days ahead" in refused.get_data(as_text=True)


def test_bad_rule_values_are_explained_and_not_saved(client, berlin):
    site, _desk, _ny = berlin
    client.sign_in("coord@example.com")
    response = client.submit(
        f"/admin/rules/sites/{site.id}",
        {**RULES, "desk_horizon_days": "0", "midday": "23:30", "min_minutes": "x"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Not a valid integer value." in body
    response = client.submit(
        f"/admin/rules/sites/{site.id}", {**RULES, "desk_horizon_days": "0", "midday": "23:30"}
    )
    body = response.get_data(as_text=True)
    assert "1 to 365 days ahead" in body and "Midday must fall within opening hours" in body


def test_a_blackout_refuses_bookings_with_its_reason(client, employee, berlin):
    site, desk, _ny = berlin
    day = factories.weekday_ahead(days=2)
    client.sign_in("coord@example.com")
    added = client.submit(
        f"/admin/rules/sites/{site.id}/blackouts",
        {"first_day": day.isoformat(), "last_day": day.isoformat(), "reason": "Office move"},
    )
    assert added.status_code == 303
    backwards = client.submit(
        f"/admin/rules/sites/{site.id}/blackouts",
        {"first_day": day.isoformat(), "last_day": "2000-01-01", "reason": "x"},
    )
    assert backwards.status_code == 422 and "end after it starts" in backwards.get_data(
        as_text=True
    )
    client.submit("/sign-out")
    client.sign_in("erin@example.com")
    refused = client.submit(f"/desks/{desk.id}/book", {"date": day.isoformat(), "slot": "day"})
    assert refused.status_code == 422 and "Office move" in refused.get_data(as_text=True)


def test_other_sites_and_employees_are_kept_out(client, employee, berlin):
    _site, _desk, new_york = berlin
    client.sign_in("coord@example.com")
    assert client.get(f"/admin/rules/sites/{new_york.id}").status_code == 404
    assert client.submit(f"/admin/rules/sites/{new_york.id}", RULES).status_code == 404
    client.submit("/sign-out")
    client.sign_in("erin@example.com")
    assert client.get("/admin/rules/").status_code == 403
