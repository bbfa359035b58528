"""``AsyncSqsTransport``: the asyncio twin, boto3 calls on a dedicated thread pool.

Why threads over boto3 rather than aiobotocore: aiobotocore pins botocore to a narrow range
(3.9 accepts ``>=1.43.3,<1.43.63``), so it would fight the boto3 that the sync transport, and
most applications, already install; one client library means one set of credentials,
retries and error codes to translate, and the two transports cannot drift apart. The cost is a
thread per call in flight: each long poll holds one for up to 20 s. The pool is dedicated (the
event loop's default executor stays free for the application) and the client's HTTP pool is
at least as large, so receives never queue for a connection.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TypeVar

from conveyor.core.errors import TransportClosed
from conveyor.transports.seam import Capabilities, ChannelOptions, Delivery, WireMessage
from conveyor_sqs.transport import SqsTransport

__all__ = ["AsyncSqsTransport"]

T = TypeVar("T")


class AsyncSqsTransport:
    """Awaitable ``SqsTransport`` verbs with the same semantics, run on ``threads`` threads.

    Args:
        transport: the sync transport whose client and queues it uses; closed with it.
        threads: the most calls in flight at once (long polls included).
    """

    def __init__(self, transport: SqsTransport, *, threads: int = 16) -> None:
        if threads < 1:
            raise ValueError(f"threads={threads} must be at least 1.")
        self._sync = transport
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="conveyor-sqs")
        self._closed = False

    @property
    def capabilities(self) -> Capabilities:
        return self._sync.capabilities

    @property
    def sync(self) -> SqsTransport:
        """The sync transport underneath (same client, same queues)."""
        return self._sync

    async def _run(self, call: Callable[..., T], *args: object, **kwargs: object) -> T:
        if self._closed:
            raise TransportClosed("AsyncSqsTransport is closed; open a new one.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call, *args, **kwargs))

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
        await self._run(
            self._sync.send,
            channel,
            message,
            available_at=available_at,
            priority=priority,
            expires_at=expires_at,
        )

    async def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        return await self._run(
            self._sync.receive, channel, lease=lease, max_messages=max_messages, wait=wait
        )

    async def ack(self, delivery: Delivery) -> None:
        await self._run(self._sync.ack, delivery)

    async def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        await self._run(self._sync.release, delivery, available_at=available_at)

    async def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        await self._run(self._sync.renew, delivery, lease=lease)

    async def close(self) -> None:
        """Close the client and the thread pool; calls in flight finish first."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        self._sync.close()

    def __repr__(self) -> str:
        return f"Async{self._sync!r}"
