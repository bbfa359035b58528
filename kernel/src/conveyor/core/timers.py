"""A queue of timers ordered by due time, ties broken by insertion order.

Every "not before" in Conveyor (a delayed send, a retry backoff, a lease that runs out) is a timer.
:class:`TimerQueue` is the one data structure that holds them: a binary heap keyed by
``(due, seq)``, so the earliest timer comes first and timers due at the same instant come out in
the order they were pushed (DESIGN rule 5: FIFO with a sequence number to break ties).

It holds no clock. The caller says what "now" is, which keeps the queue a pure value that tests
drive with any instant and that a virtual clock can step through exactly.

Cancelling is lazy, as the :mod:`heapq` documentation recommends: a cancelled timer stays in the
heap, marked, and is skipped when it reaches the top. As there too, the heap's entry is a list
``[due, seq, item, queue]`` that is also the handle (:class:`Timer`), so a push makes one object
in C: every delayed message and every lease has a timer, and a handle object with its own
``__init__`` beside a tuple for the heap cost a Python call and about 40 more bytes each.

When cancelled timers outnumber live ones the heap is rebuilt, so memory stays proportional to the
live timers even when almost every timer is cancelled (a lease that is acknowledged before it runs
out is the common case).
"""

from __future__ import annotations

import heapq
from datetime import datetime
from itertools import count
from typing import Any, Generic, TypeVar

__all__ = ["Timer", "TimerQueue"]

T = TypeVar("T")

_COMPACT_AT_LEAST = 64
"""Below this many cancelled timers a rebuild costs more than the memory it gives back."""


_DUE, _SEQ, _ITEM, _QUEUE = range(4)
"""The places in a :class:`Timer`; the heap compares ``due``, then ``seq`` (never equal)."""


class Timer(list[Any], Generic[T]):
    """The handle of one pushed timer (what :meth:`TimerQueue.cancel` takes) and its heap entry.

    A handle, not a value: it knows whether it is still pending (its queue is None once it is
    popped or cancelled), which lets ``cancel`` be a harmless no-op for a timer that already
    fired or was cancelled before. Read it through its properties, never by index.
    """

    __slots__ = ()

    @property
    def due(self) -> datetime:
        due: datetime = self[_DUE]
        return due

    @property
    def seq(self) -> int:
        seq: int = self[_SEQ]
        return seq

    @property
    def item(self) -> T:
        item: T = self[_ITEM]
        return item

    @property
    def pending(self) -> bool:
        """True until the timer is popped or cancelled."""
        return self[_QUEUE] is not None

    def __repr__(self) -> str:
        state = "pending" if self.pending else "done"
        return f"Timer(due={self.due.isoformat()}, seq={self.seq}, {state}, item={self.item!r})"


class TimerQueue(Generic[T]):
    """Items that become due at an instant, popped earliest first and FIFO among equal instants.

    Every operation is O(log n) (``cancel`` is O(1), with an amortised O(1) rebuild).

    Example:
        >>> from datetime import UTC, datetime
        >>> queue: TimerQueue[str] = TimerQueue()
        >>> noon = datetime(2026, 1, 1, 12, tzinfo=UTC)
        >>> _ = queue.push(noon, "a")
        >>> queue.pop_due(noon.replace(hour=11)) is None
        True
        >>> queue.pop_due(noon)
        'a'
    """

    __slots__ = ("_cancelled", "_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[Timer[T]] = []
        self._seq = count()
        self._cancelled = 0

    def push(self, due: datetime, item: T) -> Timer[T]:
        """Schedule ``item`` to become due at ``due``; keep the handle to cancel it."""
        timer: Timer[T] = Timer((due, next(self._seq), item, self))
        heapq.heappush(self._heap, timer)
        return timer

    def cancel(self, timer: Timer[T]) -> bool:
        """Forget a pending timer; False, and nothing done, if it already fired or was cancelled.

        Raises:
            ValueError: the handle is pending in another queue; cancelling it here would
                corrupt both queues' counts.
        """
        owner = timer[_QUEUE]
        if owner is None:
            return False
        if owner is not self:
            raise ValueError(
                f"{timer!r} belongs to another TimerQueue; cancel it on the queue that pushed it."
            )
        timer[_QUEUE] = None
        self._cancelled += 1
        if self._cancelled >= _COMPACT_AT_LEAST and self._cancelled * 2 > len(self._heap):
            self._compact()
        return True

    def pop_due(self, now: datetime) -> T | None:
        """Remove and return the earliest item due at or before ``now``, or None if none is due."""
        heap = self._heap
        while heap:
            timer = heap[0]
            if timer[_QUEUE] is None:
                heapq.heappop(heap)
                self._cancelled -= 1
                continue
            if timer[_DUE] > now:
                return None
            heapq.heappop(heap)
            timer[_QUEUE] = None
            item: T = timer[_ITEM]
            return item
        return None

    def peek_due(self) -> datetime | None:
        """The instant the earliest pending timer is due, or None when nothing is pending."""
        heap = self._heap
        while heap and heap[0][_QUEUE] is None:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][_DUE] if heap else None

    def __len__(self) -> int:
        """Pending timers; cancelled ones still waiting to be swept out do not count."""
        return len(self._heap) - self._cancelled

    def __repr__(self) -> str:
        return f"TimerQueue(pending={len(self)}, next_due={self.peek_due()})"

    def _compact(self) -> None:
        """Drop every cancelled timer at once and restore the heap order."""
        self._heap = [timer for timer in self._heap if timer[_QUEUE] is not None]
        heapq.heapify(self._heap)
        self._cancelled = 0
