"""Badge and access-control systems: visitors get a time-boxed credential from the site's system
(through the job, never making the kiosk wait), it is revoked at check-out, on deactivation and
when the server was down it is retried and then shown failed with a Retry button; signed door
events sent over real HTTP check employees in, and every bad webhook is refused with nothing
changed; a CSV import does the same per line."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from integrations.access_control import webhook_signature
from integrations.access_control.base import AccessError, CredentialRequest
from integrations.access_control.rest import RestAccessProvider
from integrations.retry_after import retry_after_seconds
from portal import create_app
from portal.db import utcnow
from portal.limits import limiter
from portal.models import (
    AuditEvent,
    Booking,
    BookingStatus,
    KioskDevice,
    Site,
    User,
    Visit,
    VisitStatus,
)
from portal.models.access_control import AccessGrant, DoorEvent, GrantState
from portal.schema import upgrade
from portal.services import access_control, accounts, offboarding, visitors
from portal.services.audit import Actor
from portal.timezones import to_utc
from tests import factories
from tests.access_control_server import API_KEY, ReferenceAccessServer
from tests.conftest import _postgres_database

SECRET = "a-long-shared-webhook-secret-for-tests"


@pytest.fixture
def reference() -> Iterator[ReferenceAccessServer]:
    with ReferenceAccessServer() as server:
        yield server


def _request(reference: str = "foyer-grant-1", door_group: str = "Lobby") -> CredentialRequest:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    return CredentialRequest(
        reference,
        "Vera Visitor",
        "vera@example.org",
        "visitor",
        door_group,
        now,
        now + timedelta(hours=3),
    )


# ---------------------------------------------------------------------------------------------
# The signature and the REST adapter (no database)


def test_a_signature_is_accepted_only_for_the_same_body_secret_and_a_fresh_time():
    body = b'{"event_id": "e1"}'
    now = time.time()
    header = webhook_signature.sign(SECRET, body, int(now))
    assert webhook_signature.verify(SECRET, body, header, now=now) == int(now)
    refusals = {
        "tampered body": (SECRET, body + b" ", header, now),
        "other secret": ("another-secret-of-some-length", body, header, now),
        "six minutes old": (
            SECRET,
            body,
            webhook_signature.sign(SECRET, body, int(now) - 360),
            now,
        ),
        "from the future": (
            SECRET,
            body,
            webhook_signature.sign(SECRET, body, int(now) + 360),
            now,
        ),
        "no header": (SECRET, body, None, now),
        "not hex": (SECRET, body, f"{int(now)}|" + "z" * 64, now),
        "no timestamp": (SECRET, body, header.partition("|")[2], now),
    }
    for why, (secret, raw, value, at) in refusals.items():
        with pytest.raises(webhook_signature.SignatureRejected):
            webhook_signature.verify(secret, raw, value, now=at)
            pytest.fail(f"accepted: {why}")


def test_the_rest_adapter_creates_once_per_reference_and_revokes(reference):
    provider = RestAccessProvider(reference.base_url, API_KEY)
    credential = provider.create_credential(_request())
    assert reference.state.credentials[credential]["person"]["email"] == "vera@example.org"
    assert reference.state.credentials[credential]["valid_from"] == "2026-12-02T09:00:00Z"
    # A retried create (its answer was lost) finds the same credential, never a second one.
    assert provider.create_credential(_request()) == credential
    assert len(reference.state.credentials) == 1
    provider.revoke_credential(credential)
    assert reference.state.credentials == {}
    provider.revoke_credential(credential)  # already gone: fine


def test_the_rest_adapter_says_which_failures_are_worth_retrying(reference):
    provider = RestAccessProvider(reference.base_url, API_KEY)
    reference.fail_next(429, retry_after="7")
    with pytest.raises(AccessError) as slow_down:
        provider.create_credential(_request())
    assert slow_down.value.transient and slow_down.value.retry_after == 7
    reference.fail_next(503)
    with pytest.raises(AccessError) as broken:
        provider.create_credential(_request())
    assert broken.value.transient
    with pytest.raises(AccessError) as unknown_group:
        provider.create_credential(_request(door_group="Vault"))
    assert not unknown_group.value.transient and "Vault" in str(unknown_group.value)
    with pytest.raises(AccessError) as wrong_key:
        RestAccessProvider(reference.base_url, "wrong").create_credential(_request())
    assert not wrong_key.value.transient and "API key" in str(wrong_key.value)
    reference.stop()
    with pytest.raises(AccessError) as down:
        provider.create_credential(_request())
    assert down.value.transient and "cannot reach" in str(down.value)


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Wed, 02 Dec 2026 09:01:30 GMT", now=now) == 90
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("999999") == 3600  # capped


# ---------------------------------------------------------------------------------------------
# Grants through the job (service level, both databases)


def _key(app: Flask) -> bytes:
    return app.extensions["foyer.settings"].secret_key.encode()


def _lobby(db: Session, app: Flask, reference: ReferenceAccessServer, **settings: Any) -> Any:
    site = factories.site(db)
    host = factories.user(db, name="Hanna Host", email="hanna@example.com", home_site=site)
    coordinator = factories.user(db, email="coord@example.com", coordinator_of=site)
    device = KioskDevice(site_id=site.id, name="Main lobby")
    db.add(device)
    access_control.update_settings(
        db,
        Actor.system("tests"),
        site,
        _key(app),
        enabled=True,
        base_url=reference.base_url,
        door_group="Lobby",
        grant_at=settings.get("grant_at", "check_in"),
        api_key=API_KEY,
        webhook_secret=SECRET,
    )
    db.commit()
    return SimpleNamespace(site=site, host=host, coordinator=coordinator, device=device)


def _walk_in(db: Session, lobby: Any, name: str = "Vera Visitor") -> Visit:
    outcome = visitors.check_in_walk_in(
        db,
        lobby.device,
        visitors.VisitorDetails(name, "vera@example.org", "Acme"),
        visitors.Signing(host_id=lobby.host.id, submission_key=secrets.token_hex(8)),
        now=utcnow(),
    )
    db.commit()
    return outcome.visit


def _run_job(db: Session, app: Flask, now: datetime | None = None) -> access_control.ProcessCounts:
    db.commit()  # end the test's read transaction: the job commits as it goes
    return access_control.process_due(db, _key(app), now=now or utcnow())


def _grant(db: Session, **by: Any) -> AccessGrant:
    grant = db.scalar(select(AccessGrant).filter_by(**by).order_by(AccessGrant.id.desc()))
    assert grant is not None
    db.refresh(grant)
    return grant


def test_a_checked_in_visitor_gets_a_credential_which_check_out_revokes(db, app, reference):
    lobby = _lobby(db, app, reference)
    visit = _walk_in(db, lobby)
    grant = _grant(db, visit_id=visit.id)
    assert (
        grant.state == GrantState.PENDING and reference.state.requests == []
    )  # kiosk never waited

    assert _run_job(db, app).created == 1
    grant = _grant(db, visit_id=visit.id)
    assert grant.state == GrantState.ACTIVE
    held = reference.state.credentials[grant.credential_id]
    assert held["person"]["name"] == "Vera Visitor" and held["door_group"] == "Lobby"

    visitors.check_out(db, Actor.system("tests"), visit, "kiosk", now=utcnow())
    db.commit()
    assert _grant(db, visit_id=visit.id).state == GrantState.REVOKING
    assert _run_job(db, app).revoked == 1
    assert _grant(db, visit_id=visit.id).state == GrantState.REVOKED
    assert reference.state.credentials == {}


def test_an_invitation_brings_the_credential_ahead_when_the_site_grants_then(db, app, reference):
    lobby = _lobby(db, app, reference, grant_at="invitation")
    day = factories.weekday_ahead()
    visit, _code = visitors.invite(
        db,
        Actor.system("tests"),
        lobby.host,
        site=lobby.site,
        details=visitors.VisitorDetails("Ina Invited", "ina@example.org", "Acme"),
        day=day,
        start_time="10:00",
        end_time="12:00",
        note="",
        now=utcnow(),
    )
    db.commit()
    _run_job(db, app)
    grant = _grant(db, visit_id=visit.id)
    assert grant.state == GrantState.ACTIVE
    assert grant.starts_at == factories.at(day, 9, 30) and grant.ends_at == factories.at(day, 12)
    visitors.cancel_invitation(db, Actor.system("tests"), visit, now=utcnow())
    db.commit()
    _run_job(db, app)
    assert _grant(db, visit_id=visit.id).state == GrantState.REVOKED
    assert reference.state.credentials == {}


def test_while_the_server_is_down_the_visitor_is_in_and_the_admin_sees_the_failure(
    db, app, client, reference
):
    lobby = _lobby(db, app, reference)
    reference.stop()
    visit = _walk_in(db, lobby)
    assert db.get(Visit, visit.id).status == VisitStatus.CHECKED_IN

    now = utcnow()
    waits = []
    for _attempt in range(access_control.MAX_ATTEMPTS):
        counts = _run_job(db, app, now)
        grant = _grant(db, visit_id=visit.id)
        assert "cannot reach the access-control server" in grant.last_error
        if grant.state == GrantState.FAILED:
            break
        assert counts.retrying == 1 and _run_job(db, app, now).total == 0  # not due yet
        waits.append(grant.next_attempt_at - now)
        now = grant.next_attempt_at
    assert grant.state == GrantState.FAILED and grant.attempts == access_control.MAX_ATTEMPTS
    assert waits[:3] == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2)]
    assert waits == sorted(waits)

    client.sign_in("coord@example.com")
    page = client.get(f"/admin/access-control/sites/{lobby.site.id}").get_data(as_text=True)
    assert "Vera Visitor" in page and "Failed" in page and "cannot reach" in page
    assert f"/admin/access-control/grants/{grant.id}/retry" in page

    reference.start()  # back on its port
    answer = client.submit(f"/admin/access-control/grants/{grant.id}/retry")
    assert answer.status_code == 303
    assert _grant(db, visit_id=visit.id).state == GrantState.PENDING
    _run_job(db, app)
    grant = _grant(db, visit_id=visit.id)
    assert grant.state == GrantState.ACTIVE and grant.credential_id in reference.state.credentials
    assert grant.last_error == ""


def test_a_429_waits_as_long_as_the_server_asks(db, app, reference):
    lobby = _lobby(db, app, reference)
    visit = _walk_in(db, lobby)
    reference.fail_next(429, retry_after="300")
    now = utcnow()
    assert _run_job(db, app, now).retrying == 1
    grant = _grant(db, visit_id=visit.id)
    assert grant.next_attempt_at == now + timedelta(seconds=300)
    assert "slow down" in grant.last_error
    assert _run_job(db, app, now + timedelta(seconds=299)).created == 0
    assert _run_job(db, app, now + timedelta(seconds=300)).created == 1


def test_deactivating_an_employee_revokes_their_day_pass(db, app, reference):
    lobby = _lobby(db, app, reference)
    leaver = factories.user(db, email="leaver@example.com", home_site=lobby.site)
    access_control.issue_day_pass(
        db, Actor.system("tests"), lobby.site, "Leaver@example.com", now=utcnow()
    )
    db.commit()
    _run_job(db, app)
    assert _grant(db, user_id=leaver.id).state == GrantState.ACTIVE
    assert len(reference.state.credentials) == 1

    admin = factories.user(db, admin=True)
    accounts.deactivate_user(db, Actor.for_user(admin), leaver)
    offboarding.offboard(db, Actor.for_user(admin), leaver, utcnow())
    db.commit()
    assert _grant(db, user_id=leaver.id).state == GrantState.REVOKING  # queued
    _run_job(db, app)
    assert _grant(db, user_id=leaver.id).state == GrantState.REVOKED  # performed
    assert reference.state.credentials == {}


# ---------------------------------------------------------------------------------------------
# The admin view


def test_secrets_are_write_only_and_bad_settings_answer_422(db, app, client, reference):
    lobby = _lobby(db, app, reference)
    client.sign_in("coord@example.com")
    url = f"/admin/access-control/sites/{lobby.site.id}"
    page = client.get(url).get_data(as_text=True)
    assert API_KEY not in page and SECRET not in page and "A key is stored" in page
    assert "Access control" in client.get("/my-day").get_data(as_text=True)  # in the nav

    bad = client.submit(
        url,
        {"enabled": "y", "base_url": "ftp://doors", "door_group": "", "grant_at": "check_in"},
        htmx=True,
    )
    assert bad.status_code == 422
    fragment = bad.get_data(as_text=True)
    assert "Start the address with https://" in fragment and "Name the door group" in fragment
    assert access_control.settings_for(db, lobby.site.id).base_url == reference.base_url

    saved = client.submit(
        url,
        {
            "enabled": "y",
            "base_url": reference.base_url,
            "door_group": "Lobby and 3rd floor",
            "grant_at": "invitation",
            "new_webhook_secret": "y",
        },
    )
    assert saved.status_code == 200
    shown = saved.get_data(as_text=True)
    row = access_control.settings_for(db, lobby.site.id)
    db.refresh(row)
    new_secret = access_control.webhook_secret(row, _key(app))
    assert new_secret != SECRET and new_secret in shown
    assert new_secret not in client.get(url).get_data(as_text=True)  # shown once
    event = db.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == "access.settings_updated")
        .order_by(AuditEvent.id.desc())
    )
    assert event.after["webhook_secret_changed"] is True and new_secret not in json.dumps(
        event.after
    )


def test_other_sites_coordinators_get_404_and_employees_403(db, app, client, reference):
    lobby = _lobby(db, app, reference)
    other = factories.site(db, slug="lisbon", time_zone="Europe/Lisbon")
    factories.user(db, email="lisbon@example.com", coordinator_of=other)
    factories.user(db, email="plain@example.com")
    visit = _walk_in(db, lobby)
    grant = _grant(db, visit_id=visit.id)
    client.sign_in("lisbon@example.com")
    assert client.get(f"/admin/access-control/sites/{lobby.site.id}").status_code == 404
    assert client.submit(f"/admin/access-control/grants/{grant.id}/retry").status_code == 404
    client.post("/sign-out", data={"csrf_token": client.csrf_token()})
    client.sign_in("plain@example.com")
    assert client.get("/admin/access-control/").status_code == 403


def _open_booking(db: Session, user: Any, site: Any) -> Booking:
    """A desk booking whose check-in window is open now."""
    desk = factories.desk(db, factories.floor(db, site))
    start = utcnow() + timedelta(minutes=5)
    booking = Booking(
        resource_id=desk.id,
        user_id=user.id,
        created_by_id=user.id,
        start_at=start,
        end_at=start + timedelta(hours=4),
        blocked_until=start + timedelta(hours=4),
        status=BookingStatus.CONFIRMED,
    )
    db.add(booking)
    db.flush()
    return booking


def test_a_csv_import_acts_on_good_lines_and_reports_bad_ones(db, app, client, reference):
    lobby = _lobby(db, app, reference)
    booking = _open_booking(db, lobby.host, lobby.site)
    db.commit()
    stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    csv_text = (
        "event_id,occurred_at,person,door,direction\n"
        f"csv-1,{stamp},hanna@example.com,Main entrance,in\n"
        f"csv-2,yesterday-ish,hanna@example.com,Main entrance,in\n"
        f"csv-3,{stamp},,Main entrance,sideways\n"
        f"csv-4,{stamp},stranger@example.org,Side door,in\n"
    )
    client.sign_in("coord@example.com")
    url = f"/admin/access-control/sites/{lobby.site.id}/import"

    def upload(text: str) -> Any:
        return client.submit(url, {"file": (io.BytesIO(text.encode()), "events.csv")}, htmx=True)

    first = upload(csv_text)
    page = first.get_data(as_text=True)
    assert first.status_code == 200
    assert "2 events recorded" in page and "2 lines with errors" in page
    assert "Line 3:" in page and "occurred_at" in page
    assert "Line 4:" in page and "direction: in or out" in page and "person:" in page
    db.refresh(booking)
    assert booking.status == BookingStatus.CHECKED_IN and booking.checked_in_via == "badge"
    again = upload(csv_text).get_data(as_text=True)
    assert "0 events recorded, 2 already known" in again
    assert db.scalar(select(func.count()).select_from(DoorEvent)) == 2
    nothing = upload("name,when\nx,y\n")
    assert nothing.status_code == 422 and "must name the columns" in nothing.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# The webhook over real HTTP, against a live server of the app


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app on its own fresh database (commits are real), served on loopback."""
    folder = tmp_path_factory.mktemp("access-live")
    if database_url.startswith("sqlite"):
        databases: Iterator[str] = iter([f"sqlite:///{folder / 'live.sqlite3'}"])
    else:
        databases = _postgres_database()
    url = next(databases)
    app = create_app(
        {
            "TESTING": True,
            "database_url": url,
            "instance_path": folder / "instance",
            "secret_key": "live-" + secrets.token_hex(8),
            "jobs_in_process": False,
            "DOOR_EVENTS_RATE_LIMIT": "40 per minute",
        }
    )
    engine = app.extensions["foyer.engine"]
    upgrade(engine)
    _reader, writer = app.extensions["foyer.sessions"]
    with app.app_context(), writer() as session, session.begin():
        site = factories.site(session)
        lena = factories.user(session, name="Lena Live", email="lena@example.com", home_site=site)
        access_control.update_settings(
            session,
            Actor.system("tests"),
            site,
            _key(app),
            enabled=False,
            base_url="",
            door_group="",
            grant_at="check_in",
            webhook_secret=SECRET,
        )
        ids = SimpleNamespace(site=site.id, lena=lena.id)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield SimpleNamespace(
            app=app,
            writer=writer,
            ids=ids,
            url=f"http://127.0.0.1:{server.server_port}/door-events/berlin",
        )
    finally:
        server.shutdown()
        server.server_close()
        engine.dispose()
        for _ in databases:  # drops the PostgreSQL database
            pass


