"""Admin: background jobs. The dead-letter list (tasks that gave up after their retries, with the
error) with Retry and Dismiss, and the queue's health: how many tasks wait, who runs them, and when
each periodic task last succeeded."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, flash, request, url_for

from portal import htmx
from portal.blueprints.context import actor
from portal.db import utcnow
from portal.errors import RuleViolation
from portal.jobs import Jobs
from portal.models import Role
from portal.models.job_failures import JobFailure, JobHeartbeat
from portal.permissions import load_or_404, role_required
from portal.request_scope import commit, db
from portal.services import job_failures

log = logging.getLogger("portal.jobs")

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
PAGE_SIZE = 50
_schedules: dict[str, job_failures.Schedule] = {}  # per task name; crontabs never change


@bp.app_template_filter("job_arguments")
def job_arguments(arguments: dict[str, Any]) -> str:
    return job_failures.call_text(arguments)


def _jobs() -> Jobs:
    return current_app.extensions["foyer.jobs"]


@dataclass(frozen=True)
class PeriodicRow:
    name: str
    schedule: job_failures.Schedule
    beat: JobHeartbeat | None
    overdue: bool


@dataclass(frozen=True)
class QueueHealth:
    mode: str  # redis | in-process | none
    running_here: bool  # this web process's consumer thread is started
    pending: int | None  # None: the queue could not be reached
    scheduled: int | None
    error: str
    periodic: list[PeriodicRow]
    on_demand: list[JobHeartbeat]  # tasks run on request that have run at least once


def _queue_health(now: datetime) -> QueueHealth:
    jobs = _jobs()
    pending = scheduled = None
    error = ""
    try:
        pending, scheduled = jobs.queue.pending_count(), jobs.queue.scheduled_count()
    except Exception as exc:  # noqa: BLE001 - an unreachable Redis is shown, not a 500
        log.warning("job queue unreachable from the admin page: %s", type(exc).__name__)
        error = job_failures.scrub(f"{type(exc).__name__}: {exc}")[:300]
    beats = job_failures.heartbeats(db())
    periodic = []
    for name, runs_at in sorted(jobs.periodic_tasks().items()):
        schedule = _schedules.get(name)
        if schedule is None:
            schedule = _schedules[name] = job_failures.describe_schedule(runs_at)
        beat = beats.pop(name, None)
        last = beat.last_success_at if beat else None
        periodic.append(PeriodicRow(name, schedule, beat, schedule.overdue(last, now)))
    return QueueHealth(
        mode=jobs.consumer_mode(),
        running_here=jobs.consumer is not None,
        pending=pending,
        scheduled=scheduled,
        error=error,
        periodic=periodic,
        on_demand=sorted(beats.values(), key=lambda b: b.task_name),
    )


def _filters() -> tuple[str, str, int]:
    state = request.args.get("state", job_failures.OPEN)
    state = state if state in job_failures.STATE_FILTERS else job_failures.OPEN
    task = request.args.get("task", "").strip()[:120]
    page = max(1, min(request.args.get("page", 1, type=int) or 1, 10_000))
    return state, task, page


@bp.get("/")
@role_required(Role.ADMIN)
def index() -> Response:
    state, task, page = _filters()
    found = job_failures.failures(
        db(), state=state, task=task, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1
    )
    now = utcnow()
    context = {
        "rows": found[:PAGE_SIZE],
        "more": len(found) > PAGE_SIZE,
        "page_number": page,
        "state_filter": state,
        "task_filter": task,
        "now": now,
    }
    if not htmx.wants_fragment():  # the fragment is only the rows: skip the rest
        context.update(
            counts=job_failures.counts_by_state(db()),
            task_names=sorted(set(job_failures.task_names(db())) | ({task} if task else set())),
            health=_queue_health(now),
        )
    return htmx.render("admin/jobs/index.html", "admin/jobs/_rows.html", **context)


@bp.get("/<int:failure_id>")
@role_required(Role.ADMIN)
def failure(failure_id: int) -> Response:
    found = load_or_404(db(), JobFailure, failure_id)
    now = utcnow()
    beat = db().get(JobHeartbeat, found.task_name)
    succeeded_since = (
        beat is not None
        and beat.last_success_at is not None
        and beat.last_success_at > found.last_failed_at
    )
    return htmx.render(
        "admin/jobs/failure.html",
        failure=found,
        retryable=job_failures.retryable(found, now) and _jobs().knows(found.task_path),
        task_known=_jobs().knows(found.task_path),
        succeeded_since=beat.last_success_at if succeeded_since and beat else None,
        now=now,
    )


@bp.post("/<int:failure_id>/retry")
@role_required(Role.ADMIN)
def retry(failure_id: int) -> Response:
    found = load_or_404(db(), JobFailure, failure_id)
    here = url_for("admin.jobs.failure", failure_id=found.id)
    jobs = _jobs()
    if not jobs.knows(found.task_path):
        flash("This version of Foyer has no such task any more: dismiss it instead.", "error")
        return htmx.redirect_to(here)
    try:
        job_failures.mark_retried(db(), actor(), found, utcnow())
    except RuleViolation as violation:
        flash(violation.message, "error")
        return htmx.redirect_to(here)
    commit()  # first the record, then the queue: a fast worker finds the row already "retried"
    try:
        jobs.enqueue_again(found.task_path, found.arguments)
    except Exception as exc:  # noqa: BLE001 - the queue (Redis) is unreachable: say so, undo
        log.warning("could not queue job %s again: %s", found.task_name, type(exc).__name__)
        job_failures.retry_not_queued(db(), found)
        commit()
        flash("The job queue cannot be reached right now; nothing was queued. Try again.", "error")
        return htmx.redirect_to(here)
    flash("Queued again. If it fails again it comes back to this list.", "success")
    return htmx.redirect_to(here)


@bp.post("/<int:failure_id>/dismiss")
@role_required(Role.ADMIN)
def dismiss(failure_id: int) -> Response:
    found = load_or_404(db(), JobFailure, failure_id)
    here = url_for("admin.jobs.failure", failure_id=found.id)
    try:
        job_failures.dismiss(db(), actor(), found, utcnow())
    except RuleViolation as violation:
        flash(violation.message, "error")
        return htmx.redirect_to(here)
    commit()
    flash("Dismissed: marked resolved.", "success")
    return htmx.redirect_to(here)
