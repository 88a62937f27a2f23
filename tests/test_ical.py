"""Invitations a calendar program trusts: linted by hand (no maintained validator exists), read back
by two independent parsers (icalendar, and vobject, which builds its zones from our VTIMEZONEs), the
same bytes every time, and the right instants on both sides of a DST change in Berlin and New York."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from integrations import ical
from portal.models import Booking, Building, Desk, Floor, Room, Site, User
from tests.ical_lint import vobject_read

ORGANIZER = ical.Person("foyer@foyer.example.com", "Foyer")
HOST = "foyer.example.com"
CHANGED = datetime(2026, 11, 2, 8, 30, 5, 123456, tzinfo=UTC)


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]


def a_booking(
    start: datetime,
    end: datetime,
    *,
    zone: str = "Europe/Berlin",
    title: str = "",
    status: str = "confirmed",
    sequence: int = 0,
    room: bool = False,
    booking_id: int = 42,
    person: str = "Zoë Müller",
) -> Booking:
    """A booking as the services hand it over, without a database."""
    site = Site(slug="s", name="Berlin" if zone == "Europe/Berlin" else "New York", time_zone=zone)
    floor = Floor(name="Floor 2", level=2, building=Building(name="North wing", site=site))
    resource = (
        Room(name="Aurora", site=site, floor=floor, capacity=8)
        if room
        else Desk(name="2.14", site=site, floor=floor)
    )
    return Booking(
        id=booking_id,
        resource=resource,
        user=User(email="zoe@example.com", name=person),
        title=title,
        start_at=start.astimezone(UTC),
        end_at=end.astimezone(UTC),
        status=status,
        sequence=sequence,
        created_at=CHANGED - timedelta(days=1),
        updated_at=CHANGED,
    )


def invite(booking: Booking, method: str = "REQUEST") -> bytes:
    return ical.invitation(ical.event_for_booking(booking, host=HOST, organizer=ORGANIZER), method)


def unfold(data: bytes) -> list[str]:
    return data.decode("utf-8").replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]


def lint(data: bytes, method: str) -> None:
    """What Google, Outlook and Apple need, checked line by line."""
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF"
    assert b"\r" not in data.replace(b"\r\n", b""), "bare CR"
    for physical in data.split(b"\r\n"):
        assert len(physical) <= 75, f"line longer than 75 octets: {physical!r}"
        physical.decode("utf-8")  # folding never splits a character
    lines = unfold(data)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    stack: list[str] = []
    for line in lines:
        if line.startswith("BEGIN:"):
            stack.append(line[6:])
        elif line.startswith("END:"):
            assert stack.pop() == line[4:]
    assert stack == []
    assert "VERSION:2.0" in lines and f"METHOD:{method}" in lines
    assert any(line.startswith("PRODID:") for line in lines)
    assert not any(line.startswith("UID:") for line in lines[: lines.index("BEGIN:VEVENT")]), (
        "a calendar-level UID (Calendar.new) would change on every render"
    )
    # Every TZID used has its VTIMEZONE.
    used = set(re.findall(r";TZID=([^:;]+)", "\n".join(lines)))
    defined = {line[5:] for line in lines if line.startswith("TZID:")}
    assert used <= defined, f"TZID without VTIMEZONE: {used - defined}"
    calendar = Calendar.from_ical(data)
    assert calendar.get_missing_tzids() == set()
    uids = []
    for event in calendar.walk("VEVENT"):
        for name in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "SUMMARY", "STATUS"):
            assert name in event, f"VEVENT without {name}"
        if method in ("REQUEST", "CANCEL"):
            assert "ORGANIZER" in event and "ATTENDEE" in event
        assert event.decoded("DTEND") > event.decoded("DTSTART")
        assert str(event["DTSTAMP"].to_ical().decode()).endswith("Z")
        uids.append(str(event["UID"]))
    assert len(uids) == len(set(uids)), "duplicate UIDs"


def read_back(data: bytes) -> tuple[Calendar, object]:
    """The same bytes through both parsers."""
    return Calendar.from_ical(data), vobject_read(data)


def test_a_desk_booking_becomes_a_clean_invitation_that_both_parsers_read():
    booking = a_booking(
        local("Europe/Berlin", 2026, 12, 1, 9), local("Europe/Berlin", 2026, 12, 1, 17)
    )
    data = invite(booking)
    lint(data, "REQUEST")
    text = "\n".join(unfold(data))
    assert "UID:booking-42@foyer.example.com" in text
    assert "DTSTART;TZID=Europe/Berlin:20261201T090000" in text
    assert "DTEND;TZID=Europe/Berlin:20261201T170000" in text
    assert "DTSTAMP:20261102T083005Z" in text and "LAST-MODIFIED:20261102T083005Z" in text
    assert "SEQUENCE:0" in text and "STATUS:CONFIRMED" in text and "TRANSP:OPAQUE" in text
    assert "LOCATION:2.14\\, Floor 2\\, North wing\\, Berlin" in text
    assert "SUMMARY:Desk 2.14" in text

    parsed, card = read_back(data)
    event = parsed.walk("VEVENT")[0]
    assert str(event["ORGANIZER"]) == "mailto:foyer@foyer.example.com"
    assert str(event["ATTENDEE"]) == "mailto:zoe@example.com"
    assert event["ATTENDEE"].params["CN"] == "Zoë Müller"
    assert event.decoded("DTSTART") == booking.start_at
    assert card.vevent.dtstart.value == booking.start_at  # type: ignore[attr-defined]
    assert card.vevent.dtend.value == booking.end_at  # type: ignore[attr-defined]
    assert card.vevent.location.value == "2.14, Floor 2, North wing, Berlin"  # type: ignore[attr-defined]
    assert card.vevent.attendee.params["CN"] == ["Zoë Müller"]  # type: ignore[attr-defined]


DST_CASES = [
    # zone, start, end (local wall times), expected UTC start, expected length
    ("Europe/Berlin", (2026, 3, 27, 9), (2026, 3, 27, 10), (2026, 3, 27, 8), 1),  # CET
    ("Europe/Berlin", (2026, 3, 30, 9), (2026, 3, 30, 10), (2026, 3, 30, 7), 1),  # CEST
    ("Europe/Berlin", (2026, 3, 28, 22), (2026, 3, 29, 4), (2026, 3, 28, 21), 5),  # over the gap
    ("Europe/Berlin", (2026, 10, 24, 22), (2026, 10, 25, 4), (2026, 10, 24, 20), 7),  # the fold
    ("America/New_York", (2026, 3, 6, 9), (2026, 3, 6, 10), (2026, 3, 6, 14), 1),  # EST
    ("America/New_York", (2026, 3, 9, 9), (2026, 3, 9, 10), (2026, 3, 9, 13), 1),  # EDT
    ("America/New_York", (2026, 3, 7, 23), (2026, 3, 8, 5), (2026, 3, 8, 4), 5),  # over the gap
    ("America/New_York", (2026, 10, 31, 23), (2026, 11, 1, 5), (2026, 11, 1, 3), 7),  # the fold
]


@pytest.mark.parametrize(("zone", "start", "end", "utc_start", "hours"), DST_CASES)
def test_times_are_right_on_both_sides_of_a_dst_change(zone, start, end, utc_start, hours):
    booking = a_booking(local(zone, *start), local(zone, *end), zone=zone, room=True)
    data = invite(booking)
    lint(data, "REQUEST")
    expected = datetime(*utc_start, tzinfo=UTC)
    parsed, card = read_back(data)
    event = parsed.walk("VEVENT")[0]
    assert event.decoded("DTSTART") == expected
    length = event.decoded("DTEND").astimezone(UTC) - event.decoded("DTSTART").astimezone(UTC)
    assert length == timedelta(hours=hours)  # same-zone subtraction would ignore the change
    # vobject knows nothing of IANA: it computes the offsets from our VTIMEZONE.
    assert card.vevent.dtstart.value == expected  # type: ignore[attr-defined]
    assert card.vevent.dtend.value == expected + timedelta(hours=hours)  # type: ignore[attr-defined]
    # The wall-clock times are written in the site's zone.
    text = "\n".join(unfold(data))
    assert f"DTSTART;TZID={zone}:{datetime(*start):%Y%m%dT%H%M%S}" in text


def test_the_second_of_two_equal_wall_times_is_written_in_utc():
    # 01:30 happens twice in New York on 1 Nov 2026; a TZID time would mean the first (EDT) one.
    start = local("America/New_York", 2026, 11, 1, 1, 30, fold=1)  # EST, 06:30 UTC
    booking = a_booking(start, start + timedelta(hours=1), zone="America/New_York", room=True)
    data = invite(booking)
    lint(data, "REQUEST")
    assert "DTSTART:20261101T063000Z" in "\n".join(unfold(data))
    parsed, card = read_back(data)
    assert parsed.walk("VEVENT")[0].decoded("DTSTART") == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert card.vevent.dtstart.value == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # type: ignore[attr-defined]


def test_the_same_booking_always_gives_the_same_bytes():
    booking = a_booking(
        local("Europe/Berlin", 2026, 12, 1, 9),
        local("Europe/Berlin", 2026, 12, 1, 17),
        title="Quarterly planning with a long title that has to be folded across lines, ünïcödé",
    )
    first = invite(booking)
    assert invite(booking) == first  # no "now", no random UID
    assert Calendar.from_ical(first).to_ical() == first  # parse and re-render: byte-identical
    assert b"1970" not in first  # the VTIMEZONE covers the event's window only
    assert first.count(b"BEGIN:STANDARD") + first.count(b"BEGIN:DAYLIGHT") <= 2


def test_a_change_keeps_the_uid_and_raises_the_sequence_and_stamp():
    before = a_booking(
        local("Europe/Berlin", 2026, 12, 1, 9), local("Europe/Berlin", 2026, 12, 1, 17)
    )
    after = a_booking(
        local("Europe/Berlin", 2026, 12, 1, 10),
        local("Europe/Berlin", 2026, 12, 1, 12),
        sequence=1,
    )
    after.updated_at = CHANGED + timedelta(hours=2)
    old, new = Calendar.from_ical(invite(before)), Calendar.from_ical(invite(after))
    old_event, new_event = old.walk("VEVENT")[0], new.walk("VEVENT")[0]
    assert old_event["UID"] == new_event["UID"]
    assert new_event["SEQUENCE"] > old_event["SEQUENCE"]
    assert new_event.decoded("DTSTAMP") > old_event.decoded("DTSTAMP")


def test_a_cancellation_is_method_cancel_with_status_cancelled():
    booking = a_booking(
        local("Europe/Berlin", 2026, 12, 1, 9),
        local("Europe/Berlin", 2026, 12, 1, 17),
        status="cancelled",
        sequence=2,
    )
    data = invite(booking, "CANCEL")
    lint(data, "CANCEL")
    text = "\n".join(unfold(data))
    assert "METHOD:CANCEL" in text and "STATUS:CANCELLED" in text and "SEQUENCE:2" in text
    _, card = read_back(data)
    assert card.method.value == "CANCEL"  # type: ignore[attr-defined]
    assert card.vevent.status.value == "CANCELLED"  # type: ignore[attr-defined]


def test_a_request_waiting_for_approval_is_tentative():
    booking = a_booking(
        local("Europe/Berlin", 2026, 12, 1, 9),
        local("Europe/Berlin", 2026, 12, 1, 11),
        status="pending",
        room=True,
        title="Board meeting",
    )
    data = invite(booking)
    lint(data, "REQUEST")
    event = Calendar.from_ical(data).walk("VEVENT")[0]
    assert str(event["STATUS"]) == "TENTATIVE"
    assert str(event["SUMMARY"]) == "Board meeting – Room Aurora"


def test_people_and_titles_with_awkward_characters_survive_both_parsers():
    title = 'Sync; with, "quotes" \\ and <script>alert(1)</script>'
    booking = a_booking(
        local("Europe/Berlin", 2026, 12, 1, 9),
        local("Europe/Berlin", 2026, 12, 1, 11),
        title=title,
        person='Ana "The Boss" O\'Neil, Jr.',
    )
    data = invite(booking)
    lint(data, "REQUEST")
    parsed, card = read_back(data)
    event = parsed.walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == f"{title} – Desk 2.14"
    assert card.vevent.summary.value == f"{title} – Desk 2.14"  # type: ignore[attr-defined]
    # Quotes in a name would need RFC 6868 escaping that many clients show literally.
    assert event["ATTENDEE"].params["CN"] == "Ana 'The Boss' O'Neil, Jr."
    assert card.vevent.attendee.params["CN"] == ["Ana 'The Boss' O'Neil, Jr."]  # type: ignore[attr-defined]


def test_a_feed_of_several_zones_has_one_vtimezone_each_and_stable_headers():
    events = [
        ical.event_for_booking(
            a_booking(
                local("Europe/Berlin", 2026, 12, 1, 9),
                local("Europe/Berlin", 2026, 12, 1, 17),
                booking_id=1,
            ),
            host=HOST,
        ),
        ical.event_for_booking(
            a_booking(
                local("America/New_York", 2026, 12, 3, 9),
                local("America/New_York", 2026, 12, 3, 12),
                zone="America/New_York",
                room=True,
                booking_id=2,
            ),
            host=HOST,
        ),
    ]
    data = ical.build_calendar(
        events, "PUBLISH", name="Zoë's bookings", refresh=timedelta(minutes=15)
    )
    lint(data, "PUBLISH")
    lines = unfold(data)
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT15M" in lines
    assert "X-PUBLISHED-TTL:PT15M" in lines  # not "0:15:00"
    assert "NAME:Zoë's bookings" in lines and "X-WR-CALNAME:Zoë's bookings" in lines
    assert {line for line in lines if line.startswith("TZID:")} == {
        "TZID:Europe/Berlin",
        "TZID:America/New_York",
    }
    assert (
        ical.build_calendar(events, "PUBLISH", name="Zoë's bookings", refresh=timedelta(minutes=15))
        == data
    )
    card = vobject_read(data)
    assert sorted(e.uid.value for e in card.vevent_list) == [  # type: ignore[attr-defined]
        "booking-1@foyer.example.com",
        "booking-2@foyer.example.com",
    ]


def test_impossible_events_are_refused_rather_than_written():
    booking = a_booking(
        local("Europe/Berlin", 2026, 12, 1, 9), local("Europe/Berlin", 2026, 12, 1, 17)
    )
    event = ical.event_for_booking(booking, host=HOST, organizer=ORGANIZER)
    with pytest.raises(ValueError, match="DTEND"):
        ical.build_calendar([ical.CalendarEvent(**{**vars(event), "end": event.start})], "PUBLISH")
    with pytest.raises(ValueError, match="ORGANIZER"):
        ical.invitation(ical.event_for_booking(booking, host=HOST), "REQUEST")
    with pytest.raises(ValueError):
        ical.invitation(event, "PUBLISH")
