"""Backing up and restoring a whole Foyer installation: the database and the uploads folder in one
archive file, and putting both back into an empty installation.

The archive is a gzipped tar holding `manifest.json` (first, so it is cheap to read), the database
and `uploads/`. The database is a consistent snapshot taken while the app keeps running: SQLite's
online backup API (never a copy of a live WAL file, which can be torn) or PostgreSQL's `pg_dump -Fc`
inside an exported snapshot, so the row counts in the manifest describe exactly what was dumped.
Visitor signatures and photos live in the database; catalog pictures, issue photos, floor plans
and room photos live in the uploads folder.

The SECRET_KEY is deliberately not in the archive: credentials Foyer replays to other systems are
sealed with it (portal/services/secret_box.py), so a stolen backup alone does not reveal them. The
manifest carries only a keyed fingerprint that tells a restore whether the key still matches.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import shutil
import sqlite3
import subprocess  # nosec B404
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

FORMAT = "foyer-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
UPLOADS = "uploads"
DATABASE_MEMBERS = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
TOOL_TIMEOUT = 60 * 60  # seconds; a dump of a large site is slow, a hung one must still end


class BackupFailed(Exception):
    """The backup or restore cannot go on; the message says why, for the operator who ran it."""


@dataclass(frozen=True)
class Manifest:
    backend: str  # sqlite | postgresql
    schema_revision: str
    created_at: str  # ISO 8601, UTC
    tables: dict[str, int]  # row count of every table, as dumped
    upload_files: int
    upload_bytes: int
    key_fingerprint: str
    format: str = FORMAT
    version: int = FORMAT_VERSION

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    tables: dict[str, int]  # row counts of the restored database
    upload_files: int
    key_matches: bool
    differences: dict[str, tuple[int, int | None]] = field(
        default_factory=dict
    )  # table: (backup, now)

    @property
    def counts_match(self) -> bool:
        return not self.differences and self.upload_files == self.manifest.upload_files


# ---------------------------------------------------------------------------------------------
# Backing up


def back_up(
    engine: Engine, uploads: Path, destination: Path, *, secret_key: str, now: datetime
) -> tuple[Path, Manifest]:
    """Write one archive of the database and the uploads folder. `destination` may be a folder
    (a dated file name is chosen in it). The archive appears whole or not at all."""
    backend = _backend(engine)
    if destination.is_dir():
        destination = destination / f"foyer-backup-{now.astimezone(UTC):%Y%m%d-%H%M%S}.tar.gz"
    if destination.exists():
        raise BackupFailed(f"{destination} already exists; choose another file name.")
    if not destination.parent.is_dir():
        raise BackupFailed(f"the folder {destination.parent} does not exist.")
    with tempfile.TemporaryDirectory(prefix=".foyer-backup-", dir=destination.parent) as staging:
        dump = Path(staging) / DATABASE_MEMBERS[backend]
        if backend == "sqlite":
            tables, revision = _snapshot_sqlite(_sqlite_path(engine), dump)
        else:
            tables, revision = _dump_postgresql(engine, dump)
        files, size = _folder_size(uploads)
        manifest = Manifest(
            backend=backend,
            schema_revision=revision,
            created_at=now.astimezone(UTC).isoformat(timespec="seconds"),
            tables=tables,
            upload_files=files,
            upload_bytes=size,
            key_fingerprint=key_fingerprint(secret_key),
        )
        partial = Path(staging) / "archive.partial"
        with tarfile.open(partial, "w:gz", compresslevel=6) as archive:
            _add_bytes(archive, MANIFEST, json.dumps(asdict(manifest), indent=2).encode())
            archive.add(dump, arcname=dump.name)
            if uploads.is_dir():
                archive.add(uploads, arcname=UPLOADS)
        partial.chmod(0o600)  # password hashes and visitors' personal data: owner only
        os.replace(partial, destination)  # same folder: atomic
    return destination, manifest


def key_fingerprint(secret_key: str) -> str:
    """Tells whether two installations share a SECRET_KEY without revealing it."""
    return hmac.new(secret_key.encode(), b"foyer backup key check", hashlib.sha256).hexdigest()[:16]


def _snapshot_sqlite(source_path: Path, dump: Path) -> tuple[dict[str, int], str]:
    if not source_path.is_file():
        raise BackupFailed(f"there is no database file at {source_path}.")
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(dump)
    try:
        source.backup(copy)  # one step: a consistent snapshot, WAL contents included
        copy.execute("PRAGMA journal_mode=DELETE")  # the copy is one self-contained file
        tables = _sqlite_counts(copy)
        revision = _sqlite_revision(copy)
    except sqlite3.DatabaseError as exc:
        raise BackupFailed(f"cannot read the SQLite database {source_path}: {exc}") from exc
    finally:
        copy.close()
        source.close()
    return tables, revision


def _dump_postgresql(engine: Engine, dump: Path) -> tuple[dict[str, int], str]:
    pg_dump = _tool("pg_dump")
    try:
        reading = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with reading as conn, conn.begin():
            # pg_dump joins this transaction's snapshot: counts and dump see the same rows.
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            tables = _counts(conn)
            revision = _revision(conn)
            command = [pg_dump, "--format=custom", f"--snapshot={snapshot}"]
            command += [f"--file={dump}", _dbname(engine.url)]
            _run(command, engine.url)
    except SQLAlchemyError as exc:
        raise BackupFailed(f"cannot read the database: {_first_line(exc)}") from exc
    return tables, revision


def _folder_size(folder: Path) -> tuple[int, int]:
    if not folder.is_dir():
        return 0, 0
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))


# ---------------------------------------------------------------------------------------------
# Reading an archive


def read_manifest(archive_path: Path) -> Manifest:
    """The archive's manifest, or BackupFailed saying why this is not a backup we can read."""
    with _open_archive(archive_path) as archive:
        return _manifest(archive, archive_path)


