"""Admins (and coordinators, for their own sites) look after the lobby kiosks and each site's
visitor settings: pairing a tablet with a code shown once, pairing again, revoking, the badge
printer; the directions and data retention, agreement versions, and the deny list."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.db import utcnow
from portal.models import AuditEvent, DenyListEntry, KioskDevice, Site, VisitorAgreement
from portal.services import kiosk_devices
from portal.services.kiosk_devices import PairingRefused
from tests.test_visitors_portal import COORDINATOR, HOST, NY_COORDINATOR, arrange_office

PAIRING_CODE = re.compile(r'class="pair-code"[^>]*>([2-9A-Z]{4}-[2-9A-Z]{4})<')
ADMIN = "ada@example.com"


@pytest.fixture
def office(db):
    return arrange_office(db)


def add_kiosk(client, site, name="Main lobby"):
    response = client.submit("/admin/kiosks/", {"site": str(site.id), "name": name})
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    return response


# ---------------------------------------------------------------------------------------------
# Kiosks


def test_a_new_kiosk_shows_its_pairing_code_once_and_the_tablet_pairs_with_it(
    app, client, office, db
):
    berlin = office["berlin"]
    client.sign_in(COORDINATOR)
    page = client.get("/admin/kiosks/").get_data(as_text=True)
    assert "No kiosks yet" in page and "Add a kiosk" in page

    body = add_kiosk(client, berlin).get_data(as_text=True)
    code = PAIRING_CODE.search(body)
    assert code, body[:2000]
    base = app.extensions["foyer.settings"].base_url.rstrip("/")
    assert f"{base}/kiosk" in body and "Expires in 10 minutes" in body
    assert "shown only now" in body
    device = db.scalars(select(KioskDevice)).one()
    assert device.site_id == berlin.id and device.name == "Main lobby"
    assert device.pairing_code_hash != code[1] and device.token_hash is None

    listing = client.get("/admin/kiosks/").get_data(as_text=True)
    assert "Main lobby" in listing and "Waiting for pairing" in listing
    assert code[1] not in listing  # never shown again

    paired, token = kiosk_devices.pair(db, code[1].lower(), now=utcnow())
    paired.last_seen_at = utcnow() - timedelta(minutes=3)
    db.commit()
    listing = client.get("/admin/kiosks/").get_data(as_text=True)
    assert "Paired" in listing and "Online · 3 min ago" in listing
    assert token and kiosk_devices.authenticate(db, token, now=utcnow()) is not None
    assert db.scalar(select(func.count()).where(AuditEvent.action == "kiosk.created")) == 1


def test_creating_a_kiosk_answers_htmx_with_the_code_fragment(client, office):
    client.sign_in(COORDINATOR)
    response = client.submit(
        "/admin/kiosks/", {"site": str(office["berlin"].id), "name": "Side door"}, htmx=True
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body and PAIRING_CODE.search(body)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the kiosk a name, e.g. “Main lobby”."),
        ("   ", "Give the kiosk a name, e.g. “Main lobby”."),
        ("K" * 121, "Use at most 120 characters."),
        ("K" * 10_000, "Use at most 120 characters."),
    ],
)
def test_a_kiosk_needs_a_sensible_name(client, office, db, name, message):
    client.sign_in(COORDINATOR)
    response = client.submit("/admin/kiosks/", {"site": str(office["berlin"].id), "name": name})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True) and 'id="name-error"' in response.get_data(
        as_text=True
    )
    fragment = client.submit(
        "/admin/kiosks/", {"site": str(office["berlin"].id), "name": name}, htmx=True
    )
    assert fragment.status_code == 422
    assert fragment.get_data(as_text=True).lstrip().startswith('<form id="kiosk-create"')
    assert db.scalar(select(func.count(KioskDevice.id))) == 0


def test_a_new_pairing_code_replaces_the_old_one(client, office, db):
    client.sign_in(COORDINATOR)
    first = PAIRING_CODE.search(add_kiosk(client, office["berlin"]).get_data(as_text=True))[1]
    device = db.scalars(select(KioskDevice)).one()
    again = client.submit(f"/admin/kiosks/{device.id}/pairing-code")
    assert again.status_code == 200
    second = PAIRING_CODE.search(again.get_data(as_text=True))[1]
    assert second != first and "New pairing code" in again.get_data(as_text=True)
    with pytest.raises(PairingRefused):
        kiosk_devices.pair(db, first, now=utcnow())
    assert kiosk_devices.pair(db, second, now=utcnow())[0].id == device.id


def test_revoking_a_kiosk_locks_its_tablet_out(client, office, db):
    berlin = office["berlin"]
    device, code = kiosk_devices.create(
        db, kiosk_devices.Actor.system("tests"), berlin, "Main lobby", now=utcnow()
    )
    _paired, token = kiosk_devices.pair(db, code, now=utcnow())
    db.commit()
    client.sign_in(COORDINATOR)
    page = client.get(f"/admin/kiosks/{device.id}").get_data(as_text=True)
    assert 'hx-confirm="Revoke Main lobby?' in page
    response = client.submit(f"/admin/kiosks/{device.id}/revoke")
    assert response.status_code == 303
    db.refresh(device)
    assert device.revoked_at is not None
    assert kiosk_devices.authenticate(db, token, now=utcnow()) is None
    listing = client.get("/admin/kiosks/").get_data(as_text=True)
    assert "Revoked" in listing
    refused = client.submit(f"/admin/kiosks/{device.id}/pairing-code")
    assert refused.status_code == 303  # a revoked kiosk gets no new code
    assert "is revoked" in client.get(refused.headers["Location"]).get_data(as_text=True)


def test_the_badge_printer_is_checked_before_it_is_saved(client, office, db):
    client.sign_in(COORDINATOR)
    add_kiosk(client, office["berlin"])
    device = db.scalars(select(KioskDevice)).one()
    url = f"/admin/kiosks/{device.id}/printer"
    saved = client.submit(url, {"printer_uri": "socket://192.0.2.10:9100", "label_stock": "57x102"})
    assert saved.status_code == 303
    db.refresh(device)
    assert device.printer_uri == "socket://192.0.2.10:9100" and device.label_stock == "57x102"
    assert "socket://192.0.2.10:9100" in client.get("/admin/kiosks/").get_data(as_text=True)

    wrong = client.submit(url, {"printer_uri": "http://printer.local/", "label_stock": "62x100"})
    body = wrong.get_data(as_text=True)
    assert wrong.status_code == 422 and 'id="printer_uri-error"' in body
    assert "Foyer cannot print to http:// addresses" in body
    fragment = client.submit(url, {"printer_uri": "no scheme", "label_stock": "62x100"}, htmx=True)
    assert fragment.status_code == 422
    assert fragment.get_data(as_text=True).lstrip().startswith('<form id="kiosk-printer"')
    stock = client.submit(url, {"printer_uri": "", "label_stock": "poster"})
    assert stock.status_code == 422 and 'id="label_stock-error"' in stock.get_data(as_text=True)
    too_long = client.submit(url, {"printer_uri": "ipp://" + "p" * 400, "label_stock": "a4"})
    assert too_long.status_code == 422
    db.refresh(device)
    assert device.printer_uri == "socket://192.0.2.10:9100"  # nothing bad was kept
    browser = client.submit(url, {"printer_uri": "", "label_stock": "a4"})
    assert browser.status_code == 303
    db.refresh(device)
    assert device.printer_uri == ""


def test_kiosks_of_other_sites_are_out_of_reach(client, office, db, admin):
    berlin, new_york = office["berlin"], office["new_york"]
    actor = kiosk_devices.Actor.system("tests")
    berlin_kiosk, _ = kiosk_devices.create(db, actor, berlin, "Berlin lobby", now=utcnow())
    ny_kiosk, _ = kiosk_devices.create(db, actor, new_york, "Hudson lobby", now=utcnow())
    db.commit()
    client.sign_in(COORDINATOR)
    listing = client.get("/admin/kiosks/").get_data(as_text=True)
    assert "Berlin lobby" in listing and "Hudson lobby" not in listing
    for url in (f"/admin/kiosks/{ny_kiosk.id}",):
        assert client.get(url).status_code == 404
    for url, data in (
        (f"/admin/kiosks/{ny_kiosk.id}/pairing-code", {}),
        (f"/admin/kiosks/{ny_kiosk.id}/revoke", {}),
        (f"/admin/kiosks/{ny_kiosk.id}/printer", {"printer_uri": "", "label_stock": "a4"}),
        ("/admin/kiosks/", {"site": str(new_york.id), "name": "Sneaky"}),
    ):
        assert client.submit(url, data).status_code in (404, 422), url
    db.refresh(ny_kiosk)
    assert ny_kiosk.revoked_at is None and db.scalar(select(func.count(KioskDevice.id))) == 2
    client.submit("/sign-out")
    client.sign_in(HOST)
    assert client.get("/admin/kiosks/").status_code == 403
    assert client.get(f"/admin/kiosks/{berlin_kiosk.id}").status_code == 403
    assert client.submit(f"/admin/kiosks/{berlin_kiosk.id}/revoke").status_code == 403
    client.submit("/sign-out")
    assert client.get("/admin/kiosks/").status_code == 302
    client.sign_in(ADMIN)
    listing = client.get("/admin/kiosks/").get_data(as_text=True)
    assert "Berlin lobby" in listing and "Hudson lobby" in listing


# ---------------------------------------------------------------------------------------------
# Visitor settings


def settings_url(site: Site) -> str:
    return f"/admin/visitor-settings/sites/{site.id}"


def test_a_coordinator_sets_directions_photo_and_retention(client, office, db):
    berlin = office["berlin"]
    client.sign_in(COORDINATOR)
    assert client.get("/admin/visitor-settings/").headers["Location"].endswith(settings_url(berlin))
    saved = client.submit(
        settings_url(berlin),
        {"directions": "Entrance B, then the lifts.", "photo": "y", "retention_days": "30"},
    )
    assert saved.status_code == 303
    db.refresh(berlin)
    assert (berlin.visitor_directions, berlin.visitor_photo, berlin.visitor_retention_days) == (
        "Entrance B, then the lifts.",
        True,
        30,
    )
    page = client.get(settings_url(berlin)).get_data(as_text=True)
    assert "Entrance B, then the lifts." in page and 'value="30"' in page
    assert (
        db.scalar(select(func.count()).where(AuditEvent.action == "site.visitor_settings_changed"))
        == 1
    )


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"retention_days": "0"}, "retention_days", "Enter a number of days from 1 to 3650."),
        ({"retention_days": "abc"}, "retention_days", "Enter a number of days from 1 to 3650."),
        ({"retention_days": "99999"}, "retention_days", "Enter a number of days from 1 to 3650."),
        ({"directions": "d" * 10_000}, "directions", "Use at most 2,000 characters."),
    ],
)
def test_bad_settings_are_explained(client, office, db, values, field, message):
    berlin = office["berlin"]
    client.sign_in(COORDINATOR)
    form = {"directions": "", "retention_days": "90", **values}
    response = client.submit(settings_url(berlin), form)
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.get_data(as_text=True)
    assert message in response.get_data(as_text=True)
    fragment = client.submit(settings_url(berlin), form, htmx=True)
    assert fragment.get_data(as_text=True).lstrip().startswith('<form id="visitor-settings"')
    db.refresh(berlin)
    assert berlin.visitor_retention_days == 90


def test_agreement_versions_are_published_never_edited(client, office, db):
    berlin = office["berlin"]
    client.sign_in(COORDINATOR)
    page = client.get(settings_url(berlin)).get_data(as_text=True)
    assert "No agreement yet" in page
    url = f"{settings_url(berlin)}/agreements"
    assert client.submit(url, {"title": "NDA", "body": "Keep it secret."}).status_code == 303
    assert (
        client.submit(url, {"title": "NDA", "body": "Keep it secret, keep it safe."}).status_code
        == 303
    )
    versions = db.scalars(
        select(VisitorAgreement)
        .where(VisitorAgreement.site_id == berlin.id)
        .order_by(VisitorAgreement.version)
    ).all()
    assert [(a.version, a.body) for a in versions] == [
        (1, "Keep it secret."),
        (2, "Keep it secret, keep it safe."),
    ]
    page = client.get(settings_url(berlin)).get_data(as_text=True)
    assert "Version 2 · current" in page and "v1" in page and "v2" in page
    assert "Publish version 3" in page and "Keep it secret, keep it safe." in page
    empty = client.submit(url, {"title": "", "body": ""})
    body = empty.get_data(as_text=True)
    assert empty.status_code == 422 and "Give the agreement a title" in body
    assert "Write the agreement&#39;s text" in body or "Write the agreement's text" in body
    huge = client.submit(url, {"title": "NDA", "body": "x" * 20_001}, htmx=True)
    assert huge.status_code == 422 and 'id="agreement-form-wrap"' in huge.get_data(as_text=True)
    assert db.scalar(select(func.count(VisitorAgreement.id))) == 2


def test_the_deny_list_for_one_site_or_every_site(client, office, db, admin):
    berlin, new_york = office["berlin"], office["new_york"]
    url = f"{settings_url(berlin)}/deny-list"
    client.sign_in(COORDINATOR)
    assert client.submit(url, {"name": "Mallory Mischief", "reason": "Trespass"}).status_code == 303
    assert client.submit(url, {"email": "eve@example.net"}).status_code == 303
    nothing = client.submit(url, {"name": "", "email": "", "reason": "?"})
    assert nothing.status_code == 422
    assert "Enter a name, an e-mail address, or both." in nothing.get_data(as_text=True)
    bad_email = client.submit(url, {"email": "nope"})
    assert bad_email.status_code == 422 and 'id="email-error"' in bad_email.get_data(as_text=True)
    everywhere = client.submit(url, {"name": "Global Gus", "scope": "all"})
    assert everywhere.status_code == 422  # only admins list someone for every site
    entries = db.scalars(select(DenyListEntry).order_by(DenyListEntry.id)).all()
    assert [(e.name, e.email, e.site_id) for e in entries] == [
        ("Mallory Mischief", "", berlin.id),
        ("", "eve@example.net", berlin.id),
    ]
    page = client.get(settings_url(berlin)).get_data(as_text=True)
    assert "Mallory Mischief" in page and "Trespass" in page and "eve@example.net" in page
    assert "Every site" not in page  # no such choice for a coordinator

    client.submit("/sign-out")
    client.sign_in(ADMIN)
    assert client.submit(url, {"name": "Global Gus", "scope": "all"}).status_code == 303
    gus = db.scalars(select(DenyListEntry).where(DenyListEntry.name == "Global Gus")).one()
    assert gus.site_id is None
    ny_page = client.get(settings_url(new_york)).get_data(as_text=True)
    assert "Global Gus" in ny_page and "Mallory Mischief" not in ny_page

    client.submit("/sign-out")
    client.sign_in(COORDINATOR)
    page = client.get(settings_url(berlin)).get_data(as_text=True)
    assert "Global Gus" in page  # shown, but only admins may remove it
    assert client.submit(f"/admin/visitor-settings/deny-list/{gus.id}/remove").status_code == 404
    mallory = entries[0]
    removed = client.submit(
        f"/admin/visitor-settings/deny-list/{mallory.id}/remove", {"next": settings_url(berlin)}
    )
    assert removed.status_code == 303 and removed.headers["Location"] == settings_url(berlin)
    db.refresh(mallory)
    db.refresh(gus)
    assert mallory.active is False and gus.active is True
    after = client.get(settings_url(berlin)).get_data(as_text=True)
    assert "Mallory Mischief is off the deny list." in after  # the message, once
    assert "<strong>Mallory Mischief</strong>" not in after  # and no longer listed
    actions = set(db.scalars(select(AuditEvent.action)))
    assert {"deny_list.added", "deny_list.removed"} <= actions


def test_visitor_settings_of_other_sites_are_out_of_reach(client, office, db):
    berlin = office["berlin"]
    entry = DenyListEntry(site_id=berlin.id, name="Mallory", name_key="mallory")
    db.add(entry)
    db.commit()
    reads = [settings_url(berlin)]
    writes = [
        (settings_url(berlin), {"directions": "x", "retention_days": "5"}),
        (f"{settings_url(berlin)}/agreements", {"title": "t", "body": "b"}),
        (f"{settings_url(berlin)}/deny-list", {"name": "Someone"}),
        (f"/admin/visitor-settings/deny-list/{entry.id}/remove", {}),
    ]
    client.sign_in(NY_COORDINATOR)
    for url in reads:
        assert client.get(url).status_code == 404
    for url, data in writes:
        assert client.submit(url, data).status_code == 404, url
    client.submit("/sign-out")
    client.sign_in(HOST)
    for url in reads:
        assert client.get(url).status_code == 403
    for url, data in writes:
        assert client.submit(url, data).status_code == 403, url
    client.submit("/sign-out")
    for url in [*reads, "/admin/visitor-settings/"]:
        assert client.get(url).status_code == 302
    for url, data in writes:
        assert client.submit(url, data).status_code == 302, url
    db.refresh(berlin)
    db.refresh(entry)
    assert berlin.visitor_retention_days == 90 and entry.active
    assert db.scalar(select(func.count(VisitorAgreement.id))) == 0


def test_the_lobby_navigation_groups_the_coordinators_pages(client, office):
    client.sign_in(COORDINATOR)
    page = client.get("/admin/kiosks/").get_data(as_text=True)
    assert re.search(r'<a href="/lobby/"[^>]*aria-current="page"', page)  # "Lobby" stays lit
    for label in ("Visitor log", "Roll call", "Kiosks", "Settings"):
        assert label in page
