"""What people are told about their bookings. Messages go into the outbox in the same transaction as
the change, so nothing is sent for a change that rolled back; delivery happens after commit."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from portal.models import Booking, OutboxMessage

SUBJECTS = {
    "created": "Booked: {what}",
    "pending": "Waiting for approval: {what}",
    "approved": "Approved: {what}",
    "declined": "Declined: {what}",
    "changed": "Changed: {what}",
    "cancelled": "Cancelled: {what}",
    "released": "Released (no check-in): {what}",
    "series_trim": "Still need this recurring booking? {what}",
}


def booking_event(
    session: Session, booking: Booking, event: str, reason: str = ""
) -> OutboxMessage:
    """Queue the e-mail for a booking event (created, approved, cancelled, released, ...)."""
    zone = ZoneInfo(booking.resource.site.time_zone)
    start, end = booking.start_at.astimezone(zone), booking.end_at.astimezone(zone)
    what = f"{booking.resource.name}, {start:%a %-d %b %H:%M}–{end:%H:%M} {start.tzname()}"
    lines = [
        f"Hello {booking.user.name},",
        "",
        SUBJECTS[event].format(what=what),
    ]
    if booking.title:
        lines.append(f"Title: {booking.title}")
    if reason:
        lines.append(f"Reason: {reason}")
    lines += ["", f"Site: {booking.resource.site.name} ({zone.key})", "", "— Foyer"]
    message = OutboxMessage(
        to_address=booking.user.email,
        to_name=booking.user.name,
        subject=SUBJECTS[event].format(what=what),
        text_body="\n".join(lines),
        related_type="booking",
        related_id=str(booking.id),
    )
    session.add(message)
    return message
