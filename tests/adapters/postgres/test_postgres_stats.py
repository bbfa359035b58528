"""``PostgresTransport.stats`` against a real server: pending, in flight, the oldest's age."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from conveyor.core.clock import VirtualClock
from conveyor.transports.seam import WireMessage
from conveyor_postgres import PostgresTransport
from pytest_conveyor.channel_stats import check_channel_stats


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def transport(dsn: str, schema: str, clock: VirtualClock) -> Iterator[PostgresTransport]:
    opened = PostgresTransport(dsn, clock=clock, schema=schema)
    yield opened
    opened.close()


def test_stats_tell_pending_in_flight_and_the_oldest_age(
    transport: PostgresTransport, clock: VirtualClock
) -> None:
    check_channel_stats(
        transport, "orders", knows={"pending", "in_flight", "oldest_age"}, advance=clock.advance
    )


def test_a_message_whose_lease_ran_out_waits_again_from_its_lease_end(
    transport: PostgresTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"one"))
    transport.receive("orders", lease=timedelta(seconds=30))
    clock.advance(timedelta(seconds=45))
    stats = transport.stats("orders")
    assert (stats.pending, stats.in_flight, stats.oldest_age) == (1, 0, timedelta(seconds=15))


def test_a_delayed_message_is_pending_but_not_waiting(
    transport: PostgresTransport, clock: VirtualClock
) -> None:
    transport.send("orders", WireMessage(b"later"), available_at=clock.now() + timedelta(hours=1))
    stats = transport.stats("orders")
    assert (stats.pending, stats.in_flight, stats.oldest_age) == (1, 0, None)
