"""``messaging.channels`` is a documented, read-only view, not the driver's own state (issue 20)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    ChannelView,
    Messaging,
    QueueChannel,
    VirtualClock,
    asynchronous,
    command_handler,
)
from conveyor.transports.memory import MemoryTransport

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@asynchronous("orders")
@command_handler
def place(command: PlaceOrder) -> None: ...


def build() -> Messaging:
    return Messaging(
        handlers=[place],
        channels=[QueueChannel("orders"), QueueChannel("fast", mode="inline"), "bus"],
        clock=VirtualClock(START),
    )


def test_each_channel_is_shown_as_it_was_declared() -> None:
    messaging = build()
    assert list(messaging.channels) == ["orders", "fast", "bus"]
    orders = messaging.channels["orders"]
    assert isinstance(orders, ChannelView)
    assert (orders.name, orders.definition, orders.mode, orders.bus) == (
        "orders",
        QueueChannel("orders"),
        "queued",
        False,  # an asynchronous handler is bound to it
    )
    assert (messaging.channels["fast"].mode, messaging.channels["bus"].bus) == ("inline", True)
    assert isinstance(orders.transport, MemoryTransport)
    assert orders.capabilities.priority


def test_it_counts_what_waits_and_says_when_it_is_due() -> None:
    messaging = build()
    orders = messaging.channels["orders"]
    assert (orders.pending(), orders.next_due()) == (0, None)
    messaging.send(PlaceOrder("o-1"), delay=timedelta(minutes=5))
    assert (orders.pending(), orders.next_due()) == (1, START + timedelta(minutes=5))


def test_an_in_memory_channel_gives_no_broker_figures() -> None:
    assert build().channels["orders"].stats() is None  # only a MeasurableTransport's broker


def test_nothing_done_through_the_view_changes_the_messaging() -> None:
    messaging = build()
    with pytest.raises(TypeError):
        messaging.channels["extra"] = messaging.channels["orders"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        messaging.channels["orders"].bus = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        messaging.channels = {}  # type: ignore[misc]
