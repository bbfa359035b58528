"""Both drivers refuse the same slips with the same errors: the decisions live in one place.

``send``, ``publish``, ``ask`` and an asynchronous bus's ``send_through`` decide through
``conveyor.drivers.addressing`` in ``Messaging`` and ``AsyncMessaging`` alike; these run each slip
through both and compare what they raise. Their consumers set deliveries aside through
``conveyor.drivers.rejections`` and journal them through the same recorder, so a delivery to an
endpoint not bound to its channel is refused alike, with the same records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from conveyor import (
    AsyncMessaging,
    ConveyorError,
    Journal,
    Messaging,
    QueueChannel,
    asynchronous,
    command_handler,
    event_handler,
    query_handler,
)
from conveyor.core.ids import SequentialIds


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class CountOrders:
    pass


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@command_handler
def place(command: PlaceOrder) -> None:
    pass


@query_handler
def count(query: CountOrders) -> int:
    return 0


@asynchronous("notifications")
@event_handler
def notify(event: OrderPlaced) -> None:
    pass


SLIPS: dict[str, Callable[[Any], Any]] = {
    "a class sent instead of a command": lambda m: m.send(PlaceOrder),
    "a class published instead of an event": lambda m: m.publish(OrderPlaced),
    "a class asked instead of a query": lambda m: m.ask(CountOrders),
    "plain data published without a routing key": lambda m: m.publish({"order_id": "o-1"}),
    "delivery options for a synchronous handler": lambda m: m.send(
        PlaceOrder("o-1"), delay=timedelta(seconds=1)
    ),
    "a bus through an undeclared channel": lambda m: m.send_through(
        "nowhere", PlaceOrder("o-1"), bus="command"
    ),
    "a bus through a channel that is not a bus channel": lambda m: m.send_through(
        "notifications", PlaceOrder("o-1"), bus="command"
    ),
}


def error_of(call: Callable[[], object]) -> ConveyorError:
    with pytest.raises(ConveyorError) as caught:
        call()
    return caught.value


async def async_error_of(call: Callable[[], Any]) -> ConveyorError:
    with pytest.raises(ConveyorError) as caught:
        await call()
    return caught.value


@pytest.mark.parametrize("slip", list(SLIPS))
def test_both_drivers_refuse_the_slip_with_the_same_error(slip: str) -> None:
    handlers = [place, count, notify]
    channels = [QueueChannel("notifications")]
    sync = Messaging(handlers, channels)
    asynchronous_kernel = AsyncMessaging(handlers, channels)

    sync_error = error_of(lambda: SLIPS[slip](sync))
    async_error = asyncio.run(async_error_of(lambda: SLIPS[slip](asynchronous_kernel)))

    assert type(async_error) is type(sync_error)
    assert str(async_error) == str(sync_error)
    kinds = [r.kind for r in sync.journal.records]
    assert [r.kind for r in asynchronous_kernel.journal.records] == kinds


def test_both_consumers_refuse_a_message_for_an_endpoint_not_on_its_channel_alike() -> None:
    """A copy forged onto a channel its endpoint does not consume from: the same records."""

    def scenario(journal: Journal) -> tuple[list[Any], list[Any]]:
        return [r.kind for r in journal.records], [r.detail for r in journal.records]

    channels = [QueueChannel("notifications"), QueueChannel("elsewhere")]
    sync = Messaging(
        [notify], channels, ids=SequentialIds(), journal=Journal(deliveries=True),
        log_failures=False,
    )  # fmt: skip
    sync.publish(OrderPlaced("o-1"))
    forged = sync.channels["notifications"].transport.receive(  # type: ignore[attr-defined]
        "notifications", lease=timedelta(seconds=30)
    )[0]
    sync.channels["elsewhere"].transport.send("elsewhere", forged.message)  # type: ignore[attr-defined]
    sync.run_until_idle()

    async def on_asyncio() -> Journal:
        journal = Journal(deliveries=True)
        kernel = AsyncMessaging(
            [notify], channels, ids=SequentialIds(), journal=journal, log_failures=False
        )
        async with kernel:
            await kernel.publish(OrderPlaced("o-1"))
            transport = kernel.channels["notifications"].transport
            taken = await transport.receive("notifications", lease=timedelta(seconds=30))
            await kernel.channels["elsewhere"].transport.send("elsewhere", taken[0].message)
            await kernel.run_until_idle()
        return journal

    async_journal = asyncio.run(on_asyncio())

    assert scenario(async_journal) == scenario(sync.journal)
    kinds = [str(kind) for kind in scenario(sync.journal)[0]]
    assert kinds.count("delivered") == 1, kinds
    assert kinds[-2:] == ["rejected", "dead_lettered"], kinds
    assert any("no endpoint" in (detail or "") for detail in scenario(sync.journal)[1])
