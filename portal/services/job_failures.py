"""The dead-letter list of background jobs: what a task that gave up leaves behind, how often each
task succeeds, backoff between attempts, and the admin's Retry and Dismiss.

The queue (portal/jobs.py) calls `after_attempt` after every run of every task; it needs nothing
from Huey but the task's name, arguments and retry counters, so any task any module adds to the
queue is covered."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models.job_failures import OPEN_STATES, JobFailure, JobFailureState, JobHeartbeat
from portal.services.audit import Actor, record

log = logging.getLogger("portal.jobs.failures")

MAX_RETRY_DELAY = 3600.0  # seconds: backoff doubles up to an hour
MAX_MESSAGE = 2000
MAX_TRACEBACK = 8000
# A second click on Retry while the first retry may still be on its way is refused this long.
RETRY_COOLDOWN = timedelta(minutes=5)
QUEUE_ACTOR = Actor.system("job queue")
# user:password in URLs (Redis, SMTP, database) must not reach the admin page.
# Bounded repeats: linear time even on a huge message.
_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]{0,30}://)[^/\s@:]{0,200}:[^/\s@]{0,200}@", re.IGNORECASE
)


class TaskRun(Protocol):
    """What we read from a Huey task (duck-typed, so this module needs no Huey)."""

    name: str
    args: tuple[Any, ...] | list[Any]
    kwargs: dict[str, Any] | None
    retries: int
    default_retries: int


def retry_delay(attempt: int, base: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base, 2×, 4× ... capped."""
    return min(base * 2 ** (attempt - 1), MAX_RETRY_DELAY)


def attempt_number(task: TaskRun) -> int:
    """Which run this was: Huey counts retries down from the task's default."""
    return max(1, task.default_retries - task.retries + 1)


def is_final(task: TaskRun) -> bool:
    """No retries left: this failure is the last."""
    return task.retries <= 0


@dataclass(frozen=True)
class Arguments:
    stored: dict[str, Any]
    replayable: bool
    digest_source: str


