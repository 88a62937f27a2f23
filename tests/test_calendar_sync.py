"""Two-way room-calendar sync against a real Radicale server on loopback: bookings made in Foyer
appear on the room's calendar (and their changes and cancellations follow), events put on the
calendar become bookings under the same rules or are declined with a mail to their organiser, an
unchanged calendar costs one request, and every way a server can fail comes back as a clear
error on the link with a retry scheduled. Then the admin pages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.calendar_sync.base import SyncError
from integrations.calendar_sync.caldav_adapter import CalDavCalendar
from portal.db import utcnow
from portal.models import Booking, BookingStatus, OutboxMessage
from portal.models.calendar_sync import CalendarLink, LinkState
from portal.services import bookings, calendar_sync, secret_box
from portal.services.audit import Actor
from tests import factories
from tests.radicale_server import Radicale, free_port, running_radicale

KEY = b"calendar-sync-test-key"
HOST = "127.0.0.1"  # the default Sender's host: UIDs are booking-<id>@127.0.0.1


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with running_radicale(tmp_path_factory.mktemp("radicale") / "storage") as server:
        yield server


_names = iter(range(1, 1_000_000))


@pytest.fixture
def room_calendar(radicale: Radicale) -> str:
    """A fresh, empty calendar for this test's room; its address."""
    name = f"room-{next(_names)}-{time.monotonic_ns()}"
    radicale.make_calendar(name)
    return radicale.calendar_url(name)


@pytest.fixture
def linked_room(db: Session, radicale: Radicale, room_calendar: str) -> dict[str, Any]:
    site = factories.site(db)
    room = factories.room(db, name="Aurora", capacity=8)
    owner = factories.user(db, name="Olga Owner", email="olga@example.com", admin=True)
    booker = factories.user(db, name="Lena Fischer", email="lena@example.com")
    link = CalendarLink(
        resource=room,
        provider="caldav",
        settings={"url": room_calendar, "username": radicale.user},
        secret_sealed=secret_box.seal(KEY, radicale.password),
        created_by_id=owner.id,
    )
    db.add(link)
    db.commit()
    return {"site": site, "room": room, "link": link, "owner": owner, "booker": booker}


def sync(session_factory: Any, link: CalendarLink, **kwargs: Any) -> calendar_sync.SyncResult:
    with session_factory() as session:
        return calendar_sync.sync_link(session, KEY, link.id, force=True, **kwargs)


def remote_events(radicale: Radicale, url: str) -> dict[str, Any]:
    """UID -> VEVENT of every event on the calendar, read back with the caldav client."""
    calendar = radicale.client().calendar(url=url)
    events = {}
    for obj in calendar.events():
        vevent = Calendar.from_ical(obj.data).walk("VEVENT")[0]
        events[str(vevent["UID"])] = vevent
    return events


def ics(
    uid: str, start: datetime, end: datetime, summary: str, organizer: str = "", extra: str = ""
) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Tests//Someone's calendar app//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20261201T080000Z",
        f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        f"SUMMARY:{summary}",
    ]
    if organizer:
        lines.append(f"ORGANIZER;CN=Someone:mailto:{organizer}")
    if extra:
        lines.append(extra)
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def put_remote(radicale: Radicale, url: str, uid: str, body: str) -> str:
    """Someone adds (or edits) an event on the room's calendar from their own client."""
    response = radicale.client().put(f"{url}{uid}.ics", body, {"Content-Type": "text/calendar"})
    assert response.status in (201, 204), response.status
    return f"{url}{uid}.ics"


def book(
    db: Session, who: Any, room: Any, start: datetime, end: datetime, title: str = ""
) -> Booking:
    booking = bookings.book(
        db, Actor.system("tests"), who, resource_id=room.id, start=start, end=end, title=title
    )
    db.commit()
    return booking


def organiser_mail(db: Session, address: str) -> list[OutboxMessage]:
    db.expire_all()
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.to_address == address)
            .order_by(OutboxMessage.id)
        )
    )


# --- pushing: Foyer -> calendar ------------------------------------------------------------


