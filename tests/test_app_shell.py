"""The frame around every page: health checks, security headers, errors, htmx page-vs-fragment."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.models import AuditEvent
from tests import factories


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ok", "database": "ok"}


def test_readiness_fails_when_the_database_is_unreachable(tmp_path):
    from tests.conftest import make_test_app

    app = make_test_app(tmp_path, "postgresql://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"


def test_every_page_has_strict_security_headers(client):
    response = client.get("/sign-in")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain http on loopback
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Request-ID"])
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_cookies_are_secure_and_hsts_is_sent_outside_localhost(client):
    response = client.get("/sign-in", base_url="https://foyer.example.org")
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_pages_have_no_inline_scripts_or_styles(client, admin):
    client.sign_in("ada@example.com")
    for path in ("/sign-in", "/my-day", "/account/", "/admin/people/", "/admin/audit/"):
        body = client.get(path, follow_redirects=True).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
        assert " style=" not in body and "<style" not in body, path
        assert 'hx-headers=\'{"X-CSRFToken"' in body, path


def test_not_found_page_is_in_the_layout_and_htmx_gets_a_fragment(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert "<html" in page.get_data(as_text=True) and "Not found" in page.get_data(as_text=True)
    fragment = client.get("/no-such-page", headers={"HX-Request": "true"})
    assert fragment.status_code == 404
    assert "<html" not in fragment.get_data(as_text=True)
    assert fragment.headers["HX-Retarget"] == "#flash"


def test_wrong_method_is_a_clear_405(client):
    response = client.put("/sign-in")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_people_search_page_fragment_and_boosted_page(client, admin, db):
    factories.user(db, name="Zed Zimmer", email="zed@example.com")
    db.commit()
    client.sign_in("ada@example.com")
    full = client.get("/admin/people/?q=zed")
    fragment = client.get("/admin/people/?q=zed", headers={"HX-Request": "true"})
    boosted = client.get(
        "/admin/people/?q=zed", headers={"HX-Request": "true", "HX-Boosted": "true"}
    )
    restore = client.get(
        "/admin/people/?q=zed", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    for response in (full, boosted, restore):
        assert "<html" in response.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<div id="people-table"')
    assert "Zed Zimmer" in body and "Ada Admin" not in body
    assert "HX-Request" in fragment.headers["Vary"]


def test_flash_messages_ride_along_out_of_band_on_htmx_fragments(client, admin):
    client.sign_in("ada@example.com")
    with client.session_transaction() as cookie:
        cookie["_flashes"] = [("success", "Saved it.")]
    fragment = client.get("/admin/people/?q=ada", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="people-table"')
    assert '<div id="flash"' in body and 'hx-swap-oob="true"' in body and "Saved it." in body


def test_request_id_is_written_to_the_audit_trail(client, employee, db):
    response = client.submit(
        "/sign-in",
        {"email": "erin@example.com", "password": factories.PASSWORD},
        headers={"X-Request-ID": "req-abc-12345"},
    )
    assert response.headers["X-Request-ID"] == "req-abc-12345"
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "login.succeeded"))
    assert event.request_id == "req-abc-12345"
    assert event.actor_id is None or event.actor_label


def test_times_are_shown_in_the_zone_with_its_name(client, db):
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    factories.user(db, email="ny@example.com", home_site=new_york)
    db.commit()
    client.sign_in("ny@example.com")
    page = client.get("/my-day").get_data(as_text=True)
    assert "America/New_York" in page
    assert re.search(r"\b(EST|EDT)\b", page)


def test_person_chooses_their_own_time_zone(client, employee):
    client.sign_in("erin@example.com")
    bad = client.submit("/account/time-zone", {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 422
    assert "Not a valid choice" in bad.get_data(as_text=True)
    ok = client.submit("/account/time-zone", {"time_zone": "Asia/Tokyo"})
    assert ok.status_code == 303
    assert "Asia/Tokyo" in client.get("/my-day").get_data(as_text=True)
