"""Broken transports for the optional promises: renewal, inspection, the long poll, restarts and
connection leases, and an async twin of any broken transport.

The companion of :mod:`broken_transports` (which holds the wrappers and the breakers of the
promises every transport makes); each class here too breaks exactly one promise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import datetime, timedelta

from broken_transports import FullWrapper, Wrapper

from conveyor.core.clock import Clock
from conveyor.core.errors import StaleReceipt, TransportClosed
from conveyor.transports.async_memory import AsyncMemoryTransport
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    Delivery,
    InspectableTransport,
    RenewableTransport,
    Transport,
    WireMessage,
)

# Renewal and inspection ---------------------------------------------------------------------


class IgnoresRenew(FullWrapper):
    """``renew`` does nothing: a long handler's lease runs out under it."""

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        pass


class RenewsStaleReceipts(FullWrapper):
    """``renew`` of a stale or settled receipt quietly succeeds."""

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        with contextlib.suppress(StaleReceipt):
            super().renew(delivery, lease=lease)


class ForgetsAcksAfterRenew(FullWrapper):
    """An ack of a renewed delivery is lost: the message comes back when the lease runs out."""

    def __init__(self, inner: MemoryTransport, clock: Clock) -> None:
        super().__init__(inner, clock)
        self.renewed: set[str] = set()

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        super().renew(delivery, lease=lease)
        self.renewed.add(delivery.receipt)

    def ack(self, delivery: Delivery) -> None:
        if delivery.receipt not in self.renewed:
            super().ack(delivery)


class PendingCountsOnlyDue(FullWrapper):
    """``pending`` leaves out leased and delayed messages."""

    def __init__(self, inner: MemoryTransport, clock: Clock) -> None:
        super().__init__(inner, clock)
        self.hidden = 0

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        if options.get("available_at") is not None:
            self.hidden += 1
        super().send(channel, message, **options)  # type: ignore[arg-type]

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        found = super().receive(channel, **options)  # type: ignore[arg-type]
        self.hidden += len(found)
        return found

    def ack(self, delivery: Delivery) -> None:
        super().ack(delivery)
        self.hidden -= 1

    def pending(self, channel: str) -> int:
        return super().pending(channel) - self.hidden


class NextDueAnHourLate(FullWrapper):
    """``next_due`` says an hour later than the truth, and something when the channel is empty."""

    def next_due(self, channel: str) -> datetime | None:
        due = super().next_due(channel)
        return (due or self.clock.now()) + timedelta(hours=1)


# Long poll (real time) ----------------------------------------------------------------------


class WaitsTheWaitOut(Wrapper):
    """A receive with ``wait`` sleeps the whole wait before it looks."""

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        wait = options.pop("wait", None)
        if isinstance(wait, timedelta):
            self.clock.sleep(wait.total_seconds())
        return super().receive(channel, **options)  # type: ignore[arg-type]


class IgnoresWait(Wrapper):
    """A receive with ``wait`` returns at once, empty, when nothing is due yet."""

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        options.pop("wait", None)
        return super().receive(channel, **options)  # type: ignore[arg-type]


class LongPollInventsMessages(Wrapper):
    """A long poll that finds nothing returns a delivery of nothing."""

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        found = super().receive(channel, **options)  # type: ignore[arg-type]
        if found or options.get("wait") is None:
            return found
        return [Delivery(channel, WireMessage(b""), "invented")]


# One store, several transports: restarts and connections -------------------------------------


class Shared:
    """What outlives one transport: the broker's store, and acks not yet written to it."""

    def __init__(self, clock: Clock) -> None:
        self.store = MemoryTransport(clock)
        self.unflushed: list[tuple[str, WireMessage]] = []


class DurableMemory(Wrapper):
    """Declares durability honestly: ``reopen`` opens another wrapper on the same store."""

    def __init__(self, shared: Shared, clock: Clock) -> None:
        super().__init__(shared.store, clock)
        self.shared = shared
        self.closed = False

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(self.inner.capabilities, durable=True)

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        if self.closed:
            raise TransportClosed("closed")
        return super().receive(channel, **options)  # type: ignore[arg-type]

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        if self.closed:
            raise TransportClosed("closed")
        super().send(channel, message, **options)  # type: ignore[arg-type]

    def ack(self, delivery: Delivery) -> None:
        if self.closed:
            raise TransportClosed("closed")
        super().ack(delivery)

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        if self.closed:
            raise TransportClosed("closed")
        super().release(delivery, available_at=available_at)

    def declare(self, options: ChannelOptions) -> None:
        if self.closed:
            raise TransportClosed("closed")
        super().declare(options)

    def close(self) -> None:
        self.closed = True  # the store lives on, as a broker's does


class ForgetsAcksOnRestart(DurableMemory):
    """Acks are kept in memory only: after a restart the acknowledged messages are back."""

    def ack(self, delivery: Delivery) -> None:
        super().ack(delivery)
        self.shared.unflushed.append((delivery.channel, delivery.message))

    @classmethod
    def reopened(cls, shared: Shared, clock: Clock) -> ForgetsAcksOnRestart:
        for channel, message in shared.unflushed:
            shared.store.send(channel, message)
        shared.unflushed.clear()
        return cls(shared, clock)


