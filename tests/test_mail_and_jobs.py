"""Booking e-mails reach people exactly once, with a calendar invitation, even when the mail server
is down for a while; without a mail server they wait in the admin's outbox; and the background jobs
really run: in a web process's own consumer thread, and in a Redis-backed worker process.

The mail server is real: aiosmtpd on loopback, capturing what it receives."""

from __future__ import annotations

import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from integrations import ical
from integrations.mail import DeliveryCounts, deliver_due, retry_delay
from portal.config import Settings
from portal.db import session_factories, utcnow
from portal.models import (
    AuditEvent,
    Booking,
    BookingStatus,
    Desk,
    OutboxMessage,
    OutboxStatus,
    Room,
    User,
)
from portal.schema import upgrade
from portal.services import bookings, notifications
from portal.services.audit import Actor
from portal.timezones import format_local, to_utc
from tests import factories
from tests.conftest import make_test_app, missing_service
from tests.redis_databases import redis_test_url

ROOT = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")
SENDER = notifications.Sender(base_url="https://foyer.test", address="foyer@foyer.test")
SYSTEM = Actor.system("tests")
# The app whose `run-worker` command the worker test starts (`flask --app <this>`).
WORKER_APP = os.environ.get("FOYER_TEST_WORKER_APP", "wsgi")


def _jobs_redis_url() -> str:
    return redis_test_url("mail_and_jobs")


# --- a real mail server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """What the SMTP server accepted. Recipients listed in `refuse` get a permanent 550."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.envelopes: list[Any] = []
        self.refuse: set[str] = set()
        self._controller: Controller | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def start(self, login: tuple[str, str] | None = None) -> Inbox:
        options: dict[str, Any] = {}
        if login is not None:  # plain-text AUTH is fine on loopback, so no TLS for it here

            def authenticator(server, session, envelope, mechanism, auth_data):
                given = (auth_data.login.decode(), auth_data.password.decode())
                return AuthResult(success=given == login, handled=False)  # else no reply

            options = {
                "authenticator": authenticator,
                "auth_required": True,
                "auth_require_tls": False,
            }
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=default_policy)  # type: ignore[misc]
            for e in self.envelopes
        ]


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    server = Inbox(free_port()).start()
    yield server
    server.stop()


def mail_settings(tmp_path: Path, port: int, **changes: Any) -> Settings:
    settings = Settings(
        instance_path=tmp_path,
        base_url=SENDER.base_url,
        mail_server="127.0.0.1",
        mail_port=port,
        mail_use_tls=False,
        mail_from="Foyer <foyer@foyer.test>",
        mail_timeout=5,
    )
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"gave up after {timeout}s waiting for {what}")


# --- bookings to write about ----------------------------------------------------------------------


def next_weekday(after: date) -> date:
    day = after + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def office_hours(start_hour: int, end_hour: int) -> tuple[datetime, datetime]:
    """The next weekday in Berlin, within the site's opening hours and the booking horizon."""
    day = next_weekday(datetime.now(BERLIN).date())
    return (
        to_utc(datetime.combine(day, clock(start_hour)), BERLIN),
        to_utc(datetime.combine(day, clock(end_hour)), BERLIN),
    )


def desk_and_person(session: Session, name: str = "1.01") -> tuple[Desk, User]:
    site = factories.site(session, "berlin")
    floor = factories.floor(session, site)
    desk = Desk(site_id=site.id, floor=floor, name=name, qr_code=f"desk-{name}-{floor.id}")
    session.add(desk)
    person = factories.user(session, name="Erin Employee", email="erin@example.com", password=None)
    session.flush()
    return desk, person


def book_desk(session: Session, desk: Desk, person: User, title: str = "") -> Booking:
    start, end = office_hours(9, 17)
    return bookings.book(
        session, SYSTEM, person, resource_id=desk.id, start=start, end=end, title=title
    )


