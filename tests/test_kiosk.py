"""The lobby kiosk, as a visitor and a lobby tablet use it: pairing, checking in with an invitation
or as a walk-in, signing, the deny list, badges, checking out, languages, and every way a stranger
in a hurry (or someone up to no good) can get it wrong."""

from __future__ import annotations

import base64
import io
import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from portal.db import utcnow
from portal.models import (
    AuditEvent,
    BadgeState,
    KioskDevice,
    Notice,
    OutboxMessage,
    Visit,
    VisitImage,
    VisitStatus,
)
from portal.services import kiosk_devices, visitors
from portal.services.audit import Actor
from tests import factories
from tests.conftest import Browser

SYSTEM = Actor.system("tests")


# ---------------------------------------------------------------------------------------------
# Arrangements


@pytest.fixture
def lobby(db: Any) -> SimpleNamespace:
    berlin = factories.site(db, "berlin", name="Berlin")
    jonas = factories.user(
        db,
        name="Jonas Weber",
        email="jonas@example.com",
        department="Facilities",
        home_site=berlin,
        coordinator_of=berlin,
    )
    lena = factories.user(
        db, name="Lena Fischer", email="lena@example.com", department="Design", home_site=berlin
    )
    device, code = kiosk_devices.create(db, SYSTEM, berlin, "Main lobby", now=utcnow())
    db.commit()
    return SimpleNamespace(site=berlin, jonas=jonas, lena=lena, device=device, code=code)


@pytest.fixture
def elsewhere(db: Any) -> SimpleNamespace:
    """Another office with its own kiosk, host and visitors, none of which Berlin may see."""
    new_york = factories.site(db, "new-york", name="New York", time_zone="America/New_York")
    maya = factories.user(
        db, name="Maya Johnson", email="maya@example.com", department="Sales", home_site=new_york
    )
    device, code = kiosk_devices.create(db, SYSTEM, new_york, "NY lobby", now=utcnow())
    db.commit()
    return SimpleNamespace(site=new_york, maya=maya, device=device, code=code)


class Kiosk:
    """A lobby tablet's browser: it pairs once, then sends the kiosk's own CSRF token."""

    def __init__(self, client: Browser) -> None:
        self.client = client
        self._token = ""

    def token(self) -> str:
        if not self._token:
            page = self.client.get("/kiosk/").get_data(as_text=True)
            self._token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
        return self._token

    def pair(self, code: str, **kwargs: Any) -> Any:
        self._token = ""
        response = self.post("/kiosk/pair", {"code": code}, **kwargs)
        self._token = ""
        return response

    def get(self, path: str, htmx: bool = True, **kwargs: Any) -> Any:
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.get(path, headers=headers, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, htmx: bool = True) -> Any:
        form = {"csrf_token": self.token(), **(data or {})}
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.post(path, data=form, headers=headers)


def new_kiosk(app: Flask) -> Kiosk:
    app.test_client_class = Browser
    return Kiosk(app.test_client())


@pytest.fixture
def kiosk(app: Flask, lobby: SimpleNamespace) -> Kiosk:
    tablet = new_kiosk(app)
    assert tablet.pair(lobby.code).status_code == 204
    return tablet


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)


def hidden(response: Any, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', text_of(response))
    assert match, f"no hidden {name} field"
    return match.group(1)


def invite(
    db: Any,
    site: Any,
    host: Any,
    name: str = "Anna Kowalski",
    email: str = "anna@example.org",
    company: str = "Nordlicht GmbH",
    days_from_today: int = 0,
) -> tuple[Visit, str]:
    """An invitation for today (or another day), with the code the visitor got by e-mail."""
    details = visitors.VisitorDetails.from_form(name, email, company)
    visit, code = visitors.invite(
        db,
        SYSTEM,
        host,
        site=site,
        details=details,
        day=factories.weekday_ahead(site.time_zone, days=1),
        start_time="09:00",
        end_time="17:00",
        note="",
        now=utcnow(),
    )
    visit.local_date = visitors.today_at(site, utcnow()) + timedelta(days=days_from_today)
    db.commit()
    return visit, code


def signature_data_url() -> str:
    """A drawn signature as the pad sends it: a PNG with a stroke on a transparent background."""
    image = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(40, 150), (160, 60), (280, 140), (420, 50)], fill="black", width=6)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def photo_data_url() -> str:
    image = Image.new("RGB", (640, 640), (180, 140, 120))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def walk_in_form(kiosk: Kiosk, host: Any, **fields: Any) -> dict[str, Any]:
    start = kiosk.get("/kiosk/walk-in")
    form = {
        "key": hidden(start, "key"),
        "name": "Sam Visitor",
        "email": "",
        "company": "Acme",
        "purpose": "Interview",
        "host_id": str(host.id),
    }
    form.update(fields)
    return form


def visits(db: Any) -> list[Visit]:
    db.expire_all()
    return list(db.scalars(select(Visit).order_by(Visit.id)))


def publish_agreement(
    db: Any, site: Any, body: str = "Keep what you see here confidential."
) -> Any:
    agreement = visitors.publish_agreement(db, SYSTEM, site, title="Visitor NDA", body=body)
    db.commit()
    return agreement


# ---------------------------------------------------------------------------------------------
# Pairing and the device's identity


