"""The OpenTelemetry integration, with the SDK's in-memory exporters: spans linked across
channels through ``traceparent``, counters and the duration histogram."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from conveyor import (
    AsyncContext,
    AsyncMessaging,
    Context,
    Messaging,
    QueueChannel,
    RetryPolicy,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.core.errors import ConfigurationError
from conveyor.otel import AsyncTelemetry, Telemetry


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@asynchronous("orders")
@command_handler
def place(command: PlaceOrder, ctx: Context) -> None:
    ctx.publish(OrderPlaced(command.order_id))


@asynchronous("mail")
@event_handler
def send_mail(event: OrderPlaced) -> None:
    if event.order_id == "bad":
        raise ConnectionError("mail server down")


def instrumented() -> tuple[Messaging, Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    clock = VirtualClock()
    telemetry = Telemetry(
        tracer_provider=tracing, meter_provider=MeterProvider(metric_readers=[reader]), clock=clock
    )
    messaging = Messaging(
        [place, send_mail, telemetry],
        [QueueChannel("orders"), QueueChannel("mail")],
        clock=clock,
        retry=RetryPolicy(instant=1),
    )
    telemetry.watch(messaging.journal)
    return messaging, telemetry, spans, reader


def test_a_send_and_the_handlings_it_causes_are_one_trace_across_channels() -> None:
    messaging, telemetry, spans, _ = instrumented()
    telemetry.send(messaging, PlaceOrder("o-1"))
    messaging.run_until_idle(advance_time=True)
    finished = {span.name: span for span in spans.get_finished_spans()}
    send, handle, then = (
        finished["send PlaceOrder"],
        finished[f"handle {handle_name(PlaceOrder)}"],
        finished[f"handle {handle_name(OrderPlaced)}"],
    )
    assert (send.kind, handle.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert handle.parent is not None
    assert handle.parent.span_id == send.context.span_id  # linked through traceparent
    assert send.context.trace_id == handle.context.trace_id == then.context.trace_id
    assert "traceparent" in str(messaging.journal.records[0].headers)


def handle_name(kind: type) -> str:
    return kind.__qualname__


def test_counters_and_the_duration_histogram() -> None:
    messaging, telemetry, _, reader = instrumented()
    telemetry.send(messaging, PlaceOrder("o-1"))
    telemetry.send(messaging, PlaceOrder("bad"))
    messaging.run_until_idle(advance_time=True)
    values: dict[str, Any] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                values[metric.name] = metric.data.data_points
    handled = sum(p.value for p in values["conveyor.messages.handled"])
    failed = sum(p.value for p in values["conveyor.messages.failed"])
    assert (handled, failed) == (3, 2)  # two orders and one mail; the bad mail twice
    assert sum(p.value for p in values["conveyor.messages.dead_lettered"]) == 1
    assert sum(p.count for p in values["conveyor.handling.duration"]) == 5
    messaging.dead_letters.delete(messaging.dead_letters.list()[0].id)


def spans_named(spans: InMemorySpanExporter) -> dict[str, list[Any]]:
    named: dict[str, list[Any]] = {}
    for span in spans.get_finished_spans():
        named.setdefault(span.name, []).append(span)
    return named


def test_spans_carry_the_messaging_semantic_convention_attributes() -> None:
    messaging, telemetry, spans, _ = instrumented()
    telemetry.send(messaging, PlaceOrder("o-1"))
    messaging.run_until_idle(advance_time=True)
    sent_id = next(r.message_id for r in messaging.journal.records if r.kind.value == "sent")
    named = spans_named(spans)
    (send,) = named["send PlaceOrder"]
    (handle,) = named[f"handle {handle_name(PlaceOrder)}"]
    assert dict(send.attributes) == {
        "messaging.system": "conveyor",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.operation": "send",
        "messaging.message.id": sent_id,
        "messaging.destination.name": "orders",
    }
    assert dict(handle.attributes) == {
        "messaging.system": "conveyor",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.operation": "process",
        "messaging.message.id": sent_id,
        "messaging.message.conversation_id": sent_id,
        "messaging.destination.name": "orders",
    }


def test_a_send_inside_a_handler_is_a_span_child_of_the_handling_span() -> None:
    messaging, telemetry, spans, _ = instrumented()
    telemetry.send(messaging, PlaceOrder("o-1"))
    messaging.run_until_idle(advance_time=True)
    published_id = next(
        r.message_id for r in messaging.journal.records if r.kind.value == "published"
    )
    named = spans_named(spans)
    (handle,) = named[f"handle {handle_name(PlaceOrder)}"]
    (publish,) = named["publish OrderPlaced"]
    (then,) = named[f"handle {handle_name(OrderPlaced)}"]
    assert publish.kind is SpanKind.PRODUCER
    assert publish.parent is not None
    assert publish.parent.span_id == handle.context.span_id
    assert publish.context.trace_id == handle.context.trace_id == then.context.trace_id
    assert publish.attributes["messaging.message.id"] == published_id
    assert publish.attributes["messaging.destination.name"] == "mail"
    assert publish.attributes["messaging.operation.name"] == "publish"
    assert then.attributes["messaging.destination.name"] == "mail"


@dataclass(frozen=True)
class Ship:
    order_id: str


@dataclass(frozen=True)
class Shipped:
    order_id: str


def test_telemetry_send_from_a_handler_carries_its_own_traceparent_onwards() -> None:
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry(tracer_provider=tracing, clock=VirtualClock())

    @asynchronous("shipping")
    @command_handler
    def ship(command: Ship, ctx: Context) -> None:
        telemetry.publish(ctx, Shipped(command.order_id))

    @asynchronous("tracking")
    @event_handler
    def track(event: Shipped) -> None: ...

    messaging = Messaging(
        [ship, track, telemetry], [QueueChannel("shipping"), QueueChannel("tracking")]
    )
    telemetry.watch(messaging.journal)
    telemetry.send(messaging, Ship("o-1"))
    messaging.run_until_idle()
    named = spans_named(spans)
    (handle,) = named[f"handle {handle_name(Ship)}"]
    (publish,) = named["publish Shipped"]  # one span: the explicit one, none made from the journal
    (then,) = named[f"handle {handle_name(Shipped)}"]
    assert publish.parent is not None
    assert publish.parent.span_id == handle.context.span_id
    assert then.parent is not None
    assert then.parent.span_id == publish.context.span_id  # linked through its traceparent


def test_the_sends_of_a_failed_attempt_end_with_its_span() -> None:
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry(tracer_provider=tracing, clock=VirtualClock())

    @asynchronous("shipping")
    @command_handler
    def ship(command: Ship, ctx: Context) -> None:
        ctx.publish(Shipped(command.order_id))
        raise RuntimeError("carrier down")

    messaging = Messaging([ship, telemetry], [QueueChannel("shipping")], retry=RetryPolicy())
    telemetry.watch(messaging.journal)
    telemetry.send(messaging, Ship("o-1"))
    messaging.run_until_idle()
    named = spans_named(spans)
    (handle,) = named[f"handle {handle_name(Ship)}"]
    (publish,) = named["publish Shipped"]  # ended, though its message never left
    assert publish.parent is not None
    assert publish.parent.span_id == handle.context.span_id
    assert "messaging.destination.name" not in publish.attributes
    messaging.dead_letters.delete(messaging.dead_letters.list()[0].id)


def test_async_telemetry_spans_last_while_the_handler_is_awaited() -> None:
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = AsyncTelemetry(tracer_provider=tracing, clock=VirtualClock())

    @asynchronous("shipping")
    @command_handler
    async def ship(command: Ship, ctx: AsyncContext) -> None:
        await asyncio.sleep(0)  # the handler yields to the loop before it sends
        await ctx.publish(Shipped(command.order_id))

    @asynchronous("tracking")
    @event_handler
    async def track(event: Shipped) -> None: ...

    async def flow() -> AsyncMessaging:
        messaging = AsyncMessaging(
            [ship, track, telemetry],
            [QueueChannel("shipping"), QueueChannel("tracking")],
            clock=VirtualClock(),
        )
        telemetry.watch(messaging.journal)
        await telemetry.send(messaging, Ship("o-1"))
        await messaging.run_until_idle()
        return messaging

    asyncio.run(flow())
    named = spans_named(spans)
    (send,) = named["send Ship"]
    (handle,) = named[f"handle {handle_name(Ship)}"]
    (publish,) = named["publish Shipped"]
    (then,) = named[f"handle {handle_name(Shipped)}"]
    assert send.attributes["messaging.destination.name"] == "shipping"
    assert handle.parent is not None
    assert handle.parent.span_id == send.context.span_id
    assert handle.attributes["messaging.destination.name"] == "shipping"
    assert publish.parent is not None
    assert publish.parent.span_id == handle.context.span_id  # the span was current after await
    assert publish.attributes["messaging.destination.name"] == "tracking"
    assert then.context.trace_id == send.context.trace_id


def test_a_messaging_refuses_the_async_telemetry() -> None:
    with pytest.raises(ConfigurationError, match="coroutine function"):
        Messaging([place, AsyncTelemetry()], [QueueChannel("orders")])
