"""AsyncRabbitMQTransport passes the same conformance suite, through a thin sync bridge.

Until the suite has its asyncio runner (``AsyncTransportHarness``), each sync call is run as a
coroutine on an event loop in a helper thread, so every promise the suite checks on the sync
transport is checked on the asyncio one, on the same broker, with the same overrides for
connection leases.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
import test_rabbitmq_conformance as sync_suites

from conveyor.core.clock import SystemClock
from conveyor.transports.seam import Capabilities, ChannelOptions, Delivery, WireMessage
from conveyor_rabbitmq.async_transport import AsyncRabbitMQTransport

_T = TypeVar("_T")


class EventLoopThread:
    """An event loop running in a daemon thread, for calling coroutines from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class Bridged:
    """The sync Transport seam over an AsyncRabbitMQTransport."""

    def __init__(self, transport: AsyncRabbitMQTransport, loop: EventLoopThread) -> None:
        self.inner, self._loop = transport, loop

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

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
                channel, message, available_at=available_at, priority=priority,
                expires_at=expires_at,
            )
        )  # fmt: skip

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        return self._loop.run(
            self.inner.receive(channel, lease=lease, max_messages=max_messages, wait=wait)
        )

    def ack(self, delivery: Delivery) -> None:
        self._loop.run(self.inner.ack(delivery))

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        self._loop.run(self.inner.release(delivery, available_at=available_at))

    def close(self) -> None:
        self._loop.run(self.inner.close())


class _AsyncMixin:
    queue_type: str
    max_priority: int | None
    max_size: int

    @pytest.fixture(autouse=True)
    def _use_loop(self) -> Iterator[None]:
        self._loop = EventLoopThread()
        yield
        self._loop.stop()

    def open(self, url: str) -> Bridged:  # type: ignore[override]
        return Bridged(
            AsyncRabbitMQTransport(
                url,
                clock=SystemClock(),
                queue_type=self.queue_type,  # type: ignore[arg-type]
                max_priority=self.max_priority,
                max_size=self.max_size,
            ),
            self._loop,
        )


class TestAsyncRabbitMQQuorumConformance(_AsyncMixin, sync_suites.TestRabbitMQQuorumConformance):
    """Quorum queues, through aio-pika."""


class TestAsyncRabbitMQClassicPriorityConformance(
    _AsyncMixin, sync_suites.TestRabbitMQClassicPriorityConformance
):
    """Classic priority queues, through aio-pika."""
