"""The HTTP Retry-After header (RFC 9110) as seconds, for every client that talks to a server
which may throttle it (calendar vendors, access-control systems)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A server asking for more than an hour is mistaken or broken; our own backoff takes over.
MAX_RETRY_AFTER = 3600.0


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from now: the header is either delta-seconds or an HTTP date; None when absent
    or unreadable; never negative, at most MAX_RETRY_AFTER."""
    if not value:
        return None
    value = value.strip()
    if value.isdecimal():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
