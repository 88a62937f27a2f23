"""Fifty signed-in people click "book" on the same desk at the same instant, over HTTP, against
gunicorn with two worker processes: exactly one wins, the other 49 are told "just taken", nobody
sees a server error, and the database holds one booking. On PostgreSQL and on SQLite (a WAL file);
and on PostgreSQL against two gunicorn instances at once (two hosts' worth, racers spread over both).

The whole stack takes part: sign-in sessions, CSRF, the per-request session, the view, the booking
service and the database's own locks, with real concurrent connections released together by a
barrier. Two racers sign in through the form; the other 48 get their sign-in session from the
app's own `start_session` (the same session row and cookie, without 48 deliberately slow argon2
checks, which take 0.3-1 s each on a busy 2-core machine and would dominate the test)."""

from __future__ import annotations

import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import flask
import pytest
import requests
from sqlalchemy import func, select

from portal import create_app
from portal.db import session_factories
from portal.login import start_session
from portal.models import HOLDING_STATUSES, Booking, User
from portal.request_scope import commit, db
from tests import factories
from tests.gunicorn_server import running_gunicorn

RACERS = 50
REAL_SIGN_INS = 2  # racers who sign in through the form; the others get minted sessions
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
HEADER_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')


def csrf_token(page: str) -> str:
    match = TOKEN.search(page) or HEADER_TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def gunicorn(fresh_engine, empty_database_url, tmp_path):
    """Gunicorn with 2 sync workers on the test's fresh, migrated database; yields (base url,
    log path, secret key)."""
    secret = "race-" + secrets.token_hex(16)
    instance = tmp_path / "instance"
    with running_gunicorn(
        instance,
        database_url=empty_database_url,
        secret_key=secret,
        login_rate_limit="100000 per minute",
    ) as base:
        yield base, instance / "gunicorn.log", secret


