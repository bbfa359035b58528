"""Two services in one process share in-memory channels through a ``MemoryBroker`` (issue 20).

A test of two services that talk through a queue needs what a broker gives two processes: one
queue per name. The sender declares the channel ``send_only`` so it never consumes what the
other service is there to handle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from conveyor import (
    AsyncMessaging,
    ConfigurationError,
    MemoryBroker,
    Messaging,
    QueueChannel,
    VirtualClock,
    asynchronous,
    event_handler,
)

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


billed: list[str] = []


@asynchronous("billing")
@event_handler
def bill(event: OrderPlaced) -> None:
    billed.append(event.order_id)


def services(broker: MemoryBroker, clock: VirtualClock) -> tuple[Messaging, Messaging]:
    shop = Messaging(channels=[QueueChannel("billing", broker=broker, send_only=True)], clock=clock)
    billing = Messaging(
        handlers=[bill],
        channels=[QueueChannel("billing", broker=broker, bus=True)],
        clock=clock,
    )
    return shop, billing


def test_a_message_one_service_queues_is_handled_by_the_other() -> None:
    billed.clear()
    broker, clock = MemoryBroker(), VirtualClock(START)
    shop, billing = services(broker, clock)
    shop.event_bus("billing").publish(OrderPlaced("o-1"))
    assert shop.consumers() == []  # the sender does not consume the queue
    assert shop.run_until_idle() == 0
    assert billing.channels["billing"].pending() == 1  # one queue: the other service sees it
    billing.run("billing")
    assert billed == ["o-1"]
    assert shop.channels["billing"].pending() == 0


def test_closing_one_service_leaves_the_broker_open_for_the_others() -> None:
    billed.clear()
    broker, clock = MemoryBroker(), VirtualClock(START)
    shop, billing = services(broker, clock)
    shop.event_bus("billing").publish(OrderPlaced("o-1"))
    shop.close()
    billing.run("billing")
    assert billed == ["o-1"]
    broker.close()
    broker.close()  # closing again is harmless


def test_a_send_only_channel_cannot_be_run_here() -> None:
    shop, _ = services(MemoryBroker(), VirtualClock(START))
    with pytest.raises(ConfigurationError, match=r"'billing' is declared send_only=True"):
        shop.run("billing")


def test_services_on_one_broker_share_one_clock() -> None:
    broker = MemoryBroker()
    Messaging(channels=[QueueChannel("billing", broker=broker)], clock=VirtualClock(START))
    with pytest.raises(ConfigurationError, match=r"share one clock"):
        Messaging(channels=[QueueChannel("billing", broker=broker)], clock=VirtualClock(START))


def test_without_a_broker_each_messaging_has_its_own_channels() -> None:
    clock = VirtualClock(START)
    one = Messaging(channels=["billing"], clock=clock)
    other = Messaging(channels=["billing"], clock=clock)
    one.event_bus("billing").publish(OrderPlaced("o-1"))
    assert (one.channels["billing"].pending(), other.channels["billing"].pending()) == (1, 0)


def test_asyncio_messaging_refuses_a_broker_channel() -> None:
    with pytest.raises(ConfigurationError, match=r"serves Messaging only"):
        AsyncMessaging(channels=[QueueChannel("billing", broker=MemoryBroker())])
