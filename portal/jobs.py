"""Background jobs (Huey): release no-shows and deliver the mail outbox every minute, and deliver
right after any commit that queued mail.

With FOYER_REDIS_URL the queue is in Redis and `flask --app wsgi run-worker` processes run the jobs
(any number of them, on any host). Without it, the embedded default: the queue is a SQLite file in the
instance folder and a consumer thread in each web process runs the jobs. The thread starts with the
process's first request (not in CLI commands, not in a reloader's parent), so `make run` needs
nothing else. Every job is idempotent: what to do is decided by rows in the database, taken under
locks, so a job that runs twice, or in two processes at once, does the work once. Huey retries a job
that fails (the database was briefly unreachable, say)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import click
from flask import Flask, current_app
from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from redis import ConnectionPool
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from integrations import mail
from portal.config import Settings
from portal.db import utcnow
from portal.services import bookings, notifications, series, visitors

log = logging.getLogger("portal.jobs")

RETRIES = 3
RETRY_DELAY = 10  # seconds between Huey's retries of a failed job
EVERY_MINUTE = crontab()
HOURLY = crontab(minute="7")  # series horizons move by a day at a time; hourly is plenty
NIGHTLY = crontab(hour="3", minute="17")
# An idle embedded worker polls its SQLite queue at least this often (seconds), so "deliver now"
# is prompt; Redis workers block on the queue instead.
EMBEDDED_MAX_POLL = 2.0


class Jobs:
    """The app's queue and its tasks. Tasks are registered per app, so each test app has its own."""

    def __init__(self, app: Flask, queue: Huey) -> None:
        self.app = app
        self.queue = queue
        self.consumer: Consumer | None = None
        self._start_lock = threading.Lock()
        periodic = queue.periodic_task(EVERY_MINUTE, retries=RETRIES, retry_delay=RETRY_DELAY)
        on_demand = queue.task(retries=RETRIES, retry_delay=RETRY_DELAY)
        self.release_no_shows = periodic(_named(self._release_no_shows, "release_no_shows"))
        self.deliver_outbox = periodic(_named(self._deliver_outbox, "deliver_outbox"))
        self.deliver_now = on_demand(_named(self._deliver_outbox, "deliver_now"))
        hourly = queue.periodic_task(HOURLY, retries=RETRIES, retry_delay=RETRY_DELAY)
        self.extend_series = hourly(_named(self._extend_series, "extend_series"))
        self.print_badges = periodic(_named(self._print_badges, "print_badges"))
        self.print_badges_now = on_demand(_named(self._print_badges, "print_badges_now"))
        self.check_out_end_of_day = periodic(
            _named(self._check_out_end_of_day, "check_out_end_of_day")
        )
        nightly = queue.periodic_task(NIGHTLY, retries=RETRIES, retry_delay=RETRY_DELAY)
        self.erase_visitor_data = nightly(_named(self._erase_visitor_data, "erase_visitor_data"))

    @property
    def settings(self) -> Settings:
        return self.app.extensions["foyer.settings"]

    def _writer(self) -> Session:
        _reader, writer = self.app.extensions["foyer.sessions"]
        return writer()

    def _release_no_shows(self) -> int:
        with self.app.app_context(), self._writer() as session, session.begin():
            released = bookings.release_no_shows(session, utcnow())
        # Their notices are in the outbox; the commit above already asked for a delivery.
        return len(released)

    def _extend_series(self) -> int:
        """Book the occurrences of recurring series that came within the booking horizon."""
        with self.app.app_context(), self._writer() as session, session.begin():
            return series.extend_all(session, utcnow())

    def _print_badges(self, visit_ids: list[int] | None = None) -> dict[str, int]:
        """Print the badges just checked in (visit_ids), or every due one (retries)."""
        from portal.services import lobby_printing  # WeasyPrint (Pango) only where printing runs

        with self.app.app_context(), self._writer() as session:
            return lobby_printing.print_due(
                session,
                self.settings.secret_key.encode(),
                now=utcnow(),
                only=set(visit_ids) if visit_ids is not None else None,
            )

    def _check_out_end_of_day(self) -> int:
        with self.app.app_context(), self._writer() as session, session.begin():
            return visitors.check_out_at_end_of_day(session, now=utcnow())

    def _erase_visitor_data(self) -> int:
        """Blank visitors' personal data past each site's retention period."""
        with self.app.app_context(), self._writer() as session, session.begin():
            return visitors.erase_expired(session, now=utcnow())

    def print_soon(self, visit_ids: set[int]) -> None:
        """Ask for these badges to be printed now; the every-minute run catches any miss."""
        try:
            self.print_badges_now(sorted(visit_ids))
        except Exception:  # noqa: BLE001 - the check-in happened; printing must not fail it
            log.warning("could not enqueue badge printing; the periodic run will print it")

    def _deliver_outbox(self) -> dict[str, int]:
        with self.app.app_context(), self._writer() as session:
            counts = mail.deliver_due(session, self.settings, utcnow())
        return vars(counts)

    def deliver_soon(self) -> None:
        """Ask for a delivery now. Never raises: if the queue is unreachable, the every-minute
        delivery sends the mail a little later."""
        try:
            self.deliver_now()
        except Exception:  # noqa: BLE001 - the commit happened; mail must not fail the request
            log.warning("could not enqueue mail delivery; the periodic run will send it")

    # The embedded consumer -------------------------------------------------------------------
    def start_in_process(self) -> None:
        """Start the consumer thread in this process (idempotent)."""
        with self._start_lock:
            if self.consumer is not None:
                return
            consumer = EmbeddedConsumer(
                self.queue,
                workers=self.settings.jobs_workers,
                periodic=True,
                worker_type="thread",
                max_delay=EMBEDDED_MAX_POLL,
            )
            consumer.start()
            self.consumer = consumer

    def stop(self) -> None:
        with self._start_lock:
            if self.consumer is not None:
                self.consumer.stop(graceful=True)
                self.consumer = None


