"""The app the plugin's tests drive: orders, an e-mail, and a card charge that can fail.

Its source is also written into ``pytester`` directories as ``app.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from conveyor import Context, RetryPolicy, asynchronous, command_handler, event_handler


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


class Orders:
    def __init__(self):
        self.placed = []

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.placed.append(command.order_id)
        ctx.publish(OrderPlaced(command.order_id))
        ctx.send(ChargeCard(command.order_id))


@asynchronous("notifications")
@event_handler
def email_customer(event: OrderPlaced) -> None:
    pass


RETRY = RetryPolicy(delays=[timedelta(seconds=1), timedelta(seconds=2)], attempts=3)


@asynchronous("payments", retry=RETRY)
@command_handler
def charge(command: ChargeCard) -> None:
    if command.order_id.startswith("declined"):
        raise CardDeclined(f"card declined for {command.order_id}")


HANDLERS = [Orders, email_customer, charge]
CHANNELS = ["notifications", "payments"]
