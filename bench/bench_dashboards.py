"""Dashboards at scale (PostgreSQL): the Desks and Rooms dashboards over 1,000,000 bookings, and the
first byte of a year's bookings as CSV.

One run, one fresh database: the site, 5,000 desks, 500 rooms and 20,000 people of
bench/bench_bookings.py, and its history of past bookings bulk-loaded with COPY (FOYER_BENCH_BOOKINGS,
default 1,000,000). Then, in-process through the WSGI test client, signed in as an admin:
- each dashboard for last month and for the last 90 days: the first (cold) request, which fills
  the daily roll-ups, and the median of warm requests (target: < 500 ms median);
- a baseline route serving the same bytes with no work, measured in the same run;
- /dashboards/bookings.csv for the last 365 days: time to the first byte and to the first
  booking row (target: < 1 s), and the whole download."""

from __future__ import annotations

import itertools
import os
import random
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

from flask import Response

from bench.bench_bookings import (
    BOOKINGS,
    PASSWORD,
    TOKEN,
    ZONE,
    day_bookings,
    history,
    load_bookings,
    on_scratch_postgres,
    seed_places_and_people,
    weekdays,
)
from portal import create_app
from portal.db import make_engine
from portal.schema import upgrade

REPEAT = int(os.environ.get("FOYER_BENCH_DASHBOARD_REPEAT", "15"))
TARGET_MS = 500.0
TARGET_FIRST_BYTE_MS = 1000.0


def main() -> None:
    on_scratch_postgres("bench_dashboards", run)


def run(url: str, tmp: Path) -> None:
    from sqlalchemy import text

    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    layout = seed_places_and_people(engine, url)
    with engine.begin() as conn:  # the first bench person coordinates the bench site
        user_id = conn.execute(text("SELECT min(id) FROM users")).scalar()
        conn.execute(
            text(
                "INSERT INTO role_grants (user_id, role, site_id, source, created_at) "
                "VALUES (:u, 'admin', NULL, 'manual', now())"
            ),
            {"u": user_id},
        )
        email = conn.execute(text("SELECT email FROM users WHERE id = :u"), {"u": user_id}).scalar()
    engine.dispose()
    today = datetime.now(ZONE).date()
    upcoming = weekdays(today + timedelta(days=1), today + timedelta(days=3))[0]
    rows = itertools.chain(
        day_bookings(layout, upcoming, False, random.Random(3)),
        itertools.islice(history(layout, today), BOOKINGS),
    )
    count, seconds = load_bookings(url, rows)
    print(
        f"seeded places and people, loaded {count:,} bookings in {time.perf_counter() - started:.1f} s"
    )

    app = create_app(
        {
            "database_url": url,
            "instance_path": tmp / "instance",
            "secret_key": "bench-dashboards",
            "jobs_in_process": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    bodies: dict[str, bytes] = {}

    @app.get("/__baseline/<name>")
    def baseline(name: str) -> Response:
        return Response(bodies[name], mimetype="text/html")

    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    response = client.post(
        "/sign-in",
        data={"csrf_token": TOKEN.search(page).group(1), "email": email, "password": PASSWORD},
    )
    assert response.status_code == 303, response.status_code

    def timed(url: str) -> tuple[float, bytes]:
        start = time.perf_counter()
        response = client.get(url)
        body = response.get_data()
        assert response.status_code == 200, (url, response.status_code)
        return (time.perf_counter() - start) * 1000, body

    print(
        f"\n{'page':<34}{'cold ms':>9}{'median ms':>11}{'p95 ms':>9}{'baseline ms':>13}{'target':>9}"
    )
    missed = []
    site = f"site={layout.site_id}"
    for slug in ("desks", "rooms"):
        for label, query in (
            ("last month", "range=last-month"),
            ("last 90 days", "range=last-90-days"),
        ):
            url = f"/dashboards/{slug}?{site}&{query}"
            cold, body = timed(url)
            walls = sorted(timed(url)[0] for _ in range(REPEAT))
            bodies[slug] = body
            base = statistics.median(timed(f"/__baseline/{slug}")[0] for _ in range(REPEAT))
            median = statistics.median(walls)
            p95 = walls[max(0, int(len(walls) * 0.95) - 1)]
            ok = median < TARGET_MS
            missed += [] if ok else [f"{slug} {label}"]
            print(
                f"{slug + ' · ' + label:<34}{cold:>9.0f}{median:>11.1f}{p95:>9.1f}{base:>13.2f}"
                f"{'met' if ok else 'MISSED':>9}"
            )

    first = today - timedelta(days=365)
    url = f"/dashboards/bookings.csv?{site}&day_from={first}&day_to={today - timedelta(days=1)}"
    start = time.perf_counter()
    response = client.get(url, buffered=False)
    chunks = iter(response.response)
    first_byte = (time.perf_counter() - start) * 1000
    received = b""
    while received.count(b"\n") < 2:
        received += next(chunks)
    first_row = (time.perf_counter() - start) * 1000
    size = len(received) + sum(len(c) for c in chunks)
    whole = time.perf_counter() - start
    response.close()
    ok = first_row < TARGET_FIRST_BYTE_MS
    missed += [] if ok else ["bookings CSV first row"]
    print(
        f"\nbookings CSV, 365 days: first byte {first_byte:.0f} ms, first booking row "
        f"{first_row:.0f} ms ({'met' if ok else 'MISSED'} < 1 s); whole file {size / 1e6:.1f} MB "
        f"in {whole:.1f} s"
    )
    print("all targets met" if not missed else f"MISSED: {', '.join(missed)}")
    app.extensions["foyer.engine"].dispose()


if __name__ == "__main__":
    main()