class EmbeddedConsumer(Consumer):
    """A consumer running in threads of a web process: the web server owns the signals."""

    def _set_signal_handlers(self) -> None:
        pass


def _named(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A plain function with a stable name: Huey registers tasks as `<module>.<name>`, and the
    web process and the worker must agree on it."""

    def task(*args: Any) -> Any:
        return func(*args)

    task.__name__ = task.__qualname__ = name
    task.__module__ = __name__
    task.__doc__ = func.__doc__
    return task


def make_queue(settings: Settings) -> Huey:
    if settings.redis_url:
        pool = ConnectionPool.from_url(
            settings.redis_url, socket_timeout=10, socket_connect_timeout=5
        )
        return RedisHuey("foyer", connection_pool=pool, results=False)
    return SqliteHuey("foyer", filename=str(settings.instance_path / "jobs.sqlite3"), results=False)


def embedded(settings: Settings) -> bool:
    """Whether this web process runs the jobs itself. Never on a test's shared connection: a
    consumer thread must not use a connection another thread holds."""
    return (
        settings.jobs_in_process
        and not settings.redis_url
        and "SESSION_FACTORY" not in settings.extra
    )


def configure_jobs(app: Flask) -> Jobs:
    """Call from create_app after configure_database. Idempotent."""
    existing: Jobs | None = app.extensions.get("foyer.jobs")
    if existing is not None:
        return existing
    settings: Settings = app.extensions["foyer.settings"]
    jobs = Jobs(app, make_queue(settings))
    app.extensions["foyer.jobs"] = jobs
    sender = notifications.Sender.from_settings(settings.base_url, settings.mail_from)
    factories: list[sessionmaker[Session]] = []
    for factory in app.extensions["foyer.sessions"]:
        if all(factory is not seen for seen in factories):
            factories.append(factory)
    for factory in factories:
        _attach_outbox_hooks(factory, jobs, sender)
    if embedded(settings):

        @app.before_request
        def start_jobs() -> None:
            if jobs.consumer is None:
                jobs.start_in_process()

    return jobs


def _attach_outbox_hooks(
    factory: sessionmaker[Session], jobs: Jobs, sender: notifications.Sender
) -> None:
    """Every session the app makes knows who mail comes from, and a commit that queued mail asks
    for a delivery at once (services cannot: they have no queue and no Flask)."""
    info = dict(factory.kw.get("info") or {})
    info[notifications.SENDER_KEY] = sender
    factory.configure(info=info)

    def after_commit(session: Session) -> None:
        if session.info.pop(notifications.OUTBOX_PENDING, False):
            jobs.deliver_soon()
        badges = session.info.pop(visitors.BADGES_PENDING, None)
        if badges:
            jobs.print_soon(badges)

    def after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
        if previous.parent is None:  # the whole transaction, not a savepoint
            session.info.pop(notifications.OUTBOX_PENDING, None)
            session.info.pop(visitors.BADGES_PENDING, None)

    event.listen(factory, "after_commit", after_commit)
    event.listen(factory, "after_soft_rollback", after_soft_rollback)


def register_job_commands(app: Flask) -> None:
    """Call from create_app (or portal/cli.py's register_commands). Idempotent."""
    if "run-worker" in app.cli.commands:
        return

    @app.cli.command("run-worker")
    @click.option("--workers", type=int, default=None, help="worker threads (FOYER_JOBS_WORKERS)")
    def run_worker(workers: int | None) -> None:
        """Run the background jobs (no-show release, mail delivery) until stopped.

        SIGTERM stops gracefully (running jobs finish), SIGINT at once."""
        jobs: Jobs = current_app.extensions["foyer.jobs"]
        settings = jobs.settings
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        where = "Redis" if settings.redis_url else str(settings.instance_path / "jobs.sqlite3")
        count = workers or settings.jobs_workers
        click.echo(f"Foyer worker: queue in {where}, {count} threads; stop with Ctrl-C")
        Consumer(
            jobs.queue,
            workers=count,
            periodic=True,
            worker_type="thread",
            graceful_signal="TERM",
            shutdown_timeout=30,
        ).run()