def _send(
    live: Any, event: dict[str, Any], *, secret: str = SECRET, at: float | None = None
) -> requests.Response:
    body = json.dumps(event).encode()
    timestamp = int(at if at is not None else time.time())
    mac = hmac.new(secret.encode(), body + b"|" + str(timestamp).encode(), hashlib.sha256)
    return requests.post(
        live.url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Foyer-Signature": f"{timestamp}|{mac.hexdigest()}",
        },
        timeout=10,
    )


def _event(event_id: str, person: str = "lena@example.com") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "person": person,
        "door": "Main entrance",
        "direction": "in",
    }


def _state(live: Any) -> tuple[int, list[str]]:
    with live.app.app_context(), live.writer() as session:
        events = session.scalar(select(func.count()).select_from(DoorEvent))
        statuses = list(session.scalars(select(Booking.status).order_by(Booking.id)))
    return events, statuses


def test_a_signed_badge_in_over_http_checks_in_the_booking_and_the_roll_call(live):
    with live.app.app_context(), live.writer() as session, session.begin():
        site = session.get(Site, live.ids.site)
        lena = session.get(User, live.ids.lena)
        booking_id = _open_booking(session, lena, site).id
    answer = _send(live, _event(f"ok-{secrets.token_hex(4)}"))
    assert answer.status_code == 200, answer.text
    assert (
        answer.json()["status"] == "recorded" and "Checked in Lena Live" in answer.json()["outcome"]
    )
    with live.app.app_context(), live.writer() as session:
        booking = session.get(Booking, booking_id)
        assert booking.status == BookingStatus.CHECKED_IN and booking.checked_in_via == "badge"
        roll = visitors.roll_call(session, session.get(Site, live.ids.site), now=utcnow())
        assert "Lena Live" in [person.name for person in roll.employees]


