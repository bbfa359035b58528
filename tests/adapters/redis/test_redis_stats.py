"""``RedisTransport.stats`` against a real server: pending and in flight; the age is unknown."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from conveyor.core.clock import VirtualClock
from conveyor.transports.seam import WireMessage
from conveyor_redis import RedisTransport
from pytest_conveyor.channel_stats import check_channel_stats


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def transport(redis_url: str, prefix: str, clock: VirtualClock) -> Iterator[RedisTransport]:
    opened = RedisTransport(redis_url, clock=clock, prefix=prefix)
    yield opened
    opened.close()


def test_stats_tell_pending_and_in_flight(transport: RedisTransport, clock: VirtualClock) -> None:
    check_channel_stats(transport, "orders", knows={"pending", "in_flight"}, advance=clock.advance)


def test_a_lease_that_ran_out_is_no_longer_in_flight(
    transport: RedisTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"one"))
    transport.receive("orders", lease=timedelta(seconds=30))
    assert (transport.stats("orders").pending, transport.stats("orders").in_flight) == (0, 1)
    clock.advance(timedelta(seconds=45))
    assert (transport.stats("orders").pending, transport.stats("orders").in_flight) == (1, 0)