def test_a_booking_made_in_foyer_appears_on_the_room_calendar_and_follows_changes(
    db, session_factory, radicale, linked_room
):
    room, link, lena = linked_room["room"], linked_room["link"], linked_room["booker"]
    day = factories.weekday_ahead(days=2)
    booking = book(db, lena, room, factories.at(day, 10), factories.at(day, 11), "Design review")

    radicale.reset_counts()
    result = sync(session_factory, link)
    assert result.ok and result.pushed == 1, result
    uid = f"booking-{booking.id}@{HOST}"
    calendar_path = "/" + link.settings["url"].split("/", 3)[3]
    assert ("PUT", f"{calendar_path}{uid}.ics") in radicale.requests  # named after its UID
    [event] = remote_events(radicale, link.settings["url"]).values()
    assert str(event["UID"]) == uid
    assert str(event["SUMMARY"]) == "Design review – Room Aurora"
    assert event["DTSTART"].dt == factories.at(day, 10)
    assert str(event["DTSTART"].params["TZID"]) == "Europe/Berlin"

    # Moved in Foyer: the calendar follows (same UID, higher SEQUENCE).
    bookings.change(
        db,
        Actor.system("tests"),
        lena,
        booking,
        start=factories.at(day, 14),
        end=factories.at(day, 15),
    )
    db.commit()
    assert sync(session_factory, link).pushed == 1
    [event] = remote_events(radicale, link.settings["url"]).values()
    assert str(event["UID"]) == uid and int(event["SEQUENCE"]) == 1
    assert event["DTSTART"].dt == factories.at(day, 14)

    # Nothing changed: nothing is written, and our own write is not pulled back as a booking.
    radicale.reset_counts()
    again = sync(session_factory, link)
    assert (again.pushed, again.booked, again.declined) == (0, 0, 0)
    assert radicale.requests == [("REPORT", "/" + link.settings["url"].split("/", 3)[3])]
    assert (
        db.scalar(
            select(Booking.id).where(Booking.resource_id == room.id, Booking.id != booking.id)
        )
        is None
    )

    # Cancelled in Foyer: the event leaves the calendar.
    bookings.cancel(db, Actor.system("tests"), booking)
    db.commit()
    assert sync(session_factory, link).removed == 1
    assert remote_events(radicale, link.settings["url"]) == {}
    db.expire_all()
    assert db.get(CalendarLink, link.id).state == LinkState.OK


def test_committing_a_booking_of_a_linked_room_asks_for_a_sync_and_others_do_not(
    app, db, linked_room
):
    jobs = app.extensions["foyer.jobs"]
    asked: list[set[int]] = []
    jobs.calendars_soon = asked.append  # the queue itself is tested in test_mail_and_jobs.py
    day = factories.weekday_ahead(days=3)
    other_room = factories.room(db, name="Borealis")
    book(db, linked_room["booker"], other_room, factories.at(day, 9), factories.at(day, 10))
    assert asked == []
    book(
        db, linked_room["booker"], linked_room["room"], factories.at(day, 9), factories.at(day, 10)
    )
    assert asked == [{linked_room["link"].id}]


# --- pulling: calendar -> Foyer ------------------------------------------------------------


def test_an_event_put_on_the_calendar_becomes_a_booking_and_its_changes_follow(
    db, session_factory, radicale, linked_room
):
    room, link, lena = linked_room["room"], linked_room["link"], linked_room["booker"]
    url = link.settings["url"]
    day = factories.weekday_ahead(days=4)
    put_remote(
        radicale,
        url,
        "ext-1",
        ics(
            "ext-1@phone",
            factories.at(day, 9),
            factories.at(day, 10),
            "Standup",
            "lena@example.com",
        ),
    )

    result = sync(session_factory, link)
    assert result.ok and result.booked == 1 and result.full, result
    db.expire_all()
    [booking] = db.scalars(select(Booking).where(Booking.resource_id == room.id)).all()
    assert booking.user_id == lena.id and booking.title == "Standup"
    assert (booking.start_at, booking.end_at) == (factories.at(day, 9), factories.at(day, 10))
    assert booking.status == BookingStatus.CONFIRMED
    assert organiser_mail(db, "lena@example.com") == []  # their calendar has it already

    # Moved on the calendar: the booking moves.
    put_remote(
        radicale,
        url,
        "ext-1",
        ics(
            "ext-1@phone",
            factories.at(day, 15),
            factories.at(day, 16),
            "Standup (moved)",
            "lena@example.com",
        ),
    )
    assert sync(session_factory, link).changed == 1
    db.expire_all()
    booking = db.get(Booking, booking.id)
    assert booking.start_at == factories.at(day, 15) and booking.title == "Standup (moved)"

    # Deleted on the calendar: the booking is cancelled.
    assert radicale.client().delete(f"{url}ext-1.ics").status in (200, 204)
    assert sync(session_factory, link).cancelled == 1
    db.expire_all()
    assert db.get(Booking, booking.id).status == BookingStatus.CANCELLED


