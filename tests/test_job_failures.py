"""A background job that keeps failing waits longer before each retry, then lands in the admin's
dead-letter list with its error; the admin retries it (it comes back if it fails again, and is
resolved once it succeeds) or dismisses it; the admin also sees whether the queue is running.

The unit stories drive the app's real Huey queue by hand (dequeue, execute, read the schedule), so
the backoff is asserted without waiting for it; the consumer stories run a real consumer: the
embedded one in a thread, and a separate `flask --app wsgi run-worker` process on Redis."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from huey import crontab
from sqlalchemy import select, text

from portal.db import session_factories, utcnow
from portal.models import AuditEvent
from portal.models.job_failures import JobFailure, JobFailureState, JobHeartbeat
from portal.schema import upgrade
from portal.services import job_failures
from tests import factories
from tests.conftest import Browser, make_test_app, missing_service
from tests.redis_databases import redis_test_url
from tests.test_mail_and_jobs import ROOT, book_desk, desk_and_person, free_port, wait_until

WORKER_APP = os.environ.get("FOYER_TEST_WORKER_APP", "wsgi")


def _jobs_redis_url() -> str:
    return redis_test_url("job_failures")


class CalendarServer:
    """The outside system a test task talks to: down until the test brings it back."""

    def __init__(self) -> None:
        self.down = True
        self.synced: list[int] = []

    def sync(self, calendar_id: int) -> None:
        if self.down:
            raise ConnectionRefusedError(
                "calendar server at https://sync:hunter2@calendar.example/dav refused"
            )
        self.synced.append(calendar_id)


def add_sync_task(app: Any, server: CalendarServer, retries: int = 3) -> Any:
    """A task like the ones other features add to the queue (declared without backoff)."""
    jobs = app.extensions["foyer.jobs"]

    @jobs.queue.task(retries=retries, retry_delay=5, name="sync_calendar")
    def sync_calendar(calendar_id: int) -> None:
        server.sync(calendar_id)

    return sync_calendar


def naive_utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # Huey's clock


def run_until_it_gives_up(queue: Any) -> list[float]:
    """Run the queued task and each retry as soon as it is due (without waiting). Returns the
    delays Huey scheduled between the attempts, in seconds."""
    delays: list[float] = []
    task, due = queue.dequeue(), None
    while task is not None and len(delays) < 10:
        before = naive_utc_now()
        queue.execute(task, timestamp=due)  # as if the clock had moved on to its due time
        [retry] = queue.scheduled() or [None]
        if retry is None:
            break
        delays.append((retry.eta - before).total_seconds())
        due = retry.eta
        [task] = queue.read_schedule(due)
    return delays


def run_pending(queue: Any) -> int:
    ran = 0
    while (task := queue.dequeue()) is not None:
        queue.execute(task)
        ran += 1
    return ran


def shown(response: Any) -> str:
    """The page as read: non-breaking spaces (which keep badges on one line) are spaces."""
    return response.get_data(as_text=True).replace("&nbsp;", " ")


def failures(db: Any) -> list[JobFailure]:
    db.expire_all()
    return list(db.scalars(select(JobFailure).order_by(JobFailure.id)))


# --- pure parts ------------------------------------------------------------------------------------


def test_each_retry_waits_twice_as_long_up_to_an_hour():
    assert [job_failures.retry_delay(n, 10) for n in (1, 2, 3, 4, 9, 30)] == [
        10,
        20,
        40,
        80,
        2560,
        3600,
    ]


def test_schedules_are_told_in_words():
    described = {
        name: job_failures.describe_schedule(tab).text
        for name, tab in {
            "minute": crontab(),
            "hourly": crontab(minute="7"),
            "nightly": crontab(hour="3", minute="17"),
            "quarter": crontab(minute="*/15"),
            "twice": crontab(hour="9,17", minute="0"),
            "weekly": crontab(day_of_week="1", hour="2", minute="0"),
        }.items()
    }
    assert described == {
        "minute": "every minute",
        "hourly": "hourly at :07",
        "nightly": "daily at 03:17 UTC",
        "quarter": "every 15 minutes",
        "twice": "daily at 09:00 and 17:00 UTC",
        "weekly": "weekly on Monday at 02:00 UTC",
    }
    every_minute = job_failures.describe_schedule(crontab())
    now = utcnow()
    assert not every_minute.overdue(now - timedelta(minutes=6), now)
    assert every_minute.overdue(now - timedelta(minutes=8), now)


def test_the_admin_sees_the_error_without_credentials_and_the_innermost_frames():
    def connect() -> None:
        try:
            raise OSError("first attempt: " + "x" * 20_000)  # a huge earlier part of the trace
        except OSError as cause:
            raise RuntimeError("redis://:s3cret@queue.internal:6379/0 is gone") from cause

    try:
        connect()
    except RuntimeError as exc:
        kind, message, trace = job_failures.describe(exc)
    assert kind == "RuntimeError"
    assert message == "redis://***@queue.internal:6379/0 is gone"
    assert "s3cret" not in trace and len(trace) < job_failures.MAX_TRACEBACK + 100
    assert trace.startswith("… (earlier frames cut)")
    assert trace.rstrip().endswith("RuntimeError: redis://***@queue.internal:6379/0 is gone")


def test_arguments_read_like_a_call():
    assert (
        job_failures.call_text({"args": [42], "kwargs": {"door_group": "lobby-east"}})
        == '42, door_group="lobby-east"'
    )
    assert job_failures.call_text({"args": [], "kwargs": {}}) == ""
    assert job_failures.call_text({"repr": "args=[<Visit 3>]"}) == "args=[<Visit 3>]"


# --- dead letters, driven by hand ------------------------------------------------------------------


def test_a_task_that_always_fails_gives_up_after_growing_delays_and_lands_in_the_list(app, db):
    jobs = app.extensions["foyer.jobs"]
    server = CalendarServer()
    sync_calendar = add_sync_task(app, server)
    started = utcnow()

    sync_calendar(7)
    delays = run_until_it_gives_up(jobs.queue)

    # Huey's retry_delay=5 is fixed; every task gets the queue's doubling instead.
    assert delays == [pytest.approx(d, abs=1) for d in (10, 20, 40)]
    assert jobs.queue.scheduled_count() == 0 and jobs.queue.pending_count() == 0
    [failure] = failures(db)
    assert failure.task_name == "sync_calendar"
    assert failure.task_path == "tests.test_job_failures.sync_calendar"
    assert failure.arguments == {"args": [7], "kwargs": {}} and failure.replayable
    assert failure.state == JobFailureState.DEAD
    assert failure.attempts == 4 and failure.times_failed == 1
    assert failure.error_type == "ConnectionRefusedError"
    assert failure.error_message == ("calendar server at https://***@calendar.example/dav refused")
    assert "in sync\n" in failure.traceback and "hunter2" not in failure.traceback
    assert started <= failure.first_failed_at == failure.last_failed_at <= utcnow()
    beat = db.get(JobHeartbeat, "sync_calendar")
    assert (beat.failures, beat.successes, beat.last_success_at) == (4, 0, None)
    assert server.synced == []


def test_a_failure_that_goes_away_on_a_retry_leaves_nothing_behind(app, db):
    jobs = app.extensions["foyer.jobs"]
    server = CalendarServer()
    sync_calendar = add_sync_task(app, server)

    sync_calendar(3)
    jobs.queue.execute(jobs.queue.dequeue())  # the first attempt fails
    server.down = False
    due = naive_utc_now() + timedelta(minutes=1)
    [retry] = jobs.queue.read_schedule(due)
    jobs.queue.execute(retry, timestamp=due)

    assert server.synced == [3]
    assert failures(db) == []
    beat = db.get(JobHeartbeat, "sync_calendar")
    assert (beat.failures, beat.successes) == (1, 1) and beat.last_success_at is not None


def test_an_admin_retries_it_it_comes_back_while_broken_and_resolves_once_fixed(
    app, client, admin, db
):
    jobs = app.extensions["foyer.jobs"]
    server = CalendarServer()
    add_sync_task(app, server)(7)
    run_until_it_gives_up(jobs.queue)
    [failure] = failures(db)
    client.sign_in("ada@example.com")

    listing = shown(client.get("/admin/jobs/"))
    assert "sync_calendar" in listing and "Gave up</span>" in listing
    assert "ConnectionRefusedError: calendar server at https://***@calendar.example" in listing
    detail = client.get(f"/admin/jobs/{failure.id}").get_data(as_text=True)
    assert "Retry now" in detail and "Dismiss" in detail
    assert "Traceback (most recent call last)" in detail and "hunter2" not in detail
    assert "4 attempts in all" in detail

    response = client.submit(f"/admin/jobs/{failure.id}/retry", htmx=True)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/admin/jobs/{failure.id}"
    [failure] = failures(db)
    assert failure.state == JobFailureState.RETRIED and failure.retried_by == "ada@example.com"
    assert jobs.queue.pending_count() == 1
    page = client.get(f"/admin/jobs/{failure.id}").get_data(as_text=True)
    assert "Queued again. If it fails again it comes back to this list." in page
    assert "Retry now" not in page  # a second click would queue it twice
    assert client.submit(f"/admin/jobs/{failure.id}/retry").status_code == 303
    assert jobs.queue.pending_count() == 1

    # Still broken: after its retries it is back in the list, counted up (one row).
    run_until_it_gives_up(jobs.queue)
    [failure] = failures(db)
    assert failure.state == JobFailureState.DEAD
    assert (failure.times_failed, failure.attempts) == (2, 8)

    # Fixed: the retry runs once and resolves it.
    server.down = False
    client.submit(f"/admin/jobs/{failure.id}/retry")
    assert run_pending(jobs.queue) == 1
    assert server.synced == [7]
    [failure] = failures(db)
    assert failure.state == JobFailureState.RESOLVED and failure.resolved_by == "retry succeeded"
    assert failure.open_key is None
    assert "Nothing needs attention" in client.get("/admin/jobs/").get_data(as_text=True)
    resolved = client.get("/admin/jobs/?state=resolved").get_data(as_text=True)
    assert "sync_calendar" in resolved and "Resolved" in resolved
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.object_type == "job_failures")
    ).all()
    assert actions == ["job.retried", "job.retried", "job.resolved"]


def test_a_periodic_task_failing_every_minute_is_one_row_until_dismissed(app, client, admin, db):
    server = CalendarServer()
    jobs = app.extensions["foyer.jobs"]
    sync_calendar = add_sync_task(app, server, retries=0)
    for _minute in range(3):
        sync_calendar(1)
        run_pending(jobs.queue)
    sync_calendar(2)  # other arguments: another row
    run_pending(jobs.queue)
    by_args = {f.arguments["args"][0]: f for f in failures(db)}
    assert (by_args[1].times_failed, by_args[1].attempts) == (3, 3)
    assert by_args[1].first_failed_at < by_args[1].last_failed_at
    assert by_args[2].times_failed == 1

    client.sign_in("ada@example.com")
    dismissed = client.submit(f"/admin/jobs/{by_args[1].id}/dismiss")
    assert dismissed.status_code == 303
    follow = client.get(dismissed.headers["Location"]).get_data(as_text=True)
    assert "Dismissed: marked resolved." in follow and "Retry now" not in follow
    audit = db.scalar(select(AuditEvent).where(AuditEvent.action == "job.dismissed"))
    assert audit.actor_label == "ada@example.com" and audit.before == {"state": "dead"}
    again = client.submit(f"/admin/jobs/{by_args[1].id}/dismiss")
    assert "already resolved" in client.get(again.headers["Location"]).get_data(as_text=True)

    sync_calendar(1)  # fails again after the dismissal: a new row, the old one stays resolved
    run_pending(jobs.queue)
    states = sorted((f.arguments["args"][0], f.state, f.times_failed) for f in failures(db))
    assert states == [(1, "dead", 1), (1, "resolved", 3), (2, "dead", 1)]


def test_a_task_whose_arguments_are_not_json_is_listed_but_cannot_be_retried(
    app, client, admin, db
):
    jobs = app.extensions["foyer.jobs"]

    @jobs.queue.task(retries=0, name="remind")
    def remind(when: datetime) -> None:
        raise LookupError("nobody to remind")

    remind(datetime(2026, 12, 24, 9, 0))  # Huey pickles it; JSON cannot hold it
    run_pending(jobs.queue)
    [failure] = failures(db)
    assert not failure.replayable
    assert failure.arguments == {"repr": "args=[datetime.datetime(2026, 12, 24, 9, 0)] kwargs={}"}
    client.sign_in("ada@example.com")

    detail = shown(client.get(f"/admin/jobs/{failure.id}"))
    assert "Cannot be retried:" in detail and "its arguments could not be stored" in detail
    assert "Retry now" not in detail and "datetime.datetime(2026, 12, 24, 9, 0)" in detail
    refused = client.submit(f"/admin/jobs/{failure.id}/retry")
    assert "cannot be run again" in shown(client.get(refused.headers["Location"]))
    assert jobs.queue.pending_count() == 0 and failures(db)[0].state == JobFailureState.DEAD


def test_the_list_filters_by_state_and_task_and_answers_htmx_with_rows(client, admin, db):
    now = utcnow()
    for name, state, minutes_ago in [
        ("deliver_now", "dead", 1),
        ("sync_calendar", "dead", 2),
        ("sync_calendar", "retried", 3),
        ("release_no_shows", "resolved", 4),
    ]:
        db.add(
            JobFailure(
                task_name=name,
                task_path=f"portal.jobs.{name}",
                arguments={"args": [], "kwargs": {}},
                open_key=None if state == "resolved" else f"{name}-{state}",
                error_type="ValueError",
                error_message=f"{name} broke",
                last_failed_at=now - timedelta(minutes=minutes_ago),
                state=state,
            )
        )
    db.commit()
    client.sign_in("ada@example.com")

    page = client.get("/admin/jobs/").get_data(as_text=True)
    assert "<html" in page
    assert page.count("broke") == 3 and "release_no_shows broke" not in page  # open ones
    assert page.index("deliver_now broke") < page.index("sync_calendar broke")  # newest first
    assert "Needs attention (3)" in page and "Resolved (1)" in page

    rows = client.get("/admin/jobs/?state=dead&task=sync_calendar", headers={"HX-Request": "true"})
    fragment = shown(rows)
    assert "<html" not in fragment and fragment.count("<tr>") == 1
    assert "sync_calendar broke" in fragment and "Gave up</span>" in fragment
    assert "HX-Request" in rows.headers.get("Vary", "")

    boosted = client.get(
        "/admin/jobs/?state=resolved", headers={"HX-Request": "true", "HX-Boosted": "true"}
    ).get_data(as_text=True)
    assert "<html" in boosted and "release_no_shows broke" in boosted

    # Nonsense in the query string is ignored, never a 500.
    odd = client.get("/admin/jobs/?state=%27;drop&task=" + "x" * 500 + "&page=-4")
    assert odd.status_code == 200 and "No jobs match these filters." in odd.get_data(as_text=True)
    assert client.get("/admin/jobs/999999").status_code == 404
    assert client.submit("/admin/jobs/999999/retry").status_code == 404


def test_the_queue_health_shows_waiting_tasks_and_when_each_periodic_task_last_succeeded(
    app, client, admin, db
):
    jobs = app.extensions["foyer.jobs"]
    jobs.deliver_now()
    jobs.deliver_now()
    jobs.deliver_now.schedule(delay=3600)  # queued now; a worker moves it to the schedule
    client.sign_in("ada@example.com")

    page = shown(client.get("/admin/jobs/"))
    assert stat(page, "Waiting to run now") == "3" and stat(page, "Scheduled") == "0"
    assert stat(page, "Run by") == "Nobody here"  # how tests run: FOYER_JOBS_IN_PROCESS=false
    assert "run <code>flask --app wsgi run-worker</code> on this host" in page
    assert "release_no_shows" in page and "every minute" in page
    assert "extend_series" in page and "hourly at :07" in page
    assert "erase_visitor_data" in page and "daily at 03:17 UTC" in page
    assert "On time" not in page and "Not run yet" in page

    assert run_pending(jobs.queue) == 3  # two deliveries; the delayed one waits in the schedule
    for task in jobs.queue.read_periodic(datetime(2026, 1, 5, 3, 17)):
        if task.name in {"release_no_shows", "erase_visitor_data"}:
            jobs.queue.execute(task)
    page = shown(client.get("/admin/jobs/"))
    assert stat(page, "Waiting to run now") == "0" and stat(page, "Scheduled") == "1"
    assert page.count("On time") == 2 and "just now" in page
    assert "deliver_now" in page and "On request" in page and "2 ok" in page
    beats = job_failures.heartbeats(db)
    assert beats["release_no_shows"].successes == 1 and "extend_series" not in beats

    db.get(JobHeartbeat, "release_no_shows").last_success_at = utcnow() - timedelta(minutes=30)
    db.commit()
    page = shown(client.get("/admin/jobs/"))
    assert page.count("Late") == 1 and page.count("On time") == 1


def stat(page: str, label: str) -> str:
    """The number (or word) shown above a label in the page's row of figures."""
    match = re.search(
        r'<span class="stat-value">([^<]*)</span><span class="stat-label">' + re.escape(label),
        page,
    )
    assert match, f"no figure labelled {label!r}"
    return match.group(1)


