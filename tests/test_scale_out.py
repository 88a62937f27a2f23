"""Two app instances and one worker, as several hosts run Foyer: two gunicorn masters on different
ports (A and B, two workers each, each with its own instance folder) and one `run-worker` process,
sharing one PostgreSQL database and one Redis database, mail going to a real SMTP server.

What a person notices must not depend on which instance answers: a sign-in on A works on B; the
admin's "sign out everywhere" on A ends the session on B at once; the sign-in limit counts the
attempts on A and B together; mail queued by a booking on A is sent once, by the worker; a kiosk
check-in through A is in the host's notices polled on B; a photo uploaded through A opens on B.

The instances sit behind a "reverse proxy" (FOYER_PROXY_COUNT=1): each simulated client sends its
own X-Forwarded-For, so the per-address sign-in limit of one test does not spill into another.
Uploaded files (issue photos, catalog photos, floor plans) live in <instance>/uploads on local
disk: here each instance's `uploads` is a link to one shared folder, as a shared volume mounted
there would be on real hosts."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import Engine, select

from portal.db import make_engine, session_factories, utcnow
from portal.models import OutboxMessage, OutboxStatus
from portal.schema import upgrade
from portal.services import kiosk_devices
from portal.services.audit import Actor
from tests import factories
from tests.conftest import _postgres_database, missing_service
from tests.gunicorn_server import running_gunicorn, running_worker
from tests.issues_helpers import jpeg
from tests.redis_databases import redis_test_url
from tests.test_mail_and_jobs import Inbox, free_port

# The jobs' purpose: one worker process runs this module's queue, as in test_mail_and_jobs.py;
# `--dist loadfile` keeps the two modules from using it at once.
REDIS_URL = redis_test_url("mail_and_jobs")
LOGIN_LIMIT = 5  # sign-in attempts per client address and minute, on all instances together
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
HEADER_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')
SYSTEM = Actor.system("tests")


def csrf_token(page: str) -> str:
    match = TOKEN.search(page) or HEADER_TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def browser(client_address: str) -> requests.Session:
    """One person's browser; its cookies go to both instances (same host, other port)."""
    session = requests.Session()
    session.headers["X-Forwarded-For"] = client_address
    return session


def sign_in(base: str, person: requests.Session, email: str) -> requests.Response:
    page = person.get(base + "/sign-in", timeout=30)
    return person.post(
        base + "/sign-in",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": factories.PASSWORD},
        allow_redirects=False,
        timeout=30,
    )


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.2)


