"""The demo company's lobby: directions and a visitor agreement per site, a kiosk per lobby and a
few visitors expected today for the demo employee, so `make run` shows the whole visitor flow.
Idempotent: a re-run adds nothing twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import KioskDevice, Site, Visit
from portal.services import accounts, kiosk_devices, visitors
from portal.services.audit import Actor

DIRECTIONS = {
    "berlin": "Enter the Torhaus from Torstraße; the lobby is on the ground floor, on the left.",
    "new-york": "Use the Hudson Street entrance and take the elevator to the 10th floor lobby.",
}
AGREEMENT = (
    "Visitor agreement",
    "Welcome! While you are our guest:\n\n"
    "1. Confidentiality. Anything you see or hear about our business, customers or products "
    "during your visit is confidential. Do not share it, photograph it or record it.\n"
    "2. Safety. Wear your visitor badge where it can be seen. In an alarm, leave by the nearest "
    "exit with your host and wait at the assembly point across the street.\n"
    "3. Escort. Stay with your host outside the lobby and meeting rooms.\n"
    "4. Your data. We keep your name, company, signature and visit times for "
    "{days} days, then erase them.",
)
EXPECTED = [  # (visitor, e-mail, company, from, to)
    ("Anna Kowalski", "anna.kowalski@example.org", "Nordlicht Design", "09:30", "12:00"),
    ("Tomás Ortega", "tomas.ortega@example.org", "Ortega & Hijos", "13:00", "15:00"),
    ("Mei Chen", "mei.chen@example.org", "Lumen Labs", "15:30", "17:00"),
]


@dataclass(frozen=True)
class DemoKiosk:
    site_name: str
    name: str
    pairing_code: str | None  # None: already paired


def seed_visitors(session: Session, now: datetime) -> list[DemoKiosk]:
    actor = Actor.system("seed-demo")
    kiosks = []
    for site in session.scalars(select(Site).order_by(Site.id)):
        if not site.visitor_directions:
            site.visitor_directions = DIRECTIONS.get(site.slug, "")
        if visitors.current_agreement(session, site) is None:
            title, body = AGREEMENT
            visitors.publish_agreement(
                session,
                actor,
                site,
                title=title,
                body=body.format(days=site.visitor_retention_days),
            )
        device = session.scalar(select(KioskDevice).where(KioskDevice.site_id == site.id))
        if device is None:
            device, code = kiosk_devices.create(session, actor, site, "Main lobby", now=now)
        elif device.is_paired:
            code = None
        else:
            code = kiosk_devices.new_pairing_code(session, actor, device, now=now)
        kiosks.append(DemoKiosk(site.name, device.name, code))
    _expected_today(session, actor, now)
    return kiosks


def _expected_today(session: Session, actor: Actor, now: datetime) -> None:
    host = accounts.find_by_email(session, "lena.fischer@example.com")
    if host is None or host.home_site is None:
        return
    site = host.home_site
    today = now.astimezone(ZoneInfo(site.time_zone)).date()
    already = set(
        session.scalars(
            select(Visit.visitor_name).where(Visit.host_id == host.id, Visit.local_date == today)
        )
    )
    for name, email, company, start, end in EXPECTED:
        if name in already:
            continue
        try:
            visitors.invite(
                session,
                actor,
                host,
                site=site,
                details=visitors.VisitorDetails.from_form(name, email, company),
                day=today,
                start_time=start,
                end_time=end,
                note="",
                now=now - timedelta(minutes=1),
            )
        except RuleViolation:
            continue  # late in the day: that visit's time has passed
