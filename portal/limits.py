"""Rate limits. Counts live in Redis when FOYER_REDIS_URL is set, so every process and host shares
them; in memory otherwise (the embedded single-process default).

While Redis is unreachable, each process counts in its own memory instead (limits still apply,
per process, so N processes allow up to N times the limit) and goes back to Redis once it
answers again: a Redis outage must not turn sign-in, feeds and the kiosk into 500s
(bench/faults.py, scenario c)."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def configure_rate_limits(app: Flask) -> None:
    settings = app.extensions["foyer.settings"]
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url or "memory://"
    app.config["RATELIMIT_KEY_PREFIX"] = "foyer"
    app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True
    if settings.redis_url:
        # A Redis that hangs rather than refuses must not hold a request for long.
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 2, "socket_timeout": 2}
    app.config["RATELIMIT_ENABLED"] = settings.extra.get("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
