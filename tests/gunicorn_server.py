"""Foyer under gunicorn, as production runs it, for tests that need several real worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_gunicorn(instance: Path, workers: int = 2, **settings: str) -> Iterator[str]:
    """Serve the app with `workers` sync workers on a free port; yields the base URL. `settings`
    are FOYER_* values (e.g. database_url="..."); the log is instance/gunicorn.log."""
    port = free_port()
    env = dict(
        os.environ,
        FOYER_INSTANCE_PATH=str(instance),
        FOYER_BIND=f"127.0.0.1:{port}",
        FOYER_WORKERS=str(workers),
    )
    env.pop("FOYER_REDIS_URL", None)
    env.update({f"FOYER_{key.upper()}": value for key, value in settings.items()})
    instance.mkdir(parents=True, exist_ok=True)
    log_path = instance / "gunicorn.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"gunicorn exited early:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(base + "/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer in 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
