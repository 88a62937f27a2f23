"""Foyer under gunicorn, as production runs it, for tests that need several real worker processes."""

from __future__ import annotations

import os
import signal
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
            # No control socket: by default every master on a host would bind the same one
            # (~/.gunicorn/gunicorn.ctl), and the first to stop removes it for the others.
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:portal.gunicorn_conf",
                "--no-control-socket",
                "wsgi:app",
            ],
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


@contextmanager
def running_worker(instance: Path, threads: int = 2, **settings: str) -> Iterator[subprocess.Popen]:
    """Run `flask --app wsgi run-worker --workers <threads>` (the background-job process) until
    the block ends; yields its Popen (a fault test may kill it; leaving the block then is fine).
    `settings` are FOYER_* values as for running_gunicorn: pass redis_url (else the queue is a
    SQLite file in `instance`), database_url, secret_key and the mail_* settings. Returns once
    the worker has announced itself; jobs queued before that wait in the queue. The log is
    instance/worker.log, appended to, so a restarted worker's lines follow the first one's.
    Stops with SIGTERM (running jobs finish), SIGKILL after 30 s."""
    env = dict(os.environ, FOYER_INSTANCE_PATH=str(instance))
    env.pop("FOYER_REDIS_URL", None)
    env.update({f"FOYER_{key.upper()}": value for key, value in settings.items()})
    instance.mkdir(parents=True, exist_ok=True)
    log_path = instance / "worker.log"
    start = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flask",
                "--app",
                "wsgi",
                "run-worker",
                "--workers",
                str(threads),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def log_tail() -> str:
        return log_path.read_bytes()[start:].decode(errors="replace")[-3000:]

    try:
        deadline = time.monotonic() + 60
        while "Foyer worker:" not in log_tail():
            if worker.poll() is not None:
                pytest.fail(f"the worker exited early:\n{log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the worker did not start in 60 s:\n{log_tail()}")
            time.sleep(0.2)
        yield worker
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)
