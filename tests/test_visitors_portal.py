"""An employee invites a visitor, follows the visit (today, upcoming, past), cancels or checks
them out, and opens the visit's page: its timeline, the agreement signed, the signature and photo
(served only to the people who may see them) and the badge. Nobody sees another's visit."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import (
    AuditEvent,
    CheckoutMethod,
    KioskDevice,
    OutboxMessage,
    Site,
    User,
    Visit,
    VisitImage,
    VisitKind,
    VisitorAgreement,
    VisitStatus,
)
from portal.services import visitors
from tests import factories

HOST = "hanna@example.com"
OTHER = "otto@example.com"
COORDINATOR = "cora@example.com"  # Berlin
NY_COORDINATOR = "nate@example.com"  # New York
CODE = re.compile(r"\b([2-9A-Z]{4}-[2-9A-Z]{4})\b")


# ---------------------------------------------------------------------------------------------
# Arrangements (also used by tests/test_lobby.py and tests/test_kiosk_admin.py)


def arrange_office(db: Session) -> dict[str, Any]:
    """Berlin with a host, a colleague and a coordinator; New York with its own coordinator."""
    berlin = factories.site(db, "berlin")
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    people = {
        "berlin": berlin,
        "new_york": new_york,
        "host": factories.user(db, name="Hanna Host", email=HOST, home_site=berlin),
        "other": factories.user(db, name="Otto Other", email=OTHER, home_site=berlin),
        "coordinator": factories.user(
            db, name="Cora Coordinator", email=COORDINATOR, coordinator_of=berlin, home_site=berlin
        ),
        "ny_coordinator": factories.user(
            db, name="Nate York", email=NY_COORDINATOR, coordinator_of=new_york, home_site=new_york
        ),
    }
    db.commit()
    return people


@pytest.fixture
def office(db):
    return arrange_office(db)


def make_visit(
    db: Session,
    site: Site,
    host: User,
    name: str = "Anna Kowalski",
    *,
    status: str = VisitStatus.EXPECTED,
    days_from_today: int = 0,
    company: str = "Acme",
    email: str = "anna@example.org",
    device: KioskDevice | None = None,
    kind: str = VisitKind.INVITED,
) -> Visit:
    """A visit written directly (no e-mail), on a day relative to the site's today."""
    now = utcnow()
    day = visitors.today_at(site, now) + timedelta(days=days_from_today)
    start = now + timedelta(days=days_from_today, hours=-1)
    visit = Visit(
        site_id=site.id,
        host_id=host.id,
        kind=kind,
        status=status,
        visitor_name=name,
        visitor_email=email,
        visitor_company=company,
        name_key=visitors.name_key(name),
        email_key=visitors.email_key(email),
        expected_start=start,
        expected_end=start + timedelta(hours=3),
        local_date=day,
        created_by_id=host.id,
    )
    if status in (VisitStatus.CHECKED_IN, VisitStatus.CHECKED_OUT):
        visit.checked_in_at = start + timedelta(minutes=5)
        visit.checked_in_device_id = device.id if device else None
    if status == VisitStatus.CHECKED_OUT:
        visit.checked_out_at = start + timedelta(hours=2)
        visit.checkout_method = CheckoutMethod.KIOSK
    db.add(visit)
    db.flush()
    return visit


def signature_png() -> bytes:
    image = Image.new("RGBA", (400, 160), (255, 255, 255, 0))
    ImageDraw.Draw(image).line([(20, 120), (120, 30), (220, 130), (380, 40)], fill="black", width=5)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def photo_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 80)).save(buffer, "JPEG")
    return buffer.getvalue()