def test_bad_webhooks_are_refused_with_the_right_status_and_change_nothing(live):
    with live.app.app_context(), live.writer() as session, session.begin():
        site = session.get(Site, live.ids.site)
        _open_booking(session, session.get(User, live.ids.lena), site)
    first = _send(live, _event("replayed-1", "nobody@example.org"))
    assert first.status_code == 200
    before = _state(live)

    assert _send(live, _event("bad-1"), secret="not-the-secret-at-all-really").status_code == 401
    assert _send(live, _event("old-1"), at=time.time() - 6 * 60).status_code == 401
    unsigned = requests.post(live.url, data=json.dumps(_event("unsigned-1")), timeout=10)
    assert unsigned.status_code == 401
    replay = _send(live, _event("replayed-1"))  # same id, now naming Lena: must do nothing
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    not_json = _send(live, "not an event")  # type: ignore[arg-type]
    assert not_json.status_code == 400
    # Refused from the Content-Length alone, before the body is read.
    huge = requests.post(
        live.url,
        data=b"x" * (5 * 1024 * 1024),
        headers={"X-Foyer-Signature": "1|" + "0" * 64},
        timeout=30,
    )
    assert huge.status_code == 413
    assert (
        requests.post(live.url.replace("berlin", "atlantis"), data=b"{}", timeout=10).status_code
        == 404
    )
    assert _state(live) == before

    with live.app.app_context():
        limiter.reset()
    codes = [
        _send(live, _event(f"flood-{n}"), secret="wrong-secret-wrong-secret").status_code
        for n in range(45)
    ]
    assert codes[0] == 401 and 429 in codes and set(codes) <= {401, 429}
    assert _state(live) == before
    with live.app.app_context():
        limiter.reset()


