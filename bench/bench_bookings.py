"""Bookings at scale (PostgreSQL): desk/room pages at 10k and 1M bookings, booking POSTs/s.

The desk floor plan and room timeline pages over 10,000 and 1,000,000 bookings, and booking POST
throughput with 2 gunicorn workers.

One run, one fresh database (created here, dropped at the end):
1. seed a site with 10 floors of 500 desks and 50 rooms (5,000 desks, 500 rooms), 20,000 people,
   and the bookings of one future day D (the day the pages show) plus history up to 10,000 rows;
2. pages, in-process through the WSGI test client like bench_shell_pages: SQL statements per page
   (on a busy day, an empty day and another floor: the count must not change, and be <= 10),
   median and CPU time, and the ratio to a bare Flask route serving the same bytes;
3. bulk-load history (COPY) up to 1,000,000 bookings, ANALYZE, and measure the same pages again:
   app + PostgreSQL CPU per page may grow by less than 20% (wall time is shown too, but on this
   shared 2-core machine it mostly measures the neighbours);
4. booking POSTs over HTTP against gunicorn (2 sync workers) from 8 client threads for ~12 s, each
   request a different person on a different desk, so all must succeed: bookings/s, p50/p95
   latency, CPU ms per booking of the gunicorn workers and of PostgreSQL's backends (from
   /proc/<pid>/stat), then a check in the database for double bookings;
5. when a target is missed, a cProfile of the page or the booking POST, in-process.

Sessions for the throughput phase come from the app's own `start_session` (as in
tests/test_booking_race_http.py): hundreds of argon2 checks would take minutes on 2 cores.

Environment: FOYER_BENCH_POSTGRES_URL (else FOYER_TEST_POSTGRES_URL, else postgres@127.0.0.1:5432),
FOYER_BENCH_BOOKINGS (default 1,000,000; smaller for a quick try), FOYER_BENCH_PROFILE=1 to profile
even when every target is met."""

from __future__ import annotations

import cProfile
import http.client
import io
import itertools
import json
import os
import pstats
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import flask
import psycopg
import requests
from flask import Flask, Response
from flask_wtf.csrf import generate_csrf
from sqlalchemy import Engine, Table, event, text
from sqlalchemy.engine import make_url

from bench.harness import Timing, libpq_url, measure, on_scratch_postgres, report
from portal import create_app
from portal.db import make_engine
from portal.login import start_session
from portal.models import (
    HOLDING_STATUSES,
    Booking,
    BookingPolicy,
    Building,
    Desk,
    Floor,
    Resource,
    Room,
    Site,
    User,
)
from portal.request_scope import commit, db
from portal.schema import upgrade
from portal.services import accounts
from portal.timezones import to_utc

ROOT = Path(__file__).resolve().parent.parent
FLOORS = 10
DESKS_PER_FLOOR = 500
ROOMS_PER_FLOOR = 50
USERS = 20_000
SMALL = 10_000
BOOKINGS = int(os.environ.get("FOYER_BENCH_BOOKINGS", "1000000"))
BENCH_REDIS_URL = os.environ.get("FOYER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def redis_reachable(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.flushdb()  # a bench-only database: leave no queued jobs behind
    except redis.RedisError:
        return False
    return True


PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway account in a throwaway database
ZONE = ZoneInfo("Europe/Berlin")
DEPARTMENTS = ["Engineering", "Sales", "Marketing", "Finance", "People", "Operations", "Design"]
PAGE_REPEAT = 60
CLIENT_THREADS = 8
POST_SECONDS = 12.0
POST_USERS = 320  # each books one desk on each open day in the horizon except D
TARGET_QUERIES = 10
TARGET_GROWTH = 0.20
TARGET_BOOKINGS_PER_S = 200.0
TARGET_RATIO = 2.0  # a page's median against a bare route serving the same bytes
CLK_TCK = os.sysconf("SC_CLK_TCK")
FORCE_PROFILE = os.environ.get("FOYER_BENCH_PROFILE") == "1"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def main() -> None:
    on_scratch_postgres("bench_bookings", lambda url, tmp: Bench(url, tmp).run())


# ---------------------------------------------------------------------------------------------
# Seeding


@dataclass(frozen=True)
class Layout:
    site_id: int
    site_slug: str
    floor_ids: list[int]
    desk_ids: list[list[int]]  # per floor
    room_ids: list[list[int]]
    room_buffers: dict[int, int]


def weekdays(first: date, last: date) -> list[date]:
    days, day = [], first
    while day <= last:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def past_weekdays(before: date) -> Iterator[date]:
    day = before - timedelta(days=1)
    while True:
        if day.weekday() < 5:
            yield day
        day -= timedelta(days=1)


def copy_rows(
    conn: psycopg.Connection, table: Table, columns: list[str], rows: Iterable[tuple]
) -> int:
    """COPY rows into a table; columns not given take their model default (one value for all)."""
    tail_columns, tail = [], []
    for column in table.c:
        if column.name in columns or column.primary_key or column.default is None:
            continue
        default = column.default
        value = default.arg if default.is_scalar else default.arg(None)  # type: ignore[attr-defined]
        if isinstance(value, list | dict):
            value = json.dumps(value)
        elif isinstance(value, str):
            value = str(value)  # StrEnum members as their plain value
        tail_columns.append(column.name)
        tail.append(value)
    names = ", ".join(f'"{c}"' for c in [*columns, *tail_columns])
    count = 0
    tail_tuple = tuple(tail)
    with conn.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row + tail_tuple)
            count += 1
    return count