def invite_form(client, **values: str) -> dict[str, str]:
    """The invitation form as the page renders it, with `values` typed in."""
    page = client.get("/visitors/invite").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([^"]+)"', page)
    site = re.search(r'<option selected value="(\d+)"', page)
    assert key and site, "the form carries an idempotency key and the home site"
    day = factories.weekday_ahead(days=2)
    form = {
        "idempotency_key": key[1],
        "site": site[1],
        "name": "Anna Kowalski",
        "email": "anna@example.org",
        "company": "Acme",
        "day": day.isoformat(),
        "start_time": "10:00",
        "end_time": "12:00",
        "note": "Please bring photo ID.",
    }
    form.update(values)
    return form


# ---------------------------------------------------------------------------------------------
# Inviting


def test_an_employee_invites_a_visitor_who_gets_the_code_by_e_mail(client, office, db):
    client.sign_in(HOST)
    page = client.get("/visitors/invite")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'value="10:00"' in body and 'value="12:00"' in body  # sensible default times

    response = client.submit("/visitors/invite", invite_form(client))
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body[:2000]
    assert "Invitation sent" in body
    assert "is on its way to <strong>anna@example.org</strong>" in body
    code = CODE.search(body)
    assert code, "the check-in code is shown once"

    visit = db.scalars(select(Visit).where(Visit.visitor_email == "anna@example.org")).one()
    assert visit.status == VisitStatus.EXPECTED and visit.host_id == office["host"].id
    assert visit.host_note == "Please bring photo ID."
    mail = db.scalars(
        select(OutboxMessage).where(OutboxMessage.to_address == "anna@example.org")
    ).one()
    assert mail.attachment_type == "image/png" and mail.attachment_name == "check-in-code.png"
    assert mail.attachment_data and mail.attachment_data.startswith(b"\x89PNG")
    assert code[1] in mail.text_body and "Hanna Host" in mail.text_body
    assert db.scalar(select(func.count()).where(AuditEvent.action == "visit.invited")) == 1
    # The code in the e-mail's QR image is the one shown, and it finds the visit at the kiosk.
    if shutil.which("zbarimg"):
        decoded = (
            subprocess.run(
                ["zbarimg", "--quiet", "--raw", "-"],
                input=mail.attachment_data,
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        assert decoded == code[1]
    found = db.get(Visit, visit.id)
    assert found is not None and found.code_hash is not None

    listing = client.get("/visitors/").get_data(as_text=True)
    assert "Anna Kowalski" in listing and "Upcoming" in listing and "Expected" in listing


def test_a_double_click_invites_once(client, office, db):
    client.sign_in(HOST)
    form = invite_form(client)
    first = client.submit("/visitors/invite", form)
    again = client.submit("/visitors/invite", form, htmx=True)
    assert first.status_code == 200 and again.status_code == 200
    assert "Already invited" in again.get_data(as_text=True)
    assert "<html" not in again.get_data(as_text=True)  # a fragment for htmx
    assert db.scalar(select(func.count(Visit.id))) == 1
    assert db.scalar(select(func.count(OutboxMessage.id))) == 1
    # A fresh form (a new key) is a new invitation.
    client.submit("/visitors/invite", invite_form(client, name="Second Person"))
    assert db.scalar(select(func.count(Visit.id))) == 2


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"day": "2020-01-06"}, "day", "That time has passed. Choose a time still to come."),
        (
            {"start_time": "14:00", "end_time": "13:00"},
            "end_time",
            "The visit must end after it starts.",
        ),
        ({"start_time": "25:00"}, "start_time", "Enter the arrival time as HH:MM."),
        ({"email": "not-an-address"}, "email", "Enter an e-mail address like name@example.com."),
        ({"email": ""}, "email", "Enter the visitor's e-mail address: the invitation goes there."),
        ({"name": "   "}, "name", "Enter the visitor's full name."),
        ({"name": "N" * 10_000}, "name", "Use at most 200 characters."),
        ({"company": "C" * 10_000}, "company", "Use at most 200 characters."),
        ({"note": "x" * 10_000}, "note", "Use at most 2,000 characters."),
        ({"email": "a" * 10_000 + "@example.org"}, "email", "That e-mail address is too long."),
        ({"day": "next tuesday"}, "day", "Not a valid date value."),
        ({"site": "999999"}, "site", "Not a valid choice."),
    ],
)
def test_bad_invitations_are_explained_beside_the_field(client, office, db, values, field, message):
    client.sign_in(HOST)
    response = client.submit("/visitors/invite", invite_form(client, **values))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in body
    assert message.replace("'", "&#39;") in body
    assert db.scalar(select(func.count(Visit.id))) == 0
    assert db.scalar(select(func.count(OutboxMessage.id))) == 0


