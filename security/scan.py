"""wapiti and sqlmap against a running Foyer on loopback, signed in as an employee and as a
coordinator: `make scan` (or `.venv/bin/python -m security.scan`).

The app runs from security/scan_server.py on a throwaway database loaded with the demo company.
The scanners come from their own venv (.venv-scan, made by `make scan`) so their dependencies never
touch the app's. Every finding fails the run unless security/scan_allowlist.toml accepts it with a
written reason. Nothing leaves the machine: wapiti's out-of-band modules (ssrf, xxe) talk to a local
endpoint served here instead of the public one, and wapiti's automatic bug reports are off.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_PYTHON = ROOT / ".venv" / "bin" / "python"
FLASK = ROOT / ".venv" / "bin" / "flask"
SCAN_BIN = ROOT / ".venv-scan" / "bin"
ALLOWLIST = Path(__file__).with_name("scan_allowlist.toml")
PASSWORD = "foyer-demo"  # the demo company's password, printed by `make run`
ROLES = {
    "employee": "lena.fischer@example.com",
    "coordinator": "jonas.weber@example.com",
}
WAPITI_MODULES = [
    "sql",
    "timesql",
    "xss",
    "permanentxss",
    "exec",
    "file",
    "crlf",
    "redirect",
    "csrf",
    "ssrf",
    "xxe",
    "upload",
    "methods",
    "http_headers",
    "csp",
    "cookieflags",
]
MIN_CRAWLED = 50  # each role's signed-in crawl finds hundreds of URLs and forms
# Requests that would end the scanner's own session: it would go on crawling the sign-in page.
SESSION_ENDING_PATHS = ["/sign-out", "/account/sessions/*"]
# Pages that exist once per desk, room, ticket, asset or notice are the same template with other
# numbers: attacking every one would spend the time limits on a few templates. One in ten stays
# in (ids ending in 0, which every one of these lists has).
PER_OBJECT_PAGES = [
    "/desks/*{digit}/confirm*",
    "/admin/spaces/resources/*{digit}/*",
    "/admin/spaces/desks/*{digit}/*",
    "/admin/spaces/rooms/*{digit}/*",
    "/admin/catalog/*{digit}/stock*",
    "/assets/*{digit}",
    "/assets/*{digit}/*",
    "/tickets/*{digit}/*",
    "/issues/*{digit}",
    "/requests/*{digit}",
    "/notices/*{digit}/*",
]
REPEATED_PAGES = [page.format(digit=d) for page in PER_OBJECT_PAGES for d in range(1, 10)]
# Where each role's crawl starts and what it leaves to the other: a coordinator sees the same
# employee pages as Lena (desks, rooms, own bookings and visitors), so the coordinator's scan
# spends its time on what only coordinators reach.
WAPITI_START = {
    "employee": ["/my-day"],
    "coordinator": [
        "/inbox/",
        "/approvals/",
        "/lobby/",
        "/inventory",
        "/assets",
        "/dashboards/",
        "/admin/spaces/",
        "/admin/rules/",
        "/admin/settings/",
        "/admin/catalog/",
        "/admin/service-desk/",
        "/admin/access-control/",
        "/admin/calendars/",
        "/admin/kiosks/",
        "/admin/visitor-settings/",
        "/issues/",
        "/requests",
    ],
}
WAPITI_LEFT_TO_EMPLOYEE = [
    "/my-day*",
    "/desks/*",
    "/rooms/*",
    "/bookings/*",
    "/visitors/*",
    "/account/*",
    "/feeds/*",
    "/equipment/borrow*",
    "/catalog*",
]


@dataclass(frozen=True)
class SqlmapTarget:
    """One parameterised request for sqlmap. `form_page` is a page that carries the session's CSRF
    token (the form itself or the page that leads to it): sqlmap reads a fresh token there before
    each request (--csrf-url). It must not be the target itself: sqlmap would POST to it."""

    role: str
    path: str  # with the query string for GET
    data: str = ""  # POST body; empty for GET
    form_page: str = ""
    randomize: str = ""  # a one-time key (idempotency), new for every request

    @property
    def method(self) -> str:
        return "POST" if self.data else "GET"


def sqlmap_targets(day: date) -> list[SqlmapTarget]:
    """Search and filter query strings and forms, each where that role really uses it. Site 1 is
    Berlin, where both demo people work; ticket 1 is one of Berlin's facility issues. Forms that
    plan ahead get tomorrow, so the base request is valid at any hour."""
    today, tomorrow = day.isoformat(), (day + timedelta(days=1)).isoformat()
    return [
        SqlmapTarget("employee", "/catalog?q=pen&site=berlin&category=office_supplies"),
        SqlmapTarget(
            "employee", f"/desks/?site=berlin&date={today}&slot=day&floor=1&zone=A&view=list"
        ),
        SqlmapTarget(
            "employee", f"/rooms/?site=berlin&date={today}&start=10:00&duration=60&attendees=4"
        ),
        SqlmapTarget("employee", f"/equipment/borrow?site=berlin&first={today}&last={today}"),
        SqlmapTarget(
            "employee",
            "/visitors/invite",
            data=(
                "idempotency_key=k&name=Ada+Lovelace&email=ada%40example.org&company=Analytical"
                f"&site=1&day={tomorrow}&start_time=10:00&end_time=12:00&note=hello"
            ),
            form_page="/visitors/",
            randomize="idempotency_key",
        ),
        SqlmapTarget(
            "employee",
            "/account/time-zone",
            data="time_zone=Europe%2FBerlin",
            form_page="/account/",
        ),
        SqlmapTarget(
            "employee",
            "/catalog/draft",
            data="item_id=1&site=berlin&quantity=1",
            form_page="/catalog",
        ),
        SqlmapTarget(
            "coordinator",
            "/inbox/?q=chair&kind=&status=&sla=&assignee=&category=&age=&sort=",
        ),
        SqlmapTarget("coordinator", "/inventory?site=1&q=paper&category=&low=1"),
        SqlmapTarget(
            "coordinator",
            f"/lobby/sites/1/?q=anna&host=&status=&day_from={today}&day_to={today}",
        ),
        SqlmapTarget("coordinator", "/assets?q=laptop&status=&item="),
        SqlmapTarget("coordinator", "/admin/catalog/?q=pen&show=active"),
        SqlmapTarget(
            "coordinator",
            "/tickets/1/comments",
            data="body=Looked+at+it&internal=y",
            form_page="/issues/1",
        ),
        SqlmapTarget("coordinator", "/inbox/views", data="back=&name=Mine", form_page="/inbox/"),
        SqlmapTarget(
            "coordinator",
            "/admin/rules/sites/1/blackouts",
            data=f"first_day={tomorrow}&last_day={tomorrow}&reason=Move",
            form_page="/admin/rules/sites/1",
        ),
    ]


@dataclass
class Finding:
    tool: str
    role: str
    category: str
    method: str
    path: str
    parameter: str
    info: str
    accepted_because: str = ""

    def line(self) -> str:
        where = f"{self.method} {self.path}" + (f" [{self.parameter}]" if self.parameter else "")
        return (
            f"{self.tool}/{self.role}: {self.category}: {where}: {self.info.splitlines()[0][:160]}"
        )


@dataclass
class Totals:
    wapiti: dict[str, WapitiRun] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    sqlmap_runs: list[tuple[str, str, str]] = field(default_factory=list)  # role, target, outcome
    oob_hits: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


# --- the app ---------------------------------------------------------------------------------


@contextmanager
def throwaway_database(scratch: Path, backend: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{scratch / 'foyer.sqlite3'}"
        return
    from tests.scratch_database import admin_engine, scratch_postgres_database

    admin = admin_engine(
        os.environ.get(
            "FOYER_SCAN_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        )
    )
    try:
        with scratch_postgres_database(admin, "foyer_scan") as url:
            yield url
    finally:
        admin.dispose()


@contextmanager
def running_app(scratch: Path, database_url: str) -> Iterator[tuple[str, Path]]:
    """Migrate, load the demo company and serve; yields (base URL, request log)."""
    env = {
        **os.environ,
        "FLASK_APP": "wsgi",
        "FOYER_DATABASE_URL": database_url,
        "FOYER_INSTANCE_PATH": str(scratch / "instance"),
    }
    for command in ("upgrade-db", "seed-demo"):
        subprocess.run(
            [str(FLASK), command],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    request_log = scratch / "requests.log"
    request_log.touch()
    with open(scratch / "server.log", "w") as server_errors:
        server = subprocess.Popen(
            [str(APP_PYTHON), "-m", "security.scan_server", str(request_log)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=server_errors,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline().strip())
            yield f"http://127.0.0.1:{port}", request_log
        finally:
            server.terminate()
            server.wait(timeout=20)


def sign_in(base: str, email: str) -> str:
    """Through the real form, as a person would; returns the Cookie header of the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/sign-in").read().decode()
    token = csrf_token_in(page)
    form = {"csrf_token": token, "email": email, "password": PASSWORD, "next": ""}
    answer = opener.open(f"{base}/sign-in", urllib.parse.urlencode(form).encode())
    if not answer.url.endswith("/my-day"):
        raise SystemExit(f"signing in as {email} failed: ended at {answer.url}")
    # My day renders a form, so the cookie now also holds the session's CSRF secret: the
    # scanners can then submit every form they find with the token printed in it.
    opener.open(f"{base}/my-day").read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def csrf_token_in(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    if not match:
        raise SystemExit("no CSRF token on the sign-in page")
    return match.group(1)


def still_signed_in(base: str, cookie: str) -> bool:
    request = urllib.request.Request(f"{base}/account/", headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.url.endswith("/account/") and answer.status == 200
    except urllib.error.HTTPError:
        return False


def count_requests(request_log: Path, since_line: int) -> tuple[int, Counter[str], list[str]]:
    lines = request_log.read_text().splitlines()[since_line:]
    statuses = Counter(line.rsplit(" ", 1)[-1] for line in lines)
    errors = [line for line in lines if line.rsplit(" ", 1)[-1].startswith("5")]
    return len(lines), statuses, errors


# --- the out-of-band endpoint ----------------------------------------------------------------


class OutOfBandEndpoint(ThreadingHTTPServer):
    """Stands in for wapiti's public endpoint: the ssrf and xxe payloads point the app here, and
    every request that arrives proves the app fetched a URL an attacker chose."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EndpointHandler)
        # kind ("ssrf" or "xxe") -> session -> path id -> hex parameter -> hits
        self.hits: dict[str, dict[str, dict[str, dict[str, list[dict[str, object]]]]]] = {
            "ssrf": {},
            "xxe": {},
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def count(self) -> int:
        return sum(
            len(hits)
            for sessions in self.hits.values()
            for paths in sessions.values()
            for params in paths.values()
            for hits in params.values()
        )


class _EndpointHandler(BaseHTTPRequestHandler):
    server: OutOfBandEndpoint

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urllib.parse.urlsplit(self.path)
        results = re.fullmatch(r"/get_(ssrf|xxe)\.php", url.path)
        if results:
            session = urllib.parse.parse_qs(url.query).get("session_id", [""])[0]
            body = json.dumps(self.server.hits[results.group(1)].get(session, {})).encode()
            self._answer(body, "application/json")
            return
        self._record()
        self._answer(b"", "application/xml-dtd")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._record()
        self._answer(b"", "text/plain")

    def _record(self) -> None:
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        if len(parts) < 4 or parts[0] not in {"ssrf", "dtd", "xoxo"}:
            return
        kind = "ssrf" if parts[0] == "ssrf" else "xxe"
        size = int(self.headers.get("Content-Length") or 0)
        hit = {
            "url": self.path,
            "date": datetime.now(UTC).isoformat(),
            "ip": self.client_address[0],
            "method": self.command,
            "size": size,
            "payload": parts[4] if len(parts) > 4 else "",
        }
        session, path_id, hex_param = parts[1], parts[2], parts[3]
        sessions = self.server.hits[kind]
        sessions.setdefault(session, {}).setdefault(path_id, {}).setdefault(hex_param, []).append(
            hit
        )

    def _answer(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# --- wapiti ------------------------------------------------------------------------------------


@dataclass
class WapitiRun:
    findings: list[Finding]
    crawled: int
    attacked: Counter[str]  # module -> URLs and forms it attacked
    cut_short: list[str]  # modules stopped by the time limit before the end of the list


def run_wapiti(
    base: str, role: str, cookie: str, endpoint: str, scratch: Path, limits: argparse.Namespace
) -> WapitiRun:
    work = scratch / f"wapiti-{role}"
    work.mkdir()
    report = work / "report.json"
    command = [
        str(SCAN_BIN / "wapiti"),
        "--url",
        f"{base}/",
        "--scope",
        "folder",
        "--cookie-value",
        cookie,
        "--module",
        ",".join(WAPITI_MODULES),
        "--depth",
        "3",
        "--max-links-per-page",
        "40",
        "--max-files-per-dir",
        "25",
        "--max-scan-time",  # the crawl
        str(limits.crawl_seconds),
        "--max-attack-time",  # each module
        str(limits.attack_seconds),
        "--tasks",
        "2",  # two concurrent requests: the app shares two cores with other work
        "--timeout",
        "20",
        "--no-bugreport",
        "--endpoint",
        endpoint,
        "--dns-endpoint",
        "127.0.0.1",
        "--store-session",
        str(work),
        "--store-config",
        str(work),
        "--format",
        "json",
        "--output",
        str(report),
        "--detailed-report",
        "1",
        "--verbose",
        "1",
    ]
    for path in WAPITI_START[role]:
        command += ["--start", f"{base}{path}"]
    excluded = SESSION_ENDING_PATHS + REPEATED_PAGES
    if role == "coordinator":
        excluded += WAPITI_LEFT_TO_EMPLOYEE
    for path in excluded:
        command += ["--exclude", f"{base}{path}"]
    with open(work / "wapiti.log", "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    data = json.loads(report.read_text())
    findings = []
    for kind in ("vulnerabilities", "anomalies"):
        for category, items in data.get(kind, {}).items():
            for item in items:
                findings.append(
                    Finding(
                        tool="wapiti",
                        role=role,
                        category=category,
                        method=item.get("method", ""),
                        path=urllib.parse.urlsplit(item.get("path", "")).path or "/",
                        parameter=item.get("parameter") or "",
                        info=item.get("info", ""),
                    )
                )
    crawled = int(data.get("infos", {}).get("crawled_pages_nbr") or 0)
    attacked: Counter[str] = Counter()
    module = ""
    cut_short = []
    for line in (work / "wapiti.log").read_text().splitlines():
        if line.startswith("[*] Launching module "):
            module = line.removeprefix("[*] Launching module ").strip()
        elif line.startswith("[+] ") and module:
            attacked[module] += 1
        elif line.startswith("Max attack time was reached for module"):
            cut_short.append(line.rsplit(" ", 2)[-2].rstrip(","))
    return WapitiRun(findings, crawled, attacked, cut_short)


# --- sqlmap ------------------------------------------------------------------------------------

SQLMAP_FINDINGS = {
    "identified the following injection point": "SQL injection",
    "might be vulnerable to cross-site scripting": "reflected XSS (sqlmap heuristic)",
    "might be vulnerable to file inclusion": "file inclusion (sqlmap heuristic)",
}
SQLMAP_CLEAN = re.compile(r"all tested parameters do not appear to be injectable")


def run_sqlmap(
    base: str, target: SqlmapTarget, cookie: str, dbms: str, scratch: Path, index: int
) -> tuple[list[Finding], str]:
    work = scratch / f"sqlmap-{index:02d}"
    command = [
        str(SCAN_BIN / "sqlmap"),
        "--url",
        f"{base}{target.path}",
        "--cookie",
        cookie,
        "--drop-set-cookie",  # keep the signed-in session whatever a response sets
        "--batch",
        "--level",
        "2",
        "--risk",
        "1",
        "--dbms",
        dbms,
        "--threads",
        "1",
        "--time-sec",
        "2",
        "--timeout",
        "20",
        "--retries",
        "1",
        # The token is sqlmap's to refresh; a changed session cookie only signs the scanner out.
        "--skip",
        "csrf_token,foyer_session",
        "--output-dir",
        str(work),
        "--disable-coloring",
        "--flush-session",
    ]
    if target.data:
        assert target.form_page and target.form_page != target.path, target
        # POST because of --data; an explicit --method would also turn the token fetch into a POST.
        command += ["--data", f"csrf_token=-&{target.data}"]
        command += ["--csrf-token", "csrf_token", "--csrf-url", f"{base}{target.form_page}"]
        # A form answers 303 when it worked; following it would send the form to the next page.
        command += ["--csrf-method", "GET", "--ignore-redirects"]
    if target.randomize:
        command += ["--randomize", target.randomize]
    started = time.monotonic()
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        output = run.stdout + run.stderr
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else ""
        output += "\n[scan] sqlmap did not finish within 10 minutes"
    work.mkdir(exist_ok=True)
    (work / "sqlmap.log").write_text(output)
    elapsed = time.monotonic() - started
    findings = [
        Finding("sqlmap", target.role, category, target.method, target.path.split("?")[0], "", line)
        for marker, category in SQLMAP_FINDINGS.items()
        for line in output.splitlines()
        if marker in line
    ]
    if findings:
        outcome = f"{len(findings)} finding(s)"
    elif SQLMAP_CLEAN.search(output):
        outcome = f"clean ({elapsed:.0f} s)"
    else:
        last = [line for line in output.splitlines() if "[CRITICAL]" in line or "[ERROR]" in line]
        outcome = "ERROR: " + (last[-1] if last else "did not finish testing")
    return findings, outcome


# --- the allow-list ----------------------------------------------------------------------------


def load_allowlist() -> list[dict[str, str]]:
    entries = tomllib.loads(ALLOWLIST.read_text()).get("accepted", [])
    for entry in entries:
        if len(entry.get("reason", "").strip()) < 20:
            raise SystemExit(f"{ALLOWLIST.name}: every accepted finding needs a reason: {entry}")
    return entries


def accept(finding: Finding, allowlist: list[dict[str, str]]) -> None:
    for entry in allowlist:
        if (
            entry.get("tool", finding.tool) == finding.tool
            and entry.get("category", finding.category) == finding.category
            and re.fullmatch(entry.get("path", ".*"), finding.path)
            and re.search(entry.get("info", ""), finding.info)
        ):
            finding.accepted_because = entry["reason"].strip()
            return


# --- the run -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--crawl-seconds", type=int, default=60, help="wapiti's crawl, per role")
    parser.add_argument(
        "--attack-seconds", type=int, default=20, help="each wapiti module, per role"
    )
    parser.add_argument("--only", choices=["wapiti", "sqlmap"], help="run one scanner")
    parser.add_argument("--keep", action="store_true", help="keep the reports and logs")
    args = parser.parse_args()
    for tool in ("wapiti", "sqlmap"):
        if not (SCAN_BIN / tool).exists():
            raise SystemExit(f"{SCAN_BIN / tool} is missing: run `make scan`")
    allowlist = load_allowlist()
    scratch = Path(tempfile.mkdtemp(prefix="foyer-scan-"))
    totals = Totals()
    findings: list[Finding] = []
    broken: list[str] = []
    started = time.monotonic()
    endpoint = OutOfBandEndpoint()
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    try:
        with (
            throwaway_database(scratch, args.database) as database_url,
            running_app(scratch, database_url) as (base, request_log),
        ):
            print(f"Foyer at {base} on a throwaway {args.database} database; files in {scratch}")
            cookies = {role: sign_in(base, email) for role, email in ROLES.items()}
            seen = len(request_log.read_text().splitlines())
            phases: list[tuple[str, str]] = []
            if args.only in (None, "wapiti"):
                phases += [("wapiti", role) for role in ROLES]
            if args.only in (None, "sqlmap"):
                phases += [("sqlmap", role) for role in ROLES]
            dbms = "SQLite" if args.database == "sqlite" else "PostgreSQL"
            for tool, role in phases:
                phase = f"{tool}/{role}"
                print(f"--- {phase}", flush=True)
                phase_start = time.monotonic()
                if tool == "wapiti":
                    wapiti = run_wapiti(base, role, cookies[role], endpoint.url, scratch, args)
                    totals.wapiti[role] = wapiti
                    findings += wapiti.findings
                    # Signed out, wapiti would see the sign-in page alone and find nothing there.
                    if wapiti.crawled < MIN_CRAWLED:
                        broken.append(
                            f"{phase}: only {wapiti.crawled} URLs crawled; not signed in?"
                        )
                else:
                    targets = [t for t in sqlmap_targets(date.today()) if t.role == role]
                    for target in targets:
                        found, outcome = run_sqlmap(
                            base, target, cookies[role], dbms, scratch, len(totals.sqlmap_runs)
                        )
                        totals.sqlmap_runs.append((role, f"{target.method} {target.path}", outcome))
                        print(f"    {target.method} {target.path}: {outcome}", flush=True)
                        findings += found
                        if outcome.startswith("ERROR"):
                            broken.append(f"sqlmap/{role} {target.path}: {outcome}")
                        if not still_signed_in(base, cookies[role]):
                            broken.append(f"sqlmap/{role} {target.path}: session lost")
                totals.seconds[phase] = time.monotonic() - phase_start
                sent, statuses, errors = count_requests(request_log, seen)
                seen += sent
                totals.requests[phase] = sent
                totals.statuses.update(statuses)
                findings += [
                    Finding("server", role, "5xx answer", *line.split(" ", 2)[:2], "", line)
                    for line in errors
                ]
                if not still_signed_in(base, cookies[role]):
                    broken.append(f"{phase}: the {role}'s session ended during the scan")
            totals.oob_hits = endpoint.count()
    finally:
        endpoint.shutdown()
    for finding in findings:
        accept(finding, allowlist)
    open_findings = [f for f in findings if not f.accepted_because]
    print_summary(totals, findings, open_findings, broken, time.monotonic() - started)
    if args.keep or open_findings or broken:
        print(f"Reports and logs kept in {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if open_findings or broken else 0


def print_summary(
    totals: Totals,
    findings: list[Finding],
    open_findings: list[Finding],
    broken: list[str],
    seconds: float,
) -> None:
    print("\n=== Security scan summary")
    for role, run in totals.wapiti.items():
        print(f"wapiti as {role}: {run.crawled} URLs and forms crawled; attacked per module:")
        print(
            "  "
            + ", ".join(
                f"{module} {count}" + ("*" if module in run.cut_short else "")
                for module, count in run.attacked.items()
            )
        )
        if run.cut_short:
            print("  (* stopped by --attack-seconds before the end of the list)")
    for phase, sent in totals.requests.items():
        print(f"requests sent by {phase}: {sent} in {totals.seconds[phase]:.0f} s")
    print(
        "answers by status: " + ", ".join(f"{k}: {v}" for k, v in sorted(totals.statuses.items()))
    )
    print(f"sqlmap targets tested: {len(totals.sqlmap_runs)}")
    print(f"requests the app made to the out-of-band endpoint (SSRF/XXE): {totals.oob_hits}")
    per_module = Counter((f.tool, f.category) for f in findings)
    accepted = Counter((f.tool, f.category) for f in findings if f.accepted_because)
    print("findings per module:" + ("" if per_module else " none"))
    for (tool, category), count in sorted(per_module.items()):
        print(f"  {tool} {category}: {count} ({accepted[(tool, category)]} accepted)")
    reasons = {f.accepted_because for f in findings if f.accepted_because}
    for reason in sorted(reasons):
        print(f"  accepted: {reason}")
    for finding in open_findings:
        print(f"FINDING {finding.line()}")
    for problem in broken:
        print(f"BROKEN {problem}")
    print(
        f"{len(open_findings)} open findings, {len(findings) - len(open_findings)} accepted, "
        f"{len(broken)} scan problems, {seconds / 60:.1f} minutes"
    )


if __name__ == "__main__":
    sys.exit(main())
