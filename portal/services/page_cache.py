"""A process-local cache for the shared, costly part of the desk plan and room timeline, checked
against the database's version counters (portal/models/page_versions.py) on every request.

Nothing is served on trust: each request reads the sum of the page's counters (one indexed query)
and uses an entry only if it was built at that very sum, so a change committed by any process on
any host shows at once. Entries hold what is the same for everybody who looks; whatever depends
on the viewer (their own booking, a desk assigned to them, their team) is laid over per request."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from portal.models.page_versions import (
    PageVersion,
    booking_scope,
    resource_scope,
    utc_dates,
)

T = TypeVar("T")
GLOBAL_SCOPES = ("all", "people", "spaces")


def floor_scopes(floor_id: int, start: datetime, end: datetime) -> list[str]:
    """The counters a floor's page for [start, end) depends on."""
    return [
        *GLOBAL_SCOPES,
        resource_scope(floor_id),
        *(booking_scope(floor_id, day) for day in utc_dates(start, end)),
    ]


def version_of(scopes: Iterable[str]) -> ScalarSelect[int]:
    """The sum of the counters, as a subquery (to ask in the same round trip as something else)."""
    return (
        select(func.coalesce(func.sum(PageVersion.version), 0))
        .where(PageVersion.key.in_(list(scopes)))
        .scalar_subquery()
    )


def version(session: Session, scopes: Iterable[str]) -> int:
    """The sum of the counters: it grows whenever anything in these scopes changes."""
    return int(session.execute(select(version_of(scopes))).scalar_one())


class PageCache:
    """A small LRU of entries keyed by (what, ..., version). Old versions simply age out."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_build(self, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
        value = build()  # outside the lock: two first viewers may both build, harmlessly
        with self._lock:
            self.misses += 1
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def cache_for(extensions: dict[str, Any], size: int = 64) -> PageCache:
    """The app's cache (one per app object, so per process; tests each get their own)."""
    cache = extensions.get("foyer.page_cache")
    if cache is None:
        cache = extensions.setdefault("foyer.page_cache", PageCache(size))
    return cache