def test_a_conflicting_event_is_declined_and_its_organiser_is_told_why(
    db, session_factory, radicale, linked_room
):
    room, link = linked_room["room"], linked_room["link"]
    url = link.settings["url"]
    day = factories.weekday_ahead(days=5)
    taken = book(
        db, linked_room["booker"], room, factories.at(day, 10), factories.at(day, 12), "Board"
    )
    colleague = factories.user(db, name="Max Muster", email="max@example.com")
    db.commit()
    put_remote(
        radicale,
        url,
        "clash",
        ics(
            "clash@laptop",
            factories.at(day, 11),
            factories.at(day, 13),
            "Offsite prep",
            colleague.email,
        ),
    )
    put_remote(
        radicale,
        url,
        "stranger",
        ics(
            "stranger@x",
            factories.at(day, 16),
            factories.at(day, 17),
            "Sales call",
            "someone@elsewhere.example",
        ),
    )

    result = sync(session_factory, link)
    assert result.ok and result.declined == 2 and result.booked == 0, result
    remaining = remote_events(radicale, url)
    assert set(remaining) == {f"booking-{taken.id}@{HOST}"}  # declined events are removed
    [mail] = organiser_mail(db, "max@example.com")
    assert mail.subject == "Declined: Offsite prep – Aurora"
    assert "already booked then" in mail.text_body
    [stranger_mail] = organiser_mail(db, "someone@elsewhere.example")
    assert "has no Foyer account" in stranger_mail.text_body
    assert db.scalar(select(Booking.id).where(Booking.user_id == colleague.id)) is None

    # The next rounds do not decline (or mail) again.
    assert sync(session_factory, link).declined == 0
    assert len(organiser_mail(db, "max@example.com")) == 1


def test_an_event_that_repeats_forever_is_declined_at_once(
    db, session_factory, radicale, linked_room
):
    link = linked_room["link"]
    url = link.settings["url"]
    day = factories.weekday_ahead(days=2)
    put_remote(
        radicale,
        url,
        "forever",
        ics(
            "forever@x",
            factories.at(day, 9),
            factories.at(day, 10),
            "Daily sync",
            "lena@example.com",
            extra="RRULE:FREQ=MINUTELY",
        ),
    )

    started = time.monotonic()
    result = sync(session_factory, link)
    assert time.monotonic() - started < 5
    assert result.declined == 1 and result.booked == 0
    [mail] = organiser_mail(db, "lena@example.com")
    assert "Repeating events cannot book this room" in mail.text_body
    assert remote_events(radicale, url) == {}


def test_an_event_without_organiser_is_booked_for_whoever_linked_the_calendar(
    db, session_factory, radicale, linked_room
):
    link = linked_room["link"]
    day = factories.weekday_ahead(days=6)
    put_remote(
        radicale,
        link.settings["url"],
        "walkin",
        ics("walkin@x", factories.at(day, 13), factories.at(day, 14), "Interview"),
    )
    assert sync(session_factory, link).booked == 1
    db.expire_all()
    [booking] = db.scalars(
        select(Booking).where(Booking.resource_id == linked_room["room"].id)
    ).all()
    assert booking.user_id == linked_room["owner"].id


# --- an unchanged calendar costs one request ------------------------------------------------