def test_a_retry_that_cannot_reach_the_queue_changes_nothing(
    tmp_path, database_url, session_factory, db, admin
):
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    app = make_test_app(
        tmp_path,
        database_url,
        SESSION_FACTORY=session_factory,
        redis_url=nothing_listens,
        RATELIMIT_ENABLED=False,  # the sign-in limit would need that Redis too
    )
    failure = JobFailure(
        task_name="deliver_now",
        task_path="portal.jobs.deliver_now",
        arguments={"args": [], "kwargs": {}},
        open_key="deliver-now",
        error_type="smtplib.SMTPServerDisconnected",
        error_message="gone",
    )
    gone = JobFailure(
        task_name="old_task",
        task_path="portal.jobs.old_task",  # renamed in a later version
        arguments={"args": [], "kwargs": {}},
        open_key="old-task",
        error_type="ValueError",
    )
    db.add_all([failure, gone])
    db.commit()
    app.test_client_class = Browser
    client = app.test_client()
    client.sign_in("ada@example.com")

    page = client.get("/admin/jobs/").get_data(as_text=True)
    assert "Queue unreachable:" in page and "Redis" in page  # the page still works
    response = client.submit(f"/admin/jobs/{failure.id}/retry")
    assert response.status_code == 303
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The job queue cannot be reached right now; nothing was queued." in follow
    db.expire_all()
    assert failure.state == JobFailureState.DEAD and failure.retried_at is None

    detail = client.get(f"/admin/jobs/{gone.id}").get_data(as_text=True)
    assert "Cannot be retried:" in detail and "Retry now" not in detail
    refused = client.submit(f"/admin/jobs/{gone.id}/retry")
    assert "no such task any more" in client.get(refused.headers["Location"]).get_data(as_text=True)
    db.expire_all()
    assert gone.state == JobFailureState.DEAD


