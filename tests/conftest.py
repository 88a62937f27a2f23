"""Test fixtures: the app on SQLite and on PostgreSQL, rolled back after every test.

Every test that uses the database runs once per backend (ids `[sqlite]` and `[postgresql]`).
PostgreSQL comes from FOYER_TEST_POSTGRES_URL or 127.0.0.1:5432; a fresh database is created per run.
Where it is missing, those tests are skipped with one loud line, unless FOYER_REQUIRE_SERVICES=1
(set by .ci/run), which turns the skip into a failure so CI never passes by skipping."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from portal import create_app
from portal.db import make_engine
from portal.limits import limiter
from portal.schema import upgrade
from tests import factories
from tests.scratch_database import admin_engine, scratch_postgres_database

PG_ADMIN_URL = os.environ.get(
    "FOYER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_SERVICES = os.environ.get("FOYER_REQUIRE_SERVICES") == "1"

_missing: dict[str, str] = {}


def missing_service(name: str, reason: str) -> None:
    """Skip loudly, or fail where CI requires every service."""
    _missing[name] = reason
    if REQUIRE_SERVICES:
        pytest.fail(f"{name} is required here (FOYER_REQUIRE_SERVICES=1) but: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


def _postgres_database() -> Iterator[str]:
    admin = admin_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        admin.dispose()
        missing_service("PostgreSQL", f"cannot connect to {PG_ADMIN_URL}: {type(exc).__name__}")
    try:
        with scratch_postgres_database(admin, "foyer_test") as url:
            yield url
    finally:
        admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing() -> Iterator[None]:
    """Argon2id with the library's default cost (what Foyer uses) takes about 170 ms per check on
    a 2-core machine, and the suite signs in well over a thousand times. The tests run the same
    code with the cheapest parameters; production keeps the defaults (portal/services/accounts.py)."""
    from argon2 import PasswordHasher

    from portal.services import accounts

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    saved = accounts._hasher, accounts._DUMMY_HASH
    accounts._hasher, accounts._DUMMY_HASH = cheap, cheap.hash("not-a-real-password")
    factories._hash_cache.clear()
    yield
    accounts._hasher, accounts._DUMMY_HASH = saved
    factories._hash_cache.clear()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'foyer.sqlite3'}"
    else:
        yield from _postgres_database()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database: the schema comes from Alembic, as in production."""
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    # Commits inside the app release savepoints; the outer transaction is rolled back after the test.
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for arranging and checking data, sharing the app's transaction."""
    session = session_factory()
    yield session
    session.close()


@pytest.fixture
def empty_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A brand-new, empty database on the same backend as this test's parameter, for tests that
    commit for real (CLI commands, concurrent writers)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def fresh_engine(empty_database_url: str) -> Iterator[Engine]:
    """A migrated, empty database whose commits are real (no rollback)."""
    eng = make_engine(empty_database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def make_test_app(tmp_path: Path, database_url: str, **overrides: Any) -> Flask:
    config: dict[str, Any] = {
        "TESTING": True,
        "database_url": database_url,
        "secret_key": "test-secret-" + secrets.token_hex(8),
        "instance_path": tmp_path / "instance",
        "jobs_in_process": False,  # tests run jobs explicitly; no consumer thread per app
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """Override in a test module to change settings (e.g. OIDC) for its app."""
    return {}


@pytest.fixture
def app(
    tmp_path: Path,
    database_url: str,
    session_factory: sessionmaker[Session],
    app_overrides: dict[str, Any],
) -> Iterator[Flask]:
    application = make_test_app(
        tmp_path, database_url, SESSION_FACTORY=session_factory, **app_overrides
    )
    with application.app_context():
        limiter.reset()
    yield application


class Browser(FlaskClient):
    """A test client that behaves like a browser with our forms: it sends the CSRF token."""

    def csrf_token(self) -> str:
        page = self.get("/sign-in", follow_redirects=True).get_data(as_text=True)
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'"X-CSRFToken": "([^"]+)"', page
        )
        assert match, "no CSRF token on the page"
        return match.group(1)

    def submit(
        self, url: str, data: dict[str, Any] | None = None, htmx: bool = False, **kwargs: Any
    ) -> Any:
        form = dict(data or {})
        headers = dict(kwargs.pop("headers", {}))
        token = self.csrf_token()
        if htmx:
            headers.update({"HX-Request": "true", "X-CSRFToken": token})
        else:
            form.setdefault("csrf_token", token)
        return self.post(url, data=form, headers=headers, **kwargs)

    def sign_in(self, email: str, password: str = factories.PASSWORD) -> Any:
        response = self.submit("/sign-in", {"email": email, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return response


@pytest.fixture
def client(app: Flask) -> Browser:
    app.test_client_class = Browser
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture
def employee(db: Session) -> Any:
    user = factories.user(db, name="Erin Employee", email="erin@example.com")
    db.commit()
    return user


@pytest.fixture
def admin(db: Session) -> Any:
    user = factories.user(db, name="Ada Admin", email="ada@example.com", admin=True)
    db.commit()
    return user


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts = {"sqlite": 0, "postgresql": 0, "browser": 0}
    for report in terminalreporter.stats.get("passed", []):
        params = re.findall(r"\[(.*)\]", report.nodeid)
        tokens = params[0].split("-") if params else []
        for backend in ("sqlite", "postgresql"):
            if backend in tokens:
                counts[backend] += 1
        if "browser" in report.keywords:
            counts["browser"] += 1
    terminalreporter.write_line(
        f"Foyer: {counts['sqlite']} passed on SQLite, {counts['postgresql']} on PostgreSQL, "
        f"{counts['browser']} in the browser"
    )
    # Under pytest-xdist the skips happened in the workers: their reasons come with the reports.
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = str(longrepr[-1]) if isinstance(longrepr, tuple) else ""
        if found := re.match(r"Skipped: (.+?) unavailable: (.*)", reason):
            _missing.setdefault(found[1], found[2])
    for name, reason in _missing.items():
        terminalreporter.write_line(f"!!! {name} TESTS SKIPPED: {reason}", red=True, bold=True)