def test_an_incremental_sync_of_1000_unchanged_events_is_one_request(radicale, room_calendar):
    start = datetime(2027, 1, 4, 8, tzinfo=UTC)
    whole = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Tests//bulk//EN"]
    for n in range(1000):
        begin = start + timedelta(hours=n)
        whole += [
            "BEGIN:VEVENT",
            f"UID:bulk-{n}@x",
            "DTSTAMP:20261201T080000Z",
            f"DTSTART:{begin:%Y%m%dT%H%M%SZ}",
            f"DTEND:{begin + timedelta(minutes=30):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Event {n}",
            "END:VEVENT",
        ]
    whole += ["END:VCALENDAR", ""]
    # One PUT of a whole calendar: Radicale stores one object per UID.
    response = radicale.client().put(
        room_calendar, "\r\n".join(whole), {"Content-Type": "text/calendar"}
    )
    assert response.status in (201, 204)
    adapter = CalDavCalendar(room_calendar, radicale.user, radicale.password)

    radicale.reset_counts()
    first = adapter.changes_since(None)
    assert len(first.changed) == 1000 and first.full and first.token
    assert radicale.count() == 1  # even the full listing carries the data: no GET per event

    radicale.reset_counts()
    again = adapter.changes_since(first.token)
    assert (again.changed, again.deleted) == ([], [])
    assert radicale.requests == [("REPORT", "/" + room_calendar.split("/", 3)[3])]


def test_an_expired_sync_token_falls_back_to_a_full_listing(
    db, session_factory, radicale, linked_room
):
    link = linked_room["link"]
    day = factories.weekday_ahead(days=2)
    book(
        db, linked_room["booker"], linked_room["room"], factories.at(day, 9), factories.at(day, 10)
    )
    assert sync(session_factory, link).pushed == 1
    db.expire_all()
    stored = db.get(CalendarLink, link.id)
    stored.sync_token = "http://radicale.org/ns/sync/" + "0" * 64  # a token the server never gave
    db.commit()
    result = sync(session_factory, link)
    assert result.ok and result.full and (result.pushed, result.booked) == (0, 0)


# --- bad servers ---------------------------------------------------------------------------


class BrokenCalDav(BaseHTTPRequestHandler):
    """A tiny server on loopback that answers CalDAV requests badly, in one of several ways."""

    mode = "garbage"

    def do_REPORT(self) -> None:  # noqa: N802 - the HTTP method's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.mode == "slow":
            time.sleep(1.5)
        if self.mode == "500":
            self._answer(500, b"Internal Server Error", "text/plain")
            return
        if self.mode == "not-xml":
            self._answer(207, b"<html><body>Welcome to our portal", "text/xml")
            return
        data = "BEGIN:VCALENDAR\nTHIS IS NOT: ICALENDAR\n\x00\x01 {garbage}\nBEGIN:VEVENT\n"
        body = (
            (
                '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
                "<d:sync-token>t1</d:sync-token><d:response><d:href>/cal/bad.ics</d:href><d:propstat><d:prop>"
                f'<d:getetag>"1"</d:getetag><c:calendar-data>{data}</c:calendar-data>'
                "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"
            )
            .encode()
            .replace(b"\x00", b"")
            .replace(b"\x01", b"")
        )
        self._answer(207, body, "application/xml; charset=utf-8")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def broken_server() -> Iterator[tuple[str, type[BrokenCalDav]]]:
    handler = type("Handler", (BrokenCalDav,), {})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cal/", handler
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("mode", "transient", "says"),
    [
        ("garbage", False, "not valid iCalendar"),
        ("not-xml", False, "not valid XML"),
        ("500", True, "HTTP 500"),
        ("slow", True, "no answer from 127.0.0.1"),
    ],
)
def test_a_server_that_answers_badly_is_a_clear_sync_error(broken_server, mode, transient, says):
    url, handler = broken_server
    handler.mode = mode
    adapter = CalDavCalendar(url, "u", "p", timeout=0.5)
    with pytest.raises(SyncError) as raised:
        adapter.changes_since(None)
    assert raised.value.transient is transient
    assert says in str(raised.value)


def test_a_wrong_password_and_nothing_listening_are_clear_sync_errors(radicale, room_calendar):
    with pytest.raises(SyncError) as refused:
        CalDavCalendar(room_calendar, radicale.user, "not-the-password").changes_since(None)
    assert refused.value.transient is False
    assert "refused the user name or password (HTTP 401)" in str(refused.value)

    nobody = f"http://127.0.0.1:{free_port()}/cal/"
    started = time.monotonic()
    with pytest.raises(SyncError) as unreachable:
        CalDavCalendar(nobody, "u", "p", timeout=2).changes_since(None)
    assert unreachable.value.transient is True
    assert "could not connect to 127.0.0.1" in str(unreachable.value)
    assert time.monotonic() - started < 2


