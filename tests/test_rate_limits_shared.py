"""At scale, sign-in limits hold across processes: counts live in Redis, not in each worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import redis
import requests

from tests.conftest import missing_service
from tests.gunicorn_server import ROOT, running_gunicorn
from tests.redis_databases import redis_test_url

REDIS_URL = redis_test_url("rate_limits")


@pytest.fixture
def gunicorn_with_redis(tmp_path):
    try:
        client = redis.Redis.from_url(REDIS_URL)
        client.ping()
        client.flushdb()
    except redis.RedisError as exc:
        missing_service("Redis", f"cannot reach {REDIS_URL}: {exc}")
    instance = tmp_path / "instance"
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "upgrade-db"]
    env = dict(os.environ, FOYER_INSTANCE_PATH=str(instance))
    subprocess.run(flask, cwd=ROOT, env=env, check=True, capture_output=True)
    try:
        with running_gunicorn(instance, redis_url=REDIS_URL) as base:
            yield base
    finally:
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
