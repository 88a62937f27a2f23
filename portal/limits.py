"""Rate limits. Counts live in Redis when FOYER_REDIS_URL is set, so every process and host shares
them; in memory otherwise (the embedded single-process default)."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def configure_rate_limits(app: Flask) -> None:
    settings = app.extensions["foyer.settings"]
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url or "memory://"
    app.config["RATELIMIT_KEY_PREFIX"] = "foyer"
    app.config["RATELIMIT_ENABLED"] = settings.extra.get("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
