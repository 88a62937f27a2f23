"""Finding entries in the audit trail: the admin viewer's filter and its CSV export share one
query, so the download holds exactly what the page lists."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import AuditEvent
from portal.services.spreadsheets import csv_safe
from portal.timezones import format_local, local_day_bounds

PAGE_SIZE = 100
EXPORT_BATCH = 500  # rows fetched per round trip while streaming a download
EXPORT_COLUMNS = (
    "When (UTC)",
    "When (local)",
    "Who",
    "IP address",
    "Action",
    "Object type",
    "Object id",
    "Before",
    "After",
    "Request id",
)


@dataclass(frozen=True)
class AuditFilter:
    """What the admin typed; `problems()` says what cannot be searched as typed."""

    who: str = ""  # part of the actor's e-mail or label
    action: str = ""  # prefix, e.g. "login." or "booking.cancelled"
    object_type: str = ""  # exact table name, e.g. "bookings"
    object_id: str = ""
    date_from: date | None = None  # in the viewer's zone, inclusive
    date_to: date | None = None
    bad_dates: tuple[str, ...] = ()  # the fields whose text was not a date

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> AuditFilter:
        def text(name: str, limit: int) -> str:
            return " ".join((args.get(name) or "").split())[:limit]

        bad: list[str] = []

        def day(name: str) -> date | None:
            value = text(name, 20)
            if not value:
                return None
            try:
                return date.fromisoformat(value)
            except ValueError:
                bad.append(name)
                return None

        return cls(
            who=text("who", 254),
            action=text("action", 60),
            object_type=text("object_type", 40),
            object_id=text("object_id", 64),
            date_from=day("from"),
            date_to=day("to"),
            bad_dates=tuple(bad),
        )

    def problems(self) -> dict[str, str]:
        found = {name: "Give a date as YYYY-MM-DD." for name in self.bad_dates}
        if self.date_from and self.date_to and self.date_from > self.date_to:
            found["to"] = "The end date is before the start date."
        return found

    @property
    def narrowed(self) -> bool:
        return bool(self.query())

    def query(self) -> dict[str, str]:
        values = {
            "who": self.who,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {k: v for k, v in values.items() if v}

    def conditions(self, zone: ZoneInfo) -> list[ColumnElement[bool]]:
        problems = self.problems()
        if problems:
            raise RuleViolation(problems, "bad_filter")
        found: list[ColumnElement[bool]] = []
        if self.who:
            found.append(
                func.lower(AuditEvent.actor_label).contains(self.who.lower(), autoescape=True)
            )
        if self.action:
            found.append(AuditEvent.action.startswith(self.action, autoescape=True))
        if self.object_type:
            found.append(AuditEvent.object_type == self.object_type)
        if self.object_id:
            found.append(AuditEvent.object_id == self.object_id)
        if self.date_from:
            found.append(AuditEvent.at >= local_day_bounds(self.date_from, zone)[0])
        if self.date_to:
            found.append(AuditEvent.at < local_day_bounds(self.date_to, zone)[1])
        return found


def _select(view: AuditFilter, zone: ZoneInfo) -> Select[tuple[AuditEvent]]:
    return select(AuditEvent).where(*view.conditions(zone)).order_by(AuditEvent.id.desc())


def page(
    session: Session, view: AuditFilter, zone: ZoneInfo, before_id: int | None = None
) -> tuple[list[AuditEvent], bool]:
    """One page, newest first (keyset by id: later pages cost the same as the first), and
    whether older entries match."""
    query = _select(view, zone)
    if before_id:
        query = query.where(AuditEvent.id < before_id)
    events = list(session.scalars(query.limit(PAGE_SIZE + 1)))
    return events[:PAGE_SIZE], len(events) > PAGE_SIZE


def object_types(session: Session) -> list[str]:
    return [t for t in session.scalars(select(AuditEvent.object_type).distinct()) if t]


def export_csv(session: Session, view: AuditFilter, zone: ZoneInfo) -> Iterator[str]:
    """The matching entries as CSV text, a batch at a time (keyset, never the whole trail in
    memory); raises RuleViolation before the first line if the filter is invalid."""
    query = _select(view, zone)  # validate now, not halfway through a download
    return _csv_lines(session, query, zone)


def _csv_lines(session: Session, query: Select[tuple[AuditEvent]], zone: ZoneInfo) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    yield _drain(buffer)
    before: int | None = None
    while True:
        batch_query = query if before is None else query.where(AuditEvent.id < before)
        batch = list(session.scalars(batch_query.limit(EXPORT_BATCH)))
        if not batch:
            return
        for event in batch:
            writer.writerow(
                [
                    csv_safe(event.at.strftime("%Y-%m-%d %H:%M:%S")),
                    csv_safe(format_local(event.at, zone)),
                    csv_safe(event.actor_label),
                    csv_safe(event.ip_address),
                    csv_safe(event.action),
                    csv_safe(event.object_type),
                    csv_safe(event.object_id),
                    csv_safe(_json(event.before)),
                    csv_safe(_json(event.after)),
                    csv_safe(event.request_id),
                ]
            )
        yield _drain(buffer)
        before = batch[-1].id  # the identity map holds rows weakly: each batch is let go


def _json(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def export_name(view: AuditFilter, today: date) -> str:
    span = ""
    if view.date_from or view.date_to:
        first = view.date_from.isoformat() if view.date_from else "start"
        last = view.date_to.isoformat() if view.date_to else today.isoformat()
        span = f"-{first}-to-{last}"
    return f"foyer-audit-log{span}.csv"
