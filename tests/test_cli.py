"""The commands an IT admin runs: migrate, load the demo, create people, grant roles."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.db import utcnow
from portal.models import Desk, Floor, KioskDevice, Role, Room, Site, User, Visit, VisitorAgreement
from portal.services import kiosk_devices
from tests.conftest import make_test_app


@pytest.fixture
def cli_app(tmp_path, empty_database_url):
    app = make_test_app(tmp_path, empty_database_url)
    yield app
    app.extensions["foyer.engine"].dispose()


def run(app, *args: str, input: str | None = None):
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    return result


def counts(app) -> dict[str, int]:
    _reader, writer = app.extensions["foyer.sessions"]
    with writer() as session:
        return {
            model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (Site, Floor, Room, Desk, User)
        }


def test_upgrade_then_seed_demo_twice_gives_one_demo_company(cli_app):
    upgraded = run(cli_app, "upgrade-db")
    assert upgraded.exit_code == 0, upgraded.output
    assert "is up to date" in upgraded.output

    first = run(cli_app, "seed-demo")
    assert first.exit_code == 0, first.output
    assert "lena.fischer@example.com" in first.output and "password: foyer-demo" in first.output
    after_first = counts(cli_app)
    assert after_first["Site"] == 2 and after_first["Floor"] == 6
    assert 38 <= after_first["Room"] <= 45 and after_first["Desk"] == 300
    assert after_first["User"] >= 200

    # The demo lobby: a kiosk per site, each with a pairing code that pairs
    codes = re.findall(r"pairing code ([A-Z0-9]{4}-[A-Z0-9]{4})", first.output)
    assert len(codes) == 2 and "Berlin · Main lobby" in first.output
    _reader, writer = cli_app.extensions["foyer.sessions"]
    with writer() as session, session.begin():
        device, _token = kiosk_devices.pair(session, codes[0], now=utcnow())
        assert device.site.slug == "berlin"
        assert session.scalar(select(func.count(VisitorAgreement.id))) == 2
        visits = session.scalar(select(func.count(Visit.id)))

    second = run(cli_app, "seed-demo")
    assert second.exit_code == 0, second.output
    assert counts(cli_app) == after_first
    assert "paired" in second.output and second.output.count("pairing code ") == 1
    with writer() as session:
        assert session.scalar(select(func.count(Visit.id))) == visits  # nothing twice
        assert session.scalar(select(func.count(KioskDevice.id))) == 2

    fresh = run(cli_app, "kiosk-code", "berlin")
    assert fresh.exit_code == 0, fresh.output
    (code,) = re.findall(r"pairing code ([A-Z0-9]{4}-[A-Z0-9]{4})", fresh.output)
    with writer() as session, session.begin():
        assert kiosk_devices.pair(session, code, now=utcnow())[0].site.slug == "berlin"
    assert run(cli_app, "kiosk-code", "atlantis").exit_code != 0

    with writer() as session:
        zones = set(session.scalars(select(Site.time_zone)))
        assert zones == {"Europe/Berlin", "America/New_York"}
        departments = set(session.scalars(select(User.department)))
        assert len(departments) >= 6
        admin = session.scalar(select(User).where(User.email == "amara.okafor@example.com"))
        assert admin.is_admin
        coordinator = session.scalar(select(User).where(User.email == "jonas.weber@example.com"))
        assert coordinator.coordinated_site_ids()


def test_create_user_grant_role_and_deactivate(cli_app):
    assert run(cli_app, "upgrade-db").exit_code == 0
    assert run(cli_app, "seed-demo").exit_code == 0
    created = run(
        cli_app,
        "create-user",
        "--email",
        "New.Person@Example.com",
        "--name",
        "New Person",
        "--site",
        "berlin",
        "--password",
        input="a long enough secret\na long enough secret\n",
    )
    assert created.exit_code == 0, created.output
    assert "created new.person@example.com" in created.output

    duplicate = run(cli_app, "create-user", "--email", "new.person@example.com", "--name", "X")
    assert duplicate.exit_code != 0
    assert "already exists" in duplicate.output

    no_site = run(cli_app, "grant-role", "new.person@example.com", "coordinator")
    assert no_site.exit_code != 0 and "needs a site" in no_site.output
    unknown_site = run(
        cli_app, "grant-role", "new.person@example.com", "coordinator", "--site", "paris"
    )
    assert unknown_site.exit_code != 0 and "no site" in unknown_site.output
    granted = run(
        cli_app, "grant-role", "new.person@example.com", "coordinator", "--site", "berlin"
    )
    assert granted.exit_code == 0, granted.output

    assert run(cli_app, "deactivate-user", "new.person@example.com").exit_code == 0
    _reader, writer = cli_app.extensions["foyer.sessions"]
    with writer() as session:
        person = session.scalar(select(User).where(User.email == "new.person@example.com"))
        assert not person.active
        assert [g.role for g in person.grants] == [Role.COORDINATOR]
        assert person.password_hash.startswith("$argon2")