def test_failures_are_recorded_on_the_link_with_backoff_and_a_success_clears_them(
    db, session_factory, radicale, linked_room, broken_server
):
    link = linked_room["link"]
    url, handler = broken_server
    handler.mode = "500"
    good_url = link.settings["url"]
    link.settings = {"url": url, "username": radicale.user}
    db.commit()
    now = utcnow()
    first = sync(session_factory, link, now=now)
    db.expire_all()
    stored = db.get(CalendarLink, link.id)
    assert not first.ok
    assert stored.state == LinkState.RETRYING and stored.failures == 1
    assert "HTTP 500" in stored.last_error
    assert stored.next_attempt_at == now + timedelta(seconds=30)
    sync(session_factory, link, now=now)
    db.expire_all()
    stored = db.get(CalendarLink, link.id)
    assert stored.failures == 2 and stored.next_attempt_at == now + timedelta(minutes=1)

    # A link that is not due is left alone by the periodic run.
    with session_factory() as session:
        assert calendar_sync.sync_due(session, KEY, now=now) == []

    # A wrong password is not retried quickly: the link shows as failing until someone fixes it.
    stored.settings = {"url": good_url, "username": radicale.user}
    stored.secret_sealed = secret_box.seal(KEY, "wrong")
    db.commit()
    sync(session_factory, link, now=now)
    db.expire_all()
    stored = db.get(CalendarLink, link.id)
    assert stored.state == LinkState.FAILING and "HTTP 401" in stored.last_error

    stored.secret_sealed = secret_box.seal(KEY, radicale.password)
    db.commit()
    later = now + timedelta(hours=1)
    with session_factory() as session:
        [result] = calendar_sync.sync_due(session, KEY, now=later)
    assert result.ok
    db.expire_all()
    stored = db.get(CalendarLink, link.id)
    assert (stored.state, stored.failures, stored.last_error) == (LinkState.OK, 0, "")
    assert stored.last_synced_at == later and stored.next_attempt_at == later + timedelta(minutes=1)


def test_a_secret_sealed_with_another_key_asks_for_it_again(db, session_factory, linked_room):
    link = linked_room["link"]
    with session_factory() as session:
        result = calendar_sync.sync_link(session, b"another-key", link.id, force=True)
    assert not result.ok and "enter it again" in result.error
    db.expire_all()
    assert db.get(CalendarLink, link.id).state == LinkState.FAILING


# --- the admin pages -------------------------------------------------------------------------


@pytest.fixture
def coordinators(db: Session) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    room = factories.room(db, factories.floor(db, berlin), name="Aurora")
    other_room = factories.room(db, factories.floor(db, new_york), name="Hudson")
    jonas = factories.user(db, email="jonas@example.com", coordinator_of=berlin)
    maya = factories.user(db, email="maya@example.com", coordinator_of=new_york)
    db.commit()
    return {"room": room, "other_room": other_room, "jonas": jonas, "maya": maya}


def link_form(room_id: int, url: str, password: str, **extra: str) -> dict[str, Any]:
    return {
        "resource": room_id,
        "provider": "caldav",
        "caldav_url": url,
        "caldav_username": "room-sync",
        "secret": password,
        **extra,
    }


def test_a_coordinator_links_a_room_syncs_it_and_never_sees_the_password_again(
    app, client, db, radicale, room_calendar, coordinators
):
    client.sign_in("jonas@example.com")
    page = client.get("/admin/calendars/")
    assert page.status_code == 200 and "No linked calendars yet" in page.get_data(as_text=True)
    assert "Hudson" not in page.get_data(as_text=True)  # another site's room is not offered

    response = client.submit(
        "/admin/calendars/", link_form(coordinators["room"].id, room_calendar, radicale.password)
    )
    assert response.status_code == 303
    link = db.scalar(select(CalendarLink))
    assert link.settings == {"url": room_calendar, "username": "room-sync"}
    assert radicale.password not in link.secret_sealed
    assert (
        secret_box.unseal(app.config["SECRET_KEY"].encode(), link.secret_sealed)
        == radicale.password
    )

    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert radicale.password not in detail and link.secret_sealed not in detail
    assert "Waiting for the first sync" in detail

    tested = client.submit(f"/admin/calendars/{link.id}/test", follow_redirects=True)
    assert "Connected" in tested.get_data(as_text=True)

    day = factories.weekday_ahead(days=2)
    put_remote(
        radicale,
        room_calendar,
        "desk-phone",
        ics(
            "desk-phone@x",
            factories.at(day, 9),
            factories.at(day, 10),
            "Hiring panel",
            "jonas@example.com",
        ),
    )
    synced = client.submit(f"/admin/calendars/{link.id}/sync", follow_redirects=True)
    text = synced.get_data(as_text=True)
    assert "Synced: 1 booked from it." in text and "In sync" in text
    db.expire_all()
    assert (
        db.scalar(select(Booking).where(Booking.resource_id == coordinators["room"].id)).title
        == "Hiring panel"
    )

    # Saving again without a password keeps the stored one.
    kept = link.secret_sealed
    response = client.submit(
        f"/admin/calendars/{link.id}", link_form(coordinators["room"].id, room_calendar, "")
    )
    assert response.status_code == 303
    db.expire_all()
    assert db.get(CalendarLink, link.id).secret_sealed == kept


