"""Background jobs that gave up (the dead-letter list the admin sees and retries) and, per task,
when it last succeeded (the queue's health)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, utcnow


class JobFailureState(enum.StrEnum):
    DEAD = "dead"  # gave up after its retries; waits for an admin
    RETRIED = "retried"  # an admin queued it again; it comes back to DEAD if it fails again
    RESOLVED = "resolved"  # the retry succeeded, or an admin dismissed it


OPEN_STATES = (JobFailureState.DEAD, JobFailureState.RETRIED)


class JobFailure(Base):
    """One task with its arguments that failed for good. While unresolved, the same task with the
    same arguments failing again counts up this row instead of adding one (a periodic task that
    fails every minute is one row): `open_key` is the digest of task and arguments while the row is
    open and NULL once resolved, and NULLs never collide in a unique constraint."""

    __tablename__ = "job_failures"
    __table_args__ = (
        UniqueConstraint("open_key"),
        Index("ix_job_failures_state_last_failed", "state", "last_failed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(String(120), index=True)  # e.g. "deliver_now"
    # The queue's registry name ("portal.jobs.deliver_now"): what Retry enqueues again.
    task_path: Mapped[str] = mapped_column(String(250))
    # {"args": [...], "kwargs": {...}}, or {"repr": "..."} when they are not JSON (not replayable)
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    replayable: Mapped[bool] = mapped_column(Boolean, default=True)
    open_key: Mapped[str | None] = mapped_column(String(64))
    error_type: Mapped[str] = mapped_column(String(200))
    error_message: Mapped[str] = mapped_column(Text, default="")
    traceback: Mapped[str] = mapped_column(Text, default="")  # the last one, its tail kept
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # runs, over every time it gave up
    times_failed: Mapped[int] = mapped_column(Integer, default=1)  # times it gave up while open
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default=JobFailureState.DEAD)
    retried_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retried_by: Mapped[str] = mapped_column(String(254), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str] = mapped_column(String(254), default="")  # an admin, or the queue


class JobHeartbeat(Base):
    """Per task name: when it last succeeded and failed, and how often. Written by the worker after
    every run, so the admin can see that periodic jobs really run (and Redis workers are alive)."""

    __tablename__ = "job_heartbeats"

    task_name: Mapped[str] = mapped_column(String(120), primary_key=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # any failed attempt
    successes: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)