def test_invalid_invitation_answers_htmx_with_the_form_fragment(client, office):
    client.sign_in(HOST)
    form = invite_form(client, email="nope")
    fragment = client.submit("/visitors/invite", form, htmx=True)
    assert fragment.status_code == 422
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<form id="invite-card"') and "<html" not in body
    assert 'aria-invalid="true"' in body
    boosted = client.submit("/visitors/invite", form, htmx=True, headers={"HX-Boosted": "true"})
    assert boosted.status_code == 422 and "<html" in boosted.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]


def test_names_in_any_script_work_and_html_is_shown_as_text(client, office, db):
    client.sign_in(HOST)
    tricky = "<script>alert(1)</script> O'Brien"
    response = client.submit(
        "/visitors/invite", invite_form(client, name=tricky, company="<b>Acme</b>")
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<b>Acme</b>" not in body
    for name in ("محمد الأحمد", "王小明", "Zoë 👋 Smith"):
        ok = client.submit("/visitors/invite", invite_form(client, name=name))
        assert ok.status_code == 200 and name in ok.get_data(as_text=True)
    listing = client.get("/visitors/").get_data(as_text=True)
    assert "<script>alert(1)" not in listing and "王小明" in listing
    visit = db.scalars(select(Visit).where(Visit.visitor_company == "<b>Acme</b>")).one()
    detail = client.get(f"/visitors/{visit.id}").get_data(as_text=True)
    assert "<script>alert(1)" not in detail and "&lt;b&gt;Acme&lt;/b&gt;" in detail


# ---------------------------------------------------------------------------------------------
# My visitors


def test_my_visitors_are_grouped_by_day_with_their_state(client, office, db):
    berlin, host = office["berlin"], office["host"]
    make_visit(db, berlin, host, "Tara Today", status=VisitStatus.CHECKED_IN)
    make_visit(db, berlin, host, "Uli Upcoming", days_from_today=3)
    make_visit(db, berlin, host, "Paul Past", status=VisitStatus.CHECKED_OUT, days_from_today=-2)
    make_visit(db, berlin, office["other"], "Nina Notmine")
    db.commit()
    client.sign_in(HOST)
    body = client.get("/visitors/").get_data(as_text=True)
    today, upcoming, past = (
        body.index('id="today-title"'),
        body.index('id="upcoming-title"'),
        body.index('id="past-title"'),
    )
    assert today < body.index("Tara Today") < upcoming < body.index("Uli Upcoming") < past
    assert body.index("Paul Past") > past
    assert "On site" in body and "Checked out" in body and "Expected" in body
    assert "Nina Notmine" not in body


def test_an_employee_with_no_visitors_is_invited_to_start(client, office):
    client.sign_in(OTHER)
    body = client.get("/visitors/").get_data(as_text=True)
    assert "No visitors yet" in body and "/visitors/invite" in body


def test_the_host_cancels_an_invitation_and_the_visitor_is_told(client, office, db):
    visit = make_visit(db, office["berlin"], office["host"], days_from_today=2)
    db.commit()
    client.sign_in(HOST)
    response = client.submit(f"/visitors/{visit.id}/cancel")
    assert response.status_code == 303
    db.refresh(visit)
    assert visit.status == VisitStatus.CANCELLED and visit.code_hash is None
    mail = db.scalars(
        select(OutboxMessage).where(OutboxMessage.to_address == visit.visitor_email)
    ).one()
    assert mail.subject.startswith("Cancelled")
    again = client.submit(f"/visitors/{visit.id}/cancel")
    assert again.status_code == 422
    assert "Only an invitation the visitor has not used yet can be cancelled." in again.get_data(
        as_text=True
    )


def test_the_host_checks_their_visitor_out(client, office, db):
    visit = make_visit(db, office["berlin"], office["host"], status=VisitStatus.CHECKED_IN)
    db.commit()
    client.sign_in(HOST)
    response = client.submit(f"/visitors/{visit.id}/check-out", {"next": "/visitors/"})
    assert response.status_code == 303 and response.headers["Location"] == "/visitors/"
    db.refresh(visit)
    assert visit.status == VisitStatus.CHECKED_OUT and visit.checkout_method == CheckoutMethod.HOST
    again = client.submit(f"/visitors/{visit.id}/check-out")
    assert again.status_code == 422 and "is not checked in" in again.get_data(as_text=True)
    # A coordinator checking someone out is recorded as such.
    other = make_visit(db, office["berlin"], office["other"], "Bo", status=VisitStatus.CHECKED_IN)
    db.commit()
    client.submit("/sign-out")
    client.sign_in(COORDINATOR)
    assert client.submit(f"/visitors/{other.id}/check-out", htmx=True).status_code == 204
    db.refresh(other)
    assert other.checkout_method == CheckoutMethod.COORDINATOR


# ---------------------------------------------------------------------------------------------
# One visit


def signed_visit(db: Session, office: dict[str, Any]) -> Visit:
    berlin = office["berlin"]
    for version in (1, 2):
        db.add(
            VisitorAgreement(
                site_id=berlin.id, version=version, title="House rules", body="Be nice."
            )
        )
    db.flush()
    agreement = db.scalars(select(VisitorAgreement).where(VisitorAgreement.version == 2)).one()
    device = KioskDevice(
        site_id=berlin.id, name="Main lobby", printer_uri="socket://192.0.2.7:9100"
    )
    db.add(device)
    db.flush()
    visit = make_visit(db, berlin, office["host"], status=VisitStatus.CHECKED_IN, device=device)
    visit.agreement_id = agreement.id
    visit.signed_name = "Anna Kowalski"
    visit.signed_at = visit.checked_in_at
    db.add(
        VisitImage(
            visit_id=visit.id, kind="signature", content_type="image/png", data=signature_png()
        )
    )
    db.add(
        VisitImage(visit_id=visit.id, kind="photo", content_type="image/jpeg", data=photo_jpeg())
    )
    db.commit()
    return visit


def test_the_visit_page_tells_the_whole_story(client, office, db):
    visit = signed_visit(db, office)
    client.sign_in(HOST)
    body = client.get(f"/visitors/{visit.id}").get_data(as_text=True)
    for text in (
        "Invited",
        "Checked in",
        "at the Main lobby kiosk",
        "House rules (version 2) as “Anna Kowalski”",
        "version 2",
        "On site",
        f"/visitors/{visit.id}/images/signature",
        f"/visitors/{visit.id}/images/photo",
        "Print again",
        "Print from browser",
        "Download PDF",
    ):
        assert text in body, text


def test_a_typed_name_signature_is_shown_as_such(client, office, db):
    visit = signed_visit(db, office)
    db.execute(delete(VisitImage).where(VisitImage.kind == "signature"))
    db.commit()
    client.sign_in(HOST)
    body = client.get(f"/visitors/{visit.id}").get_data(as_text=True)
    assert "as “Anna Kowalski”" in body
    assert "Signed with the typed name alone" in body
    assert f"/visitors/{visit.id}/images/signature" not in body


def test_signatures_and_photos_are_served_only_to_who_may_see_the_visit(app, client, office, db):
    visit = signed_visit(db, office)
    client.sign_in(HOST)
    for kind, mimetype in (("signature", "image/png"), ("photo", "image/jpeg")):
        image = client.get(f"/visitors/{visit.id}/images/{kind}")
        assert image.status_code == 200 and image.mimetype == mimetype
        assert image.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in image.headers["Content-Security-Policy"]
        assert "default-src 'none'" in image.headers["Content-Security-Policy"]
        assert "no-store" in image.headers["Cache-Control"]
    assert client.get(f"/visitors/{visit.id}/images/passport").status_code == 404
    client.submit("/sign-out")
    client.sign_in(OTHER)
    assert client.get(f"/visitors/{visit.id}/images/signature").status_code == 404
    client.submit("/sign-out")
    client.sign_in(NY_COORDINATOR)
    assert client.get(f"/visitors/{visit.id}/images/photo").status_code == 404
    client.submit("/sign-out")
    client.sign_in(COORDINATOR)
    assert client.get(f"/visitors/{visit.id}/images/photo").status_code == 200


def test_print_again_queues_the_badge_for_the_lobby_printer(client, office, db):
    visit = signed_visit(db, office)
    visit.badge_state = "failed"
    visit.badge_error = "Printer did not answer"
    visit.badge_attempts = 5
    db.commit()
    client.sign_in(HOST)
    assert "Printer did not answer" in client.get(f"/visitors/{visit.id}").get_data(as_text=True)
    response = client.submit(f"/visitors/{visit.id}/reprint")
    assert response.status_code == 303
    db.refresh(visit)
    assert visit.badge_state == "queued" and visit.badge_attempts == 0 and visit.badge_error == ""
    no_printer = make_visit(
        db, office["berlin"], office["host"], "Ben", status=VisitStatus.CHECKED_IN
    )
    db.commit()
    refused = client.submit(f"/visitors/{no_printer.id}/reprint")
    assert refused.status_code == 422
    assert "print the badge in the browser" in refused.get_data(as_text=True)


def test_a_badge_prints_from_the_browser_and_downloads_as_a_pdf(app, client, office, db, tmp_path):
    visit = signed_visit(db, office)
    client.sign_in(HOST)
    page = client.get(f"/visitors/{visit.id}/badge?stock=57x102")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Anna Kowalski" in html and "stock-57x102" in html and "data-print" in html
    assert "<style" not in html  # the strict CSP: the label's stylesheet is linked
    assert client.get("/visitors/label.css").mimetype == "text/css"
    assert client.get(f"/visitors/{visit.id}/badge?stock=bogus").status_code == 200  # the default

    from portal.services.badges import LabelUnavailable  # noqa: F401 - only to know it exists

    pdf = client.get(f"/visitors/{visit.id}/badge.pdf?stock=62x100")
    if pdf.status_code == 503:
        pytest.skip("WeasyPrint cannot render PDFs here")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    assert "attachment" in pdf.headers["Content-Disposition"]
    if shutil.which("pdftoppm") and shutil.which("zbarimg"):
        source = tmp_path / "badge.pdf"
        source.write_bytes(pdf.data)
        subprocess.run(
            ["pdftoppm", "-r", "300", "-png", str(source), str(tmp_path / "page")], check=True
        )
        png = next(Path(tmp_path).glob("page*.png"))
        decoded = (
            subprocess.run(
                ["zbarimg", "--quiet", "--raw", str(png)], capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
        )
        key = app.extensions["foyer.settings"].secret_key.encode()
        assert decoded == visitors.checkout_code(visit, key)


def test_no_badge_for_a_cancelled_or_stopped_visit(client, office, db):
    cancelled = make_visit(db, office["berlin"], office["host"], status=VisitStatus.CANCELLED)
    denied = make_visit(db, office["berlin"], office["host"], "Dan", status=VisitStatus.DENIED)
    db.commit()
    client.sign_in(HOST)
    for visit in (cancelled, denied):
        assert client.get(f"/visitors/{visit.id}/badge").status_code == 404
        assert client.get(f"/visitors/{visit.id}/badge.pdf").status_code == 404
    # A deny-list stop is the lobby's business: the host (whom the visitor named) never sees it
    assert client.get(f"/visitors/{denied.id}").status_code == 404
    assert "Dan" not in client.get("/visitors/").get_data(as_text=True)
    client.post("/sign-out", headers={"X-CSRFToken": client.csrf_token()})
    client.sign_in(COORDINATOR)
    for visit in (cancelled, denied):
        assert client.get(f"/visitors/{visit.id}/badge.pdf").status_code == 404
    page = client.get(f"/visitors/{denied.id}").get_data(as_text=True)
    assert "Held at reception" in page and "Print from browser" not in page


# ---------------------------------------------------------------------------------------------
# Who may see and do what


def test_nobody_sees_or_changes_a_visit_that_is_not_theirs(app, client, office, db):
    visit = make_visit(db, office["berlin"], office["host"], status=VisitStatus.CHECKED_IN)
    expected = make_visit(db, office["berlin"], office["host"], "Eve", days_from_today=1)
    db.commit()
    reads = [
        f"/visitors/{visit.id}",
        f"/visitors/{visit.id}/badge",
        f"/visitors/{visit.id}/badge.pdf",
        f"/visitors/{visit.id}/images/signature",
    ]
    writes = [
        f"/visitors/{visit.id}/check-out",
        f"/visitors/{visit.id}/reprint",
        f"/visitors/{expected.id}/cancel",
    ]
    # Anonymous: to the sign-in page (htmx: a redirect header, never a form in a fragment).
    for url in reads + ["/visitors/", "/visitors/invite"]:
        response = client.get(url)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"], url
    assert client.get(reads[0], headers={"HX-Request": "true"}).headers.get("HX-Redirect")
    for url in writes + ["/visitors/invite"]:
        assert client.submit(url).status_code in (302, 401), url
    # Another employee and another site's coordinator: not found, nothing changes.
    for email in (OTHER, NY_COORDINATOR):
        client.sign_in(email)
        for url in reads:
            assert client.get(url).status_code == 404, (email, url)
        for url in writes:
            assert client.submit(url).status_code == 404, (email, url)
        assert "Anna Kowalski" not in client.get("/visitors/").get_data(as_text=True)
        client.submit("/sign-out")
    db.refresh(visit)
    db.refresh(expected)
    assert visit.status == VisitStatus.CHECKED_IN and expected.status == VisitStatus.EXPECTED
    assert client.get("/visitors/999999").status_code == 302
    client.sign_in(COORDINATOR)  # Berlin's coordinator may
    assert client.get(reads[0]).status_code == 200
    assert client.get("/visitors/999999").status_code == 404


def test_visitors_is_in_everyones_navigation(client, office):
    client.sign_in(OTHER)
    body = client.get("/my-day").get_data(as_text=True)
    assert 'href="/visitors/"' in body
    assert "Roll call" not in body and 'href="/lobby/"' not in body


def test_actions_leave_an_audit_trail(client, office, db):
    visit = make_visit(db, office["berlin"], office["host"], status=VisitStatus.CHECKED_IN)
    db.commit()
    client.sign_in(HOST)
    client.submit(f"/visitors/{visit.id}/check-out")
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "visit.checked_out")).one()
    assert event.actor_id == office["host"].id and event.object_id == str(visit.id)
    assert event.after == {"method": "host"}


