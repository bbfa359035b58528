"""Schedule state: each ``@scheduled`` endpoint's next planned tick, claimed once across workers.

A schedule that keeps its next tick only in the memory of one process ticks in every worker
that runs it, fires every ``every=`` job again at each restart, and cannot catch up after a
stop. The state is one instant per endpoint, the next planned tick, and one operation moves it:
:meth:`ScheduleStore.claim` sets it to the tick after, only if it still holds the value the
worker read (compare and set). The worker whose claim succeeds runs the tick; the others read
the new value and wait for it. After a stop, the stored instant lies in the past, and the
schedule's ``catch_up`` decides what runs.

:class:`InMemoryScheduleStore` is the default (tests, one process); adapters provide durable
ones (``SqliteScheduleStore``).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["ScheduleStore", "InMemoryScheduleStore"]


@runtime_checkable
class ScheduleStore(Protocol):
    """Where the next planned tick of each scheduled endpoint is kept."""

    def next_due(self, endpoint_id: str) -> datetime | None:
        """The endpoint's stored next tick, or None if it never ticked here."""
        ...

    def claim(self, endpoint_id: str, planned: datetime | None, following: datetime) -> bool:
        """Move the next tick from ``planned`` to ``following`` if it is still ``planned``.

        ``planned`` None claims the first tick of an endpoint that has none stored. True means
        this caller runs the tick planned at ``planned``; False, that another worker claimed it.
        """
        ...


class InMemoryScheduleStore:
    """Schedule state in this process's memory: the default, for tests and a single worker."""

    __slots__ = ("_lock", "_next")

    def __init__(self) -> None:
        self._next: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def next_due(self, endpoint_id: str) -> datetime | None:
        return self._next.get(endpoint_id)

    def claim(self, endpoint_id: str, planned: datetime | None, following: datetime) -> bool:
        with self._lock:
            if self._next.get(endpoint_id) != planned:
                return False
            self._next[endpoint_id] = following
            return True

    def __repr__(self) -> str:
        return f"InMemoryScheduleStore({len(self._next)} schedules)"
