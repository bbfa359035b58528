"""RedisTransport passes the shared conformance suite against the real server.

The transport reads time from the injected clock (as every Conveyor component does), so the
suite runs on a ``VirtualClock`` here: leases, delays and expiries step exactly, against real
Redis scripts, with no waiting. Real-time behaviour (the blocking long poll, leases running out
on the system clock, restarts) is tested in the other modules.

It declares every optional promise (delay, priority, FIFO, durability, a size limit when given
one, native TTL when asked for) and is inspectable, so every mixin runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from conveyor.core.clock import VirtualClock
from conveyor_redis import RedisTransport
from pytest_conveyor.legacy_conformance import (
    DelayTransportConformance,
    DurableTransportConformance,
    FifoTransportConformance,
    InspectableTransportConformance,
    MaxSizeTransportConformance,
    PriorityTransportConformance,
    TransportHarness,
)


class _RedisConformance(
    DurableTransportConformance,
    InspectableTransportConformance,
    DelayTransportConformance,
    PriorityTransportConformance,
    FifoTransportConformance,
):
    """The suites for what RedisTransport declares, built with ``size_limit`` and ``ttl``."""

    size_limit: int | None = None
    native_ttl: bool = False

    @pytest.fixture
    def harness(self, redis_url: str, prefix: str) -> Iterator[TransportHarness]:
        clock = VirtualClock()

        def open_transport() -> RedisTransport:
            return RedisTransport(
                redis_url,
                clock=clock,
                prefix=prefix,
                max_size=self.size_limit,
                native_ttl=self.native_ttl,
            )

        transport = open_transport()
        names = itertools.count()
        yield TransportHarness(
            transport=transport,
            clock=clock,
            advance=clock.advance,
            make_channel=lambda: f"conformance-{next(names)}",
            # A second client on the same server: what a restarted process would open.
            reopen=open_transport,
        )
        transport.close()


class TestRedisConformance(_RedisConformance):
    """The default: no size limit (a 1 MiB message must round-trip), expiry left to the kernel."""


class TestRedisConformanceWithMaxSize(MaxSizeTransportConformance, _RedisConformance):
    """A size limit, so the limit's own tests run too."""

    size_limit = 64 * 1024


class TestRedisConformanceWithNativeTtl(_RedisConformance):
    """Redis drops expired messages itself: the suite's TTL test takes its other branch."""

    native_ttl = True