def outbox(session: Session) -> list[OutboxMessage]:
    """Every message, freshly read; the read transaction is ended so delivery can run next."""
    session.expire_all()
    messages = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    session.commit()
    return messages


def calendar_part(message: EmailMessage) -> EmailMessage:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "exactly one text/calendar part"
    return parts[0]  # type: ignore[return-value]


@pytest.fixture
def writer(fresh_engine):
    """Sessions on a real database whose commits and rollbacks are real."""
    _reader, factory = session_factories(fresh_engine)
    factory.configure(info={notifications.SENDER_KEY: SENDER})
    return factory


# --- stories --------------------------------------------------------------------------------------


def test_a_committed_booking_sends_exactly_one_invitation(writer, inbox, tmp_path):
    with writer() as session, session.begin():
        desk, person = desk_and_person(session)
        booking = book_desk(session, desk, person, title="Focus day")
        booking_id = booking.id
    settings = mail_settings(tmp_path, inbox.port)

    with writer() as session:
        assert deliver_due(session, settings, utcnow()) == DeliveryCounts(sent=1)
    with writer() as session:  # a second run, as another worker would do: nothing more
        assert deliver_due(session, settings, utcnow()) == DeliveryCounts()

    assert len(inbox.envelopes) == 1
    envelope = inbox.envelopes[0]
    assert envelope.mail_from == "foyer@foyer.test"
    assert envelope.rcpt_tos == ["erin@example.com"]
    message = inbox.messages[0]
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
        "application/ics",
    ]
    assert message["Subject"].startswith("Booked: 1.01, ")
    assert message["To"] == "Erin Employee <erin@example.com>"
    assert message["Auto-Submitted"] == "auto-generated"
    part = calendar_part(message)
    assert part.get_param("method") == "REQUEST" and part.get_param("charset") == "utf-8"
    with writer() as session:
        [stored] = outbox(session)
        assert stored.status == OutboxStatus.SENT and stored.attempts == 1
        assert stored.sent_at is not None
        # The bytes arrive exactly as built (CRLF and folding intact).
        assert part.get_payload(decode=True) == stored.ics_body.encode("utf-8")
    event = Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")[0]
    assert str(event["UID"]) == f"booking-{booking_id}@foyer.test"
    assert str(event["ORGANIZER"]) == "mailto:foyer@foyer.test"
    assert str(event["ATTENDEE"]) == "mailto:erin@example.com"
    assert str(event["SUMMARY"]) == "Focus day – Desk 1.01"
    assert "Your booking is confirmed." in message.get_body(("plain",)).get_content()


def test_a_rolled_back_booking_sends_nothing(writer, inbox, tmp_path):
    with writer() as session, session.begin():
        desk, person = desk_and_person(session)
    with writer() as session:
        session.begin()
        book_desk(session, session.merge(desk), session.merge(person))
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
        session.rollback()
    with writer() as session:
        assert outbox(session) == []
        assert deliver_due(session, mail_settings(tmp_path, inbox.port), utcnow()).total == 0
    assert inbox.envelopes == []


def test_while_the_mail_server_is_down_mail_waits_and_then_goes_out_once(db, tmp_path):
    desk, person = desk_and_person(db)
    book_desk(db, desk, person)
    db.commit()
    port = free_port()  # nothing listens here yet
    settings = mail_settings(tmp_path, port)
    first = utcnow()

    assert deliver_due(db, settings, first) == DeliveryCounts(retrying=1)
    [message] = outbox(db)
    assert message.status == OutboxStatus.QUEUED and message.attempts == 1
    assert "ConnectionRefusedError" in message.last_error
    assert message.next_attempt_at == first + retry_delay(1) == first + timedelta(minutes=1)

    # Not due yet: nobody hammers the server.
    assert deliver_due(db, settings, first + timedelta(seconds=30)).total == 0

    server = Inbox(port).start()
    try:
        later = first + timedelta(minutes=1, seconds=1)
        assert deliver_due(db, settings, later) == DeliveryCounts(sent=1)
        assert deliver_due(db, settings, later + timedelta(hours=2)).total == 0
    finally:
        server.stop()
    assert len(server.envelopes) == 1
    [message] = outbox(db)
    assert message.status == OutboxStatus.SENT and message.attempts == 2


