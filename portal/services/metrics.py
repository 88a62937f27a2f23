"""What /metrics exposes to Prometheus: request latency measured in the web processes, and counts
that live in the database, computed by SQL at scrape time (so every worker and host agrees).

Latency is a prometheus_client Histogram. With PROMETHEUS_MULTIPROC_DIR set (before the processes
start) prometheus_client keeps each gunicorn worker's samples in files there and a scrape sums
them, so one scrape covers every worker of the host; without it, each process reports only its own
requests (fine for the embedded demo, which is one process)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import Booking, BookingStatus, OutboxMessage, Resource
from portal.models.calendar_sync import CalendarLink, LinkState
from portal.models.job_failures import OPEN_STATES, JobFailure, JobHeartbeat

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Not registered in prometheus_client's global registry: every scrape builds its own registry,
# so several apps in one process (the tests) never clash.
REQUEST_LATENCY = Histogram(
    "foyer_http_request_duration_seconds",
    "Time from the request's arrival to its response, by area (blueprint) and method.",
    ["area", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)


def observe_request(area: str, method: str, seconds: float) -> None:
    REQUEST_LATENCY.labels(area=area or "none", method=method).observe(seconds)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_matches(expected_hash: bytes, presented: str) -> bool:
    """Constant time: compares SHA-256 digests, so neither length nor prefix leaks."""
    return hmac.compare_digest(expected_hash, token_hash(presented))


@dataclass(frozen=True)
class QueueFigures:
    pending: int | None  # None: the queue could not be read
    scheduled: int | None


class _LocalLatency(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REQUEST_LATENCY.collect()


class DatabaseCounts(Collector):
    """Counts from the database, read at scrape time."""

    def __init__(self, session: Session, queue: QueueFigures) -> None:
        self.session = session
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        yield from self._bookings()
        yield from self._jobs()
        yield from self._calendar_sync()
        yield from self._outbox()

    def _bookings(self) -> Iterator[Metric]:
        created = CounterMetricFamily(
            "foyer_bookings_created", "Bookings ever made, by kind of space.", labels=["kind"]
        )
        released = CounterMetricFamily(
            "foyer_no_shows_released",
            "Bookings released because nobody checked in, by kind of space.",
            labels=["kind"],
        )
        check_ins = CounterMetricFamily(
            "foyer_check_ins", "Bookings checked in to, by kind of space.", labels=["kind"]
        )
        # One pass over the bookings (rows are never deleted: cancelled ones keep their status).
        rows = self.session.execute(
            select(
                Resource.kind,
                func.count(Booking.id),
                func.count(Booking.id).filter(Booking.status == BookingStatus.RELEASED),
                func.count(Booking.checked_in_at),
            )
            .join(Resource, Resource.id == Booking.resource_id)
            .group_by(Resource.kind)
        ).all()
        for kind, total, no_shows, checked_in in rows:
            created.add_metric([kind], total)
            released.add_metric([kind], no_shows)
            check_ins.add_metric([kind], checked_in)
        yield from (created, released, check_ins)

    def _jobs(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily(
            "foyer_jobs_queued", "Background jobs waiting in the queue.", labels=["state"]
        )
        if self.queue.pending is not None:
            queued.add_metric(["pending"], self.queue.pending)
        if self.queue.scheduled is not None:
            queued.add_metric(["scheduled"], self.queue.scheduled)
        yield queued
        failed = CounterMetricFamily(
            "foyer_job_attempts_failed",
            "Failed runs of each background task (each retry counts).",
            labels=["task"],
        )
        succeeded = CounterMetricFamily(
            "foyer_job_runs_succeeded", "Successful runs of each background task.", labels=["task"]
        )
        for task, successes, failures in self.session.execute(
            select(JobHeartbeat.task_name, JobHeartbeat.successes, JobHeartbeat.failures)
        ):
            failed.add_metric([task], failures)
            succeeded.add_metric([task], successes)
        yield from (failed, succeeded)
        dead = GaugeMetricFamily(
            "foyer_jobs_dead_letters",
            "Tasks that gave up after their retries and wait for an admin (/admin/jobs/).",
        )
        dead.add_metric(
            [],
            self.session.scalar(
                select(func.count(JobFailure.id)).where(JobFailure.state.in_(OPEN_STATES))
            )
            or 0,
        )
        yield dead

    def _calendar_sync(self) -> Iterator[Metric]:
        links = GaugeMetricFamily(
            "foyer_calendar_links", "Linked room calendars by sync state.", labels=["state"]
        )
        errors = GaugeMetricFamily(
            "foyer_calendar_sync_errors",
            "Consecutive failed syncs, summed over the linked room calendars.",
        )
        counts = dict.fromkeys((s.value for s in LinkState), 0)
        total_failures = 0
        for state, count, failures in self.session.execute(
            select(
                CalendarLink.state, func.count(CalendarLink.id), func.sum(CalendarLink.failures)
            ).group_by(CalendarLink.state)
        ):
            counts[state] = count
            total_failures += int(failures or 0)
        for state, count in sorted(counts.items()):
            links.add_metric([state], count)
        errors.add_metric([], total_failures)
        yield from (links, errors)

    def _outbox(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            "foyer_outbox_messages", "E-mails in the outbox by status.", labels=["status"]
        )
        for status, count in self.session.execute(
            select(OutboxMessage.status, func.count(OutboxMessage.id)).group_by(
                OutboxMessage.status
            )
        ):
            outbox.add_metric([status], count)
        yield outbox


def exposition(session: Session, queue: QueueFigures) -> bytes:
    """The Prometheus text format for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_LocalLatency())
    registry.register(DatabaseCounts(session, queue))
    return generate_latest(registry)
