"""A small shop for the CLI tests: orders on an in-memory channel, a failing order, a report.

``build`` is an app factory (``--app shop:build``): three orders wait on "orders", the second
of which fails when handled. ``with_dead_letters`` has consumed them, so the store holds that
failure and a letter (added as a store would keep it) whose body is not UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from conveyor import (
    DeadLetter,
    Messaging,
    QueueChannel,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    scheduled,
)

#: Every Messaging the factory built, so a test can see that the CLI closed it.
built: list[Messaging] = []


@dataclass(frozen=True)
class PlaceOrder:
    order: str


@asynchronous("orders")
@command_handler
def place_order(command: PlaceOrder) -> None:
    if command.order.startswith("bad"):
        raise ValueError(f"order {command.order} is out of stock")


@scheduled(every=timedelta(minutes=5), initial_delay=timedelta(minutes=1))
def report() -> None:
    """Ticks every five minutes; it has nothing to do in these tests."""


def build() -> Messaging:
    messaging = Messaging(
        [place_order, report], [QueueChannel("orders")], clock=VirtualClock(), ids=SequentialIds()
    )
    for order in ("a-1", "bad-2", "a-3"):
        messaging.send(PlaceOrder(order))
    built.append(messaging)
    return messaging


def with_dead_letters() -> Messaging:
    messaging = build()
    messaging.run("orders")
    failed = messaging.dead_letters.get("msg-2@place_order").last_failed_at
    messaging.dead_letter_store.add(
        DeadLetter(
            id="raw-1@orders",
            message_id="raw-1",
            channel="orders",
            endpoint_id=None,
            message_type="?",
            body=b"\xff\xfe\x00raw",
            headers={"origin": "another system"},
            reason="undecodable",
            exception_type="conveyor.core.errors.SerializationError",
            exception_message="the body is not JSON",
            first_failed_at=failed,
            last_failed_at=failed,
        )
    )
    return messaging
