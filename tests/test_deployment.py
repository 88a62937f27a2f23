"""The production guide's files work as written: docs/deploy/*.service and *.timer pass
`systemd-analyze verify`, gunicorn tells systemd it is ready (the web unit is Type=notify), and
docs/deploy/nginx.conf, in front of two app instances, redirects to https, keeps the client's
address for the sign-in limit (a forged X-Forwarded-For is overwritten), carries the request id
through, spreads requests over both instances and keeps answering when one is down."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import missing_service
from tests.gunicorn_server import ROOT, free_port, running_gunicorn

DEPLOY = ROOT / "docs" / "deploy"
UNITS = ("foyer-web.service", "foyer-worker.service", "foyer-backup.service", "foyer-backup.timer")
HOST = "foyer.example.com"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        missing_service(package, f"{name} not found (apt-get install {package})")
    return found


def installed_here(text: str, tmp_path: Path) -> str:
    """A deploy file as it would read with Foyer installed in this checkout."""
    env_file = tmp_path / "foyer.env"
    shutil.copyfile(DEPLOY / "foyer.env", env_file)
    return text.replace("/opt/foyer", str(ROOT)).replace("/etc/foyer/foyer.env", str(env_file))


def test_the_systemd_units_verify(tmp_path):
    analyze = tool("systemd-analyze", "systemd")
    for unit in UNITS:
        (tmp_path / unit).write_text(installed_here((DEPLOY / unit).read_text(), tmp_path))
    checked = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / unit) for unit in UNITS)],
        capture_output=True,
        text=True,
        env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"),
        check=False,
    )
    # Any warning (an unknown key, a bad value, a missing program) is a mistake in the guide.
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr


def test_gunicorn_tells_systemd_it_is_ready(tmp_path, monkeypatch):
    """foyer-web.service is Type=notify: systemd waits for READY=1 before calling it started."""
    assert "Type=notify" in (DEPLOY / "foyer-web.service").read_text()
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "upgrade-db"],
        cwd=ROOT,
        env=dict(os.environ, FOYER_INSTANCE_PATH=str(tmp_path / "instance")),
        check=True,
        capture_output=True,
    )
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        systemd.settimeout(60)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        with running_gunicorn(tmp_path / "instance", workers=1):
            message = systemd.recv(4096).decode()
    assert "READY=1" in message.splitlines()


# nginx in front of two instances ----------------------------------------------------------------
@dataclass
class Proxy:
    http: str
    https: str
    logs: list[Path]
    stop_instance_b: Callable[[], None]
    certificate: str  # self-signed, for foyer.example.com and 127.0.0.1

    def get(self, path: str) -> requests.Response:
        return requests.get(
            self.https + path, headers={"Host": HOST}, verify=self.certificate, timeout=30
        )


def site_config(upstreams: list[str], http_port: int, https_port: int, certs: Path) -> str:
    """nginx.conf from the guide, pointed at these instances and ports and a self-signed cert."""
    text = (DEPLOY / "nginx.conf").read_text()
    servers = re.findall(r"^\s*server 10\.0\.0\.\d+:8000 (.*);$", text, flags=re.M)
    assert len(servers) == 2, "the guide's upstream lists two app hosts"
    text = re.sub(r"^\s*server 10\.0\.0\.\d+:8000 .*;\n", "", text, flags=re.M)
    lines = "".join(f"    server {u} {servers[0]};\n" for u in upstreams)
    text = text.replace("upstream foyer_app {\n", "upstream foyer_app {\n" + lines, 1)
    text = re.sub(r"^\s*listen \[::\].*\n", "", text, flags=re.M)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
    text = text.replace("/etc/ssl/foyer/fullchain.pem", str(certs / "cert.pem"))
    return text.replace("/etc/ssl/foyer/privkey.pem", str(certs / "key.pem"))


def main_config(folder: Path) -> str:
    temp = " ".join(
        f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    run_as = "user root;\n" if os.geteuid() == 0 else ""  # workers read nothing outside tmp
    return f"""{run_as}worker_processes 1;
