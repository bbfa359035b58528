"""OpenTelemetry for Conveyor: spans and metrics (``pip install "conveyor[otel]"``).

A worker's operator wants traces that follow a message across channels and processes, and
counters to alert on. :class:`Telemetry` gives both, through the kernel's own seams, and this
package is the only one that imports ``opentelemetry`` (the kernel itself does not depend on it):

* a span per handling, as an ``@around`` interceptor: its parent is read from the message's
  ``traceparent`` header (W3C Trace Context), so a handling is linked to the send that caused it,
  on whatever channel and in whatever process;
* a span per send (:meth:`Telemetry.send` and :meth:`Telemetry.publish`), which writes the
  ``traceparent`` header; user headers propagate to the messages a handler sends, so the trace
  follows the flow onwards;
* counters of handled, failed, retried and dead-lettered messages (from the journal, where the
  kernel records each of them), and a histogram of handling durations in milliseconds.

::

    telemetry = Telemetry()
    messaging = Messaging(handlers=[..., telemetry], channels=[...])
    telemetry.watch(messaging.journal)
    telemetry.send(messaging, PlaceOrder(...))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from opentelemetry import metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conveyor.core.clock import Clock, SystemClock
from conveyor.core.interceptors import around
from conveyor.core.journal import Journal, Record, RecordKind
from conveyor.core.message import Message

__all__ = ["Telemetry"]

_PROPAGATOR = TraceContextTextMapPropagator()
_COUNTED = {
    RecordKind.HANDLED: "conveyor.messages.handled",
    RecordKind.FAILED: "conveyor.messages.failed",
    RecordKind.RETRIED: "conveyor.messages.retried",
    RecordKind.DEAD_LETTERED: "conveyor.messages.dead_lettered",
}


class _Sender(Protocol):
    def send(self, command: object, *, headers: Mapping[str, str] | None = ...) -> Any: ...

    def publish(self, event: object, *, headers: Mapping[str, str] | None = ...) -> Any: ...


class Telemetry:
    """Spans per send and per handling, linked by ``traceparent``; counters and durations.

    Args:
        tracer_provider: where spans go (the global provider if None).
        meter_provider: where metrics go (the global provider if None).
        clock: what handling durations are measured with.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._tracer = trace.get_tracer("conveyor", tracer_provider=tracer_provider)
        meter = metrics.get_meter("conveyor", meter_provider=meter_provider)
        self._counters = {
            kind: meter.create_counter(name, unit="{message}") for kind, name in _COUNTED.items()
        }
        self._duration = meter.create_histogram(
            "conveyor.handling.duration", unit="ms", description="time a handler took"
        )
        self._clock = clock if clock is not None else SystemClock()

    @around()
    def handling(self, proceed: Callable[[], object], message: Message) -> object:
        """The span of one handling, child of the span that sent the message."""
        parent = _PROPAGATOR.extract(carrier=dict(message.headers.user))
        name = message.type_name
        attributes = {"messaging.system": "conveyor", "messaging.message.id": message.headers.id}
        started = self._clock.now()
        with self._tracer.start_as_current_span(
            f"handle {name}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ):
            try:
                return proceed()
            finally:
                elapsed = (self._clock.now() - started).total_seconds() * 1000
                self._duration.record(elapsed, {"message_type": name})

    def watch(self, journal: Journal) -> None:
        """Count handled, failed, retried and dead-lettered messages as the journal records them."""
        journal.subscribe(self._count, _COUNTED)

    def _count(self, record: Record) -> None:
        labels = {
            "message_type": record.message_type,
            "endpoint": record.endpoint_id or "",
            "channel": record.channel or "",
        }
        self._counters[record.kind].add(1, labels)

    def send(
        self, bus: _Sender, command: object, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        """Send ``command`` in a span of its own, with its ``traceparent`` header."""
        with self._span("send", command) as carrier:
            return bus.send(command, headers={**(headers or {}), **carrier})

    def publish(
        self, bus: _Sender, event: object, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        """Publish ``event`` in a span of its own, with its ``traceparent`` header."""
        with self._span("publish", event) as carrier:
            return bus.publish(event, headers={**(headers or {}), **carrier})

    def _span(self, verb: str, payload: object) -> _SendSpan:
        return _SendSpan(self._tracer, f"{verb} {type(payload).__qualname__}")


class _SendSpan:
    """A producer span around one send, giving the headers that carry it."""

    def __init__(self, tracer: trace.Tracer, name: str) -> None:
        self._manager = tracer.start_as_current_span(name, kind=trace.SpanKind.PRODUCER)

    def __enter__(self) -> dict[str, str]:
        self._manager.__enter__()
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier

    def __exit__(self, *exc: Any) -> None:
        self._manager.__exit__(*exc)
