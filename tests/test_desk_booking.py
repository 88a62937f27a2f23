"""An employee books a desk: plan, list, three clicks, and every way it can be refused."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.models import Booking, BookingStatus, DeskAssignment
from tests import factories


@pytest.fixture
def office(db):
    site = factories.site(db, "berlin")
    floor = factories.floor(db, site, level=2)
    desks = [factories.desk(db, floor, name=f"2.{i:02d}", zone="Engineering") for i in range(1, 5)]
    db.commit()
    return site, floor, desks


def bookings_count(db) -> int:
    return db.scalar(select(func.count()).select_from(Booking))


def test_book_a_desk_in_three_clicks(client, employee, office, db):
    site, floor, desks = office
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    plan = client.get(f"/desks/?site=berlin&floor={floor.id}&date={day}")  # 1: the plan
    assert plan.status_code == 200
    body = plan.get_data(as_text=True)
    assert "4</strong> free" in body and 'aria-label="Desk 2.01, free' in body

    confirm = client.get(
        f"/desks/{desks[0].id}/confirm?date={day}&slot=day",  # 2: click a desk
        headers={"HX-Request": "true"},
    )
    assert confirm.status_code == 200
    key = re.search(
        r'name="idempotency_key" value="([^"]+)"', confirm.get_data(as_text=True)
    ).group(1)

    booked = client.submit(
        f"/desks/{desks[0].id}/book",  # 3: confirm
        {"date": day.isoformat(), "slot": "day", "idempotency_key": key},
        htmx=True,
    )
    assert booked.status_code == 200
    fragment = booked.get_data(as_text=True)
    assert "3</strong> free" in fragment and "1</strong> yours" in fragment
    assert "Desk 2.01 is yours for all day" in fragment  # the flash rides along out of band
    assert bookings_count(db) == 1


def test_double_click_books_once(client, employee, office, db):
    _site, _floor, desks = office
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    form = {"date": day.isoformat(), "slot": "morning", "idempotency_key": "same-key-123"}
    first = client.submit(f"/desks/{desks[0].id}/book", form)
    second = client.submit(f"/desks/{desks[0].id}/book", form)
    assert first.status_code == second.status_code == 303
    assert bookings_count(db) == 1


def test_taken_desk_is_refused_with_free_alternatives(app, client, employee, office, db):
    _site, _floor, desks = office
    day = factories.weekday_ahead()
    colleague = factories.user(db, email="colleague@example.com", name="Cora Colleague")
    db.commit()
    from tests.conftest import Browser

    app.test_client_class = Browser
    other = app.test_client()
    other.sign_in("colleague@example.com")
    assert (
        other.submit(
            f"/desks/{desks[0].id}/book", {"date": day.isoformat(), "slot": "day"}
        ).status_code
        == 303
    )

    client.sign_in("erin@example.com")
    page = client.get(f"/desks/?date={day}").get_data(as_text=True)
    assert "Desk 2.01: Taken (Cora Colleague)" in page  # names shown where the site allows
    refused = client.submit(
        f"/desks/{desks[0].id}/book", {"date": day.isoformat(), "slot": "day"}, htmx=True
    )
    assert refused.status_code == 409
    body = refused.get_data(as_text=True)
    assert "already booked" in body and "Book desk 2.02" in body
    assert refused.headers["HX-Retarget"] == "#desk-panel"
    assert bookings_count(db) == 1
    assert colleague.id


@pytest.mark.parametrize(
    ("shift_days", "expected"),
    [(-3, "already passed"), (40, "up to 14 days ahead")],
)
def test_dates_in_the_past_or_beyond_the_horizon_are_refused(
    client, employee, office, db, shift_days, expected
):
    from datetime import date, timedelta

    _site, _floor, desks = office
    client.sign_in("erin@example.com")
    day = date.today() + timedelta(days=shift_days)
    response = client.submit(f"/desks/{desks[0].id}/book", {"date": day.isoformat(), "slot": "day"})
    assert response.status_code == 422
    assert expected in response.get_data(as_text=True)
    assert bookings_count(db) == 0


def test_one_desk_per_person_per_day(client, employee, office, db):
    _site, _floor, desks = office
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    assert (
        client.submit(
            f"/desks/{desks[0].id}/book", {"date": day.isoformat(), "slot": "morning"}
        ).status_code
        == 303
    )
    second = client.submit(
        f"/desks/{desks[1].id}/book", {"date": day.isoformat(), "slot": "afternoon"}
    )
    assert second.status_code == 422
    assert "already has desk 2.01 that day" in second.get_data(as_text=True)


def test_disabled_assigned_and_unknown_desks(client, employee, office, db):
    _site, _floor, desks = office
    desks[1].active = False
    desks[1].disabled_reason = "Monitor broken"
    desks[2].assignment = DeskAssignment.ASSIGNED
    db.commit()
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    plan = client.get(f"/desks/?date={day}&view=list").get_data(as_text=True)
    assert "Out of use: Monitor broken" in plan and "Assigned desk" in plan
    disabled = client.submit(f"/desks/{desks[1].id}/book", {"date": day.isoformat(), "slot": "day"})
    assert disabled.status_code == 422 and "out of use: Monitor broken" in disabled.get_data(
        as_text=True
    )
    assigned = client.submit(f"/desks/{desks[2].id}/book", {"date": day.isoformat(), "slot": "day"})
    assert assigned.status_code == 422 and "assigned to someone" in assigned.get_data(as_text=True)
    assert client.submit("/desks/999999/book", {"date": day.isoformat()}).status_code == 404
    assert client.submit(f"/desks/{desks[0].id}/book", {"date": "not-a-date"}).status_code == 422
    assert bookings_count(db) == 0


def test_weekend_is_refused_by_business_hours(client, employee, office):
    from datetime import timedelta

    _site, _floor, desks = office
    day = factories.weekday_ahead()
    while day.weekday() != 5:
        day += timedelta(days=1)
    client.sign_in("erin@example.com")
    response = client.submit(f"/desks/{desks[0].id}/book", {"date": day.isoformat(), "slot": "day"})
    assert response.status_code == 422
    assert "closed on Saturdays" in response.get_data(as_text=True)


def test_list_view_filters_and_the_plan_says_status_in_words(client, employee, office, db):
    site, floor, desks = office
    desks[0].attributes = ["standing"]
    db.commit()
    client.sign_in("erin@example.com")
    listing = client.get("/desks/?view=list&attr=standing").get_data(as_text=True)
    assert "2.01" in listing and "2.02" not in listing
    plan = client.get("/desks/").get_data(as_text=True)
    assert "Free (outlined)" in plan and "Taken (hatched)" in plan  # legend is not colour alone


def test_near_my_team_shows_where_my_department_sits(client, employee, office, db):
    _site, _floor, desks = office
    day = factories.weekday_ahead()
    teammate = factories.user(
        db, email="tm@example.com", name="Tara Team", department="Engineering"
    )
    db.flush()
    from portal.services import bookings as booking_service
    from portal.services.audit import Actor

    booking_service.book(
        db,
        Actor.system("test"),
        teammate,
        resource_id=desks[3].id,
        start=factories.at(day, 8),
        end=factories.at(day, 19),
    )
    db.commit()
    client.sign_in("erin@example.com")
    page = client.get(f"/desks/?date={day}").get_data(as_text=True)
    assert "Near my team (Engineering)" in page and "Tara Team · desk 2.04" in page


def test_desk_page_costs_a_fixed_number_of_queries(client, employee, db):
    from sqlalchemy import event

    site = factories.site(db, "berlin")
    floor = factories.floor(db, site)
    day = factories.weekday_ahead()
    client.sign_in("erin@example.com")
    client.get("/my-day")  # settle the session's last-seen write
    counts = []
    for extra_desks in (5, 40):
        for _ in range(extra_desks):
            desk = factories.desk(db, floor)
            people = factories.user(db, password=None)
            db.add(
                Booking(
                    resource=desk,
                    user=people,
                    created_by=people,
                    start_at=factories.at(day, 8),
                    end_at=factories.at(day, 19),
                    blocked_until=factories.at(day, 19),
                    status=BookingStatus.CONFIRMED,
                )
            )
        db.commit()
        statements: list[str] = []
        connection = db.connection()
        listener = lambda _c, _cur, sql, *rest: statements.append(sql)  # noqa: E731
        event.listen(connection, "before_cursor_execute", listener)
        assert client.get(f"/desks/?floor={floor.id}&date={day}").status_code == 200
        event.remove(connection, "before_cursor_execute", listener)
        counts.append([s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))])
    assert len(counts[0]) == len(counts[1]), counts[1]
    assert len(counts[0]) <= 10, "\n".join(counts[0])