def seed_places_and_people(engine: Engine, url: str) -> Layout:
    from sqlalchemy.orm import Session

    with Session(engine) as session, session.begin():
        site = Site(
            slug="bench",
            name="Bench Tower",
            time_zone=ZONE.key,
            address="Benchstrasse 1",
            opens_at=clock(8),
            closes_at=clock(19),
            open_weekdays="12345",
        )
        building = Building(site=site, name="Tower")
        floors = [
            Floor(building=building, level=level, name=f"Floor {level}")
            for level in range(1, FLOORS + 1)
        ]
        session.add_all([site, building, *floors])
        session.flush()
        session.add(BookingPolicy(site_id=site.id))
        site_id, floor_ids = site.id, [f.id for f in floors]

    password_hash = accounts.hash_password(PASSWORD)  # once, shared by everybody
    now = datetime.now(UTC)
    rng = random.Random(7)
    desk_ids: list[list[int]] = []
    room_ids: list[list[int]] = []
    buffers: dict[int, int] = {}
    resources, desks, rooms = [], [], []
    next_id = 1
    for level, floor_id in enumerate(floor_ids, start=1):
        ids = []
        for n in range(DESKS_PER_FLOOR):
            rid, next_id = next_id, next_id + 1
            ids.append(rid)
            resources.append(
                (
                    rid,
                    "desk",
                    site_id,
                    floor_id,
                    f"{level}.{n + 1:03d}",
                    True,
                    0,
                    "[]",
                    0.02 + (n % 25) * 0.039,
                    0.05 + (n // 25) * 0.045,
                    f"bd{rid}",
                    now,
                )
            )
            attrs = [a for a in ("monitor", "standing", "window") if rng.random() < 0.3]
            desks.append((rid, f"Zone {chr(65 + n // 50)}", json.dumps(attrs), "hot"))
        desk_ids.append(ids)
        ids = []
        for n in range(ROOMS_PER_FLOOR):
            rid, next_id = next_id, next_id + 1
            ids.append(rid)
            buffers[rid] = 10 if n % 5 == 0 else 0
            resources.append(
                (
                    rid,
                    "room",
                    site_id,
                    floor_id,
                    f"Room {level}.{n + 1:02d}",
                    True,
                    buffers[rid],
                    "[]",
                    None,
                    None,
                    f"br{rid}",
                    now,
                )
            )
            equipment = ["display"] + (["video conferencing"] if n % 2 else [])
            rooms.append((rid, 4 + (n % 5) * 2, json.dumps(equipment)))
        room_ids.append(ids)

    with psycopg.connect(libpq_url(url)) as conn:
        copy_rows(
            conn,
            Resource.__table__,
            [
                "id",
                "kind",
                "site_id",
                "floor_id",
                "name",
                "active",
                "buffer_minutes",
                "allowed_departments",
                "plan_x",
                "plan_y",
                "qr_code",
                "created_at",
            ],
            resources,
        )
        copy_rows(conn, Desk.__table__, ["id", "zone", "attributes", "assignment"], desks)
        copy_rows(conn, Room.__table__, ["id", "capacity", "equipment"], rooms)
        copy_rows(
            conn,
            User.__table__,
            [
                "id",
                "email",
                "name",
                "department",
                "active",
                "home_site_id",
                "password_hash",
                "created_at",
                "updated_at",
            ],
            (
                (
                    uid,
                    f"bench{uid:05d}@example.com",
                    f"Person {uid:05d}",
                    DEPARTMENTS[uid % len(DEPARTMENTS)],
                    True,
                    site_id,
                    password_hash,
                    now,
                    now,
                )
                for uid in range(1, USERS + 1)
            ),
        )
        for table in ("resources", "users"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
    return Layout(site_id, "bench", floor_ids, desk_ids, room_ids, buffers)


BOOKING_COLUMNS = [
    "resource_id",
    "user_id",
    "created_by_id",
    "title",
    "start_at",
    "end_at",
    "blocked_until",
    "status",
    "created_at",
    "updated_at",
]


def day_bookings(layout: Layout, day: date, past: bool, rng: random.Random) -> Iterator[tuple]:
    """One day's bookings: ~70% of desks taken (day, morning, afternoon or both halves, each
    person at most one desk that day), rooms ~45% of their hours. Never overlapping."""
    at = {h: to_utc(datetime.combine(day, clock(h)), ZONE) for h in range(8, 20)}
    created = at[8] - timedelta(days=3)
    offset = day.toordinal() * DESKS_PER_FLOOR * FLOORS

    def status() -> str:
        if not past:
            return "confirmed"
        r = rng.random()
        return "checked_in" if r < 0.7 else ("released" if r < 0.85 else "cancelled")

    index = 0
    for floor_desks in layout.desk_ids:
        for desk_id in floor_desks:
            first = (index + offset) % USERS + 1
            second = (index + offset + USERS // 2) % USERS + 1  # never someone's first desk
            index += 1
            r = rng.random()
            if r < 0.55:
                spans = [(first, 8, 19)]
            elif r < 0.62:
                spans = [(first, 8, 13)]
            elif r < 0.66:
                spans = [(first, 13, 19)]
            elif r < 0.70:
                spans = [(first, 8, 13), (second, 13, 19)]
            else:
                spans = []
            for user, start, end in spans:
                yield (
                    desk_id,
                    user,
                    user,
                    "",
                    at[start],
                    at[end],
                    at[end],
                    status(),
                    created,
                    created,
                )
    for floor_rooms in layout.room_ids:
        for room_id in floor_rooms:
            buffer = timedelta(minutes=layout.room_buffers[room_id])
            for hour in range(8, 19):
                if rng.random() >= 0.45:
                    continue
                user = rng.randrange(USERS) + 1
                end = at[hour] + timedelta(minutes=rng.choice((30, 45, 50)))
                yield (
                    room_id,
                    user,
                    user,
                    rng.choice(("Planning", "1:1", "Review", "Standup", "Interview", "")),
                    at[hour],
                    end,
                    end + buffer,  # <= the next hour: buffers are 0 or 10 minutes
                    status(),
                    created,
                    created,
                )


def history(layout: Layout, today: date) -> Iterator[tuple]:
    rng = random.Random(11)
    for day in past_weekdays(today):
        yield from day_bookings(layout, day, True, rng)


def load_bookings(url: str, rows: Iterable[tuple]) -> tuple[int, float]:
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as conn:
        count = copy_rows(conn, Booking.__table__, BOOKING_COLUMNS, rows)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE bookings")
    return count, time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Measuring


class QueryLog:
    """Records the SQL statements (and the time of each) the app sends while enabled."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[tuple[str, float]] = []
        self.enabled = False
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.enabled:
            self._statement = " ".join(statement.split())
            self._started = time.perf_counter()

    def _after(self, *_args: Any) -> None:
        if self.enabled:
            self.statements.append((self._statement, time.perf_counter() - self._started))

    def record(self, call: Callable[[], Any]) -> tuple[Any, list[tuple[str, float]], float]:
        """(the call's result, [(statement, seconds)], seconds in SQL)."""
        self.statements, self.enabled = [], True
        try:
            result = call()
        finally:
            self.enabled = False
        return result, self.statements, sum(seconds for _, seconds in self.statements)


def print_statements(statements: list[tuple[str, float]]) -> None:
    for n, (statement, seconds) in enumerate(statements, 1):
        print(f"    {n:>2}. {seconds * 1000:6.2f} ms  {statement[:150]}")


@dataclass
class PageFigures:
    label: str
    timing: Timing  # wall and CPU of this process (the app, in-process)
    baseline: Timing
    size: int
    queries: int
    sql_ms: float  # median time per page spent waiting for SQL statements
    db_cpu_ms: float  # CPU of PostgreSQL's backends per page (mean)
    app_cpu_ms: float  # CPU of the app per page (median of per-page thread CPU)

    @property
    def cpu_ms(self) -> float:
        """App plus database CPU per page: steadier than wall time on a shared machine."""
        return self.app_cpu_ms + self.db_cpu_ms


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def profile(label: str, call: Callable[[], Any], repeat: int) -> None:
    """CPU time (not wall time: the machine is shared) per function, app code first."""
    profiler = cProfile.Profile(time.process_time)
    cpu = time.process_time()
    profiler.enable()
    for _ in range(repeat):
        call()
    profiler.disable()
    cpu_ms = (time.process_time() - cpu) * 1000 / repeat
    print(f"\n--- cProfile (CPU time): {label}, {repeat} calls, {cpu_ms:.1f} ms CPU per call")
    print("    (profiled, so slower than unprofiled; read the shares, not the absolute times)")
    for title, order, restriction in [
        ("app code by cumulative time", "cumulative", [r"/(portal|integrations)/", 30]),
        ("everything by own time", "tottime", [15]),
    ]:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(*restriction)
        lines = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        print(f"  {title} (seconds over all {repeat} calls):")
        for line in lines[start:]:
            if line.strip():
                print("  " + line.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")[:150])


def http_call(
    base: str,
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """One request on a new connection (sync gunicorn workers close it after each answer) with
    http.client: the load generator shares the 2 cores with the server, and requests spent
    about five times the CPU per call (2.2 ms against 0.4 ms per booking). Returns (status, the first 300 characters), 0 on failure."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, response.read()[:300].decode(errors="replace")
    except OSError as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Bench:
    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.tmp = tmp
        self.secret = "bench-" + secrets.token_hex(24)
        self.missed: list[str] = []

    # -- orchestration ---------------------------------------------------------------------
    def run(self) -> None:
        engine = make_engine(self.url)
        try:
            upgrade(engine)
            started = time.perf_counter()
            self.layout = seed_places_and_people(engine, self.url)
            print(
                f"seeded {FLOORS * DESKS_PER_FLOOR:,} desks, {FLOORS * ROOMS_PER_FLOOR:,} rooms, "
                f"{USERS:,} people in {time.perf_counter() - started:.1f} s"
            )
        finally:
            engine.dispose()
        today = datetime.now(ZONE).date()
        horizon = weekdays(today + timedelta(days=1), today + timedelta(days=14))
        self.day = horizon[0]  # D: the day the pages show
        self.post_days = horizon[1:]
        self.empty_day = weekdays(today + timedelta(days=30), today + timedelta(days=40))[0]

        small_total = min(SMALL, BOOKINGS)
        day_rows = list(day_bookings(self.layout, self.day, False, random.Random(3)))
        rest = history(self.layout, today)
        count, seconds = load_bookings(
            self.url,
            itertools.chain(day_rows, itertools.islice(rest, max(0, small_total - len(day_rows)))),
        )
        total = count
        print(f"loaded {count:,} bookings ({len(day_rows):,} on D = {self.day}) in {seconds:.1f} s")

        self.app = create_app(
            {
                "database_url": self.url,
                "instance_path": self.tmp / "inprocess",
                "secret_key": self.secret,
                "jobs_in_process": False,
                "RATELIMIT_ENABLED": False,
            }
        )
        self.engine: Engine = self.app.extensions["foyer.engine"]
        self.queries = QueryLog(self.engine)
        self.bodies: dict[str, bytes] = {}
        self._add_baseline_route(self.app)
        self.client = self.app.test_client()
        self._sign_in(self.client, "bench00001@example.com")

        small = self.measure_pages(f"{total:,} bookings")
        count, seconds = load_bookings(self.url, itertools.islice(rest, BOOKINGS - total))
        total += count
        print(f"\nloaded {count:,} more bookings (COPY + VACUUM ANALYZE) in {seconds:.1f} s")
        large = self.measure_pages(f"{total:,} bookings")
        self.compare(small, large)

        throughput = self.booking_throughput()
        self.summary(small, large, throughput)
        if self.missed or FORCE_PROFILE:
            self.profiles()
        self.engine.dispose()

    # -- pages -----------------------------------------------------------------------------
    def _add_baseline_route(self, app: Flask) -> None:
        @app.get("/__baseline/<name>")
        def baseline(name: str) -> Response:
            # The floor: Flask serving the same bytes with no template and no database.
            return Response(self.bodies[name], mimetype="text/html")

    def _sign_in(self, client: Any, email: str) -> None:
        page = client.get("/sign-in").get_data(as_text=True)
        response = client.post(
            "/sign-in",
            data={"csrf_token": TOKEN.search(page).group(1), "email": email, "password": PASSWORD},
        )
        assert response.status_code == 303, response.status_code

    def page_urls(self, day: date, floor_index: int = 0) -> dict[str, str]:
        floor = self.layout.floor_ids[floor_index]
        slug = self.layout.site_slug
        return {
            "desk floor plan": f"/desks/?site={slug}&floor={floor}&date={day}&slot=day",
            "room timeline": f"/rooms/timeline?site={slug}&floor={floor}&date={day}",
        }

    def measure_pages(self, state: str) -> dict[str, PageFigures]:
        print(f"\n--- pages with {state} in the database (500-desk floor, 50-room floor, day D)")
        figures: dict[str, PageFigures] = {}
        variants = {
            "busy day D, floor 1": self.page_urls(self.day, 0),
            "busy day D, floor 6": self.page_urls(self.day, 5),
            f"empty day {self.empty_day}": self.page_urls(self.empty_day, 0),
        }
        counts: dict[str, dict[str, int]] = {}
        statements: dict[str, list[tuple[str, float]]] = {}
        for variant, urls in variants.items():
            for page, url in urls.items():
                self.client.get(url)  # warm: the session was touched, templates compiled
                response, stmts, _ = self.queries.record(lambda u=url: self.client.get(u))
                assert response.status_code == 200, (url, response.status_code)
                counts.setdefault(page, {})[variant] = len(stmts)
                statements.setdefault(page, stmts)
        for page, url in self.page_urls(self.day, 0).items():
            body = self.client.get(url).get_data()
            key = page.replace(" ", "-")
            self.bodies[key] = body
            sql_per_page: list[float] = []
            cpu_per_page: list[float] = []

            def get(
                u: str = url, sql: list[float] = sql_per_page, cpu: list[float] = cpu_per_page
            ) -> None:
                started = time.thread_time()  # the test client runs the app in this thread
                _, _, seconds = self.queries.record(lambda: self.client.get(u))
                cpu.append(time.thread_time() - started)
                sql.append(seconds)

            backends = self.pg_backends()
            ticks = {pid: cpu_ticks(pid) for pid in backends}
            timing = measure(f"{page} ({len(statements[page])} SQL)", get, PAGE_REPEAT, 5)
            db_ticks = sum(cpu_ticks(pid) - ticks[pid] for pid in backends)
            db_cpu_ms = db_ticks * 1000 / CLK_TCK / (PAGE_REPEAT + 5)
            base = measure(
                f"baseline, same {len(body) // 1024} kB",
                lambda k=key: self.client.get(f"/__baseline/{k}"),
                repeat=PAGE_REPEAT * 2,
                warmup=10,
            )
            sql_ms = statistics.median(sql_per_page) * 1000
            app_cpu_ms = statistics.median(cpu_per_page[5:]) * 1000
            figures[page] = PageFigures(
                page, timing, base, len(body), len(statements[page]), sql_ms, db_cpu_ms, app_cpu_ms
            )
            report(base, [timing])
            print(
                f"  per page: app CPU {app_cpu_ms:.1f} ms (median), PostgreSQL CPU {db_cpu_ms:.1f} "
                f"ms, waiting for SQL {sql_ms:.1f} ms (median); one page's statements:"
            )
            _, stmts, _ = self.queries.record(lambda u=url: self.client.get(u))
            print_statements(stmts)
        for page, by_variant in counts.items():
            fixed = len(set(by_variant.values())) == 1
            shown = ", ".join(f"{v}: {n}" for v, n in by_variant.items())
            worst = max(by_variant.values())
            verdict = "fixed" if fixed else "NOT FIXED"
            print(f"  {page}: SQL statements per page {shown} -> {verdict}")
            if not fixed or worst > TARGET_QUERIES:
                self.missed.append(f"{page}: {worst} SQL statements ({verdict})")
        return figures

    def compare(self, small: dict[str, PageFigures], large: dict[str, PageFigures]) -> None:
        """The verdict uses CPU (app + PostgreSQL) per page; wall time is shown beside it, but on a
        shared machine it mostly measures the neighbours."""
        print(f"\n--- the same pages, {SMALL:,} against {BOOKINGS:,} bookings")
        print(
            f"{'page':<17}{'CPU ms (app+db)':>22}{'change':>8}{'wall median ms':>20}{'change':>8}"
            f"{'SQL wait ms':>16}"
        )
        for page, before in small.items():
            after = large[page]
            cpu_change = after.cpu_ms / before.cpu_ms - 1
            wall_change = after.timing.median_ms / before.timing.median_ms - 1
            print(
                f"{page:<17}{before.cpu_ms:>10.1f} ->{after.cpu_ms:>8.1f}{cpu_change:>+8.0%}"
                f"{before.timing.median_ms:>10.1f} ->{after.timing.median_ms:>7.1f}"
                f"{wall_change:>+8.0%}{before.sql_ms:>8.1f} ->{after.sql_ms:>5.1f}"
            )
            if cpu_change >= TARGET_GROWTH:
                self.missed.append(f"{page}: {cpu_change:+.0%} more CPU with 1M bookings")
            ratio = max(
                before.timing.ratio_to(before.baseline), after.timing.ratio_to(after.baseline)
            )
            if ratio > TARGET_RATIO:
                self.missed.append(f"{page}: {ratio:.0f}x a bare route serving the same bytes")

    # -- booking throughput -------------------------------------------------------------------
    def mint_browsers(self, user_ids: list[int]) -> list[tuple[requests.Session, str]]:
        """Signed-in browsers made by the app's own sign-in step, with their form CSRF token."""
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        name = self.app.config["SESSION_COOKIE_NAME"]
        browsers = []
        for uid in user_ids:
            with self.app.test_request_context("/sign-in", method="POST"):
                start_session(db().get(User, uid), "password")
                commit()
                token = generate_csrf()
                cookie = serializer.dumps(dict(flask.session))
            browser = requests.Session()
            browser.cookies.set(name, cookie, domain="127.0.0.1", path="/")
            browsers.append((browser, token))
        return browsers

    def start_gunicorn(self) -> tuple[subprocess.Popen[bytes], str, Path]:
        port = free_port()
        env = dict(
            os.environ,
            FOYER_DATABASE_URL=self.url,
            FOYER_INSTANCE_PATH=str(self.tmp / "gunicorn"),
            FOYER_BIND=f"127.0.0.1:{port}",
            FOYER_WORKERS="2",
            FOYER_SECRET_KEY=self.secret,
            FOYER_LOGIN_RATE_LIMIT="100000 per minute",
        )
        env.pop("FOYER_REDIS_URL", None)
        if redis_reachable(BENCH_REDIS_URL):
            # The at-scale set-up: limits and the job queue in Redis; mail delivery and no-show
            # release belong to separate worker processes (not started here), so the web workers
            # measured are the web workers alone.
            env["FOYER_REDIS_URL"] = BENCH_REDIS_URL
            print(f"web workers use Redis at {BENCH_REDIS_URL} for limits and jobs")
        else:
            print("Redis unreachable: web workers run the jobs in-process (embedded set-up)")
        log_path = self.tmp / "gunicorn.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf", "wsgi:app"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{log_path.read_text()[-2000:]}")
            try:
                if requests.get(base + "/healthz", timeout=5).ok:
                    return server, base, log_path
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                server.terminate()
                raise RuntimeError("gunicorn did not answer within 60 s")
            time.sleep(0.2)

    def booking_throughput(self) -> dict[str, Any]:
        print(
            f"\n--- booking POSTs: gunicorn with 2 sync workers, {CLIENT_THREADS} client threads, "
            f"~{POST_SECONDS:.0f} s, each request a different person and desk"
        )
        first_user = USERS // 2 + 1  # none of them has a desk on the days used here
        desks = [d for floor in self.layout.desk_ids[1:] for d in floor]
        server, base, log_path = self.start_gunicorn()
        try:
            floor = self.framework_floor(server.pid, base)
            browsers = self.mint_browsers(list(range(first_user, first_user + POST_USERS)))
            # thread t: its own people; person i always books desk i, one day after another
            work: list[list[tuple[requests.Session, str, int, date]]] = [
                [] for _ in range(CLIENT_THREADS)
            ]
            for day in self.post_days:
                for i, (browser, token) in enumerate(browsers):
                    work[i % CLIENT_THREADS].append((browser, token, desks[i], day))
            warmup_each = 3
            results: list[tuple[float, int, float, str]] = []  # (finished at, status, ms, body)
            lock = threading.Lock()
            warm = threading.Barrier(CLIENT_THREADS + 1)
            go = threading.Barrier(CLIENT_THREADS + 1)
            stop_at = [0.0]

            def post(item: tuple[requests.Session, str, int, date]) -> tuple[int, float, str]:
                browser, token, desk_id, day = item
                body = urlencode(
                    {
                        "csrf_token": token,
                        "date": day.isoformat(),
                        "slot": "day",
                        "idempotency_key": secrets.token_urlsafe(16),
                    }
                )
                cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
                started = time.perf_counter()
                status, text = http_call(
                    base,
                    "POST",
                    f"/desks/{desk_id}/book",
                    body,
                    {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
                )
                return status, (time.perf_counter() - started) * 1000, text

            def client(items: list[tuple[requests.Session, str, int, date]]) -> None:
                warm_results = [post(item) for item in items[:warmup_each]]
                with lock:
                    results.extend((0.0, s, ms, b) for s, ms, b in warm_results if s != 303)
                warm.wait()
                go.wait()
                for item in items[warmup_each:]:
                    if time.perf_counter() >= stop_at[0]:
                        break
                    status, ms, body = post(item)
                    with lock:
                        results.append((time.perf_counter(), status, ms, body))

            threads = [threading.Thread(target=client, args=(w,)) for w in work]
            for thread in threads:
                thread.start()
            warm.wait()  # every worker has served requests: imports done, pools open
            warmup_failures = list(results)
            results.clear()
            workers = children(server.pid)
            backends = self.pg_backends()
            cpu_before = {pid: cpu_ticks(pid) for pid in [server.pid, *workers, *backends]}
            client_cpu = time.process_time()  # this process: the 8 client threads
            started = time.perf_counter()
            stop_at[0] = started + POST_SECONDS
            go.wait()
            for thread in threads:
                thread.join(POST_SECONDS + 60)
            elapsed = max((r[0] for r in results), default=time.perf_counter()) - started
            cpu_after = {pid: cpu_ticks(pid) for pid in cpu_before}
            client_cpu = time.process_time() - client_cpu
            workers_after = children(server.pid)
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)

        ok = [r for r in results if r[1] == 303]
        errors = [r for r in results if r[1] != 303] + warmup_failures
        latencies = sorted(r[2] for r in results)
        app_ticks = sum(cpu_after[p] - cpu_before[p] for p in [server.pid, *workers])
        db_ticks = sum(cpu_after[p] - cpu_before[p] for p in backends)
        figures = {
            "bookings": len(ok),
            "seconds": elapsed,
            "per_second": len(ok) / elapsed if elapsed > 0 else 0.0,
            "p50": statistics.median(latencies) if latencies else 0.0,
            "p95": latencies[int(len(latencies) * 0.95) - 1] if latencies else 0.0,
            "app_cpu_ms": app_ticks * 1000 / CLK_TCK / max(1, len(ok)),
            "db_cpu_ms": db_ticks * 1000 / CLK_TCK / max(1, len(ok)),
            "client_cpu_ms": client_cpu * 1000 / max(1, len(ok)),
            "errors": len(errors),
            "server_errors": sum(1 for r in errors if r[1] >= 500 or r[1] == 0),
            "recycled": sorted(workers) != sorted(workers_after),
            "floor_per_second": floor[0],
            "floor_cpu_ms": floor[1],
        }
        per_booking = figures["app_cpu_ms"] + figures["db_cpu_ms"] + figures["client_cpu_ms"]
        figures["ceiling"] = (os.cpu_count() or 1) * 1000 / per_booking if per_booking else 0.0
        figures.update(self.check_bookings(len(ok) + CLIENT_THREADS * warmup_each))
        print(
            f"{figures['bookings']:,} bookings in {elapsed:.1f} s = {figures['per_second']:.0f}/s; "
            f"latency p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms"
        )
        print(
            f"CPU per booking: gunicorn {figures['app_cpu_ms']:.1f} ms, PostgreSQL backends "
            f"{figures['db_cpu_ms']:.1f} ms ({len(workers)} workers, {len(backends)} backends), "
            f"load generator {figures['client_cpu_ms']:.1f} ms -> at most "
            f"{figures['ceiling']:.0f} bookings/s on {os.cpu_count()} idle cores"
        )
        load = os.getloadavg()[0]
        if load > (os.cpu_count() or 1) + 1:
            print(f"note: load average {load:.1f} on {os.cpu_count()} cores: others share them")
        print(
            f"errors: {figures['errors']} ({figures['server_errors']} 5xx or no answer); "
            f"holding bookings on those days: {figures['held']:,} (expected "
            f"{figures['expected_held']:,}); double bookings: {figures['doubles']}; "
            f"people with two desks a day: {figures['two_desks']}"
        )
        if figures["recycled"]:
            print("note: a gunicorn worker was recycled during the run (max_requests)")
        for _, status, _, body in errors[:3]:
            print(f"  error {status}: {' '.join(body.split())[:200]}")
        if figures["per_second"] < TARGET_BOOKINGS_PER_S:
            self.missed.append(f"booking POST: {figures['per_second']:.0f}/s")
        if figures["errors"] or figures["doubles"] or figures["held"] != figures["expected_held"]:
            self.missed.append("booking POST: errors or double bookings")
        return figures

    def framework_floor(self, master: int, base: str, seconds: float = 3.0) -> tuple[float, float]:
        """/healthz (a tiny JSON answer, no database) from the same client threads, on the same
        server, in the same run: requests/s and gunicorn CPU ms per request."""
        deadline = [0.0]
        counts = [0] * CLIENT_THREADS

        def client(index: int) -> None:
            http_call(base, "GET", "/healthz")
            start.wait()
            while time.perf_counter() < deadline[0]:
                if http_call(base, "GET", "/healthz")[0] == 200:
                    counts[index] += 1

        start = threading.Barrier(CLIENT_THREADS + 1)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENT_THREADS)]
        for thread in threads:
            thread.start()
        pids = [master, *children(master)]
        before = sum(cpu_ticks(pid) for pid in pids)
        started = time.perf_counter()
        deadline[0] = started + seconds
        start.wait()
        for thread in threads:
            thread.join(seconds + 30)
        elapsed = time.perf_counter() - started
        ticks = sum(cpu_ticks(pid) for pid in pids) - before
        done = max(1, sum(counts))
        per_second, cpu_ms = done / elapsed, ticks * 1000 / CLK_TCK / done
        print(
            f"framework floor, same server and clients: GET /healthz {per_second:.0f} requests/s, "
            f"{cpu_ms:.2f} ms gunicorn CPU per request"
        )
        return per_second, cpu_ms

    def pg_backends(self) -> list[int]:
        name = make_url(self.url).database
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :name "
                    "AND backend_type = 'client backend'"
                ),
                {"name": name},
            )
            return [row[0] for row in rows]

    def check_bookings(self, expected: int) -> dict[str, int]:
        """Holding bookings on the days booked here, overlapping pairs of them, and people with
        two desks on one day (the last two must be 0)."""
        first = to_utc(datetime.combine(self.post_days[0], clock(0)), ZONE)
        last = to_utc(datetime.combine(self.post_days[-1] + timedelta(days=1), clock(0)), ZONE)
        params = {"first": first, "last": last, "holding": [str(s) for s in HOLDING_STATUSES]}
        with self.engine.connect() as conn:
            held = conn.scalar(
                text(
                    "SELECT count(*) FROM bookings WHERE start_at >= :first AND start_at < :last "
                    "AND status = ANY(:holding)"
                ),
                params,
            )
            doubles = conn.scalar(
                text(
                    "SELECT count(*) FROM bookings a JOIN bookings b "
                    "ON b.resource_id = a.resource_id AND b.id > a.id "
                    "AND b.start_at < a.blocked_until AND a.start_at < b.blocked_until "
                    "AND b.status = ANY(:holding) "
                    "WHERE a.start_at >= :first AND a.start_at < :last "
                    "AND a.status = ANY(:holding)"
                ),
                params,
            )
            two_desks = conn.scalar(
                text(
                    "SELECT count(*) FROM (SELECT b.user_id, date(b.start_at AT TIME ZONE :zone) "
                    "FROM bookings b JOIN desks d ON d.id = b.resource_id "
                    "WHERE b.start_at >= :first AND b.start_at < :last "
                    "AND b.status = ANY(:holding) GROUP BY 1, 2 HAVING count(*) > 1) AS twice"
                ),
                {**params, "zone": ZONE.key},
            )
        return {"held": held, "expected_held": expected, "doubles": doubles, "two_desks": two_desks}

    # -- summary and profiles ---------------------------------------------------------------
    def summary(
        self,
        small: dict[str, PageFigures],
        large: dict[str, PageFigures],
        throughput: dict[str, Any],
    ) -> None:
        print("\n=== bench_bookings summary")
        large_label = f"{BOOKINGS:,} bookings"
        print(f"{'figure':<46}{'10,000 bookings':>17}{large_label:>19}{'target':>14}")
        for page in small:
            s, b = small[page], large[page]
            rows = [
                ("SQL statements per page", f"{s.queries}", f"{b.queries}", "<= 10, fixed"),
                ("median ms", f"{s.timing.median_ms:.1f}", f"{b.timing.median_ms:.1f}", ""),
                ("app CPU ms per page (median)", f"{s.app_cpu_ms:.1f}", f"{b.app_cpu_ms:.1f}", ""),
                ("PostgreSQL CPU ms per page", f"{s.db_cpu_ms:.1f}", f"{b.db_cpu_ms:.1f}", ""),
                ("app + PostgreSQL CPU ms", f"{s.cpu_ms:.1f}", f"{b.cpu_ms:.1f}", "< +20%"),
                ("SQL wait ms per page", f"{s.sql_ms:.1f}", f"{b.sql_ms:.1f}", ""),
                (
                    "x baseline (same bytes)",
                    f"{s.timing.ratio_to(s.baseline):.1f}",
                    f"{b.timing.ratio_to(b.baseline):.1f}",
                    f"<= {TARGET_RATIO:.0f}x",
                ),
                ("page size kB", f"{s.size / 1024:.0f}", f"{b.size / 1024:.0f}", ""),
            ]
            for name, a, c, target in rows:
                print(f"{page + ': ' + name:<46}{a:>17}{c:>19}{target:>14}")
        t = throughput
        latency = "{:.0f} / {:.0f}".format(t["p50"], t["p95"])
        failures = "{} / {}".format(t["errors"], t["doubles"])
        for name, value, target in [
            ("booking POST, 2 workers: bookings/s", f"{t['per_second']:.0f}", ">= 200"),
            ("booking POST: p50 / p95 ms", latency, ""),
            ("booking POST: gunicorn CPU ms per booking", f"{t['app_cpu_ms']:.1f}", ""),
            ("booking POST: PostgreSQL CPU ms per booking", f"{t['db_cpu_ms']:.1f}", ""),
            ("booking POST: load generator CPU ms", f"{t['client_cpu_ms']:.1f}", ""),
            ("GET /healthz (floor): requests/s", f"{t['floor_per_second']:.0f}", ""),
            ("GET /healthz (floor): gunicorn CPU ms", f"{t['floor_cpu_ms']:.2f}", ""),
            ("booking POST: CPU ceiling, bookings/s", f"{t['ceiling']:.0f}", ""),
            ("booking POST: errors / double bookings", failures, "0 / 0"),
        ]:
            print(f"{name:<46}{'':>17}{value:>19}{target:>14}")
        if self.missed:
            print("MISSED: " + "; ".join(self.missed))
        else:
            print("every target met")

    def profiles(self) -> None:
        print("\n=== profiles (in-process, cProfile)")
        for page, url in self.page_urls(self.day, 0).items():
            if FORCE_PROFILE or any(m.startswith(page) for m in self.missed):
                profile(page, lambda u=url: self.client.get(u), 20)
        if FORCE_PROFILE or any(m.startswith("booking POST") for m in self.missed):
            self.profile_booking_post()

    def profile_booking_post(self) -> None:
        # People and a day nobody else used: 200 bookings on the empty day's floor 1.
        users = list(range(USERS // 4 + 1, USERS // 4 + 201))
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        name = self.app.config["SESSION_COOKIE_NAME"]
        clients = []
        for uid in users:
            with self.app.test_request_context("/sign-in", method="POST"):
                start_session(db().get(User, uid), "password")
                commit()
                token = generate_csrf()
                cookie = serializer.dumps(dict(flask.session))
            client = self.app.test_client()
            client.set_cookie(name, cookie)
            clients.append((client, token))
        day = self.post_days[0]
        desks = iter(self.layout.desk_ids[0])
        pending = iter(clients)
        statuses: list[int] = []

        def one() -> None:
            client, token = next(pending)
            response = client.post(
                f"/desks/{next(desks)}/book",
                data={"csrf_token": token, "date": day.isoformat(), "slot": "day"},
            )
            statuses.append(response.status_code)

        _, stmts, sql_seconds = self.queries.record(one)
        print(f"\nbooking POST: {len(stmts)} SQL statements, {sql_seconds * 1000:.1f} ms in SQL:")
        print_statements(stmts)
        profile("booking POST (in-process)", one, len(clients) - 1)
        print(f"statuses: {sorted(set(statuses))}")


if __name__ == "__main__":
    main()
