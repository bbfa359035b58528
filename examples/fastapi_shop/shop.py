"""The shop's messages and handlers: an order placed from a channel, a review request days later.

``POST /orders`` (``app.py``) only sends ``PlaceOrder``; the command is handled asynchronously, by
the consumer of the ``orders`` channel, so the request returns before the order is placed. Placing
it publishes ``OrderPlaced``, whose handler on the ``emails`` channel is delayed by three days: the
review request. Handlers are methods, so each ``Shop`` (each test's) has its own state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from conveyor import (
    AsyncContext,
    AsyncMessaging,
    QueueChannel,
    asynchronous,
    command_handler,
    delayed,
    event_handler,
)

REVIEW_DELAY = timedelta(days=3)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    email: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    email: str


class Shop:
    """The orders service: its handlers and what they remember."""

    def __init__(self) -> None:
        self.placed: dict[str, str] = {}  # order id -> e-mail address
        self.outbox: list[tuple[str, str]] = []  # (address, subject)

    def status(self, order_id: str) -> str:
        return "placed" if order_id in self.placed else "unknown"

    @asynchronous("orders")
    @command_handler
    async def place(self, command: PlaceOrder, ctx: AsyncContext) -> None:
        self.placed[command.order_id] = command.email
        await ctx.publish(OrderPlaced(command.order_id, command.email))

    @asynchronous("emails")
    @delayed(REVIEW_DELAY)
    @event_handler
    async def ask_for_review(self, event: OrderPlaced) -> None:
        self.outbox.append((event.email, f"How was order {event.order_id}?"))


def create_messaging(shop: Shop, **options: Any) -> AsyncMessaging:
    """The shop's ``AsyncMessaging``; tests pass a ``VirtualClock`` and ids through ``options``."""
    return AsyncMessaging(
        handlers=[shop], channels=[QueueChannel("orders"), QueueChannel("emails")], **options
    )
