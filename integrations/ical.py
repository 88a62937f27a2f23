"""iCalendar (RFC 5545) for bookings: iMIP invitations (RFC 6047) and, later, subscription feeds.

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

PRODID = "-//Foyer//Foyer bookings//EN"


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
