"""The OpenTelemetry integration, with the SDK's in-memory exporters: spans linked across
channels through ``traceparent``, counters and the duration histogram."""

from __future__ import annotations

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
    Context,
    Messaging,
    QueueChannel,
    RetryPolicy,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.otel import Telemetry


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
