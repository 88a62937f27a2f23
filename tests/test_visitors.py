"""The visitor rules (portal/services/visitors.py and kiosk_devices.py), below the web layer:
invitations and their codes, pairing, check-in with agreements and the deny list, check-out,
the end-of-day check-out, the roll call and erasure after the retention period."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from datetime import datetime, time, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from integrations.mail import build_email
from portal.config import Settings
from portal.db import utcnow
from portal.errors import RuleViolation
from portal.models import (
    AuditEvent,
    BadgeState,
    Booking,
    BookingStatus,
    CheckoutMethod,
    KioskDevice,
    Notice,
    OutboxMessage,
    Site,
    User,
    Visit,
    VisitImage,
    VisitStatus,
)
from portal.services import kiosk_devices, visitors
from portal.services.audit import Actor
from tests import factories
from tests.conftest import missing_service

SYSTEM = Actor.system("tests")
KEY = b"test-signing-key"


def noon_today(site: Site) -> datetime:
    """12:00 at the site today, so 'today' and business hours never depend on when tests run."""
    from zoneinfo import ZoneInfo

    from portal.timezones import to_utc

    zone = ZoneInfo(site.time_zone)
    return to_utc(datetime.combine(datetime.now(zone).date(), time(12)), zone)


def paired_kiosk(session: Session, site: Site, **kwargs: object) -> KioskDevice:
    device, code = kiosk_devices.create(session, SYSTEM, site, "Main lobby", now=utcnow())
    for name, value in kwargs.items():
        setattr(device, name, value)
    kiosk_devices.pair(session, code, now=utcnow())
    return device


def invite(
    session: Session, host: User, site: Site, *, name: str = "Anna Kowalski", now: datetime
) -> tuple[Visit, str]:
    from zoneinfo import ZoneInfo

    day = now.astimezone(ZoneInfo(site.time_zone)).date()
    return visitors.invite(
        session,
        Actor.for_user(host),
        host,
        site=site,
        details=visitors.VisitorDetails.from_form(name, "anna@acme.example", "Acme"),
        day=day,
        start_time="11:00",
        end_time="15:00",
        note="Ask for me at the front desk.",
        now=now - timedelta(hours=2),
    )


def signature_url(stroke: bool = True) -> str:
    image = Image.new("RGBA", (400, 160), (255, 255, 255, 0))
    if stroke:
        ImageDraw.Draw(image).line(
            [(20, 120), (120, 40), (220, 130), (380, 30)], fill="black", width=6
        )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def berlin(db: Session) -> Site:
    return factories.site(db, "berlin", visitor_directions="Enter from Torstraße, 2nd floor.")


@pytest.fixture
def host(db: Session, berlin: Site) -> User:
    return factories.user(db, name="Jonas Weber", home_site=berlin)


def test_names_match_whatever_the_case_accents_spacing_or_apostrophes() -> None:
    assert visitors.name_key("  José   O’Néil ") == visitors.name_key("jose o'neil")
    assert visitors.name_key("ÅSA Öberg") == "asa oberg"
    assert visitors.name_key("李小龍") == "李小龍"
    assert visitors.name_key("محمد علي") == "محمد علي"


def test_an_invitation_mails_a_code_that_the_sites_kiosk_accepts_once(
    db: Session, berlin: Site, host: User, tmp_path: Path
) -> None:
    now = noon_today(berlin)
    visit, code = invite(db, host, berlin, now=now)
    assert visit.status == VisitStatus.EXPECTED
    assert visit.code_hash != code and len(visit.code_hash or "") == 64  # only a digest is kept

    message = db.scalar(
        select(OutboxMessage).where(OutboxMessage.to_address == "anna@acme.example")
    )
    assert message is not None
    assert code in message.text_body and "Torstraße" in message.text_body
    assert "Jonas Weber has invited you" in message.text_body
    email = build_email(message, Settings(instance_path=Path("/tmp")))
    parsed = message_from_bytes(email.as_bytes(), policy=default_policy)
    images = [part for part in parsed.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == "<foyer-image>"
    html = parsed.get_body(("html",)).get_content()
    assert 'src="cid:foyer-image"' in html
    if shutil.which("zbarimg"):
        qr_file = tmp_path / "qr.png"
        qr_file.write_bytes(images[0].get_content())
        decoded = subprocess.run(
            ["zbarimg", "--raw", "-q", str(qr_file)], capture_output=True, check=True
        )
        assert decoded.stdout.decode().strip() == code
    else:
        missing_service(
            "zbarimg", "cannot decode the invitation's QR code (apt install zbar-tools)"
        )

    typed = code.lower().replace("-", " ")
    assert visitors.find_invitation(db, berlin, typed, now=now).id == visit.id
    device = paired_kiosk(db, berlin)
    outcome = visitors.check_in_invited(
        db, device, visit.id, visitors.Signing(submission_key="k1"), now=now
    )
    assert outcome.visit.status == VisitStatus.CHECKED_IN and not outcome.denied
    with pytest.raises(RuleViolation) as refused:
        visitors.find_invitation(db, berlin, code, now=now)
    assert refused.value.rule == "invitation_unknown"  # the code stopped working


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "full name"),
        ("name", "x" * 10_000, "at most 200"),
        ("email", "not-an-address", "e-mail address like"),
        ("email", "", "invitation goes there"),
        ("company", "c" * 10_000, "at most 200"),
    ],
)
def test_invitation_details_are_checked(
    db: Session, berlin: Site, host: User, field: str, value: str, message: str
) -> None:
    values = {"name": "Anna", "email": "anna@acme.example", "company": "Acme"}
    values[field] = value
    with pytest.raises(RuleViolation) as refused:
        visitors.invite(
            db,
            SYSTEM,
            host,
            site=berlin,
            details=visitors.VisitorDetails.from_form(**values),
            day=factories.weekday_ahead(),
            start_time="10:00",
            end_time="12:00",
            note="",
            now=utcnow(),
        )
    assert message in refused.value.errors[field]
    assert db.scalar(select(func.count(Visit.id))) == 0


@pytest.mark.parametrize(
    ("day_offset", "start", "end", "field", "message"),
    [
        (-1, "10:00", "12:00", "day", "has passed"),
        (1, "12:00", "10:00", "end_time", "end after it starts"),
        (1, "10:00", "10:05", "end_time", "at least 15 minutes"),
        (1, "7:00", "23:00", "end_time", "at most 14 hours"),
        (400, "10:00", "12:00", "day", "a year ahead"),
        (1, "25:00", "12:00", "start_time", "HH:MM"),
    ],
)
def test_invitation_times_are_checked(
    db: Session,
    berlin: Site,
    host: User,
    day_offset: int,
    start: str,
    end: str,
    field: str,
    message: str,
) -> None:
    with pytest.raises(RuleViolation) as refused:
        visitors.invite(
            db,
            SYSTEM,
            host,
            site=berlin,
            details=visitors.VisitorDetails.from_form("Anna", "anna@acme.example", ""),
            day=utcnow().date() + timedelta(days=day_offset),
            start_time=start,
            end_time=end,
            note="",
            now=utcnow(),
        )
    assert message in refused.value.errors[field]


def test_the_kiosk_refuses_codes_for_other_sites_days_or_states(
    db: Session, berlin: Site, host: User
) -> None:
    now = noon_today(berlin)
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    visit, code = invite(db, host, berlin, now=now)

    def rule(site: Site, when: datetime) -> str:
        with pytest.raises(RuleViolation) as refused:
            visitors.find_invitation(db, site, code, now=when)
        return refused.value.rule

    assert rule(new_york, now) == "invitation_site"
    assert rule(berlin, now + timedelta(days=1)) == "invitation_expired"
    assert rule(berlin, now - timedelta(days=1)) == "invitation_later"
    with pytest.raises(RuleViolation) as refused:
        visitors.find_invitation(db, berlin, "ZZZZ-ZZZZ", now=now)
    assert refused.value.rule == "invitation_unknown"
    with pytest.raises(RuleViolation) as refused:
        visitors.find_invitation(db, berlin, "12", now=now)
    assert refused.value.rule == "code_format"

    visitors.cancel_invitation(db, SYSTEM, visit, now=now)
    with pytest.raises(RuleViolation) as refused:
        visitors.expected_invitation(db, berlin, visit.id, now=now)
    assert refused.value.rule == "invitation_cancelled"
    assert "Cancelled" in db.scalars(select(OutboxMessage.subject)).all()[-1]


def test_checking_in_tells_the_host_at_once(db: Session, berlin: Site, host: User) -> None:
    now = noon_today(berlin)
    visit, _code = invite(db, host, berlin, now=now)
    device = paired_kiosk(db, berlin, printer_uri="socket://127.0.0.1:9")
    outcome = visitors.check_in_invited(
        db, device, visit.id, visitors.Signing(submission_key="tap"), company="Acme GmbH", now=now
    )
    assert outcome.visit.visitor_company == "Acme GmbH"
    assert outcome.visit.badge_state == BadgeState.QUEUED
    assert visit.id in db.info[visitors.BADGES_PENDING]
    notice = db.scalar(select(Notice).where(Notice.user_id == host.id))
    assert notice is not None and "Anna Kowalski (Acme GmbH) has arrived" in notice.message
    mail = db.scalar(select(OutboxMessage).where(OutboxMessage.to_address == host.email))
    assert mail is not None and mail.subject.startswith("Your visitor has arrived")

    again = visitors.check_in_invited(
        db, device, visit.id, visitors.Signing(submission_key="tap"), now=now
    )
    assert again.repeated and again.visit.id == visit.id
    assert db.scalar(select(func.count(Notice.id)).where(Notice.user_id == host.id)) == 1


def test_a_walk_in_signs_the_current_agreement_once_per_version(
    db: Session, berlin: Site, host: User
) -> None:
    now = noon_today(berlin)
    device = paired_kiosk(db, berlin)
    visitors.publish_agreement(db, SYSTEM, berlin, title="Visitor NDA", body="Keep it secret.")
    details = visitors.VisitorDetails.from_form("Zoë  D'Arcy", "zoe@example.org", "Mill & Co")

    with pytest.raises(RuleViolation) as refused:
        visitors.check_in_walk_in(
            db,
            device,
            details,
            visitors.Signing(
                signed_name="", signature_data_url=signature_url(False), host_id=host.id
            ),
            now=now,
        )
    assert set(refused.value.errors) == {"signed_name", "signature"}

    first = visitors.check_in_walk_in(
        db,
        device,
        details,
        visitors.Signing(
            signed_name="Zoë D'Arcy",
            signature_data_url=signature_url(),
            host_id=host.id,
            submission_key="w1",
        ),
        now=now,
    )
    assert first.visit.kind == "walk_in" and first.visit.signed_at is not None
    assert first.visit.agreement.version == 1
    stored = db.scalar(select(VisitImage).where(VisitImage.visit_id == first.visit.id))
    assert stored is not None and stored.data.startswith(b"\x89PNG")

    # The same person (by e-mail, whatever the case) returns: no signature needed
    again = visitors.VisitorDetails.from_form("Zoe DArcy", "ZOE@example.org", "")
    assert visitors.agreement_to_sign(db, berlin, again) is None
    visitors.publish_agreement(db, SYSTEM, berlin, title="Visitor NDA", body="New terms.")
    assert visitors.agreement_to_sign(db, berlin, again).version == 2  # type: ignore[union-attr]


def test_a_walk_in_needs_a_host_of_this_site_who_still_works_here(
    db: Session, berlin: Site, host: User
) -> None:
    now = noon_today(berlin)
    device = paired_kiosk(db, berlin)
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    elsewhere = factories.user(db, home_site=new_york)
    left = factories.user(db, home_site=berlin, active=False)
    details = visitors.VisitorDetails.from_form("Ana", "", "")
    for person, rule_field in ((elsewhere, "host"), (left, "host"), (None, "host")):
        with pytest.raises(RuleViolation) as refused:
            visitors.check_in_walk_in(
                db,
                device,
                details,
                visitors.Signing(host_id=person.id if person else None),
                now=now,
            )
        assert rule_field in refused.value.errors
    assert [h.name for h in visitors.search_hosts(db, berlin, "jon")] == ["Jonas Weber"]
    assert visitors.search_hosts(db, berlin, "j") == []  # two characters at least
    assert visitors.search_hosts(db, berlin, left.name[:4]) == []


def test_an_invited_visitor_whose_host_left_is_met_by_the_coordinator(
    db: Session, berlin: Site, host: User
) -> None:
    now = noon_today(berlin)
    coordinator = factories.user(db, coordinator_of=berlin)
    visit, _code = invite(db, host, berlin, now=now)
    host.active = False
    outcome = visitors.check_in_invited(
        db, paired_kiosk(db, berlin), visit.id, visitors.Signing(), now=now
    )
    assert outcome.host_unavailable and outcome.visit.status == VisitStatus.CHECKED_IN
    notice = db.scalar(select(Notice).where(Notice.user_id == coordinator.id))
    assert notice is not None and notice.kind == "host_unavailable"


def test_the_deny_list_stops_a_match_quietly_and_alerts_coordinators(
    db: Session, berlin: Site, host: User
) -> None:
    now = noon_today(berlin)
    coordinator = factories.user(db, coordinator_of=berlin)
    visitors.add_deny_entry(
        db, SYSTEM, site=None, name="Mallory  Österberg", email="", reason="Trespass 2025"
    )
    device = paired_kiosk(db, berlin, printer_uri="socket://127.0.0.1:9")
    outcome = visitors.check_in_walk_in(
        db,
        device,
        visitors.VisitorDetails.from_form("mallory osterberg", "", ""),
        visitors.Signing(host_id=host.id, submission_key="d1"),
        now=now,
    )
    assert outcome.denied
    assert outcome.visit.status == VisitStatus.DENIED
    assert outcome.visit.badge_state == BadgeState.NONE  # nothing printed
    assert not db.info.get(visitors.BADGES_PENDING)
    assert db.scalar(select(func.count(Notice.id)).where(Notice.user_id == host.id)) == 0
    alert = db.scalar(select(Notice).where(Notice.user_id == coordinator.id))
    assert alert is not None and alert.kind == "deny_list_stop"
    assert db.scalar(select(OutboxMessage).where(OutboxMessage.to_address == coordinator.email))

    # a match by e-mail only, for this site only
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    visitors.add_deny_entry(db, SYSTEM, site=new_york, name="", email="EVE@x.example", reason="")
    details = visitors.VisitorDetails.from_form("Eve", "eve@x.example", "")
    assert visitors.deny_match(db, berlin.id, details) is None
    assert visitors.deny_match(db, new_york.id, details) is not None


def test_checking_out_by_badge_code_by_host_and_at_the_end_of_the_day(
    db: Session, berlin: Site, host: User
) -> None:
    now = noon_today(berlin)
    device = paired_kiosk(db, berlin)

    def walk_in(name: str) -> Visit:
        return visitors.check_in_walk_in(
            db,
            device,
            visitors.VisitorDetails.from_form(name, "", ""),
            visitors.Signing(host_id=host.id),
            now=now,
        ).visit

    first, second, third = walk_in("Ada One"), walk_in("Ben Two"), walk_in("Cy Three")
    code = visitors.checkout_code(first, KEY)
    assert visitors.visit_for_checkout_code(db, berlin, code, KEY).id == first.id
    for forged in (
        code[:-1] + ("0" if code[-1] != "0" else "1"),
        f"FOYER-OUT:{second.id}.{'0' * 20}",
        "x",
    ):
        with pytest.raises(RuleViolation):
            visitors.visit_for_checkout_code(db, berlin, forged, KEY)
    assert visitors.check_out(db, SYSTEM, first, CheckoutMethod.KIOSK, now=now)
    assert not visitors.check_out(db, SYSTEM, first, CheckoutMethod.KIOSK, now=now)
    with pytest.raises(RuleViolation) as refused:
        visitors.visit_for_checkout_code(db, berlin, code, KEY)
    assert refused.value.rule == "already_checked_out"
    assert [m.display_name for m in visitors.checked_in_now(db, berlin, "ben")] == ["Ben T."]

    assert visitors.check_out(db, SYSTEM, second, CheckoutMethod.HOST, now=now)
    # before closing time nobody is checked out; after it, everyone still in
    assert visitors.check_out_at_end_of_day(db, now=now) == 0
    after_close = now + timedelta(hours=7, minutes=1)  # 19:01 at the site
    assert visitors.check_out_at_end_of_day(db, now=after_close) == 1
    db.refresh(third)
    assert third.status == VisitStatus.CHECKED_OUT
    assert third.checkout_method == CheckoutMethod.END_OF_DAY
    assert visitors.check_out_at_end_of_day(db, now=after_close) == 0

    # Someone arriving after closing (an evening event) stays in until their day is over.
    late = visitors.check_in_walk_in(
        db,
        device,
        visitors.VisitorDetails.from_form("Dee Late", "", ""),
        visitors.Signing(host_id=host.id),
        now=after_close + timedelta(minutes=30),
    ).visit
    assert visitors.check_out_at_end_of_day(db, now=after_close + timedelta(minutes=45)) == 0
    db.refresh(late)
    assert late.status == VisitStatus.CHECKED_IN
    next_morning = after_close + timedelta(hours=6)  # 01:01, the next local day
    assert visitors.check_out_at_end_of_day(db, now=next_morning) == 1


def test_expected_visitors_show_only_enough_to_recognise_oneself(
    db: Session, berlin: Site, host: User
) -> None:
    now = noon_today(berlin)
    invite(db, host, berlin, name="Anna Kowalski", now=now)
    invite(db, host, berlin, name="Bob Annan", now=now)
    matches = visitors.expected_today(db, berlin, "ann", now=now)
    assert sorted(m.display_name for m in matches) == ["Anna K.", "Bob A."]
    assert {m.host_display for m in matches} == {"Jonas W."}
    assert visitors.expected_today(db, berlin, "a", now=now) == []
    assert visitors.expected_today(db, berlin, "%", now=now) == []
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    assert visitors.expected_today(db, new_york, "ann", now=now) == []


def test_roll_call_lists_visitors_in_and_employees_checked_in(
    db: Session, berlin: Site, host: User
) -> None:
    now = noon_today(berlin)
    device = paired_kiosk(db, berlin)
    visit = visitors.check_in_walk_in(
        db,
        device,
        visitors.VisitorDetails.from_form("Ada Lovelace", "", "Analytical"),
        visitors.Signing(host_id=host.id),
        now=now,
    ).visit
    desk = factories.desk(db, factories.floor(db, berlin))
    db.add(
        Booking(
            resource_id=desk.id,
            user_id=host.id,
            created_by_id=host.id,
            blocked_until=now + timedelta(hours=4),
            start_at=now - timedelta(hours=3),
            end_at=now + timedelta(hours=4),
            status=BookingStatus.CHECKED_IN,
            checked_in_at=now - timedelta(hours=3),
        )
    )
    db.flush()
    call = visitors.roll_call(db, berlin, now=now)
    assert [p.name for p in call.visitors] == ["Ada Lovelace"]
    assert [p.name for p in call.employees] == ["Jonas Weber"]
    assert call.missing == 2
    visitors.mark_accounted(db, SYSTEM, berlin, f"visit:{visit.id}", True, now=now)
    visitors.mark_accounted(db, SYSTEM, berlin, f"visit:{visit.id}", True, now=now)  # idempotent
    assert visitors.roll_call(db, berlin, now=now).missing == 1
    visitors.mark_accounted(db, SYSTEM, berlin, f"visit:{visit.id}", False, now=now)
    assert visitors.roll_call(db, berlin, now=now).missing == 2
    with pytest.raises(RuleViolation):
        visitors.mark_accounted(db, SYSTEM, berlin, "drop table", True, now=now)


def test_personal_data_is_erased_after_the_retention_period(
    db: Session, berlin: Site, host: User
) -> None:
    berlin.visitor_retention_days = 30
    now = noon_today(berlin)
    device = paired_kiosk(db, berlin)
    visitors.publish_agreement(db, SYSTEM, berlin, title="NDA", body="Terms.")
    old = visitors.check_in_walk_in(
        db,
        device,
        visitors.VisitorDetails.from_form("Old Visitor", "old@example.org", "Acme"),
        visitors.Signing(
            signed_name="Old Visitor", signature_data_url=signature_url(), host_id=host.id
        ),
        now=now - timedelta(days=31),
    ).visit
    visitors.check_out(db, SYSTEM, old, CheckoutMethod.KIOSK, now=now - timedelta(days=31))
    recent, _code = invite(db, host, berlin, now=now)

    assert visitors.erase_expired(db, now=now) == 1
    db.refresh(old)
    assert old.erased_at is not None
    assert (old.visitor_name, old.visitor_email, old.visitor_company, old.signed_name) == (
        "",
        "",
        "",
        "",
    )
    assert old.status == VisitStatus.CHECKED_OUT and old.site_id == berlin.id  # counts survive
    assert db.scalar(select(func.count(VisitImage.id)).where(VisitImage.visit_id == old.id)) == 0
    assert recent.visitor_name == "Anna Kowalski"
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "visitors.erased"))
    assert event is not None and event.after["count"] == 1
    assert visitors.erase_expired(db, now=now) == 0


def test_pairing_codes_work_once_and_expire(db: Session, berlin: Site) -> None:
    now = utcnow()
    device, code = kiosk_devices.create(db, SYSTEM, berlin, "Lobby tablet", now=now)
    assert len(code) == 9 and code[4] == "-"
    with pytest.raises(RuleViolation) as refused:
        kiosk_devices.pair(db, code, now=now + timedelta(minutes=11))
    assert refused.value.rule == "pairing_code_expired"
    paired, token = kiosk_devices.pair(db, code.lower(), now=now)
    assert paired.id == device.id and device.token_hash != token
    assert kiosk_devices.authenticate(db, token, now=now) is device
    with pytest.raises(RuleViolation) as refused:
        kiosk_devices.pair(db, code, now=now)
    assert refused.value.rule == "pairing_code_unknown"

    # pairing a replacement tablet ends the old tablet's credential
    new_code = kiosk_devices.new_pairing_code(db, SYSTEM, device, now=now)
    assert kiosk_devices.authenticate(db, token, now=now) is device  # until the code is used
    _same, new_token = kiosk_devices.pair(db, new_code, now=now)
    assert kiosk_devices.authenticate(db, token, now=now) is None
    kiosk_devices.revoke(db, SYSTEM, device, now=now)
    assert kiosk_devices.authenticate(db, new_token, now=now) is None
    assert not device.is_paired


class RawPrinter:
    """A JetDirect-style printer on loopback: accepts a connection and keeps what it receives."""

    def __init__(self) -> None:
        import socket
        import threading

        self.jobs: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                chunks = []
                while chunk := connection.recv(65536):
                    chunks.append(chunk)
                self.jobs.append(b"".join(chunks))

    def close(self) -> None:
        self.server.close()


def test_badges_print_after_check_in_and_a_printer_that_is_off_is_retried(
    db: Session, berlin: Site, host: User
) -> None:
    """The check-in never waits for the printer: the badge is queued, printed by the job, and a
    printer that is off leaves a clear error and a retry."""
    import socket

    from portal.services import lobby_printing

    with socket.create_server(("127.0.0.1", 0)) as probe:  # a port nobody listens on afterwards
        dead_port = probe.getsockname()[1]
    now = noon_today(berlin)
    device = paired_kiosk(db, berlin, printer_uri=f"socket://127.0.0.1:{dead_port}")
    visit = visitors.check_in_walk_in(
        db,
        device,
        visitors.VisitorDetails.from_form("Lyra O'Brien-王", "", "Acme"),
        visitors.Signing(host_id=host.id),
        now=now,
    ).visit
    db.commit()  # as the kiosk's request does; print_due runs its own transactions

    counts = lobby_printing.print_due(db, KEY, now=now, only={visit.id})
    assert counts == {"printed": 0, "failed": 1}
    db.refresh(visit)
    assert visit.status == VisitStatus.CHECKED_IN  # the check-in stands
    assert visit.badge_state == BadgeState.FAILED and str(dead_port) in visit.badge_error

    printer = RawPrinter()
    try:
        device.printer_uri = f"socket://127.0.0.1:{printer.port}"
        db.commit()
        # not yet: failed badges wait a little before the next attempt
        assert lobby_printing.print_due(db, KEY, now=now + timedelta(seconds=10)) == {
            "printed": 0,
            "failed": 0,
        }
        later = now + timedelta(minutes=1)
        assert lobby_printing.print_due(db, KEY, now=later) == {"printed": 1, "failed": 0}
        db.refresh(visit)
        assert visit.badge_state == BadgeState.PRINTED and visit.badge_error == ""
        import time as clock

        for _ in range(50):
            if printer.jobs:
                break
            clock.sleep(0.05)
        assert printer.jobs and printer.jobs[0].startswith(b"%PDF")
    finally:
        printer.close()


def test_two_taps_racing_on_two_workers_make_one_visit_and_both_see_it(
    db: Session, berlin: Site, host: User, session_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second tap's lookup ran before the first committed; its insert then meets the unique
    key. It must answer with the first tap's visit, not a broken transaction (a 500)."""
    now = noon_today(berlin)
    device = paired_kiosk(db, berlin)
    details = visitors.VisitorDetails.from_form("Ola Nordmann", "ola@example.org", "")
    first = visitors.check_in_walk_in(
        db, device, details, visitors.Signing(host_id=host.id, submission_key="race"), now=now
    )
    db.commit()

    real_lookup = visitors._by_submission_key
    looks = []

    def lookup_before_the_first_commit(session: Session, key: str) -> Visit | None:
        looks.append(key)  # the second tap's first look finds nothing yet
        return None if len(looks) == 1 else real_lookup(session, key)

    monkeypatch.setattr(visitors, "_by_submission_key", lookup_before_the_first_commit)
    other = session_factory()
    try:
        second = visitors.check_in_walk_in(
            other,
            other.get(KioskDevice, device.id),
            details,
            visitors.Signing(host_id=host.id, submission_key="race"),
            now=now,
        )
        assert second.repeated and second.visit.id == first.visit.id
        other.commit()  # the session is still usable: the request's own commit works
    finally:
        other.close()
    assert db.scalar(select(func.count(Visit.id)).where(Visit.submission_key == "race")) == 1