def test_the_longest_name_allowed_is_invited(client, office, db):
    client.sign_in(HOST)
    long_name = "Maximiliane " + "W" * (visitors.NAME_MAX - 12)
    response = client.submit("/visitors/invite", invite_form(client, name=long_name))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert db.scalars(select(Visit.visitor_name)).one() == long_name


def test_my_day_lists_the_visitors_i_expect_today(app, client, db) -> None:
    """The host's My day shows today's visitors with their state; other hosts' visitors stay out."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from portal.db import utcnow
    from portal.services import visitors as visitor_rules
    from portal.services.audit import Actor

    berlin = factories.site(db, "berlin")
    host = factories.user(db, name="Hanna Host", home_site=berlin)
    other = factories.user(db, name="Otto Other", home_site=berlin)
    today = utcnow().astimezone(ZoneInfo(berlin.time_zone)).date()
    for person, name in ((host, "Vera Visitor"), (other, "Someone Else")):
        visitor_rules.invite(
            db,
            Actor.for_user(person),
            person,
            site=berlin,
            details=visitor_rules.VisitorDetails.from_form(name, "v@example.org", "Acme"),
            day=today,
            start_time="23:30",
            end_time="23:59",
            note="",
            now=utcnow() - timedelta(minutes=1),
        )
    db.commit()
    client.sign_in(host.email)
    page = client.get("/my-day").get_data(as_text=True)
    assert "Visitors I&#39;m expecting" in page or "Visitors I'm expecting" in page
    assert "Vera Visitor" in page and "Acme" in page and "Expected" in page
    assert "Someone Else" not in page
    assert "No visitors expected today" not in page
