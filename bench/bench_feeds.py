"""Calendar feeds at scale (PostgreSQL): a room feed with 10,000 bookings in its window.

Issue 6's speed targets: such a feed renders in under 300 ms, and the 304 answer to a calendar
that already has it (If-None-Match with the feed's ETag) takes under 5 ms.

One run, one fresh database (created here, dropped at the end): a site, a floor, one room, 200
people and FOYER_BENCH_FEED_BOOKINGS bookings of the room (default 10,000, 20 minutes every 25
minutes, so all of them fall within the feed's window of 30 days back and 180 ahead), then:
1. render: GET /feeds/<token>.ics with every cache emptied before each request (the feed cache
   and the per-event bytes), i.e. the first fetch after a change;
2. 304: GET with If-None-Match of the feed's ETag, the feed cache warm (as between changes);
3. baselines in the same app and run: a bare route returning the same bytes, and a bare route
   answering 304, measured the same way through the in-process test client.
Rate limits are off (the bench asks far more often than any calendar would).

Environment: FOYER_BENCH_POSTGRES_URL (else FOYER_TEST_POSTGRES_URL, else postgres@127.0.0.1:5432),
FOYER_BENCH_FEED_BOOKINGS (default 10,000)."""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Response
from sqlalchemy import insert

from bench.harness import measure, on_scratch_postgres, report
from integrations import ical
from portal import create_app
from portal.db import make_engine
from portal.models import Booking, Building, Floor, Room, Site, User
from portal.schema import upgrade
from portal.services import feeds
from portal.services.audit import Actor

BOOKINGS = int(os.environ.get("FOYER_BENCH_FEED_BOOKINGS", "10000"))
TARGET_RENDER_MS = 300.0
TARGET_304_MS = 5.0


def seed(url: str) -> str:
    """The room, its bookings and one feed; returns the feed's token."""
    engine = make_engine(url)
    upgrade(engine)
    from sqlalchemy.orm import Session

    with Session(engine) as session, session.begin():
        site = Site(slug="berlin", name="Berlin", time_zone="Europe/Berlin")
        floor = Floor(building=Building(site=site, name="Main"), name="Floor 1", level=1)
        room = Room(site=site, floor=floor, name="Aurora", capacity=8, qr_code="bench-room")
        session.add_all([site, floor, room])
        people = [
            User(email=f"person{i}@example.com", name=f"Person {i}", department="Engineering")
            for i in range(200)
        ]
        session.add_all(people)
        session.flush()
        owner = people[0]
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=25)
        changed = datetime(2026, 11, 1, tzinfo=UTC)
        rows = []
        for i in range(BOOKINGS):
            begins = start + timedelta(minutes=25 * i)
            rows.append(
                {
                    "resource_id": room.id,
                    "user_id": people[i % 200].id,
                    "created_by_id": people[i % 200].id,
                    "title": f"Meeting {i}" if i % 3 else "",
                    "start_at": begins,
                    "end_at": begins + timedelta(minutes=20),
                    "blocked_until": begins + timedelta(minutes=20),
                    "status": "confirmed",
                    "status_reason": "",
                    "sequence": i % 4,
                    "version": 1,
                    "created_at": changed,
                    "updated_at": changed,
                }
            )
        session.execute(insert(Booking), rows)
        _feed, token = feeds.create(
            session,
            Actor.system("bench"),
            owner,
            "resource",
            privacy="details",
            resource=room,
            now=datetime.now(UTC),
        )
    engine.dispose()
    return token


def run(url: str, scratch: Path) -> None:
    token = seed(url)
    app = create_app(
        {
            "database_url": url,
            "secret_key": secrets.token_hex(16),
            "instance_path": scratch / "instance",
            "jobs_in_process": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    captured: dict[str, bytes | str] = {}

    @app.get("/bench/bare")
    def bare_bytes() -> Response:
        return Response(captured["body"], content_type="text/calendar; charset=utf-8")

    @app.get("/bench/bare-304")
    def bare_not_modified() -> Response:
        return Response(status=304, headers={"ETag": captured["etag"]})

    client = app.test_client()
    path = feeds.token_path(token)
    first = client.get(path)
    assert first.status_code == 200, first.status_code
    body, etag = first.data, first.headers["ETag"]
    events = body.count(b"BEGIN:VEVENT")

    captured.update(body=body, etag=etag)

    def cold() -> None:
        app.extensions.get("foyer.feed_cache").clear()
        ical._event_bytes.cache_clear()
        assert client.get(path).data == body

    def not_modified() -> None:
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304

    print(
        f"\nRoom feed: {BOOKINGS:,} bookings in the window; the feed carries {events:,} of them "
        f"in {len(body):,} bytes (limit {ical.MAX_FEED_BYTES:,}: the ones nearest today)"
    )
    bare_body = measure("bare route, same bytes", lambda: client.get("/bench/bare"), 100, 10)
    render = measure("feed, rendered (caches emptied)", cold, 30, 3)
    report(bare_body, [render])
    bare_304 = measure("bare route, 304", lambda: client.get("/bench/bare-304"), 400, 40)
    answer_304 = measure("feed, 304 (If-None-Match)", not_modified, 400, 40)
    report(bare_304, [answer_304])
    verdict = {
        "render": render.median_ms < TARGET_RENDER_MS,
        "304": answer_304.median_ms < TARGET_304_MS,
    }
    print(
        f"render {render.median_ms:.1f} ms (p95 {render.p95_ms:.1f}) vs target "
        f"{TARGET_RENDER_MS:.0f} ms: {'met' if verdict['render'] else 'MISSED'}; "
        f"304 {answer_304.median_ms:.2f} ms (p95 {answer_304.p95_ms:.2f}) vs target "
        f"{TARGET_304_MS:.0f} ms: {'met' if verdict['304'] else 'MISSED'}"
    )
    assert re.fullmatch(r'"[0-9a-f]{40}"', etag)


def main() -> None:
    on_scratch_postgres("feeds", run)


if __name__ == "__main__":
    main()
