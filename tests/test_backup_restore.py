"""An admin backs up a running installation with `flask backup`, restores it into an empty one
with `flask restore`, and gets back every row, every uploaded file and every visitor signature,
with the database still refusing double bookings. Wrong files, non-empty targets and a missing
pg_dump get a one-line answer, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.db import session_factories, utcnow
from portal.errors import SlotTaken
from portal.models import Booking, VisitImage
from portal.services import backups, bookings, visitors
from portal.services.audit import Actor
from tests import factories
from tests.conftest import _postgres_database, make_test_app
from tests.test_visitors import noon_today, paired_kiosk, signature_url

SYSTEM = Actor.system("tests")


@pytest.fixture
def target_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second brand-new database of the same kind, never migrated: the restore target."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def source(tmp_path: Path, fresh_engine, empty_database_url: str):
    """A live installation: people, a booked room, a visitor's signature and uploaded pictures."""
    _reader, writer = session_factories(fresh_engine)
    with writer() as session, session.begin():
        site = factories.site(session, "berlin")
        room = factories.room(session, factories.floor(session, site), name="Spree")
        booker = factories.user(session)
        host = factories.user(session, name="Hanna Host", home_site=site)
        day = factories.weekday_ahead()
        bookings.book(
            session, SYSTEM, booker, resource_id=room.id, start=factories.at(day, 10),
            end=factories.at(day, 11),
        )  # fmt: skip
        visitors.publish_agreement(session, SYSTEM, site, title="Visitor NDA", body="Be kind.")
        visitors.check_in_walk_in(
            session,
            paired_kiosk(session, site),
            visitors.VisitorDetails.from_form("Zoë D'Arcy", "zoe@example.org", "Mill & Co"),
            visitors.Signing(
                signed_name="Zoë D'Arcy", signature_data_url=signature_url(), host_id=host.id
            ),
            now=noon_today(site),
        )
    app = make_test_app(tmp_path / "source", empty_database_url)
    uploads = tmp_path / "source" / "instance" / "uploads"
    (uploads / "catalog").mkdir(parents=True)
    (uploads / "catalog" / "chair.jpg").write_bytes(b"\xff\xd8chair" * 500)
    (uploads / "issues" / "2026").mkdir(parents=True)
    (uploads / "issues" / "2026" / "leak.jpg").write_bytes(b"\xff\xd8leak" * 300)
    yield app, uploads
    app.extensions["foyer.engine"].dispose()


@pytest.fixture
def target(tmp_path: Path, target_database_url: str):
    app = make_test_app(tmp_path / "target", target_database_url)
    yield app, tmp_path / "target" / "instance" / "uploads"
    app.extensions["foyer.engine"].dispose()


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def signatures(app) -> list[bytes]:
    reader, _writer = app.extensions["foyer.sessions"]
    with reader() as session:
        return list(session.scalars(select(VisitImage.data).order_by(VisitImage.id)))


def refuses_overlap(app) -> bool:
    """Book over the restored booking as if the checks under the lock had missed it: only the
    database's own exclusion constraint (PostgreSQL) or trigger (SQLite) is left to refuse."""
    _reader, writer = app.extensions["foyer.sessions"]
    saved, bookings.overlapping = bookings.overlapping, lambda *args, **kwargs: None
    with writer() as session:
        taken = session.scalars(select(Booking)).one()
        someone = factories.user(session, name="Late Larry")
        try:
            bookings.book(
                session, SYSTEM, someone, resource_id=taken.resource_id, now=utcnow(),
                start=taken.start_at, end=taken.end_at,
            )  # fmt: skip
            session.flush()
        except SlotTaken:
            return True
        finally:
            bookings.overlapping = saved
            session.rollback()
    return False


def test_a_backup_restores_into_an_empty_installation_with_everything(source, target, tmp_path):
    source_app, source_uploads = source
    target_app, target_uploads = target
    archive = tmp_path / "foyer.tar.gz"

    backed_up = run(source_app, "backup", str(archive))
    assert backed_up.exit_code == 0, backed_up.output
    assert archive.is_file() and "2 uploaded files" in backed_up.output
    manifest = backups.read_manifest(archive)
    assert manifest.upload_files == 2 and manifest.tables["bookings"] == 1
    assert manifest.tables["visit_images"] == 1 and manifest.tables["alembic_version"] == 1

    restored = run(target_app, "restore", str(archive))
    assert restored.exit_code == 0, restored.output
    assert "row counts and uploads match the backup" in restored.output

    source_counts = backups.table_counts(source_app.extensions["foyer.engine"])
    assert backups.table_counts(target_app.extensions["foyer.engine"]) == source_counts
    assert files(target_uploads) == files(source_uploads)
    assert signatures(target_app) == signatures(source_app) != []
    assert refuses_overlap(target_app)
    assert backups.table_counts(target_app.extensions["foyer.engine"]) == source_counts

    # A second restore would overwrite what is there now: refused unless forced.
    again = run(target_app, "restore", str(archive))
    assert again.exit_code == 1 and "is not empty" in again.output and "--force" in again.output
    assert "Traceback" not in again.output
    (target_uploads / "catalog" / "stray.jpg").write_bytes(b"later upload")
    forced = run(target_app, "restore", "--force", str(archive))
    assert forced.exit_code == 0, forced.output
    assert files(target_uploads) == files(source_uploads)
    assert backups.table_counts(target_app.extensions["foyer.engine"]) == source_counts
    assert refuses_overlap(target_app)


def test_wrong_files_get_a_clear_answer_and_change_nothing(source, target, tmp_path):
    source_app, _uploads = source
    target_app, target_uploads = target
    not_a_backup = tmp_path / "holiday.tar.gz"
    not_a_backup.write_text("just some text")

    for path, message in (
        (not_a_backup, "is not a Foyer backup"),
        (tmp_path / "missing.tar.gz", "there is no file at"),
    ):
        result = run(target_app, "restore", str(path))
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert backups.table_counts(target_app.extensions["foyer.engine"]) == {}
    assert not target_uploads.exists() or files(target_uploads) == {}

    archive = tmp_path / "foyer.tar.gz"
    assert run(source_app, "backup", str(archive)).exit_code == 0
    over = run(source_app, "backup", str(archive))
    assert over.exit_code == 1 and "already exists" in over.output


def test_a_postgresql_backup_without_pg_dump_says_what_to_install(
    source, tmp_path, database_url, monkeypatch
):
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite backups need no external tool")
    source_app, _uploads = source
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump on it
    result = run(source_app, "backup", str(tmp_path / "foyer.tar.gz"))
    assert result.exit_code == 1 and "pg_dump is not installed" in result.output
    assert "postgresql-client" in result.output and not (tmp_path / "foyer.tar.gz").exists()
