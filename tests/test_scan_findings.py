"""Regressions for what the dynamic security scan (`make scan`, security/scan.py) found."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import LoginSession, User, Vendor
from tests import factories
from tests.conftest import Browser, make_test_app

# What wapiti's crlf module sends in the inbox's hidden "back" field (the filters to return to).
HEADER_SPLIT = "category=plumbing\r\nSet-Cookie: injected=1"


@pytest.mark.parametrize("path", ["/inbox/views", "/inbox/bulk"])
def test_a_line_break_in_the_inbox_return_address_is_no_server_error(
    client: Any, db: Session, path: str
) -> None:
    site = factories.site(db, "alpha")
    factories.user(db, email="cora@example.com", coordinator_of=site)
    db.commit()
    client.sign_in("cora@example.com")
    response = client.submit(path, {"name": "Plumbing", "back": HEADER_SPLIT})
    assert response.status_code == 303
    location = response.headers["Location"]
    # Back to the inbox with the filter kept; the break is encoded inside the query string.
    assert location.startswith("/inbox/?category=plumbing")
    assert "\r" not in location and "\n" not in location
    assert "injected" not in response.headers.get("Set-Cookie", "")


def test_a_form_sent_after_a_minute_away_is_saved(
    tmp_path: Path, empty_database_url: str, fresh_engine: Engine
) -> None:
    """The first request after a minute moves the session's "last seen" on. When that request is
    a form (a writing request), SQLite's write lock is already the request's own: moving it on in
    a second transaction waited for the busy timeout and answered 500 (found by sqlmap).
    Real commits on a real file: the shared test connection would hide the second writer."""
    with Session(fresh_engine) as session:
        person_id = factories.user(session, email="erin@example.com").id
        session.commit()
    app = make_test_app(tmp_path, empty_database_url)
    app.test_client_class = Browser
    client = app.test_client()
    client.sign_in("erin@example.com")
    token = client.csrf_token()
    a_while_ago = utcnow() - timedelta(minutes=5)
    with fresh_engine.begin() as conn:
        conn.execute(update(LoginSession).values(last_seen_at=a_while_ago))

    response = client.post(
        "/account/time-zone", data={"csrf_token": token, "time_zone": "Europe/Lisbon"}
    )

    assert response.status_code == 303
    with Session(fresh_engine) as session:
        assert session.get(User, person_id).time_zone == "Europe/Lisbon"
        seen = session.scalar(select(LoginSession.last_seen_at))
        assert seen > a_while_ago + timedelta(minutes=4)


def signed_in_as_admin(client: Any, db: Session) -> None:
    site = factories.site(db, "berlin")
    factories.user(db, email="admin@example.com", admin=True, home_site=site)
    db.commit()
    client.sign_in("admin@example.com")


@pytest.mark.parametrize(
    "address",
    [
        "/catalog?q=%00",
        "/desks/?site=berlin%00",
        "/assets?q=IT%00",
        "/admin/catalog/?q=%00",
        "/rooms/timeline?site=%00",
        "/door-events/berlin%00",
    ],
)
def test_a_nul_byte_in_an_address_is_a_clear_400_on_both_databases(
    client: Any, db: Session, address: str
) -> None:
    """What the scan found on PostgreSQL (text there cannot hold NUL): a 500 per %00 filter."""
    signed_in_as_admin(client, db)
    response = client.get(address)
    assert response.status_code == 400
    assert "cannot be used" in response.get_data(as_text=True)
    assert client.get(address.replace("%00", "")).status_code != 500


BIG = "99999999999"  # past PostgreSQL's INTEGER (2**31 - 1)


@pytest.mark.parametrize(
    "address",
    [
        f"/bookings/{BIG}",
        f"/lobby/sites/{BIG}/",
        f"/feeds/?resource={BIG}",
        f"/admin/audit/?before={BIG}",
        f"/admin/outbox/?before={BIG}",
        f"/desks/?floor={BIG}",
        f"/rooms/timeline?floor={BIG}",
    ],
)
def test_an_id_past_integer_is_never_a_server_error(client: Any, db: Session, address: str) -> None:
    """What the deep fuzz found on PostgreSQL: 99999999999 reached a query as a parameter."""
    signed_in_as_admin(client, db)
    response = client.get(address)
    assert response.status_code in (200, 404), response.status_code
    if "?" not in address:
        assert response.status_code == 404  # like any id that does not exist


def test_a_nul_byte_in_a_form_field_is_a_clear_400_and_nothing_is_saved(
    client: Any, db: Session
) -> None:
    """Also from the deep fuzz: a vendor named "\\x00" was a 500 on PostgreSQL."""
    signed_in_as_admin(client, db)
    before = db.scalar(select(func.count()).select_from(Vendor))
    form = {
        "name": "Lindqvist\x00",
        "email": "ann@example.com",
        "contact_name": "Ann",
        "phone": "+49 30 1234",
    }
    response = client.submit("/admin/service-desk/vendors/new", form, htmx=True)
    assert response.status_code == 400
    assert "A field contains a character that cannot be used" in response.get_data(as_text=True)
    assert response.headers["HX-Retarget"] == "#flash"  # the form keeps what was typed
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Vendor)) == before
    form["name"] = "Lindqvist"
    assert client.submit("/admin/service-desk/vendors/new", form).status_code == 303
