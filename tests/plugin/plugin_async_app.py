"""The asyncio app the plugin's async tests drive: orders, a delayed e-mail, a failing charge.

Its source is also written into ``pytester`` directories as ``async_app.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from conveyor import (
    AsyncContext,
    RetryPolicy,
    asynchronous,
    command_handler,
    delayed,
    event_handler,
)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@dataclass(frozen=True)
class ChargeCard:
    order_id: str


class CardDeclined(Exception):
    pass


@command_handler
async def place(command: PlaceOrder, ctx: AsyncContext) -> None:
    await ctx.publish(OrderPlaced(command.order_id))
    await ctx.send(ChargeCard(command.order_id))


@asynchronous("notifications")
@delayed(timedelta(minutes=5))
@event_handler
async def email_customer(event: OrderPlaced) -> None:
    await asyncio.sleep(0)  # a real await: the handler is a coroutine


RETRY = RetryPolicy(delays=[timedelta(seconds=1), timedelta(seconds=2)], attempts=3)


@asynchronous("payments", retry=RETRY)
@command_handler
async def charge(command: ChargeCard) -> None:
    await asyncio.sleep(0)
    if command.order_id.startswith("declined"):
        raise CardDeclined(f"card declined for {command.order_id}")


HANDLERS = [place, email_customer, charge]
CHANNELS = ["notifications", "payments"]