def test_a_visitor_badging_in_is_marked_arrived(live):
    with live.app.app_context(), live.writer() as session, session.begin():
        site = session.get(Site, live.ids.site)
        now = utcnow()
        visit = Visit(
            site_id=site.id,
            host_id=live.ids.lena,
            visitor_name="Bea Badge",
            visitor_email="bea@example.org",
            expected_start=now,
            expected_end=now + timedelta(hours=2),
            local_date=visitors.today_at(site, now),
        )
        session.add(visit)
        session.flush()
        visit_id = visit.id
    answer = _send(live, _event(f"visitor-{secrets.token_hex(4)}", "Bea@example.org"))
    assert answer.status_code == 200 and "Bea Badge arrived" in answer.json()["outcome"]
    with live.app.app_context(), live.writer() as session:
        visit = session.get(Visit, visit_id)
        assert visit.status == VisitStatus.CHECKED_IN and visit.checked_in_at is not None


def test_the_demo_seed_gives_berlin_a_documented_webhook_secret(tmp_path: Path):
    from tests.browser.live import build_demo_app

    app = build_demo_app(tmp_path)
    with app.app_context():
        _reader, writer = app.extensions["foyer.sessions"]
        with writer() as session:
            berlin = session.scalar(select(Site).where(Site.slug == "berlin"))
            row = access_control.settings_for(session, berlin.id)
            assert (
                access_control.webhook_secret(row, _key(app)) == access_control.DEMO_WEBHOOK_SECRET
            )
    app.extensions["foyer.engine"].dispose()