def test_a_tablet_pairs_with_its_code_and_gets_a_strict_cookie(app, lobby, db):
    tablet = new_kiosk(app)
    first = tablet.get("/kiosk/", htmx=False)
    assert first.status_code == 200
    assert "Connect this tablet" in text_of(first)
    assert "Start over" not in text_of(first)

    typed = lobby.code.lower().replace("-", " ")  # as people type it
    paired = tablet.pair(typed)
    assert paired.status_code == 204 and paired.headers["HX-Redirect"] == "/kiosk/"
    cookie = next(c for c in paired.headers.getlist("Set-Cookie") if c.startswith("foyer_kiosk="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/kiosk" in cookie
    assert "Max-Age=34560000" in cookie
    assert "Secure" not in cookie  # the test host is loopback http

    welcome = tablet.get("/kiosk/", htmx=False)
    assert "Welcome to Berlin" in text_of(welcome)
    assert 'hx-history="false"' in text_of(welcome)
    db.expire_all()
    device = db.get(KioskDevice, lobby.device.id)
    assert device.is_paired and device.pairing_code_hash is None and device.last_seen_at


def test_the_cookie_is_secure_on_a_real_host(app, lobby):
    tablet = new_kiosk(app)
    tablet.client.get("/kiosk/", base_url="https://kiosk.example.com")
    page = tablet.client.get("/kiosk/", base_url="https://kiosk.example.com")
    token = re.search(r'"X-CSRFToken": "([^"]+)"', text_of(page)).group(1)
    paired = tablet.client.post(
        "/kiosk/pair",
        data={"code": lobby.code, "csrf_token": token},
        base_url="https://kiosk.example.com",
        headers={"Referer": "https://kiosk.example.com/kiosk/"},
    )
    assert paired.status_code == 303
    cookie = next(c for c in paired.headers.getlist("Set-Cookie") if c.startswith("foyer_kiosk="))
    assert "Secure" in cookie


def test_an_expired_pairing_code_is_refused(app, lobby, db):
    lobby.device.pairing_expires_at = utcnow() - timedelta(minutes=1)
    db.commit()
    tablet = new_kiosk(app)
    refused = tablet.pair(lobby.code)
    assert refused.status_code == 422
    assert "That code has expired" in text_of(refused)
    assert tablet.get("/kiosk/walk-in").headers.get("HX-Redirect") == "/kiosk/"


def test_a_pairing_code_works_once(app, lobby, kiosk):
    second = new_kiosk(app)
    refused = second.pair(lobby.code)
    assert refused.status_code == 422
    assert "That code is not valid" in text_of(refused)
    assert 'value="' + lobby.code + '"' in text_of(refused)  # what was typed stays


def test_twenty_wrong_codes_lock_pairing(app, lobby, db):
    tablet = new_kiosk(app)
    for attempt in range(20):
        wrong = tablet.pair(f"AAAA-{attempt:04d}".replace("0", "C").replace("1", "D"))
        assert wrong.status_code == 422, attempt
    locked = tablet.pair(lobby.code)  # even the right code, during the lock-out
    assert locked.status_code == 429
    assert "Pairing is locked for an hour" in text_of(locked)
    db.expire_all()
    assert not db.get(KioskDevice, lobby.device.id).is_paired


def test_a_revoked_tablet_is_back_at_pairing_and_can_do_nothing(app, lobby, kiosk, db):
    token = kiosk.token()
    kiosk_devices.revoke(db, SYSTEM, db.get(KioskDevice, lobby.device.id), now=utcnow())
    db.commit()
    page = kiosk.get("/kiosk/", htmx=False)
    assert "This tablet is no longer connected to Foyer" in text_of(page)
    assert "Connect this tablet" in text_of(page)
    form = walk_in_form_without_page(lobby)
    refused = kiosk.client.post(
        "/kiosk/walk-in/details",
        data={**form, "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 204 and refused.headers["HX-Redirect"] == "/kiosk/"
    assert kiosk.get("/kiosk/hosts?q=Jo").headers["HX-Redirect"] == "/kiosk/"
    assert visits(db) == []


def walk_in_form_without_page(lobby: SimpleNamespace) -> dict[str, str]:
    return {
        "key": visitors.new_submission_key(),
        "name": "Sam Visitor",
        "company": "Acme",
        "host_id": str(lobby.jonas.id),
    }


def test_an_unpaired_browser_reaches_no_kiosk_screen(app, lobby):
    tablet = new_kiosk(app)
    for path in ("/kiosk/walk-in", "/kiosk/invitation", "/kiosk/check-out", "/kiosk/hosts?q=Jo"):
        plain = tablet.get(path, htmx=False)
        assert plain.status_code == 303 and plain.headers["Location"] == "/kiosk/", path
        assert "Jonas" not in text_of(plain)


def test_an_employees_portal_session_grants_nothing_at_the_kiosk(app, client, lobby, db):
    client.sign_in("jonas@example.com")  # a coordinator, even
    page = client.get("/kiosk/")
    assert "Connect this tablet" in text_of(page)
    assert client.get("/kiosk/hosts?q=Le").status_code == 303
    assert "Lena" not in text_of(client.get("/kiosk/hosts?q=Le", follow_redirects=True))
    token = client.csrf_token()  # the portal's CSRF token is no kiosk token
    refused = client.post(
        "/kiosk/walk-in/details",
        data={**walk_in_form_without_page(lobby), "csrf_token": token},
    )
    assert refused.status_code == 303
    assert visits(db) == []
    assert client.get("/my-day").status_code == 200  # and the kiosk did not sign them out


def test_the_kiosk_cookie_grants_nothing_in_the_portal(app, lobby, kiosk):
    assert kiosk.client.get("/my-day").status_code == 302  # off to sign in
    token = kiosk.client.get_cookie("foyer_kiosk", path="/kiosk").value
    kiosk.client.set_cookie("foyer_kiosk", token, path="/")  # even sent everywhere
    for path in ("/my-day", "/desks/", "/admin/people/"):
        response = kiosk.client.get(path)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"], path


def test_a_kiosk_page_posts_only_with_its_own_token(app, lobby, kiosk, db):
    form = walk_in_form(kiosk, lobby.jonas)
    missing = kiosk.client.post("/kiosk/walk-in/details", data=form)
    assert missing.status_code == 303
    forged = kiosk.client.post(
        "/kiosk/walk-in/details",
        data={**form, "csrf_token": "0" * 64},
        headers={"HX-Request": "true"},
    )
    assert forged.status_code == 400 and forged.headers["HX-Refresh"] == "true"
    assert visits(db) == []


def test_the_token_outlives_an_employee_signing_in_and_out_in_the_same_browser(
    app, lobby, kiosk, db
):
    token = kiosk.token()
    kiosk.client.sign_in("lena@example.com")
    kiosk.client.submit("/sign-out")
    form = walk_in_form(kiosk, lobby.jonas)
    response = kiosk.client.post(
        "/kiosk/walk-in/details", data={**form, "csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "Welcome, Sam." in text_of(response)


# ---------------------------------------------------------------------------------------------
# Screens: one fragment, three ways; the idle reset and "start over"


@pytest.mark.parametrize(
    "path", ["/kiosk/", "/kiosk/walk-in", "/kiosk/invitation", "/kiosk/check-out"]
)
def test_every_screen_as_page_fragment_and_boosted_page(kiosk, path):
    page = kiosk.get(path, htmx=False)
    fragment = kiosk.get(path)
    boosted = kiosk.client.get(path, headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert page.status_code == fragment.status_code == boosted.status_code == 200
    assert "<html" in text_of(page) and "<html" in text_of(boosted)
    assert "<html" not in text_of(fragment) and 'class="screen' in text_of(fragment)
    assert "HX-Request" in page.headers["Vary"]
    assert "no-store" in page.headers["Cache-Control"]
    # nothing to wander off to: every link stays in the kiosk
    assert all(
        href.startswith("/kiosk/") for href in re.findall(r'<a [^>]*href="([^"]*)"', text_of(page))
    )
    assert "<script>" not in text_of(page) and " style=" not in text_of(page)


def test_steps_time_out_and_can_start_over_but_welcome_waits(kiosk):
    welcome = text_of(kiosk.get("/kiosk/"))
    assert "data-idle" not in welcome and "Start over" not in welcome
    for path in ("/kiosk/walk-in", "/kiosk/invitation", "/kiosk/check-out"):
        screen = text_of(kiosk.get(path))
        assert 'data-idle="60"' in screen and 'href="/kiosk/start-over"' in screen, path
    over = kiosk.get("/kiosk/start-over", htmx=False)
    assert over.status_code == 303 and over.headers["Location"] == "/kiosk/"


# ---------------------------------------------------------------------------------------------
# Invited visitors


def test_an_invited_visitor_checks_in_with_the_code_from_the_qr(kiosk, lobby, db):
    visit, code = invite(db, lobby.site, lobby.jonas)
    start = kiosk.get("/kiosk/invitation")
    key = hidden(start, "key")
    confirm = kiosk.post("/kiosk/invitation/code", {"code": code, "key": key})  # the QR's text
    assert confirm.status_code == 200
    body = text_of(confirm)
    assert "Is this you?" in body and "Anna Kowalski" in body and "Jonas Weber" in body
    assert 'value="Nordlicht GmbH"' in body  # the company is editable

    done = kiosk.post(
        "/kiosk/invitation/confirm",
        {"key": key, "ticket": hidden(confirm, "ticket"), "company": "Nordlicht AG"},
    )
    assert done.status_code == 200
    assert "Welcome, Anna." in text_of(done)
    assert "Jonas Weber knows you" in text_of(done)
    assert 'data-return-after="20"' in text_of(done)
    [checked_in] = visits(db)
    assert checked_in.status == VisitStatus.CHECKED_IN
    assert checked_in.visitor_company == "Nordlicht AG"
    assert checked_in.checked_in_device_id == lobby.device.id
    assert db.scalar(select(Notice).where(Notice.user_id == lobby.jonas.id)) is not None


def test_a_typed_code_may_be_lower_case_with_spaces(kiosk, lobby, db):
    _visit, code = invite(db, lobby.site, lobby.jonas)
    typed = " " + code.lower().replace("-", " ") + " "
    confirm = kiosk.post("/kiosk/invitation/code", {"code": typed, "key": "k" * 32})
    assert confirm.status_code == 200 and "Anna Kowalski" in text_of(confirm)


@pytest.mark.parametrize(
    ("case", "sentence"),
    [
        ("unknown", "We could not find that code"),
        ("expired", "This invitation was for an earlier day"),
        ("later", "This invitation is for a later day"),
        ("used", "This invitation has already been used"),
        ("cancelled", "We could not find that code"),  # cancelling voids the code at once
        ("other site", "This invitation is for another office"),
        ("format", "That does not look like an invitation code"),
    ],
)
def test_codes_that_do_not_work_say_why_in_the_kiosks_words(
    kiosk, lobby, elsewhere, db, case, sentence
):
    visit, code = invite(db, lobby.site, lobby.jonas)
    if case == "unknown":
        code = "ZZZZ-ZZZZ"
    elif case == "expired":
        visit.local_date -= timedelta(days=1)
    elif case == "later":
        visit.local_date += timedelta(days=1)
    elif case == "used":
        visit.status = VisitStatus.CHECKED_IN
    elif case == "cancelled":
        visitors.cancel_invitation(db, SYSTEM, visit, now=utcnow())
    elif case == "other site":
        _theirs, code = invite(db, elsewhere.site, elsewhere.maya, name="Olu Ade")
    elif case == "format":
        code = "K7Q"
    db.commit()
    refused = kiosk.post("/kiosk/invitation/code", {"code": code, "key": "k" * 32})
    assert refused.status_code == 422
    body = text_of(refused)
    assert sentence in body
    assert f'value="{code}"' in body  # nothing lost
    assert 'aria-invalid="true"' in body
    assert "Olu" not in body and "Maya" not in body  # never the other office's data


def test_finding_an_invitation_by_name_shows_only_initials(kiosk, lobby, elsewhere, db):
    invite(db, lobby.site, lobby.jonas, name="Anna Kowalski", company="Secret Corp")
    invite(db, lobby.site, lobby.jonas, name="Annabel Lee", days_from_today=1)  # not today
    invite(db, elsewhere.site, elsewhere.maya, name="Anna Other")  # another office
    found = kiosk.get("/kiosk/invitation/matches?q=ann&key=" + "k" * 32)
    body = text_of(found)
    assert "Anna K." in body and "Visiting Jonas W." in body
    assert "Kowalski" not in body and "Weber" not in body and "Secret" not in body
    assert "Annabel" not in body and "Anna O." not in body
    assert "Anna K." not in text_of(kiosk.get("/kiosk/invitation/matches?q=a"))  # 2 letters min

    visit_id = re.search(r'name="visit_id" value="(\d+)"', body).group(1)
    confirm = kiosk.post("/kiosk/invitation/pick", {"visit_id": visit_id, "key": "k" * 32})
    body = text_of(confirm)
    assert "Anna K." in body and "Jonas W." in body
    assert "Kowalski" not in body and "Secret Corp" not in body  # a name pick proves nothing
    done = kiosk.post(
        "/kiosk/invitation/confirm",
        {"key": "k" * 32, "ticket": hidden(confirm, "ticket"), "company": ""},
    )
    assert "Welcome, Anna." in text_of(done)
    [checked_in] = [v for v in visits(db) if v.status == VisitStatus.CHECKED_IN]
    assert checked_in.visitor_company == "Secret Corp"  # left empty: unchanged


def test_the_full_name_search_page_works_without_javascript(kiosk, lobby, db):
    invite(db, lobby.site, lobby.jonas)
    page = kiosk.get("/kiosk/invitation/find?q=kow", htmx=False)
    assert page.status_code == 200 and "Anna K." in text_of(page)


def test_another_sites_invitation_cannot_be_picked_or_carried(kiosk, lobby, elsewhere, db):
    theirs, _code = invite(db, elsewhere.site, elsewhere.maya, name="Olu Ade")
    picked = kiosk.post("/kiosk/invitation/pick", {"visit_id": str(theirs.id), "key": "k" * 32})
    assert picked.status_code == 422 and "Olu" not in text_of(picked)
    # A ticket signed for the other office's tablet does not work on this one.
    ny = new_kiosk_for(kiosk, elsewhere)
    ny_confirm = ny.post("/kiosk/invitation/pick", {"visit_id": str(theirs.id), "key": "k" * 32})
    ticket = hidden(ny_confirm, "ticket")
    forged = kiosk.post("/kiosk/invitation/confirm", {"ticket": ticket, "key": "k" * 32})
    assert forged.status_code == 422 and "Olu" not in text_of(forged)
    assert "Please start again" in text_of(forged)
    garbage = kiosk.post("/kiosk/invitation/confirm", {"ticket": "x" * 10_000, "key": "k" * 32})
    assert garbage.status_code == 422
    db.expire_all()
    assert db.get(Visit, theirs.id).status == VisitStatus.EXPECTED


def new_kiosk_for(kiosk: Kiosk, office: SimpleNamespace) -> Kiosk:
    other = Kiosk(kiosk.client.application.test_client())
    assert other.pair(office.code).status_code == 204
    return other


def test_an_invitation_cancelled_while_the_visitor_confirms_is_checked_again(kiosk, lobby, db):
    visit, code = invite(db, lobby.site, lobby.jonas)
    confirm = kiosk.post("/kiosk/invitation/code", {"code": code, "key": "k" * 32})
    visitors.cancel_invitation(db, SYSTEM, visit, now=utcnow())
    db.commit()
    refused = kiosk.post(
        "/kiosk/invitation/confirm",
        {"key": "k" * 32, "ticket": hidden(confirm, "ticket"), "company": "Nordlicht GmbH"},
    )
    assert refused.status_code == 422
    assert "This invitation was cancelled. Please see reception." in text_of(refused)
    db.expire_all()
    assert db.get(Visit, visit.id).status == VisitStatus.CANCELLED


def test_double_tapping_check_in_with_an_invitation_checks_in_once(kiosk, lobby, db):
    _visit, code = invite(db, lobby.site, lobby.jonas)
    confirm = kiosk.post("/kiosk/invitation/code", {"code": code, "key": "k" * 32})
    form = {"key": "k" * 32, "ticket": hidden(confirm, "ticket"), "company": "Nordlicht GmbH"}
    first = kiosk.post("/kiosk/invitation/confirm", form)
    second = kiosk.post("/kiosk/invitation/confirm", form)
    assert "Welcome, Anna." in text_of(first) and "Welcome, Anna." in text_of(second)
    assert len(visits(db)) == 1
    assert db.scalar(select(func.count()).select_from(Notice)) == 1


def test_an_invited_visitor_whose_host_left_is_still_welcomed(kiosk, lobby, db):
    _visit, code = invite(db, lobby.site, lobby.lena)
    lobby.lena.active = False
    db.commit()
    confirm = kiosk.post("/kiosk/invitation/code", {"code": code, "key": "k" * 32})
    done = kiosk.post(
        "/kiosk/invitation/confirm",
        {"key": "k" * 32, "ticket": hidden(confirm, "ticket"), "company": "Nordlicht GmbH"},
    )
    body = text_of(done)
    assert "Welcome, Anna." in body and "someone from reception will be with you" in body
    assert "knows you" not in body
    coordinator_notice = db.scalar(select(Notice).where(Notice.user_id == lobby.jonas.id))
    assert coordinator_notice.kind == "host_unavailable"


# ---------------------------------------------------------------------------------------------
# Walk-ins, agreements, photos


def test_hosts_are_found_by_name_with_name_and_department_only(kiosk, lobby, elsewhere, db):
    factories.user(db, name="Leo Gone", home_site=lobby.site, active=False)
    db.commit()
    found = text_of(kiosk.get("/kiosk/hosts?host_query=le"))
    assert "Lena Fischer" in found and "Design" in found
    assert "lena@example.com" not in found and "Leo Gone" not in found
    assert "Maya" not in text_of(kiosk.get("/kiosk/hosts?host_query=ma"))  # another office
    # the chosen host stays chosen while the visitor searches on
    kept = text_of(kiosk.get(f"/kiosk/hosts?host_query=zz&host_id={lobby.lena.id}"))
    assert "Lena Fischer" in kept and "checked" in kept
    other = text_of(kiosk.get(f"/kiosk/hosts?host_query=zz&host_id={elsewhere.maya.id}"))
    assert "Maya" not in other


def test_a_walk_in_signs_the_agreement_with_a_drawn_signature(kiosk, lobby, db):
    agreement = publish_agreement(db, lobby.site)
    form = walk_in_form(kiosk, lobby.jonas, email="sam@example.org")
    sign = kiosk.post("/kiosk/walk-in/details", form)
    assert sign.status_code == 200
    assert "Visitor NDA" in text_of(sign) and "Keep what you see here confidential." in text_of(
        sign
    )
    carried = {name: hidden(sign, name) for name in ("key", "name", "email", "company", "host_id")}

    unsigned = kiosk.post("/kiosk/walk-in/agreement", {**carried, "signed_name": "Sam Visitor"})
    assert unsigned.status_code == 422
    assert "Please sign with your finger in the box." in text_of(unsigned)
    assert 'value="Sam Visitor"' in text_of(unsigned)  # the typed name is kept

    blank = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    buffer = io.BytesIO()
    blank.save(buffer, "PNG")
    empty_pad = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    blank_refused = kiosk.post(
        "/kiosk/walk-in/agreement",
        {**carried, "signed_name": "Sam Visitor", "signature": empty_pad},
    )
    assert blank_refused.status_code == 422
    assert "Please sign with your finger" in text_of(blank_refused)

    done = kiosk.post(
        "/kiosk/walk-in/agreement",
        {**carried, "signed_name": "Sam Visitor", "signature": signature_data_url()},
    )
    assert done.status_code == 200 and "Welcome, Sam." in text_of(done)
    [visit] = visits(db)
    assert visit.agreement_id == agreement.id and visit.signed_name == "Sam Visitor"
    image = db.scalar(select(VisitImage).where(VisitImage.visit_id == visit.id))
    assert image.kind == "signature" and image.data.startswith(b"\x89PNG")


def test_a_visitor_who_cannot_draw_signs_with_the_typed_name_alone(kiosk, lobby, db):
    """WCAG 2.5.7: signing must not need a dragging movement. Ticking the box makes the typed
    name the signature; the name is still required, and a half-drawn line is not kept."""
    agreement = publish_agreement(db, lobby.site)
    form = walk_in_form(kiosk, lobby.jonas, email="sam@example.org")
    sign = kiosk.post("/kiosk/walk-in/details", form)
    assert "my typed name is my signature" in text_of(sign)
    carried = {name: hidden(sign, name) for name in ("key", "name", "email", "company", "host_id")}

    nameless = kiosk.post("/kiosk/walk-in/agreement", {**carried, "typed_signature": "1"})
    assert nameless.status_code == 422
    assert "Please type your full name to sign." in text_of(nameless)
    assert "Please sign with your finger" not in text_of(nameless)
    assert 'name="typed_signature" value="1" checked' in text_of(nameless)  # the choice is kept

    done = kiosk.post(
        "/kiosk/walk-in/agreement",
        {
            **carried,
            "typed_signature": "1",
            "signed_name": "Sam Visitor",
            "signature": signature_data_url(),  # begun, then the visitor chose typing
        },
    )
    assert done.status_code == 200 and "Welcome, Sam." in text_of(done)
    [visit] = visits(db)
    assert visit.agreement_id == agreement.id and visit.signed_name == "Sam Visitor"
    assert visit.signed_at is not None
    assert db.scalar(select(VisitImage).where(VisitImage.visit_id == visit.id)) is None
    recorded = db.scalar(select(AuditEvent).where(AuditEvent.action == "visit.checked_in"))
    assert recorded.after["signed"] == "typed"


def test_a_returning_visitor_signs_again_only_when_the_agreement_changed(kiosk, lobby, db):
    publish_agreement(db, lobby.site)

    def check_in() -> Any:
        form = walk_in_form(kiosk, lobby.jonas, email="sam@example.org")
        step = kiosk.post("/kiosk/walk-in/details", form)
        if "Please read and sign" in text_of(step):
            form = {**form, "signed_name": "Sam Visitor", "signature": signature_data_url()}
            return "signed", kiosk.post("/kiosk/walk-in/agreement", form)
        return "not asked", step

    asked, done = check_in()
    assert asked == "signed" and "Welcome, Sam." in text_of(done)
    asked, done = check_in()
    assert asked == "not asked" and "Welcome, Sam." in text_of(done)
    publish_agreement(db, lobby.site, body="New safety rules: wear the badge.")
    asked, done = check_in()
    assert asked == "signed" and "Welcome, Sam." in text_of(done)
    assert len(visits(db)) == 3


def test_a_walk_in_with_a_photo_and_one_whose_camera_was_denied(kiosk, lobby, db):
    lobby.site.visitor_photo = True
    db.commit()
    form = walk_in_form(kiosk, lobby.jonas)
    photo_step = kiosk.post("/kiosk/walk-in/details", form)
    assert "Smile for your badge" in text_of(photo_step)
    assert "The camera is not available, so we" in text_of(photo_step)  # ready, if it is denied
    with_photo = kiosk.post("/kiosk/walk-in/photo", {**form, "photo": photo_data_url()})
    assert "Welcome, Sam." in text_of(with_photo)
    form = walk_in_form(kiosk, lobby.jonas, name="Kim Camera-Shy")
    without = kiosk.post("/kiosk/walk-in/photo", {**form, "photo": ""})
    assert "Welcome, Kim." in text_of(without)
    first, second = visits(db)
    kinds = {i.visit_id: i.kind for i in db.scalars(select(VisitImage))}
    assert kinds == {first.id: "photo"}


def test_the_back_button_keeps_what_was_typed(kiosk, lobby, db):
    publish_agreement(db, lobby.site)
    form = walk_in_form(kiosk, lobby.jonas, name="Zoë O’Neil")
    sign = kiosk.post("/kiosk/walk-in/details", form)
    back = kiosk.post(
        "/kiosk/walk-in/agreement",
        {**form, "signed_name": "typed already", "back": "1"},
    )
    assert back.status_code == 200 and "Tell us who you are" in text_of(back)
    assert 'value="Zoë O’Neil"' in text_of(back) and "Jonas Weber" in text_of(back)
    assert 'value="typed already"' in text_of(back)
    assert "Please read and sign" in text_of(sign)
    assert visits(db) == []


def test_the_deny_list_stops_the_flow_with_a_neutral_message(kiosk, lobby, db):
    publish_agreement(db, lobby.site)  # stopped before being asked to sign anything
    visitors.add_deny_entry(
        db, SYSTEM, site=None, name="  MALLORY  Mäuser ", email="", reason="Trespassing"
    )
    db.commit()
    form = walk_in_form(kiosk, lobby.lena, name="Mallory Mauser", email="m@example.org")
    stopped = kiosk.post("/kiosk/walk-in/details", form)
    assert stopped.status_code == 200
    body = text_of(stopped)
    assert "Please see reception" in body
    for hint in ("deny", "Deny", "list", "match", "Trespassing", "Welcome", "badge", "Lena", "NDA"):
        assert hint not in body, hint
    [visit] = visits(db)
    assert visit.status == VisitStatus.DENIED and visit.badge_state == BadgeState.NONE
    alert = db.scalar(select(Notice).where(Notice.user_id == lobby.jonas.id))
    assert alert.kind == "deny_list_stop"
    assert db.scalar(select(Notice).where(Notice.user_id == lobby.lena.id)) is None  # no host alert
    mail = db.scalar(select(OutboxMessage).where(OutboxMessage.to_address == "jonas@example.com"))
    assert mail is not None and "Lobby alert" in mail.subject
    again = kiosk.post("/kiosk/walk-in/details", form)  # a double tap: the same neutral answer
    assert "Please see reception" in text_of(again) and len(visits(db)) == 1


def test_double_tapping_check_in_as_a_walk_in_makes_one_visit(kiosk, lobby, db):
    form = walk_in_form(kiosk, lobby.jonas)
    first = kiosk.post("/kiosk/walk-in/details", form)
    second = kiosk.post("/kiosk/walk-in/details", form)
    assert "Welcome, Sam." in text_of(first) and "Welcome, Sam." in text_of(second)
    assert len(visits(db)) == 1


def test_double_tapping_after_signing_still_makes_one_visit(kiosk, lobby, db):
    publish_agreement(db, lobby.site)
    form = walk_in_form(kiosk, lobby.jonas)
    signed = {**form, "signed_name": "Sam Visitor", "signature": signature_data_url()}
    first = kiosk.post("/kiosk/walk-in/agreement", signed)
    second = kiosk.post("/kiosk/walk-in/agreement", signed)  # the agreement is signed by now
    assert "Welcome, Sam." in text_of(first) and "Welcome, Sam." in text_of(second)
    assert len(visits(db)) == 1


def test_a_walk_in_cannot_visit_someone_who_left(kiosk, lobby, db):
    lobby.lena.active = False
    db.commit()
    form = walk_in_form(kiosk, lobby.lena)
    refused = kiosk.post("/kiosk/walk-in/details", form)
    assert refused.status_code == 422
    assert "This person is not available. Please see reception." in text_of(refused)
    assert 'value="Sam Visitor"' in text_of(refused)
    assert visits(db) == []


def test_empty_and_enormous_fields_are_refused_beside_the_field_and_kept(kiosk, lobby, db):
    empty = kiosk.post("/kiosk/walk-in/details", walk_in_form(kiosk, lobby.jonas, name="   "))
    assert empty.status_code == 422
    assert "Please enter your full name." in text_of(empty)
    assert "Jonas Weber" in text_of(empty)  # the chosen host is still chosen

    huge = "x" * 10_000
    refused = kiosk.post(
        "/kiosk/walk-in/details",
        walk_in_form(kiosk, lobby.jonas, name=huge, company=huge, purpose=huge, email=huge),
    )
    assert refused.status_code == 422
    body = text_of(refused)
    assert body.count("Please use at most") == 4  # name, company, purpose and e-mail
    assert huge in body  # nothing lost
    no_host = kiosk.post("/kiosk/walk-in/details", walk_in_form(kiosk, lobby.jonas, host_id=""))
    assert "Please choose the person you are visiting" in text_of(no_host)
    assert kiosk.post("/kiosk/invitation/code", {"code": huge}).status_code == 422
    assert kiosk.get("/kiosk/hosts?host_query=" + huge).status_code == 200
    assert kiosk.get("/kiosk/invitation/matches?q=" + huge).status_code == 200
    assert kiosk.get("/kiosk/check-out/matches?q=" + huge).status_code == 200
    assert kiosk.post("/kiosk/check-out/badge", {"code": huge}).status_code == 422
    big_signature = kiosk.post(
        "/kiosk/walk-in/agreement",
        {**walk_in_form(kiosk, lobby.jonas), "signed_name": huge, "signature": "data:" + huge},
    )
    assert big_signature.status_code in (200, 422)  # no agreement here: checked in, or refused
    assert visits(db)[-1].visitor_name == "Sam Visitor" if visits(db) else True


@pytest.mark.parametrize(
    "name",
    ["ليلى عبد الله", "王小明", "Zoë 🎉 Party", "Siobhán O'Brien", "<script>alert(1)</script> Eve"],
)
def test_names_in_any_script_check_in_and_show(kiosk, lobby, db, name):
    done = kiosk.post("/kiosk/walk-in/details", walk_in_form(kiosk, lobby.jonas, name=name))
    assert done.status_code == 200
    body = text_of(done)
    first = name.split()[0]
    assert "Welcome, " in body
    from markupsafe import escape

    assert str(escape(first)) in body
    assert "<script>alert" not in body
    [visit] = visits(db)
    assert visit.visitor_name == name


# ---------------------------------------------------------------------------------------------
# The badge


def check_in_walk_in(kiosk: Kiosk, lobby: SimpleNamespace, **fields: Any) -> Any:
    return kiosk.post("/kiosk/walk-in/details", walk_in_form(kiosk, lobby.jonas, **fields))


def test_the_done_screen_follows_the_printer(kiosk, lobby, db):
    lobby.device.printer_uri = "socket://192.0.2.10:9100"
    db.commit()
    done = check_in_walk_in(kiosk, lobby)
    assert "Your badge is printing" in text_of(done)
    status_url = re.search(r'hx-get="(/kiosk/badge/[^"]+/status)"', text_of(done)).group(1)
    [visit] = visits(db)
    visit.badge_state = BadgeState.FAILED
    db.commit()
    failed = kiosk.get(status_url)
    body = text_of(failed)
    assert "The printer is not answering. Reception will give you your badge." in body
    assert "Print badge here" in body and "hx-get" not in body  # polling stops
    print_url = re.search(r'href="(/kiosk/badge/[^"]+/print)"', body).group(1)
    printed_page = kiosk.get(print_url, htmx=False)
    assert printed_page.status_code == 200
    assert "Sam Visitor" in text_of(printed_page) and "Print badge" in text_of(printed_page)
    assert "<style" not in text_of(printed_page)  # the label's CSS is linked, for the CSP
    css = kiosk.get("/kiosk/badge.css", htmx=False)
    assert css.status_code == 200 and css.mimetype == "text/css"
    visit.badge_state = BadgeState.PRINTED
    db.commit()
    assert "Please take your badge from the printer." in text_of(kiosk.get(status_url))


def test_the_badge_pdf_downloads_for_a_fresh_visit_only(kiosk, lobby, db):
    done = check_in_walk_in(kiosk, lobby)
    pdf_url = re.search(r'href="(/kiosk/badge/[^"]+/badge.pdf)"', text_of(done)).group(1)
    pdf = kiosk.get(pdf_url, htmx=False)
    assert pdf.status_code in (200, 503)
    if pdf.status_code == 200:
        assert pdf.data.startswith(b"%PDF") and pdf.mimetype == "application/pdf"
        assert pdf.headers["Content-Disposition"].startswith("attachment")
    [visit] = visits(db)
    visit.checked_in_at = utcnow() - timedelta(minutes=16)
    db.commit()
    assert kiosk.get(pdf_url, htmx=False).status_code == 404
    print_url = pdf_url.replace("badge.pdf", "print")
    assert kiosk.get(print_url, htmx=False).status_code == 404


def test_another_tablet_cannot_print_or_watch_this_tablets_badge(app, kiosk, lobby, elsewhere, db):
    done = check_in_walk_in(kiosk, lobby)
    status_url = re.search(r'(/kiosk/badge/[^"]+)/(status|print)', text_of(done)).group(1)
    second_berlin, _code = kiosk_devices.create(db, SYSTEM, lobby.site, "Side door", now=utcnow())
    code = kiosk_devices.new_pairing_code(db, SYSTEM, second_berlin, now=utcnow())
    db.commit()
    side = new_kiosk(app)
    assert side.pair(code).status_code == 204
    for url in (status_url + "/status", status_url + "/print", status_url + "/badge.pdf"):
        response = side.get(url, htmx=False)
        assert response.status_code == 404 and "Sam" not in text_of(response), url
    assert kiosk.get("/kiosk/badge/not-a-ticket/print", htmx=False).status_code == 404


# ---------------------------------------------------------------------------------------------
# Checking out


def checked_in_visit(
    kiosk: Kiosk, lobby: SimpleNamespace, db: Any, name: str = "Sam Visitor"
) -> Visit:
    assert "Welcome," in text_of(check_in_walk_in(kiosk, lobby, name=name))
    return visits(db)[-1]


def test_check_out_by_scanning_the_badge(app, kiosk, lobby, db):
    visit = checked_in_visit(kiosk, lobby, db)
    key = app.extensions["foyer.settings"].secret_key.encode()
    scanned = visitors.checkout_code(visit, key)
    confirm = kiosk.post("/kiosk/check-out/badge", {"code": scanned})
    assert confirm.status_code == 200 and "Check out Sam Visitor?" in text_of(confirm)
    bye = kiosk.post("/kiosk/check-out/confirm", {"ticket": hidden(confirm, "ticket")})
    assert "Goodbye, Sam." in text_of(bye)
    db.expire_all()
    visit = db.get(Visit, visit.id)
    assert visit.status == VisitStatus.CHECKED_OUT and visit.checkout_method == "kiosk"
    again = kiosk.post("/kiosk/check-out/badge", {"code": scanned})
    assert "You're already checked out" in text_of(again)
    twice = kiosk.post("/kiosk/check-out/confirm", {"ticket": hidden(confirm, "ticket")})
    assert "You're already checked out" in text_of(twice)


def test_badges_that_do_not_check_out(app, kiosk, lobby, elsewhere, db):
    visit = checked_in_visit(kiosk, lobby, db)
    forged = visitors.checkout_code(visit, b"not the key")
    refused = kiosk.post("/kiosk/check-out/badge", {"code": forged})
    assert refused.status_code == 422 and "We could not read that badge" in text_of(refused)
    ny = new_kiosk_for(kiosk, elsewhere)
    key = app.extensions["foyer.settings"].secret_key.encode()
    other_office = ny.post("/kiosk/check-out/badge", {"code": visitors.checkout_code(visit, key)})
    assert other_office.status_code == 422
    assert "This badge is from another office" in text_of(other_office)
    assert "Sam" not in text_of(other_office)


def test_check_out_by_name(kiosk, lobby, elsewhere, db):
    checked_in_visit(kiosk, lobby, db, name="Anna Kowalski")
    found = text_of(kiosk.get("/kiosk/check-out/matches?q=kow"))
    assert "Anna K." in found and "Kowalski" not in found and "Visiting Jonas W." in found
    ny = new_kiosk_for(kiosk, elsewhere)
    assert "Anna" not in text_of(ny.get("/kiosk/check-out/matches?q=kow"))
    visit_id = re.search(r'name="visit_id" value="(\d+)"', found).group(1)
    assert ny.post("/kiosk/check-out/pick", {"visit_id": visit_id}).status_code == 422
    confirm = kiosk.post("/kiosk/check-out/pick", {"visit_id": visit_id})
    assert "Check out Anna K.?" in text_of(confirm)
    bye = kiosk.post("/kiosk/check-out/confirm", {"ticket": hidden(confirm, "ticket")})
    assert "Goodbye, Anna." in text_of(bye)
    assert visits(db)[-1].status == VisitStatus.CHECKED_OUT


# ---------------------------------------------------------------------------------------------
# Languages and limits


def test_the_visitor_chooses_german_or_spanish_and_start_over_is_english(kiosk, lobby, client):
    chosen = kiosk.post("/kiosk/language", {"lang": "de"}, htmx=False)
    assert chosen.status_code == 303
    welcome = text_of(kiosk.get("/kiosk/", htmx=False))
    assert '<html lang="de">' in welcome
    assert "Willkommen" in welcome and "Ich habe eine Einladung" in welcome
    assert 'data-idle="60"' in welcome  # a German welcome returns to English when left alone
    walk_in = text_of(kiosk.get("/kiosk/walk-in"))
    assert "Neu beginnen" in walk_in and "Start over" not in walk_in
    refused = kiosk.post("/kiosk/walk-in/details", walk_in_form(kiosk, lobby.jonas, name=""))
    assert "Bitte geben Sie Ihren vollständigen Namen ein." in text_of(refused)

    kiosk.post("/kiosk/language", {"lang": "es"}, htmx=False)
    assert "Bienvenido" in text_of(kiosk.get("/kiosk/", htmx=False))
    kiosk.get("/kiosk/start-over", htmx=False)
    assert "Welcome to Berlin" in text_of(kiosk.get("/kiosk/", htmx=False))
    kiosk.post("/kiosk/language", {"lang": "xx"}, htmx=False)
    assert "Welcome to Berlin" in text_of(kiosk.get("/kiosk/", htmx=False))


def test_the_portal_stays_english(kiosk, lobby):
    kiosk.post("/kiosk/language", {"lang": "de"}, htmx=False)
    kiosk.client.set_cookie("foyer_kiosk_lang", "de", path="/")
    sign_in = text_of(kiosk.client.get("/sign-in"))
    assert "Sign in" in sign_in and "Anmelden" not in sign_in


def test_host_searches_are_rate_limited_per_tablet(app, kiosk, lobby, elsewhere):
    for _ in range(60):
        assert kiosk.get("/kiosk/hosts?host_query=jo").status_code == 200
    limited = kiosk.get("/kiosk/hosts?host_query=jo")
    assert limited.status_code == 429
    assert "Too many tries in a short time" in text_of(limited)
    ny = new_kiosk_for(kiosk, elsewhere)  # another tablet has its own allowance
    assert ny.get("/kiosk/hosts?host_query=ma").status_code == 200


def test_unknown_kiosk_pages_answer_in_the_kiosks_own_way(kiosk):
    for missing in (
        kiosk.post("/kiosk/walk-in/nonsense", {}, htmx=False),
        kiosk.get("/kiosk/walk-in/details", htmx=False),  # a POST-only address
        kiosk.get("/kiosk/no/such/page", htmx=False),
    ):
        assert missing.status_code == 404
        body = text_of(missing)
        assert "This page is not available any more" in body and "Start over" in body
        assert 'class="topbar"' not in body and "My day" not in body
    unpaired = new_kiosk(kiosk.client.application)
    assert unpaired.get("/kiosk/no/such/page", htmx=False).headers["Location"] == "/kiosk/"
