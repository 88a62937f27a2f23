"""/metrics for Prometheus, behind a bearer token (FOYER_METRICS_TOKEN; without one the endpoint
does not exist), and the request timing every response feeds into it."""

from __future__ import annotations

import time

from flask import Blueprint, Response, abort, current_app, g, request

from portal.limits import limiter
from portal.request_scope import db
from portal.services import metrics

bp = Blueprint("metrics", __name__)


@bp.before_app_request
def start_timer() -> None:
    g.metrics_started = time.perf_counter()


@bp.after_app_request
def observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        metrics.observe_request(
            request.blueprint or "none", request.method, time.perf_counter() - started
        )
    return response


def _queue_figures() -> metrics.QueueFigures:
    jobs = current_app.extensions.get("foyer.jobs")
    try:
        return metrics.QueueFigures(jobs.queue.pending_count(), jobs.queue.scheduled_count())
    except Exception:  # noqa: BLE001 - an unreachable queue must not hide the other figures
        return metrics.QueueFigures(None, None)


@bp.get("/metrics")
@limiter.limit("120 per minute")
def scrape() -> Response:
    token = current_app.extensions["foyer.settings"].metrics_token
    if not token:
        abort(404)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not metrics.token_matches(
        metrics.token_hash(token), presented.strip()
    ):
        return Response(
            "A valid bearer token is needed.\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="foyer-metrics"'},
        )
    body = metrics.exposition(db(), _queue_figures())
    response = Response(body, content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