def test_after_the_last_attempt_it_fails_and_an_admin_can_send_it_again(db, tmp_path):
    desk, person = desk_and_person(db)
    book_desk(db, desk, person)
    db.commit()
    port = free_port()
    settings = mail_settings(tmp_path, port, mail_max_attempts=3)
    now = utcnow()
    for attempt in (1, 2, 3):
        counts = deliver_due(db, settings, now)
        assert counts == (DeliveryCounts(failed=1) if attempt == 3 else DeliveryCounts(retrying=1))
        now += retry_delay(attempt)
    [message] = outbox(db)
    assert message.status == OutboxStatus.FAILED and message.attempts == 3
    assert deliver_due(db, settings, now + timedelta(days=1)).total == 0  # given up

    notifications.requeue(db, SYSTEM, message, now=now, mail_configured=True)
    db.commit()
    server = Inbox(port).start()
    try:
        assert deliver_due(db, settings, now) == DeliveryCounts(sent=1)
    finally:
        server.stop()
    [message] = outbox(db)
    assert message.status == OutboxStatus.SENT and message.attempts == 4
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "mail.requeued")) is not None


def test_a_refused_recipient_fails_at_once_and_the_others_still_go_out(db, inbox, tmp_path):
    desk, person = desk_and_person(db)
    book_desk(db, desk, person)
    other_desk = Desk(site_id=desk.site_id, floor_id=desk.floor_id, name="1.02", qr_code="d-102")
    db.add(other_desk)
    gone = factories.user(db, email="gone@example.com", password=None)
    db.flush()
    book_desk(db, other_desk, gone)
    db.commit()
    inbox.refuse.add("gone@example.com")

    counts = deliver_due(db, mail_settings(tmp_path, inbox.port), utcnow())
    assert counts == DeliveryCounts(sent=1, failed=1)
    by_address = {m.to_address: m for m in outbox(db)}
    assert by_address["erin@example.com"].status == OutboxStatus.SENT
    refused = by_address["gone@example.com"]
    assert refused.status == OutboxStatus.FAILED and refused.attempts == 1
    assert "550" in refused.last_error
    assert [e.rcpt_tos for e in inbox.envelopes] == [["erin@example.com"]]


def test_mail_is_never_sent_in_the_clear_when_starttls_is_required(db, inbox, tmp_path):
    desk, person = desk_and_person(db)
    book_desk(db, desk, person)
    db.commit()
    settings = mail_settings(tmp_path, inbox.port, mail_use_tls=True)  # this server has no TLS
    assert deliver_due(db, settings, utcnow()) == DeliveryCounts(retrying=1)
    assert inbox.envelopes == []
    [message] = outbox(db)
    assert "STARTTLS" in message.last_error and message.status == OutboxStatus.QUEUED


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_it_signs_in_to_the_mail_server_and_a_wrong_password_is_retried(db, tmp_path):
    desk, person = desk_and_person(db)
    book_desk(db, desk, person)
    db.commit()
    server = Inbox(free_port()).start(login=("foyer", "s3cret"))
    try:
        wrong = mail_settings(tmp_path, server.port, mail_username="foyer", mail_password="nope")
        now = utcnow()
        assert deliver_due(db, wrong, now) == DeliveryCounts(retrying=1)
        [message] = outbox(db)
        assert "535" in message.last_error and "nope" not in message.last_error
        right = mail_settings(tmp_path, server.port, mail_username="foyer", mail_password="s3cret")
        assert deliver_due(db, right, now + retry_delay(1)) == DeliveryCounts(sent=1)
    finally:
        server.stop()
    assert len(server.envelopes) == 1


