"""Engine, session and declarative base: the one place that knows how Foyer talks to its database.

SQLite needs care to be safe under concurrent writers: pysqlite emits no BEGIN before a SELECT, so a
check-then-insert inside `Session.begin()` still races. We take transactions into our own hands
(isolation_level=None plus an explicit BEGIN) and writing sessions begin with BEGIN IMMEDIATE, which
takes SQLite's write lock up front. See shared RELIABILITY notes and SQLAlchemy's pysqlite recipe.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


INT_MAX = 2**31 - 1  # ids and versions are INTEGER columns: PostgreSQL refuses a larger parameter


def db_int(raw: object) -> int:
    """A number from a query string or form that an INTEGER column can hold, else ValueError:
    `request.args.get("before", type=db_int)` then gives None, not a database error (a 500 on
    PostgreSQL for 99999999999). ASCII digits only: "²".isdigit() is true, yet int() fails."""
    text = str(raw).strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 10:
        raise ValueError(f"not a whole number an INTEGER column holds: {text[:20]!r}")
    value = int(text)
    if not -INT_MAX - 1 <= value <= INT_MAX:
        raise ValueError(f"out of INTEGER range: {value}")
    return value


def db_id(raw: object) -> int | None:
    """A posted or queried id: a positive number an INTEGER column can hold, else None."""
    try:
        value = db_int(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    # pre-ping: connections a database restart cut are replaced, not handed to a request;
    # connect_timeout: an unreachable server fails a request in seconds instead of hanging it
    # past gunicorn's worker timeout (bench/faults.py)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def session_factories(engine: Engine) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """(reading, writing) session factories. Writers begin IMMEDIATE on SQLite; on PostgreSQL the
    two are the same, and row or advisory locks serialise where needed."""
    reader = sessionmaker(bind=engine, expire_on_commit=False)
    if engine.dialect.name == "sqlite":
        writer = sessionmaker(
            bind=engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )
    else:
        writer = reader
    return reader, writer
