"""The schema comes only from migrations, and the migrations build exactly what the models say."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError

from portal.db import Base
from portal.schema import alembic_config
from tests import factories


def test_migrations_have_a_single_head():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_upgraded_database_matches_the_models_exactly(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set(Base.metadata.tables)


def test_audit_trail_refuses_edits_and_deletes(db):
    factories.user(db, email="someone@example.com")  # writes a user.created audit event
    db.flush()
    for statement in ("UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"):
        nested = db.begin_nested()
        with pytest.raises(DatabaseError, match="append-only"):
            db.execute(text(statement))
        nested.rollback()
    assert db.execute(text("SELECT count(*) FROM audit_events")).scalar() >= 1
