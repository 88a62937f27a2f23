"""Printing visitor badges on the lobby's label printer, after the check-in has committed.

The check-in never waits for a printer: it marks the badge queued, and this module (run by a job at
once and then every minute) renders the label and sends it. A printer that is off leaves the badge
failed with the reason, which the kiosk and the admin view show; it is tried again every minute
while the visitor is in. A worker claims a badge (state "printing", committed) before talking to the
printer, so two workers never print one badge and no lock is held while a printer is slow."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from integrations.printing import PrinterUnavailable, send_to_printer
from portal.models import BadgeState, KioskDevice, Visit, VisitStatus
from portal.services import visitors
from portal.services.badges import BadgeContent, LabelUnavailable, render_label_pdf

GIVE_UP_AFTER = 30  # attempts (about half an hour); the lobby prints in the browser meanwhile
RETRY_AFTER = timedelta(seconds=50)
CLAIM_LEASE = timedelta(minutes=2)  # a "printing" claim older than this belongs to a dead worker


def badge_content(visit: Visit, key: bytes) -> BadgeContent:
    zone = ZoneInfo(visit.site.time_zone)
    day = (visit.checked_in_at or visit.expected_start).astimezone(zone)
    return BadgeContent(
        visitor_name=visit.visitor_name,
        company=visit.visitor_company,
        host_name=visit.host.name,
        site_name=visit.site.name,
        visit_date=day.strftime("%a %-d %b %Y"),
        checkout_code=visitors.checkout_code(visit, key),
    )


def print_due(
    session: Session, key: bytes, *, now: datetime, only: set[int] | None = None
) -> dict[str, int]:
    """Print badges that are queued (`only`: just these, right after their check-in), retry
    failed ones and reclaim abandoned claims."""
    counts = {"printed": 0, "failed": 0}
    while True:
        with session.begin():
            due = or_(
                Visit.badge_state == BadgeState.QUEUED,
                (Visit.badge_state == BadgeState.FAILED) & (Visit.updated_at <= now - RETRY_AFTER),
                (Visit.badge_state == BadgeState.PRINTING)
                & (Visit.updated_at <= now - CLAIM_LEASE),
            )
            if only is not None:
                due = (Visit.badge_state == BadgeState.QUEUED) & Visit.id.in_(only)
            visit = session.scalar(
                select(Visit)
                .where(
                    Visit.status == VisitStatus.CHECKED_IN,
                    Visit.badge_attempts < GIVE_UP_AFTER,
                    due,
                )
                .order_by(Visit.id)
                .limit(1)
                .with_for_update(skip_locked=True, of=Visit)
            )
            if visit is None:
                return counts
            device = session.get(KioskDevice, visit.checked_in_device_id or 0)
            visit.badge_attempts += 1
            visit.updated_at = now
            if device is None or not device.printer_uri:
                visit.badge_state = BadgeState.NONE  # no printer any more: the browser prints
                continue
            visit.badge_state = BadgeState.PRINTING
            visit_id, uri, stock = visit.id, device.printer_uri, device.label_stock
            content = badge_content(visit, key)
        try:
            pdf = render_label_pdf(content, stock)
            send_to_printer(uri, pdf, job_name=f"Visitor badge {visit_id}")
        except (PrinterUnavailable, LabelUnavailable) as exc:
            state, error = BadgeState.FAILED, str(exc)[:500]
        else:
            state, error = BadgeState.PRINTED, ""
        with session.begin():
            # Only if our claim still stands (an abandoned claim may have been taken over).
            # updated_at is given explicitly: it times the next retry.
            session.execute(
                update(Visit)
                .where(Visit.id == visit_id, Visit.badge_state == BadgeState.PRINTING)
                .values(badge_state=state, badge_error=error, updated_at=now)
            )
        counts["printed" if state == BadgeState.PRINTED else "failed"] += 1


def reprint(session: Session, visit: Visit) -> None:
    """The lobby asks for the badge again (paper jam, printer back on)."""
    visit.badge_state = BadgeState.QUEUED
    visit.badge_attempts = 0
    visit.badge_error = ""
    session.info.setdefault(visitors.BADGES_PENDING, set()).add(visit.id)
