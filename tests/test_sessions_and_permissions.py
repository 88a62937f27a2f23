"""Sessions end for real on the server, and each person sees only what their role allows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from portal.db import utcnow
from portal.models import LoginSession, Role
from tests import factories
from tests.conftest import Browser


def second_browser(app) -> Browser:
    app.test_client_class = Browser
    return app.test_client()


def test_sign_out_ends_the_session_even_if_the_cookie_is_replayed(client, employee):
    client.sign_in("erin@example.com")
    with client.session_transaction() as cookie:
        stolen = dict(cookie)
    client.submit("/sign-out")
    with client.session_transaction() as cookie:
        cookie.update(stolen)  # an attacker replays the old signed cookie
    response = client.get("/my-day")
    assert response.status_code == 302
    assert "/sign-in" in response.headers["Location"]


def test_deactivating_a_user_signs_them_out_everywhere(app, client, admin, employee, db):
    client.sign_in("erin@example.com")
    other_device = second_browser(app)
    other_device.sign_in("erin@example.com")
    admin_browser = second_browser(app)
    admin_browser.sign_in("ada@example.com")

    response = admin_browser.submit(f"/admin/people/{employee.id}/deactivate")
    assert response.status_code == 303
    page = admin_browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "is deactivated and signed out everywhere" in page

    for browser in (client, other_device):
        assert browser.get("/my-day").status_code == 302
    ended = db.scalars(select(LoginSession.end_reason).where(LoginSession.user_id == employee.id))
    assert set(ended) == {"deactivated"}
    # and cannot sign in again
    assert (
        client.submit(
            "/sign-in", {"email": "erin@example.com", "password": factories.PASSWORD}
        ).status_code
        == 422
    )


def test_idle_and_absolute_timeouts_end_the_session(client, employee, db):
    client.sign_in("erin@example.com")
    assert client.get("/my-day").status_code == 200
    db.execute(update(LoginSession).values(last_seen_at=utcnow() - timedelta(hours=13)))
    db.commit()
    response = client.get("/my-day")
    assert response.status_code == 302
    page = client.get("/sign-in").get_data(as_text=True)
    assert "Your session ended" in page

    client.sign_in("erin@example.com")
    db.execute(update(LoginSession).values(created_at=utcnow() - timedelta(days=8)))
    db.commit()
    assert client.get("/my-day").status_code == 302


def test_expired_session_on_an_htmx_request_redirects_instead_of_swapping(client, admin, db):
    client.sign_in("ada@example.com")
    db.execute(update(LoginSession).values(ended_at=utcnow(), end_reason="test"))
    db.commit()
    response = client.get(
        "/admin/people/?q=ada",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/admin/people/?q=ada"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/sign-in?next=")
    assert "/admin/people/" in response.headers["HX-Redirect"]
    assert response.get_data(as_text=True) == ""


def test_navigation_lists_only_what_the_person_may_use(app, client, employee, admin):
    client.sign_in("erin@example.com")
    page = client.get("/my-day").get_data(as_text=True)
    assert "My day" in page and "People" not in page and "Audit log" not in page
    boss = second_browser(app)
    boss.sign_in("ada@example.com")
    page = boss.get("/my-day").get_data(as_text=True)
    assert "People" in page and "Audit log" in page


def test_employees_cannot_reach_admin_pages_or_actions(client, employee, admin):
    client.sign_in("erin@example.com")
    assert client.get("/admin/people/").status_code == 403
    assert client.get(f"/admin/people/{admin.id}").status_code == 403
    assert client.get("/admin/audit/").status_code == 403
    assert client.submit(f"/admin/people/{admin.id}/deactivate").status_code == 403
    assert client.submit(f"/admin/people/{employee.id}/roles", {"role": "admin"}).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for path in ("/my-day", "/account/", "/admin/people/", "/admin/audit/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/sign-in?next=")


def test_a_session_of_someone_else_cannot_be_ended_by_guessing_its_id(app, client, employee, db):
    other = factories.user(db, email="other@example.com")
    db.commit()
    second_browser(app).sign_in("other@example.com")
    others_session = db.scalar(select(LoginSession.id).where(LoginSession.user_id == other.id))
    client.sign_in("erin@example.com")
    response = client.submit(f"/account/sessions/{others_session}/end")
    assert response.status_code == 404
    db.expire_all()
    assert db.get(LoginSession, others_session).ended_at is None


def test_sign_out_everywhere_else_keeps_this_browser(app, client, employee, db):
    client.sign_in("erin@example.com")
    phone = second_browser(app)
    phone.sign_in("erin@example.com")
    response = client.submit("/account/sessions/end-others")
    assert response.status_code == 303
    assert "Signed out of 1 other session." in client.get("/account/").get_data(as_text=True)
    assert phone.get("/my-day").status_code == 302
    assert client.get("/my-day").status_code == 200


def test_admin_grants_and_removes_a_coordinator_role(client, admin, employee, db):
    berlin = factories.site(db, "berlin")
    db.commit()
    client.sign_in("ada@example.com")
    missing_site = client.submit(
        f"/admin/people/{employee.id}/roles", {"role": "coordinator", "site": ""}
    )
    assert missing_site.status_code == 422
    assert "A coordinator role needs a site." in missing_site.get_data(as_text=True)

    ok = client.submit(
        f"/admin/people/{employee.id}/roles", {"role": "coordinator", "site": str(berlin.id)}
    )
    assert ok.status_code == 303
    db.expire_all()
    grant = next(
        g for g in db.get(type(employee), employee.id).grants if g.role == Role.COORDINATOR
    )
    assert grant.site_id == berlin.id
    assert client.submit(f"/admin/people/{employee.id}/roles/{grant.id}/revoke").status_code == 303
    db.expire_all()
    assert db.get(type(employee), employee.id).grants == []


def test_the_last_admin_cannot_be_removed_or_deactivated(client, admin, db):
    client.sign_in("ada@example.com")
    grant = admin.grants[0]
    response = client.submit(
        f"/admin/people/{admin.id}/roles/{grant.id}/revoke", follow_redirects=True
    )
    assert "last administrator" in response.get_data(as_text=True)
    response = client.submit(f"/admin/people/{admin.id}/deactivate", follow_redirects=True)
    assert "cannot deactivate your own account" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(type(admin), admin.id).active
