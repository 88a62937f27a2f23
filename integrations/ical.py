"""iCalendar (RFC 5545) for bookings: iMIP invitations (RFC 6047) and subscription feeds.

Pure functions: the same booking state always gives the same bytes (no "now", no random ids), so
feeds can carry a strong ETag and a re-sent invitation is identical. Every zone used by a TZID gets a
VTIMEZONE limited to the window the events cover (icalendar's default spans 1970-2038), and a local
time that occurs twice (the autumn fold) is written in UTC, since a TZID time means the first one."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vCalAddress, vDuration, vText
from icalendar.timezone.tzid import is_utc

PRODID = "-//Foyer//Foyer bookings//EN"
FEED_REFRESH = timedelta(minutes=15)  # REFRESH-INTERVAL and X-PUBLISHED-TTL of every feed
# Google Calendar silently drops feeds over about 1 MB: a feed never grows past this.
MAX_FEED_BYTES = 1_000_000


class Method(enum.StrEnum):
    REQUEST = "REQUEST"  # an invitation, or an update of one (higher SEQUENCE)
    CANCEL = "CANCEL"  # removes the event from the attendee's calendar
    PUBLISH = "PUBLISH"  # a subscription feed


class EventStatus(enum.StrEnum):
    CONFIRMED = "CONFIRMED"
    TENTATIVE = "TENTATIVE"  # waiting for a coordinator's approval
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Person:
    email: str
    name: str = ""


@dataclass(frozen=True)
class CalendarEvent:
    """One VEVENT, with every value already decided (see `event_for_booking`)."""

    uid: str
    sequence: int
    stamp: datetime  # DTSTAMP and LAST-MODIFIED: the last change of the booking, never "now"
    start: datetime  # aware
    end: datetime  # aware
    time_zone: str  # IANA name the times are shown in (the site's zone)
    summary: str
    location: str = ""
    description: str = ""
    status: EventStatus = EventStatus.CONFIRMED
    organizer: Person | None = None
    attendees: tuple[Person, ...] = ()
    created: datetime | None = None


# Booking statuses (portal.models.BookingStatus values) as iCalendar STATUS.
_STATUS_BY_BOOKING = {
    "pending": EventStatus.TENTATIVE,
    "cancelled": EventStatus.CANCELLED,
    "declined": EventStatus.CANCELLED,
    "released": EventStatus.CANCELLED,
}


def booking_uid(booking_id: int, host: str) -> str:
    """The UID of a booking everywhere (invitations and feeds): regenerating it duplicates events."""
    return f"booking-{booking_id}@{host}"


def booking_summary(booking: Any) -> str:
    """E.g. "Desk 1.01" or "Team sync – Room Aurora"."""
    resource = booking.resource
    kind = str(getattr(resource, "kind", "") or "").capitalize()
    what = f"{kind} {resource.name}".strip()
    return f"{booking.title} – {what}" if booking.title else what


def booking_location(booking: Any) -> str:
    """Resource, floor, building and site: "Desk 1.01, Floor 2, North wing, Berlin"."""
    resource = booking.resource
    parts = [resource.name]
    floor = getattr(resource, "floor", None)
    if floor is not None:
        parts.append(floor.name)
        building = getattr(floor, "building", None)
        if building is not None:
            parts.append(building.name)
    parts.append(resource.site.name)
    return ", ".join(p for p in parts if p)


def event_for_booking(
    booking: Any,
    *,
    host: str,
    organizer: Person | None = None,
    description: str = "",
    status: EventStatus | None = None,
) -> CalendarEvent:
    """The calendar view of a booking (a portal.models.Booking, or anything shaped like one)."""
    user = booking.user
    return CalendarEvent(
        uid=booking_uid(booking.id, host),
        sequence=booking.sequence or 0,
        stamp=booking.updated_at,
        created=booking.created_at,
        start=booking.start_at,
        end=booking.end_at,
        time_zone=booking.resource.site.time_zone,
        summary=booking_summary(booking),
        location=booking_location(booking),
        description=description,
        status=status or _STATUS_BY_BOOKING.get(str(booking.status), EventStatus.CONFIRMED),
        organizer=organizer,
        attendees=(Person(user.email, user.name),),
    )


def invitation(event: CalendarEvent, method: Method | str) -> bytes:
    """An iMIP body: METHOD:REQUEST (new or updated) or METHOD:CANCEL (STATUS:CANCELLED)."""
    method = Method(method)
    if method is Method.PUBLISH:
        raise ValueError("invitations are REQUEST or CANCEL; feeds use build_calendar()")
    if event.organizer is None or not event.attendees:
        raise ValueError("an iMIP invitation needs an ORGANIZER and at least one ATTENDEE")
    if method is Method.CANCEL:
        event = replace(event, status=EventStatus.CANCELLED)
    return build_calendar([event], method)


def build_calendar(
    events: Sequence[CalendarEvent],
    method: Method | str,
    *,
    name: str | None = None,
    refresh: timedelta | None = None,
) -> bytes:
    """A VCALENDAR with one VTIMEZONE per zone used (limited to the events' window) and one VEVENT
    per event, CRLF line endings and 75-octet folding. For feeds pass `name` and `refresh`."""
    calendar = Calendar()  # not Calendar.new(): that adds a random UID on every call
    calendar.add("version", "2.0")
    calendar.add("prodid", PRODID)
    calendar.add("method", str(Method(method)))
    if name:
        calendar.add("name", name)
        calendar.add("x-wr-calname", name)
    if refresh is not None:
        calendar.add("refresh-interval", vDuration(refresh), parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", vDuration(refresh))  # a bare timedelta gives "0:15:00"
    for event in events:
        calendar.add_component(_vevent(event))
    if events:
        first, last = _window(events)
        for position, tzid in enumerate(sorted(calendar.get_missing_tzids())):
            timezone = _vtimezone(tzid, first, last)
            if timezone is not None:
                calendar.subcomponents.insert(position, timezone)
    missing = calendar.get_missing_tzids()
    if missing:  # no parser complains, but Outlook shows wrong times
        raise ValueError(f"no VTIMEZONE could be built for {sorted(missing)}")
    return calendar.to_ical()


def _vevent(event: CalendarEvent) -> Event:
    if event.end <= event.start:
        raise ValueError(f"{event.uid}: DTEND must be after DTSTART")
    zone = ZoneInfo(event.time_zone)
    vevent = Event()
    vevent.add("uid", event.uid)
    vevent.add("sequence", event.sequence)
    vevent.add("dtstamp", _utc(event.stamp))
    vevent.add("last-modified", _utc(event.stamp))
    if event.created is not None:
        vevent.add("created", _utc(event.created))
    vevent.add("dtstart", _local(event.start, zone))
    vevent.add("dtend", _local(event.end, zone))
    vevent.add("summary", event.summary)
    if event.location:
        vevent.add("location", event.location)
    if event.description:
        vevent.add("description", event.description)
    vevent.add("status", str(event.status))
    vevent.add("transp", "TRANSPARENT" if event.status is EventStatus.CANCELLED else "OPAQUE")
    if event.organizer is not None:
        vevent.add("organizer", _address(event.organizer))
    for person in event.attendees:
        vevent.add(
            "attendee",
            _address(
                person,
                CUTYPE="INDIVIDUAL",
                ROLE="REQ-PARTICIPANT",
                # The person booked it themselves: nothing to answer, so no RSVP buttons.
                PARTSTAT="ACCEPTED",
                RSVP="FALSE",
            ),
        )
    return vevent


def _address(person: Person, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email}")
    name = _display_name(person.name)
    if name:
        address.params["CN"] = vText(name)
    for key, value in params.items():
        address.params[key] = value
    return address


def _display_name(name: str) -> str:
    # A double quote would need RFC 6868 escaping (^'), which many clients show literally.
    cleaned = "".join(ch for ch in name if ch.isprintable()).replace('"', "'")
    return " ".join(cleaned.split())


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("naive datetime in a calendar event")
    return instant.astimezone(UTC).replace(microsecond=0)


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    """The wall-clock time in the site's zone (written with its TZID), or UTC when that wall time
    happens twice and this is the second one: TZID times in a fold mean the first occurrence."""
    utc = _utc(instant)
    local = utc.astimezone(zone)
    if local.replace(fold=0).astimezone(UTC) != utc:
        return utc
    return local


@lru_cache(maxsize=512)
def _vtimezone(tzid: str, first: date, last: date) -> Timezone | None:
    """Building a VTIMEZONE walks the zone's transitions: a booking's invitation costs a quarter of
    its request without this cache. Components are only read when serialised, so sharing is safe."""
    try:
        return Timezone.from_tzid(tzid, first_date=first, last_date=last)
    except ValueError:
        return None


def _window(events: Iterable[CalendarEvent]) -> tuple[date, date]:
    """The local dates the events cover, a day of margin either side, for the VTIMEZONEs."""
    days = [
        moment.astimezone(ZoneInfo(event.time_zone)).date()
        for event in events
        for moment in (event.start, event.end)
    ]
    return min(days) - timedelta(days=1), max(days) + timedelta(days=1)


# --- Subscription feeds (METHOD:PUBLISH) ---------------------------------------------------------
#
# A feed can hold thousands of events, and icalendar's object model costs about 0.26 ms per event
# (a 10,000-booking room feed took 2.6 s). Feeds therefore write their VEVENTs directly, with the
# same property order, escaping and folding as icalendar's own `to_ical()` (tests/test_feeds.py
# proves the bytes equal for a corpus of awkward events), about 20 times faster. The calendar
# itself, its properties and every VTIMEZONE still come from icalendar.

_EVENT_ORDER = ("SUMMARY", "DTSTART", "DTEND", "DTSTAMP", "UID", "SEQUENCE")
_CONTROL = {c: " " for c in range(32) if chr(c) not in "\t\n\r"} | {127: " "}


def feed(
    events: Sequence[CalendarEvent],
    *,
    name: str,
    first_day: date,
    last_day: date,
    pivot: datetime,
    max_bytes: int = MAX_FEED_BYTES,
) -> bytes:
    """A subscription feed: METHOD:PUBLISH, NAME and X-WR-CALNAME, refresh hints of 15 minutes, a
    VTIMEZONE per zone used limited to [first_day, last_day], events in start order.

    When the events would not fit in `max_bytes`, the ones nearest `pivot` (the start of today,
    so the bytes stay the same all day) win: upcoming events first, then the most recent past
    ones. The same events and pivot always give the same bytes."""
    if len({event.uid for event in events}) != len(events):
        raise ValueError("two events in one feed share a UID")
    frame = _feed_frame(name, tuple(sorted({e.time_zone for e in events})), first_day, last_day)
    budget = max_bytes - len(frame)
    ahead = sorted((e for e in events if e.end > pivot), key=_start_order)
    behind = sorted((e for e in events if e.end <= pivot), key=_start_order, reverse=True)
    chosen: list[tuple[CalendarEvent, bytes]] = []
    used = 0
    for event in [*ahead, *behind]:  # written lazily: a trimmed feed writes only what it keeps
        chunk = _event_bytes(event)
        if used + len(chunk) > budget:
            break
        chosen.append((event, chunk))
        used += len(chunk)
    chosen.sort(key=lambda pair: _start_order(pair[0]))
    zones = tuple(sorted({event.time_zone for event, _ in chosen}))
    frame = _feed_frame(name, zones, first_day, last_day)
    end = b"END:VCALENDAR\r\n"
    return frame[: -len(end)] + b"".join(chunk for _, chunk in chosen) + end


def _start_order(event: CalendarEvent) -> tuple[datetime, str]:
    return event.start, event.uid


@lru_cache(maxsize=256)
def _feed_frame(name: str, zones: tuple[str, ...], first_day: date, last_day: date) -> bytes:
    """The calendar without its events: properties and the VTIMEZONEs."""
    calendar = Calendar()  # not Calendar.new(): that adds a random UID on every call
    calendar.add("version", "2.0")
    calendar.add("prodid", PRODID)
    calendar.add("method", str(Method.PUBLISH))
    calendar.add("name", clean_text(name))
    calendar.add("x-wr-calname", clean_text(name))
    calendar.add("refresh-interval", vDuration(FEED_REFRESH), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(FEED_REFRESH))  # a bare timedelta gives "0:15:00"
    for tzid in zones:
        if _is_utc_zone(ZoneInfo(tzid)):
            continue
        timezone = _vtimezone(tzid, first_day, last_day)
        if timezone is None:
            raise ValueError(f"no VTIMEZONE could be built for {tzid}")
        calendar.add_component(timezone)
    return calendar.to_ical()


def clean_text(text: str) -> str:
    """Control characters (other than line breaks and tabs) have no place in a TEXT value."""
    return text.translate(_CONTROL)


@lru_cache(maxsize=32768)
def _event_bytes(event: CalendarEvent) -> bytes:
    """One VEVENT as icalendar's `_vevent(event).to_ical()` would write it (organizer and
    attendees, which feeds never carry, go through icalendar itself)."""
    if event.organizer is not None or event.attendees:
        return _vevent(event).to_ical()
    if event.end <= event.start:
        raise ValueError(f"{event.uid}: DTEND must be after DTSTART")
    zone = ZoneInfo(event.time_zone)
    stamp = _utc_text(_utc(event.stamp))
    values: dict[str, str] = {
        "SUMMARY": _escape(event.summary),
        "DTSTART": _when(_local(event.start, zone)),
        "DTEND": _when(_local(event.end, zone)),
        "DTSTAMP": ":" + stamp,
        "UID": ":" + _escape(event.uid),
        "SEQUENCE": f":{int(event.sequence)}",
        "LAST-MODIFIED": ":" + stamp,
        "STATUS": ":" + str(event.status),
        "TRANSP": ":TRANSPARENT" if event.status is EventStatus.CANCELLED else ":OPAQUE",
    }
    values["SUMMARY"] = ":" + values["SUMMARY"]
    if event.created is not None:
        values["CREATED"] = ":" + _utc_text(_utc(event.created))
    if event.location:
        values["LOCATION"] = ":" + _escape(event.location)
    if event.description:
        values["DESCRIPTION"] = ":" + _escape(event.description)
    rest = sorted(k for k in values if k not in _EVENT_ORDER)
    lines = ["BEGIN:VEVENT"]
    lines += [_fold(key + values[key]) for key in (*_EVENT_ORDER, *rest)]
    lines.append("END:VEVENT\r\n")
    return "\r\n".join(lines).encode("utf-8")


def _escape(text: str) -> str:
    # icalendar's TEXT escaping, in its order (see icalendar.parser.string._escape_char).
    return (
        clean_text(text)
        .replace("\\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _utc_text(instant: datetime) -> str:
    return instant.strftime("%Y%m%dT%H%M%SZ")


def _when(instant: datetime) -> str:
    """A DTSTART/DTEND value: with its TZID, or in UTC (see `_local`)."""
    if instant.tzinfo is UTC or _is_utc_zone(instant.tzinfo):
        return ":" + _utc_text(instant)
    return f";TZID={instant.tzinfo}:{instant.strftime('%Y%m%dT%H%M%S')}"


@lru_cache(maxsize=64)
def _is_utc_zone(zone: Any) -> bool:
    """UTC under any name is written with a Z, never as a TZID (icalendar does the same)."""
    return is_utc(zone)


def _fold(line: str) -> str:
    """RFC 5545 folding at 75 octets as icalendar does it: never inside a UTF-8 character, and
    never right after a backslash (some clients mis-read an escape split across lines)."""
    if len(line) < 75 and line.isascii():
        return line
    folded: list[str] = []
    current: list[str] = []
    count = 0
    for char in line:
        size = len(char.encode("utf-8"))
        if current and count + size >= 75:
            if len(current) > 1 and current[-1] in "\\^":
                carried = current.pop()
                folded.append("".join(current))
                current, count = [carried], len(carried.encode("utf-8"))
            else:
                folded.append("".join(current))
                current, count = [], 0
        current.append(char)
        count += size
    if current:
        folded.append("".join(current))
    return "\r\n ".join(folded)
