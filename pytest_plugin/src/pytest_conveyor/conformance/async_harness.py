"""The async runner: the same checks, against an :class:`~conveyor.transports.seam.AsyncTransport`.

:class:`AsyncTransportHarness` implements the harness's verbs by running the transport's
coroutines to completion on an event loop the harness owns (one loop for the transport and every
transport ``reopen`` opens, as in an asyncio application, where a client's connections belong to
one loop). Pauses between real-time polls are ``asyncio.sleep`` on that loop, so a client's
background tasks (heartbeats, consumer buffers) keep running while a check waits.

Why a loop per harness rather than ``async def`` checks: the checks stay one set of plain
functions, so a promise cannot be checked one way for sync transports and another for async.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from conveyor.core.clock import Clock
from conveyor.transports.seam import (
    AsyncInspectableTransport,
    AsyncRenewableTransport,
    AsyncTransport,
    Capabilities,
    ChannelOptions,
    Delivery,
    WireMessage,
)
from pytest_conveyor.conformance.harness import _NO_REOPEN, STAGGER, Harness
from pytest_conveyor.conformance.timing import Timing

__all__ = ["AsyncTransportHarness"]

_T = TypeVar("_T")


class AsyncTransportHarness(Harness):
    """Drives an ``AsyncTransport`` through the same checks as :class:`TransportHarness`.

    Args:
        transport: the async transport under test, fresh for each check. Built outside any
            running loop; its first await runs on this harness's loop.
        clock: the clock the transport reads.
        make_channel: a fresh, unique channel name per call.
        reopen: a new async transport on the same storage (it runs on the same loop).
        timing: the durations the checks use.
        loop: the event loop to run on; by default the harness makes one and closes it in
            :meth:`close_all`.
    """

    def __init__(
        self,
        transport: AsyncTransport,
        clock: Clock,
        *,
        make_channel: Callable[[], str] | None = None,
        reopen: Callable[[], AsyncTransport] | None = None,
        timing: Timing | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(clock, make_channel=make_channel, timing=timing)
        self.transport = transport
        self._reopen = reopen
        self._owns_loop = loop is None
        self.loop = loop if loop is not None else asyncio.new_event_loop()
        self._opened: list[AsyncTransportHarness] = [self]

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run one coroutine to completion on the harness's loop."""
        return self.loop.run_until_complete(coroutine)

    @property
    def capabilities(self) -> Capabilities:
        return self.transport.capabilities

    @property
    def name(self) -> str:
        return type(self.transport).__qualname__

    @property
    def renewable(self) -> bool:
        return isinstance(self.transport, AsyncRenewableTransport)

    @property
    def inspectable(self) -> bool:
        return isinstance(self.transport, AsyncInspectableTransport)

    def declare(self, options: ChannelOptions) -> None:
        self.run(self.transport.declare(options))

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self.run(
            self.transport.send(
                channel,
                message,
                available_at=available_at,
                priority=priority,
                expires_at=expires_at,
            )
        )

    def _receive(
        self, channel: str, *, lease: timedelta, max_messages: int, wait: timedelta | None
    ) -> list[Delivery]:
        return self.run(
            self.transport.receive(channel, lease=lease, max_messages=max_messages, wait=wait)
        )

    def ack(self, delivery: Delivery) -> None:
        self.run(self.transport.ack(delivery))

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        self.run(self.transport.release(delivery, available_at=available_at))

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        transport = self.transport
        assert isinstance(transport, AsyncRenewableTransport), f"{self.name} cannot renew"
        self.run(transport.renew(delivery, lease=lease))

    def pending(self, channel: str) -> int:
        transport = self.transport
        assert isinstance(transport, AsyncInspectableTransport), f"{self.name} is not inspectable"
        return self.run(transport.pending(channel))

    def next_due(self, channel: str) -> datetime | None:
        transport = self.transport
        assert isinstance(transport, AsyncInspectableTransport), f"{self.name} is not inspectable"
        return self.run(transport.next_due(channel))

    def pause(self, duration: timedelta) -> None:
        self.run(asyncio.sleep(duration.total_seconds()))

    def _close(self) -> None:
        self.run(self.transport.close())

    def reopen(self) -> AsyncTransportHarness:
        if self._reopen is None:
            raise AssertionError(_NO_REOPEN)
        other = AsyncTransportHarness(
            self._reopen(),
            self.clock,
            make_channel=self._make_channel,
            timing=self.timing,
            loop=self.loop,
        )
        other._reopen = self._reopen
        other._opened = self._opened
        self._opened.append(other)
        return other

    def adopt(self, other: AsyncTransportHarness) -> None:
        """Close ``other`` with this harness: a consumer a test opened beside it."""
        other._opened = self._opened
        self._opened.append(other)

    @property
    def can_reopen(self) -> bool:
        return self._reopen is not None

    def receive_during_send(
        self, channel: str, message: WireMessage, *, wait: timedelta, sender: Harness
    ) -> tuple[list[Delivery], float]:
        assert isinstance(sender, AsyncTransportHarness)
        lease = self.timing.lease

        async def send_soon() -> None:
            await asyncio.sleep(STAGGER.total_seconds())
            await sender.transport.send(channel, message)

        async def both() -> tuple[list[Delivery], float]:
            start = self.loop.time()
            found, _ = await asyncio.gather(
                self.transport.receive(channel, lease=lease, wait=wait), send_soon()
            )
            return found, self.loop.time() - start

        return self.run(both())

    def close_all(self) -> None:
        try:
            for each in list(self._opened):
                if not each._closed:
                    each.close()
        finally:
            if self._owns_loop and not self.loop.is_closed():
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.close()
