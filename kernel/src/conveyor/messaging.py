"""``Messaging``: the sync kernel facade — buses, channels, consumers and time, in one object.

It is built from an explicit list of handlers and channels (no global registry) and validates
everything at construction. Dispatch lives here; consuming a delivery lives in
``conveyor.consumption``; running consumers and settling in ``conveyor.driving``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from conveyor.bootstrap import (
    ChannelRuntime,
    Invoke,
    base_call,
    open_channel,
    resolve_error_handler,
    unused_layers,
    validate_handlers,
)
from conveyor.buses import BusView
from conveyor.channels import Channel, Mode
from conveyor.clock import Clock, SystemClock, VirtualClock, ensure_aware
from conveyor.collector import PendingSend, Scope
from conveyor.construct import fast_constructor
from conveyor.consumption import Consumption
from conveyor.context import Context
from conveyor.deadletter import DeadLetterStore, InMemoryDeadLetterStore
from conveyor.deduplication import Deduplication
from conveyor.delivery import NO_OPTIONS, DeliveryOptions
from conveyor.driving import Driver, RunResult
from conveyor.errors import ConfigurationError, RoutingError
from conveyor.headers import Headers, check_user_headers
from conveyor.ids import IdGenerator, UuidV7Ids, seeded_random
from conveyor.interceptors import Interceptor, interceptor_mark, wrap_with
from conveyor.journal import ExceptionInfo, Journal, RecordKind
from conveyor.logs import log_failures as log_failures_to
from conveyor.message import Message
from conveyor.registry import HandlerSpec, read_handlers
from conveyor.replay import DeadLetters
from conveyor.retry import RetryPolicy
from conveyor.routing import Router
from conveyor.serialization import Codec, JsonCodec, TypeRegistry
from conveyor.stack import Attempt, Layer, StackOrder, handling_stack
from conveyor.transport import WireMessage
from conveyor.wire import BUS_COMMAND, BUS_EVENT, to_wire_headers

__all__ = ["Messaging", "ChannelRuntime"]

_EMPTY_HEADERS: Mapping[str, str] = {}
_EMPTY_USER: Mapping[str, str] = MappingProxyType({})


_make_headers = fast_constructor(
    Headers, ("id", "correlation_id", "causation_id", "timestamp", "attempt", "user")
)
_make_message = fast_constructor(Message, ("payload", "headers", "routing_key"))


class Messaging:
    """Command, event and query buses over handlers and channels, with injected time.

    Args:
        handlers: functions and objects whose methods are marked with handler decorators, and
            interceptors.
        channels: channel definitions (``QueueChannel("orders")``; a plain string is shorthand
            for an in-memory ``QueueChannel``).
        clock: where time comes from; ``SystemClock()`` by default, ``VirtualClock`` in tests.
        ids: message id generator; uuid v7 by default, ``SequentialIds()`` in tests.
        codec: how payloads become bytes; JSON by default.
        types: extra payload types the codec must know by name (handler types are known).
        interceptors: extra interceptors (they may also be passed in ``handlers``).
        dead_letters: the dead-letter store; in memory by default.
        deduplication: deduplicate asynchronous endpoints (None: off).
        retry: the default retry policy of every channel (None: no retries).
        error_handler: the default error handler (a handler or its endpoint id).
        dead_letter: whether failures that nothing else took go to the dead-letter store.
        mode: "queued" (async handlers wait for a consumer) or "inline" (handled at send).
        transaction: a factory of context managers wrapped around each handling attempt.
        seed: seeds retry jitter, so tests repeat exactly.
        journal: where records go; a bounded journal is used by default with a SystemClock.
        max_steps: the settling step limit that detects runaway loops.
        log_failures: log retries, dead letters and rejected messages to the "conveyor"
            logger (the pytest plugin turns it off: its failure output shows them).
    """

    def __init__(
        self,
        handlers: Iterable[object] = (),
        channels: Iterable[Channel | str] = (),
        *,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        codec: Codec | None = None,
        types: Iterable[type] = (),
        interceptors: Iterable[object] = (),
        dead_letters: DeadLetterStore | None = None,
        deduplication: Deduplication | None = None,
        retry: RetryPolicy | None = None,
        error_handler: object | None = None,
        dead_letter: bool = True,
        mode: Mode = "queued",
        transaction: Callable[[], AbstractContextManager[object]] | None = None,
        seed: int | None = None,
        journal: Journal | None = None,
        max_steps: int | None = 100_000,
        log_failures: bool = True,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.ids: IdGenerator = ids if ids is not None else UuidV7Ids(self.clock)
        self.journal = (
            journal
            if journal is not None
            else Journal(max_records=None if isinstance(self.clock, VirtualClock) else 10_000)
        )
        if log_failures:
            log_failures_to(self.journal, logging.getLogger("conveyor"))
        self.random: random.Random = seeded_random(seed)
        self.mode: Mode = mode
        self.retry = retry
        self.dead_letter = dead_letter
        self.transaction = transaction
        self.deduplication = deduplication
        self.max_steps = max_steps
        self.dead_letter_store: DeadLetterStore = (
            dead_letters if dead_letters is not None else InMemoryDeadLetterStore()
        )
        specs, found_interceptors = read_handlers([*handlers, *_checked(interceptors)])
        self.handlers: tuple[HandlerSpec, ...] = tuple(specs)
        self.interceptors: tuple[Interceptor, ...] = tuple(found_interceptors)
        self.router = Router(specs)
        self.endpoints: dict[str, HandlerSpec] = {s.endpoint_id: s for s in specs}
        registry = TypeRegistry(types)
        for spec in specs:
            for message_type in spec.message_types:
                registry.register(message_type)
        self.types = registry
        self.codec: Codec = codec if codec is not None else JsonCodec(registry)
        self.channels: dict[str, ChannelRuntime] = {}
        for definition in channels:
            runtime = open_channel(
                definition,
                clock=self.clock,
                mode=self.mode,
                codec=self.codec,
                channels=self.channels,
                endpoints=self.endpoints,
            )
            self.channels[runtime.name] = runtime
        self._invokers: dict[str, Invoke] = {}
        self._sync_invokers: dict[str, Invoke] = {}
        self.stacks: dict[str, Callable[[Attempt], object]] = {}
        self._plain_stacks: dict[frozenset[Layer], Callable[[Attempt], object]] = {}
        for spec in specs:
            self._build_invokers(spec)
        self._wants_context = {
            s.endpoint_id
            for s in specs
            if s.kind == "scheduled"
            or s.arity != 1
            or any(i.selects(s.message_types, s.markers) for i in self.interceptors)
        }
        new_at = getattr(self.ids, "new_at", None)
        ids = self.ids
        self._new_id: Callable[[datetime], str] = (
            new_at if new_at is not None else (lambda now: ids.new())
        )
        validate_handlers(specs, self.channels, deduplication)
        self.error_handler = self._error_handler(error_handler, "Messaging")
        self._channel_error_handlers = {
            name: self._error_handler(rt.definition.error_handler, f"channel {name!r}")
            for name, rt in self.channels.items()
        }
        self._endpoint_error_handlers = {
            s.endpoint_id: self._error_handler(s.error_handler, s.name) for s in specs
        }
        self._scopes: list[Scope] = []
        self._recorded_failure: Exception | None = None
        self._draining = False
        self._has_inline = any(rt.inline for rt in self.channels.values())
        self.consumption = Consumption(self)
        self.driver = Driver(self, [s for s in specs if s.kind == "scheduled"])
        self.dead_letters = DeadLetters(self)

    # ------------------------------------------------------------------ bootstrap

    def _error_handler(self, target: object, owner: str) -> HandlerSpec | None:
        return resolve_error_handler(target, owner, self.endpoints, self.handlers)

    def _build_invokers(self, spec: HandlerSpec) -> None:
        """Precompose each handler with its interceptors, once.

        Interceptors ordered below ``StackOrder.HANDLER`` sit among the consumption stack's layers
        (``conveyor.stack``) when the handler is consumed from a channel; on a synchronous call
        they simply wrap the inner ones.
        """
        selected = [i for i in self.interceptors if i.selects(spec.message_types, spec.markers)]
        inner = [i for i in selected if i.order >= StackOrder.HANDLER]
        outer = [i for i in selected if i.order < StackOrder.HANDLER]
        base = base_call(spec)
        self._invokers[spec.endpoint_id] = wrap_with(inner, base) if inner else base
        self._sync_invokers[spec.endpoint_id] = (
            wrap_with(selected, base) if outer else (self._invokers[spec.endpoint_id])
        )
        unused = unused_layers(
            spec,
            self.channels,
            retry=self.retry,
            deduplication=self.deduplication,
            transaction=self.transaction,
        )
        if outer:
            self.stacks[spec.endpoint_id] = handling_stack(outer, unused=unused)
        else:  # shared by every handler without outer interceptors that uses the same layers
            shared = self._plain_stacks.get(unused)
            if shared is None:
                shared = self._plain_stacks[unused] = handling_stack([], unused=unused)
            self.stacks[spec.endpoint_id] = shared

    # ------------------------------------------------------------------ buses

    def send(
        self,
        command: object,
        *,
        headers: Mapping[str, str] | None = None,
        delay: timedelta | None = None,
        at: datetime | None = None,
        priority: int | None = None,
        ttl: timedelta | None = None,
        routing_key: str | None = None,
    ) -> object:
        """Send a command to its one handler; returns what a synchronous handler returns."""
        spec = self.router.command(
            None if routing_key and _is_json(command) else type(command), routing_key
        )
        message = self._new_message(command, headers, routing_key)
        self._record(RecordKind.SENT, message, at=message.headers.timestamp)
        options = DeliveryOptions.build(self.clock, delay, at, priority, ttl)
        if not spec.is_async:
            if options.any:
                raise RoutingError(
                    f"send({message.type_name}, delay/at/priority/ttl=...) asks for delivery "
                    f"options, but its handler {spec.name} runs synchronously. Make the handler "
                    f"@asynchronous(...) or send without delivery options."
                )
            return self._call_from_top(spec, message)
        self._top_level(lambda: self._queue_copy(spec, message, options))
        return None

    def publish(
        self,
        event: object,
        *,
        headers: Mapping[str, str] | None = None,
        delay: timedelta | None = None,
        at: datetime | None = None,
        priority: int | None = None,
        ttl: timedelta | None = None,
        routing_key: str | None = None,
    ) -> None:
        """Publish an event to every handler of it, in registration order (none is fine)."""
        message = self._new_message(event, headers, routing_key)
        self._record(RecordKind.PUBLISHED, message, at=message.headers.timestamp)
        options = DeliveryOptions.build(self.clock, delay, at, priority, ttl)
        specs = self.router.events(
            None if routing_key and _is_json(event) else type(event), routing_key
        )
        self._top_level(lambda: self._publish_to(specs, message, options))

    def _publish_to(
        self, specs: tuple[HandlerSpec, ...], message: Message, options: DeliveryOptions
    ) -> None:
        for spec in specs:
            if spec.is_async:
                self._queue_copy(spec, message, options)
            else:
                self.call_handler(spec, message, None)

    def ask(
        self,
        query: object,
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
    ) -> Any:
        """Ask a query of its one handler and return the answer."""
        spec = self.router.query(
            None if routing_key and _is_json(query) else type(query), routing_key
        )
        message = self._new_message(query, headers, routing_key)
        self._record(RecordKind.ASKED, message, at=message.headers.timestamp)
        return self._call_from_top(spec, message)

    def command_bus(self, channel: str | None = None) -> BusView:
        """A command bus; with ``channel``, every command goes through that channel first."""
        return BusView(self, channel, BUS_COMMAND)

    def event_bus(self, channel: str | None = None) -> BusView:
        """An event bus; with ``channel``, every event goes through that channel first."""
        return BusView(self, channel, BUS_EVENT)

    def query_bus(self) -> BusView:
        return BusView(self, None, "query")

    def send_through(
        self,
        channel: str,
        payload: object,
        *,
        bus: str,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
    ) -> None:
        """Queue a message on ``channel`` so its consumer routes it on the bus (async bus)."""
        if channel not in self.channels:
            raise ConfigurationError(
                f"asynchronous bus channel {channel!r} is not declared; declared: "
                f"{', '.join(self.channels) or 'none'}."
            )
        message = self._new_message(payload, headers, routing_key)
        self._record(
            RecordKind.SENT if bus == BUS_COMMAND else RecordKind.PUBLISHED,
            message,
            channel=channel,
        )
        self._top_level(lambda: self._enqueue(channel, bus, message, (), NO_OPTIONS))

    # ------------------------------------------------------------------ handling

    def _new_message(
        self, payload: object, headers: Mapping[str, str] | None, routing_key: str | None
    ) -> Message:
        user = check_user_headers(headers) if headers else _EMPTY_USER
        parent = self._current_message() if self._scopes else None
        now = self.clock.now()
        message_id = self._new_id(now)
        if parent is None:
            built = _make_headers(message_id, message_id, None, now, 1, user)
        else:
            parent_headers = parent.headers
            inherited = {**parent_headers.user, **user} if user else parent_headers.user
            built = Headers(
                message_id, parent_headers.correlation_id, parent_headers.id, now, 1, inherited
            )
        return _make_message(payload, built, routing_key)

    def _current_message(self) -> Message | None:
        for scope in reversed(self._scopes):
            if scope.message is not None:
                return scope.message
        return None

    def _top_level(self, work: Callable[[], object]) -> object:
        """Run bus work in a collecting scope unless one is already open; then drain inline."""
        scopes = self._scopes
        if scopes:
            return work()
        scope = Scope(None)
        scopes.append(scope)
        try:
            if self.transaction is None:
                result = work()
                if scope.buffer:
                    self.flush(scope)
            else:
                with self.transaction():
                    result = work()
                    self.flush(scope)
        finally:
            scopes.pop()
        if self._has_inline:
            self.drain_inline()
        return result

    def _call_from_top(self, spec: HandlerSpec, message: Message) -> object:
        """A synchronous handler called from outside any handler (the common ``send``/``ask``).

        One scope both collects what the handler sends and names the message being handled,
        where the general path opens two; the outcome is the same.
        """
        scopes = self._scopes
        if scopes or self.transaction is not None:
            return self._top_level(lambda: self.call_handler(spec, message, None))
        scope = Scope(message, spec.endpoint_id, None)
        scopes.append(scope)
        try:
            result = self._run_handler(spec, message, None, True)
            if scope.buffer:
                self.flush(scope)
        finally:
            scopes.pop()
        if self._has_inline:
            self.drain_inline()
        return result

    def _transaction(self) -> AbstractContextManager[object]:
        return self.transaction() if self.transaction is not None else nullcontext()

    def call_handler(
        self, spec: HandlerSpec, message: Message, channel: str | None, *, outer: bool = True
    ) -> object:
        """Run one handler with its interceptors, recording the outcome in the journal.

        ``outer=False`` leaves out the interceptors that the consumption stack already ran.
        """
        scopes = self._scopes
        scopes.append(Scope(message, spec.endpoint_id, channel, collecting=False))
        try:
            return self._run_handler(spec, message, channel, outer)
        finally:
            scopes.pop()

    def _run_handler(
        self, spec: HandlerSpec, message: Message, channel: str | None, outer: bool
    ) -> object:
        """Call the handler inside the scope the caller opened, and journal the outcome."""
        endpoint_id = spec.endpoint_id
        try:
            invokers = self._sync_invokers if outer else self._invokers
            context = (
                Context(self, message, endpoint_id, channel)
                if endpoint_id in self._wants_context
                else None
            )
            result = invokers[endpoint_id](message, context)
        except Exception as error:
            self.record_failure(spec, message, channel, error)
            raise
        headers = message.headers
        payload = message.payload
        self.journal.append(
            self.clock.now(), RecordKind.HANDLED, headers.id,
            message.routing_key or type(payload).__qualname__, payload, channel, endpoint_id,
            headers.attempt, None, None, "", headers.causation_id, headers,
        )  # fmt: skip
        return result

    def record_failure(
        self, spec: HandlerSpec, message: Message, channel: str | None, error: Exception
    ) -> None:
        """Journal a failed attempt once, wherever in the stack the exception was raised."""
        if self._recorded_failure is error:
            return
        self._recorded_failure = error
        self._record(
            RecordKind.FAILED,
            message,
            endpoint_id=spec.endpoint_id,
            channel=channel,
            exception=ExceptionInfo.capture(error),
            attempt=message.headers.attempt,
        )

    @contextmanager
    def collecting(
        self, message: Message | None, endpoint_id: str | None, channel: str | None
    ) -> Iterator[Scope]:
        """Open a collecting scope; the caller flushes it on success."""
        scope = Scope(message, endpoint_id, channel)
        self._scopes.append(scope)
        try:
            yield scope
        finally:
            self._scopes.pop()

    def _queue_copy(self, spec: HandlerSpec, message: Message, options: DeliveryOptions) -> None:
        self._enqueue(
            spec.channels[0],
            spec.endpoint_id,
            message,
            spec.channels[1:],
            options.for_handler(spec, self.clock),
        )

    def _enqueue(
        self,
        channel: str,
        endpoint: str,
        message: Message,
        slip: tuple[str, ...],
        options: DeliveryOptions,
    ) -> None:
        final = self.channels[slip[-1] if slip else channel]
        body, type_name = final.codec.encode(message.payload)  # its consumer decodes it
        wire = WireMessage(
            body,
            to_wire_headers(
                message.headers,
                type_name=type_name,
                content_type=final.codec.content_type,
                endpoint=endpoint,
                slip=slip,
                routing_key=message.routing_key,
                expires_at=options.expires_at,
                not_before=options.available_at,
                priority=options.priority,
            ),
        )
        if options.priority and not final.transport.capabilities.priority:
            raise RoutingError(
                f"priority={options.priority} was asked for {message.type_name}, but channel "
                f"{final.name!r} ({type(final.transport).__qualname__}) does not honour "
                f"priority; send without priority or use a channel that declares it."
            )
        self.put(
            PendingSend(
                channel,
                wire,
                message,
                endpoint,
                None if slip else options.available_at,  # a sequence is delayed at its end
                options.priority,
                options.expires_at,
            )
        )

    def put(self, pending: PendingSend) -> None:
        """Hand a message copy to the innermost collecting scope, or to its channel."""
        for scope in reversed(self._scopes):
            if scope.collecting:
                scope.buffer.append(pending)
                return
        self.transmit(pending)

    def flush(self, scope: Scope) -> None:
        """Send what a succeeded scope held, in order."""
        buffer, scope.buffer = scope.buffer, []
        for pending in buffer:
            self.transmit(pending)

    def transmit(self, pending: PendingSend) -> None:
        runtime = self.channels[pending.channel]
        runtime.transport.send(
            pending.channel,
            pending.wire,
            available_at=self.held_until(runtime, pending.available_at),
            priority=pending.priority,
            expires_at=pending.expires_at,
        )
        delay = (pending.available_at - self.clock.now()) if pending.available_at else None
        self._record(
            RecordKind.QUEUED,
            pending.message,
            endpoint_id=pending.endpoint_id,
            channel=pending.channel,
            delay=delay if delay and delay > timedelta(0) else None,
            attempt=pending.message.headers.attempt,
        )

    def held_until(self, runtime: ChannelRuntime, due: datetime | None) -> datetime | None:
        """The broker's not-before time: ``due``, or as far as the broker holds delays.

        A broker with a maximum delay (SQS: 15 minutes) gets the message back early; its
        consumer sees ``cv-not-before`` in the future and sends it on for the rest of the delay.
        """
        maximum = runtime.transport.capabilities.max_delay
        if due is None or maximum is None:
            return due
        return min(due, self.clock.now() + maximum)

    def drain_inline(self) -> None:
        """Run inline channels' consumers until they are idle (inline mode)."""
        if self._draining or self._scopes:
            return
        inline = [name for name, rt in self.channels.items() if rt.inline]
        if not inline:
            return
        self._draining = True
        try:
            self.driver.settle(names=inline, advance_time=False)
        finally:
            self._draining = False

    def _record(
        self,
        kind: RecordKind,
        message: Message,
        *,
        channel: str | None = None,
        endpoint_id: str | None = None,
        attempt: int = 1,
        exception: ExceptionInfo | None = None,
        delay: timedelta | None = None,
        detail: str = "",
        at: datetime | None = None,
    ) -> None:
        headers = message.headers
        payload = message.payload
        self.journal.append(
            self.clock.now() if at is None else at,
            kind,
            headers.id,
            message.routing_key or type(payload).__qualname__,
            payload,
            channel,
            endpoint_id,
            attempt,
            exception,
            delay,
            detail,
            headers.causation_id,
            headers,
        )

    # ------------------------------------------------------------------ consumers and time

    def consumers(self) -> list[str]:
        """Names of the runnable consumers: channels, then scheduled endpoints."""
        return self.driver.names()

    def run(
        self,
        name: str,
        *,
        limit: int | None = None,
        time_limit: timedelta | None = None,
        memory_limit: int | None = None,
        stop_on_failure: bool = False,
        finish_when_empty: bool | None = None,
    ) -> RunResult:
        """Run one consumer until a limit is reached (whichever comes first).

        Args:
            name: a channel or scheduled endpoint (see ``consumers()``).
            limit: stop after this many messages (or ticks).
            time_limit: stop after this much time on the clock.
            memory_limit: stop once the process's resident memory reaches this many MiB.
            stop_on_failure: re-raise the first handler failure (the message is released).
            finish_when_empty: stop when nothing is due. By default: on a VirtualClock, True
                unless a limit is given (then it waits on virtual time while more can come);
                on a SystemClock, True for a channel run with only ``limit`` (handle what is
                queued), else False: a worker that waits until a limit, SIGTERM or SIGINT.
        """
        return self.driver.run(
            name,
            limit=limit,
            time_limit=time_limit,
            memory_limit=memory_limit,
            stop_on_failure=stop_on_failure,
            finish_when_empty=finish_when_empty,
        )

    def run_until_idle(self, advance_time: bool = False, max_steps: int | None = None) -> int:
        """Run every consumer until nothing is runnable; returns the number of steps taken.

        With ``advance_time``, jump the VirtualClock to the next due timer and go on until no
        timer is left. More than ``max_steps`` steps raises ``SettleError`` (a runaway loop).
        """
        return self.driver.settle(
            advance_time=advance_time,
            max_steps=max_steps if max_steps is not None else self.max_steps,
        )

    def advance(self, duration: timedelta, *, max_steps: int | None = None) -> int:
        """Move the VirtualClock forward, handling everything due on the way at its due time."""
        return self.driver.advance_to(self.clock.now() + duration, max_steps=max_steps)

    def advance_to(self, instant: datetime, *, max_steps: int | None = None) -> int:
        """Move the VirtualClock to ``instant``, handling everything due on the way."""
        return self.driver.advance_to(ensure_aware(instant), max_steps=max_steps)

    def close(self) -> None:
        """Close every channel's transport."""
        for runtime in self.channels.values():
            runtime.transport.close()

    def __enter__(self) -> Messaging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Messaging(handlers={len(self.handlers)}, channels={list(self.channels)}, "
            f"clock={self.clock!r})"
        )


def _is_json(payload: object) -> bool:
    return isinstance(payload, dict | list | str | int | float | bool) or payload is None


def _checked(interceptors: Iterable[object]) -> list[object]:
    found = list(interceptors)
    for item in found:
        if (
            callable(item)
            and not isinstance(item, type)
            and interceptor_mark(item) is None
            and not hasattr(item, "__dict__")
        ):
            raise ConfigurationError(
                f"{item!r} is not an interceptor; mark it @before/@around/@after"
            )
    return found
