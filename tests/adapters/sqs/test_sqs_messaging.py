"""Conveyor on SQS queues through ``Messaging``, on the system clock, against a real server.

The shop's kind of flow (a command, an event with two asynchronous handlers, a retry, a dead
letter into the SQLite store), a delay longer than the broker holds (completed by the
kernel), a message too large for its queue, and FIFO order within each message group.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conveyor import (
    Messaging,
    RetryPolicy,
    SystemClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.core.errors import MessageTooLarge
from conveyor.core.journal import RecordKind
from conveyor_sqlite import SqliteDeadLetterStore
from conveyor_sqs import SqsChannel

LEASE = timedelta(seconds=5)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    customer: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    customer: str


@dataclass(frozen=True)
class Remind:
    note: str


@dataclass(frozen=True)
class Post:
    account: str
    n: int


class Shop:
    def __init__(self) -> None:
        self.orders: list[str] = []
        self.mails: list[str] = []
        self.mail_failures = 1

    @asynchronous("orders")
    @command_handler
    def place(self, command: PlaceOrder, ctx: object) -> None:
        self.orders.append(command.order_id)
        ctx.publish(OrderPlaced(command.order_id, command.customer))  # type: ignore[attr-defined]

    @asynchronous("notifications")
    @event_handler
    def mail(self, event: OrderPlaced) -> None:
        if self.mail_failures:
            self.mail_failures -= 1
            raise TimeoutError("mail server timed out")
        self.mails.append(event.customer)

    @asynchronous("warehouse")
    @event_handler
    def reserve(self, event: OrderPlaced) -> None:
        raise ConnectionError("warehouse: connection refused")


def run_until(
    messaging: Messaging, channel: str, done: Callable[[], bool], *, seconds: float = 15
) -> None:
    """Run the channel's consumer a message at a time until ``done()``, within a deadline."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"consumer {channel!r} did not finish its work within {seconds} s")
        messaging.run(channel, limit=1, time_limit=timedelta(seconds=1))


@pytest.fixture
def channel_factory(sqs_endpoint: str, unique: Callable[[str], str]) -> Callable[..., SqsChannel]:
    prefix = unique("flow") + "-"

    def make(name: str, **options: object) -> SqsChannel:
        return SqsChannel(
            name, endpoint_url=sqs_endpoint, queue_prefix=prefix, lease=LEASE, **options
        )  # type: ignore[arg-type]

    return make


@pytest.fixture
def shop_messaging(
    channel_factory: Callable[..., SqsChannel], tmp_path: Path
) -> Iterator[tuple[Messaging, Shop]]:
    shop = Shop()
    retry = RetryPolicy(delays=[timedelta(seconds=1)], attempts=2)
    messaging = Messaging(
        handlers=[shop],
        channels=[
            channel_factory("orders"),
            channel_factory("notifications", retry=retry),
            channel_factory("warehouse"),
        ],
        dead_letters=SqliteDeadLetterStore(tmp_path / "letters.db"),
        clock=SystemClock(),
    )
    yield messaging, shop
    messaging.close()


def test_shop_flow_with_retry_and_dead_letter(shop_messaging: tuple[Messaging, Shop]) -> None:
    messaging, shop = shop_messaging
    messaging.send(PlaceOrder("o-1", "ada"))

    result = messaging.run("orders", finish_when_empty=True)
    assert (result.processed, shop.orders) == (1, ["o-1"])
    run_until(messaging, "warehouse", lambda: messaging.dead_letters.count() == 1)
    run_until(messaging, "notifications", lambda: shop.mails == ["ada"])

    [letter] = messaging.dead_letters.list()
    assert letter.channel == "warehouse"
    assert "connection refused" in letter.exception_message
    kinds = [record.kind for record in messaging.journal.records]
    assert kinds.count(RecordKind.RETRIED) == 1  # the mail, after its first failure
    assert kinds.count(RecordKind.HANDLED) == 2  # the order and, on its retry, the mail
    # Nothing is left on any queue once every message settled.
    assert messaging.run("notifications", finish_when_empty=True).processed == 0


