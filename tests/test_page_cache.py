"""The desk plan and room timeline keep their shared part between requests, and still never show
anything stale or anybody else's view: every request checks the floor's version counters."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select, update

from portal.models import Booking, BookingPolicy, PageVersion, User
from portal.models.page_versions import booking_scope, resource_scope
from portal.services import bookings as booking_service
from portal.services import page_cache
from portal.services.audit import Actor
from tests import factories
from tests.conftest import Browser, make_test_app


@pytest.fixture
def office(db):
    site = factories.site(db, "berlin")
    floor = factories.floor(db, site, level=3)
    desks = [factories.desk(db, floor, name=f"3.{i:02d}", zone="North") for i in range(1, 6)]
    room = factories.room(db, floor, "Elbe", capacity=6)
    db.add(BookingPolicy(site_id=site.id, show_booker_names=True))
    factories.user(db, name="Cora Colleague", email="cora@example.com", department="Sales")
    factories.user(db, name="Tara Team", email="tara@example.com", department="Engineering")
    db.commit()
    return site, floor, desks, room


def browser(app: Any, email: str) -> Browser:
    app.test_client_class = Browser
    client = app.test_client()
    client.sign_in(email)
    return client


def person(db, email: str) -> User:
    return db.scalar(select(User).where(User.email == email))


def book_desk(db, who: User, desk, day) -> Booking:
    booking = booking_service.book(
        db,
        Actor.system("test"),
        who,
        resource_id=desk.id,
        start=factories.at(day, 8),
        end=factories.at(day, 19),
    )
    db.commit()
    return booking


def plan(client: Browser, floor, day, view: str = "plan") -> str:
    response = client.get(f"/desks/?floor={floor.id}&date={day}&view={view}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def timeline(client: Browser, floor, day) -> str:
    response = client.get(f"/rooms/timeline?floor={floor.id}&date={day}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_colleagues_booking_shows_at_once_and_the_plan_is_reused_in_between(
    app, client, employee, office, db
):
    _site, floor, desks, _room = office
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    first = plan(client, floor, day)
    assert "5</strong> free" in first
    cache = page_cache.cache_for(app.extensions)
    hits = cache.hits
    again = plan(client, floor, day)  # nothing changed: the kept part is reused
    assert cache.hits == hits + 1
    svg = re.compile(r"<svg class=\"floorplan\".*?</svg>", re.S)
    assert svg.search(again).group(0) == svg.search(first).group(0)

    cora = browser(app, "cora@example.com")
    booked = cora.submit(f"/desks/{desks[1].id}/book", {"date": day.isoformat(), "slot": "day"})
    assert booked.status_code == 303
    after = plan(client, floor, day)
    assert "4</strong> free" in after and "1</strong> taken" in after
    assert "Desk 3.02: Taken (Cora Colleague)" in after
    assert "yours" not in after


def test_another_process_sees_a_change_at_once(tmp_path, database_url, session_factory, office, db):
    """Two app objects stand for two gunicorn workers (or hosts), each with its own cache."""
    _site, floor, desks, _room = office
    factories.user(db, name="Erin Employee", email="erin@example.com")
    db.commit()
    day = factories.weekday_ahead()
    first = make_test_app(tmp_path / "one", database_url, SESSION_FACTORY=session_factory)
    second = make_test_app(tmp_path / "two", database_url, SESSION_FACTORY=session_factory)
    erin = browser(first, "erin@example.com")
    assert "5</strong> free" in plan(erin, floor, day)
    cora = browser(second, "cora@example.com")
    assert "5</strong> free" in plan(cora, floor, day)
    cora.submit(f"/desks/{desks[0].id}/book", {"date": day.isoformat(), "slot": "day"})
    page = plan(erin, floor, day)
    assert "4</strong> free" in page and "Desk 3.01: Taken (Cora Colleague)" in page


def test_mine_is_per_viewer_on_the_plan_and_in_the_list(app, client, employee, office, db):
    _site, floor, desks, _room = office
    day = factories.weekday_ahead()
    book_desk(db, person(db, "erin@example.com"), desks[2], day)
    client.sign_in("erin@example.com")
    cora = browser(app, "cora@example.com")
    for _ in range(2):  # built by one viewer, then served from the cache to the other, and back
        mine = plan(client, floor, day)
        theirs = plan(cora, floor, day)
        assert "1</strong> yours" in mine and "Desk 3.03: Your desk" in mine
        assert "You have desk <strong>3.03</strong>" in mine
        assert "yours" not in theirs and "Desk 3.03: Taken (Erin Employee)" in theirs
        assert "You have desk" not in theirs
    listing = plan(cora, floor, day, view="list")
    assert "Your desk" not in listing and "Taken</span> · Erin Employee" in listing
    assert "Your desk" in plan(client, floor, day, view="list")


def test_my_desk_on_another_floor_is_named_in_the_panel(app, client, employee, office, db):
    site, floor, _desks, _room = office
    other_floor = factories.floor(db, site, level=4)
    elsewhere = factories.desk(db, other_floor, name="4.01")
    db.commit()
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    assert "You have desk" not in plan(client, floor, day)
    book_desk(db, person(db, "erin@example.com"), elsewhere, day)
    assert "You have desk <strong>4.01</strong>" in plan(client, floor, day)


def test_the_team_highlight_follows_the_viewers_department(app, client, employee, office, db):
    _site, floor, desks, _room = office
    day = factories.weekday_ahead()
    book_desk(db, person(db, "tara@example.com"), desks[4], day)
    client.sign_in("erin@example.com")  # Engineering, like Tara
    cora = browser(app, "cora@example.com")  # Sales
    for _ in range(2):
        assert "desk-team" in plan(client, floor, day)
        assert "Tara Team · desk 3.05" in plan(client, floor, day)
        assert "desk-team" not in plan(cora, floor, day)
        assert "Near my team" not in plan(cora, floor, day)
    book_desk(db, person(db, "erin@example.com"), desks[0], day)  # my own desk is not my team's
    page = plan(client, floor, day)
    assert "Tara Team · desk 3.05" in page and "Erin Employee · desk" not in page


def test_hiding_booker_names_applies_at_once(app, client, employee, office, db):
    site, floor, desks, room = office
    day = factories.weekday_ahead()
    book_desk(db, person(db, "cora@example.com"), desks[0], day)
    booking_service.book(
        db,
        Actor.system("test"),
        person(db, "cora@example.com"),
        resource_id=room.id,
        start=factories.at(day, 10),
        end=factories.at(day, 11),
        title="Secret planning",
    )
    db.commit()
    client.sign_in("erin@example.com")
    assert "Cora Colleague" in plan(client, floor, day)
    assert "Secret planning · Cora Colleague" in timeline(client, floor, day)

    policy = db.scalar(select(BookingPolicy).where(BookingPolicy.site_id == site.id))
    policy.show_booker_names = False
    db.commit()
    page, rooms = plan(client, floor, day), timeline(client, floor, day)
    assert "Cora Colleague" not in page and "Desk 3.01: Taken</title>" in page
    assert "Cora Colleague" not in rooms and "Secret planning" not in rooms
    assert '<span class="block-label">Booked</span>' in rooms
    cora = browser(app, "cora@example.com")
    assert "✓ You: Secret planning" in timeline(cora, floor, day)  # her own title, to her


def test_a_renamed_colleague_and_a_renamed_desk_show_at_once(app, client, employee, office, db):
    _site, floor, desks, _room = office
    day = factories.weekday_ahead()
    cora = person(db, "cora@example.com")
    book_desk(db, cora, desks[0], day)
    client.sign_in("erin@example.com")
    assert "Cora Colleague" in plan(client, floor, day)
    cora.name = "Cora Newname"
    desks[1].name = "3.99"
    db.commit()
    page = plan(client, floor, day)
    assert "Cora Newname" in page and "Cora Colleague" not in page
    assert "Desk 3.99" in page


def test_the_timeline_shows_my_booking_as_mine_only_to_me(app, client, employee, office, db):
    _site, floor, _desks, room = office
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    before = timeline(client, floor, day)
    assert "✓ You:" not in before
    booking_service.book(
        db,
        Actor.system("test"),
        person(db, "erin@example.com"),
        resource_id=room.id,
        start=factories.at(day, 14),
        end=factories.at(day, 15),
        title="Retro",
    )
    db.commit()
    mine = timeline(client, floor, day)
    assert "✓ You: Retro" in mine and "block-mine" in mine
    assert "Book Elbe at 14:00" not in mine  # the booked half-hours are no longer offered
    theirs = timeline(browser(app, "cora@example.com"), floor, day)
    assert "✓ You:" not in theirs and "Retro · Erin Employee" in theirs
    assert "block block-mine" not in theirs and " block-mine " not in theirs


def test_cancelling_frees_the_desk_at_once(app, client, employee, office, db):
    _site, floor, desks, _room = office
    day = factories.weekday_ahead()
    booking = book_desk(db, person(db, "cora@example.com"), desks[0], day)
    client.sign_in("erin@example.com")
    assert "1</strong> taken" in plan(client, floor, day)
    booking_service.cancel(db, Actor.system("test"), booking)
    db.commit()
    assert "5</strong> free" in plan(client, floor, day)


def versions(db) -> dict[str, int]:
    return {v.key: v.version for v in db.scalars(select(PageVersion))}


def test_every_change_bumps_its_scope_and_a_rollback_bumps_nothing(employee, office, db):
    _site, floor, desks, _room = office
    day = factories.weekday_ahead()
    start = versions(db)
    book_desk(db, employee, desks[0], day)
    after_booking = versions(db)
    scope = booking_scope(floor.id, factories.at(day, 8).date())
    assert after_booking.get(scope, 0) > start.get(scope, 0)

    desks[1].active = False
    db.commit()
    after_desk = versions(db)
    assert after_desk[resource_scope(floor.id)] > after_booking.get(resource_scope(floor.id), 0)

    employee.department = "Finance"
    db.commit()
    assert versions(db)["people"] > after_desk.get("people", 0)

    desks[2].name = "never saved"
    db.flush()
    db.rollback()
    assert (
        versions(db) == versions(db)
        and versions(db)[resource_scope(floor.id)] == (after_desk[resource_scope(floor.id)])
    )

    db.execute(update(Booking).values(title="bulk"))
    db.commit()
    assert versions(db)["all"] > after_desk.get("all", 0)


def test_the_version_is_one_small_query_and_grows_with_any_bump(employee, office, db):
    _site, floor, _desks, _room = office
    day = factories.weekday_ahead()
    scopes = page_cache.floor_scopes(floor.id, factories.at(day, 0), factories.at(day, 23))
    first = page_cache.version(db, scopes)
    from portal.models.page_versions import bump

    bump(db, [scopes[-1]])
    assert page_cache.version(db, scopes) > first
