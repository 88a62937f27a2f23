"""Calendar subscription feeds: an employee subscribes their calendar program to a room, their own
bookings or (coordinators) a site's visitors; every feed passes the lint in tests/ical_lint.py and
reads back the same in two parsers; titles and names appear only where the owner could see them
in Foyer; a wrong, revoked or outdated address looks exactly like one that never existed."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from integrations import ical
from portal.models import AuditEvent, Booking, BookingPolicy, Visit
from portal.models.feeds import CalendarFeed
from portal.observability import FeedTokenRedaction
from portal.services import accounts, feeds
from portal.services.audit import Actor
from tests import factories
from tests.conftest import Browser
from tests.ical_lint import lint_feed

URL = re.compile(r'value="(http://[^"]+/feeds/([A-Za-z0-9_-]{43})\.ics)"')
HOST = "127.0.0.1"  # the test app's base URL is the default http://127.0.0.1:5000
SYSTEM = Actor.system("tests")


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"FEED_RATE_LIMIT": "12 per minute"}


# --- the writer, without a database ----------------------------------------------------------


def event(
    start: datetime, minutes: int = 60, zone: str = "Europe/Berlin", **kw: Any
) -> ical.CalendarEvent:
    values: dict[str, Any] = {
        "uid": f"booking-{start.timestamp():.0f}@{HOST}",
        "sequence": 2,
        "stamp": datetime(2026, 11, 2, 8, 30, 5, 123456, tzinfo=UTC),
        "created": datetime(2026, 11, 1, 7, 0, tzinfo=UTC),
        "start": start,
        "end": start + timedelta(minutes=minutes),
        "time_zone": zone,
        "summary": "Busy",
        "location": "Aurora, Floor 2, North wing, Berlin",
    }
    values.update(kw)
    return ical.CalendarEvent(**values)


def test_the_fast_writer_writes_exactly_what_icalendar_writes() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    awkward = [
        "Team sync · Zoë Müller",
        "Budget; Q3, Q4 \\ review \\N",
        "Line one\nline two\r\nline three\rfour",
        "日本語のタイトル" * 6,
        "x" * 73 + "\\" + "y" * 10,  # a backslash right at a fold
        "🎉 Launch party 🎉 " * 5,
        "",
    ]
    events = []
    for i, text in enumerate(awkward):
        start = datetime(2027, 3, 27 + i % 3, 9 + i, tzinfo=berlin)
        events.append(event(start, summary=text or "Booked", description=text, location=text))
    events.append(event(datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=1)))  # written in UTC
    events.append(
        event(
            datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")),
            zone="America/New_York",
        )
    )
    events.append(event(datetime(2027, 1, 4, 9, tzinfo=UTC), zone="UTC", created=None))
    events.append(event(datetime(2027, 1, 5, 9, tzinfo=UTC), status=ical.EventStatus.TENTATIVE))
    for item in events:
        assert ical._event_bytes.__wrapped__(item) == ical._vevent(item).to_ical()


def test_a_feed_is_stable_and_right_across_dst_in_berlin_and_new_york() -> None:
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    wall = [
        (datetime(2027, 3, 27, 9, tzinfo=berlin), "Europe/Berlin"),  # the Saturday before, CET
        (datetime(2027, 3, 29, 9, tzinfo=berlin), "Europe/Berlin"),  # the Monday after, CEST
        (datetime(2026, 10, 24, 9, tzinfo=berlin), "Europe/Berlin"),
        (datetime(2026, 10, 26, 9, tzinfo=berlin), "Europe/Berlin"),
        (datetime(2027, 3, 28, 1, 30, tzinfo=berlin), "Europe/Berlin"),  # spans the gap
        (datetime(2027, 3, 13, 9, tzinfo=new_york), "America/New_York"),
        (datetime(2027, 3, 15, 9, tzinfo=new_york), "America/New_York"),
        (datetime(2026, 11, 1, 1, 30, tzinfo=new_york, fold=1), "America/New_York"),  # 2nd 1:30
    ]
    # As bookings are stored: UTC instants (the end is 90 real minutes later, even over the gap).
    events = [
        event(start.astimezone(UTC), 90, zone, uid=f"booking-{i}@{HOST}")
        for i, (start, zone) in enumerate(wall)
    ]

    def build() -> bytes:
        return ical.feed(
            events,
            name="Aurora (room) · Berlin",
            first_day=date(2026, 10, 1),
            last_day=date(2027, 4, 30),
            pivot=datetime(2026, 11, 30, tzinfo=UTC),
        )

    linted = lint_feed(build(), rerender=build)
    for i, (start, _zone) in enumerate(wall):
        # Compared in UTC: Python never calls a fold=1 time equal to a time in another zone.
        first, last = (moment.astimezone(UTC) for moment in linted.instants(f"booking-{i}@{HOST}"))
        assert (first, last) == (
            start.astimezone(UTC),
            start.astimezone(UTC) + timedelta(minutes=90),
        )
    # 9:00 on both sides of each change: the UTC hour moves, the wall clock does not.
    assert linted.instants(f"booking-0@{HOST}")[0].astimezone(UTC).hour == 8
    assert linted.instants(f"booking-1@{HOST}")[0].astimezone(UTC).hour == 7
    assert linted.instants(f"booking-5@{HOST}")[0].astimezone(UTC).hour == 14
    assert linted.instants(f"booking-6@{HOST}")[0].astimezone(UTC).hour == 13
    data = build()
    assert data.count(b"BEGIN:VTIMEZONE") == 2
    assert b"TZID:America/New_York" in data and b"TZID:Europe/Berlin" in data


def test_a_huge_feed_keeps_what_is_nearest_today_and_stays_under_1_mb() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 11, 1, 8, tzinfo=berlin)
    events = [
        event(
            first + timedelta(minutes=30 * i),
            30,
            uid=f"booking-{i}@{HOST}",
            summary=f"Stand-up {i}",
        )
        for i in range(10_000)
    ]
    pivot = datetime(2027, 1, 1, tzinfo=UTC)

    def build() -> bytes:
        return ical.feed(
            events,
            name="Busy room",
            first_day=date(2026, 10, 31),
            last_day=date(2027, 6, 1),
            pivot=pivot,
        )

    linted = lint_feed(build(), rerender=build)
    kept = sorted(linted.events, key=lambda uid: int(uid.split("-")[1].split("@")[0]))
    assert 2_000 < len(kept) < 10_000
    nearest = min(range(10_000), key=lambda i: abs(events[i].start - pivot))
    assert f"booking-{nearest}@{HOST}" in linted.events  # today is always there
    assert f"booking-0@{HOST}" not in linted.events  # the oldest went first...
    assert f"booking-{nearest + 50}@{HOST}" in linted.events  # ...after the upcoming ones


def test_access_logs_never_hold_a_feed_token() -> None:
    token = "A" * 43
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    for name, message, args in [
        # gunicorn's access log: our access_log_format with a dict of atoms
        (
            "gunicorn.access",
            '%(h)s "%(r)s" %(s)s',
            {"h": "10.0.0.1", "r": f"GET /feeds/{token}.ics HTTP/1.1", "s": "200"},
        ),
        # the development server (werkzeug)
        (
            "werkzeug",
            '%s - - [%s] "%s" %s -',
            ("10.0.0.1", "now", f"GET /feeds/{token}.ics HTTP/1.1", "304"),
        ),
    ]:
        logger = logging.getLogger(name)
        handler = Keep()
        logger.addHandler(handler)
        level = logger.level  # other tests in this process may have quietened it
        logger.setLevel(logging.INFO)
        added = FeedTokenRedaction()
        if not any(isinstance(f, FeedTokenRedaction) for f in logger.filters):
            logger.addFilter(added)  # what configure_logging does for every app
        try:
            logger.warning(message, *(args if isinstance(args, tuple) else (args,)))
        finally:
            logger.removeHandler(handler)
            logger.removeFilter(added)
            logger.setLevel(level)
    assert len(seen) == 2
    assert all(token not in line and "/feeds/[redacted].ics" in line for line in seen), seen


# --- in the app ----------------------------------------------------------------------------------


@pytest.fixture
def office(db: Any) -> dict[str, Any]:
    site = factories.site(db, "berlin")
    db.add(BookingPolicy(site_id=site.id, show_booker_names=True))
    floor = factories.floor(db, site)
    room = factories.room(db, floor, name="Aurora")
    desk = factories.desk(db, floor, name="2.14")
    erin = factories.user(db, name="Erin Employee", email="erin@example.com", home_site=site)
    bob = factories.user(db, name="Bob Booker", email="bob@example.com", home_site=site)
    db.commit()
    return {"site": site, "floor": floor, "room": room, "desk": desk, "erin": erin, "bob": bob}


def book(
    db: Any, resource: Any, who: Any, start: datetime, minutes: int = 60, **kw: Any
) -> Booking:
    booking = Booking(
        resource=resource,
        user=who,
        created_by=who,
        start_at=start,
        end_at=start + timedelta(minutes=minutes),
        blocked_until=start + timedelta(minutes=minutes),
        **kw,
    )
    db.add(booking)
    db.commit()
    return booking


def subscribe(client: Browser, **form: Any) -> tuple[str, str, str]:
    """Create a feed on the page; returns (https address, token, page)."""
    response = client.submit("/feeds/", form)
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[:600]
    match = URL.search(page)
    assert match, "no address on the page"
    assert f'value="webcal://127.0.0.1:5000/feeds/{match.group(2)}.ics"' in page
    return match.group(1), match.group(2), page


def fetch(client: Browser, token: str, **headers: str) -> Any:
    return client.get(f"/feeds/{token}.ics", headers=headers)


def test_an_employee_subscribes_to_a_room_and_sees_only_what_foyer_shows_them(client, office, db):
    day = factories.weekday_ahead(days=3)
    mine = book(db, office["room"], office["erin"], factories.at(day, 9), title="My planning")
    theirs = book(db, office["room"], office["bob"], factories.at(day, 11), title="Board prep")
    gone = book(
        db, office["room"], office["bob"], factories.at(day, 14), title="Off", status="cancelled"
    )
    pending = book(db, office["room"], office["bob"], factories.at(day, 16), status="pending")
    client.sign_in("erin@example.com")

    page = client.get(f"/feeds/?resource={office['room'].id}").get_data(as_text=True)
    assert "Subscribe to Aurora" in page
    address, token, page = subscribe(
        client, kind="resource", resource_id=office["room"].id, privacy="details"
    )
    assert "Shown once" in page and "Google Calendar" in page and "Apple Calendar" in page
    assert "data-copy=" in page and "js/feeds.js" in page and "<script>" not in page
    feed = db.scalar(select(CalendarFeed).where(CalendarFeed.owner_id == office["erin"].id))
    assert feed.token_hash == feeds.digest(token) and token not in str(feed.token_hash)

    response = fetch(client, token)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"].startswith("private")
    assert "Content-Encoding" not in response.headers
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{40}"', etag)
    linted = lint_feed(response.data, rerender=lambda: fetch(client, token).data)
    summaries = {uid: str(e["summary"]) for uid, e in linted.events.items()}
    assert summaries == {
        f"booking-{mine.id}@{HOST}": "My planning · Erin Employee",
        f"booking-{theirs.id}@{HOST}": "Board prep · Bob Booker",
        f"booking-{pending.id}@{HOST}": "Booked · Bob Booker",
    }
    assert f"booking-{gone.id}@{HOST}" not in summaries  # cancelled: left out
    assert str(linted.events[f"booking-{pending.id}@{HOST}"]["status"]) == "TENTATIVE"
    assert linted.instants(f"booking-{theirs.id}@{HOST}")[0] == theirs.start_at

    # The calendar asks again with its ETag: nothing changed, nothing sent.
    again = fetch(client, token, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag

    # The site stops showing who booked: Bob's booking now reads Busy, Erin's own keeps its title.
    db.scalar(
        select(BookingPolicy).where(BookingPolicy.site_id == office["site"].id)
    ).show_booker_names = False
    db.commit()
    changed = fetch(client, token, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    linted = lint_feed(changed.data)
    assert str(linted.events[f"booking-{theirs.id}@{HOST}"]["summary"]) == "Busy"
    assert (
        str(linted.events[f"booking-{mine.id}@{HOST}"]["summary"]) == "My planning · Erin Employee"
    )
    assert b"Bob Booker" not in changed.data

    # Busy only: no titles at all, not even her own.
    client.submit(f"/feeds/{feed.id}/privacy", {"privacy": "busy"})
    busy = fetch(client, token)
    assert b"My planning" not in busy.data and b"Board prep" not in busy.data
    assert {str(e["summary"]) for e in lint_feed(busy.data).events.values()} == {"Busy"}

    # A booking moved: same UID, higher SEQUENCE, DTSTAMP from the change, a new ETag.
    before = busy.headers["ETag"]
    theirs.start_at += timedelta(minutes=30)
    theirs.end_at += timedelta(minutes=30)
    theirs.blocked_until = theirs.end_at
    theirs.sequence = 1
    db.commit()
    moved = fetch(client, token, **{"If-None-Match": before})
    assert moved.status_code == 200
    vevent = lint_feed(moved.data).events[f"booking-{theirs.id}@{HOST}"]
    assert int(vevent["sequence"]) == 1 and vevent.decoded("dtstart") == theirs.start_at
    assert vevent.decoded("dtstamp") == theirs.updated_at.replace(microsecond=0)
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.object_type == "calendar_feeds")
    )
    assert {"feed.created", "feed.privacy_changed"} <= set(actions)


def test_wrong_revoked_and_outdated_addresses_all_look_the_same(client, office, db):
    client.sign_in("erin@example.com")
    _, first, _ = subscribe(client, kind="mine", privacy="details")
    feed = db.scalar(select(CalendarFeed).where(CalendarFeed.owner_id == office["erin"].id))
    assert fetch(client, first).status_code == 200

    page = client.submit(f"/feeds/{feed.id}/regenerate").get_data(as_text=True)
    second = URL.search(page).group(2)
    assert second != first
    assert fetch(client, second).status_code == 200
    refusals = [
        fetch(client, first),  # regenerated away
        fetch(client, "B" * 43),  # well-formed, never issued
        fetch(client, first[:-1] + ("A" if first[-1] != "A" else "B")),  # one character off
        fetch(client, "short"),
    ]
    client.submit(f"/feeds/{feed.id}/revoke")
    refusals.append(fetch(client, second))  # revoked
    assert {r.status_code for r in refusals} == {404}
    assert len({r.data for r in refusals}) == 1
    assert (
        len(
            {
                tuple(
                    sorted(
                        (k, v)
                        for k, v in r.headers.items()
                        if k
                        not in (
                            "X-Request-ID",
                            "X-RateLimit-Remaining",
                            "X-RateLimit-Reset",
                            "Retry-After",
                        )
                    )
                )
                for r in refusals
            }
        )
        == 1
    )
    assert "Erin" not in refusals[0].get_data(as_text=True)


def test_a_feed_stops_when_its_owner_may_no_longer_see_it(client, office, db):
    client.sign_in("erin@example.com")
    _, room_token, _ = subscribe(
        client, kind="resource", resource_id=office["room"].id, privacy="busy"
    )
    _, desk_token, _ = subscribe(
        client, kind="resource", resource_id=office["desk"].id, privacy="busy"
    )
    assert fetch(client, room_token).status_code == 200

    # The room is restricted to another department: Erin could not book it any more.
    office["room"].allowed_departments = ["Finance"]
    db.commit()
    assert fetch(client, room_token).status_code == 404
    assert fetch(client, desk_token).status_code == 200
    # A restricted room cannot be subscribed to either (404, as for a room that does not exist).
    assert client.get(f"/feeds/?resource={office['room'].id}").status_code == 404
    assert (
        client.submit(
            "/feeds/", {"kind": "resource", "resource_id": office["room"].id, "privacy": "busy"}
        ).status_code
        == 404
    )

    # Erin leaves: every feed of hers answers 404.
    accounts.deactivate_user(db, SYSTEM, office["erin"])
    db.commit()
    assert fetch(client, desk_token).status_code == 404


def test_my_feed_holds_my_bookings_and_my_visitors_and_coordinators_get_the_site(
    client, office, db
):
    site = office["site"]
    jonas = factories.user(
        db, name="Jonas Coordinator", email="jonas@example.com", coordinator_of=site
    )
    day = factories.weekday_ahead(days=2)
    desk = book(db, office["desk"], office["erin"], factories.at(day, 8), 600)
    book(db, office["room"], office["bob"], factories.at(day, 9), title="Not mine")
    visit = Visit(
        site_id=site.id,
        host_id=office["erin"].id,
        visitor_name="Anna Kowalska",
        visitor_company="Acme",
        expected_start=factories.at(day, 10),
        expected_end=factories.at(day, 12),
        local_date=day,
    )
    db.add(visit)
    db.commit()

    client.sign_in("erin@example.com")
    assert "Visitors at" not in client.get("/feeds/").get_data(as_text=True)
    _, token, _ = subscribe(client, kind="mine", privacy="details")
    linted = lint_feed(fetch(client, token).data)
    assert {str(e["summary"]) for e in linted.events.values()} == {
        "Desk 2.14",
        "Visitor: Anna Kowalska (Acme)",
    }
    assert (
        f"visit-{visit.id}@{HOST}" in linted.events and f"booking-{desk.id}@{HOST}" in linted.events
    )
    # An employee cannot subscribe to a site's visitors.
    assert (
        client.submit(
            "/feeds/", {"kind": "visitors", "site_id": site.id, "privacy": "details"}
        ).status_code
        == 404
    )
    # A second "my bookings" feed is refused with a message, not a 500.
    again = client.submit("/feeds/", {"kind": "mine", "privacy": "details"})
    assert again.status_code == 422 and "already subscribe" in again.get_data(as_text=True)

    coordinator = Browser(client.application, client.response_wrapper)
    coordinator.sign_in("jonas@example.com")
    assert "Visitors at Berlin" in coordinator.get("/feeds/").get_data(as_text=True)
    _, site_token, _ = subscribe(coordinator, kind="visitors", site_id=site.id, privacy="details")
    site_feed = lint_feed(fetch(coordinator, site_token).data)
    assert [str(e["summary"]) for e in site_feed.events.values()] == [
        "Visitor: Anna Kowalska (Acme) · host Erin Employee"
    ]
    visit.status = "cancelled"
    db.commit()
    assert not lint_feed(fetch(coordinator, site_token).data).events
    # No longer coordinating: the feed stops.
    grant = next(g for g in jonas.grants if g.role == "coordinator")
    accounts.revoke_role(db, SYSTEM, jonas, grant)
    db.commit()
    assert fetch(coordinator, site_token).status_code == 404


def test_the_feed_address_is_rate_limited_per_address(client, office, db):
    client.sign_in("erin@example.com")
    _, token, _ = subscribe(client, kind="mine", privacy="busy")
    answers = [fetch(client, "C" * 43).status_code for _ in range(11)]
    assert answers.count(404) == 11
    assert fetch(client, token).status_code == 200  # the 12th of the minute
    assert fetch(client, token).status_code == 429
    assert fetch(client, "C" * 43).status_code == 429


def test_the_feeds_page_regenerate_revoke_and_the_admin_list(client, office, db, admin):
    client.sign_in("erin@example.com")
    empty = client.get("/feeds/").get_data(as_text=True)
    assert "No feeds yet" in empty and "Subscribe to my bookings" in empty
    _, token, _ = subscribe(client, kind="mine", privacy="details")
    fetch(client, token)
    listing = client.get("/feeds/").get_data(as_text=True)
    assert (
        "Erin Employee&#39;s bookings and visitors" in listing
        and "Last fetched just now" in listing
    )
    assert token not in listing  # shown once, never again
    fragment = client.get("/feeds/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "My feeds" in fragment
    boosted = client.get("/feeds/", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)
    bad = client.submit("/feeds/", {"kind": "mine", "privacy": "everything"})
    assert bad.status_code == 422
    feed = db.scalar(select(CalendarFeed).where(CalendarFeed.owner_id == office["erin"].id))

    other = Browser(client.application, client.response_wrapper)
    other.sign_in("bob@example.com")
    assert other.submit(f"/feeds/{feed.id}/regenerate").status_code == 404
    assert other.submit(f"/feeds/{feed.id}/revoke").status_code == 404
    assert other.get("/admin/feeds/").status_code == 403
    assert fetch(client, token).status_code == 200

    boss = Browser(client.application, client.response_wrapper)
    boss.sign_in(admin.email)
    admin_page = boss.get("/admin/feeds/").get_data(as_text=True)
    assert "Erin Employee" in admin_page and "erin@example.com" in admin_page
    assert boss.submit(f"/feeds/{feed.id}/revoke").status_code == 303
    assert fetch(client, token).status_code == 404
    assert "No feeds yet" in client.get("/feeds/").get_data(as_text=True)
    assert "Calendar feeds" in boss.get("/feeds/").get_data(as_text=True)
