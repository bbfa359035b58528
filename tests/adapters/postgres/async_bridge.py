"""A synchronous face on an ``AsyncTransport``, so the conformance suite runs on the asyncio twin.

Every call is run to completion on one event loop in a thread of its own; the async transport's
pool and connections all live on that loop, as they would in an asyncio application. Until
``pytest_conveyor.conformance`` has its asyncio runner, this lets the async transport pass the
very same tests as the sync one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from conveyor.transports.seam import (
    AsyncTransport,
    Capabilities,
    ChannelOptions,
    Delivery,
    WireMessage,
)

T = TypeVar("T")


class EventLoopThread:
    """One event loop running in a daemon thread; ``run`` awaits a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class SyncFacade:
    """The ``Transport`` (and inspectable, renewable) verbs of an async transport."""

    def __init__(self, transport: AsyncTransport, loop: EventLoopThread) -> None:
        self.inner: Any = transport
        self._loop = loop

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities  # type: ignore[no-any-return]

    def declare(self, options: ChannelOptions) -> None:
        self._loop.run(self.inner.declare(options))

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self._loop.run(
            self.inner.send(
                channel,
                message,
                available_at=available_at,
                priority=priority,
                expires_at=expires_at,
            )
        )

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        return self._loop.run(  # type: ignore[no-any-return]
            self.inner.receive(channel, lease=lease, max_messages=max_messages, wait=wait)
        )

    def ack(self, delivery: Delivery) -> None:
        self._loop.run(self.inner.ack(delivery))

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        self._loop.run(self.inner.release(delivery, available_at=available_at))

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        self._loop.run(self.inner.renew(delivery, lease=lease))

    def pending(self, channel: str) -> int:
        return self._loop.run(self.inner.pending(channel))  # type: ignore[no-any-return]

    def next_due(self, channel: str) -> datetime | None:
        return self._loop.run(self.inner.next_due(channel))  # type: ignore[no-any-return]

    def close(self) -> None:
        self._loop.run(self.inner.close())
