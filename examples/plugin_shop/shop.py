"""The shop: orders, a confirmation e-mail, and card payments that retry, then dead-letter.

Placing an order publishes ``OrderPlaced``; the customer is e-mailed from the
"notifications" channel and the card is charged from the "payments" channel. A declined card
is retried after 1 s and 2 s, then goes to the dead-letter store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Protocol

from conveyor import (
    Channel,
    Context,
    Messaging,
    QueueChannel,
    RetryPolicy,
    asynchronous,
    command_handler,
    event_handler,
)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    total: Decimal


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    total: Decimal


@dataclass(frozen=True)
class ChargeCard:
    order_id: str
    amount: Decimal


@dataclass(frozen=True)
class PaymentReceived:
    order_id: str
    amount: Decimal


class CardDeclined(Exception):
    """The payment gateway declined the card."""


class Gateway(Protocol):
    def charge(self, order_id: str, amount: Decimal) -> None:
        """Charge the card; raises ``CardDeclined``."""
        ...


class Orders:
    """Takes orders."""

    def __init__(self) -> None:
        self.placed: list[str] = []

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.placed.append(command.order_id)
        ctx.publish(OrderPlaced(command.order_id, command.total))


@asynchronous("notifications")
@event_handler
def email_customer(event: OrderPlaced) -> None:
    """Send the confirmation e-mail (printing stands in for the mail server)."""


class Payments:
    """Charges cards through the gateway it is given."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    @event_handler
    def request_payment(self, event: OrderPlaced, ctx: Context) -> None:
        ctx.send(ChargeCard(event.order_id, event.total))

    @asynchronous("payments")
    @command_handler
    def charge(self, command: ChargeCard, ctx: Context) -> None:
        self.gateway.charge(command.order_id, command.amount)
        ctx.publish(PaymentReceived(command.order_id, command.amount))


RETRY_DECLINED_CARDS = RetryPolicy(
    delays=[timedelta(seconds=1), timedelta(seconds=2)], attempts=3, on=(CardDeclined,)
)


def handlers(gateway: Gateway) -> list[object]:
    """Every handler of the shop, in the order they run."""
    return [Orders(), email_customer, Payments(gateway)]


def channels() -> list[Channel]:
    """The shop's channels; production swaps ``QueueChannel`` for a durable channel."""
    return [QueueChannel("notifications"), QueueChannel("payments", retry=RETRY_DECLINED_CARDS)]


def create_messaging(gateway: Gateway) -> Messaging:
    """The shop as production builds it."""
    return Messaging(handlers(gateway), channels())