def mint_sessions(
    database_url: str, secret: str, instance: Path, emails: list[str]
) -> tuple[list[str], str]:
    """Signed session cookies for these people, made by the app's own sign-in step."""
    app = create_app(
        {
            "database_url": database_url,
            "instance_path": instance,
            "secret_key": secret,
            "jobs_in_process": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    serializer = app.session_interface.get_signing_serializer(app)
    cookies = []
    try:
        for email in emails:
            with app.test_request_context("/sign-in", method="POST"):
                user = db().scalar(select(User).where(User.email == email))
                start_session(user, "password")
                commit()
                cookies.append(serializer.dumps(dict(flask.session)))
    finally:
        app.extensions["foyer.engine"].dispose()
    return cookies, app.config["SESSION_COOKIE_NAME"]


def test_fifty_http_bookings_of_one_desk_have_exactly_one_winner(
    fresh_engine, empty_database_url, gunicorn, tmp_path
):
    base, log_path, secret = gunicorn
    race_for_one_desk(fresh_engine, empty_database_url, secret, tmp_path, [base], [log_path])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_fifty_bookings_spread_over_two_app_instances_have_exactly_one_winner(
    fresh_engine, empty_database_url, tmp_path
):
    """Two gunicorn masters (as on two hosts: own ports, own instance folders, 2 workers each)
    on one PostgreSQL database; racers alternate between them."""
    secret = "race-" + secrets.token_hex(16)
    settings = {
        "database_url": empty_database_url,
        "secret_key": secret,
        "login_rate_limit": "100000 per minute",
    }
    with (
        running_gunicorn(tmp_path / "a", workers=2, **settings) as a,
        running_gunicorn(tmp_path / "b", workers=2, **settings) as b,
    ):
        logs = [tmp_path / "a" / "gunicorn.log", tmp_path / "b" / "gunicorn.log"]
        answers = race_for_one_desk(
            fresh_engine, empty_database_url, secret, tmp_path, [a, b], logs
        )
    # Each instance answered half the racers, and told its losers so itself.
    for base in (a, b):
        statuses = [status for where, status in answers if where == base]
        assert len(statuses) == RACERS // 2
        assert statuses.count(409) >= RACERS // 2 - 1, (base, statuses)


def race_for_one_desk(
    fresh_engine, database_url: str, secret: str, tmp_path: Path, bases: list[str], logs: list[Path]
) -> list[tuple[str, int]]:
    """RACERS people, racer i on bases[i % len(bases)], book one desk at once. Asserts one
    winner, RACERS - 1 "just taken", no server error and one booking row; returns each racer's
    (base, status)."""
    _reader, writer = session_factories(fresh_engine)
    with writer() as session, session.begin():
        site = factories.site(session, "berlin")
        floor = factories.floor(session, site)
        desk = factories.desk(session, floor, name="1.01")
        people = [
            factories.user(session, email=f"http-racer{i}@example.com") for i in range(RACERS)
        ]
        session.flush()
        desk_id, emails = desk.id, [p.email for p in people]
    day = factories.weekday_ahead("Europe/Berlin", days=1)

    def base_of(index: int) -> str:
        return bases[index % len(bases)]

    def with_form_token(browser: requests.Session, base: str) -> tuple[requests.Session, str]:
        # The booking form carries the session's CSRF token, as when a person opens the panel.
        form = browser.get(
            f"{base}/desks/{desk_id}/confirm",
            params={"date": day.isoformat(), "slot": "day"},
            allow_redirects=False,
            timeout=30,
        )
        assert form.status_code == 200, form.status_code  # signed in, not sent to sign-in
        return browser, csrf_token(form.text)

    def signed_in_by_form(index: int) -> tuple[requests.Session, str]:
        browser, base = requests.Session(), base_of(index)
        page = browser.get(base + "/sign-in", timeout=30).text
        response = browser.post(
            base + "/sign-in",
            data={
                "csrf_token": csrf_token(page),
                "email": emails[index],
                "password": factories.PASSWORD,
            },
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 303, (emails[index], response.status_code)
        return with_form_token(browser, base)

    def signed_in_by_cookie(index: int) -> tuple[requests.Session, str]:
        browser = requests.Session()
        browser.cookies.set(
            cookie_name, minted[index - REAL_SIGN_INS], domain="127.0.0.1", path="/"
        )
        return with_form_token(browser, base_of(index))

    minted, cookie_name = mint_sessions(
        database_url, secret, tmp_path / "mint", emails[REAL_SIGN_INS:]
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        browsers = list(pool.map(signed_in_by_form, range(REAL_SIGN_INS)))
        browsers += list(pool.map(signed_in_by_cookie, range(REAL_SIGN_INS, RACERS)))

    barrier = threading.Barrier(RACERS)
    results: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def race(index: int, browser: requests.Session, token: str) -> None:
        base = base_of(index)
        try:
            barrier.wait(30)
            response = browser.post(
                f"{base}/desks/{desk_id}/book",
                data={
                    "csrf_token": token,
                    "date": day.isoformat(),
                    "slot": "day",
                    "idempotency_key": secrets.token_urlsafe(16),
                },
                allow_redirects=False,
                timeout=60,
            )
            outcome = (base, response.status_code, response.text)
        except Exception as exc:  # noqa: BLE001 - any client failure is a result we count
            outcome = (base, 0, f"{type(exc).__name__}: {exc}")
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=race, args=(index, *pair)) for index, pair in enumerate(browsers)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    elapsed = time.monotonic() - started
    for browser, _token in browsers:
        browser.close()

    statuses = sorted(status for _, status, _ in results)
    server_errors = [(s, body[:300]) for _, s, body in results if s >= 500 or s == 0]
    log_tails = "\n".join(log.read_text()[-3000:] for log in logs)
    assert len(results) == RACERS, f"only {len(results)} answers in {elapsed:.1f} s"
    assert server_errors == [], f"{server_errors}\n{log_tails}"
    winners = [s for s in statuses if s in (200, 303)]
    losers = [
        body
        for _, status, body in results
        if status == 409 and ("just taken" in body or "already booked" in body)
    ]
    assert len(winners) == 1, statuses
    assert len(losers) == RACERS - 1, statuses

    with writer() as session:
        held = session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.resource_id == desk_id, Booking.status.in_(HOLDING_STATUSES))
        )
        assert held == 1
        assert (
            session.scalar(select(func.count()).select_from(Booking)) == 1
        )  # nothing half-written
    return [(base, status) for base, status, _ in results]
