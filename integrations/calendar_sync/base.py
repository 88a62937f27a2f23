"""The contract every room-calendar adapter implements, and the values that cross it.

An adapter speaks one server's protocol and nothing else: it does not touch the database, apply
booking rules or decide what wins a conflict. Remote ids are whatever the server uses to address an
event (a CalDAV href, a Graph or Google event id); UIDs are iCalendar UIDs, the same on both sides
for events Foyer pushed (`booking-<id>@<host>`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from integrations.ical import CalendarEvent


class SyncError(Exception):
    """The server could not be used. `transient` errors (timeouts, 429, 5xx) are retried with
    backoff; the others (401, 403, malformed data) wait for an admin to fix the link."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after  # seconds the server asked us to wait (429/503), if any


def throttled(message: str, *, transient: bool, retry_after: float | None) -> SyncError:
    """A SyncError for an HTTP refusal, naming the server's Retry-After when it sent one."""
    if retry_after is not None:
        message = f"{message} (the server asks to retry after {retry_after:g} s)"
    return SyncError(message, transient=transient, retry_after=retry_after)


class Gone(SyncError):
    """The sync token expired (HTTP 410 / Graph `syncStateNotFound`): do a full listing."""

    def __init__(self, message: str = "sync token expired") -> None:
        super().__init__(message, transient=False)


@dataclass(frozen=True)
class RemoteEvent:
    remote_id: str
    uid: str
    etag: str
    start: datetime  # aware
    end: datetime  # aware
    summary: str = ""
    organizer_email: str = ""
    organizer_name: str = ""
    recurrence: str = ""  # the RRULE text when the event repeats ("" for a single event)
    cancelled: bool = False


@dataclass(frozen=True)
class Changes:
    changed: list[RemoteEvent] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # remote ids
    token: str | None = None  # pass to the next changes_since
    full: bool = False  # a full listing: any known event not in `changed` is gone


class RemoteCalendar(Protocol):
    def changes_since(self, token: str | None) -> Changes:
        """Events changed or deleted since `token` (None: everything, with `full=True`).
        Raises Gone when the token is no longer valid."""
        ...

    def put(self, event: CalendarEvent, remote_id: str | None, etag: str | None) -> tuple[str, str]:
        """Create (remote_id None) or replace the event; return (remote_id, new etag)."""
        ...

    def delete(self, remote_id: str, etag: str | None) -> None:
        """Remove the event; an event that is already gone is not an error."""
        ...

    def decline(self, event: RemoteEvent, reason: str) -> None:
        """Refuse an event someone put on the room's calendar (it conflicts, or breaks a rule):
        remove it or mark the room's answer as declined, as the server's own clients expect."""
        ...