@dataclass
class Cluster:
    a: str  # base URL of instance A
    b: str  # base URL of instance B
    engine: Engine
    inbox: Inbox
    instances: Path
    people: dict[str, int]  # e-mail -> user id
    place: dict[str, int]  # site, floor, desk -> id
    kiosk_code: str

    def logs(self) -> str:
        """The last lines of every process's log, for a failure message."""
        return "\n".join(
            f"--- {path.relative_to(self.instances)}\n{path.read_text(errors='replace')[-2000:]}"
            for path in sorted(self.instances.glob("*/*.log"))
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service("Redis", f"cannot reach {REDIS_URL}: {exc}")
    client.flushdb()
    instances = tmp_path_factory.mktemp("scale-out")
    with ExitStack() as stack:
        stack.callback(client.close)
        stack.callback(client.flushdb)
        database_url = stack.enter_context(_database())  # skips loudly without PostgreSQL
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        upgrade(engine)
        people, place, kiosk_code = _arrange(engine)
        inbox = Inbox(free_port()).start()
        stack.callback(inbox.stop)
        shared = {  # what every instance and the worker must agree on
            "database_url": database_url,
            "redis_url": REDIS_URL,
            "secret_key": "scale-out-" + secrets.token_hex(16),
            "base_url": "https://foyer.test",
            "mail_server": "127.0.0.1",
            "mail_port": str(inbox.port),
            "mail_use_tls": "false",
            "mail_from": "Foyer <foyer@foyer.test>",
            "login_rate_limit": f"{LOGIN_LIMIT} per minute",
            "proxy_count": "1",
        }
        shared_uploads = instances / "shared-uploads"  # the "shared volume"
        shared_uploads.mkdir()
        for name in ("worker", "a", "b"):
            (instances / name).mkdir()
            (instances / name / "uploads").symlink_to(shared_uploads, target_is_directory=True)
        _worker, a, b = enter_together(
            stack,
            running_worker(instances / "worker", threads=2, **shared),
            running_gunicorn(instances / "a", workers=2, **shared),
            running_gunicorn(instances / "b", workers=2, **shared),
        )
        yield Cluster(a, b, engine, inbox, instances, people, place, kiosk_code)


def enter_together(stack: ExitStack, *managers: AbstractContextManager) -> list[Any]:
    """Start several processes at once (each waits for its own readiness); when `stack` closes
    they are stopped at once too."""
    with ThreadPoolExecutor(len(managers)) as pool:
        starting = [pool.submit(manager.__enter__) for manager in managers]
    values, started, failure = [], [], None
    for manager, future in zip(managers, starting, strict=True):
        try:
            values.append(future.result())
            started.append(manager)
        except BaseException as exc:  # noqa: BLE001 - pytest.fail is a BaseException; re-raised
            failure = failure or exc

    def stop_all() -> None:
        with ThreadPoolExecutor(len(managers)) as pool:
            stopping = [pool.submit(manager.__exit__, None, None, None) for manager in started]
        for future in stopping:
            future.result()

    stack.callback(stop_all)
    if failure is not None:
        raise failure
    return values


# A fresh PostgreSQL database for the module, dropped afterwards (conftest's own, per module).
_database = contextmanager(_postgres_database)


def _arrange(engine: Engine) -> tuple[dict[str, int], dict[str, int], str]:
    _reader, writer = session_factories(engine)
    with writer() as session, session.begin():
        berlin = factories.site(session, "berlin", name="Berlin")
        floor = factories.floor(session, berlin)
        desk = factories.desk(session, floor, name="1.01")
        people = [
            factories.user(session, name="Ada Admin", email="ada@example.com", admin=True),
            factories.user(
                session, name="Lena Fischer", email="lena@example.com", home_site=berlin
            ),
            factories.user(session, name="Erik Berg", email="erik@example.com", home_site=berlin),
            factories.user(session, name="Noah Klein", email="noah@example.com", home_site=berlin),
            factories.user(session, name="Rita Roth", email="rita@example.com", home_site=berlin),
            factories.user(
                session,
                name="Jonas Weber",
                email="jonas@example.com",
                department="Facilities",
                home_site=berlin,
            ),
        ]
        _device, code = kiosk_devices.create(session, SYSTEM, berlin, "Main lobby", now=utcnow())
        place = {"site": berlin.id, "floor": floor.id, "desk": desk.id}
        return {p.email: p.id for p in people}, place, code


# ---------------------------------------------------------------------------------------------


def test_a_sign_in_on_one_instance_works_on_the_other(cluster):
    lena = browser("198.51.100.1")
    signed_in = sign_in(cluster.a, lena, "lena@example.com")
    assert signed_in.status_code == 303, signed_in.status_code

    # The same browser (the cookie is per host, not per port) opens her account page on B.
    account = lena.get(cluster.b + "/account/", allow_redirects=False, timeout=30)
    assert account.status_code == 200, (account.status_code, account.headers.get("Location"))
    assert "Lena Fischer" in account.text

    # A form rendered by B posts to A: the CSRF token is tied to the session, not the instance.
    token = csrf_token(account.text)
    saved = lena.post(
        cluster.a + "/account/time-zone",
        data={"csrf_token": token, "time_zone": "Europe/Lisbon"},
        allow_redirects=False,
        timeout=30,
    )
    assert saved.status_code == 303, (saved.status_code, saved.text[:500])
    assert "Europe/Lisbon" in lena.get(cluster.b + "/account/", timeout=30).text


def test_sign_out_everywhere_on_one_instance_ends_the_session_on_the_other_at_once(cluster):
    erik = browser("198.51.100.2")
    assert sign_in(cluster.b, erik, "erik@example.com").status_code == 303
    assert erik.get(cluster.b + "/account/", allow_redirects=False, timeout=30).status_code == 200

    ada = browser("198.51.100.3")
    assert sign_in(cluster.a, ada, "ada@example.com").status_code == 303
    erik_id = cluster.people["erik@example.com"]
    person_page = ada.get(f"{cluster.a}/admin/people/{erik_id}", timeout=30)
    assert person_page.status_code == 200, person_page.status_code
    ended = ada.post(
        f"{cluster.a}/admin/people/{erik_id}/sign-out",
        data={"csrf_token": csrf_token(person_page.text)},
        timeout=30,
    )
    assert ended.status_code == 200
    assert "Erik Berg is signed out everywhere (1 session ended)." in ended.text

    # The very next request on B, no waiting: sent to sign in, told why.
    refused = erik.get(cluster.b + "/account/", allow_redirects=False, timeout=30)
    assert refused.status_code in (302, 303), refused.status_code
    assert refused.headers["Location"].startswith("/sign-in")
    sign_in_page = erik.get(cluster.b + refused.headers["Location"], timeout=30).text
    assert "you were signed out elsewhere" in sign_in_page
    # Nor does A let him back in with the old cookie (it was cleared; a stale copy fails too).
    assert erik.get(cluster.a + "/account/", allow_redirects=False, timeout=30).status_code in (
        302,
        303,
    )


def test_the_sign_in_limit_counts_attempts_on_both_instances_together(cluster):
    guesser = browser("203.0.113.9")
    statuses = []
    for attempt in range(LOGIN_LIMIT + 3):
        base = (cluster.a, cluster.b)[attempt % 2]
        page = guesser.get(base + "/sign-in", timeout=30)
        response = guesser.post(
            base + "/sign-in",
            data={
                "csrf_token": csrf_token(page.text),
                "email": "lena@example.com",
                "password": f"wrong-guess-{attempt}",
            },
            timeout=30,
        )
        statuses.append((base, response.status_code))
    # Per instance, each saw only 3 or 4 attempts: the limit of 5 holds only if counted together.
    assert [s for _, s in statuses] == [422] * LOGIN_LIMIT + [429] * 3
    assert {base for base, s in statuses if s == 429} == {cluster.a, cluster.b}
    # Even the right password is refused from that address for now, on either instance...
    assert sign_in(cluster.b, guesser, "lena@example.com").status_code == 429
    # ...while another address signs in as usual.
    assert sign_in(cluster.b, browser("198.51.100.4"), "lena@example.com").status_code == 303


def test_a_booking_on_one_instance_is_mailed_once_by_the_worker(cluster):
    noah = browser("198.51.100.5")
    assert sign_in(cluster.a, noah, "noah@example.com").status_code == 303
    day = factories.weekday_ahead("Europe/Berlin", days=2)
    form = noah.get(
        f"{cluster.a}/desks/{cluster.place['desk']}/confirm",
        params={"date": day.isoformat(), "slot": "day"},
        timeout=30,
    )
    assert form.status_code == 200, form.status_code
    booked = noah.post(
        f"{cluster.a}/desks/{cluster.place['desk']}/book",
        data={
            "csrf_token": csrf_token(form.text),
            "date": day.isoformat(),
            "slot": "day",
            "idempotency_key": secrets.token_urlsafe(16),
        },
        allow_redirects=False,
        timeout=30,
    )
    assert booked.status_code in (200, 303), (booked.status_code, booked.text[:500])

    def to_noah() -> list:
        return [e for e in cluster.inbox.envelopes if "noah@example.com" in e.rcpt_tos]

    try:
        # Web processes queue the job in Redis and do not send; only the worker does.
        wait_until(lambda: to_noah(), 30, "the booking mail")
    except AssertionError:
        raise AssertionError(cluster.logs()) from None
    time.sleep(2)  # a second delivery (by a web process or a repeated job) would land by now
    [envelope] = to_noah()
    message = cluster.inbox.messages[cluster.inbox.envelopes.index(envelope)]
    assert message["Subject"].startswith("Booked"), message["Subject"]
    _reader, writer = session_factories(cluster.engine)
    with writer() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.to_address == "noah@example.com")
        ).all()
        assert [row.status for row in rows] == [OutboxStatus.SENT]
    # The worker sent it (with a Redis queue, web processes run no jobs: portal.jobs.embedded).
    assert "DeliveryCounts(sent=1" in (cluster.instances / "worker" / "worker.log").read_text()


