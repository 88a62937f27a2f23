"""Faults under load, against 2 gunicorn instances + 1 worker on a private PostgreSQL and Redis
(bench/cluster.py): `make bench-faults`, or `python -m bench.faults [--only postgres,worker,redis]`.

Each scenario runs under a moderate load (bench/load_mix.py's people, fewer of them) and prints
PASS or FAIL with its figures; the exit code is 1 when any scenario fails.

a) postgres: `pg_ctl restart -m fast` in the middle. PASS when both instances answer /readyz again
   within 10 s of the restart's start, no request outlives its client timeout (nothing hangs), no
   request fails once the database is back (the pool's pre-ping throws away dead connections),
   and every booking a client was shown as confirmed is in the database afterwards.
b) worker: stop the worker, book rooms over HTTP until 200 new mails wait in the outbox, start the
   worker with a slow SMTP server, SIGKILL it part-way through, start it again. PASS when every
   outbox message made in the scenario reaches the SMTP server exactly once (by Message-ID), with
   the lease of the message the killed worker held fast-forwarded (it would expire by itself
   after 10 minutes; integrations/mail.py).
c) redis: stop Redis under load and record what keeps working and how the rest answers, what the
   sign-in rate limit does, then start Redis again and show recovery, including the mail of a
   booking made while Redis was down. PASS when no page or booking answered 5xx during the
   outage and everything answers as before once Redis is back.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from bench.cluster import Cluster, running_cluster
from bench.html_forms import form_posting_to
from bench.load_mix import (
    CLIENT_TIMEOUT,
    ROOM_SLOT,
    Browser,
    Recorder,
    Sample,
    StepFailed,
    coming_weekdays,
    error_summary,
    prepare_mix,
)

LOAD_EMPLOYEES = 6  # "moderate": a third of the load mix's people
RECOVERY_TARGET_S = 10.0
MAIL_BATCH = 200
MESSAGE_ID = re.compile(r"<outbox-(\d+)-")


@dataclass
class Outcome:
    name: str
    passed: bool
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)
        print(f"  {text}", flush=True)


class Load:
    """The moderate background load of a scenario: started and stopped around it."""

    def __init__(self, cluster: Cluster, allow_cancel: bool = True) -> None:
        self.stop = threading.Event()
        self.recorder = Recorder()
        self.mix = prepare_mix(
            cluster,
            self.stop,
            self.recorder,
            employees=LOAD_EMPLOYEES,
            allow_cancel=allow_cancel,
        )
        self.threads = self.mix.threads()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(CLIENT_TIMEOUT + 5)


def wait_until(check: Callable[[], bool], seconds: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


# --- a) PostgreSQL restart -------------------------------------------------------------------


class ReadyProbe(threading.Thread):
    """GET /readyz on every instance, every 0.1 s: when did each answer 200 again?"""

    def __init__(self, bases: list[str]) -> None:
        super().__init__(daemon=True)
        self.bases = bases
        self.stop = threading.Event()
        self.log: list[tuple[float, str, int]] = []  # (monotonic, base, status; 0 = no answer)

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            for base in self.bases:
                try:
                    status = session.get(base + "/readyz", timeout=CLIENT_TIMEOUT).status_code
                except requests.RequestException:
                    status = 0
                self.log.append((time.monotonic(), base, status))
            self.stop.wait(0.1)

    def back_after(self, since: float) -> float | None:
        """Seconds from `since` until every instance answered 200 after its last failure."""
        last_ok_start: dict[str, float] = {}
        for at, base, status in self.log:
            if at < since:
                continue
            if status != 200:
                last_ok_start.pop(base, None)
            else:
                last_ok_start.setdefault(base, at)
        if set(last_ok_start) != set(self.bases):
            return None
        return max(last_ok_start.values()) - since


def postgres_restart(cluster: Cluster) -> Outcome:
    outcome = Outcome("a) PostgreSQL restart under load", True)
    print(f"\n=== {outcome.name}", flush=True)
    probe = ReadyProbe(cluster.bases)
    with Load(cluster, allow_cancel=False) as load:
        probe.start()
        time.sleep(20)  # the load settles (sign-ins done)
        restart_at = time.monotonic()
        cluster.postgres.restart("fast")
        restart_s = time.monotonic() - restart_at
        time.sleep(25)  # the load goes on against the restarted database
    probe.stop.set()
    probe.join(5)
    back = probe.back_after(restart_at)
    samples = list(load.recorder.samples)
    failed = [s for s in samples if s.error]
    hung = [s for s in samples if s.status == 0 and "Timeout" in s.error]
    slowest = max((s.ms for s in samples), default=0.0)
    outcome.say(
        f"pg_ctl restart -m fast took {restart_s:.1f} s; both instances ready again "
        f"{back:.1f} s after it began"
        if back is not None
        else "instances never ready again"
    )
    if back is None or back > RECOVERY_TARGET_S:
        outcome.passed = False
    recovered_at = restart_at + (back or 0)
    late = [s for s in failed if s.started > recovered_at + 1.0]
    window = [s for s in failed if s.started <= recovered_at + 1.0]
    outcome.say(
        f"load: {len(samples)} requests, {len(window)} failed while the database restarted "
        f"({statuses(window)}), {len(late)} failed after it was back"
    )
    if failed:
        first = min(s.started for s in failed) - restart_at
        last = max(s.started + s.ms / 1000 for s in failed) - restart_at
        outcome.say(f"failures from {first:+.1f} s to {last:+.1f} s around the restart")
        print(error_summary(failed))
    outcome.say(
        f"slowest request {slowest / 1000:.1f} s (client timeout {CLIENT_TIMEOUT:.0f} s); "
        f"{len(hung)} timed out"
    )
    if late or hung:
        outcome.passed = False
    tracebacks = cluster.app_errors()
    if tracebacks:
        outcome.say(f"{len(tracebacks)} tracebacks in the app logs:")
        for line in tracebacks[:8]:
            print(f"      {line}")
    missing = missing_bookings(cluster, load.recorder)
    confirmed = len(load.recorder.confirmed_desks) + len(load.recorder.confirmed_rooms)
    outcome.say(
        f"{confirmed} bookings shown to clients as confirmed; {len(missing)} missing afterwards"
    )
    for item in missing[:10]:
        outcome.say(f"  missing: {item}")
    if missing:
        outcome.passed = False
    return outcome


def statuses(samples: list[Sample]) -> str:
    counts: dict[str, int] = {}
    for sample in samples:
        key = str(sample.status) if sample.status else sample.error
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} x {key}" for key, n in sorted(counts.items())) or "none"


def missing_bookings(cluster: Cluster, recorder: Recorder) -> list[str]:
    holding = ("pending", "confirmed", "checked_in")
    missing = []
    for email, desk, day in recorder.confirmed_desks:
        rows = cluster.postgres.query(
            """SELECT b.id FROM bookings b JOIN users u ON u.id = b.user_id
               JOIN resources r ON r.id = b.resource_id JOIN sites s ON s.id = r.site_id
               WHERE u.email = %s AND b.resource_id = %s AND b.status = ANY(%s)
                 AND (b.start_at AT TIME ZONE s.time_zone)::date = %s::date""",
            email,
            desk,
            list(holding),
            day,
        )
        if not rows:
            missing.append(f"desk {desk} on {day} for {email}")
    for booking_id in recorder.confirmed_rooms:
        rows = cluster.postgres.query(
            "SELECT status FROM bookings WHERE id = %s AND status = ANY(%s)",
            booking_id,
            list(holding),
        )
        if not rows:
            missing.append(f"room booking {booking_id}")
    return missing


# --- b) worker killed in the middle of jobs ----------------------------------------------------


def outbox_since(cluster: Cluster, since_id: int) -> list[tuple[int, str]]:
    return [
        (row[0], row[1])
        for row in cluster.postgres.query(
            "SELECT id, status FROM outbox_messages WHERE id > %s ORDER BY id", since_id
        )
    ]


def deliveries(cluster: Cluster, since_id: int) -> dict[int, int]:
    """Outbox id -> how many times the SMTP server accepted it."""
    counts: dict[int, int] = {}
    with cluster.mail.lock:
        for message_id, n in cluster.mail.message_ids.items():
            found = MESSAGE_ID.match(message_id)
            if found and int(found.group(1)) > since_id:
                counts[int(found.group(1))] = n
    return counts


def book_rooms_until(cluster: Cluster, since_id: int, mails: int, people: list[str]) -> float:
    """Book meeting rooms over HTTP from several people at once until `mails` new messages wait
    in the outbox; seconds taken."""
    started = time.monotonic()
    done = threading.Event()
    recorder = Recorder()

    def person(email: str, seed: int) -> None:
        import random

        rng = random.Random(seed)
        browser = Browser(cluster.bases, recorder, f"10.200.{seed}.9")
        browser.sign_in(email)
        days = coming_weekdays(time_today(), 8)
        while not done.is_set():
            try:
                timeline = browser.get(f"/rooms/timeline?date={rng.choice(days)}").text
                slots = ROOM_SLOT.findall(timeline)
                if not slots:
                    continue
                import html

                path = html.unescape(rng.choice(slots))
                form = form_posting_to(browser.get(path).text, "/book")
                if form is not None:
                    browser.post(form.action, form.fields, refusals=(409, 422))
            except StepFailed:
                time.sleep(0.5)

    threads = [
        threading.Thread(target=person, args=(email, n), daemon=True)
        for n, email in enumerate(people)
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(outbox_since(cluster, since_id)) >= mails, 600, 1.0)
    done.set()
    for thread in threads:
        thread.join(CLIENT_TIMEOUT + 5)
    errors = recorder.errors()
    if errors:
        print(error_summary(errors))
    return time.monotonic() - started


def time_today():  # noqa: ANN201
    from datetime import date

    return date.today()


def worker_killed(cluster: Cluster) -> Outcome:
    outcome = Outcome("b) worker SIGKILLed in the middle of jobs", True)
    print(f"\n=== {outcome.name}", flush=True)
    with Load(cluster) as load:
        cluster.stop_worker()
        since_id = cluster.postgres.query("SELECT coalesce(max(id), 0) FROM outbox_messages")[0][0]
        people = [
            row[0]
            for row in cluster.postgres.query(
                """SELECT email FROM users WHERE password_hash IS NOT NULL AND active
                   ORDER BY id DESC LIMIT 6"""
            )
        ]
        took = book_rooms_until(cluster, since_id, MAIL_BATCH, people)
        queued = len(outbox_since(cluster, since_id))
        outcome.say(f"worker stopped; {queued} mails queued by bookings over HTTP in {took:.0f} s")
        cluster.mail.delay = 0.05  # a slow SMTP server: the delivery run takes a while
        cluster.start_worker()
        wait_until(lambda: len(deliveries(cluster, since_id)) >= 40, 120, 0.05)
        cluster.kill_worker()
        at_kill = len(deliveries(cluster, since_id))
        outcome.say(f"SIGKILL after {at_kill} mails had reached the SMTP server")
        cluster.mail.delay = 0.0
        restarted = time.monotonic()
        cluster.start_worker()

        def all_sent_but_leased() -> bool:
            rows = cluster.postgres.query(
                """SELECT count(*) FROM outbox_messages WHERE id > %s AND status = 'queued'
                   AND next_attempt_at < now() + interval '5 minutes'""",
                since_id,
            )
            return rows[0][0] == 0

        wait_until(all_sent_but_leased, 150, 0.2)
        drained_s = time.monotonic() - restarted
        after = len(deliveries(cluster, since_id))
        leased = cluster.postgres.query(
            """SELECT id FROM outbox_messages WHERE id > %s AND status = 'queued'
               AND next_attempt_at >= now() + interval '5 minutes'""",
            since_id,
        )
        with cluster.mail.lock:
            times = [t for t in cluster.mail.accepted_at if t >= restarted]
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        outcome.say(
            f"restarted worker (start-up included) delivered {after - at_kill} more in "
            f"{drained_s:.1f} s, {rate:.0f} mails/s once running; "
            f"{len(leased)} held by the killed worker's 10-minute lease"
        )
        in_flight = {row[0] for row in leased}
        if leased:
            # What 10 minutes of waiting does: the lease expires and the next run takes it.
            cluster.postgres.query(
                "UPDATE outbox_messages SET next_attempt_at = now() WHERE id = ANY(%s)",
                [row[0] for row in leased],
            )
            wait_until(all_sent_but_leased_and_due(cluster, since_id), 120, 0.5)
    expected = outbox_since(cluster, since_id)
    # the load may have queued a few more in its last moments: let the worker finish them
    wait_until(lambda: all(status == "sent" for _id, status in outbox_since(cluster, since_id)), 90)
    expected = outbox_since(cluster, since_id)
    seen = deliveries(cluster, since_id)
    never = [mid for mid, _status in expected if mid not in seen]
    twice = {mid: n for mid, n in seen.items() if n > 1}
    not_sent = [mid for mid, status in expected if status != "sent"]
    outcome.say(
        f"{len(expected)} outbox messages made in the scenario; SMTP received {len(seen)} of "
        f"them, {len(never)} never, {len(twice)} more than once; {len(not_sent)} not marked sent"
    )
    if twice:
        outcome.say(f"  delivered twice: {sorted(twice.items())[:10]}")
    # SMTP has no two-phase commit: a message the server accepted just before the SIGKILL, and
    # that the worker could not record as sent, goes again when its lease expires (with the same
    # Message-ID, so receiving servers and clients can tell). Only those may come twice.
    unexplained = {mid: n for mid, n in twice.items() if mid not in in_flight}
    if twice and not unexplained:
        outcome.say(
            f"  known limit: {len(twice)} message(s) in flight at the SIGKILL delivered twice "
            "(the SMTP server had accepted, the worker died before recording it)"
        )
    if never or unexplained or not_sent:
        outcome.passed = False
    errors = load.recorder.errors()
    outcome.say(
        f"load during the scenario: {len(load.recorder.samples)} requests, {len(errors)} errors"
    )
    if errors:
        print(error_summary(errors))
        outcome.passed = False
    return outcome


def all_sent_but_leased_and_due(cluster: Cluster, since_id: int) -> Callable[[], bool]:
    def check() -> bool:
        rows = cluster.postgres.query(
            "SELECT count(*) FROM outbox_messages WHERE id > %s AND status = 'queued'", since_id
        )
        return rows[0][0] == 0

    return check


# --- c) Redis stopped --------------------------------------------------------------------------


@dataclass
class Probe:
    label: str
    status: int
    note: str
    ms: float


TITLE = re.compile(r"<title>([^<]*)</title>")


def describe(response: requests.Response) -> str:
    if response.status_code == 429:
        return "429 " + (
            TITLE.search(response.text).group(1) if TITLE.search(response.text) else ""
        )
    title = TITLE.search(response.text)
    if title:
        return title.group(1).strip()
    return response.text[:60].replace("\n", " ")


def probe(label: str, call: Callable[[], requests.Response]) -> Probe:
    started = time.monotonic()
    try:
        response = call()
    except (requests.RequestException, StepFailed) as exc:
        return Probe(label, 0, type(exc).__name__, (time.monotonic() - started) * 1000)
    return Probe(
        label, response.status_code, describe(response), (time.monotonic() - started) * 1000
    )


class Observer:
    """An employee, a kiosk and a calendar client who try each kind of thing once per round."""

    def __init__(self, cluster: Cluster, load: Load) -> None:
        self.cluster = cluster
        self.base = cluster.bases[0]
        from bench.load_mix import employees_of

        self.employee = Browser(cluster.bases, Recorder(), "10.222.0.1")
        # someone outside the load, so the load's own bookings never stand in the way
        email = employees_of(cluster, 40)[-1][0]
        self.email = email
        self.employee.sign_in(email)
        self.coordinator = Browser(cluster.bases, Recorder(), "10.222.0.3")
        self.coordinator.sign_in("jonas.weber@example.com")
        self.admin = Browser(cluster.bases, Recorder(), "10.222.0.4")
        self.admin.sign_in("amara.okafor@example.com")
        self.feed = load.mix.feed_tokens[0]
        self.kiosk = Browser(cluster.bases, Recorder(), "10.222.0.2")
        self.kiosk.session.cookies.update(load.mix.kiosk_cookies["berlin"])
        self.day_index = 0
        self.booked: list[tuple[str, int, str]] = []

    def round(self, tag: str) -> list[Probe]:
        s = requests.Session()
        out = [
            probe("GET /healthz", lambda: s.get(self.base + "/healthz", timeout=CLIENT_TIMEOUT)),
            probe("GET /readyz", lambda: s.get(self.base + "/readyz", timeout=CLIENT_TIMEOUT)),
            probe("GET /desks/ (signed in)", lambda: self.raw("GET", "/desks/")),
            self.book_desk(),
            probe("GET /my-day (signed in)", lambda: self.raw("GET", "/my-day")),
            probe("GET /inbox/ (coordinator)", self.inbox_as_coordinator),
            self.sign_in_fresh(tag),
            probe(
                "GET feed .ics",
                lambda: s.get(f"{self.base}/feeds/{self.feed}.ics", timeout=CLIENT_TIMEOUT),
            ),
            self.kiosk_step(),
            probe("GET /admin/jobs/ (admin)", self.admin_jobs),
        ]
        return out

    def raw(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.employee.session.request(
            method, self.base + path, timeout=CLIENT_TIMEOUT, allow_redirects=False, **kwargs
        )

    def book_desk(self) -> Probe:
        from datetime import datetime

        from bench.load_mix import DESK_LINK, ZONES

        days = coming_weekdays(datetime.now(ZONES["berlin"]).date(), 10)
        started = time.monotonic()
        try:
            # The demo already gives people desks on some days, and one desk a day is the rule:
            # the next day when this person has one.
            for _ in days:
                day = days[self.day_index % len(days)].isoformat()
                self.day_index += 1
                plan = self.raw("GET", f"/desks/?date={day}").text
                desk = DESK_LINK.findall(plan)[0]
                page = self.raw("GET", f"/desks/{desk}/confirm?date={day}&slot=day").text
                form = form_posting_to(page, f"/desks/{desk}/book")
                assert form is not None
                answer = self.raw("POST", form.action, data=form.fields)
                if answer.status_code != 422:
                    break
        except requests.RequestException as exc:
            return Probe("POST /desks/<id>/book", 0, type(exc).__name__, 0)
        note = describe(answer)
        if answer.status_code == 303:
            shown = self.raw("GET", answer.headers["Location"]).text
            note = "booked, shown as yours" if "is yours" in shown else "303 but not shown"
            self.booked.append((self.email, int(desk), day))
        return Probe(
            "POST /desks/<id>/book", answer.status_code, note, (time.monotonic() - started) * 1000
        )

    def inbox_as_coordinator(self) -> requests.Response:
        return self.coordinator.session.get(self.base + "/inbox/", timeout=CLIENT_TIMEOUT)

    def admin_jobs(self) -> requests.Response:
        return self.admin.session.get(self.base + "/admin/jobs/", timeout=CLIENT_TIMEOUT)

    def sign_in_fresh(self, tag: str) -> Probe:
        browser = requests.Session()
        browser.headers["X-Forwarded-For"] = (
            f"10.225.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
        )
        started = time.monotonic()
        try:
            page = browser.get(self.base + "/sign-in", timeout=CLIENT_TIMEOUT).text
            form = form_posting_to(page, "/sign-in")
            assert form is not None
            answer = browser.post(
                self.base + "/sign-in",
                data={**form.fields, "email": self.email, "password": "foyer-demo"},
                timeout=CLIENT_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return Probe("POST /sign-in", 0, type(exc).__name__, 0)
        note = (
            f"signed in -> {answer.headers.get('Location')}"
            if answer.status_code == 303
            else describe(answer)
        )
        return Probe("POST /sign-in", answer.status_code, note, (time.monotonic() - started) * 1000)

    def kiosk_step(self) -> Probe:
        started = time.monotonic()
        try:
            home = self.kiosk.session.get(self.base + "/kiosk/", timeout=CLIENT_TIMEOUT)
            token = re.search(r'"X-CSRFToken": "([^"]+)"', home.text)
            start = self.kiosk.session.get(
                self.base + "/kiosk/walk-in", headers={"HX-Request": "true"}, timeout=CLIENT_TIMEOUT
            )
            form = form_posting_to(start.text, "/kiosk/walk-in/details")
            if form is None:
                return Probe("kiosk walk-in (details step)", start.status_code, describe(start), 0)
            hosts = self.kiosk.session.get(
                self.base + "/kiosk/hosts",
                params={"host_query": "we"},
                headers={"HX-Request": "true"},
                timeout=CLIENT_TIMEOUT,
            )
            if hosts.status_code != 200:
                return Probe("GET /kiosk/hosts", hosts.status_code, describe(hosts), 0)
            host = re.findall(r'name="host_id" value="(\d+)"', hosts.text)[0]
            answer = self.kiosk.session.post(
                self.base + "/kiosk/walk-in/details",
                data={**form.fields, "name": "Redis Probe", "company": "Probe AG",
                      "email": "", "purpose": "Meeting", "host_id": host},
                headers={"HX-Request": "true", "X-CSRFToken": token.group(1) if token else ""},
                timeout=CLIENT_TIMEOUT,
            )  # fmt: skip
        except requests.RequestException as exc:
            return Probe("kiosk walk-in (details step)", 0, type(exc).__name__, 0)
        note = "agreement screen shown" if "walk-in/agreement" in answer.text else describe(answer)
        return Probe(
            "kiosk walk-in (host search + details)",
            answer.status_code,
            note,
            (time.monotonic() - started) * 1000,
        )


def sign_in_limit(cluster: Cluster, attempts: int = 50) -> tuple[int, int]:
    """Wrong-password sign-ins from one address (different unknown e-mails, so only the
    per-address limit counts), alternating between the instances: (allowed, refused with 429)."""
    address = f"10.226.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    allowed = refused = 0
    sessions = [requests.Session() for _ in cluster.bases]
    for n in range(attempts):
        base = cluster.bases[n % len(cluster.bases)]
        session = sessions[n % len(sessions)]
        session.headers["X-Forwarded-For"] = address
        page = session.get(base + "/sign-in", timeout=CLIENT_TIMEOUT).text
        form = form_posting_to(page, "/sign-in")
        fields = form.fields if form else {}
        answer = session.post(
            base + "/sign-in",
            data={**fields, "email": f"nobody{n}-{secrets.token_hex(3)}@example.com",
                  "password": "wrong-password"},
            timeout=CLIENT_TIMEOUT,
            allow_redirects=False,
        )  # fmt: skip
        if answer.status_code == 429:
            refused += 1
        elif answer.status_code < 500:
            allowed += 1
    return allowed, refused


def print_probes(probes: list[Probe]) -> None:
    for p in probes:
        print(f"    {p.label:<40}{p.status:>5}  {p.ms:>7.0f} ms  {p.note}", flush=True)


def redis_stopped(cluster: Cluster) -> Outcome:
    outcome = Outcome("c) Redis stopped under load, then started again", True)
    print(f"\n=== {outcome.name}", flush=True)
    with Load(cluster) as load:
        observer = Observer(cluster, load)
        time.sleep(10)
        print("  with Redis up:")
        before = observer.round("before")
        print_probes(before)
        limit_before = sign_in_limit(cluster)
        outcome.say(f"50 wrong sign-ins from one address, Redis up: {limit_before[0]} answered, "
                    f"{limit_before[1]} refused 429")  # fmt: skip
        stopped_at = time.monotonic()
        outage_mail_from = cluster.postgres.query(
            "SELECT coalesce(max(id), 0) FROM outbox_messages"
        )[0][0]
        cluster.redis.stop()
        time.sleep(3)
        print("  with Redis stopped:")
        during = observer.round("during")
        print_probes(during)
        limit_during = sign_in_limit(cluster)
        outcome.say(f"50 wrong sign-ins from one address, Redis down: {limit_during[0]} answered, "
                    f"{limit_during[1]} refused 429")  # fmt: skip
        time.sleep(10)
        worker_alive = cluster.worker is not None and cluster.worker.poll() is None
        outcome.say(f"worker process alive while Redis is down: {worker_alive}")
        down_s = time.monotonic() - stopped_at
        outage_mail_to = cluster.postgres.query("SELECT coalesce(max(id), 0) FROM outbox_messages")[
            0
        ][0]
        outage_mail = cluster.postgres.query(
            "SELECT status, count(*) FROM outbox_messages WHERE id > %s AND id <= %s GROUP BY 1",
            outage_mail_from,
            outage_mail_to,
        )
        outcome.say(f"mail made while Redis was down, by status: {dict(outage_mail) or 'none'}")
        cluster.redis.start()
        back_at = time.monotonic()
        pending_ids = [
            row[0]
            for row in cluster.postgres.query(
                "SELECT id FROM outbox_messages WHERE id > %s AND id <= %s AND status = 'queued'",
                outage_mail_from,
                outage_mail_to,
            )
        ]

        def delivered() -> bool:
            rows = cluster.postgres.query(
                "SELECT count(*) FROM outbox_messages WHERE id = ANY(%s) AND status = 'queued'",
                pending_ids,
            )
            return rows[0][0] == 0

        delivered_in = time.monotonic() - back_at if wait_until(delivered, 150, 0.5) else None
        outcome.say(
            f"{len(pending_ids)} mails made during the outage still queued when Redis came back; "
            + (
                f"all sent {delivered_in:.1f} s later"
                if delivered_in is not None
                else "NOT sent in 150 s"
            )
        )
        print("  with Redis started again:")
        after = observer.round("after")
        print_probes(after)
        outage_samples = [s for s in load.recorder.samples if stopped_at <= s.started <= back_at]
        outage_errors = [s for s in outage_samples if s.error]
        outcome.say(
            f"load while Redis was down ({down_s:.0f} s): {len(outage_samples)} requests, "
            f"{len(outage_errors)} errors ({statuses(outage_errors)})"
        )
        if outage_errors:
            print(error_summary(outage_errors))
    worker_alive = cluster.worker is not None and cluster.worker.poll() is None
    outcome.say(f"worker process alive after Redis came back: {worker_alive}")
    five_xx = [p for p in during if p.status >= 500 or p.status == 0]
    if five_xx:
        outcome.say("5xx or no answer during the outage: " + ", ".join(p.label for p in five_xx))
        outcome.passed = False
    not_back = [
        p.label
        for p, q in zip(before, after, strict=True)
        if (p.status // 100) != (q.status // 100)
    ]
    if not_back:
        outcome.say("answers differently after recovery: " + ", ".join(not_back))
        outcome.passed = False
    if delivered_in is None or not worker_alive:
        outcome.passed = False
    missing = missing_bookings(cluster, Recorder(confirmed_desks=observer.booked))
    outcome.say(f"{len(observer.booked)} bookings made by the observer; {len(missing)} missing")
    if missing:
        outcome.passed = False
    return outcome


SCENARIOS = {"postgres": postgres_restart, "worker": worker_killed, "redis": redis_stopped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="postgres,worker,redis")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    outcomes = []
    with running_cluster(employees_with_password=40) as cluster:
        for name in chosen:
            outcomes.append(SCENARIOS[name](cluster))
    print("\n=== faults summary (2 cores shared with other work at the time)")
    for outcome in outcomes:
        print(f"{'PASS' if outcome.passed else 'FAIL'}  {outcome.name}")
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