def arguments_of(task: TaskRun) -> Arguments:
    args, kwargs = list(task.args or ()), dict(task.kwargs or {})
    try:
        text = json.dumps({"args": args, "kwargs": kwargs}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        shown = f"args={args!r} kwargs={kwargs!r}"[:MAX_MESSAGE]
        return Arguments({"repr": shown}, False, shown)
    return Arguments(json.loads(text), True, text)


def call_text(arguments: dict[str, Any]) -> str:
    """The arguments as the admin reads them: `42, door_group="lobby-east"`."""
    if "repr" in arguments:
        return str(arguments["repr"])
    parts = [json.dumps(a, ensure_ascii=False) for a in arguments.get("args") or []]
    kwargs = arguments.get("kwargs") or {}
    parts += [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(kwargs.items())]
    return ", ".join(parts)


def open_key(task_path: str, arguments: Arguments) -> str:
    source = f"{task_path}\n{arguments.digest_source}"
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def scrub(text: str) -> str:
    return _CREDENTIALS.sub(lambda m: m.group("scheme") + "***@", text)


def describe(exc: BaseException) -> tuple[str, str, str]:
    """(type, message, traceback) as shown to the admin: credentials masked, the traceback's tail
    kept (the innermost frames say most)."""
    kind = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        kind = f"{module}.{kind}"
    message = scrub(str(exc))
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    trace = scrub("".join(tb.format_exception(type(exc), exc, exc.__traceback__)))
    if len(trace) > MAX_TRACEBACK:
        trace = "… (earlier frames cut)\n" + trace[-MAX_TRACEBACK:]
    return kind[:200], message, trace


# --- what the worker records after each run ------------------------------------------------------


def after_attempt(
    writer: Callable[[], Session],
    task: TaskRun,
    task_path: str,
    exc: BaseException | None,
    now: datetime,
) -> None:
    """Record a run: a success (heartbeat; a retried dead letter is resolved), a failed attempt
    (heartbeat) and, when it was the last, the dead letter. Never raises: bookkeeping must not
    turn a task's success into a failure, and the queue keeps working if the database does not."""
    try:
        with writer() as session, session.begin():
            if exc is None:
                record_success(session, task, task_path, now)
            else:
                _beat(session, task.name, now, success=False)
                if is_final(task):
                    record_dead_letter(session, task, task_path, exc, now)
    except Exception:  # noqa: BLE001 - logged; the queue must carry on
        outcome = "success" if exc is None else f"failure ({type(exc).__name__})"
        log.exception("could not record the %s of job %s", outcome, task.name)


def record_success(session: Session, task: TaskRun, task_path: str, now: datetime) -> int:
    """Heartbeat, and resolve this task's retried dead letters with the same arguments: the cause
    is gone. Returns how many were resolved."""
    _beat(session, task.name, now, success=True)
    key = open_key(task_path, arguments_of(task))
    retried = list(
        session.scalars(
            select(JobFailure).where(
                JobFailure.open_key == key, JobFailure.state == JobFailureState.RETRIED
            )
        )
    )
    for failure in retried:
        failure.state = JobFailureState.RESOLVED
        failure.open_key = None
        failure.resolved_at = now
        failure.resolved_by = "retry succeeded"
        record(session, QUEUE_ACTOR, "job.resolved", failure, after={"task": failure.task_name})
    return len(retried)


def record_dead_letter(
    session: Session, task: TaskRun, task_path: str, exc: BaseException, now: datetime
) -> JobFailure:
    """The task gave up: add it to the dead-letter list, or count up its open row."""
    arguments = arguments_of(task)
    key = open_key(task_path, arguments)
    error_type, message, trace = describe(exc)
    attempts = attempt_number(task)
    for _ in range(2):  # a second worker may insert the same open row at the same moment
        failure = _open_failure(session, key)
        if failure is not None:
            failure.times_failed += 1
            failure.attempts += attempts
            failure.last_failed_at = now
            failure.state = JobFailureState.DEAD
            failure.error_type, failure.error_message, failure.traceback = (
                error_type,
                message,
                trace,
            )
            session.flush()
            return failure
        failure = JobFailure(
            task_name=task.name[:120],
            task_path=task_path[:250],
            arguments=arguments.stored,
            replayable=arguments.replayable,
            open_key=key,
            error_type=error_type,
            error_message=message,
            traceback=trace,
            attempts=attempts,
            times_failed=1,
            first_failed_at=now,
            last_failed_at=now,
            state=JobFailureState.DEAD,
        )
        try:
            with session.begin_nested():
                session.add(failure)
        except IntegrityError:
            continue  # the other worker's row exists now: count it up instead
        log.warning("job %s gave up after %d attempts: %s", task.name, attempts, error_type)
        return failure
    raise RuntimeError("could not record the dead letter")  # pragma: no cover - two lost races


def _open_failure(session: Session, key: str) -> JobFailure | None:
    stmt = select(JobFailure).where(JobFailure.open_key == key)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def _beat(session: Session, task_name: str, now: datetime, *, success: bool) -> None:
    """One upsert per run (PostgreSQL and SQLite share the ON CONFLICT form)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = JobHeartbeat.__table__
    if success:
        values = {"last_success_at": now, "successes": 1, "failures": 0}
        changes = {"last_success_at": now, "successes": table.c.successes + 1}
    else:
        values = {"last_failure_at": now, "successes": 0, "failures": 1}
        changes = {"last_failure_at": now, "failures": table.c.failures + 1}
    stmt = insert(table).values(task_name=task_name[:120], **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["task_name"], set_=changes))


# --- the admin's operations -------------------------------------------------------------------------


def retryable(failure: JobFailure, now: datetime) -> bool:
    if not failure.replayable or failure.state == JobFailureState.RESOLVED:
        return False
    if failure.state == JobFailureState.RETRIED and failure.retried_at is not None:
        return now - failure.retried_at >= RETRY_COOLDOWN
    return True


def mark_retried(session: Session, actor: Actor, failure: JobFailure, now: datetime) -> None:
    """Mark it retried; the caller enqueues the task again after the commit. A conditional update,
    so two admins clicking at once queue it once."""
    if failure.state == JobFailureState.RESOLVED:
        raise RuleViolation("This job is already resolved.")
    if not failure.replayable:
        raise RuleViolation("Its arguments could not be stored, so this job cannot be run again.")
    if not retryable(failure, now):
        raise RuleViolation("It was queued again a moment ago; wait for that run.")
    claimed = session.execute(
        update(JobFailure)
        .where(JobFailure.id == failure.id, JobFailure.state == failure.state)
        .where(
            JobFailure.retried_at.is_(None)
            if failure.retried_at is None
            else JobFailure.retried_at == failure.retried_at
        )
        .values(state=JobFailureState.RETRIED, retried_at=now, retried_by=actor.label[:254])
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(failure)
        raise RuleViolation("Someone else acted on this job a moment ago.")
    session.refresh(failure)
    record(session, actor, "job.retried", failure, after={"task": failure.task_name})


def retry_not_queued(session: Session, failure: JobFailure) -> None:
    """The queue was unreachable after all: back to the list as it was."""
    failure.state = JobFailureState.DEAD
    failure.retried_at = None
    failure.retried_by = ""


def dismiss(session: Session, actor: Actor, failure: JobFailure, now: datetime) -> None:
    """An admin decides it needs nothing more (e.g. the booking it was about is gone)."""
    if failure.state == JobFailureState.RESOLVED:
        raise RuleViolation("This job is already resolved.")
    before = {"state": failure.state}
    failure.state = JobFailureState.RESOLVED
    failure.open_key = None
    failure.resolved_at = now
    failure.resolved_by = actor.label[:254]
    record(session, actor, "job.dismissed", failure, before=before, after={"state": "resolved"})


# --- reading ---------------------------------------------------------------------------------------

OPEN = "open"  # the list's default filter: dead and retried
STATE_FILTERS = [OPEN, *(s.value for s in JobFailureState), "all"]


def failures(
    session: Session, *, state: str = OPEN, task: str = "", offset: int = 0, limit: int = 50
) -> list[JobFailure]:
    stmt = select(JobFailure)
    if state == OPEN:
        stmt = stmt.where(JobFailure.state.in_([s.value for s in OPEN_STATES]))
    elif state in {s.value for s in JobFailureState}:
        stmt = stmt.where(JobFailure.state == state)
    if task:
        stmt = stmt.where(JobFailure.task_name == task)
    stmt = stmt.order_by(JobFailure.last_failed_at.desc(), JobFailure.id.desc())
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def counts_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(JobFailure.state, func.count()).group_by(JobFailure.state))
    counts = {s.value: 0 for s in JobFailureState}
    counts.update({state: n for state, n in rows})
    counts[OPEN] = sum(counts[s.value] for s in OPEN_STATES)
    counts["all"] = sum(counts[s.value] for s in JobFailureState)
    return counts


def task_names(session: Session) -> list[str]:
    return list(session.scalars(select(JobFailure.task_name).distinct().order_by("task_name")))


def heartbeats(session: Session) -> dict[str, JobHeartbeat]:
    return {beat.task_name: beat for beat in session.scalars(select(JobHeartbeat))}


# --- the periodic tasks' schedules, in words ----------------------------------------------------------

_SAMPLE_DAY = datetime(2026, 1, 5)  # a Monday; naive UTC, as Huey's scheduler passes the time


@dataclass(frozen=True)
class Schedule:
    text: str
    interval: timedelta  # how often it runs: a last success much older than this means trouble

    def overdue(self, last_success: datetime | None, now: datetime) -> bool:
        """Missed at least two runs (with five minutes' grace for a busy queue)."""
        if last_success is None:
            return False
        return now - last_success > 2 * self.interval + timedelta(minutes=5)


def describe_schedule(runs_at: Callable[[datetime], bool]) -> Schedule:
    """A periodic task's crontab in words, found by asking it about every minute of one week
    (about 20 ms: cache it)."""
    week = [
        [m for m in range(24 * 60) if runs_at(_SAMPLE_DAY + timedelta(days=d, minutes=m))]
        for d in range(7)
    ]
    hits = week[0]
    if any(day != hits for day in week):
        runs = sum(len(day) for day in week)
        if runs == 1:
            day = next(d for d, minutes in enumerate(week) if minutes)
            hour, minute = divmod(week[day][0], 60)
            weekday = (_SAMPLE_DAY + timedelta(days=day)).strftime("%A")
            return Schedule(f"weekly on {weekday} at {hour:02d}:{minute:02d} UTC", timedelta(7))
        return Schedule(f"{runs} times a week", timedelta(days=7) / runs)
    count = len(hits)
    if count == 0:
        return Schedule("less often than weekly", timedelta(days=30))
    if count == 24 * 60:
        return Schedule("every minute", timedelta(minutes=1))
    if count == 24 and len({m % 60 for m in hits}) == 1:
        return Schedule(f"hourly at :{hits[0] % 60:02d}", timedelta(hours=1))
    gaps = {b - a for a, b in zip(hits, [*hits[1:], hits[0] + 24 * 60], strict=True)}
    if len(gaps) == 1 and count > 1:
        gap = gaps.pop()
        if gap % 60 == 0:
            return Schedule(f"every {gap // 60} hours", timedelta(minutes=gap))
        return Schedule(f"every {gap} minutes", timedelta(minutes=gap))
    if count <= 4:
        times = " and ".join(f"{m // 60:02d}:{m % 60:02d}" for m in hits)
        return Schedule(f"daily at {times} UTC", timedelta(days=1) / count)
    return Schedule(f"{count} times a day", timedelta(days=1) / count)
