"""A realistic mix of people using Foyer at once, over HTTP, against 2 gunicorn instances + 1 worker
on PostgreSQL and Redis (bench/cluster.py): `make bench-load` (10 minutes), or
`python -m bench.load_mix --minutes 1` for a quick run.

Who is simulated (each a thread with its own requests.Session, its own X-Forwarded-For address as
if behind the reverse proxy, and a real sign-in through the form with its CSRF token):
- employees: open My day, browse floor plans of the coming days, book desks (confirm, book) and
  meeting rooms (timeline, form, book), open their bookings and cancel some, poll notices;
- coordinators (Berlin and New York): the inbox, filtered views, open tickets, the approvals
  queue, approve a pending room booking;
- lobby kiosks (one per site, paired with a fresh pairing code): walk-in check-ins with a host
  search and a drawn signature, at most a few a minute (the kiosk's own limits);
- calendar clients polling feeds with If-None-Match (each thread stands for many calendars);
- a baseline: GET /healthz, which does no database work, measured in the same run.

Every request alternates between the two instances, as a load balancer would. An error is any 5xx,
any timeout or connection failure, and any status the step does not expect (a 400 from a lost
CSRF token, a sign-in page instead of the page asked for). "Refused" counts the answers a person
is meant to get when someone else was quicker (409/422 on a desk just taken): not errors.
The run fails (exit code 1) when there is any error.
"""

from __future__ import annotations

import argparse
import html
import itertools
import random
import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import requests

from bench.html_forms import form_posting_to, forms_of

CLIENT_TIMEOUT = 30.0  # seconds; gunicorn's own worker timeout is 30 s too
DEMO_PASSWORD = "foyer-demo"  # noqa: S105 - the demo company's published password
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
HEADER_CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')
DESK_LINK = re.compile(r'href="/desks/(\d+)/confirm\?[^"]*"')
ROOM_SLOT = re.compile(r'href="(/rooms/\d+/book\?[^"]*)"')
BOOKING_LINK = re.compile(r'href="/bookings/(\d+)"')
TICKET_LINK = re.compile(r'href="(/(?:issues|requests)/\d+)"')
HOST_OPTION = re.compile(r'name="host_id" value="(\d+)"')
FEED_URL = re.compile(r"/feeds/([A-Za-z0-9_\-]{16,})\.ics")
ID_IN_PATH = re.compile(r"/\d+(?=/|$)")
ZONES = {"berlin": ZoneInfo("Europe/Berlin"), "new-york": ZoneInfo("America/New_York")}

EMPLOYEE_THREADS = 12
COORDINATORS = ["jonas.weber@example.com", "maya.johnson@example.com"]
FEED_THREADS = 4
KIOSK_SITES = ["berlin", "new-york"]


# --- recording -------------------------------------------------------------------------------


@dataclass
class Sample:
    endpoint: str
    started: float  # monotonic
    ms: float
    status: int  # 0: no answer (timeout, refused connection)
    error: str = ""  # empty when the answer was what the step expects
    refused: bool = False


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Bookings the client was told it has: (email, resource id, iso date) for desks, booking id for rooms
    confirmed_desks: list[tuple[str, int, str]] = field(default_factory=list)
    confirmed_rooms: list[int] = field(default_factory=list)
    cancelled: set[int] = field(default_factory=set)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)

    def errors(self) -> list[Sample]:
        with self.lock:
            return [s for s in self.samples if s.error]


class StepFailed(Exception):
    """The answer was not what a person would expect; already recorded as an error."""


def label_of(method: str, path: str) -> str:
    path = path.split("?", 1)[0]
    if path.startswith("/feeds/") and path.endswith(".ics"):
        return f"{method} /feeds/<token>.ics"
    if path.startswith("/kiosk/walk-in/"):
        return f"{method} {path}"
    return f"{method} {ID_IN_PATH.sub('/<id>', path)}"


