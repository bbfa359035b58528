"""The PostgreSQL transports pass the shared conformance suite against a real server.

Both transports read every instant from the injected clock, so the suite runs twice over: on a
``VirtualClock`` (exact, instant, every boundary to the microsecond) and on the system clock
with short leases and delays (what production does, waiting in real time). The asyncio twin
runs the same suite through a synchronous facade on an event-loop thread.

They declare every optional promise but native TTL (delay, priority, FIFO, a size limit when
given one, durability) and are inspectable, so every mixin of the suite runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from async_bridge import EventLoopThread, SyncFacade
from postgres_support import RealTime, unique

from conveyor.core.clock import Clock, SystemClock, VirtualClock
from conveyor.transports.seam import (
    InspectableTransport,
    RenewableTransport,
    Transport,
    WireMessage,
)
from conveyor_postgres import AsyncPostgresTransport, PostgresTransport
from pytest_conveyor.legacy_conformance import (
    DelayTransportConformance,
    DurableTransportConformance,
    FifoTransportConformance,
    InspectableTransportConformance,
    MaxSizeTransportConformance,
    PriorityTransportConformance,
    TransportHarness,
    receive_one,
)


class _PostgresConformance(
    DurableTransportConformance,
    InspectableTransportConformance,
    DelayTransportConformance,
    PriorityTransportConformance,
    FifoTransportConformance,
):
    """The suites for what the PostgreSQL transports declare."""

    size_limit: int | None = None
    real_time = False
    many = 100

    def make_clock(self) -> Clock:
        return SystemClock() if self.real_time else VirtualClock()

    def open(self, dsn: str, clock: Clock) -> Transport:
        return PostgresTransport(dsn, clock=clock, max_size=self.size_limit, max_connections=4)

    @pytest.fixture
    def harness(self, dsn: str) -> Iterator[TransportHarness]:
        clock = self.make_clock()
        transport = self.open(dsn, clock)
        prefix, names = unique("conformance"), itertools.count()
        advance = RealTime(clock) if isinstance(clock, SystemClock) else clock.advance  # type: ignore[attr-defined]
        yield TransportHarness(
            transport=transport,
            clock=clock,
            advance=advance,
            make_channel=lambda: f"{prefix}-{next(names)}",
            reopen=lambda: self.open(dsn, clock),  # what a restarted process opens
        )
        transport.close()


class TestPostgresConformance(_PostgresConformance):
    """Virtual time, no size limit: a 1 MiB message must round-trip."""

    def test_is_renewable_and_inspectable(self, harness: TransportHarness) -> None:
        assert isinstance(harness.transport, RenewableTransport)
        assert isinstance(harness.transport, InspectableTransport)


class TestPostgresConformanceWithMaxSize(MaxSizeTransportConformance, _PostgresConformance):
    """A size limit, so the limit's own tests run too."""

    size_limit = 64 * 1024


class _RealTimeBoundaries(_PostgresConformance):
    """The suite on the system clock, as in production: short leases and delays, real waits.

    Four tests of the suite check a boundary to the declared precision (one microsecond here)
    by stepping a virtual clock to just before it; real time cannot stop there, so on real time
    they check the same promise with a margin: nothing before half the span, and the message
    once the span has passed. The virtual-time classes check the exact boundaries.
    """

    real_time = True
    lease = timedelta(milliseconds=250)
    delay = timedelta(milliseconds=250)
    many = 50

    def test_unacked_message_is_redelivered_after_lease_and_not_before(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"slow"))
        assert receive_one(transport, channel, lease=self.lease) is not None

        harness.advance(self.lease / 2)
        assert receive_one(transport, channel, lease=self.lease) is None
        harness.advance(self.lease / 2)
        again = receive_one(transport, channel, lease=self.lease)
        assert again is not None
        assert (again.message.body, again.delivery_count) == (b"slow", 2)

    def test_delayed_message_is_not_received_before_available_at(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"wait"), available_at=harness.clock.now() + self.delay)

        assert receive_one(transport, channel, lease=self.lease) is None
        harness.advance(self.delay / 2)
        assert receive_one(transport, channel, lease=self.lease) is None

    def test_release_with_available_at_holds_message_until_then(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.send(channel, WireMessage(b"later"))
        delivery = receive_one(transport, channel, lease=self.lease)
        assert delivery is not None
        transport.release(delivery, available_at=harness.clock.now() + self.delay)

        harness.advance(self.delay / 2)
        assert receive_one(transport, channel, lease=self.lease) is None
        harness.advance(self.delay / 2)
        again = receive_one(transport, channel, lease=self.lease)
        assert again is not None
        assert again.message.body == b"later"

    def test_next_due_of_leased_message_is_its_lease_expiry(
        self, harness: TransportHarness
    ) -> None:
        transport = harness.transport
        assert isinstance(transport, InspectableTransport)
        channel = harness.make_channel()
        transport.send(channel, WireMessage(b"leased"))
        before = harness.clock.now()
        assert receive_one(transport, channel, lease=self.lease) is not None
        after = harness.clock.now()

        next_due = transport.next_due(channel)
        assert next_due is not None
        assert before + self.lease <= next_due <= after + self.lease


class TestPostgresConformanceOnRealTime(_RealTimeBoundaries):
    """The system clock, as in production."""


class _AsyncConformance(_PostgresConformance):
    loop: EventLoopThread

    @pytest.fixture(autouse=True)
    def event_loop_thread(self) -> Iterator[None]:
        self.loop = EventLoopThread()
        yield
        self.loop.stop()

    def open(self, dsn: str, clock: Clock) -> Transport:
        transport = AsyncPostgresTransport(
            dsn, clock=clock, max_size=self.size_limit, max_connections=4
        )
        return SyncFacade(transport, self.loop)  # type: ignore[return-value]


class TestAsyncPostgresConformance(_AsyncConformance):
    """The asyncio twin on virtual time."""


class TestAsyncPostgresConformanceOnRealTime(_AsyncConformance, _RealTimeBoundaries):
    """The asyncio twin on the system clock."""
