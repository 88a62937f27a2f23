"""Timing helpers shared by the benchmarks: wall and CPU time per call, and the ratio to a baseline."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.scratch_database import admin_engine, scratch_postgres_database

# A server where the benchmarks may CREATE DATABASE; each run makes its own and drops it after.
ADMIN_URL = (
    os.environ.get("FOYER_BENCH_POSTGRES_URL")
    or os.environ.get("FOYER_TEST_POSTGRES_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True)
class Timing:
    label: str
    median_ms: float
    p95_ms: float
    cpu_ms: float

    def ratio_to(self, baseline: Timing) -> float:
        return self.median_ms / baseline.median_ms if baseline.median_ms else float("inf")


def measure(label: str, call: Callable[[], object], repeat: int = 200, warmup: int = 20) -> Timing:
    for _ in range(warmup):
        call()
    walls = []
    cpu_start = time.process_time()
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        walls.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / repeat
    walls.sort()
    return Timing(label, statistics.median(walls), walls[int(len(walls) * 0.95) - 1], cpu_ms)


def report(baseline: Timing, timings: list[Timing]) -> None:
    print(f"{'page':<34}{'median ms':>10}{'p95 ms':>9}{'cpu ms':>9}{'x baseline':>12}")
    for timing in [baseline, *timings]:
        print(
            f"{timing.label:<34}{timing.median_ms:>10.2f}{timing.p95_ms:>9.2f}"
            f"{timing.cpu_ms:>9.2f}{timing.ratio_to(baseline):>12.2f}"
        )


def on_scratch_postgres(label: str, run: Callable[[str, Path], None]) -> None:
    """Run `run(database_url, scratch_dir)` on a fresh PostgreSQL database, dropped afterwards.
    Without a reachable server, print one loud line and measure nothing."""
    admin_url = driver_url(ADMIN_URL)
    admin = admin_engine(admin_url)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        admin.dispose()
        print(
            f"!!! SKIPPED {label}: PostgreSQL is unreachable at {safe_url(admin_url)} "
            f"({type(exc).__name__}); set FOYER_BENCH_POSTGRES_URL to a server where this user "
            "may CREATE DATABASE. Nothing was measured. !!!"
        )
        return
    try:
        with (
            scratch_postgres_database(admin, f"foyer_{label}") as url,
            tempfile.TemporaryDirectory() as tmp,
        ):
            run(url, Path(tmp))
        print(f"(dropped database {make_url(url).database})")
    finally:
        admin.dispose()


def driver_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def libpq_url(url: str) -> str:
    """The URL psycopg itself takes (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
