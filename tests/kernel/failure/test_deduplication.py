"""Deduplication: a redelivered copy whose endpoint already succeeded is acknowledged, not rerun."""

from __future__ import annotations

from datetime import timedelta

import pytest
from failure_kit import (
    START,
    ChargeCard,
    Flaky,
    LoggingTransport,
    OrderPlaced,
    RecordingChannel,
    build,
    pending,
    seconds,
)

from conveyor import (
    ConfigurationError,
    Context,
    Deduplication,
    DeduplicationStore,
    InMemoryDeduplicationStore,
    RecordKind,
    RetryPolicy,
    asynchronous,
    command_handler,
    deduplicated,
    event_handler,
)
from conveyor.transports.seam import WireMessage


def dedup(expiry: timedelta = timedelta(days=7)) -> Deduplication:
    return Deduplication(store=InMemoryDeduplicationStore(), expiry=expiry)


def charge_handler(flaky: Flaky, **options: object) -> object:
    @asynchronous("orders", **options)  # type: ignore[arg-type]
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    return charge


def deliver_again(messaging: object, wire: WireMessage, channel: str = "orders") -> None:
    """What an at-least-once broker may do: deliver a message it already delivered."""
    messaging.channels[channel].transport.send(channel, wire)  # type: ignore[attr-defined]


def first_wire(messaging: object, channel: str = "orders") -> WireMessage:
    """The first message sent to the channel, as it went on the wire."""
    transport = messaging.channels[channel].transport  # type: ignore[attr-defined]
    assert isinstance(transport, LoggingTransport)
    return transport.sent[0]


def orders() -> RecordingChannel:
    return RecordingChannel("orders")


def test_a_redelivered_message_is_acknowledged_without_running_the_handler_again() -> None:
    flaky = Flaky()
    messaging = build([charge_handler(flaky)], [orders()], deduplication=dedup())
    messaging.send(ChargeCard("o-1"))
    wire = first_wire(messaging)
    messaging.run_until_idle()
    deliver_again(messaging, wire)
    messaging.run_until_idle()

    assert len(flaky.calls) == 1
    assert pending(messaging, "orders") == 0
    [duplicate] = messaging.journal.of_kind(RecordKind.DUPLICATE)
    assert (duplicate.message_id, duplicate.endpoint_id, duplicate.channel) == (
        "msg-1",
        "charge",
        "orders",
    )


def test_without_deduplication_a_redelivered_message_runs_again() -> None:
    flaky = Flaky()
    messaging = build([charge_handler(flaky)], [orders()])
    messaging.send(ChargeCard("o-1"))
    wire = first_wire(messaging)
    messaging.run_until_idle()
    deliver_again(messaging, wire)
    messaging.run_until_idle()
    assert len(flaky.calls) == 2


def test_keys_are_per_endpoint_so_each_copy_of_an_event_runs_once() -> None:
    stock, email = Flaky(), Flaky()

    @asynchronous("orders")
    @event_handler(endpoint_id="reserve_stock")
    def reserve_stock(event: OrderPlaced) -> None:
        stock(event)

    @asynchronous("orders")
    @event_handler(endpoint_id="send_email")
    def send_email(event: OrderPlaced) -> None:
        email(event)

    messaging = build([reserve_stock, send_email], [orders()], deduplication=dedup())
    messaging.publish(OrderPlaced("o-1"))
    transport = messaging.channels["orders"].transport
    assert isinstance(transport, LoggingTransport)
    copies = list(transport.sent)
    assert len(copies) == 2
    messaging.run_until_idle()
    for copy in copies:
        deliver_again(messaging, copy)
    messaging.run_until_idle()
    assert (len(stock.calls), len(email.calls)) == (1, 1)
    assert [r.endpoint_id for r in messaging.journal.of_kind(RecordKind.DUPLICATE)] == [
        "reserve_stock",
        "send_email",
    ]


def test_only_success_is_recorded_so_a_retry_runs_the_handler() -> None:
    flaky = Flaky(failures=2)
    messaging = build(
        [charge_handler(flaky, retry=RetryPolicy(instant=1, delays=[seconds(1)]))],
        [orders()],
        deduplication=dedup(),
    )
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert len(flaky.calls) == 3
    assert messaging.journal.of_kind(RecordKind.DUPLICATE) == []
    assert len(messaging.journal.of_kind(RecordKind.HANDLED)) == 1


def test_a_replayed_dead_letter_runs_because_its_failure_was_not_recorded() -> None:
    flaky = Flaky(failures=1)
    messaging = build([charge_handler(flaky)], [orders()], deduplication=dedup())
    messaging.send(ChargeCard("o-1"))
    messaging.run_until_idle()
    messaging.dead_letters.replay("msg-1@charge")
    messaging.run_until_idle()
    assert len(flaky.calls) == 2
    assert len(messaging.journal.of_kind(RecordKind.HANDLED)) == 1


def test_a_handled_key_is_forgotten_after_its_expiry() -> None:
    flaky = Flaky()
    settings = dedup(expiry=timedelta(hours=1))
    messaging = build([charge_handler(flaky)], [orders()], deduplication=settings)
    messaging.send(ChargeCard("o-1"))
    wire = first_wire(messaging)
    messaging.run_until_idle()

    messaging.advance(timedelta(minutes=59, seconds=59))
    deliver_again(messaging, wire)
    messaging.run_until_idle()
    assert len(flaky.calls) == 1

    messaging.advance(seconds(1))
    deliver_again(messaging, wire)
    messaging.run_until_idle()
    assert len(flaky.calls) == 2