class Browser:
    """One person's browser: a session, their own client address, both instances in turn."""

    def __init__(self, bases: list[str], recorder: Recorder, address: str) -> None:
        self.bases = itertools.cycle(bases)
        self.recorder = recorder
        self.session = requests.Session()
        self.session.headers["X-Forwarded-For"] = address
        self.csrf = ""

    def request(
        self,
        method: str,
        path: str,
        *,
        expect: Iterable[int] = (200,),
        refusals: Iterable[int] = (),
        label: str | None = None,
        **kwargs,
    ) -> requests.Response:
        label = label or label_of(method, path)
        base = next(self.bases)
        started = time.monotonic()
        try:
            response = self.session.request(
                method, base + path, timeout=CLIENT_TIMEOUT, allow_redirects=False, **kwargs
            )
            response.content  # noqa: B018 - read the whole body inside the timing
        except requests.RequestException as exc:
            ms = (time.monotonic() - started) * 1000
            self.recorder.add(Sample(label, started, ms, 0, type(exc).__name__))
            raise StepFailed(label) from exc
        ms = (time.monotonic() - started) * 1000
        status = response.status_code
        if status in set(refusals):
            self.recorder.add(Sample(label, started, ms, status, refused=True))
            return response
        if status not in set(expect):
            where = response.headers.get("Location", "")
            self.recorder.add(Sample(label, started, ms, status, f"HTTP {status} {where}".strip()))
            raise StepFailed(label)
        self.recorder.add(Sample(label, started, ms, status))
        token = CSRF.search(response.text) or HEADER_CSRF.search(response.text)
        if token and "text/html" in response.headers.get("Content-Type", ""):
            self.csrf = token.group(1)
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict[str, str], **kwargs) -> requests.Response:
        kwargs.setdefault("expect", (303,))
        return self.request("POST", path, data=data, **kwargs)

    def sign_in(self, email: str) -> None:
        self.get("/sign-in")
        self.post(
            "/sign-in",
            {"csrf_token": self.csrf, "next": "", "email": email, "password": DEMO_PASSWORD},
        )


# --- the people ------------------------------------------------------------------------------


def coming_weekdays(today: date, count: int) -> list[date]:
    days, day = [], today
    while len(days) < count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


