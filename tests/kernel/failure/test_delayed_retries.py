"""Instant and delayed retries on a consumed message: when each attempt runs, and where it goes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from failure_kit import (
    START,
    ChargeCard,
    Flaky,
    GatewayTimeout,
    OrderPlaced,
    PaymentDeclined,
    RefundCard,
    build,
    pending,
    seconds,
    since_start,
    timeline,
)

from conveyor import (
    Backoff,
    Channel,
    Clock,
    Context,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    asynchronous,
    command_handler,
    event_handler,
    priority,
)
from conveyor.core.errors import TransportError
from conveyor.core.wire import H
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Capabilities, Transport, WireMessage
from pytest_conveyor.conformance import receive_one


def test_the_issue_example_retries_then_dead_letters_then_replays() -> None:
    calls: list[tuple[timedelta, int]] = []

    @asynchronous("orders")
    @command_handler
    def charge(command: ChargeCard, ctx: Context) -> None:
        calls.append((ctx.now - START, ctx.attempt))
        raise TimeoutError("gateway timeout")

    orders = QueueChannel(
        "orders",
        retry=RetryPolicy(
            instant=2,
            delays=Backoff.exponential(
                initial=timedelta(seconds=1), factor=2, max_delay=timedelta(minutes=1)
            ),
            attempts=5,
            on=(TimeoutError, ConnectionError),
        ),
        dead_letter=True,
    )
    messaging = build([charge], [orders])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)

    # each delivery runs three times (two instant retries); deliveries 1 s, 2 s, 4 s, 8 s apart
    assert calls == [
        (seconds(at), attempt)
        for at, attempt in ((0, 1), (1, 2), (3, 3), (7, 4), (15, 5))
        for _ in range(3)
    ]
    assert [r.delay for r in messaging.journal.of_kind(RecordKind.RETRIED)] == [
        seconds(1),
        seconds(2),
        seconds(4),
        seconds(8),
    ]
    [letter] = messaging.dead_letters.list()
    assert (letter.exception_type, letter.attempts, letter.endpoint_id) == (
        "TimeoutError",
        5,
        "charge",
    )
    assert letter.exception_message == "gateway timeout"

    messaging.dead_letters.replay(letter.id)
    assert messaging.dead_letters.count() == 0
    assert pending(messaging, "orders") == 1
    messaging.run("orders", limit=1)
    assert calls[-1] == (seconds(15), 1)  # the replayed copy starts counting afresh


def test_a_delayed_retry_goes_back_to_its_channel_with_the_next_attempt_header() -> None:
    charge = Flaky(failures=1)
    handler = charge_handler(charge)
    messaging = build([handler], [QueueChannel("orders", retry=RetryPolicy(delays=[seconds(30)]))])
    messaging.send(ChargeCard("o-1"))
    messaging.run("orders")

    transport = messaging.channels["orders"].transport
    assert pending(messaging, "orders") == 1
    assert transport.next_due("orders") == START + seconds(30)  # type: ignore[attr-defined]
    assert receive_one(transport, "orders", lease=seconds(1)) is None  # not before its delay
    [retried] = messaging.journal.of_kind(RecordKind.RETRIED)
    assert (retried.channel, retried.endpoint_id, retried.attempt, retried.delay) == (
        "orders",
        "charge",
        1,
        seconds(30),
    )
    assert str(retried.exception) == "GatewayTimeout: call 1 failed"

    messaging.advance(seconds(30))
    delivered = messaging.journal.of_kind(RecordKind.HANDLED)
    assert [(r.attempt, r.at - START) for r in delivered] == [(2, seconds(30))]


def test_the_retried_copy_keeps_its_id_body_and_headers() -> None:
    seen: list[tuple[str, str, int, str | None]] = []

    @asynchronous("orders", retry=RetryPolicy(delays=[seconds(1)]))
    @command_handler
    def charge(command: ChargeCard, ctx: Context) -> None:
        seen.append((ctx.message_id, command.order_id, ctx.attempt, ctx.headers.get("tenant")))  # type: ignore[arg-type]
        if ctx.attempt == 1:
            raise GatewayTimeout("slow")

    messaging = build([charge], ["orders"])
    messaging.send(ChargeCard("o-1"), headers={"tenant": "acme"})
    messaging.run_until_idle(advance_time=True)
    assert seen == [("msg-1", "o-1", 1, "acme"), ("msg-1", "o-1", 2, "acme")]


def test_instant_retries_run_in_the_same_delivery_at_the_same_time() -> None:
    charge = Flaky(failures=2)
    handler = charge_handler(charge, retry=RetryPolicy(instant=3))
    messaging = build([handler], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()

    assert len(charge.calls) == 3
    assert timeline(messaging, RecordKind.FAILED, RecordKind.HANDLED, RecordKind.RETRIED) == [
        ("failed", "charge", 1),
        ("failed", "charge", 1),
        ("handled", "charge", 1),
    ]
    assert since_start(messaging) == timedelta(0)


def test_when_instant_retries_run_out_the_delayed_retry_follows() -> None:
    charge = Flaky(failures=3)
    handler = charge_handler(charge, retry=RetryPolicy(instant=1, delays=[seconds(5)]))
    messaging = build([handler], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)

    assert timeline(messaging, RecordKind.FAILED, RecordKind.HANDLED, RecordKind.RETRIED) == [
        ("failed", "charge", 1),
        ("failed", "charge", 1),
        ("retried", "charge", 1),
        ("failed", "charge", 2),
        ("handled", "charge", 2),
    ]
    assert messaging.dead_letters.count() == 0


def test_attempts_stop_and_max_delay_only_caps() -> None:
    charge = Flaky(failures=None)
    policy = RetryPolicy(
        delays=Backoff.exponential(initial=seconds(1), factor=10, max_delay=seconds(5)),
        attempts=6,
    )
    handler = charge_handler(charge)
    messaging = build([handler], [QueueChannel("orders", retry=policy)])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)

    assert [r.delay for r in messaging.journal.of_kind(RecordKind.RETRIED)] == [
        seconds(1),
        seconds(5),
        seconds(5),
        seconds(5),
        seconds(5),
    ]
    assert len(charge.calls) == 6
    assert messaging.dead_letters.list()[0].attempts == 6


def test_a_handlers_policy_wins_over_its_channels_and_the_channels_over_the_default() -> None:
    strict, lenient, default = Flaky(None), Flaky(None), Flaky(None)

    @asynchronous("orders", retry=RetryPolicy(delays=[seconds(1)], attempts=2))
    @event_handler
    def strict_handler(event: OrderPlaced) -> None:
        strict(event)

    @asynchronous("orders")
    @event_handler
    def lenient_handler(event: OrderPlaced) -> None:
        lenient(event)

    @asynchronous("audit")
    @event_handler
    def default_handler(event: OrderPlaced) -> None:
        default(event)

    messaging = build(
        [strict_handler, lenient_handler, default_handler],
        [QueueChannel("orders", retry=RetryPolicy(delays=[seconds(1)], attempts=4)), "audit"],
        retry=RetryPolicy(delays=[seconds(1)], attempts=3),
    )
    messaging.publish(OrderPlaced("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert (len(strict.calls), len(lenient.calls), len(default.calls)) == (2, 4, 3)


def test_no_policy_means_no_retry() -> None:
    charge = Flaky(failures=None)
    messaging = build([charge_handler(charge)], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert len(charge.calls) == 1
    assert messaging.journal.of_kind(RecordKind.RETRIED) == []
    assert messaging.dead_letters.count() == 1


def test_an_exception_outside_on_is_neither_retried_instantly_nor_later() -> None:
    charge = Flaky(failures=None, error=PaymentDeclined)
    policy = RetryPolicy(instant=2, delays=[seconds(1)], attempts=5, on=(TimeoutError,))
    messaging = build([charge_handler(charge, retry=policy)], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert len(charge.calls) == 1
    [letter] = messaging.dead_letters.list()
    assert letter.exception_type == "failure_kit.PaymentDeclined"
    assert letter.attempts == 1


def test_an_ignored_exception_is_not_retried() -> None:
    charge = Flaky(failures=None, error=PaymentDeclined)
    policy = RetryPolicy(instant=2, delays=[seconds(1)], attempts=5, ignore=(PaymentDeclined,))
    messaging = build([charge_handler(charge, retry=policy)], ["orders"])
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert len(charge.calls) == 1


def test_a_delayed_retry_reruns_only_the_endpoint_that_failed() -> None:
    failing, steady = Flaky(failures=2), Flaky()

    @asynchronous("orders")
    @event_handler
    def reserve_stock(event: OrderPlaced) -> None:
        failing(event)

    @asynchronous("orders")
    @event_handler
    def send_email(event: OrderPlaced) -> None:
        steady(event)

    messaging = build(
        [reserve_stock, send_email],
        [QueueChannel("orders", retry=RetryPolicy(delays=[seconds(1)], attempts=5))],
    )
    messaging.publish(OrderPlaced("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert (len(failing.calls), len(steady.calls)) == (3, 1)
    assert [(r.endpoint_id, r.attempt) for r in messaging.journal.of_kind(RecordKind.HANDLED)] == [
        ("send_email", 1),
        ("reserve_stock", 3),
    ]


def test_jitter_comes_from_the_messaging_seed() -> None:
    def delays(seed: int) -> list[timedelta | None]:
        charge = Flaky(failures=None)
        policy = RetryPolicy(
            delays=Backoff.exponential(initial=seconds(10), factor=2, jitter=0.3), attempts=5
        )
        messaging = build(
            [charge_handler(charge, retry=policy)],
            ["orders"],
            seed=seed,
        )
        messaging.send(ChargeCard("o-1"))
        messaging.run_until_idle(advance_time=True)
        return [r.delay for r in messaging.journal.of_kind(RecordKind.RETRIED)]

    first = delays(11)
    assert first == delays(11)
    assert first != delays(12)
    for delay, base in zip(first, (10, 20, 40, 80), strict=True):
        assert delay is not None
        assert seconds(base * 0.7) <= delay <= seconds(base * 1.3)


def test_a_retried_copy_outlives_its_time_to_live() -> None:
    charge = Flaky(failures=1)
    handler = charge_handler(charge, retry=RetryPolicy(delays=[seconds(10)]))
    messaging = build([handler], ["orders"])
    messaging.send(ChargeCard("o-1"), ttl=seconds(1))
    messaging.run_until_idle(advance_time=True)
    assert len(charge.calls) == 2
    assert messaging.journal.of_kind(RecordKind.EXPIRED) == []


def test_a_redelivery_after_a_lost_lease_counts_as_the_next_attempt() -> None:
    seen: list[int] = []

    @asynchronous("orders")
    @command_handler
    def charge(command: ChargeCard, ctx: Context) -> None:
        seen.append(ctx.attempt)

    messaging = build([charge], [QueueChannel("orders", lease=seconds(30))])
    messaging.send(ChargeCard("o-1"))
    transport = messaging.channels["orders"].transport
    lost = receive_one(transport, "orders", lease=seconds(30))  # a consumer that died mid-message
    assert lost is not None
    assert lost.message.headers[H.ATTEMPT] == "1"
    messaging.advance(seconds(30))
    assert seen == [2]


def charge_handler(flaky: Flaky, **options: object) -> object:
    """An asynchronous ChargeCard handler on "orders", endpoint "charge", calling ``flaky``."""

    @asynchronous("orders", **options)  # type: ignore[arg-type]
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    return charge


class ShortDelays(MemoryTransport):
    """Like SQS: holds a delay of at most 15 minutes, and refuses a longer one."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(super().capabilities, max_delay=timedelta(minutes=15))

    def send(self, channel: str, message: WireMessage, **options: Any) -> None:
        available_at = options.get("available_at")
        if available_at is not None and available_at - self._clock.now() > timedelta(minutes=15):
            raise TransportError("DelaySeconds must be at most 900")
        super().send(channel, message, **options)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShortDelayChannel(Channel):
    def open(self, clock: Clock) -> Transport:
        return ShortDelays(clock)


