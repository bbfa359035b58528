"""OpenTelemetry for Conveyor: spans and metrics (``pip install "conveyor[otel]"``).

A worker's operator wants traces that follow a message across channels and processes, and
counters to alert on. :class:`Telemetry` gives both, through the kernel's own seams, and this
package is the only one that imports ``opentelemetry`` (the kernel itself does not depend on it):

* a span per handling, as an ``@around`` interceptor: its parent is read from the message's
  ``traceparent`` header (W3C Trace Context), so a handling is linked to the send that caused it,
  on whatever channel and in whatever process. It sits just outside the kernel's message
  collector, so the messages a handler sends leave inside it;
* a span per send made inside a handler (``ctx.send``, ``ctx.publish``), child of the handling
  span, named after the channel its copy leaves on; the user headers of the handled message,
  ``traceparent`` among them, propagate to it, so the trace follows the flow onwards;
* a span per send from outside (:meth:`Telemetry.send` and :meth:`Telemetry.publish`), which
  writes the ``traceparent`` header; inside a handler, ``telemetry.send(ctx, ...)`` does the
  same, so the next handling is the child of that send span rather than of the first one;
* counters of handled, failed, retried and dead-lettered messages (from the journal, where the
  kernel records each of them), and a histogram of handling durations in milliseconds.

Spans carry OpenTelemetry's messaging attributes: ``messaging.system`` ("conveyor"),
``messaging.destination.name`` (the channel), ``messaging.message.id``,
``messaging.message.conversation_id`` (the correlation id), ``messaging.operation.type``
("send" or "process", also as the older ``messaging.operation``) and
``messaging.operation.name`` ("send", "publish" or "process").

::

    telemetry = Telemetry()
    messaging = Messaging(handlers=[..., telemetry], channels=[...])
    telemetry.watch(messaging.journal)  # metrics, and the spans of sends inside handlers
    telemetry.send(messaging, PlaceOrder(...))

:class:`AsyncTelemetry` is the same for an ``AsyncMessaging`` (``await telemetry.send(...)``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from opentelemetry import metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conveyor.core.clock import Clock, SystemClock
from conveyor.core.interceptors import around, before
from conveyor.core.journal import Journal, Record, RecordKind
from conveyor.core.message import Message
from conveyor.drivers.context import Handling

__all__ = ["Telemetry", "AsyncTelemetry", "HANDLING_ORDER"]

#: Where the handling span sits among the kernel's layers: inside retries, transaction and
#: deduplication (each attempt is a span of its own), just outside the message collector (order
#: -1998), so a handler's messages are sent, and their QUEUED records made, inside the span.
HANDLING_ORDER = -1999

_PROPAGATOR = TraceContextTextMapPropagator()
_COUNTED = {
    RecordKind.HANDLED: "conveyor.messages.handled",
    RecordKind.FAILED: "conveyor.messages.failed",
    RecordKind.RETRIED: "conveyor.messages.retried",
    RecordKind.DEAD_LETTERED: "conveyor.messages.dead_lettered",
}
_SENDS = {RecordKind.SENT: "send", RecordKind.PUBLISHED: "publish"}
_WATCHED = {*_COUNTED, *_SENDS, RecordKind.QUEUED}

SYSTEM = "messaging.system"
DESTINATION = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"
CONVERSATION_ID = "messaging.message.conversation_id"
OPERATION_TYPE = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
OPERATION = "messaging.operation"  # the name before semantic conventions 1.26


class _Sender(Protocol):
    def send(self, command: object, *, headers: Mapping[str, str] | None = ...) -> Any: ...

    def publish(self, event: object, *, headers: Mapping[str, str] | None = ...) -> Any: ...


class _Sends:
    """The send spans of one handling, by message id, open until the handling ends."""

    __slots__ = ("handling", "open")

    def __init__(self, handling: trace.Span) -> None:
        self.handling = handling
        self.open: dict[str, trace.Span] = {}


#: The handling this call runs in (per thread and per task), and an explicit send's span.
_handling: ContextVar[_Sends | None] = ContextVar("conveyor_otel_handling", default=None)
_explicit: ContextVar[trace.Span | None] = ContextVar("conveyor_otel_send", default=None)


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

    @around(order=HANDLING_ORDER)
    def handling(self, proceed: Callable[[], object], message: Message) -> object:
        """The span of one handling, child of the span that sent the message."""
        with self._handling_span(message):
            return proceed()

    @contextmanager
    def _handling_span(self, message: Message) -> Iterator[None]:
        parent = _PROPAGATOR.extract(carrier=dict(message.headers.user))
        name = message.type_name
        attributes = {
            SYSTEM: "conveyor",
            MESSAGE_ID: message.headers.id,
            CONVERSATION_ID: message.headers.correlation_id,
            OPERATION_TYPE: "process",
            OPERATION_NAME: "process",
            OPERATION: "process",
        }
        started = self._clock.now()
        with self._tracer.start_as_current_span(
            f"handle {name}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ) as span:
            sends = _Sends(span)
            token = _handling.set(sends)
            try:
                yield
            finally:
                _handling.reset(token)
                for opened in sends.open.values():
                    opened.end()
                elapsed = (self._clock.now() - started).total_seconds() * 1000
                self._duration.record(elapsed, {"message_type": name})

    @before()
    def destination(self, message: Message, ctx: object) -> None:
        """Name the channel the handled message came from on its span (only the handler's
        context knows it)."""
        sends = _handling.get()
        if sends is not None and isinstance(ctx, Handling) and ctx.channel:
            sends.handling.set_attribute(DESTINATION, ctx.channel)

    def watch(self, journal: Journal) -> None:
        """Count handled, failed, retried and dead-lettered messages as the journal records
        them, and open a span for each send made inside a handler."""
        journal.subscribe(self._record, _WATCHED)

    def _record(self, record: Record) -> None:
        counter = self._counters.get(record.kind)
        if counter is not None:
            labels = {
                "message_type": record.message_type,
                "endpoint": record.endpoint_id or "",
                "channel": record.channel or "",
            }
            counter.add(1, labels)
            return
        explicit = _explicit.get()
        if explicit is not None:  # Telemetry.send: its own span, told what was sent, and where
            _describe(explicit, record)
            return
        sends = _handling.get()
        if sends is None:
            return
        if record.kind in _SENDS:
            sends.open[record.message_id] = self._send_span(record, sends.handling)
        elif (opened := sends.open.get(record.message_id)) is not None:
            _describe(opened, record)

    def _send_span(self, record: Record, handling: trace.Span) -> trace.Span:
        verb = _SENDS[record.kind]
        span = self._tracer.start_span(
            f"{verb} {record.message_type}",
            context=trace.set_span_in_context(handling),
            kind=trace.SpanKind.PRODUCER,
            attributes=_send_attributes(verb),
        )
        _describe(span, record)
        return span

    def send(
        self, bus: _Sender, command: object, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        """Send ``command`` in a span of its own, with its ``traceparent`` header.

        ``bus`` is a ``Messaging``, or a handler's ``ctx``: then the span is a child of the
        handling span, and the handling it causes a child of this span.
        """
        with self._span("send", command) as carrier:
            return bus.send(command, headers={**(headers or {}), **carrier})

    def publish(
        self, bus: _Sender, event: object, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        """Publish ``event`` in a span of its own, with its ``traceparent`` header."""
        with self._span("publish", event) as carrier:
            return bus.publish(event, headers={**(headers or {}), **carrier})

    def _span(self, verb: str, payload: object) -> _SendSpan:
        return _SendSpan(self._tracer, verb, type(payload).__qualname__)


class AsyncTelemetry(Telemetry):
    """:class:`Telemetry` for an ``AsyncMessaging``: the same spans and metrics, awaited.

    Its handling span lasts while the handler is awaited (a plain interceptor would end it when
    the coroutine is made), and :meth:`send` and :meth:`publish` are awaited in their span. A
    ``Messaging`` refuses it (its interceptor is a coroutine function): use :class:`Telemetry`.
    """

    @around(order=HANDLING_ORDER)
    async def handling(  # type: ignore[override]
        self, proceed: Callable[[], Awaitable[object]], message: Message
    ) -> object:
        """The span of one handling, while the handler is awaited."""
        with self._handling_span(message):
            return await proceed()

    async def send(
        self, bus: _Sender, command: object, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        """Send ``command`` in a span of its own, with its ``traceparent`` header."""
        with self._span("send", command) as carrier:
            return await bus.send(command, headers={**(headers or {}), **carrier})

    async def publish(
        self, bus: _Sender, event: object, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        """Publish ``event`` in a span of its own, with its ``traceparent`` header."""
        with self._span("publish", event) as carrier:
            return await bus.publish(event, headers={**(headers or {}), **carrier})


def _send_attributes(verb: str) -> dict[str, str]:
    return {SYSTEM: "conveyor", OPERATION_TYPE: "send", OPERATION_NAME: verb, OPERATION: "send"}


def _describe(span: trace.Span, record: Record) -> None:
    """What a journal record says of a send: the message's id, and the channel it left on."""
    if record.kind in _SENDS:
        span.set_attribute(MESSAGE_ID, record.message_id)
    elif record.kind is RecordKind.QUEUED and record.channel:
        span.set_attribute(DESTINATION, record.channel)


class _SendSpan:
    """A producer span around one send, giving the headers that carry it."""

    def __init__(self, tracer: trace.Tracer, verb: str, type_name: str) -> None:
        self._manager = tracer.start_as_current_span(
            f"{verb} {type_name}", kind=trace.SpanKind.PRODUCER, attributes=_send_attributes(verb)
        )
        self._token: Any = None

    def __enter__(self) -> dict[str, str]:
        span = self._manager.__enter__()
        self._token = _explicit.set(span)
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier

    def __exit__(self, *exc: Any) -> None:
        _explicit.reset(self._token)
        self._manager.__exit__(*exc)
