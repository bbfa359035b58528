"""Channel aliases: two channel names, one queue.

A ``ChannelAlias("orders.v1", to="orders")`` lets code (and deployments) that still say the old
name keep working while the channel is renamed: handlers bound to either name, an asynchronous
bus on either, and a consumer run of either all use the one queue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from conveyor import (
    AsyncMessaging,
    ChannelAlias,
    ConfigurationError,
    Messaging,
    QueueChannel,
    RecordKind,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.testing import Harness

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ShipOrder:
    order_id: str


@dataclass(frozen=True)
class OrderShipped:
    order_id: str


def handlers(log: list[str]) -> list[object]:
    @asynchronous("orders")  # the new name
    @command_handler
    def ship(command: ShipOrder) -> None:
        log.append(f"ship {command.order_id}")

    @asynchronous("orders.v1")  # code not yet moved to the new name
    @event_handler
    def notify(event: OrderShipped) -> None:
        log.append(f"notify {event.order_id}")

    return [ship, notify]


def test_both_names_reach_one_queue_and_running_either_consumes_it() -> None:
    log: list[str] = []
    messaging = Messaging(
        handlers=handlers(log),
        channels=[QueueChannel("orders"), ChannelAlias("orders.v1", to="orders")],
        clock=VirtualClock(START),
        ids=SequentialIds(),
    )
    messaging.send(ShipOrder("o-1"))
    messaging.publish(OrderShipped("o-1"))
    assert list(messaging.channels) == ["orders"]  # one channel, one queue
    assert messaging.channels["orders"].pending() == 2
    assert [r.channel for r in messaging.journal.of_kind(RecordKind.QUEUED)] == ["orders"] * 2
    assert messaging.consumers() == ["orders"]

    result = messaging.run("orders.v1")  # the old name consumes the same queue
    assert (result.name, result.processed) == ("orders", 2)
    assert log == ["ship o-1", "notify o-1"]


def test_an_asynchronous_bus_on_an_alias_sends_through_the_channel() -> None:
    log: list[str] = []

    @command_handler
    def ship(command: ShipOrder) -> None:
        log.append(f"ship {command.order_id}")

    messaging = Messaging(
        handlers=[ship],
        channels=[
            QueueChannel("commands"),
            ChannelAlias("legacy", to="commands.v2"),
            ChannelAlias("commands.v2", to="commands"),  # an alias of an alias
        ],
        clock=VirtualClock(START),
    )
    messaging.command_bus("legacy").send(ShipOrder("o-2"))
    assert log == []
    assert messaging.channels["commands"].pending() == 1
    messaging.run("commands.v2")
    assert log == ["ship o-2"]


def test_an_alias_to_an_unknown_channel_is_refused_at_bootstrap() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Messaging(
            handlers=handlers([]),
            channels=[QueueChannel("orders"), ChannelAlias("orders.v1", to="order")],
        )
    assert str(raised.value) == (
        "channel alias 'orders.v1' names 'order', but no channel 'order' was declared "
        "(declared channels: 'orders'). Add the channel, or point the alias at one of these."
    )


def test_a_cycle_of_aliases_is_refused_at_bootstrap() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Messaging(
            handlers=[],
            channels=[
                QueueChannel("orders"),
                ChannelAlias("a", to="b"),
                ChannelAlias("b", to="c"),
                ChannelAlias("c", to="a"),
            ],
        )
    assert str(raised.value) == (
        "channel aliases form a cycle: a -> b -> c -> a; end the chain at a declared channel."
    )


def test_an_alias_cannot_take_a_channels_name() -> None:
    with pytest.raises(ConfigurationError, match="has the name of a declared channel"):
        Messaging(
            handlers=[],
            channels=[QueueChannel("orders"), ChannelAlias("orders", to="orders")],
        )


def test_asyncio_aliases_reach_and_consume_one_queue() -> None:
    log: list[str] = []

    @asynchronous("orders.v1")
    @command_handler
    async def ship(command: ShipOrder) -> None:
        log.append(f"ship {command.order_id}")

    async def scenario() -> None:
        async with AsyncMessaging(
            handlers=[ship],
            channels=[QueueChannel("orders"), ChannelAlias("orders.v1", to="orders")],
            clock=VirtualClock(START),
        ) as messaging:
            await messaging.send(ShipOrder("o-3"))
            assert [r.channel for r in messaging.journal.of_kind(RecordKind.QUEUED)] == ["orders"]
            result = await messaging.run("orders.v1")
            assert (result.name, result.processed) == ("orders", 1)
        assert log == ["ship o-3"]

    asyncio.run(scenario())

    with pytest.raises(ConfigurationError, match="form a cycle: x -> x"):
        AsyncMessaging(handlers=[], channels=["orders", ChannelAlias("x", to="x")])


def test_the_harness_finds_pending_work_under_either_name() -> None:
    messaging = Messaging(
        handlers=handlers([]),
        channels=[QueueChannel("orders"), ChannelAlias("orders.v1", to="orders")],
        clock=VirtualClock(START),
    )
    harness = Harness(messaging)
    harness.send(ShipOrder("o-4"))
    [pending] = harness.assert_pending(ShipOrder, channel="orders.v1")
    assert pending.channel == "orders"
    assert harness.pending(channel="orders") == [pending]
