"""``AsyncSqliteTransport``: the asyncio twin of ``SqliteTransport``, on one worker thread.

How: every call runs the sync transport's own method on a worker thread of this transport's
(``loop.run_in_executor``), and the task awaits it. So the semantics are ``SqliteTransport``'s to
the letter (the same statements, leases and fencing; both pass the same conformance suite), and
the event loop never blocks on the disk, an fsync or another process's write lock.

Why one thread and not aiosqlite or a pool: ``sqlite3`` calls block, so they must leave the loop;
aiosqlite does exactly this (a thread per connection) and would be a second implementation to
keep in step. One thread per transport, because its one connection serializes statements anyway:
more threads would queue on the same lock. The thread is started on the first call and stopped
by ``close``.

The long poll: SQLite has no notification, so ``receive(wait=...)`` polls the file every 50 ms
(as the sync transport does) but waits between polls on the loop, not on the thread, so sends
and acks of other tasks go through meanwhile; a ``send`` or ``release`` through this transport
wakes a waiting receive on its channel at once. The kernel passes ``wait`` only on a real clock.

The outbox (``connection=``) is not offered: the application's connection lives on the
application's thread, and its transaction cannot be joined from this one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from conveyor.core.clock import Clock
from conveyor.core.ids import IdGenerator
from conveyor.transports.seam import Capabilities, ChannelOptions, Delivery, WireMessage
from conveyor_sqlite.database import Synchronous
from conveyor_sqlite.transport import SqliteTransport

__all__ = ["AsyncSqliteTransport"]

T = TypeVar("T")

_POLL = 0.05
"""Seconds between a long poll's looks at the file when nothing woke it."""


class AsyncSqliteTransport:
    """An inspectable, renewable, durable asyncio transport on a SQLite file (see the module
    docstring).

    Args: as ``SqliteTransport``, without ``connection``.
    """

    __slots__ = ("_closed", "_executor", "_sync", "_waiters")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock,
        ids: IdGenerator | None = None,
        max_size: int | None = None,
        busy_timeout: timedelta = timedelta(seconds=5),
        synchronous: Synchronous = "FULL",
    ) -> None:
        self._closed = False
        self._sync = SqliteTransport(
            path,
            clock=clock,
            ids=ids,
            max_size=max_size,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-sqlite")
        # channel -> receives waiting on it, each with its own loop (a send may come from another)
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    @property
    def path(self) -> str:
        """The database file, as given."""
        return self._sync.path

    @property
    def capabilities(self) -> Capabilities:
        """As ``SqliteTransport``: delay (1 ms), priority, FIFO, durable; no native TTL."""
        return self._sync.capabilities

    async def declare(self, options: ChannelOptions) -> None:
        await self._run(self._sync.declare, options)

    async def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        """Store the message (committed, synced as ``synchronous`` says); wake a waiting receive."""
        await self._run(
            partial(
                self._sync.send,
                channel,
                message,
                available_at=available_at,
                priority=priority,
                expires_at=expires_at,
            )
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
        """Lease up to ``max_messages`` due messages; with ``wait``, poll up to that long."""
        take = partial(self._sync.receive, channel, lease=lease, max_messages=max_messages)
        taken = await self._run(take)
        if taken or wait is None or wait <= timedelta(0):
            return taken
        loop = asyncio.get_running_loop()  # the loop's time, as asyncio.timeout reads it
        deadline = loop.time() + wait.total_seconds()
        while not taken:
            left = deadline - loop.time()
            if left <= 0:
                break
            await self._until_woken(channel, min(left, _POLL))
            taken = await self._run(take)
        return taken

    async def ack(self, delivery: Delivery) -> None:
        await self._run(self._sync.ack, delivery)

    async def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        await self._run(partial(self._sync.release, delivery, available_at=available_at))
        self._wake(delivery.channel)

    async def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        """Extend the lease of ``delivery`` to ``lease`` from now, while a long handler runs."""
        await self._run(partial(self._sync.renew, delivery, lease=lease))

    async def pending(self, channel: str) -> int:
        return await self._run(self._sync.pending, channel)

    async def next_due(self, channel: str) -> datetime | None:
        return await self._run(self._sync.next_due, channel)

    async def close(self) -> None:
        """Close the connection and stop the thread; closing again is a no-op."""
        await self._run(self._sync.close)
        self._closed = True
        self._executor.shutdown(wait=False)
        for channel in list(self._waiters):
            self._wake(channel)

    def __repr__(self) -> str:
        return f"AsyncSqliteTransport({self.path!r})"

    async def _run(self, call: Callable[..., T], *args: object) -> T:
        if self._closed:  # the thread is gone; the closed transport raises (or closes) at once
            return call(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def _until_woken(self, channel: str, at_most: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        self._waiters.setdefault(channel, []).append(entry)
        try:
            await asyncio.wait((future,), timeout=at_most)
        finally:
            waiting = self._waiters.get(channel)
            if waiting is not None and entry in waiting:
                waiting.remove(entry)
                if not waiting:
                    del self._waiters[channel]
            future.cancel()

    def _wake(self, channel: str) -> None:
        for loop, future in self._waiters.pop(channel, []):
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
