"""The shop demo's kind of flow through ``Messaging`` on Redis channels, in real time.

An order command goes through a Redis channel, its event reaches two asynchronous handlers on
two more channels: the mailer fails once and succeeds on a delayed retry; the warehouse always
fails and ends in the Redis dead-letter store, from which it is replayed. Consumers run with
``finish_when_empty`` until a deadline on the system clock; nothing sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from conveyor import (
    Backoff,
    Context,
    Messaging,
    RetryPolicy,
    SystemClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.stores.deduplication import Deduplication
from conveyor_redis import RedisChannel, RedisDeadLetterStore, RedisDeduplication


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    customer: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    customer: str


class WarehouseDown(ConnectionError):
    pass


class Shop:
    def __init__(self) -> None:
        self.orders: list[str] = []
        self.mails: list[str] = []
        self.mail_failures_left = 1
        self.warehouse_up = False
        self.reserved: list[str] = []

    @asynchronous("orders")
    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.orders.append(command.order_id)
        ctx.publish(OrderPlaced(command.order_id, command.customer))

    @asynchronous("notifications")
    @event_handler
    def confirm(self, event: OrderPlaced) -> None:
        if self.mail_failures_left:
            self.mail_failures_left -= 1
            raise TimeoutError("mail server timed out")
        self.mails.append(event.customer)

    @asynchronous("warehouse")
    @event_handler
    def reserve(self, event: OrderPlaced) -> None:
        if not self.warehouse_up:
            raise WarehouseDown("warehouse: connection refused")
        self.reserved.append(event.order_id)


@pytest.fixture
def shop(redis_url: str, prefix: str) -> Iterator[tuple[Shop, Messaging]]:
    retry = RetryPolicy(delays=Backoff.fixed(timedelta(milliseconds=50)), attempts=2)
    handlers = Shop()
    letters = RedisDeadLetterStore(redis_url, prefix=prefix)
    messaging = Messaging(
        handlers=[handlers],
        channels=[
            RedisChannel(name, url=redis_url, prefix=prefix, retry=retry)
            for name in ("orders", "notifications", "warehouse")
        ],
        dead_letters=letters,
        deduplication=Deduplication(RedisDeduplication(redis_url, prefix=prefix)),
        clock=SystemClock(),
    )
    yield handlers, messaging
    messaging.close()
    letters.close()


def run_until(messaging: Messaging, done: Callable[[], bool], seconds: float = 10.0) -> None:
    """Run every consumer until ``done()``, failing at the deadline."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"the flow did not settle within {seconds} s")
        for name in ("orders", "notifications", "warehouse"):
            messaging.run(name, finish_when_empty=True, limit=50)


def test_the_shop_flow_runs_on_redis_channels(shop: tuple[Shop, Messaging]) -> None:
    handlers, messaging = shop
    messaging.send(PlaceOrder("o-1", "ada"))
    messaging.send(PlaceOrder("o-2", "grace"))

    run_until(messaging, lambda: len(handlers.mails) == 2 and messaging.dead_letters.count() == 2)

    assert handlers.orders == ["o-1", "o-2"]
    assert sorted(handlers.mails) == ["ada", "grace"]  # one failed once, retried after 50 ms
    letters = messaging.dead_letters.list()
    assert sorted(letter.channel for letter in letters) == ["warehouse", "warehouse"]
    assert {letter.exception_type for letter in letters} == {f"{__name__}.WarehouseDown"}
    assert all(letter.attempts == 2 for letter in letters)

    handlers.warehouse_up = True
    assert messaging.dead_letters.replay_all() == 2
    run_until(messaging, lambda: len(handlers.reserved) == 2)

    assert sorted(handlers.reserved) == ["o-1", "o-2"]
    assert messaging.dead_letters.count() == 0
    for name in ("orders", "notifications", "warehouse"):
        assert messaging.channels[name].transport.pending(name) == 0  # type: ignore[attr-defined]