class ForgetsOnRestart(DurableMemory):
    """Declares durability, yet a restarted transport opens an empty store."""

    @classmethod
    def reopened(cls, shared: Shared, clock: Clock) -> ForgetsOnRestart:
        return cls(Shared(clock), clock)


class ConnectionLeases(DurableMemory):
    """A lease held by a connection (each wrapper is one): closing it gives its messages back."""

    release_on_close = True

    def __init__(self, shared: Shared, clock: Clock) -> None:
        super().__init__(shared, clock)
        self.held: dict[str, Delivery] = {}

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(self.inner.capabilities, lease="connection")

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        options["lease"] = timedelta(days=3650)  # time alone never ends it
        found = super().receive(channel, **options)
        self.held.update((d.receipt, d) for d in found)
        return found

    def ack(self, delivery: Delivery) -> None:
        super().ack(delivery)
        self.held.pop(delivery.receipt, None)

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        super().release(delivery, available_at=available_at)
        self.held.pop(delivery.receipt, None)

    def close(self) -> None:
        if not self.closed and self.release_on_close:
            for delivery in self.held.values():
                self.inner.release(delivery)
        self.held.clear()
        super().close()


class KeepsLeasesAfterClose(ConnectionLeases):
    """Declares connection leases, yet a closed connection's messages stay leased."""

    release_on_close = False


# The async twin of any of them --------------------------------------------------------------


class AsyncOf:
    """An AsyncTransport over one of the sync transports above (renewable and inspectable
    when it is)."""

    def __init__(self, sync: Transport) -> None:
        self.sync = sync

    @property
    def capabilities(self) -> Capabilities:
        return self.sync.capabilities

    async def declare(self, options: ChannelOptions) -> None:
        self.sync.declare(options)

    async def send(self, channel: str, message: WireMessage, **options: object) -> None:
        self.sync.send(channel, message, **options)  # type: ignore[arg-type]

    async def receive(self, channel: str, **options: object) -> list[Delivery]:
        return self.sync.receive(channel, **options)  # type: ignore[arg-type]

    async def ack(self, delivery: Delivery) -> None:
        self.sync.ack(delivery)

    async def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        self.sync.release(delivery, available_at=available_at)

    async def close(self) -> None:
        self.sync.close()


class AsyncFullOf(AsyncOf):
    async def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        assert isinstance(self.sync, RenewableTransport)
        self.sync.renew(delivery, lease=lease)

    async def pending(self, channel: str) -> int:
        assert isinstance(self.sync, InspectableTransport)
        return self.sync.pending(channel)

    async def next_due(self, channel: str) -> datetime | None:
        assert isinstance(self.sync, InspectableTransport)
        return self.sync.next_due(channel)


def async_of(sync: Transport) -> AsyncOf:
    return AsyncFullOf(sync) if isinstance(sync, FullWrapper) else AsyncOf(sync)


# Async long polls (real time): broken on the loop itself -------------------------------------


class AsyncLongPoll:
    """Delegates to an AsyncMemoryTransport; subclasses break its long poll without blocking
    the loop, so the async runner's sender task still runs meanwhile."""

    def __init__(self, inner: AsyncMemoryTransport) -> None:
        self.inner = inner

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    async def declare(self, options: ChannelOptions) -> None:
        await self.inner.declare(options)

    async def send(self, channel: str, message: WireMessage, **options: object) -> None:
        await self.inner.send(channel, message, **options)  # type: ignore[arg-type]

    async def receive(self, channel: str, **options: object) -> list[Delivery]:
        return await self.inner.receive(channel, **options)  # type: ignore[arg-type]

    async def ack(self, delivery: Delivery) -> None:
        await self.inner.ack(delivery)

    async def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        await self.inner.release(delivery, available_at=available_at)

    async def close(self) -> None:
        await self.inner.close()


class AsyncHonestLongPoll(AsyncLongPoll):
    """Breaks nothing."""


class AsyncWaitsTheWaitOut(AsyncLongPoll):
    """A receive with ``wait`` awaits the whole wait before it looks."""

    async def receive(self, channel: str, **options: object) -> list[Delivery]:
        wait = options.pop("wait", None)
        if isinstance(wait, timedelta):
            await asyncio.sleep(wait.total_seconds())
        return await super().receive(channel, **options)


class AsyncIgnoresWait(AsyncLongPoll):
    """A receive with ``wait`` returns at once, empty, when nothing is due yet."""

    async def receive(self, channel: str, **options: object) -> list[Delivery]:
        options.pop("wait", None)
        return await super().receive(channel, **options)


class AsyncLongPollInventsMessages(AsyncLongPoll):
    """A long poll that finds nothing returns a delivery of nothing."""

    async def receive(self, channel: str, **options: object) -> list[Delivery]:
        found = await super().receive(channel, **options)
        if found or options.get("wait") is None:
            return found
        return [Delivery(channel, WireMessage(b""), "invented")]