def test_the_in_memory_store_remembers_until_expiry_and_removes_expired_keys() -> None:
    store = InMemoryDeduplicationStore()
    assert isinstance(store, DeduplicationStore)
    store.add("charge", "msg-1", expires_at=START + seconds(10))
    store.add("charge", "msg-2", expires_at=START + seconds(20))
    assert store.contains("charge", "msg-1", now=START + seconds(9))
    assert not store.contains("refund", "msg-1", now=START)
    assert not store.contains("charge", "msg-1", now=START + seconds(10))
    assert store.remove_expired(now=START + seconds(15)) == 1
    assert store.contains("charge", "msg-2", now=START + seconds(15))


def test_the_expiry_defaults_to_seven_days() -> None:
    assert Deduplication(store=InMemoryDeduplicationStore()).expiry == timedelta(days=7)


def test_a_handler_can_deduplicate_by_a_header() -> None:
    flaky = Flaky()

    @asynchronous("orders")
    @deduplicated(header="idempotency-key")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build([charge], [orders()], deduplication=dedup())
    messaging.send(ChargeCard("o-1"), headers={"idempotency-key": "k-1"})
    messaging.send(ChargeCard("o-1 again"), headers={"idempotency-key": "k-1"})
    messaging.send(ChargeCard("o-2"), headers={"idempotency-key": "k-2"})
    messaging.send(ChargeCard("o-3"))  # no header: keyed by its message id
    messaging.run_until_idle()
    assert flaky.calls == [ChargeCard("o-1"), ChargeCard("o-2"), ChargeCard("o-3")]
    assert [r.message_id for r in messaging.journal.of_kind(RecordKind.DUPLICATE)] == ["msg-2"]


def test_a_handler_can_deduplicate_by_a_key_of_the_payload() -> None:
    flaky = Flaky()

    @asynchronous("orders")
    @deduplicated(key=lambda command: command.order_id)  # type: ignore[attr-defined]
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build([charge], [orders()], deduplication=dedup())
    for order in ("o-1", "o-2", "o-1"):
        messaging.send(ChargeCard(order))
    messaging.run_until_idle()
    assert flaky.calls == [ChargeCard("o-1"), ChargeCard("o-2")]


def test_a_key_function_that_fails_is_a_failure_of_the_message_not_of_the_consumer() -> None:
    flaky = Flaky()

    def no_key(command: object) -> str:
        raise KeyError("order_id")

    @asynchronous("orders")
    @deduplicated(key=no_key)
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        flaky(command)

    messaging = build([charge], [orders()], deduplication=dedup())
    messaging.send(ChargeCard("o-1"))
    messaging.send(ChargeCard("o-2"))
    messaging.run_until_idle()
    assert flaky.calls == []
    letters = messaging.dead_letters.list()
    assert [(d.message_id, d.exception_type) for d in letters] == [
        ("msg-1", "KeyError"),
        ("msg-2", "KeyError"),
    ]
    assert pending(messaging, "orders") == 0


def test_header_and_key_together_are_refused() -> None:
    with pytest.raises(ConfigurationError) as raised:
        deduplicated(header="k", key=str)
    assert str(raised.value) == (
        "@deduplicated takes header= or key=, not both; choose the one that names the "
        "business identity of the message."
    )


def test_deduplicated_without_a_store_is_refused_at_bootstrap() -> None:
    @asynchronous("orders")
    @deduplicated(header="idempotency-key")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None: ...

    with pytest.raises(ConfigurationError) as raised:
        build([charge], ["orders"])
    assert str(raised.value).endswith(
        "<locals>.charge is @deduplicated, but this Messaging has no deduplication store; "
        "pass Messaging(deduplication=Deduplication(store=InMemoryDeduplicationStore())) "
        "or a durable store."
    )


def test_deduplicated_on_a_synchronous_handler_is_refused_at_bootstrap() -> None:
    @deduplicated(header="idempotency-key")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None: ...

    with pytest.raises(ConfigurationError) as raised:
        build([charge], [], deduplication=dedup())
    assert str(raised.value).endswith(
        "<locals>.charge is @deduplicated, but it runs synchronously, where a consumer never "
        "sees a redelivery; deduplication applies to @asynchronous(...) handlers."
    )


def test_a_duplicate_of_a_message_still_being_retried_runs_until_one_succeeds() -> None:
    seen: list[int] = []

    @asynchronous("orders", retry=RetryPolicy(delays=[seconds(10)], attempts=3))
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard, ctx: Context) -> None:
        seen.append(ctx.attempt)
        if len(seen) == 1:
            raise TimeoutError("slow")

    messaging = build([charge], [orders()], deduplication=dedup())
    messaging.send(ChargeCard("o-1"))
    wire = first_wire(messaging)
    messaging.run_until_idle()  # fails; a retry waits 10 s
    deliver_again(messaging, wire)
    messaging.run_until_idle()  # the duplicate succeeds first
    messaging.run_until_idle(advance_time=True)  # the retry finds it done
    assert seen == [1, 1]
    assert [r.attempt for r in messaging.journal.of_kind(RecordKind.DUPLICATE)] == [2]
