"""The system under test for the load and fault scripts: 2 gunicorn instances + 1 job worker on a
private PostgreSQL and a private Redis, with a counting SMTP server on loopback.

Everything runs on free loopback ports from a temporary folder, so stopping or restarting the
database or Redis here never disturbs the machine's shared services (5432, 6379). Used by
bench/load_mix.py and bench/faults.py; `python -m bench.cluster` starts it and waits (Ctrl-C ends).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import psycopg
import redis
from aiosmtpd.controller import Controller

from tests.gunicorn_server import free_port, running_gunicorn, running_worker

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = (
    Path(sorted(glob("/usr/lib/postgresql/*/bin"))[-1])
    if glob("/usr/lib/postgresql/*/bin")
    else None
)
DEMO_PASSWORD = "foyer-demo"  # noqa: S105 - the demo company's published password


# --- SMTP ------------------------------------------------------------------------------------


@dataclass
class MailCatcher:
    """An aiosmtpd handler that counts accepted messages by Message-ID. `delay` seconds per
    message (before the server accepts it) make a delivery run long enough to be interrupted."""

    delay: float = 0.0
    message_ids: Counter[str] = field(default_factory=Counter)
    accepted_at: list[float] = field(default_factory=list)  # monotonic, one per message
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, _server, _session, envelope):  # noqa: ANN001, N802 - aiosmtpd API
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        message_id = ""
        for line in envelope.content.decode("utf-8", "replace").splitlines():
            if not line.strip():
                break  # end of the headers
            if line.lower().startswith("message-id:"):
                message_id = line.split(":", 1)[1].strip()
        with self.lock:
            self.message_ids[message_id] += 1
            self.accepted_at.append(time.monotonic())
        return "250 Message accepted for delivery"

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.message_ids.values())

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            return {mid: n for mid, n in self.message_ids.items() if n > 1}

    def reset(self) -> None:
        with self.lock:
            self.message_ids.clear()


# --- PostgreSQL ------------------------------------------------------------------------------


class PrivatePostgres:
    """initdb + pg_ctl into a temporary folder, on a free port. As root, the server runs as the
    postgres system user (PostgreSQL refuses to run as root)."""

    def __init__(self, folder: Path) -> None:
        if PG_BIN is None:
            raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.log = folder / "postgres.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            owner = pwd.getpwnam("postgres")
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/foyer"

    @property
    def libpq_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/foyer"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def init(self) -> None:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.folder}'\nmax_connections = 200\n"
                "shared_buffers = 128MB\n"
            )
        self.start()
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE foyer")

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        """What an operator's `systemctl restart postgresql` does: clients are disconnected."""
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w",
            "restart",
        )  # fmt: skip

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.libpq_url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []


# --- Redis -----------------------------------------------------------------------------------


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # appendonly: queued jobs survive a restart, as a production Redis for Foyer is set up
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.folder), "--save", "", "--appendonly", "yes",
                "--logfile", str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
        self.process = None


# --- the cluster -----------------------------------------------------------------------------


