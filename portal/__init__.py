"""Foyer: a self-hosted workplace portal. `create_app` assembles it from the configure_* steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from portal.config import Settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    configure_settings(app, config)

    from integrations.oidc import configure_oidc
    from kiosk import configure_kiosk
    from portal.blueprints import register_blueprints
    from portal.cli import register_commands
    from portal.jobs import configure_jobs, register_job_commands
    from portal.limits import configure_rate_limits
    from portal.login import configure_login
    from portal.observability import configure_logging
    from portal.request_scope import configure_database
    from portal.security import configure_security
    from portal.ui import configure_templates
    from portal.web_errors import register_error_handlers

    configure_logging(app)
    configure_database(app)
    configure_jobs(app)
    configure_security(app)
    configure_rate_limits(app)
    configure_login(app)
    configure_oidc(app)
    configure_templates(app)
    register_blueprints(app)
    configure_kiosk(app)
    register_error_handlers(app)
    register_commands(app)
    register_job_commands(app)
    return app


def configure_settings(app: Flask, overrides: dict[str, Any] | None) -> Settings:
    settings = Settings.from_env(instance_path=Path(app.root_path).parent / "instance")
    settings.apply_overrides(overrides or {})
    settings.finish_defaults()
    if settings.oidc_group_roles:
        from portal.services.sso import parse_group_roles

        parse_group_roles(settings.oidc_group_roles)  # a bad mapping stops the start, loudly
    app.extensions["foyer.settings"] = settings
    app.config["TESTING"] = bool(settings.extra.get("TESTING", False))
    return settings