daemon off;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 128; }}
http {{
    access_log {folder / "access.log"};
    {temp} uwsgi_temp_path {folder / "uwsgi"}; scgi_temp_path {folder / "scgi"};
    include {folder / "site.conf"};
}}
"""


def wait_for(url: str, certificate: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited:\n{log.read_text() if log.exists() else ''}")
        try:
            requests.get(url, timeout=2, verify=certificate)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail("nginx did not answer in 20 s")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[Proxy]:
    nginx = tool("nginx", "nginx-light")
    openssl = tool("openssl", "openssl")
    folder = tmp_path_factory.mktemp("proxy")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1", "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    database = f"sqlite:///{folder / 'foyer.sqlite3'}"
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "upgrade-db"],
        cwd=ROOT,
        env=dict(os.environ, FOYER_INSTANCE_PATH=str(folder / "a"), FOYER_DATABASE_URL=database),
        check=True,
        capture_output=True,
    )
    # As foyer.env says for hosts behind one proxy; limits in each process's memory (no Redis).
    settings = {
        "database_url": database,
        "secret_key": "proxy-test-secret-0123456789abcdef",
        "proxy_count": "1",
        "forwarded_allow_ips": "127.0.0.1",
        "login_rate_limit": "3 per minute",
        "jobs_in_process": "false",
    }
    with ExitStack() as stack:
        instance_b = ExitStack()
        stack.callback(instance_b.close)
        upstreams = [
            stack.enter_context(running_gunicorn(folder / "a", workers=1, **settings)),
            instance_b.enter_context(running_gunicorn(folder / "b", workers=1, **settings)),
        ]
        upstreams = [base.removeprefix("http://") for base in upstreams]
        http_port, https_port = free_port(), free_port()
        (folder / "site.conf").write_text(site_config(upstreams, http_port, https_port, folder))
        (folder / "nginx.conf").write_text(main_config(folder))
        command = [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        https = f"https://127.0.0.1:{https_port}"
        try:
            certificate = str(folder / "cert.pem")
            wait_for(https + "/healthz", certificate, server, folder / "error.log")
            logs = [folder / name / "gunicorn.log" for name in ("a", "b")]
            yield Proxy(f"http://127.0.0.1:{http_port}", https, logs, instance_b.close, certificate)
        finally:
            server.terminate()
            server.wait(10)


def test_plain_http_is_sent_to_https(proxy):
    answer = requests.get(
        proxy.http + "/bookings/", headers={"Host": HOST}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"https://{HOST}/bookings/"


def test_over_https_cookies_are_secure_and_hsts_is_sent(proxy):
    page = proxy.get("/sign-in")
    assert page.status_code == 200
    assert "max-age=" in page.headers["Strict-Transport-Security"]
    cookies = page.raw.headers.getlist("Set-Cookie")
    assert cookies and all("Secure" in cookie for cookie in cookies), cookies


def test_requests_are_spread_over_both_instances_with_the_request_id(proxy):
    ids = []
    for _ in range(6):
        answer = proxy.get("/healthz")
        assert answer.ok
        ids.append(answer.headers["X-Request-ID"])
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids), ids  # nginx's $request_id
    deadline = time.monotonic() + 10  # gunicorn writes its access line after the response
    while True:
        logs = [log.read_text() for log in proxy.logs]
        if all(f"rid={rid}" in "".join(logs) for rid in ids) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for log in logs:
        assert "GET /healthz" in log, "an instance got no request"
    for rid in ids:  # the app logged the proxy's id: one id across both logs
        assert sum(f"rid={rid}" in log for log in logs) == 1


def test_a_forged_forwarded_address_does_not_escape_the_sign_in_limit(proxy):
    """Each attempt claims another client address; nginx overwrites it with the real one, so
    the limit of 3 per minute (per process here: 2 instances) still stops the attacker."""
    statuses = []
    for attempt in range(8):
        browser = requests.Session()
        # Not Session.verify: requests lets REQUESTS_CA_BUNDLE override that one.
        browser.trust_env = False
        browser.verify = proxy.certificate
        browser.headers.update({"Host": HOST, "X-Forwarded-For": f"203.0.113.{attempt + 1}"})
        page = browser.get(proxy.https + "/sign-in", timeout=30)
        token = TOKEN.search(page.text).group(1)
        answer = browser.post(
            proxy.https + "/sign-in",
            data={"csrf_token": token, "email": "nobody@example.com", "password": "guess-xx"},
            headers={"Referer": f"https://{HOST}/sign-in"},
            timeout=30,
        )
        statuses.append(answer.status_code)
    assert statuses.count(429) >= 2 and statuses[-2:] == [429, 429], statuses
    assert set(statuses) <= {422, 429}, statuses


def test_with_one_instance_down_every_request_is_still_answered(proxy):
    """Last in this module: it stops instance B for good."""
    proxy.stop_instance_b()
    answers = [proxy.get("/sign-in").status_code for _ in range(6)]
    assert answers == [200] * 6
