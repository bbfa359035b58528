"""A shop's flow through ``Messaging`` on RabbitMQ channels, on the system clock.

A command handled at once publishes an event; two asynchronous event handlers get their own
copies on two RabbitMQ channels. The mailer times out once, and its delayed retry comes back
through the delay ladder; the warehouse always fails and ends in the dead-letter store. The
consumers are driven by ``run(name, finish_when_empty=...)`` and ``limit=``, as a worker would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from conveyor import (
    Context,
    Messaging,
    RetryPolicy,
    SystemClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor_rabbitmq import RabbitMQChannel


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    customer: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    customer: str


class MailServerBusy(TimeoutError):
    pass


class WarehouseUnavailable(ConnectionError):
    pass


def test_shop_flow_with_a_retry_and_a_dead_letter(
    amqp_url: str, queue_names: Callable[[], str]
) -> None:
    notifications, warehouse = queue_names(), queue_names()
    sent: list[tuple[str, str, int]] = []
    failures = {"mail": 1}

    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        ctx.publish(OrderPlaced(command.order_id, command.customer))

    @asynchronous(notifications)
    @event_handler
    def confirm(event: OrderPlaced, ctx: Context) -> None:
        if failures["mail"]:
            failures["mail"] -= 1
            raise MailServerBusy("mail server timed out")
        sent.append((event.customer, ctx.headers.user["tenant"], ctx.headers.attempt))

    @asynchronous(warehouse)
    @event_handler
    def reserve_stock(event: OrderPlaced) -> None:
        raise WarehouseUnavailable("warehouse: connection refused")

    retry = RetryPolicy(delays=[timedelta(milliseconds=200)], attempts=2)
    with Messaging(
        handlers=[place, confirm, reserve_stock],
        channels=[
            RabbitMQChannel(notifications, url=amqp_url, retry=retry),
            RabbitMQChannel(warehouse, url=amqp_url, retry=retry),
        ],
        clock=SystemClock(),
    ) as messaging:
        messaging.send(PlaceOrder("o-1", "ada@example.com"), headers={"tenant": "grüße ✓"})

        assert messaging.run(notifications, finish_when_empty=True).processed == 1  # failed once
        assert sent == []
        # The retry waits 200 ms in the delay ladder; a worker's run picks it up when due.
        result = messaging.run(notifications, limit=1, time_limit=timedelta(seconds=5))
        assert (result.processed, sent) == (1, [("ada@example.com", "grüße ✓", 2)])

        started = time.monotonic()
        while messaging.dead_letters.count() == 0 and time.monotonic() - started < 5:
            messaging.run(warehouse, limit=1, time_limit=timedelta(seconds=1))
        letters = messaging.dead_letters.list()
        assert [(letter.channel, letter.attempts) for letter in letters] == [(warehouse, 2)]
        assert (letters[0].exception_type or "").endswith("WarehouseUnavailable")
        assert letters[0].headers["tenant"] == "grüße ✓"  # the wire headers, exactly
        assert messaging.run(notifications, finish_when_empty=True).processed == 0
        assert messaging.run(warehouse, finish_when_empty=True).processed == 0


def test_channels_on_one_broker_share_one_connection(
    amqp_url: str, queue_names: Callable[[], str]
) -> None:
    first = RabbitMQChannel(queue_names(), url=amqp_url)
    second = RabbitMQChannel(queue_names(), url=amqp_url)
    other = RabbitMQChannel(queue_names(), url=amqp_url, queue_type="classic", max_priority=5)

    assert first.transport_key() == second.transport_key() != other.transport_key()


def test_importing_the_adapter_imports_no_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys, conveyor_rabbitmq\n"
        "conveyor_rabbitmq.RabbitMQChannel('c', url='amqp://localhost/')\n"
        "clients = ('amqp', 'pika', 'aio_pika', 'aiormq')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in clients))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