def test_dead_letter_replays_onto_its_sqs_queue(shop_messaging: tuple[Messaging, Shop]) -> None:
    messaging, _shop = shop_messaging
    messaging.send(PlaceOrder("o-2", "grace"))
    messaging.run("orders", finish_when_empty=True)
    run_until(messaging, "warehouse", lambda: messaging.dead_letters.count() == 1)

    [letter] = messaging.dead_letters.list()
    messaging.dead_letters.replay(letter.id)
    assert messaging.dead_letters.count() == 0  # replay takes it out of the store

    def kinds() -> list[RecordKind]:
        return [record.kind for record in messaging.journal.records]

    run_until(messaging, "warehouse", lambda: kinds().count(RecordKind.DEAD_LETTERED) == 2)
    assert kinds().count(RecordKind.REPLAYED) == 1
    assert messaging.dead_letters.count() == 1  # it failed again after the replay


def test_delay_longer_than_the_broker_holds_is_completed_by_the_kernel(
    channel_factory: Callable[..., SqsChannel],
) -> None:
    """SQS holds 15 minutes; the channel here holds 1 s, so a 3 s delay needs two hops.

    The same code path serves a 40-minute delay on a default channel: the message comes back
    after each ``max_delay``, the consumer sees ``cv-not-before`` in the future and sends it
    on, and the handler runs once, not before the delay.
    """
    handled: list[datetime] = []

    @asynchronous("reminders")
    @command_handler
    def remind(command: Remind) -> None:
        handled.append(datetime.now().astimezone())

    channel = channel_factory("reminders", max_delay=timedelta(seconds=1))
    with Messaging(handlers=[remind], channels=[channel], clock=SystemClock()) as messaging:
        assert messaging.channels["reminders"].transport.capabilities.max_delay == timedelta(
            seconds=1
        )
        sent = datetime.now().astimezone()
        messaging.send(Remind("call back"), delay=timedelta(seconds=3))
        run_until(messaging, "reminders", lambda: bool(handled))

    assert len(handled) == 1
    assert handled[0] - sent >= timedelta(seconds=3)
    assert handled[0] - sent < timedelta(seconds=8)


def test_default_channel_declares_fifteen_minutes_for_the_kernel_to_complete(
    channel_factory: Callable[..., SqsChannel],
) -> None:
    with Messaging(channels=[channel_factory("later")], clock=SystemClock()) as messaging:
        capabilities = messaging.channels["later"].transport.capabilities
    assert capabilities.max_delay == timedelta(minutes=15)
    assert capabilities.delay_precision == timedelta(seconds=1)


def test_oversized_message_is_refused_at_send_naming_both_sizes(
    channel_factory: Callable[..., SqsChannel],
) -> None:
    @asynchronous("small")
    @command_handler
    def remind(command: Remind) -> None:
        raise AssertionError("never handled")

    channel = channel_factory("small", queue_attributes={"MaximumMessageSize": "2048"})
    with Messaging(handlers=[remind], channels=[channel], clock=SystemClock()) as messaging:
        with pytest.raises(MessageTooLarge) as raised:
            messaging.send(Remind("x" * 5000))
        messaging.send(Remind("fits"))  # the queue itself is fine

    text = str(raised.value)
    assert "2048 bytes (MaximumMessageSize)" in text
    assert "message of " in text
    assert "region 'us-east-1'" in text


def test_fifo_keeps_send_order_within_each_group(
    channel_factory: Callable[..., SqsChannel],
) -> None:
    posted: list[tuple[str, int]] = []

    @asynchronous("ledger")
    @command_handler
    def post(command: Post) -> None:
        posted.append((command.account, command.n))

    channel = channel_factory("ledger", fifo=True, group_header="account")
    with Messaging(handlers=[post], channels=[channel], clock=SystemClock()) as messaging:
        for n in range(6):
            for account in ("a", "b", "c"):
                messaging.send(Post(account, n), headers={"account": account})
        run_until(messaging, "ledger", lambda: len(posted) == 18)

    for account in ("a", "b", "c"):
        assert [n for a, n in posted if a == account] == list(range(6))
