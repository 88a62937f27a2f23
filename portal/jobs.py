"""Background jobs (Huey): release no-shows and deliver the mail outbox every minute, and deliver
right after any commit that queued mail.

With FOYER_REDIS_URL the queue is in Redis and `flask --app wsgi run-worker` processes run the jobs
(any number of them, on any host). Without it, the embedded default: the queue is a SQLite file in the
instance folder and a consumer thread in each web process runs the jobs. The thread starts with the
process's first request (not in CLI commands, not in a reloader's parent), so `make run` needs
nothing else. Every job is idempotent: what to do is decided by rows in the database, taken under
locks, so a job that runs twice, or in two processes at once, does the work once. Huey retries a job
that fails (the database was briefly unreachable, say), waiting longer each time; one that gives up
lands in the admin's dead-letter list (portal/services/job_failures.py, /admin/jobs/)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import click
from flask import Flask, current_app
from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from huey.exceptions import CancelExecution, HueyException, RateLimitExceeded, TaskLockedException
from redis import ConnectionPool
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from integrations import mail
from portal.config import Settings
from portal.db import utcnow
from portal.services import bookings, job_failures, notifications, series, visitors

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
        # Every task on this queue, whoever adds it, gets backoff and dead letters (_after_task).
        self.retry_base_delay = float(RETRY_DELAY)
        queue.post_execute("foyer.dead_letters")(self._after_task)
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
        # Access-control credentials: at once after a commit that queued some, then every minute
        self.process_access_grants = periodic(
            _named(self._process_access_grants, "process_access_grants")
        )
        self.process_access_grants_now = on_demand(
            _named(self._process_access_grants, "process_access_grants_now")
        )
        self._attach_access_hooks()
        # Room calendar sync: links due every minute, and soon after a commit touched a booking
        # of a linked room (portal/services/calendar_sync.py)
        self.sync_calendars = periodic(_named(self._sync_calendars, "sync_calendars"))
        self.sync_calendars_now = on_demand(_named(self._sync_calendars, "sync_calendars_now"))
        self._attach_calendar_sync_hooks()
        # Coordinators' weekly digest (portal/services/digest.py): checked every quarter hour so
        # it leaves at 07:00 local also in zones with half- and quarter-hour offsets
        self.send_weekly_digests = queue.periodic_task(
            crontab(minute="0,15,30,45"), retries=RETRIES, retry_delay=RETRY_DELAY
        )(_named(self._send_weekly_digests, "send_weekly_digests"))

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

    # Access-control grants (portal/services/access_control.py) -------------------------------
    def _process_access_grants(self) -> dict[str, int]:
        """Create and revoke due credentials at the sites' access-control systems."""
        from portal.services import access_control

        with self.app.app_context(), self._writer() as session:
            counts = access_control.process_due(
                session, self.settings.secret_key.encode(), now=utcnow()
            )
        return vars(counts)

    def access_grants_soon(self) -> None:
        """Never raises: the check-in committed; the every-minute run catches any miss."""
        try:
            self.process_access_grants_now()
        except Exception:  # noqa: BLE001 - a visitor's check-in must not fail on the queue
            log.warning("could not enqueue access grants; the periodic run will make them")

    def _attach_access_hooks(self) -> None:
        """Sessions carry the key that seals integration secrets (the demo seed uses it), and a
        commit that queued grant work asks for a run at once."""
        from portal.services import access_control

        key = self.settings.secret_key.encode()
        factories: list[sessionmaker[Session]] = []
        for factory in self.app.extensions["foyer.sessions"]:
            if all(factory is not seen for seen in factories):
                factories.append(factory)

        def after_commit(session: Session) -> None:
            if session.info.pop(access_control.GRANTS_PENDING, False):
                self.access_grants_soon()

        def after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
            if previous.parent is None:
                session.info.pop(access_control.GRANTS_PENDING, None)

        for factory in factories:
            info = dict(factory.kw.get("info") or {})
            info[access_control.SEALING_KEY] = key
            factory.configure(info=info)
            event.listen(factory, "after_commit", after_commit)
            event.listen(factory, "after_soft_rollback", after_soft_rollback)

    # Room calendar sync (portal/services/calendar_sync.py) ------------------------------------
    def _sync_calendars(self, link_ids: list[int] | None = None) -> dict[str, int]:
        """Sync these linked calendars now, or every one that is due. Failures are recorded on
        each link (with its own backoff), so the task itself does not fail for them."""
        from portal.services import calendar_sync

        with self.app.app_context(), self._writer() as session:
            results = calendar_sync.sync_due(
                session, self.settings.secret_key.encode(), now=utcnow(), only=link_ids
            )
        return {"synced": sum(r.ok for r in results), "failed": sum(not r.ok for r in results)}

    def calendars_soon(self, link_ids: set[int]) -> None:
        """Never raises: the booking committed; the every-minute run pushes it a little later."""
        try:
            self.sync_calendars_now(sorted(link_ids))
        except Exception:  # noqa: BLE001 - a booking must not fail on the queue
            log.warning("could not enqueue a calendar sync; the periodic run will do it")

    def _attach_calendar_sync_hooks(self) -> None:
        from portal.services import calendar_sync

        def after_commit(session: Session) -> None:
            link_ids = session.info.pop(calendar_sync.SYNC_PENDING, None)
            if link_ids:
                self.calendars_soon(link_ids)

        seen: list[sessionmaker[Session]] = []
        for factory in self.app.extensions["foyer.sessions"]:
            if all(factory is not other for other in seen):
                seen.append(factory)
                event.listen(factory, "after_commit", after_commit)

    # Weekly digest (portal/services/digest.py) ------------------------------------------------
    def _send_weekly_digests(self) -> int:
        """Queue the coordinators' digests that are due; idempotent per coordinator and week."""
        from portal.services import digest

        with self.app.app_context(), self._writer() as session, session.begin():
            return digest.send_due(session, utcnow())

    # Backoff and dead letters (portal/services/job_failures.py, /admin/jobs/) --------------------
    def _after_task(self, task: Any, _value: Any, exc: BaseException | None) -> None:
        """After every run of every task, in the worker and before Huey reschedules a failure:
        the next attempt waits base, 2x, 4x ... (Huey's own retry_delay is fixed), the run is
        counted per task, and a task out of retries lands in the dead-letter list."""
        if isinstance(exc, NOT_FAILURES):
            return  # another run holds the lock, or the task chose not to run: nothing failed
        if exc is not None and not job_failures.is_final(task):
            attempt = job_failures.attempt_number(task)
            task.retry_delay = job_failures.retry_delay(attempt, self.retry_base_delay)
        job_failures.after_attempt(self._writer, task, task_path(type(task)), exc, utcnow())

    def enqueue_again(self, path: str, arguments: dict[str, Any]) -> None:
        """Queue a dead-lettered task again, same arguments, a fresh set of retries. LookupError
        when this version of Foyer has no such task (renamed or removed since)."""
        try:
            task_class = self.queue._registry.string_to_task(path)  # Huey has no public lookup
        except HueyException as exc:
            raise LookupError(path) from exc
        args, kwargs = tuple(arguments.get("args") or ()), dict(arguments.get("kwargs") or {})
        self.queue.enqueue(task_class(args=args, kwargs=kwargs))

    def knows(self, path: str) -> bool:
        return path in self.queue._registry._registry

    def periodic_tasks(self) -> dict[str, Callable[[Any], bool]]:
        """Each periodic task's name and its "does it run at this UTC minute?" test."""
        return {
            cls.__name__: cls().validate_datetime for cls in self.queue._registry._periodic_tasks
        }

    def consumer_mode(self) -> str:
        """redis (separate worker processes) | in-process (a thread in each web process) | none
        (a SQLite queue that only `flask run-worker` on this host would run)."""
        if self.settings.redis_url:
            return "redis"
        return "in-process" if embedded(self.settings) else "none"

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


# Raised by Huey when a run is skipped, not failed: no backoff, no dead letter.
NOT_FAILURES = (TaskLockedException, CancelExecution, RateLimitExceeded)


def task_path(task_class: type) -> str:
    """The queue's registry name of a task: `<module>.<name>`, e.g. portal.jobs.deliver_now."""
    return f"{task_class.__module__}.{task_class.__name__}"


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
    @click.option(
        "--retry-delay",
        type=click.FloatRange(min=0.1),
        default=RETRY_DELAY,
        show_default=True,
        help="seconds before a failed job's first retry; doubles for each further retry",
    )
    def run_worker(workers: int | None, retry_delay: float) -> None:
        """Run the background jobs (no-show release, mail delivery) until stopped.

        SIGTERM stops gracefully (running jobs finish), SIGINT at once."""
        jobs: Jobs = current_app.extensions["foyer.jobs"]
        jobs.retry_base_delay = retry_delay
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
