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