def test_the_roll_call_counts_who_badged_in_today_booking_or_not(db, app, reference):
    """An evacuation counts people: the last read of the day decides, whether or not they booked."""
    lobby = _lobby(db, app, reference)
    factories.user(db, name="Ines Inside", email="ines@example.com", home_site=lobby.site)
    factories.user(db, name="Otto Outside", email="otto@example.com", home_site=lobby.site)
    db.commit()
    # Midday at the site, so the reads half an hour earlier are the same local day at any hour.
    zone = ZoneInfo(lobby.site.time_zone)
    now = to_utc(datetime.combine(utcnow().astimezone(zone).date(), clock(12)), zone)
    actor = Actor.system("tests")

    def read(event_id: str, person: str, direction: str, minutes_ago: int) -> None:
        data = access_control.DoorEventData(
            event_id, person, "Main entrance", direction, now - timedelta(minutes=minutes_ago)
        )
        access_control.record_door_event(db, actor, lobby.site, data, source="csv", now=now)

    read("r1", "ines@example.com", "in", 30)
    read("r2", "otto@example.com", "in", 40)
    read("r3", "otto@example.com", "out", 10)
    db.commit()
    roll = visitors.roll_call(db, lobby.site, now=now)
    names = {person.name: person for person in roll.employees}
    assert "Ines Inside" in names and "Otto Outside" not in names
    assert "badged in at Main entrance" in names["Ines Inside"].detail
    assert names["Ines Inside"].since == now - timedelta(minutes=30)
    assert roll.missing == 1  # nobody has accounted for her yet


