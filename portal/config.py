"""Settings read from FOYER_* environment variables, with defaults that run the embedded demo."""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    """Every setting the app reads. The README lists them with the same defaults."""

    instance_path: Path
    database_url: str = ""
    secret_key: str = ""
    redis_url: str = ""
    base_url: str = "http://127.0.0.1:5000"
    password_login: bool = True
    session_idle_minutes: int = 12 * 60
    session_max_hours: int = 7 * 24
    login_rate_limit: str = "10 per minute;50 per hour"
    proxy_count: int = 0
    oidc_discovery_url: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid email profile"
    oidc_provider_name: str = "single sign-on"
    oidc_groups_claim: str = "groups"
    # "group=role" pairs separated by ";" where role is admin or coordinator@<site-slug>
    oidc_group_roles: str = ""
    # Outgoing mail. No server: messages are kept in the admin's outbox instead of sent.
    mail_server: str = ""
    mail_port: int = 587
    mail_username: str = ""
    mail_password: str = ""
    mail_use_tls: bool = True  # STARTTLS
    mail_from: str = "Foyer <foyer@localhost>"
    mail_timeout: int = 10  # seconds, for each SMTP network operation
    mail_max_attempts: int = 8  # then FAILED; retries back off 1, 2, 4 ... 60 minutes
    # Background jobs: with redis_url they run in `flask run-worker` processes; without it a
    # consumer thread in each web process runs them (queue in instance/jobs.sqlite3).
    jobs_in_process: bool = True
    jobs_workers: int = 2  # worker threads per consumer
    log_level: str = "INFO"
    # Catalog prices and purchase orders are in one currency (amounts are stored in cents).
    currency_symbol: str = "€"
    # /metrics (Prometheus) answers only with `Authorization: Bearer <this>`; unset: 404.
    metrics_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_discovery_url and self.oidc_client_id)

    @classmethod
    def from_env(
        cls,
        environ: os._Environ[str] | dict[str, str] | None = None,
        instance_path: Path | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        instance = Path(env.get("FOYER_INSTANCE_PATH") or instance_path or Path.cwd() / "instance")
        settings = cls(instance_path=instance)
        for f in fields(cls):
            key = f"FOYER_{f.name.upper()}"
            if f.name in {"instance_path", "extra"} or key not in env:
                continue
            raw = env[key]
            current = getattr(settings, f.name)
            if isinstance(current, bool):
                value: Any = _bool(raw)
            elif isinstance(current, int):
                value = int(raw)
            else:
                value = raw
            setattr(settings, f.name, value)
        return settings

    def apply_overrides(self, overrides: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in overrides.items():
            if key in names:
                setattr(self, key, value)
            else:
                self.extra[key] = value

    def finish_defaults(self) -> None:
        """Fill what depends on the instance folder: the SQLite file and a generated secret key."""
        self.instance_path.mkdir(parents=True, exist_ok=True)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.instance_path / 'foyer.sqlite3'}"
        if not self.secret_key:
            self.secret_key = _instance_secret(self.instance_path / "secret_key")


def _instance_secret(path: Path) -> str:
    """A per-installation secret, created once with owner-only permissions. Several workers may
    start at once: the file appears whole (written aside, then linked) and the first one wins."""
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process was first; use its key
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