def test_a_kiosk_check_in_through_one_instance_reaches_the_host_polling_the_other(cluster):
    jonas = browser("198.51.100.6")
    assert sign_in(cluster.b, jonas, "jonas@example.com").status_code == 303
    poll_headers = {"HX-Request": "true"}
    first = jonas.get(cluster.b + "/notices", headers=poll_headers, timeout=30)
    assert first.status_code == 200 and "has arrived" not in first.text
    state = re.search(r'id="notices-state" name="state" value="([^"]+)"', first.text).group(1)
    unchanged = jonas.get(
        cluster.b + "/notices", params={"state": state}, headers=poll_headers, timeout=30
    )
    assert unchanged.status_code == 204  # the header's poll: nothing new yet

    # The lobby tablet, paired through A, checks in a walk-in for Jonas.
    tablet = browser("198.51.100.7")
    welcome = tablet.get(cluster.a + "/kiosk/", timeout=30)
    paired = tablet.post(
        cluster.a + "/kiosk/pair",
        data={"csrf_token": csrf_token(welcome.text), "code": cluster.kiosk_code},
        headers=poll_headers,
        timeout=30,
    )
    assert paired.status_code == 204, (paired.status_code, paired.text[:500])
    home = tablet.get(cluster.a + "/kiosk/", timeout=30)
    token = csrf_token(home.text)  # the paired device's own token
    start = tablet.get(cluster.a + "/kiosk/walk-in", headers=poll_headers, timeout=30)
    key = re.search(r'name="key" value="([^"]*)"', start.text).group(1)
    done = tablet.post(
        cluster.a + "/kiosk/walk-in/details",
        data={
            "csrf_token": token,
            "key": key,
            "name": "Sam Visitor",
            "email": "",
            "company": "Acme",
            "purpose": "Interview",
            "host_id": str(cluster.people["jonas@example.com"]),
        },
        headers=poll_headers,
        timeout=30,
    )
    assert done.status_code == 200 and "Welcome, Sam." in done.text, done.text[:1000]

    # Jonas's next poll on B shows the notice, and the bell's count.
    arrived = jonas.get(
        cluster.b + "/notices", params={"state": state}, headers=poll_headers, timeout=30
    )
    assert arrived.status_code == 200
    assert "Sam Visitor (Acme) has arrived at Berlin and is waiting in the lobby." in arrived.text
    assert re.search(r'id="notices-count"[^>]*>1<', arrived.text)


