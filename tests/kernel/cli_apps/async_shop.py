"""An ``AsyncMessaging`` app for ``conveyor run``: five orders queued, handled concurrently."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from conveyor import AsyncMessaging, QueueChannel, VirtualClock, asynchronous, command_handler


@dataclass(frozen=True)
class Order:
    number: int


@asynchronous("orders")
@command_handler
async def place(order: Order) -> None:
    await asyncio.sleep(0)


def build() -> AsyncMessaging:
    messaging = AsyncMessaging(
        [place], [QueueChannel("orders")], clock=VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    )

    async def fill() -> None:
        for number in range(5):
            await messaging.send(Order(number))

    asyncio.run(fill())
    return messaging