def _open_archive(archive_path: Path) -> tarfile.TarFile:
    if not archive_path.is_file():
        raise BackupFailed(f"there is no file at {archive_path}.")
    try:
        return tarfile.open(archive_path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupFailed(
            f"{archive_path} is not a Foyer backup (not a readable tar archive)."
        ) from exc


def _manifest(archive: tarfile.TarFile, archive_path: Path) -> Manifest:
    not_ours = f"{archive_path} is not a Foyer backup (it has no valid {MANIFEST})."
    try:
        member = archive.extractfile(MANIFEST)
        data = json.loads(member.read()) if member else None
    except (KeyError, ValueError, tarfile.TarError, OSError, EOFError) as exc:
        raise BackupFailed(not_ours) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupFailed(not_ours)
    if data.get("version") != FORMAT_VERSION:
        raise BackupFailed(
            f"{archive_path} is a Foyer backup of format version {data.get('version')}; "
            f"this Foyer reads version {FORMAT_VERSION}. Use the Foyer release that made it."
        )
    try:
        manifest = Manifest(**data)
    except TypeError as exc:
        raise BackupFailed(not_ours) from exc
    if manifest.backend not in DATABASE_MEMBERS:
        raise BackupFailed(not_ours)
    return manifest


# ---------------------------------------------------------------------------------------------
# Restoring


def restore(
    engine: Engine,
    archive_path: Path,
    uploads: Path,
    *,
    secret_key: str,
    known_revisions: set[str],
    force: bool = False,
) -> Restored:
    """Put an archive back: into an empty database and uploads folder, or over existing ones only
    with `force`. Everything is checked before anything is changed; the database is replaced in
    one transaction, and the uploads folder is swapped in only after the database succeeded."""
    backend = _backend(engine)
    with _open_archive(archive_path) as archive:
        manifest = _manifest(archive, archive_path)
        if manifest.backend != backend:
            raise BackupFailed(
                f"this backup is of a {_label(manifest.backend)} database and the target is "
                f"{_label(backend)}; a backup restores only into the same kind of database."
            )
        if manifest.schema_revision not in known_revisions:
            raise BackupFailed(
                f"this backup has schema revision {manifest.schema_revision}, which this Foyer "
                "does not know: it was made by a newer Foyer. Upgrade Foyer, then restore."
            )
        if not force:
            _refuse_unless_empty(engine, uploads)
        uploads.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".foyer-restore-", dir=uploads.parent))
        try:
            member = DATABASE_MEMBERS[backend]
            try:
                archive.extractall(staging, filter="data")  # refuses absolute paths and ../
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise BackupFailed(f"{archive_path} is damaged: {exc}") from exc
            dump = staging / member
            if not dump.is_file():
                raise BackupFailed(f"{archive_path} holds no {member}: it is damaged.")
            if backend == "sqlite":
                _restore_sqlite(dump, _sqlite_path(engine))
            else:
                _restore_postgresql(engine, dump, clean=force)
            _swap_in_uploads(staging / UPLOADS, uploads, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    engine.dispose()  # pooled connections may still see the replaced database
    tables = table_counts(engine)
    differences: dict[str, tuple[int, int | None]] = {
        name: (count, tables.get(name))
        for name, count in manifest.tables.items()
        if tables.get(name) != count
    }
    return Restored(
        manifest=manifest,
        tables=tables,
        upload_files=_folder_size(uploads)[0],
        key_matches=hmac.compare_digest(manifest.key_fingerprint, key_fingerprint(secret_key)),
        differences=differences,
    )


def _refuse_unless_empty(engine: Engine, uploads: Path) -> None:
    tables = table_counts(engine)
    if tables:
        raise BackupFailed(
            f"the database {engine.url.render_as_string(hide_password=True)} is not empty "
            f"({len(tables)} tables, {sum(tables.values())} rows). Restore into an empty database, "
            "or add --force to replace everything in it."
        )
    files, _size = _folder_size(uploads)
    if files:
        raise BackupFailed(
            f"the uploads folder {uploads} is not empty ({files} files). Restore into an empty "
            "installation, or add --force to replace it."
        )


def _restore_sqlite(dump: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(dump)
    destination = sqlite3.connect(target, timeout=30)
    try:
        source.execute("PRAGMA quick_check").fetchall()
        # The backup API writes the target in one transaction, under SQLite's own locking, so a
        # live WAL file beside the target is handled correctly (never overwritten by hand).
        source.backup(destination)
        destination.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        raise BackupFailed(f"cannot restore into {target}: {exc}") from exc
    finally:
        destination.close()
        source.close()


def _restore_postgresql(engine: Engine, dump: Path, *, clean: bool) -> None:
    command = [_tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner"]
    command += ["--no-privileges"]
    if clean:
        command += ["--clean", "--if-exists"]
    _run([*command, _dbname(engine.url), str(dump)], engine.url)


def _swap_in_uploads(restored: Path, uploads: Path, staging: Path) -> None:
    if not restored.is_dir():
        restored.mkdir()
    if uploads.exists():
        uploads.rename(staging / "uploads-replaced")  # removed with the staging folder
    restored.rename(uploads)


# ---------------------------------------------------------------------------------------------
# Reading any database


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table of the database (empty dict: no tables at all)."""
    if engine.dialect.name == "sqlite":
        path = _sqlite_path(engine)
        if not path.exists():
            return {}
        connection = sqlite3.connect(path, timeout=30)
        try:
            return _sqlite_counts(connection)
        finally:
            connection.close()
    try:
        with engine.connect() as conn:
            return _counts(conn)
    except SQLAlchemyError as exc:
        raise BackupFailed(f"cannot read the database: {_first_line(exc)}") from exc


def _counts(conn: Connection) -> dict[str, int]:
    quote = conn.dialect.identifier_preparer.quote
    return {
        name: conn.execute(text(f"SELECT count(*) FROM {quote(name)}")).scalar_one()  # noqa: S608 - names from the catalog  # nosec B608
        for name in sorted(inspect(conn).get_table_names())
    }


def _revision(conn: Connection) -> str:
    if "alembic_version" not in inspect(conn).get_table_names():
        raise BackupFailed("the database has no Foyer schema (run `flask upgrade-db` first).")
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def _sqlite_counts(connection: sqlite3.Connection) -> dict[str, int]:
    names = [
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    return {
        name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # noqa: S608 - names from the catalog  # nosec B608
        for name in names
    }


def _sqlite_revision(connection: sqlite3.Connection) -> str:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        row = None
    if row is None:
        raise BackupFailed("the database has no Foyer schema (run `flask upgrade-db` first).")
    return row[0]


def _backend(engine: Engine) -> str:
    name = engine.dialect.name
    if name not in DATABASE_MEMBERS:
        raise BackupFailed(f"backups support SQLite and PostgreSQL, not {name}.")
    return name


def _label(backend: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[backend]


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupFailed("an in-memory SQLite database cannot be backed up or restored.")
    return Path(database)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupFailed(
            f"{name} is not installed. Install PostgreSQL's client tools of the server's major "
            "version or newer (Debian: apt-get install postgresql-client)."
        )
    return found


def _run(command: list[str], url: URL) -> None:
    """Run pg_dump or pg_restore against `url`; the password travels in the environment, never on
    the command line where other users' `ps` could see it."""
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
    try:
        finished = subprocess.run(  # noqa: S603 - a fixed tool, arguments we built  # nosec B603
            command,
            env=environment,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BackupFailed(f"{Path(command[0]).name} took longer than {TOOL_TIMEOUT} s.") from exc
    if finished.returncode != 0:
        detail = (
            " ".join(finished.stderr.strip().splitlines()[-3:]) or f"exit {finished.returncode}"
        )
        raise BackupFailed(f"{Path(command[0]).name} failed: {detail}")


def _dbname(url: URL) -> str:
    """The SQLAlchemy URL as libpq understands it: no driver name, no password."""
    plain = url.set(drivername="postgresql", password=None)
    return f"--dbname={plain.render_as_string(hide_password=False)}"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