def test_retention_blanks_who_visitors_and_strangers_were_at_the_doors(db, app, reference):
    lobby = _lobby(db, app, reference)
    employee = factories.user(db, name="Ed Employee", email="ed@example.com", home_site=lobby.site)
    db.commit()
    now = utcnow()
    long_ago = now - timedelta(days=lobby.site.visitor_retention_days + 3)
    actor = Actor.system("tests")
    for event_id, person, at in [
        ("old-stranger", "stranger@example.org", long_ago),
        ("old-employee", "ed@example.com", long_ago),
        ("new-stranger", "stranger@example.org", now - timedelta(hours=1)),
    ]:
        data = access_control.DoorEventData(event_id, person, "Side door", "in", at)
        access_control.record_door_event(db, actor, lobby.site, data, source="csv", now=at)
    db.commit()

    visitors.erase_expired(db, now=now)
    db.commit()
    people = dict(db.execute(select(DoorEvent.event_id, DoorEvent.person)).all())
    assert people["old-stranger"] == ""  # past retention: who it was is gone
    assert people["new-stranger"] == "stranger@example.org"  # still within retention
    assert people["old-employee"] == "ed@example.com"  # employees are not visitor data
    assert employee.id == db.scalar(
        select(DoorEvent.user_id).where(DoorEvent.event_id == "old-employee")
    )
    assert db.scalar(select(func.count()).select_from(DoorEvent)) == 3  # the counts stay
