"""/metrics: Prometheus can read it, only with the token, and the figures are the real ones,
across gunicorn workers too. Parsed back with prometheus_client's own text parser."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from portal.db import make_engine, utcnow
from portal.models import Booking, BookingStatus
from portal.models.calendar_sync import CalendarLink, LinkState
from portal.models.job_failures import JobFailure, JobHeartbeat
from portal.schema import upgrade
from tests import factories
from tests.conftest import make_test_app
from tests.gunicorn_server import running_gunicorn

TOKEN = "scrape-me-" + "x" * 30  # noqa: S105 - a test credential


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"metrics_token": TOKEN}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from the exposition text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return samples(response.get_data(as_text=True))


def test_without_a_configured_token_there_is_no_metrics_endpoint(tmp_path):
    app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    assert app.test_client().get("/metrics").status_code == 404
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert app.test_client().get("/metrics", headers=bearer).status_code == 404


def test_a_missing_or_wrong_token_is_refused(tmp_path):
    app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite3'}", metrics_token=TOKEN)
    client = app.test_client()
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "foyer_" not in response.get_data(as_text=True)


def test_scrape_reports_bookings_no_shows_check_ins_jobs_and_sync_errors(client, db):
    person = factories.user(db)
    desks = [factories.desk(db) for _ in range(3)]
    room = factories.room(db)
    start = utcnow().replace(microsecond=0) + timedelta(days=1)

    def book(resource: Any, status: str, checked_in: bool = False) -> None:
        db.add(
            Booking(
                resource_id=resource.id,
                user_id=person.id,
                created_by_id=person.id,
                start_at=start,
                end_at=start + timedelta(hours=1),
                blocked_until=start + timedelta(hours=1),
                status=status,
                checked_in_at=start if checked_in else None,
            )
        )

    book(desks[0], BookingStatus.CHECKED_IN, checked_in=True)
    book(desks[1], BookingStatus.RELEASED)
    book(desks[2], BookingStatus.CONFIRMED)
    book(room, BookingStatus.RELEASED)
    db.add(JobHeartbeat(task_name="deliver_outbox", successes=40, failures=3))
    db.add(
        JobFailure(
            task_name="deliver_now",
            task_path="portal.jobs.deliver_now",
            arguments={},
            error_type="OSError",
        )
    )
    db.add(
        CalendarLink(
            resource=room, provider="caldav", settings={}, state=LinkState.FAILING, failures=4
        )
    )
    db.commit()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200

    before = scrape(client)
    for _ in range(2):
        client.get("/healthz")
    after = scrape(client)

    desk, room_kind = (("kind", "desk"),), (("kind", "room"),)
    assert after[("foyer_bookings_created_total", desk)] == 3
    assert after[("foyer_bookings_created_total", room_kind)] == 1
    assert after[("foyer_no_shows_released_total", desk)] == 1
    assert after[("foyer_no_shows_released_total", room_kind)] == 1
    assert after[("foyer_check_ins_total", desk)] == 1
    assert after[("foyer_check_ins_total", room_kind)] == 0
    assert after[("foyer_job_attempts_failed_total", (("task", "deliver_outbox"),))] == 3
    assert after[("foyer_jobs_dead_letters", ())] == 1
    assert after[("foyer_calendar_links", (("state", "failing"),))] == 1
    assert after[("foyer_calendar_sync_errors", ())] == 4
    assert ("foyer_jobs_queued", (("state", "pending"),)) in after
    # Latency: the histogram counted exactly the two requests between the scrapes.
    ops = (("area", "ops"), ("method", "GET"))
    count = "foyer_http_request_duration_seconds_count"
    assert after[(count, ops)] - before[(count, ops)] == 2
    inf_bucket = ("foyer_http_request_duration_seconds_bucket", (*ops[:1], ("le", "+Inf"), ops[1]))
    assert after[inf_bucket] == after[(count, ops)]


def test_latency_is_summed_across_gunicorn_workers(tmp_path, monkeypatch):
    """Two worker processes: with PROMETHEUS_MULTIPROC_DIR each scrape, whichever worker answers
    it, counts the requests that both served."""
    database = f"sqlite:///{tmp_path / 'metrics.sqlite3'}"
    engine = make_engine(database)
    upgrade(engine)
    engine.dispose()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc))
    with running_gunicorn(
        tmp_path / "instance", workers=2, database_url=database, metrics_token=TOKEN
    ) as base:
        key = ("foyer_http_request_duration_seconds_count", (("area", "ops"), ("method", "GET")))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        # running_gunicorn polled /healthz until the server answered: those count too
        started = samples(requests.get(f"{base}/metrics", headers=auth, timeout=10).text)[key]
        served = 0
        # The kernel hands connections to whichever worker accepts first: keep asking (bounded)
        # until both workers have served requests and so written samples of their own.
        while served < 40 or len(list(multiproc.glob("histogram_*.db"))) < 2:
            assert served < 2000, "one gunicorn worker served every request"
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
            served += 1
        for _ in range(4):  # whichever worker answers, the whole host's count
            answer = requests.get(f"{base}/metrics", headers=auth, timeout=10)
            assert answer.status_code == 200
            assert samples(answer.text)[key] == started + served
