"""What people are told about their bookings. Messages go into the outbox in the same transaction as
the change, so nothing is sent for a change that rolled back; delivery happens after commit.

Each message has a text and an HTML body (autoescaped: titles are user input) and, for events that
change a calendar, an iMIP invitation (METHOD:REQUEST) or cancellation (METHOD:CANCEL) with the same
UID as the booking's feed entry and the booking's SEQUENCE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlalchemy.orm import Session

from integrations import ical
from portal.errors import RuleViolation
from portal.models import Booking, BookingStatus, OutboxMessage, OutboxStatus
from portal.services import audit
from portal.services.audit import Actor

# session.info keys. The app puts its Sender on every session it makes; a commit of a session
# that queued mail kicks delivery (portal/jobs.py listens for it).
SENDER_KEY = "foyer.mail_sender"
OUTBOX_PENDING = "foyer.outbox_pending"


@dataclass(frozen=True)
class Sender:
    """Who Foyer's mail comes from (the invitations' ORGANIZER) and where Foyer lives (the host
    in every UID). The defaults match the embedded demo's settings."""

    base_url: str = "http://127.0.0.1:5000"
    address: str = "foyer@localhost"
    name: str = "Foyer"

    @classmethod
    def from_settings(cls, base_url: str, mail_from: str) -> Sender:
        name, address = parseaddr(mail_from)
        return cls(base_url=base_url, address=address or cls.address, name=name or cls.name)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"


def sender_for(session: Session) -> Sender:
    return session.info.get(SENDER_KEY) or Sender()


@dataclass(frozen=True)
class Wording:
    subject: str  # formatted with {what}
    headline: str
    method: ical.Method | None  # the invitation it carries, if any


EVENTS = {
    "created": Wording("Booked: {what}", "Your booking is confirmed.", ical.Method.REQUEST),
    "pending": Wording(
        "Waiting for approval: {what}",
        "Your request is waiting for a coordinator's approval. The time is held for you meanwhile.",
        ical.Method.REQUEST,
    ),
    "approved": Wording(
        "Approved: {what}", "A coordinator approved your request.", ical.Method.REQUEST
    ),
    "declined": Wording(
        "Declined: {what}", "A coordinator declined your request.", ical.Method.CANCEL
    ),
    "changed": Wording(
        "Changed: {what}",
        "Your booking was changed. These are the new details.",
        ical.Method.REQUEST,
    ),
    "cancelled": Wording("Cancelled: {what}", "Your booking was cancelled.", ical.Method.CANCEL),
    "released": Wording(
        "Released (no check-in): {what}",
        "Nobody checked in, so the space was released for others.",
        ical.Method.CANCEL,
    ),
    "series_trim": Wording(
        "Still need this recurring booking? {what}",
        "You did not use the last occurrences of this recurring booking.",
        None,
    ),
}
# Cancelling a booking someone had checked in to ends it early: the event happened, so calendars
# keep it with its new end instead of deleting it.
ENDED_EARLY = Wording("Ended early: {what}", "Your booking ended early.", ical.Method.REQUEST)

CALENDAR_NOTES = {
    ical.Method.REQUEST: "The invitation in this e-mail puts it in your calendar (or updates it).",
    ical.Method.CANCEL: "The cancellation in this e-mail removes it from your calendar.",
}