def test_a_photo_uploaded_through_one_instance_opens_on_the_other(cluster):
    rita = browser("198.51.100.8")
    assert sign_in(cluster.a, rita, "rita@example.com").status_code == 303
    form = rita.get(cluster.a + "/issues/new", timeout=30)
    reported = rita.post(
        cluster.a + "/issues/new",
        data={
            "csrf_token": csrf_token(form.text),
            "category": "furniture",
            "site": cluster.place["site"],
            "floor": cluster.place["floor"],
            "resource": cluster.place["desk"],
            "description": "The chair at this desk has a broken wheel.",
            "priority": "normal",
            "submission_key": secrets.token_hex(8),
        },
        files={"photos": ("chair.jpg", jpeg(), "image/jpeg")},
        allow_redirects=False,
        timeout=30,
    )
    assert reported.status_code == 303, (reported.status_code, reported.text[:1000])

    detail = rita.get(cluster.b + reported.headers["Location"], timeout=30)
    assert detail.status_code == 200
    photo_link = re.search(r"/issues/\d+/photos/\d+", detail.text)
    assert photo_link, "no photo on the issue's page"
    photo = rita.get(cluster.b + photo_link.group(0), timeout=30)
    assert photo.status_code == 200, (photo.status_code, cluster.logs())
    assert photo.headers["Content-Type"] == "image/jpeg" and photo.content[:2] == b"\xff\xd8"