def test_only_admins_see_background_jobs(app, employee, db):
    site = factories.site(db, "berlin")
    factories.user(db, email="coord@example.com", coordinator_of=site)
    failure = JobFailure(
        task_name="deliver_now",
        task_path="portal.jobs.deliver_now",
        arguments={"args": [], "kwargs": {}},
        open_key="x",
        error_type="ValueError",
    )
    db.add(failure)
    db.commit()
    urls = ["/admin/jobs/", f"/admin/jobs/{failure.id}"]
    app.test_client_class = Browser
    signed_out = app.test_client()
    assert [signed_out.get(u).status_code for u in urls] == [302, 302]  # to the sign-in page
    for person in ("erin@example.com", "coord@example.com"):
        client = app.test_client()
        client.sign_in(person)
        assert [client.get(u).status_code for u in urls] == [403, 403]
        assert client.submit(f"/admin/jobs/{failure.id}/retry").status_code == 403
        assert client.submit(f"/admin/jobs/{failure.id}/dismiss").status_code == 403
        assert "/admin/jobs/" not in client.get("/", follow_redirects=True).get_data(as_text=True)
    db.expire_all()
    assert failure.state == JobFailureState.DEAD


# --- real consumers ----------------------------------------------------------------------------------


def test_the_embedded_consumer_backs_off_and_dead_letters(tmp_path, empty_database_url):
    app = make_test_app(tmp_path, empty_database_url, jobs_in_process=True)
    engine = app.extensions["foyer.engine"]
    upgrade(engine)
    jobs = app.extensions["foyer.jobs"]
    jobs.retry_base_delay = 0.1  # the consumer's scheduler looks once a second
    server = CalendarServer()
    sync_calendar = add_sync_task(app, server, retries=2)
    _reader, writer = app.extensions["foyer.sessions"]

    def dead_letter() -> JobFailure | None:
        with writer() as session:
            return session.scalar(select(JobFailure))

    try:
        jobs.start_in_process()
        sync_calendar(11)
        failure = wait_until(dead_letter, 20, "the dead letter")
        assert (failure.attempts, failure.state) == (3, JobFailureState.DEAD)
        assert failure.arguments == {"args": [11], "kwargs": {}}
    finally:
        jobs.stop()
        engine.dispose()