_html = Environment(autoescape=True, keep_trailing_newline=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body>
<p>Hello {{ name }},</p>
<p><strong>{{ headline }}</strong></p>
<table role="presentation" cellpadding="4" cellspacing="0">
{% for label, value in facts %}<tr><th align="left" valign="top">{{ label }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>
{% for line in notes %}<p>{{ line }}</p>
{% endfor %}{% if image_alt %}<p><img src="cid:{{ image_cid }}" alt="{{ image_alt }}" width="200" height="200"></p>
{% endif %}<p><a href="{{ link or base_url }}">{{ link_text or "Open Foyer" }}</a></p>
<p>— Foyer</p>
</body></html>
"""
)


def booking_event(
    session: Session, booking: Booking, event: str, reason: str = ""
) -> OutboxMessage:
    """Queue the e-mail (and calendar invitation) for a booking event: created, pending, approved,
    declined, changed, cancelled, released or series_trim."""
    if event not in EVENTS:
        raise ValueError(f"unknown booking event {event!r}")
    # Write the change first, so updated_at (the invitation's DTSTAMP) is this change's time.
    session.flush()
    sender = sender_for(session)
    wording = EVENTS[event]
    if event == "cancelled" and booking.status == BookingStatus.COMPLETED:
        wording = ENDED_EARLY
    site = booking.resource.site
    zone = ZoneInfo(site.time_zone)
    what = f"{booking.resource.name}, {_when(booking.start_at, booking.end_at, zone, short=True)}"
    subject = wording.subject.format(what=what)
    headline = wording.headline
    if event == "changed" and booking.status == BookingStatus.PENDING:
        headline += " It now waits for a coordinator's approval."
    facts = [
        ("What", ical.booking_summary(booking)),
        ("When", _when(booking.start_at, booking.end_at, zone)),
        ("Where", ical.booking_location(booking)),
    ]
    if reason:
        facts.append(("Reason" if event != "series_trim" else "Note", reason))
    notes = [CALENDAR_NOTES[wording.method]] if wording.method else []

    ics_body = None
    if wording.method is not None:
        calendar_event = ical.event_for_booking(
            booking,
            host=sender.host,
            organizer=ical.Person(sender.address, sender.name),
            description="\n".join(
                [f"{label}: {value}" for label, value in facts if label in ("Reason", "Note")]
                + [f"Your bookings: {sender.base_url}"]
            ),
        )
        ics_body = ical.invitation(calendar_event, wording.method).decode("utf-8")

    message = OutboxMessage(
        to_address=booking.user.email,
        to_name=booking.user.name,
        subject=subject,
        text_body=_text(booking.user.name, headline, facts, notes, sender.base_url),
        html_body=_html.render(
            subject=subject,
            name=booking.user.name,
            headline=headline,
            facts=facts,
            notes=notes,
            base_url=sender.base_url,
        ),
        ics_body=ics_body,
        ics_method=str(wording.method) if wording.method else None,
        related_type="booking",
        related_id=str(booking.id),
    )
    session.add(message)
    session.info[OUTBOX_PENDING] = True
    return message


# The Content-ID of a message's attached image, shown inline in its HTML part
IMAGE_CID = "foyer-image"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    alt: str  # the inline image's text alternative


def queue_message(
    session: Session,
    *,
    to_address: str,
    to_name: str,
    subject: str,
    headline: str,
    facts: list[tuple[str, str]],
    notes: list[str],
    link: str = "",
    link_text: str = "",
    related: tuple[str, int] = ("", 0),
    attachment: Attachment | None = None,
) -> OutboxMessage:
    """Queue a plain notice (no calendar invitation), e.g. to a visitor or a host."""
    sender = sender_for(session)
    text = [f"Hello {to_name},", "", headline, ""]
    text += [f"{label + ':':<9}{value}" for label, value in facts]
    text += (
        [""]
        + notes
        + ["", f"{link_text or 'Open Foyer'}: {link or sender.base_url}", "", "— Foyer"]
    )
    message = OutboxMessage(
        to_address=to_address,
        to_name=to_name[:120],  # the column's length; a visitor's name may be longer
        subject=subject,
        text_body="\n".join(text),
        html_body=_html.render(
            subject=subject,
            name=to_name,
            headline=headline,
            facts=facts,
            notes=notes,
            base_url=sender.base_url,
            link=link,
            link_text=link_text,
            image_cid=IMAGE_CID,
            image_alt=attachment.alt if attachment else "",
        ),
        related_type=related[0],
        related_id=str(related[1]) if related[1] else "",
    )
    if attachment is not None:
        message.attachment_name = attachment.filename
        message.attachment_type = attachment.content_type
        message.attachment_data = attachment.data
    session.add(message)
    session.info[OUTBOX_PENDING] = True
    return message


def requeue(
    session: Session,
    actor: Actor,
    message: OutboxMessage,
    *,
    now: datetime,
    mail_configured: bool,
) -> OutboxMessage:
    """Send a failed message again now (one more attempt), or send a kept one once a mail server
    is configured. The attempts counter keeps counting, so the history stays honest."""
    if message.status == OutboxStatus.KEPT and not mail_configured:
        raise RuleViolation(
            {"": "No mail server is configured, so there is nothing to send it with."},
            "no_mail_server",
        )
    if message.status not in (OutboxStatus.FAILED, OutboxStatus.KEPT):
        raise RuleViolation(
            {"": f"This message is {message.status}; only failed or kept ones can be sent again."},
            "not_retryable",
        )
    before = {"status": message.status, "attempts": message.attempts}
    message.status = OutboxStatus.QUEUED
    message.next_attempt_at = now
    session.flush()
    audit.record(
        session, actor, "mail.requeued", message, before=before, after={"status": message.status}
    )
    session.info[OUTBOX_PENDING] = True
    return message


def _when(start: datetime, end: datetime, zone: ZoneInfo, short: bool = False) -> str:
    """ "Tue 1 Dec 2026, 09:00–17:00 CET", naming the zone (both abbreviations across a DST
    change) and the end's date when it is another day."""
    s, e = start.astimezone(zone), end.astimezone(zone)
    first = f"{s:%a %-d %b}" if short else f"{s:%a %-d %b %Y}"
    if s.date() == e.date():
        span = f"{first}, {s:%H:%M}–{e:%H:%M}"
        zones = s.tzname() if s.tzname() == e.tzname() else f"{s.tzname()}/{e.tzname()}"
        text = f"{span} {zones}"
    else:
        text = f"{first}, {s:%H:%M} {s.tzname()} – {e:%a %-d %b}, {e:%H:%M} {e.tzname()}"
    return text if short else f"{text} ({zone.key})"


def _text(
    name: str, headline: str, facts: list[tuple[str, str]], notes: list[str], base_url: str
) -> str:
    lines = [f"Hello {name},", "", headline, ""]
    lines += [f"{label + ':':<8}{value}" for label, value in facts]
    lines += [""] + notes + [f"Your bookings: {base_url}", "", "— Foyer"]
    return "\n".join(lines)
