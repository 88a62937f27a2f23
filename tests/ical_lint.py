"""A linter for subscription feeds, since no maintained iCalendar validator exists: what Google,
Outlook and Apple Calendar need, checked on the exact bytes, then the feed read back by two
independent parsers (icalendar, and vobject, which builds its own zones from our VTIMEZONEs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import vobject
from icalendar import Calendar

from integrations.ical import MAX_FEED_BYTES

CALENDAR_LINES = (
    "VERSION:2.0",
    "METHOD:PUBLISH",
    "REFRESH-INTERVAL;VALUE=DURATION:PT15M",
    "X-PUBLISHED-TTL:PT15M",
)
CALENDAR_PROPERTIES = ("PRODID", "NAME", "X-WR-CALNAME")
EVENT_PROPERTIES = (
    "UID",
    "DTSTAMP",
    "DTSTART",
    "DTEND",
    "SEQUENCE",
    "LAST-MODIFIED",
    "SUMMARY",
    "STATUS",
    "TRANSP",
)


@dataclass
class LintedFeed:
    calendar: Calendar  # as icalendar reads it
    other: Any  # as vobject reads it
    events: dict[str, Any]  # UID -> icalendar VEVENT

    def instants(self, uid: str) -> tuple[datetime, datetime]:
        event = self.events[uid]
        return event.decoded("dtstart"), event.decoded("dtend")


def unfold(data: bytes) -> list[str]:
    return data.decode("utf-8").replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]


def lint_feed(
    data: bytes, *, rerender: Callable[[], bytes] | None = None, max_bytes: int = MAX_FEED_BYTES
) -> LintedFeed:
    """Fails with a message naming the first problem; returns the feed as both parsers read it."""
    assert len(data) < max_bytes, f"feed of {len(data)} bytes (limit {max_bytes})"
    assert data.endswith(b"\r\n"), "no CRLF at the end"
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
            assert stack and stack.pop() == line[4:], f"unbalanced {line}"
    assert not stack
    top = _top_level(lines)
    for line in CALENDAR_LINES:
        assert line in top, f"calendar lacks {line}"
    for name in CALENDAR_PROPERTIES:
        assert any(_name(line) == name for line in top), f"calendar lacks {name}"
    uids = []
    for block in _blocks(lines, "VEVENT"):
        names = {_name(line) for line in block}
        for name in EVENT_PROPERTIES:
            assert name in names, f"event lacks {name}: {block}"
        uids.append(next(line.split(":", 1)[1] for line in block if _name(line) == "UID"))
        assert "STATUS:CANCELLED" not in block, "a cancelled event in a feed"
    assert len(uids) == len(set(uids)), "duplicate UIDs"

    calendar = Calendar.from_ical(data)
    assert not calendar.get_missing_tzids(), (
        f"TZID without VTIMEZONE: {calendar.get_missing_tzids()}"
    )
    events = {}
    for event in calendar.walk("VEVENT"):
        start, end = event.decoded("dtstart"), event.decoded("dtend")
        assert start.tzinfo is not None and end.tzinfo is not None, "floating time"
        assert end > start, f"DTEND not after DTSTART in {event['uid']}"
        events[str(event["uid"])] = event
    assert len(events) == len(uids)
    assert calendar.to_ical().count(b"BEGIN:VEVENT") == len(uids)

    other = vobject_read(data)
    read_back = {str(e.uid.value): e for e in getattr(other, "vevent_list", [])}
    assert set(read_back) == set(events), "the two parsers disagree about the events"
    for uid, event in read_back.items():
        # vobject builds its zones from our VTIMEZONEs: the instants must agree with icalendar's.
        assert event.dtstart.value == events[uid].decoded("dtstart"), uid
        assert event.dtend.value == events[uid].decoded("dtend"), uid
    if rerender is not None:
        assert rerender() == data, "rendering again gave other bytes"
    return LintedFeed(calendar, other, events)


def _name(line: str) -> str:
    return line.split(":", 1)[0].split(";", 1)[0].upper()


def _top_level(lines: list[str]) -> list[str]:
    depth, top = 0, []
    for line in lines:
        if line.startswith("BEGIN:"):
            depth += 1
        elif line.startswith("END:"):
            depth -= 1
        elif depth == 1:
            top.append(line)
    return top


def _blocks(lines: list[str], component: str) -> list[list[str]]:
    blocks, current = [], None
    for line in lines:
        if line == f"BEGIN:{component}":
            current = []
        elif line == f"END:{component}":
            blocks.append(current or [])
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def vobject_read(data: bytes) -> object:
    """vobject keeps the first VTIMEZONE it saw for each TZID for the whole process and reads every
    later document with it; forget them, so the offsets come from this document's VTIMEZONE."""
    registry = vars(vobject.icalendar)["__tzidMap"]
    for tzid in [tzid for tzid in registry if tzid != "UTC"]:
        del registry[tzid]
    return vobject.readOne(data.decode("utf-8"))
