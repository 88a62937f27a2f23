"""Every state-changing rule in the URL map, fed hostile input by hypothesis: unicode (right-to-left,
emoji, combining marks), NUL and other control characters, 100 kB strings, empty and blank values,
huge and negative numbers, impossible dates and times, missing and duplicated fields, stray fields
and junk files; as a plain form and as an htmx request, signed in as someone who may use the form.

What a user would notice is asserted: never a 5xx; an htmx refusal is a 4xx fragment (never a
whole page swapped into the form); a refused submission writes nothing; an accepted one leaves data
the person's pages can still show. Runs on SQLite and PostgreSQL, deterministically
(derandomized, no example database), so CI sees the same inputs every run.

This module holds the /admin rules, the check that no rule escapes, and the bugs the fuzzing found
as plain stories; tests/test_fuzz_forms_people.py holds the other rules; tests/form_fuzzing.py does
the work for both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.errors import RuleViolation
from portal.models import Room
from portal.models.budgets import SsoGroupRole
from portal.models.calendar_sync import CalendarLink, Provider
from portal.services import calendar_sync, spaces
from tests import factories
from tests.conftest import make_test_app
from tests.form_fuzzing import (
    ADMIN_RULES,
    FUZZED,
    NOT_FUZZED,
    PEOPLE_RULES,
    World,
    actor_for,
    build_world,
    fuzz_rule,
    state_changing_rules,
    url_for,
)


@pytest.fixture(scope="module")
def fuzz_world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from build_world(database_url, tmp_path_factory.mktemp("fuzz"))


def test_every_state_changing_rule_has_a_user_and_a_url(fuzz_world: World) -> None:
    """A new POST route fails here until its permission class (test_route_permissions) and its
    URL arguments are known, so no form escapes the fuzzing."""
    app = make_test_app(fuzz_world.tmp, fuzz_world.url)
    rules = state_changing_rules(app)
    assert {r.endpoint for r in rules} == set(FUZZED) | set(NOT_FUZZED)
    assert sorted(ADMIN_RULES + PEOPLE_RULES) == FUZZED
    for rule in rules:
        assert actor_for(rule.endpoint)
        assert url_for(fuzz_world, rule, {"session_id": 1})


@pytest.mark.parametrize("endpoint", ADMIN_RULES)
def test_hostile_input_never_breaks_an_admin_form(
    fuzz_world: World, endpoint: str, tmp_path: Path
) -> None:
    fuzz_rule(fuzz_world, endpoint, tmp_path)


# ---------------------------------------------------------------------------------------------
# What the fuzzing found, kept as plain stories (each answered 500 before its fix).


def test_signing_in_with_a_nul_in_the_address_is_a_plain_refusal(client, employee):
    """PostgreSQL cannot even compare a string holding NUL: the lookup used to fail (500). Any
    form field with a NUL is now refused before a view runs (portal/security.py)."""
    response = client.submit("/sign-in", {"email": "erin\x00@example.com", "password": "x" * 12})
    assert response.status_code == 400
    assert "a character that cannot be used" in response.get_data(as_text=True)
    assert client.get("/my-day").status_code in (302, 303)  # still signed out


def test_a_site_number_beyond_any_database_integer_is_refused(client, admin, db):
    client.sign_in(admin.email)
    for site in ("2147483648", "9223372036854775808"):
        response = client.submit(
            "/admin/settings/sso", {"group": "facilities", "role": "coordinator", "site": site}
        )
        assert response.status_code == 422, site
    assert db.scalar(select(func.count()).select_from(SsoGroupRole)) == 0


def test_a_second_room_with_the_same_non_ascii_name_is_refused_beside_the_name(client, admin, db):
    """SQLite's lower() folds ASCII only, so the name check missed "Ärzte" == "Ärzte" and the
    unique constraint failed in a flush the savepoint did not cover (500)."""
    floor = factories.floor(db)
    db.commit()
    client.sign_in(admin.email)
    form = {"name": "Ärztezimmer", "capacity": "6", "buffer_minutes": "0"}
    url = f"/admin/spaces/floors/{floor.id}/rooms/new"
    assert client.submit(url, form).status_code == 303
    again = client.submit(url, form)
    assert again.status_code == 422
    assert "already has a room called Ärztezimmer" in again.get_data(as_text=True)
    assert db.scalar(select(func.count()).where(Room.floor_id == floor.id)) == 1


def test_a_name_taken_in_a_race_leaves_the_session_usable(db):
    """The constraint settles a race between two coordinators; the losing request must still be
    able to answer (it used to fail outside its savepoint and poison the whole session)."""
    floor = factories.floor(db)
    factories.room(db, floor, name="Havel")
    twin = Room(
        site_id=floor.building.site_id,
        floor=floor,
        name="Havel",
        capacity=4,
        equipment=[],
        qr_code="qr-race-twin",
    )
    with pytest.raises(RuleViolation):
        spaces._flush_or_name_taken(db, lambda: db.add(twin))
    assert db.scalar(select(func.count()).where(Room.floor_id == floor.id)) == 1


def test_a_calendar_that_failed_for_days_can_still_be_synced_by_hand(client, admin, db):
    """The retry delay doubled without bound: after ~40 failures it no longer fit a timedelta,
    and every later sync of that link failed with an OverflowError (500)."""
    assert calendar_sync.retry_delay(10_000) == calendar_sync.LONGEST_RETRY
    room = factories.room(db)
    link = CalendarLink(resource_id=room.id, provider=Provider.CALDAV, failures=1_000)
    db.add(link)
    db.commit()
    client.sign_in(admin.email)
    response = client.submit(f"/admin/calendars/{link.id}/sync")
    assert response.status_code < 500
    db.refresh(link)
    assert link.failures == 1_001


def test_a_request_line_naming_an_item_beyond_any_database_integer_is_shown_back(
    client, db, employee
):
    """The review page looked the posted item numbers up as they came (500 past 2^63 on SQLite,
    2^31 on PostgreSQL); "Remove" even kept such a number in the draft for later pages."""
    employee.home_site = factories.site(db)
    db.commit()
    client.sign_in(employee.email)
    huge = "9223372036854775808"
    assert client.submit("/requests", {"line_item": huge, "line_qty": "1"}).status_code < 500
    removed = client.submit(
        "/requests", {"line_item": [huge, "2147483648"], "line_qty": ["1", "1"], "remove": huge}
    )
    assert removed.status_code < 500
    assert client.get("/catalog").status_code == 200
    assert client.get("/requests/new").status_code < 500


def test_odd_digits_in_a_restock_choice_are_ignored(client, db):
    """ "²".isdigit() is true, yet int("²") fails: the purchase-order plan answered 500."""
    berlin = factories.site(db)
    coordinator = factories.user(db, coordinator_of=berlin, home_site=berlin)
    db.commit()
    client.sign_in(coordinator.email)
    for restock in ("²", "٣", "2147483648"):
        response = client.submit(
            f"/inventory/sites/{berlin.id}/purchase-orders", {"restock": restock}
        )
        assert response.status_code < 500, restock


def test_the_kiosk_refuses_a_visit_number_beyond_any_database_integer(app, client, db):
    """Eleven digits passed the kiosk's length check and overflowed PostgreSQL's INTEGER (500)."""
    from portal.db import utcnow
    from portal.services import kiosk_devices
    from portal.services.audit import Actor

    berlin = factories.site(db)
    _device, code = kiosk_devices.create(db, Actor.system("tests"), berlin, "Lobby", now=utcnow())
    db.commit()
    token = lambda: re.search(  # noqa: E731
        r'"X-CSRFToken": "([^"]+)"', client.get("/kiosk/").get_data(as_text=True)
    ).group(1)
    htmx = {"HX-Request": "true"}
    paired = client.post("/kiosk/pair", data={"code": code, "csrf_token": token()}, headers=htmx)
    assert paired.status_code == 204
    for path in ("/kiosk/check-out/pick", "/kiosk/invitation/pick"):
        for visit_id in ("99999999999", "2147483648", "²"):
            response = client.post(
                path, data={"visit_id": visit_id, "csrf_token": token()}, headers=htmx
            )
            assert response.status_code == 422, (path, visit_id, response.status_code)