def test_a_retry_delay_longer_than_the_broker_holds_is_completed_by_the_kernel() -> None:
    charge = Flaky(failures=1)
    handler = charge_handler(charge, retry=RetryPolicy(delays=[timedelta(hours=1)]))
    messaging = build([handler], [ShortDelayChannel("orders")])
    messaging.send(ChargeCard("o-1"))
    messaging.run("orders")
    messaging.advance(timedelta(minutes=59, seconds=59))
    assert len(charge.calls) == 1  # back from the broker after 15 minutes, and held again
    messaging.advance(seconds(1))
    assert len(charge.calls) == 2
    [handled] = messaging.journal.of_kind(RecordKind.HANDLED)
    assert (handled.at, handled.attempt) == (START + timedelta(hours=1), 2)


def test_a_retried_copy_keeps_its_priority() -> None:
    order: list[str] = []
    failed: set[str] = set()

    @asynchronous("orders", retry=RetryPolicy(delays=[seconds(1)]))
    @priority(9)
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        order.append(f"charge {command.order_id}")
        if command.order_id not in failed:
            failed.add(command.order_id)
            raise GatewayTimeout("slow")

    @asynchronous("orders")
    @command_handler(endpoint_id="refund")
    def refund(command: RefundCard) -> None:
        order.append(f"refund {command.order_id}")

    messaging = build([charge, refund], ["orders"])
    messaging.send(RefundCard("o-2"))
    messaging.send(ChargeCard("o-1"))
    messaging.run("orders", limit=1)  # the charge goes first, by priority, and fails
    messaging.clock.advance(seconds(1))  # type: ignore[attr-defined]  # both are due now
    messaging.run("orders")
    assert order == ["charge o-1", "charge o-1", "refund o-2"]
