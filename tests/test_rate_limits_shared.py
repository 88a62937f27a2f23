"""At scale, sign-in limits hold across processes: counts live in Redis, not in each worker."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import missing_service

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("FOYER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_with_redis(tmp_path):
    try:
        client = redis.Redis.from_url(REDIS_URL)
        client.ping()
        client.flushdb()
    except redis.RedisError as exc:
        missing_service("Redis", f"cannot reach {REDIS_URL}: {exc}")
    port = free_port()
    env = dict(
        os.environ,
        FOYER_INSTANCE_PATH=str(tmp_path),
        FOYER_REDIS_URL=REDIS_URL,
        FOYER_BIND=f"127.0.0.1:{port}",
        FOYER_WORKERS="2",
    )
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "upgrade-db"], cwd=ROOT, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=5).ok:
                break
        except requests.RequestException:
            time.sleep(0.2)
    try:
        yield base
    finally:
        server.terminate()
        server.wait(10)
        client.flushdb()


def test_sign_in_limit_is_shared_by_all_worker_processes(gunicorn_with_redis):
    statuses = []
    for attempt in range(12):
        browser = requests.Session()  # a new connection each time, spread over both workers
        page = browser.get(gunicorn_with_redis + "/sign-in", timeout=30).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        response = browser.post(
            gunicorn_with_redis + "/sign-in",
            data={
                "csrf_token": token,
                "email": "nobody@example.com",
                "password": f"guess-{attempt}xx",
            },
            timeout=30,
        )
        statuses.append(response.status_code)
    assert statuses == [422] * 10 + [429] * 2