@pytest.fixture
def jobs_redis() -> Iterator[str]:
    url = _jobs_redis_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
        client.flushdb()
    except redis.RedisError as exc:
        missing_service("Redis", f"cannot reach {url}: {exc}")
    yield url
    client.flushdb()
    client.close()


def test_a_separate_worker_runs_the_web_apps_task_once_and_dead_letters_a_failing_one(
    fresh_engine, empty_database_url, jobs_redis, tmp_path
):
    _reader, writer = session_factories(fresh_engine)
    with writer() as session, session.begin():
        factories.user(session, name="Ada Admin", email="ada@example.com", admin=True)
        desk, person = desk_and_person(session)
    # The worker was deployed before the migration its jobs need: the visits table is missing.
    with fresh_engine.begin() as conn:
        conn.execute(text("ALTER TABLE visits RENAME TO visits_not_yet"))

    web = make_test_app(tmp_path / "web", empty_database_url, redis_url=jobs_redis)
    env = dict(
        os.environ,
        FOYER_DATABASE_URL=empty_database_url,
        FOYER_INSTANCE_PATH=str(tmp_path / "worker-instance"),
        FOYER_SECRET_KEY="worker-test-secret-key-0123456789",
        FOYER_REDIS_URL=jobs_redis,
    )
    log_path = tmp_path / "worker.log"
    command = [sys.executable, "-m", "flask", "--app", WORKER_APP, "run-worker"]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [*command, "--workers", "2", "--retry-delay", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def dead_letter() -> JobFailure | None:
        with writer() as session:
            return session.scalar(
                select(JobFailure).where(JobFailure.task_name == "check_out_end_of_day")
            )

    def successes(name: str) -> int:
        with writer() as session:
            beat = session.get(JobHeartbeat, name)
            return beat.successes if beat else 0

    def worker_log() -> str:
        return log_path.read_text(errors="replace")[-4000:]

    try:
        try:
            failure = wait_until(dead_letter, 60, "the worker to dead-letter the failing job")
        except AssertionError:
            raise AssertionError(worker_log()) from None
        assert failure.state == JobFailureState.DEAD
        assert failure.attempts == 4 * failure.times_failed  # the task's 3 retries, each time
        assert "visits" in failure.error_message

        # The web app commits a booking; its commit asks the queue for a delivery now.
        _web_reader, web_writer = web.extensions["foyer.sessions"]
        with web_writer() as session, session.begin():
            book_desk(session, session.merge(desk), session.merge(person))
        wait_until(lambda: successes("deliver_now") >= 1, 20, "the worker to run deliver_now")
        time.sleep(1)  # time enough for a second run, had the task been handed out twice
        assert successes("deliver_now") == 1  # once, not once per worker thread or process

        # The migration arrives; the admin retries from the web app, the worker resolves it.
        with fresh_engine.begin() as conn:
            conn.execute(text("ALTER TABLE visits_not_yet RENAME TO visits"))
        web.test_client_class = Browser
        client = web.test_client()
        client.sign_in("ada@example.com")
        assert client.submit(f"/admin/jobs/{failure.id}/retry").status_code == 303

        def resolved() -> bool:
            with writer() as session:
                found = session.get(JobFailure, failure.id)
                return found.state == JobFailureState.RESOLVED

        try:
            wait_until(resolved, 30, "the retried job to succeed in the worker")
        except AssertionError:
            raise AssertionError(worker_log()) from None
        page = client.get("/admin/jobs/").get_data(as_text=True)
        assert "Redis" in page and "separate <code>flask --app wsgi run-worker</code>" in page
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        engine = web.extensions["foyer.engine"]
        engine.dispose()
    assert worker.returncode == 0, worker_log()