def test_a_broken_link_shows_its_last_error_in_the_list(client, db, coordinators):
    link = CalendarLink(
        resource=coordinators["room"],
        provider="caldav",
        settings={"url": f"http://127.0.0.1:{free_port()}/cal/", "username": "x"},
        secret_sealed="",
        state=LinkState.RETRYING,
        failures=2,
        last_error="could not connect to 127.0.0.1 (ConnectionError)",
    )
    db.add(link)
    db.commit()
    client.sign_in("jonas@example.com")
    page = client.get("/admin/calendars/").get_data(as_text=True)
    assert "Retrying" in page and "could not connect to 127.0.0.1 (ConnectionError)" in page


def test_bad_input_answers_422_with_the_messages_beside_the_fields(client, db, coordinators):
    client.sign_in("jonas@example.com")
    room_id = coordinators["room"].id
    response = client.submit(
        "/admin/calendars/",
        {"resource": room_id, "provider": "caldav", "caldav_url": "ftp://nope", "secret": ""},
        htmx=True,
    )
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert 'id="calendar-link-form"' in text and "<html" not in text  # the fragment
    assert "Enter an address starting with https://" in text
    assert "Enter the user name." in text

    response = client.submit(
        "/admin/calendars/", link_form(room_id, "https://dav.example.com/x/", "")
    )
    assert response.status_code == 422 and "Enter the password." in response.get_data(as_text=True)

    response = client.submit(
        "/admin/calendars/",
        {
            "resource": room_id,
            "provider": "google",
            "google_calendar_id": "c_1",
            "secret": "not json",
        },
    )
    assert response.status_code == 422
    assert "Paste the service account" in response.get_data(as_text=True)

    response = client.submit(
        "/admin/calendars/",
        link_form(room_id, "https://dav.example.com/x/", "pw", provider="exchange2003"),
    )
    assert response.status_code == 422
    assert db.scalar(select(CalendarLink)) is None  # nothing half-written


def test_another_sites_coordinator_gets_404_and_employees_get_nothing(
    client, db, coordinators, employee
):
    link = CalendarLink(
        resource=coordinators["room"],
        provider="caldav",
        settings={"url": "https://x/", "username": "u"},
        secret_sealed="s",
    )
    db.add(link)
    db.commit()
    client.sign_in("maya@example.com")
    assert client.get(f"/admin/calendars/{link.id}").status_code == 404
    for action in ("sync", "test", "remove", "pause"):
        assert client.submit(f"/admin/calendars/{link.id}/{action}").status_code == 404
    assert (
        client.submit(
            f"/admin/calendars/{link.id}", link_form(coordinators["room"].id, "https://y/", "pw")
        ).status_code
        == 404
    )
    # Nor may she link a Berlin room through the create form.
    response = client.submit(
        "/admin/calendars/", link_form(coordinators["room"].id, "https://y/", "pw")
    )
    assert response.status_code == 422
    assert "Aurora" not in client.get("/admin/calendars/").get_data(as_text=True)
    db.expire_all()
    assert db.get(CalendarLink, link.id).settings["url"] == "https://x/"

    client.get("/sign-out")
    client.sign_in("erin@example.com")
    assert client.get("/admin/calendars/").status_code in (403, 404)
