"""One database session per request: reading requests read, writing requests write.

Views call `commit()` once when their work is done; anything uncommitted is rolled back at teardown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session, sessionmaker

from portal.db import make_engine, session_factories

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def configure_database(app: Flask) -> None:
    settings = app.extensions["foyer.settings"]
    factory = settings.extra.get("SESSION_FACTORY")  # tests bind one to a rolled-back connection
    if factory is not None:
        app.extensions["foyer.sessions"] = (factory, factory)
        app.extensions["foyer.engine"] = None
    else:
        engine = make_engine(settings.database_url)
        app.extensions["foyer.engine"] = engine
        app.extensions["foyer.sessions"] = session_factories(engine)
    app.teardown_appcontext(_close_session)


def db() -> Session:
    """The current request's session (created on first use)."""
    session: Session | None = g.get("_db")
    if session is None:
        reader, writer = current_app.extensions["foyer.sessions"]
        writing = request.method not in SAFE_METHODS if _in_request() else True
        factory: sessionmaker[Session] = writer if writing else reader
        session = factory()
        g._db = session
    return session


def commit() -> None:
    db().commit()
    for callback in g.pop("_after_commit", []):
        callback()


def after_commit(callback: Callable[[], Any]) -> None:
    """Run a side effect (mail, a job) only once this request's transaction has committed."""
    g.setdefault("_after_commit", []).append(callback)


def _in_request() -> bool:
    from flask import has_request_context

    return has_request_context()


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("_db", None)
    if session is not None:
        session.rollback()
        session.close()
