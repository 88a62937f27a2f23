"""Signing in with a password, and everything that can go wrong doing it."""

from __future__ import annotations

from sqlalchemy import select

from portal.models import AuditEvent, LoginSession
from tests import factories


def audit_actions(db) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_employee_signs_in_and_lands_on_my_day(client, employee):
    response = client.submit(
        "/sign-in", {"email": "erin@example.com", "password": factories.PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/my-day")
    page = client.get("/my-day").get_data(as_text=True)
    assert "Erin" in page
    assert "My bookings today" in page


def test_email_is_matched_case_insensitively(client, employee):
    response = client.submit(
        "/sign-in", {"email": "ERIN@Example.com", "password": factories.PASSWORD}
    )
    assert response.status_code == 303


def test_wrong_password_and_unknown_user_get_the_same_clear_message(client, employee, db):
    wrong = client.submit("/sign-in", {"email": "erin@example.com", "password": "not the password"})
    unknown = client.submit("/sign-in", {"email": "nobody@example.com", "password": "whatever123"})
    for response in (wrong, unknown):
        assert response.status_code == 422
        assert "That e-mail and password do not match an account." in response.get_data(
            as_text=True
        )
    assert client.get("/my-day").status_code == 302  # still signed out
    assert audit_actions(db).count("login.failed") == 2


def test_deactivated_account_is_refused_with_a_reason(client, db):
    factories.user(db, email="gone@example.com", active=False)
    db.commit()
    response = client.submit(
        "/sign-in", {"email": "gone@example.com", "password": factories.PASSWORD}
    )
    assert response.status_code == 422
    assert "deactivated" in response.get_data(as_text=True)
    assert "login.refused_inactive" in audit_actions(db)


def test_empty_and_oversized_fields_are_answered_beside_the_field(client):
    empty = client.submit("/sign-in", {"email": "", "password": ""})
    assert empty.status_code == 422
    body = empty.get_data(as_text=True)
    assert "Enter your e-mail address." in body and "Enter your password." in body
    assert 'aria-invalid="true"' in body
    huge = client.submit("/sign-in", {"email": "a" * 5000 + "@example.com", "password": "x" * 5000})
    assert huge.status_code == 422
    assert "Field cannot be longer than 254 characters." in huge.get_data(as_text=True)


def test_htmx_sign_in_error_returns_the_form_fragment_with_422(client, employee):
    response = client.submit(
        "/sign-in", {"email": "erin@example.com", "password": "wrong-password"}, htmx=True
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="sign-in"')
    assert "<html" not in body


def test_htmx_sign_in_success_redirects_the_whole_page(client, employee):
    response = client.submit(
        "/sign-in", {"email": "erin@example.com", "password": factories.PASSWORD}, htmx=True
    )
    assert response.headers["HX-Redirect"].endswith("/my-day")


def test_next_takes_you_back_but_only_within_foyer(client, employee):
    ok = client.submit(
        "/sign-in",
        {"email": "erin@example.com", "password": factories.PASSWORD, "next": "/account/"},
    )
    assert ok.headers["Location"].endswith("/account/")
    client.submit("/sign-out")
    for evil in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        response = client.submit(
            "/sign-in", {"email": "erin@example.com", "password": factories.PASSWORD, "next": evil}
        )
        assert response.headers["Location"].endswith("/my-day"), evil
        client.submit("/sign-out")


def test_missing_csrf_token_is_refused_and_nothing_happens(client, employee, db):
    response = client.post(
        "/sign-in", data={"email": "erin@example.com", "password": factories.PASSWORD}
    )
    assert response.status_code == 400
    assert "nothing was saved" in response.get_data(as_text=True)
    assert db.scalar(select(LoginSession.id)) is None


def test_stale_csrf_token_on_htmx_request_reloads_the_page(client, employee):
    client.sign_in("erin@example.com")
    response = client.post(
        "/account/sessions/end-others", headers={"HX-Request": "true", "X-CSRFToken": "stale-token"}
    )
    assert response.status_code == 400
    assert response.headers["HX-Refresh"] == "true"


def test_sign_in_starts_a_fresh_server_side_session(client, employee, db):
    client.sign_in("erin@example.com")
    with client.session_transaction() as cookie:
        first = cookie["sid"]
    client.submit("/sign-out")
    client.sign_in("erin@example.com")
    with client.session_transaction() as cookie:
        second = cookie["sid"]
    assert first != second
    rows = db.scalars(select(LoginSession).order_by(LoginSession.id)).all()
    assert [r.end_reason for r in rows] == ["signed_out", None]
    # only the hash is stored
    assert all(r.token_hash != first and len(r.token_hash) == 64 for r in rows)


def test_repeated_failures_are_rate_limited(client, employee, db):
    statuses = [
        client.submit(
            "/sign-in", {"email": "erin@example.com", "password": f"guess-{i}-xx"}
        ).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [422] * 10
    assert statuses[10:] == [429, 429]
    limited = client.submit(
        "/sign-in", {"email": "erin@example.com", "password": factories.PASSWORD}
    )
    assert limited.status_code == 429
    assert "Too many sign-in attempts" in limited.get_data(as_text=True)
    assert "Retry-After" in limited.headers
    assert "login.rate_limited" in audit_actions(db)


def test_password_sign_in_can_be_switched_off(tmp_path, database_url, session_factory, db):
    from tests.conftest import Browser, make_test_app

    factories.user(db, email="erin@example.com")
    db.commit()
    app = make_test_app(
        tmp_path, database_url, SESSION_FACTORY=session_factory, password_login=False
    )
    app.test_client_class = Browser
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    assert 'name="password"' not in page
    response = client.submit(
        "/sign-in", {"email": "erin@example.com", "password": factories.PASSWORD}
    )
    assert response.status_code == 403
    assert "Password sign-in is turned off" in response.get_data(as_text=True)