@dataclass
class Mix:
    """Everything the simulated people share: where the app is, what to record, when to stop."""

    bases: list[str]
    recorder: Recorder
    stop: threading.Event
    employees: list[tuple[str, str]]  # (email, site slug)
    feed_tokens: list[str]
    kiosk_cookies: dict[str, dict[str, str]]  # site slug -> cookies of a paired tablet
    signatures: list[str]
    allow_cancel: bool = True
    think: tuple[float, float] = (0.5, 2.0)
    address_counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def browser(self) -> Browser:
        n = next(self.address_counter)
        return Browser(self.bases, self.recorder, f"10.{n // 250}.{n % 250}.7")

    def signed_in_browser(self, email: str, rng: random.Random) -> Browser:
        """A new browser that keeps trying to sign in (as a person would) until the run ends."""
        browser = self.browser()
        while not self.stop.is_set():
            try:
                browser.sign_in(email)
                break
            except StepFailed:
                self.pause(rng, 1.0, 2.0)
        return browser

    def pause(
        self, rng: random.Random, low: float | None = None, high: float | None = None
    ) -> None:
        self.stop.wait(rng.uniform(low or self.think[0], high or self.think[1]))

    def run_forever(self, name: str, step: Callable[[random.Random], None], seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            try:
                step(rng)
            except StepFailed:
                self.pause(rng, 1.0, 2.0)  # what a person does after an error page: try again

    # employees -----------------------------------------------------------------------------
    def employee(self, email: str, site: str, seed: int) -> None:
        rng = random.Random(seed)
        browser = self.signed_in_browser(email, rng)
        days = coming_weekdays(datetime.now(ZONES[site]).date(), 8)

        def step(rng: random.Random) -> None:
            roll = rng.random()
            if roll < 0.15:
                browser.get("/my-day")
                browser.get("/notices", headers={"HX-Request": "true"})
            elif roll < 0.55:
                self.book_desk(browser, email, rng.choice(days), rng)
            elif roll < 0.75:
                self.book_room(browser, rng.choice(days), rng)
            else:
                self.open_and_cancel(browser, rng)
            self.pause(rng)

        self.run_forever(email, step, seed)

    def book_desk(self, browser: Browser, email: str, day: date, rng: random.Random) -> None:
        floor = rng.choice(["", "&floor=2", "&floor=3"])
        plan = browser.get(f"/desks/?date={day.isoformat()}{floor}", expect=(200,)).text
        desks = DESK_LINK.findall(plan)
        self.pause(rng, 0.3, 1.0)
        if not desks or rng.random() < 0.3:
            return  # looked, did not book
        desk = rng.choice(desks)
        page = browser.get(f"/desks/{desk}/confirm?date={day.isoformat()}&slot=day").text
        form = form_posting_to(page, f"/desks/{desk}/book")
        if form is None:
            browser.recorder.add(
                Sample("GET /desks/<id>/confirm", time.monotonic(), 0, 200, "no form")
            )
            raise StepFailed("no booking form")
        answer = browser.post(form.action, form.fields, refusals=(409, 422))
        if answer.status_code == 303:
            shown = browser.get(answer.headers["Location"]).text
            if "is yours" in shown or "is held" in shown:
                with self.recorder.lock:
                    self.recorder.confirmed_desks.append((email, int(desk), day.isoformat()))

    def book_room(self, browser: Browser, day: date, rng: random.Random) -> None:
        timeline = browser.get(f"/rooms/timeline?date={day.isoformat()}").text
        slots = ROOM_SLOT.findall(timeline)
        self.pause(rng, 0.3, 1.0)
        if not slots:
            return
        path = html.unescape(rng.choice(slots))
        page = browser.get(path).text
        room = path.split("/")[2]
        form = form_posting_to(page, f"/rooms/{room}/book")
        if form is None:
            raise StepFailed("no room form")
        fields = {**form.fields, "title": "Load test meeting"}
        answer = browser.post(form.action, fields, refusals=(409, 422))
        if answer.status_code == 303:
            location = answer.headers["Location"]
            shown = browser.get(location).text
            found = re.search(r"/bookings/(\d+)", location)
            if found and ("Booked" in shown or "waiting for" in shown or "held" in shown):
                with self.recorder.lock:
                    self.recorder.confirmed_rooms.append(int(found.group(1)))

    def open_and_cancel(self, browser: Browser, rng: random.Random) -> None:
        mine = browser.get("/bookings/").text
        ids = BOOKING_LINK.findall(mine)
        if not ids:
            return
        booking = rng.choice(ids)
        page = browser.get(f"/bookings/{booking}").text
        form = form_posting_to(page, f"/bookings/{booking}/cancel")
        if form is None or not self.allow_cancel or rng.random() < 0.4:
            return
        self.pause(rng, 0.3, 1.0)
        answer = browser.post(form.action, form.fields, refusals=(409, 422))
        if answer.status_code == 303:
            with self.recorder.lock:
                self.recorder.cancelled.add(int(booking))

    # coordinators --------------------------------------------------------------------------
    def coordinator(self, email: str, seed: int) -> None:
        rng = random.Random(seed)
        browser = self.signed_in_browser(email, rng)
        filters = ["?assignee=me", "?assignee=none", "?kind=room", "?sla=overdue", "?status=open"]

        def step(rng: random.Random) -> None:
            inbox = browser.get("/inbox/").text
            browser.get("/inbox/" + rng.choice(filters), headers={"HX-Request": "true"})
            tickets = TICKET_LINK.findall(inbox)
            if tickets:
                self.pause(rng, 0.5, 1.5)
                browser.get(rng.choice(tickets))
            self.pause(rng, 0.5, 1.5)
            approvals = browser.get("/approvals/").text
            pending = [f for f in forms_of(approvals) if f.action.startswith("/approvals/")]
            if pending and rng.random() < 0.5:
                form = rng.choice(pending)
                browser.post(
                    form.action, {**form.fields, "decision": "approve"}, refusals=(409, 422)
                )
            self.pause(rng, 1.0, 3.0)

        self.run_forever(email, step, seed)

    # kiosks ----------------------------------------------------------------------------------
    def kiosk(self, site: str, seed: int) -> None:
        browser = self.browser()
        browser.session.cookies.update(self.kiosk_cookies[site])
        htmx = {"HX-Request": "true"}
        counter = itertools.count(1)
        letters = ["we", "ch", "no", "me", "ga", "ok", "ro", "si", "jo", "fi"]

        def step(rng: random.Random) -> None:
            page = browser.get("/kiosk/").text
            token = HEADER_CSRF.search(page)
            headers = {**htmx, "X-CSRFToken": token.group(1) if token else ""}
            start = browser.get("/kiosk/walk-in", headers=htmx).text
            form = form_posting_to(start, "/kiosk/walk-in/details")
            if form is None:
                raise StepFailed("no walk-in form")
            hosts = browser.get(
                "/kiosk/hosts", params={"host_query": rng.choice(letters)}, headers=htmx
            ).text
            options = HOST_OPTION.findall(hosts)
            if not options:
                return
            n = next(counter)
            person = {
                "name": f"Visitor {site} {seed}-{n}",
                "company": "Load Test GmbH",
                "email": f"visitor{seed}-{n}@loadtest.example",
                "purpose": "Meeting",
                "host_id": rng.choice(options),
            }
            details = browser.post(
                "/kiosk/walk-in/details", {**form.fields, **person}, expect=(200,), headers=headers
            ).text
            agreement = form_posting_to(details, "/kiosk/walk-in/agreement")
            if agreement is None:
                raise StepFailed("no agreement step")
            signed = {
                **agreement.fields,
                "signed_name": person["name"],
                "signature": self.signatures[n % len(self.signatures)],
            }
            browser.post("/kiosk/walk-in/agreement", signed, expect=(200,), headers=headers)
            # A walk-in takes about a minute at the tablet; the kiosk's limits are per device.
            self.pause(rng, 6.0, 10.0)

        self.run_forever(f"kiosk {site}", step, seed)

    # calendar clients ------------------------------------------------------------------------
    def calendar_client(self, token: str, seed: int) -> None:
        browser = self.browser()
        etag = ""

        def step(rng: random.Random) -> None:
            nonlocal etag
            headers = {"If-None-Match": etag} if etag else {}
            answer = browser.get(f"/feeds/{token}.ics", expect=(200, 304), headers=headers)
            if answer.status_code == 200:
                etag = answer.headers.get("ETag", "")
            self.pause(rng, 1.0, 3.0)

        self.run_forever("calendar", step, seed)

    def health_baseline(self, seed: int) -> None:
        browser = self.browser()

        def step(rng: random.Random) -> None:
            browser.get("/healthz")
            self.pause(rng, 0.3, 0.7)

        self.run_forever("healthz", step, seed)

    def threads(self) -> list[threading.Thread]:
        made = []
        for n, (email, site) in enumerate(self.employees):
            made.append(threading.Thread(target=self.employee, args=(email, site, 100 + n)))
        for n, email in enumerate(COORDINATORS):
            made.append(threading.Thread(target=self.coordinator, args=(email, 200 + n)))
        for n, site in enumerate(self.kiosk_cookies):
            made.append(threading.Thread(target=self.kiosk, args=(site, 300 + n)))
        for n, token in enumerate(self.feed_tokens):
            made.append(threading.Thread(target=self.calendar_client, args=(token, 400 + n)))
        made.append(threading.Thread(target=self.health_baseline, args=(500,)))
        for thread in made:
            thread.daemon = True
        return made


# --- preparing the people: passwords, paired kiosks, feeds --------------------------------------


def employees_of(cluster, count: int) -> list[tuple[str, str]]:  # noqa: ANN001
    rows = cluster.postgres.query(
        """SELECT u.email, s.slug FROM users u JOIN sites s ON s.id = u.home_site_id
           WHERE u.password_hash IS NOT NULL AND u.active
             AND u.email NOT IN ('jonas.weber@example.com', 'maya.johnson@example.com',
                                 'amara.okafor@example.com')
           ORDER BY u.id LIMIT %s""",
        count,
    )
    return [(email, slug) for email, slug in rows]


def pair_kiosk(cluster, site: str, name: str) -> dict[str, str]:  # noqa: ANN001
    """A new kiosk for the site, paired over HTTP with its pairing code; the tablet's cookies."""
    out = cluster.flask("kiosk-code", site, "--name", name)
    code = re.search(r"pairing code (\S+)", out)
    assert code, out
    recorder = Recorder()
    tablet = Browser(cluster.bases, recorder, "10.250.0.1")
    page = tablet.get("/kiosk/").text
    form = form_posting_to(page, "/kiosk/pair")
    assert form is not None, "the unpaired kiosk shows no pairing form"
    tablet.post("/kiosk/pair", {**form.fields, "code": code.group(1)})
    return dict(tablet.session.cookies.items())


def make_feed(cluster, email: str) -> str:  # noqa: ANN001
    """The person subscribes to their own bookings on the Calendar feeds page; the address."""
    browser = Browser(cluster.bases, Recorder(), "10.250.0.2")
    browser.sign_in(email)
    page = browser.get("/feeds/").text
    form = form_posting_to(page, "/feeds/")
    assert form is not None, "no form to create a feed"
    answer = browser.post("/feeds/", {**form.fields, "kind": "mine"}, expect=(200, 303))
    text = answer.text
    if answer.status_code == 303:
        text = browser.get(answer.headers["Location"]).text
    token = FEED_URL.search(text)
    assert token, "the feed's address was not shown"
    return token.group(1)


def signatures(count: int = 4) -> list[str]:
    from bench.bench_kiosk import signature_data_url

    rng = random.Random(11)
    return [signature_data_url(rng) for _ in range(count)]


def prepare_mix(cluster, stop: threading.Event, recorder: Recorder, **kwargs) -> Mix:  # noqa: ANN001
    employees = employees_of(cluster, kwargs.pop("employees", EMPLOYEE_THREADS) + FEED_THREADS)
    feed_people, employees = employees[:FEED_THREADS], employees[FEED_THREADS:]
    # Feeds and paired kiosks are made once per cluster: a second scenario reuses them.
    if not hasattr(cluster, "load_feeds"):
        cluster.load_feeds = [make_feed(cluster, email) for email, _site in feed_people]
        cluster.load_kiosks = {
            site: pair_kiosk(cluster, site, f"Load kiosk {site}") for site in KIOSK_SITES
        }
    tokens, kiosks = cluster.load_feeds, cluster.load_kiosks
    return Mix(
        cluster.bases,
        recorder,
        stop,
        employees,
        tokens,
        kiosks,
        signatures(),
        **kwargs,
    )


# --- the report --------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered))) - 1))]


@dataclass(frozen=True)
class Row:
    endpoint: str
    count: int
    errors: int
    refused: int
    p50: float
    p95: float
    max: float


def table(samples: list[Sample]) -> list[Row]:
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_endpoint[sample.endpoint].append(sample)
    rows = []
    for endpoint, group in by_endpoint.items():
        times = [s.ms for s in group if not s.error]
        rows.append(
            Row(
                endpoint,
                len(group),
                sum(1 for s in group if s.error),
                sum(1 for s in group if s.refused),
                statistics.median(times) if times else 0.0,
                percentile(times, 0.95) if times else 0.0,
                max(times) if times else 0.0,
            )
        )
    return sorted(rows, key=lambda r: (-r.count, r.endpoint))


def render(samples: list[Sample], seconds: float) -> str:
    rows = table(samples)
    baseline = next((r for r in rows if r.endpoint == "GET /healthz"), None)
    lines = [
        f"{'endpoint':<36}{'count':>7}{'err':>5}{'refused':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'max ms':>9}{'p95 x healthz':>15}"
    ]
    for row in rows:
        ratio = row.p95 / baseline.p95 if baseline and baseline.p95 else float("nan")
        lines.append(
            f"{row.endpoint:<36}{row.count:>7}{row.errors:>5}{row.refused:>8}{row.p50:>9.1f}"
            f"{row.p95:>9.1f}{row.max:>9.1f}{ratio:>15.1f}"
        )
    total = len(samples)
    errors = sum(1 for s in samples if s.error)
    lines.append(
        f"total {total} requests in {seconds:.0f} s ({total / seconds:.1f} req/s), "
        f"{errors} errors, {sum(1 for s in samples if s.refused)} refused as designed"
    )
    if baseline:
        lines.append(f"baseline GET /healthz: p50 {baseline.p50:.1f} ms, p95 {baseline.p95:.1f} ms")
    return "\n".join(lines)


def error_summary(samples: list[Sample]) -> str:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for sample in samples:
        if sample.error:
            counts[(sample.endpoint, sample.error)] += 1
    return "\n".join(f"  {n:>5} x {ep}: {err}" for (ep, err), n in sorted(counts.items()))


def process_figures(cluster) -> str:  # noqa: ANN001
    from bench.cluster import rss_mb

    pids = cluster.gunicorn_workers()
    rss = [rss_mb(pid) for pid in pids]
    worker = rss_mb(cluster.worker.pid) if cluster.worker and cluster.worker.poll() is None else 0
    return (
        f"memory: {len(rss)} gunicorn workers, RSS {min(rss):.0f}-{max(rss):.0f} MB each "
        f"(mean {statistics.mean(rss):.0f} MB); job worker RSS {worker:.0f} MB"
        if rss
        else "memory: no gunicorn workers found"
    )


def main(argv: list[str] | None = None) -> int:
    from bench.cluster import running_cluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--employees", type=int, default=EMPLOYEE_THREADS)
    args = parser.parse_args(argv)
    with running_cluster(employees_with_password=args.employees + FEED_THREADS + 4) as cluster:
        stop = threading.Event()
        recorder = Recorder()
        mix = prepare_mix(cluster, stop, recorder, employees=args.employees)
        threads = mix.threads()
        print(
            f"load: {len(mix.employees)} employees, {len(COORDINATORS)} coordinators, "
            f"{len(mix.kiosk_cookies)} kiosks, {len(mix.feed_tokens)} calendar clients, "
            f"1 /healthz prober, for {args.minutes:g} min",
            flush=True,
        )
        started = time.monotonic()
        for thread in threads:
            thread.start()
        deadline = started + args.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(min(30.0, max(0.0, deadline - time.monotonic())))
            done = len(recorder.samples)
            print(f"  {time.monotonic() - started:5.0f} s: {done} requests, "
                  f"{len(recorder.errors())} errors", flush=True)  # fmt: skip
        stop.set()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT + 5)
        seconds = time.monotonic() - started
        samples = list(recorder.samples)
        print()
        print(render(samples, seconds))
        print(process_figures(cluster))
        sent = cluster.mail.total
        print(
            f"mail: {sent} messages reached the SMTP server, "
            f"{len(cluster.mail.duplicates())} Message-IDs more than once"
        )
        print("(2 cores shared with other work at the time: latency includes the neighbours)")
        errors = [s for s in samples if s.error]
        if errors:
            print("ERRORS:\n" + error_summary(samples))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
