"""A throwaway PostgreSQL database, for the test suite, the benchmarks and the security scan."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

from portal.db import make_engine


def admin_engine(admin_url: str) -> Engine:
    """An autocommit engine on the server (CREATE and DROP DATABASE cannot run in a transaction)."""
    return make_engine(admin_url, isolation_level="AUTOCOMMIT")


@contextmanager
def scratch_postgres_database(admin: Engine, prefix: str) -> Iterator[str]:
    """A new, empty database on `admin`'s server (its user may CREATE DATABASE); its URL. Dropped
    afterwards, even while something is still connected to it."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
