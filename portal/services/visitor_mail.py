"""The e-mails of a visit: the invitation (with its QR code) and its cancellation to the visitor,
"your visitor has arrived" to the host, and alerts to the site's coordinators."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

import segno
from sqlalchemy.orm import Session

from portal.models import User, Visit
from portal.services.notifications import Attachment, queue_message, sender_for
from portal.timezones import format_local


def _when(visit: Visit) -> str:
    zone = ZoneInfo(visit.site.time_zone)
    return f"{format_local(visit.expected_start, zone)} – {format_local(visit.expected_end, zone, with_date=False)}"


def qr_png(value: str, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    # make_qr, never a Micro QR: phone cameras and zbar cannot read those
    segno.make_qr(value, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def invitation(session: Session, visit: Visit, code: str) -> None:
    site = visit.site
    facts = [
        ("When", _when(visit)),
        ("Where", ", ".join(p for p in (site.name, site.address) if p)),
        ("Host", f"{visit.host.name}"),
        ("Your code", code),
    ]
    notes = []
    if visit.host_note:
        notes.append(f"A note from {visit.host.name}: {visit.host_note}")
    if site.visitor_directions:
        notes.append(f"Finding us: {site.visitor_directions}")
    notes.append(
        "When you arrive, scan the QR code in this e-mail at the lobby kiosk, or type your code."
    )
    queue_message(
        session,
        to_address=visit.visitor_email,
        to_name=visit.visitor_name,
        subject=f"Your visit to {site.name} on {visit.expected_start.astimezone(ZoneInfo(site.time_zone)):%a %-d %b}",
        headline=f"{visit.host.name} has invited you to {site.name}.",
        facts=facts,
        notes=notes,
        link=sender_for(session).base_url,
        link_text="Foyer",
        related=("visit", visit.id),
        attachment=Attachment("check-in-code.png", "image/png", qr_png(code), f"QR code {code}"),
    )


def invitation_cancelled(session: Session, visit: Visit) -> None:
    if not visit.visitor_email:
        return
    queue_message(
        session,
        to_address=visit.visitor_email,
        to_name=visit.visitor_name,
        subject=f"Cancelled: your visit to {visit.site.name}",
        headline=f"{visit.host.name} has cancelled your visit. Your code no longer works.",
        facts=[("When", _when(visit)), ("Where", visit.site.name)],
        notes=[f"Questions? Write to {visit.host.name} at {visit.host.email}."],
        related=("visit", visit.id),
    )


def arrived(session: Session, visit: Visit) -> None:
    base = sender_for(session).base_url
    who = visit.visitor_name + (f" ({visit.visitor_company})" if visit.visitor_company else "")
    queue_message(
        session,
        to_address=visit.host.email,
        to_name=visit.host.name,
        subject=f"Your visitor has arrived: {who}",
        headline=f"{who} has checked in at {visit.site.name} and is waiting in the lobby.",
        facts=[("Visitor", who), ("Purpose", visit.purpose or "—")],
        notes=[],
        link=f"{base}/visitors/{visit.id}",
        link_text="See the visit",
        related=("visit", visit.id),
    )


def coordinator_alert(session: Session, coordinator: User, visit: Visit, text: str) -> None:
    base = sender_for(session).base_url
    queue_message(
        session,
        to_address=coordinator.email,
        to_name=coordinator.name,
        subject=f"Lobby alert at {visit.site.name}",
        headline=text,
        facts=[("Host", visit.host.name)],
        notes=[],
        link=f"{base}/visitors/{visit.id}",
        link_text="See the visit",
        related=("visit", visit.id),
    )
