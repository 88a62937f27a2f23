"""The headers every response carries: a strict CSP, no framing, no sniffing, a same-origin
Referer, and HSTS only when served over https on a real (non-loopback) host."""

from __future__ import annotations

import pytest

from tests import factories


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def assert_strict_headers(response) -> None:
    csp = directives(response)
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.fixture
def signed_in(client, db):
    factories.site(db)
    user = factories.user(db, name="Erin Employee", email="erin@example.com")
    db.commit()
    client.sign_in(user.email)
    return client


def test_pages_fragments_static_files_errors_and_the_kiosk_carry_strict_headers(signed_in):
    responses = {
        "page": signed_in.get("/my-day"),
        "fragment": signed_in.get("/notices", headers={"HX-Request": "true"}),
        "static file": signed_in.get("/static/css/booking.css"),
        "error page": signed_in.get("/no-such-page"),
        "kiosk page": signed_in.get("/kiosk/"),
    }
    assert responses["page"].status_code == 200
    assert responses["fragment"].status_code == 200
    assert responses["static file"].status_code == 200
    assert responses["error page"].status_code == 404
    assert responses["kiosk page"].status_code == 200
    for response in responses.values():
        assert_strict_headers(response)
        assert "Strict-Transport-Security" not in response.headers  # plain http


def test_hsts_only_over_https_on_a_real_host(app):
    secure = app.test_client().get("/healthz", base_url="https://foyer.example")
    assert_strict_headers(secure)
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    local = app.test_client().get("/healthz", base_url="https://localhost")
    assert "Strict-Transport-Security" not in local.headers
    plain = app.test_client().get("/healthz", base_url="http://foyer.example")
    assert "Strict-Transport-Security" not in plain.headers
