"""The PostgreSQL transports pass the shared conformance suite against a real server.

Both transports read every instant from the injected clock, so the suite runs on a
``VirtualClock`` (exact, instant, every boundary to the microsecond) and on the system clock
(what production does: the real-time runner polls each boundary, and the long poll waits on
``LISTEN``). The asyncio twin runs the same checks through the async runner.

They declare every optional promise but native TTL (delay, priority, FIFO, a size limit when
given one, durability), are inspectable and renew leases, so every other check applies.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from postgres_support import unique

from conveyor.core.clock import Clock, SystemClock, VirtualClock
from conveyor_postgres import AsyncPostgresTransport, PostgresTransport
from pytest_conveyor.conformance import (
    AsyncTransportConformance,
    AsyncTransportHarness,
    TransportConformance,
    TransportHarness,
)


def _names() -> Iterator[str]:
    prefix = unique("conformance")
    return (f"{prefix}-{n}" for n in itertools.count())


class TestPostgresConformance(TransportConformance):
    """Virtual time, no size limit: a 1 MiB message must round-trip."""

    size_limit: int | None = None
    many = 100

    def make_clock(self) -> Clock:
        return VirtualClock()

    @pytest.fixture
    def harness(self, dsn: str) -> Iterator[TransportHarness]:
        clock, names = self.make_clock(), _names()

        def open_transport() -> PostgresTransport:  # what a restarted process opens
            return PostgresTransport(dsn, clock=clock, max_size=self.size_limit, max_connections=4)

        with TransportHarness(
            open_transport(), clock, make_channel=names.__next__, reopen=open_transport
        ) as harness:
            yield harness

    def test_is_renewable_and_inspectable(self, harness: TransportHarness) -> None:
        """Else the renewal and inspection checks would be skipped as not applicable."""
        assert (harness.renewable, harness.inspectable) == (True, True)


class TestPostgresConformanceWithMaxSize(TestPostgresConformance):
    """A size limit, so the limit's own checks apply too."""

    size_limit = 64 * 1024


class TestPostgresConformanceOnRealTime(TestPostgresConformance):
    """The system clock, as in production."""

    def make_clock(self) -> Clock:
        return SystemClock()


class TestAsyncPostgresConformance(AsyncTransportConformance):
    """The asyncio twin on virtual time, through the async runner."""

    size_limit: int | None = None
    many = 100

    def make_clock(self) -> Clock:
        return VirtualClock()

    @pytest.fixture
    def harness(self, dsn: str) -> Iterator[AsyncTransportHarness]:
        clock, names = self.make_clock(), _names()

        def open_transport() -> AsyncPostgresTransport:
            return AsyncPostgresTransport(
                dsn, clock=clock, max_size=self.size_limit, max_connections=4
            )

        with AsyncTransportHarness(
            open_transport(), clock, make_channel=names.__next__, reopen=open_transport
        ) as harness:
            yield harness

    def test_is_renewable_and_inspectable(self, harness: AsyncTransportHarness) -> None:
        assert (harness.renewable, harness.inspectable) == (True, True)


class TestAsyncPostgresConformanceWithMaxSize(TestAsyncPostgresConformance):
    size_limit = 64 * 1024


class TestAsyncPostgresConformanceOnRealTime(TestAsyncPostgresConformance):
    """The asyncio twin on the system clock."""

    def make_clock(self) -> Clock:
        return SystemClock()