def test_two_workers_at_once_send_every_message_exactly_once(writer, inbox, tmp_path):
    with writer() as session, session.begin():
        session.add_all(
            OutboxMessage(
                to_address=f"person{i}@example.com", subject=f"Message {i}", text_body="Hello"
            )
            for i in range(30)
        )
    settings = mail_settings(tmp_path, inbox.port)
    barrier = threading.Barrier(2)
    results: list[DeliveryCounts | BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            with writer() as session:
                results.append(deliver_due(session, settings, utcnow()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert all(isinstance(r, DeliveryCounts) for r in results), results
    assert sum(r.sent for r in results) == 30  # type: ignore[union-attr]
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(ids) == len(set(ids)) == 30
    with writer() as session:
        assert {(m.status, m.attempts) for m in outbox(session)} == {(OutboxStatus.SENT, 1)}


def test_every_booking_event_carries_the_right_calendar_part(db):
    site = factories.site(db, "berlin")
    floor = factories.floor(db, site)
    desk, person = desk_and_person(db)
    room = Room(site_id=site.id, floor=floor, name="Aurora", capacity=4, qr_code="room-aurora")
    room.needs_approval = True
    db.add(room)
    coordinator = factories.user(db, email="coord@example.com", coordinator_of=site)
    db.flush()
    host = notifications.sender_for(db).host

    booking = book_desk(db, desk, person, title="<script>alert('x')</script>")
    start, _end = office_hours(9, 17)
    bookings.change(db, SYSTEM, person, booking, start=start, end=start + timedelta(hours=3))
    bookings.cancel(db, SYSTEM, booking, reason="Working from home")
    first, second = office_hours(10, 11), office_hours(14, 15)
    pending = bookings.book(db, SYSTEM, person, resource_id=room.id, start=first[0], end=first[1])
    declined = bookings.book(
        db, SYSTEM, person, resource_id=room.id, start=second[0], end=second[1]
    )
    bookings.decide(db, SYSTEM, coordinator, pending, approve=True)
    bookings.decide(db, SYSTEM, coordinator, declined, approve=False, reason="Board meeting")

    seen = []
    for message in outbox(db):
        event = Calendar.from_ical(message.ics_body).walk("VEVENT")[0] if message.ics_body else None
        seen.append(
            (
                message.subject.split(":")[0],
                message.ics_method,
                str(event["STATUS"]) if event else None,
                int(event["SEQUENCE"]) if event else None,
                str(event["UID"]) if event else None,
            )
        )
    desk_uid, room_uid = f"booking-{booking.id}@{host}", f"booking-{pending.id}@{host}"
    assert seen == [
        ("Booked", "REQUEST", "CONFIRMED", 0, desk_uid),
        ("Changed", "REQUEST", "CONFIRMED", 1, desk_uid),
        ("Cancelled", "CANCEL", "CANCELLED", 2, desk_uid),
        ("Waiting for approval", "REQUEST", "TENTATIVE", 0, room_uid),
        ("Waiting for approval", "REQUEST", "TENTATIVE", 0, f"booking-{declined.id}@{host}"),
        ("Approved", "REQUEST", "CONFIRMED", 1, room_uid),
        ("Declined", "CANCEL", "CANCELLED", 1, f"booking-{declined.id}@{host}"),
    ]
    first_mail = outbox(db)[0]
    assert "<script>" not in first_mail.html_body
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in first_mail.html_body
    assert "<script>alert('x')</script>" in first_mail.text_body  # plain text stays plain
    cancelled = outbox(db)[2]
    assert "Working from home" in cancelled.text_body
    assert "Working from home" in str(
        Calendar.from_ical(cancelled.ics_body).walk("VEVENT")[0]["DESCRIPTION"]
    )


def test_a_commit_that_queued_mail_asks_for_delivery_and_a_rollback_does_not(
    tmp_path, empty_database_url
):
    app = make_test_app(tmp_path, empty_database_url)
    engine = app.extensions["foyer.engine"]
    upgrade(engine)
    jobs = app.extensions["foyer.jobs"]
    asked: list[bool] = []
    jobs.deliver_soon = lambda: asked.append(True)
    _reader, writer = app.extensions["foyer.sessions"]
    try:
        with writer() as session, session.begin():
            desk, person = desk_and_person(session)
        assert asked == []  # nothing was queued

        with writer() as session:
            session.begin()
            book_desk(session, session.merge(desk), session.merge(person))
            session.rollback()
        assert asked == []

        with writer() as session, session.begin():
            book_desk(session, session.merge(desk), session.merge(person))
            assert notifications.sender_for(session).base_url == "http://127.0.0.1:5000"
        assert asked == [True]
    finally:
        engine.dispose()


def test_a_booking_still_commits_when_the_job_queue_is_unreachable(tmp_path, empty_database_url):
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    app = make_test_app(tmp_path, empty_database_url, redis_url=nothing_listens)
    engine = app.extensions["foyer.engine"]
    upgrade(engine)
    _reader, writer = app.extensions["foyer.sessions"]
    try:
        with writer() as session, session.begin():
            desk, person = desk_and_person(session)
            book_desk(session, desk, person)  # the commit's delivery request fails quietly
        with writer() as session:
            assert [m.status for m in outbox(session)] == [OutboxStatus.QUEUED]
    finally:
        engine.dispose()


def test_the_app_offers_jobs_the_worker_command_and_the_outbox_page(tmp_path):
    app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert "foyer.jobs" in app.extensions, "create_app must call configure_jobs(app)"
    assert "run-worker" in app.cli.commands, "create_app must call register_job_commands(app)"
    with app.test_request_context():
        from flask import url_for

        assert url_for("admin.outbox.outbox") == "/admin/outbox/"
    app.extensions["foyer.engine"].dispose()


def test_the_embedded_consumer_delivers_right_after_the_commit(tmp_path, empty_database_url, inbox):
    app = make_test_app(
        tmp_path,
        empty_database_url,
        mail_server="127.0.0.1",
        mail_port=inbox.port,
        mail_use_tls=False,
        jobs_in_process=True,
    )
    engine = app.extensions["foyer.engine"]
    upgrade(engine)
    jobs = app.extensions["foyer.jobs"]
    completed: list[str] = []

    @jobs.queue.signal("complete")
    def note(signal_name: str, task: Any) -> None:
        completed.append(task.name)

    try:
        assert jobs.consumer is None
        assert app.test_client().get("/healthz").status_code == 200  # the first request
        assert jobs.consumer is not None
        # The periodic jobs run once at start; the next periodic run is a minute away.
        wait_until(
            lambda: {"release_no_shows", "deliver_outbox"} <= set(completed), 20, "start-up run"
        )
        _reader, writer = app.extensions["foyer.sessions"]
        with writer() as session, session.begin():
            desk, person = desk_and_person(session)
            book_desk(session, desk, person)
        wait_until(lambda: inbox.envelopes, 15, "the invitation")
        # The task signals completion just after the SMTP server has the message.
        wait_until(lambda: "deliver_now" in completed, 15, "the deliver-now task")
        with writer() as session:
            assert [m.status for m in outbox(session)] == [OutboxStatus.SENT]
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


def test_a_redis_backed_worker_process_releases_no_shows_and_delivers(
    fresh_engine, empty_database_url, jobs_redis, inbox, tmp_path
):
    _reader, writer = session_factories(fresh_engine)
    now = utcnow()
    with writer() as session, session.begin():
        desk, person = desk_and_person(session)
        upcoming = book_desk(session, desk, person)  # its "Booked" mail waits in the outbox
        other = Desk(site_id=desk.site_id, floor_id=desk.floor_id, name="1.02", qr_code="d-2")
        session.add(other)
        session.flush()
        no_show = Booking(  # booked yesterday, started an hour ago: check-in closed long since
            created_at=now - timedelta(days=1),
            updated_at=now - timedelta(days=1),
            resource_id=other.id,
            user_id=person.id,
            created_by_id=person.id,
            start_at=now - timedelta(hours=1),
            end_at=now + timedelta(hours=2),
            blocked_until=now + timedelta(hours=2),
            status=BookingStatus.CONFIRMED,
        )
        session.add(no_show)
        session.flush()
        no_show_id, upcoming_id = no_show.id, upcoming.id

    env = dict(
        os.environ,
        FOYER_DATABASE_URL=empty_database_url,
        FOYER_INSTANCE_PATH=str(tmp_path / "worker-instance"),
        FOYER_SECRET_KEY="worker-test-secret-key-0123456789",
        FOYER_REDIS_URL=jobs_redis,
        FOYER_BASE_URL=SENDER.base_url,
        FOYER_MAIL_SERVER="127.0.0.1",
        FOYER_MAIL_PORT=str(inbox.port),
        FOYER_MAIL_USE_TLS="false",
        FOYER_MAIL_FROM="Foyer <foyer@foyer.test>",
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", WORKER_APP, "run-worker", "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def done() -> bool:
            with writer() as session:
                released = session.get(Booking, no_show_id).status == BookingStatus.RELEASED
                statuses = [m.status for m in outbox(session)]
            return released and statuses == [OutboxStatus.SENT] * 2 and len(inbox.envelopes) == 2

        try:
            wait_until(done, 60, "the worker to release the no-show and send both e-mails")
        except AssertionError:
            raise AssertionError(log_path.read_text(errors="replace")[-4000:]) from None
        time.sleep(1)  # more periodic runs would find nothing more to send
        assert len(inbox.envelopes) == 2
        methods = {
            m["Subject"].split(":")[0]: calendar_part(m).get_param("method") for m in inbox.messages
        }
        assert methods == {"Booked": "REQUEST", "Released (no check-in)": "CANCEL"}
        with writer() as session:
            assert session.get(Booking, upcoming_id).status == BookingStatus.CONFIRMED
    finally:
        worker.send_signal(signal.SIGTERM)  # graceful: running jobs finish
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
    assert worker.returncode == 0, log_path.read_text(errors="replace")[-4000:]


# --- the admin's outbox ---------------------------------------------------------------------------


def test_without_a_mail_server_mail_is_kept_and_readable_in_the_admin_outbox(
    app, client, admin, db
):
    desk, person = desk_and_person(db)
    book_desk(db, desk, person, title="<script>alert('x')</script>")
    admin_user = db.get(User, admin.id)
    admin_user.time_zone = "America/New_York"
    db.commit()
    settings = app.extensions["foyer.settings"]
    assert not settings.mail_server  # the embedded default

    assert deliver_due(db, settings, utcnow()) == DeliveryCounts(kept=1)
    [message] = outbox(db)
    assert message.status == OutboxStatus.KEPT and message.attempts == 0

    client.sign_in("ada@example.com")
    page = client.get("/admin/outbox/").get_data(as_text=True)
    assert "No mail server:" in page and "Kept" in page
    assert "erin@example.com" in page and message.subject in page
    # Times in the viewer's zone, named.
    assert format_local(message.created_at, ZoneInfo("America/New_York")) in page

    detail = client.get(f"/admin/outbox/{message.id}").get_data(as_text=True)
    assert "Hello Erin Employee," in detail
    assert "BEGIN:VCALENDAR" in detail and "METHOD:REQUEST" in detail
    assert "&lt;script&gt;alert(" in detail and "<script>alert(" not in detail  # the title
    assert "Send now" not in detail  # nothing to send it with

    ics = client.get(f"/admin/outbox/{message.id}/invite.ics")
    assert ics.mimetype == "text/calendar"
    assert ics.get_data() == message.ics_body.encode("utf-8")

    refused = client.submit(f"/admin/outbox/{message.id}/retry")
    assert refused.status_code == 303
    follow = client.get(refused.headers["Location"]).get_data(as_text=True)
    assert "No mail server is configured" in follow
    assert outbox(db)[0].status == OutboxStatus.KEPT


def test_the_outbox_list_answers_htmx_with_rows_and_boosted_requests_with_the_page(
    client, admin, db
):
    db.add(OutboxMessage(to_address="a@example.com", subject="First", text_body="x"))
    db.add(
        OutboxMessage(
            to_address="b@example.com",
            subject="Second",
            text_body="x",
            status=OutboxStatus.FAILED,
            attempts=8,
            last_error="SMTPServerDisconnected: gone",
        )
    )
    db.commit()
    client.sign_in("ada@example.com")

    page = client.get("/admin/outbox/?status=failed").get_data(as_text=True)
    assert "<html" in page and "Second" in page and "First" not in page
    assert "SMTPServerDisconnected: gone" in page

    rows = client.get("/admin/outbox/?status=failed", headers={"HX-Request": "true"})
    fragment = rows.get_data(as_text=True)
    assert "<html" not in fragment and "<tr>" in fragment and "Second" in fragment
    assert "HX-Request" in rows.headers.get("Vary", "")

    boosted = client.get(
        "/admin/outbox/?status=failed", headers={"HX-Request": "true", "HX-Boosted": "true"}
    ).get_data(as_text=True)
    assert "<html" in boosted and "Second" in boosted


def test_an_admin_sends_a_failed_message_again_and_it_is_delivered(
    client, admin, db, inbox, tmp_path
):
    message = OutboxMessage(
        to_address="erin@example.com",
        subject="Booked: 1.01",
        text_body="Hello",
        status=OutboxStatus.FAILED,
        attempts=8,
        last_error="SMTPServerDisconnected: Connection unexpectedly closed",
    )
    db.add(message)
    db.commit()
    client.sign_in("ada@example.com")
    assert "Send again now" in client.get(f"/admin/outbox/{message.id}").get_data(as_text=True)

    response = client.submit(f"/admin/outbox/{message.id}/retry", htmx=True)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/admin/outbox/{message.id}"
    [queued] = outbox(db)
    assert queued.status == OutboxStatus.QUEUED and queued.attempts == 8

    assert deliver_due(db, mail_settings(tmp_path, inbox.port), utcnow()).sent == 1
    [sent] = outbox(db)
    assert sent.status == OutboxStatus.SENT and sent.attempts == 9
    assert len(inbox.envelopes) == 1
    audit = db.scalar(select(AuditEvent).where(AuditEvent.action == "mail.requeued"))
    assert audit.actor_label == "ada@example.com"


def test_only_admins_see_the_outbox(client, employee, db):
    db.add(OutboxMessage(to_address="a@example.com", subject="Private", text_body="x"))
    db.commit()
    message_id = db.scalar(select(OutboxMessage.id))
    assert client.get("/admin/outbox/").status_code == 302  # signed out: to the sign-in page
    client.sign_in("erin@example.com")
    assert client.get("/admin/outbox/").status_code == 403
    assert client.get(f"/admin/outbox/{message_id}").status_code == 403
    assert client.submit(f"/admin/outbox/{message_id}/retry").status_code == 403


def test_retries_back_off_up_to_an_hour():
    assert [retry_delay(n) for n in (1, 2, 3, 4, 7, 8, 20)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8, 60, 60, 60)
    ]


def test_an_invitation_uid_matches_the_feed_uid():
    # The later calendar feed builds UIDs with the same function, so clients see one event.
    assert ical.booking_uid(7, SENDER.host) == "booking-7@foyer.test"
    assert datetime.now(UTC).tzinfo is UTC
