"""CalDAV room-calendar sync: 1,000 events, the first full sync against an incremental one.

Issue 6's speed target: a CalDAV sync of a calendar with 1,000 unchanged events costs one request
(sync-token), not 1,000.

One run, on a fresh SQLite database (migrated) and a real Radicale 3.9 server on loopback (the
tests' fixture, tests/radicale_server.py, which counts every request it serves):
1. a room linked to an empty Radicale calendar, and 1,000 confirmed bookings of it in Foyer
   (inserted directly: the booking rules are not what is measured);
2. the first sync: a full listing, then one PUT per booking (the requests and the time it took);
3. the same sync again with nothing changed, 20 times: the requests per round (expected: one
   sync-collection REPORT) and the time per round (median, p95, CPU), and its ratio to the first.
A round is `portal.services.calendar_sync.sync_link`: claim, pull, apply, push, record."""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench.harness import Timing, measure, report
from portal.db import make_engine, session_factories, utcnow
from portal.models import Booking, BookingStatus, Building, Floor, Room, Site, User
from portal.models.calendar_sync import CalendarLink, SyncedEvent
from portal.schema import upgrade
from portal.services import calendar_sync, notifications, secret_box
from tests.radicale_server import running_radicale

EVENTS = 1000
KEY = b"bench-calendar-sync"


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="foyer-bench-caldav-"))
    engine = make_engine(f"sqlite:///{scratch / 'bench.sqlite3'}")
    upgrade(engine)
    _reader, writer = session_factories(engine)
    writer.configure(info={notifications.SENDER_KEY: notifications.Sender()})
    with running_radicale(scratch / "radicale") as radicale:
        radicale.make_calendar("aurora")
        url = radicale.calendar_url("aurora")
        with writer() as session, session.begin():
            link_id = _seed(session, url, radicale.user, radicale.password)

        radicale.reset_counts()
        started, cpu_started = time.perf_counter(), time.process_time()
        with writer() as session:
            first = calendar_sync.sync_link(session, KEY, link_id, force=True)
        first_ms = (time.perf_counter() - started) * 1000
        first_cpu_ms = (time.process_time() - cpu_started) * 1000
        first_requests = radicale.count()
        assert first.ok and first.pushed == EVENTS, first

        rounds: list[int] = []

        def unchanged() -> None:
            before = radicale.count()
            with writer() as session:
                result = calendar_sync.sync_link(session, KEY, link_id, force=True)
            assert result.ok and result.pushed == 0 and result.booked == 0, result
            rounds.append(radicale.count() - before)

        timing = measure(f"unchanged sync, {EVENTS} events", unchanged, repeat=20, warmup=2)
        with writer() as session:
            mapped = session.scalar(select(func.count()).select_from(SyncedEvent))
    engine.dispose()

    print(f"first sync: {first_requests} requests ({first.pushed} PUTs), {first_ms:.0f} ms")
    print(
        f"unchanged sync: {max(rounds)} request(s) per round "
        f"(methods: {sorted({m for m, _ in radicale.requests[-1:]})}), {len(rounds)} rounds"
    )
    print(f"events mapped: {mapped}")
    baseline = Timing("first full sync (1 round)", first_ms, first_ms, first_cpu_ms)
    report(baseline, [timing])
    print(f"an unchanged round takes {timing.ratio_to(baseline):.4f} of the first full sync")
    verdict = "PASS" if max(rounds) == 1 else "FAIL"
    print(f"target: an unchanged calendar of {EVENTS} events costs 1 request: {verdict}")


def _seed(session, url: str, user: str, password: str) -> int:  # noqa: ANN001 - a bench
    site = Site(slug="berlin", name="Berlin", time_zone="Europe/Berlin", address="Somewhere 1")
    session.add(site)
    floor = Floor(building=Building(site=site, name="North"), level=1, name="Floor 1")
    room = Room(site=site, floor=floor, name="Aurora", capacity=8, equipment=[], qr_code="bench-r1")
    person = User(email="lena@example.com", name="Lena Fischer", department="Design")
    session.add_all([room, person])
    session.flush()
    start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    session.add_all(
        Booking(
            resource=room,
            user=person,
            created_by=person,
            title=f"Meeting {n}",
            start_at=start + timedelta(hours=n),
            end_at=start + timedelta(hours=n, minutes=50),
            blocked_until=start + timedelta(hours=n, minutes=50),
            status=BookingStatus.CONFIRMED,
        )
        for n in range(EVENTS)
    )
    link = CalendarLink(
        resource=room,
        provider="caldav",
        settings={"url": url, "username": user},
        secret_sealed=secret_box.seal(KEY, password),
    )
    session.add(link)
    session.flush()
    return link.id


if __name__ == "__main__":
    main()
