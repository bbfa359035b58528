"""Asynchronous handlers on in-memory channels: copies, sequences, collector, modes (issue 3)."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    ConfigurationError,
    Context,
    Messaging,
    QueueChannel,
    RecordKind,
    SequentialIds,
    SystemClock,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.core.wire import H
from pytest_conveyor.conformance import receive_one

START = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


class Unserializable:
    """A payload the JSON codec cannot carry."""

    def __init__(self, order_id: str = "") -> None:
        self.order_id = order_id


class Orders:
    def __init__(self) -> None:
        self.placed: list[str] = []

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.placed.append(command.order_id)
        ctx.publish(OrderPlaced(command.order_id))


def build(handlers: list[object], channels: list[object], **options: object) -> Messaging:
    return Messaging(
        handlers=handlers,
        channels=channels,  # type: ignore[arg-type]
        clock=VirtualClock(START),
        ids=SequentialIds(),
        **options,  # type: ignore[arg-type]
    )


def test_the_issue_example_runs_as_written() -> None:
    emailed: list[OrderPlaced] = []

    @asynchronous("notifications")
    @event_handler
    def email_customer(event: OrderPlaced) -> None:
        emailed.append(event)

    messaging = Messaging(
        handlers=[Orders(), email_customer], channels=[QueueChannel("notifications")]
    )
    messaging.send(PlaceOrder("o-1"))  # returns once the event is queued
    assert emailed == []
    assert messaging.consumers() == ["notifications"]
    result = messaging.run("notifications", limit=10, finish_when_empty=True)
    assert emailed == [OrderPlaced("o-1")]
    assert (result.processed, result.stopped_because) == (1, "empty")


def test_each_async_event_handler_gets_its_own_copy_with_the_same_id() -> None:
    calls: list[tuple[str, str, int]] = []

    @asynchronous("notifications")
    @event_handler
    def email(event: OrderPlaced, ctx: Context) -> None:
        calls.append(("email", ctx.message_id, ctx.attempt))
        raise ConnectionError("smtp down")

    @asynchronous("notifications")
    @event_handler
    def sms(event: OrderPlaced, ctx: Context) -> None:
        calls.append(("sms", ctx.message_id, ctx.attempt))

    sync_calls: list[str] = []

    @event_handler
    def projection(event: OrderPlaced) -> None:
        sync_calls.append(event.order_id)

    messaging = build([email, sms, projection], ["notifications"])
    messaging.publish(OrderPlaced("o-1"))
    assert sync_calls == ["o-1"]  # sync handlers still run at publish time
    assert messaging.channels["notifications"].transport.pending("notifications") == 2  # type: ignore[attr-defined]
    messaging.run("notifications")
    assert calls == [("email", "msg-1", 1), ("sms", "msg-1", 1)]
    [letter] = messaging.dead_letters.list()
    assert letter.endpoint_id == "email"
    handled = messaging.journal.of_kind(RecordKind.HANDLED)
    assert [r.endpoint_id.rsplit(".", 1)[-1] for r in handled if r.channel] == ["sms"]


def test_copies_cross_the_codec_so_handlers_never_share_an_object() -> None:
    received: list[object] = []

    @asynchronous("a")
    @event_handler
    def first(event: OrderPlaced) -> None:
        received.append(event)

    @asynchronous("a")
    @event_handler
    def second(event: OrderPlaced) -> None:
        received.append(event)

    messaging = build([first, second], ["a"])
    event = OrderPlaced("o-1")
    messaging.publish(event)
    messaging.run("a")
    assert received == [event, event]
    assert received[0] is not event
    assert received[0] is not received[1]


def test_the_wire_form_is_json_bytes_and_string_headers() -> None:
    @asynchronous("a")
    @command_handler
    def handle(command: PlaceOrder) -> None: ...

    messaging = build([handle], ["a"])
    messaging.send(PlaceOrder("o-1"), headers={"tenant": "acme"})
    delivery = receive_one(messaging.channels["a"].transport, "a", lease=timedelta(seconds=1))
    assert delivery is not None
    assert json.loads(delivery.message.body) == {"order_id": "o-1"}
    headers = delivery.message.headers
    assert headers["tenant"] == "acme"
    assert headers[H.ID] == "msg-1"
    assert headers[H.ENDPOINT] == "handle"
    assert headers[H.TYPE] == "PlaceOrder"
    assert all(isinstance(v, str) for v in headers.values())


def test_channels_in_sequence_pass_through_each_then_run_the_handler() -> None:
    handled: list[str] = []

    @asynchronous("outbox", "orders")
    @event_handler
    def ship(event: OrderPlaced) -> None:
        handled.append(event.order_id)

    messaging = build([ship], ["outbox", "orders"])
    messaging.publish(OrderPlaced("o-1"))
    messaging.run("orders")
    assert handled == []  # it is still in the outbox
    messaging.run("outbox")
    assert handled == []  # forwarded, not handled, by the outbox consumer
    forwarded = messaging.journal.of_kind(RecordKind.FORWARDED)
    assert [(r.channel, r.detail) for r in forwarded] == [("orders", "from outbox")]
    messaging.run("orders")
    assert handled == ["o-1"]


def test_one_queue_serves_many_handlers_and_routes_by_endpoint_id() -> None:
    calls: list[str] = []

    @asynchronous("work")
    @command_handler
    def place(command: PlaceOrder) -> None:
        calls.append(f"place {command.order_id}")

    @asynchronous("work")
    @event_handler
    def placed(event: OrderPlaced) -> None:
        calls.append(f"placed {event.order_id}")

    messaging = build([place, placed], ["work"])
    messaging.send(PlaceOrder("1"))
    messaging.publish(OrderPlaced("2"))
    messaging.run("work")
    assert calls == ["place 1", "placed 2"]


def test_asynchronous_on_a_class_applies_to_all_its_handlers() -> None:
    @asynchronous("orders")
    class Handlers:
        def __init__(self) -> None:
            self.calls: list[str] = []

        @command_handler
        def place(self, command: PlaceOrder) -> None:
            self.calls.append("place")

        @event_handler
        def placed(self, event: OrderPlaced) -> None:
            self.calls.append("placed")

    handlers = Handlers()
    messaging = build([handlers], ["orders"])
    messaging.send(PlaceOrder("1"))
    messaging.publish(OrderPlaced("1"))
    assert handlers.calls == []
    messaging.run("orders")
    assert handlers.calls == ["place", "placed"]


def test_endpoint_ids_can_be_overridden_and_travel_on_the_wire() -> None:
    @asynchronous("orders", endpoint_id="mailer.v1")
    @event_handler
    def email(event: OrderPlaced) -> None: ...

    messaging = build([email], ["orders"])
    messaging.publish(OrderPlaced("1"))
    delivery = receive_one(messaging.channels["orders"].transport, "orders", lease=timedelta(1))
    assert delivery is not None
    assert delivery.message.headers[H.ENDPOINT] == "mailer.v1"


def test_the_collector_sends_only_after_the_handler_succeeds() -> None:
    handled: list[str] = []
    attempts: list[int] = []

    @asynchronous("orders")
    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        ctx.publish(OrderPlaced(command.order_id))
        attempts.append(1)
        if command.order_id == "bad":
            raise ValueError("rejected after publishing")

    @asynchronous("notifications")
    @event_handler
    def notify(event: OrderPlaced) -> None:
        handled.append(event.order_id)

    messaging = build([place, notify], ["orders", "notifications"])
    messaging.send(PlaceOrder("good"))
    messaging.send(PlaceOrder("bad"))
    messaging.run("orders")
    messaging.run("notifications")
    assert handled == ["good"]
    assert messaging.dead_letters.count() == 1


def test_a_failing_sync_command_handler_sends_nothing_it_published() -> None:
    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        ctx.publish(OrderPlaced(command.order_id))
        raise ValueError("no stock")

    @asynchronous("notifications")
    @event_handler
    def notify(event: OrderPlaced) -> None: ...

    messaging = build([place, notify], ["notifications"])
    with pytest.raises(ValueError, match="no stock"):
        messaging.send(PlaceOrder("o-1"))
    assert messaging.channels["notifications"].transport.pending("notifications") == 0  # type: ignore[attr-defined]
    assert messaging.journal.of_kind(RecordKind.QUEUED) == []


def test_inline_mode_runs_async_handlers_at_send_through_the_codec() -> None:
    handled: list[object] = []

    @asynchronous("notifications")
    @event_handler
    def notify(event: OrderPlaced) -> None:
        handled.append(event)

    messaging = build([Orders(), notify], ["notifications"], mode="inline")
    event_seen_by_sender: list[OrderPlaced] = []
    messaging.send(PlaceOrder("o-1"))
    assert handled == [OrderPlaced("o-1")]
    assert event_seen_by_sender == []
    kinds = [r.kind for r in messaging.journal]
    assert kinds == [
        RecordKind.SENT,
        RecordKind.PUBLISHED,
        RecordKind.HANDLED,
        RecordKind.QUEUED,
        RecordKind.HANDLED,
    ]


def test_inline_mode_per_channel() -> None:
    calls: list[str] = []

    @asynchronous("fast")
    @event_handler
    def inline(event: OrderPlaced) -> None:
        calls.append("fast")

    @asynchronous("slow")
    @event_handler
    def queued(event: OrderPlaced) -> None:
        calls.append("slow")

    messaging = build([inline, queued], [QueueChannel("fast", mode="inline"), "slow"])
    messaging.publish(OrderPlaced("1"))
    assert calls == ["fast"]
    messaging.run("slow")
    assert calls == ["fast", "slow"]


def test_an_asynchronous_command_bus_queues_then_routes_normally() -> None:
    orders = Orders()
    messaging = build([orders], ["commands"])
    bus = messaging.command_bus("commands")
    assert bus.send(PlaceOrder("o-1")) is None
    assert orders.placed == []
    messaging.run("commands")
    assert orders.placed == ["o-1"]


def test_an_asynchronous_event_bus_queues_one_message_and_fans_out_on_consumption() -> None:
    calls: list[str] = []

    @event_handler
    def a(event: OrderPlaced) -> None:
        calls.append("a")

    @event_handler
    def b(event: OrderPlaced) -> None:
        calls.append("b")

    messaging = build([a, b], ["events"])
    messaging.event_bus("events").publish(OrderPlaced("1"))
    assert messaging.channels["events"].transport.pending("events") == 1  # type: ignore[attr-defined]
    messaging.run("events")
    assert calls == ["a", "b"]


def test_consumer_limits_combine_whichever_comes_first() -> None:
    @asynchronous("work")
    @command_handler
    def handle(command: PlaceOrder) -> None: ...

    messaging = build([handle], ["work"])
    for n in range(8):
        messaging.send(PlaceOrder(str(n)))
    first = messaging.run("work", limit=5, finish_when_empty=True)
    assert (first.processed, first.stopped_because) == (5, "limit")
    second = messaging.run("work", limit=5, finish_when_empty=True)
    assert (second.processed, second.stopped_because) == (3, "empty")


def test_a_time_limit_stops_an_idle_consumer_on_virtual_time() -> None:
    @asynchronous("work")
    @command_handler
    def handle(command: PlaceOrder) -> None: ...

    messaging = build([handle], ["work"])
    result = messaging.run("work", time_limit=timedelta(minutes=1), finish_when_empty=False)
    assert result.stopped_because == "time limit"
    assert messaging.clock.now() == START + timedelta(minutes=1)


def test_unknown_consumer_names_what_exists() -> None:
    messaging = build([], ["work", "mail"])
    with pytest.raises(ConfigurationError) as caught:
        messaging.run("wrok")
    assert str(caught.value) == (
        "no consumer named 'wrok'; consumers: work, mail. A consumer is a declared channel or a "
        "@scheduled endpoint."
    )


def test_a_received_message_is_leased_and_comes_back_if_never_acknowledged() -> None:
    @asynchronous("work")
    @command_handler
    def handle(command: PlaceOrder, ctx: Context) -> None:
        seen.append(ctx.attempt)

    seen: list[int] = []
    messaging = build([handle], [QueueChannel("work", lease=timedelta(seconds=30))])
    messaging.send(PlaceOrder("1"))
    transport = messaging.channels["work"].transport
    lost = receive_one(transport, "work", lease=timedelta(seconds=30))  # a consumer that dies
    assert lost is not None
    messaging.run("work")
    assert seen == []
    messaging.advance(timedelta(seconds=30))
    assert seen == [2]  # delivered again, as the second attempt


def test_sigterm_finishes_the_current_message_then_stops_the_run() -> None:
    handled: list[str] = []

    @asynchronous("work")
    @command_handler
    def handle(command: PlaceOrder) -> None:
        if command.order_id == "1":
            os.kill(os.getpid(), signal.SIGTERM)  # the process manager asks us to stop
        handled.append(command.order_id)

    messaging = Messaging(handlers=[handle], channels=["work"], clock=SystemClock())
    for n in range(1, 4):
        messaging.send(PlaceOrder(str(n)))
    result = messaging.run("work")  # no limits: runs until a signal
    assert handled == ["1"]
    assert result.stopped_because == "signal"
    assert messaging.run("work", finish_when_empty=True).processed == 2


def test_a_channel_can_opt_out_of_serialization() -> None:
    from conveyor.core.codec.inprocess import InProcessCodec

    received: list[object] = []

    @asynchronous("local")
    @command_handler
    def handle(command: Unserializable) -> None:
        received.append(command)

    messaging = build([handle], [QueueChannel("local", codec=InProcessCodec())])
    command = Unserializable("o-1")
    messaging.send(command)
    messaging.run("local")
    assert received == [command]
    assert received[0] is command  # the very object: nothing was encoded


def test_without_opting_out_an_unserializable_payload_fails_at_send() -> None:
    from conveyor import SerializationError

    @asynchronous("work")
    @command_handler
    def handle(command: Unserializable) -> None: ...

    with pytest.raises(SerializationError):
        build([handle], ["work"]).send(Unserializable())


def test_on_a_system_clock_a_run_with_only_a_limit_handles_what_is_queued() -> None:
    handled: list[str] = []

    @asynchronous("work")
    @command_handler
    def handle(command: PlaceOrder) -> None:
        handled.append(command.order_id)

    messaging = Messaging(handlers=[handle], channels=["work"], clock=SystemClock())
    messaging.send(PlaceOrder("1"))
    result = messaging.run("work", limit=10)  # returns: nothing more is queued
    assert (handled, result.processed, result.stopped_because) == (["1"], 1, "empty")


def test_an_asynchronous_bus_retries_with_its_channels_policy() -> None:
    from conveyor import Backoff, RetryPolicy

    attempts: list[int] = []

    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        if len(attempts) < 3:
            raise TimeoutError("database busy")

    retry = RetryPolicy(delays=Backoff.fixed(timedelta(seconds=1)), attempts=3)
    messaging = build([place], [QueueChannel("commands", retry=retry)])
    messaging.command_bus("commands").send(PlaceOrder("o-1"))
    messaging.run_until_idle(advance_time=True)
    assert attempts == [1, 2, 3]
    assert messaging.dead_letters.count() == 0
    assert [r.delay for r in messaging.journal.of_kind(RecordKind.RETRIED)] == [
        timedelta(seconds=1),
        timedelta(seconds=1),
    ]
