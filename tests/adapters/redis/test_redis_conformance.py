"""RedisTransport and AsyncRedisTransport pass the shared conformance suite on the real server.

The transports read time from the injected clock (as every Conveyor component does), so the
suite runs on a ``VirtualClock``: leases, delays and expiries step exactly, against real Redis
scripts, with no waiting; the long poll (a blocking read on the server) is checked on the
system clock. The asyncio twin runs the same checks through the async runner.

They declare every optional promise (delay, priority, FIFO, durability, a size limit when given
one, native TTL when asked for), are inspectable and renew leases, so every check applies.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.core.clock import Clock, SystemClock, VirtualClock
from conveyor_redis import AsyncRedisTransport, RedisTransport
from pytest_conveyor.conformance import (
    AsyncTransportConformance,
    AsyncTransportHarness,
    TransportConformance,
    TransportHarness,
)


class TestRedisConformance(TransportConformance):
    """The default: no size limit (a 1 MiB message must round-trip), expiry left to the kernel."""

    size_limit: int | None = None
    native_ttl: bool = False

    def make_clock(self) -> Clock:
        return VirtualClock()

    @pytest.fixture
    def harness(self, redis_url: str, prefix: str) -> Iterator[TransportHarness]:
        clock = self.make_clock()

        def open_transport() -> RedisTransport:  # a second client: what a restart opens
            return RedisTransport(
                redis_url,
                clock=clock,
                prefix=prefix,
                max_size=self.size_limit,
                native_ttl=self.native_ttl,
            )

        with TransportHarness(open_transport(), clock, reopen=open_transport) as harness:
            yield harness

    def test_is_renewable_and_inspectable(self, harness: TransportHarness) -> None:
        """Else the renewal and inspection checks would be skipped as not applicable."""
        assert (harness.renewable, harness.inspectable) == (True, True)


class TestRedisConformanceWithMaxSize(TestRedisConformance):
    """A size limit, so the limit's own checks apply too."""

    size_limit = 64 * 1024


class TestRedisConformanceWithNativeTtl(TestRedisConformance):
    """Redis drops expired messages itself: the expiry check takes its other branch."""

    native_ttl = True


class TestRedisConformanceOnRealTime(TestRedisConformance):
    """The system clock, as in production: leases run out and the long poll blocks for real."""

    def make_clock(self) -> Clock:
        return SystemClock()


class TestAsyncRedisConformance(AsyncTransportConformance):
    """The asyncio twin (redis.asyncio), through the async runner, in the same configurations."""

    size_limit: int | None = None
    native_ttl: bool = False

    def make_clock(self) -> Clock:
        return VirtualClock()

    @pytest.fixture
    def harness(self, redis_url: str, prefix: str) -> Iterator[AsyncTransportHarness]:
        clock = self.make_clock()

        def open_transport() -> AsyncRedisTransport:
            return AsyncRedisTransport(
                redis_url,
                clock=clock,
                prefix=prefix,
                max_size=self.size_limit,
                native_ttl=self.native_ttl,
            )

        with AsyncTransportHarness(open_transport(), clock, reopen=open_transport) as harness:
            yield harness

    def test_is_renewable_and_inspectable(self, harness: AsyncTransportHarness) -> None:
        assert (harness.renewable, harness.inspectable) == (True, True)


class TestAsyncRedisConformanceWithMaxSize(TestAsyncRedisConformance):
    size_limit = 64 * 1024


class TestAsyncRedisConformanceWithNativeTtl(TestAsyncRedisConformance):
    native_ttl = True


class TestAsyncRedisConformanceOnRealTime(TestAsyncRedisConformance):
    """The asyncio twin on the system clock: leases run out and the long poll blocks for real."""

    def make_clock(self) -> Clock:
        return SystemClock()
