"""The asyncio twin of the in-memory transport: the same channel, awaitable.

:class:`AsyncMemoryTransport` holds its messages in a :class:`MemoryTransport` and adds only what
asyncio needs: a ``receive`` with ``wait`` that suspends the task instead of blocking the event
loop. Everything else (copies on the way in and out, leases on the injected clock, delays,
priority, stale receipts, ``pending`` and ``next_due``) is the sync transport's code, so the two
cannot drift apart: the conformance suite runs the same checks against both.

Why not a second implementation: the sync transport's work is a few dictionary and heap
operations under a lock that is never held across a wait, so calling it from a coroutine never
stalls the loop. Only its blocking long poll would, and that is the one part replaced here:
a waiting receive parks a future that a ``send`` or ``release`` on the same channel resolves,
and otherwise sleeps until the earliest due time on the channel (a delay or a lease running
out) or the end of ``wait``, whichever comes first. No polling loop.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta

from conveyor.core.clock import Clock
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Capabilities, ChannelOptions, Delivery, WireMessage

__all__ = ["AsyncMemoryTransport"]

_NO_TIME = timedelta(0)


class AsyncMemoryTransport:
    """An in-memory :class:`~conveyor.transports.seam.AsyncInspectableTransport` (and renewable).

    Safe for many tasks, and for tasks on several event loops in several threads: a waiting
    receive is woken on its own loop.

    Args:
        clock: where "now" comes from for delays and leases; a ``VirtualClock`` in tests.
        max_size: the largest message (body plus headers, in bytes) ``send`` accepts; None for
            no limit.
    """

    __slots__ = ("_clock", "_guard", "_inner", "_waiters")

    def __init__(self, clock: Clock, *, max_size: int | None = None) -> None:
        self._clock = clock
        self._inner = MemoryTransport(clock, max_size=max_size)
        self._guard = threading.Lock()
        # channel -> the futures of receives waiting on it, each with the loop it belongs to
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    @property
    def capabilities(self) -> Capabilities:
        """As :class:`MemoryTransport`: delay (1 ms), priority, FIFO; no TTL, not durable."""
        return self._inner.capabilities

    async def declare(self, options: ChannelOptions) -> None:
        """Create the channel if it does not exist; messages already on it stay."""
        self._inner.declare(options)

    async def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        """Store a copy of ``message`` (see :meth:`MemoryTransport.send`) and wake a waiter."""
        self._inner.send(
            channel, message, available_at=available_at, priority=priority, expires_at=expires_at
        )
        self._wake(channel)

    async def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        """Lease up to ``max_messages`` due messages (highest priority, then send order).

        With ``wait``, suspend up to that long for the first message: woken by a send or a
        release on the channel, or when a delayed or leased message there falls due.
        """
        taken = self._inner.receive(channel, lease=lease, max_messages=max_messages)
        if taken or wait is None or wait <= _NO_TIME:
            return taken
        try:
            async with asyncio.timeout(wait.total_seconds()):
                while not taken:
                    await self._until_woken(channel)
                    taken = self._inner.receive(channel, lease=lease, max_messages=max_messages)
        except TimeoutError:
            taken = self._inner.receive(channel, lease=lease, max_messages=max_messages)
        return taken

    async def ack(self, delivery: Delivery) -> None:
        """Forget the delivered message for good (see :meth:`MemoryTransport.ack`)."""
        self._inner.ack(delivery)

    async def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        """Give the message back from ``available_at`` (or now), and wake a waiter."""
        self._inner.release(delivery, available_at=available_at)
        self._wake(delivery.channel)

    async def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        """Extend the lease of ``delivery`` to ``lease`` from now."""
        self._inner.renew(delivery, lease=lease)

    async def pending(self, channel: str) -> int:
        """Messages stored on the channel: due, delayed and leased alike."""
        return self._inner.pending(channel)

    async def next_due(self, channel: str) -> datetime | None:
        """The earliest instant a message on the channel is receivable, or None when empty."""
        return self._inner.next_due(channel)

    async def close(self) -> None:
        """Drop every message and wake every waiting receive, which then raises
        ``TransportClosed``. Closing again is a no-op."""
        self._inner.close()
        with self._guard:
            channels = list(self._waiters)
        for channel in channels:
            self._wake(channel)

    def __repr__(self) -> str:
        return f"Async{self._inner!r}"

    async def _until_woken(self, channel: str) -> None:
        """Suspend until the channel is woken or its earliest due time comes round."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._guard:
            self._waiters.setdefault(channel, []).append(entry)
        try:
            due = self._inner.next_due(channel)  # raises TransportClosed once closed
            if due is None:
                await future
            else:
                left = max((due - self._clock.now()).total_seconds(), 0.0)
                await asyncio.wait((future,), timeout=left)
        finally:
            with self._guard:
                waiting = self._waiters.get(channel)
                if waiting is not None:
                    if entry in waiting:
                        waiting.remove(entry)
                    if not waiting:
                        del self._waiters[channel]
            future.cancel()

    def _wake(self, channel: str) -> None:
        with self._guard:
            waiting = self._waiters.pop(channel, None)
        if not waiting:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, future in waiting:
            if loop is running:
                _resolve(future)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
