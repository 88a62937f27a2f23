"""Dashboards at scale (PostgreSQL): every dashboard in the registry over 1,000,000 bookings,
100,000 tickets and requests and 100,000 visits, and the first byte of a year's bookings as CSV.

One run, one fresh database: the site, 5,000 desks, 500 rooms and 20,000 people of
bench/bench_bookings.py, and its history of past bookings bulk-loaded with COPY (FOYER_BENCH_BOOKINGS,
default 1,000,000); the tickets of bench/bench_inbox.py on the same site over 400 days
(FOYER_BENCH_TICKETS, default 100,000), with request lines carrying prices (handed-over lines of
finished requests are fulfilled spend) and stock levels; and FOYER_BENCH_VISITS (default 100,000)
visits over the last 400 days (invited and walk-in, checked out, no-shows, cancelled, deny-list
stops), all loaded with COPY. Then, in-process through the WSGI test client, signed in as an admin:
- every dashboard of DASHBOARDS for last month and for the last 90 days: the first (cold) request,
  which fills the daily roll-ups where the dashboard has them, and the median of warm requests
  (target: < 500 ms median);
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

import psycopg
from flask import Response

from bench import bench_inbox
from bench.bench_bookings import (
    BOOKINGS,
    PASSWORD,
    TOKEN,
    USERS,
    ZONE,
    copy_rows,
    day_bookings,
    history,
    load_bookings,
    on_scratch_postgres,
    seed_places_and_people,
    weekdays,
)
from bench.bench_inbox import InboxBench
from bench.harness import libpq_url
from portal import create_app
from portal.db import make_engine
from portal.models import ItemCategory, RequestLine, Visit
from portal.schema import upgrade
from portal.services.dashboards import DASHBOARDS

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
    started = time.perf_counter()
    tickets, lines = load_tickets_and_lines(url, tmp, layout)
    visits = load_visits(url, layout, today)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for table in ("tickets", "request_lines", "visits", "catalog_items", "stock_levels"):
            conn.execute(f"VACUUM ANALYZE {table}")
    print(
        f"loaded {tickets:,} tickets and requests ({lines:,} request lines) and {visits:,} "
        f"visits in {time.perf_counter() - started:.1f} s"
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
    for slug in DASHBOARDS:  # every dashboard, whoever added it
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


# -- tickets, request lines and visits ---------------------------------------------------------
VISITS = int(os.environ.get("FOYER_BENCH_VISITS", "100000"))
ITEMS = 40


def load_tickets_and_lines(url: str, tmp: Path, layout) -> tuple[int, int]:
    """bench_inbox's tickets on the bench site, then 1-3 priced lines per request: fulfilled when
    the request was finished (closed), declined or cancelled with it, pending or approved while
    it is open; plus a catalog, a vendor per category and stock levels with reorder points."""
    from sqlalchemy import text

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vendors (name, contact_name, email, phone, categories, active, "
                "created_at) SELECT 'Vendor ' || n, '', '', '', '[\"plumbing\"]', true, now() "
                "FROM generate_series(1, 6) AS n"
            )
        )
        categories = [c.value for c in ItemCategory]
        for n in range(ITEMS):
            conn.execute(
                text(
                    "INSERT INTO catalog_items (name, category, description, unit, price_cents, "
                    "lead_time_days, approval, approval_above_cents, tracked, max_per_request, "
                    "active, created_at) VALUES (:name, :category, '', 'piece', :price, 3, "
                    "'never', 0, false, 20, true, now())"
                ),
                {
                    "name": f"Bench item {n:02d}",
                    "category": categories[n % len(categories)],
                    "price": 250 + (n * 733) % 40_000,
                },
            )
        item_prices = dict(conn.execute(text("SELECT id, price_cents FROM catalog_items")).all())
        for item_id in item_prices:
            conn.execute(
                text(
                    "INSERT INTO stock_levels (item_id, site_id, on_hand, reserved, "
                    "reorder_point, updated_at) VALUES (:i, :s, :h, 0, 10, now())"
                ),
                {"i": item_id, "s": layout.site_id, "h": item_id * 7 % 40},
            )
        vendors = list(conn.execute(text("SELECT id FROM vendors")).scalars())
        coordinator = conn.execute(text("SELECT min(id) FROM users")).scalar()
    engine.dispose()

    # bench_inbox spreads its tickets over four sites; here they all belong to the bench site.
    inbox = InboxBench(url, tmp)
    inbox.site_ids = [layout.site_id]
    inbox.people = list(range(1, USERS + 1, 7))
    inbox.coordinators = {layout.site_id: [coordinator]}
    inbox.vendors = vendors
    inbox.floors = {layout.site_id: layout.floor_ids}
    inbox.desks = {layout.site_id: [d for floor in layout.desk_ids for d in floor]}
    shares, bench_inbox.SITE_SHARE = bench_inbox.SITE_SHARE, (1.0,)
    try:
        tickets = inbox.load_tickets()
    finally:
        bench_inbox.SITE_SHARE = shares

    rng = random.Random(17)
    items = list(item_prices.items())

    def line_rows():
        with psycopg.connect(libpq_url(url)) as conn:
            for ticket_id, status, closed_at in conn.execute(
                "SELECT id, status, closed_at FROM tickets WHERE kind = 'request' ORDER BY id"
            ):
                for item_id, price in rng.sample(items, rng.randint(1, 3)):
                    if status == "closed":
                        state, fulfilled = "fulfilled", closed_at
                    elif status in ("declined", "cancelled"):
                        state, fulfilled = status, None
                    else:
                        state, fulfilled = rng.choice(("pending", "approved")), None
                    yield (ticket_id, item_id, rng.randint(1, 5), price, state, fulfilled)

    with psycopg.connect(libpq_url(url)) as conn:
        lines = copy_rows(
            conn,
            RequestLine.__table__,
            ["ticket_id", "item_id", "quantity", "unit_price_cents", "status", "fulfilled_at"],
            line_rows(),
        )
        conn.commit()
    return tickets, lines


def visit_rows(layout, today, rng: random.Random):
    """~250 visits per weekday over the last 400 days, oldest first."""
    from portal.timezones import to_utc

    days = [today - timedelta(days=n) for n in range(400, 0, -1)]
    days = [d for d in days if d.weekday() < 5]
    per_day = max(1, VISITS // len(days))
    made = 0
    for day in days:
        for _ in range(per_day if day != days[-1] else VISITS - made):
            start = to_utc(
                datetime.combine(day, datetime.min.time()) + timedelta(hours=rng.uniform(8, 16)),
                ZONE,
            )
            kind = "invited" if rng.random() < 0.7 else "walk_in"
            r = rng.random()
            status = (
                "checked_out"
                if r < 0.86
                else "expected"
                if r < 0.93 and kind == "invited"
                else "cancelled"
                if r < 0.995 and kind == "invited"
                else "denied"
                if r >= 0.995
                else "checked_out"
            )
            arrived = status == "checked_out"
            checked_in = start + timedelta(minutes=rng.uniform(-15, 20)) if arrived else None
            checked_out = (
                checked_in + timedelta(minutes=rng.uniform(20, 420)) if checked_in else None
            )
            name = f"Visitor {made:06d}"
            yield (
                layout.site_id,
                rng.randint(1, USERS),
                kind,
                status,
                name,
                f"visitor{made}@example.com",
                name.lower(),
                f"visitor{made}@example.com",
                start,
                start + timedelta(hours=2),
                day,
                checked_in,
                checked_out,
                "kiosk" if arrived else None,
                start - timedelta(days=2),
                checked_out or start,
            )
            made += 1


def load_visits(url: str, layout, today) -> int:
    columns = [
        "site_id",
        "host_id",
        "kind",
        "status",
        "visitor_name",
        "visitor_email",
        "name_key",
        "email_key",
        "expected_start",
        "expected_end",
        "local_date",
        "checked_in_at",
        "checked_out_at",
        "checkout_method",
        "created_at",
        "updated_at",
    ]
    with psycopg.connect(libpq_url(url)) as conn:
        count = copy_rows(
            conn, Visit.__table__, columns, visit_rows(layout, today, random.Random(23))
        )
        conn.commit()
    return count


if __name__ == "__main__":
    main()
