"""Which Redis database each Redis-using test module may empty. Tests flush their database, so
no two modules (and, under pytest-xdist, no two workers) may share one: FOYER_TEST_REDIS_URL names
the highest number, and each (worker, purpose) pair counts down from it."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

PURPOSES = ("rate_limits", "mail_and_jobs", "job_failures")


def redis_test_url(purpose: str) -> str:
    base = urlsplit(os.environ.get("FOYER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    path = base.path.strip("/")
    top = int(path) if path.isdigit() else 15
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    number = top - index * len(PURPOSES) - PURPOSES.index(purpose)
    if number < 0:
        raise RuntimeError(f"not enough Redis databases below {top} for worker {worker}")
    return urlunsplit((base.scheme, base.netloc, f"/{number}", "", ""))
