"""Gunicorn settings for production: `gunicorn -c python:portal.gunicorn_conf wsgi:app`.

Sync workers: on these machines they gave the steadiest latency for CPU-bound page rendering."""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("FOYER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("FOYER_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "sync"
timeout = int(os.environ.get("FOYER_WORKER_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so a slow leak can never take a host down.
max_requests = 5000
max_requests_jitter = 500
# Trust X-Forwarded-* only from the reverse proxy's address(es).
forwarded_allow_ips = os.environ.get("FOYER_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
# The request id ties an access-log line to the app's log lines and audit events.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'


# /metrics sums request latency over every worker of this host when PROMETHEUS_MULTIPROC_DIR is
# set: the folder must start empty (old files would be summed in), and a worker that exits must
# be marked dead so its live gauges stop counting.
def on_starting(_server: object) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and os.path.isdir(folder):
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.remove(os.path.join(folder, name))


def child_exit(_server: object, worker: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