@dataclass
class Cluster:
    folder: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    mail: MailCatcher
    smtp_port: int
    secret_key: str
    bases: list[str] = field(default_factory=list)
    worker: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    _worker_block: ExitStack = field(default_factory=ExitStack)

    def flask(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def start_worker(self) -> None:
        """Start the job worker (tests/gunicorn_server.py's running_worker); returns once it runs."""
        assert self.worker is None or self.worker.poll() is not None
        self._worker_block = ExitStack()
        self.worker = self._worker_block.enter_context(
            running_worker(self.folder / "worker", **self.settings)
        )

    def kill_worker(self) -> None:
        """SIGKILL: no graceful shutdown, jobs in flight are cut off."""
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGKILL)
            self.worker.wait(10)
        self._worker_block.close()

    def stop_worker(self) -> None:
        """SIGTERM: running jobs finish (running_worker's own ending)."""
        self._worker_block.close()

    def app_errors(self) -> list[str]:
        """Each traceback in the gunicorn logs as one line: the message before it and the
        exception it ends with."""
        found = []
        for log in sorted(self.folder.glob("gunicorn-*/gunicorn.log")):
            lines = log.read_text(errors="replace").splitlines()
            for n, line in enumerate(lines):
                if not line.startswith("Traceback"):
                    continue
                end = next(
                    (m for m in range(n + 1, len(lines)) if not lines[m].startswith((" ", "\t"))),
                    len(lines) - 1,
                )
                before = lines[n - 1] if n else ""
                found.append(f"{before[-120:]} => {lines[end][:200]}")
        return found

    def gunicorn_workers(self) -> list[int]:
        """Pids of the gunicorn worker processes (children of the masters) of this cluster."""
        binds = {f"FOYER_BIND=127.0.0.1:{base.rsplit(':', 1)[1]}".encode() for base in self.bases}
        ours: dict[int, int] = {}  # pid -> parent pid
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if binds.intersection(environ):
                ours[int(entry.name)] = parent
        return sorted(pid for pid, parent in ours.items() if parent in ours)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def running_cluster(
    *,
    instances: int = 2,
    workers_per_instance: int = 2,
    employees_with_password: int = 40,
    extra_env: dict[str, str] | None = None,
    verbose: bool = True,
) -> Iterator[Cluster]:
    """Start the whole system, seeded with the demo company; yields a Cluster; stops it all."""

    def say(text: str) -> None:
        if verbose:
            print(f"[cluster] {text}", flush=True)

    folder = Path(tempfile.mkdtemp(prefix="foyer-cluster-"))
    os.chmod(folder, 0o755)  # the postgres user must reach its data folder below
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)
        started = time.monotonic()
        postgres = PrivatePostgres(folder / "pg")
        postgres.init()
        stack.callback(_quietly, postgres.stop, "immediate")
        say(f"PostgreSQL on 127.0.0.1:{postgres.port} ({PG_BIN})")
        private_redis = PrivateRedis(folder / "redis")
        private_redis.start()
        stack.callback(private_redis.stop)
        say(f"Redis on 127.0.0.1:{private_redis.port}")
        catcher = MailCatcher()
        smtp_port = free_port()
        controller = Controller(catcher, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        stack.callback(controller.stop)
        say(f"SMTP (aiosmtpd, counting) on 127.0.0.1:{smtp_port}")

        settings = {
            "database_url": postgres.url,
            "redis_url": private_redis.url,
            "secret_key": "cluster-" + secrets.token_hex(16),
            "mail_server": "127.0.0.1",
            "mail_port": str(smtp_port),
            "mail_use_tls": "0",
            "base_url": "http://127.0.0.1",
            # Clients come through a reverse proxy that sets X-Forwarded-For (the load scripts
            # send one address per simulated person), so per-address limits see many people.
            "proxy_count": "1",
            "log_level": "WARNING",
            **(extra_env or {}),
        }
        instance = folder / "instance"  # shared by every process: uploads are seen by all
        env = dict(os.environ)
        env.pop("FOYER_REDIS_URL", None)
        env.update({f"FOYER_{k.upper()}": v for k, v in settings.items()})
        env["FOYER_INSTANCE_PATH"] = str(instance)
        settings["instance_path"] = str(instance)
        cluster = Cluster(
            folder,
            postgres,
            private_redis,
            catcher,
            smtp_port,
            settings["secret_key"],
            env=env,
            settings=settings,
        )
        cluster.flask("upgrade-db")
        seed_started = time.monotonic()
        cluster.flask("seed-demo")
        say(f"migrated and seeded the demo company in {time.monotonic() - seed_started:.0f} s")
        give_passwords(postgres, employees_with_password)

        for n in range(instances):
            base = stack.enter_context(
                running_gunicorn(
                    folder / f"gunicorn-{n + 1}",
                    workers=workers_per_instance,
                    **settings,
                )
            )
            cluster.bases.append(base)
        say(
            f"{instances} gunicorn instances x {workers_per_instance} sync workers: "
            + ", ".join(cluster.bases)
        )
        cluster.start_worker()
        stack.callback(cluster.stop_worker)
        say(f"job worker pid {cluster.worker.pid}; ready in {time.monotonic() - started:.0f} s")
        yield cluster


def give_passwords(postgres: PrivatePostgres, count: int) -> None:
    """The demo's 200 people have no password (they would sign in with SSO); give `count` of
    them the demo password (Lena's hash), so the load signs them in through the real form."""
    postgres.query(
        """UPDATE users SET password_hash = (SELECT password_hash FROM users
                                              WHERE email = 'lena.fischer@example.com')
           WHERE id IN (SELECT id FROM users WHERE password_hash IS NULL AND active
                        ORDER BY id LIMIT %s)""",
        count,
    )


def _quietly(call, *args) -> None:  # noqa: ANN001
    try:
        call(*args)
    except Exception as exc:  # noqa: BLE001 - stopping what may already be stopped
        print(f"[cluster] while stopping: {exc}", file=sys.stderr)


def main() -> None:
    with running_cluster() as cluster:
        print("bases:", cluster.bases, "folder:", cluster.folder, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
