"""A real Radicale 3.9 CalDAV server for tests: its WSGI application served by a threaded server on
loopback, with a temporary storage folder and htpasswd auth, counting every request it serves (so a
test can prove an incremental sync costs one REPORT)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import caldav
from radicale import Application, config
from werkzeug.serving import make_server

USER = "room-sync"
PASSWORD = "radicale-test-password"  # noqa: S105 - a throwaway account of a throwaway server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Radicale:
    base_url: str
    user: str = USER
    password: str = PASSWORD
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, _ in self.requests if method is None or m == method)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    def calendar_url(self, name: str) -> str:
        return f"{self.base_url}/{self.user}/{name}/"

    def client(self) -> caldav.DAVClient:
        return caldav.DAVClient(
            url=self.base_url, username=self.user, password=self.password, auth_type="basic"
        )

    def make_calendar(self, name: str) -> caldav.Calendar:
        """A new, empty calendar (MKCALENDAR), as an admin would create one for a room."""
        client = self.client()
        response = client.mkcalendar(self.calendar_url(name))
        assert response.status == 201, response.status
        return caldav.Calendar(client=client, url=self.calendar_url(name))

    def calendar(self, name: str) -> caldav.Calendar:
        return caldav.Calendar(client=self.client(), url=self.calendar_url(name))


@contextmanager
def running_radicale(storage: Path) -> Iterator[Radicale]:
    storage.mkdir(parents=True, exist_ok=True)
    htpasswd = storage.parent / f"{storage.name}.htpasswd"
    htpasswd.write_text(f"{USER}:{PASSWORD}\n")
    configuration = config.load()
    configuration.update(
        {
            "auth": {
                "type": "htpasswd",
                "htpasswd_filename": str(htpasswd),
                "htpasswd_encryption": "plain",
                "delay": "0",  # otherwise every failed login waits a second
            },
            "storage": {"filesystem_folder": str(storage / "collections")},
            "rights": {"type": "owner_only"},
            "logging": {"level": "warning", "mask_passwords": "True"},
        },
        "tests",
        privileged=True,
    )
    logging.getLogger("radicale").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    application = Application(configuration)
    port = free_port()
    server = Radicale(f"http://127.0.0.1:{port}")

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        with server._lock:
            server.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return application(environ, start_response)

    httpd = make_server("127.0.0.1", port, counting, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True, name="radicale")
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        thread.join(timeout=5)
