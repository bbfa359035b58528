"""``Messaging``: the sync kernel facade — buses, channels, consumers and time, in one object.

It is built from an explicit list of handlers and channels (no global registry) and validates
everything at construction. The verbs live here; calling handlers, and the messages they cause, in
``conveyor.drivers.dispatch``; copies on their way to a channel in ``conveyor.drivers.outgoing``;
consuming a delivery in ``conveyor.drivers.consumption``; running consumers and settling in
``conveyor.drivers.driving``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, overload

from conveyor.core.bus_calls import BusInterceptor, check_bus_retry
from conveyor.core.clock import Clock, SteppableClock, SystemClock, ensure_aware
from conveyor.core.codec.serialization import Codec, JsonCodec
from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.errors import ClockError, ConfigurationError
from conveyor.core.failure import Failure
from conveyor.core.handlers import ErrorHandler
from conveyor.core.ids import IdGenerator, UuidV7Ids, seeded_random
from conveyor.core.instants import later
from conveyor.core.interceptors import Interceptor, interceptor_mark
from conveyor.core.journal import Journal, RecordKind
from conveyor.core.queries import Answer, Query
from conveyor.core.registry import HandlerSpec, read_handlers
from conveyor.core.retry import RetryPolicy
from conveyor.core.routing import Router
from conveyor.core.spec_cache import catalogue
from conveyor.core.wire import BUS_COMMAND, BUS_EVENT
from conveyor.drivers.addressing import Addressing, check_bus_channel
from conveyor.drivers.bootstrap import (
    aliased,
    check_capabilities,
    check_channels,
    check_handlers,
    check_retry_delays,
    open_channels,
    registered_types,
    resolve_error_handler,
    split_aliases,
    unused_layers,
)
from conveyor.drivers.buses import BusView
from conveyor.drivers.channel_runtime import ChannelRuntime
from conveyor.drivers.channel_view import ChannelView, view_of
from conveyor.drivers.consumption import Consumption
from conveyor.drivers.dispatch import Dispatch
from conveyor.drivers.driving import ConsumerHooks, Driver, RunResult
from conveyor.drivers.error_handlers import ErrorHandlers
from conveyor.drivers.guarded_bus import GuardedBus, install_bus_interceptors
from conveyor.drivers.key_purge import KeyPurge
from conveyor.drivers.logs import log_failures as log_failures_to
from conveyor.drivers.outgoing import Outgoing
from conveyor.drivers.plans import PlanExecutor
from conveyor.drivers.policies import resolve_policies
from conveyor.drivers.recording import Recorder
from conveyor.drivers.replay import DeadLetters
from conveyor.drivers.scopes import Scopes
from conveyor.drivers.stack import Attempt, Layer, StackOrder, StackParts, handling_stack
from conveyor.drivers.ticks import TickFailures, tick_policies
from conveyor.drivers.worker import Worker, WorkerSettings
from conveyor.stores.dead_letters import DeadLetterStore, InMemoryDeadLetterStore
from conveyor.stores.deduplication import Deduplication
from conveyor.stores.schedules import ScheduleStore
from conveyor.transports.channels import Channel, ChannelAlias, Mode
from conveyor.transports.dynamic import (
    check_internal_channels,
    internal_channel_error,
    internal_channels,
)
from conveyor.transports.seam import Transport

__all__ = ["Messaging", "ChannelRuntime"]


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
        schedule_store: where each schedule's next tick is kept and claimed, so several workers
            run each tick once and a restart catches up (``SqliteScheduleStore``); in memory
            by default.
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
        bus_interceptors: functions ``(call: BusCall, proceed) -> result`` around every
            ``send``, ``publish`` and ``ask``, before routing (the first is outermost).
    """

    def __init__(
        self,
        handlers: Iterable[object] = (),
        channels: Iterable[Channel | ChannelAlias | str] = (),
        *,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        codec: Codec | None = None,
        types: Iterable[type] = (),
        interceptors: Iterable[object] = (),
        dead_letters: DeadLetterStore | None = None,
        schedule_store: ScheduleStore | None = None,
        deduplication: Deduplication | None = None,
        retry: RetryPolicy | None = None,
        error_handler: ErrorHandler | None = None,
        dead_letter: bool = True,
        mode: Mode = "queued",
        transaction: Callable[[], AbstractContextManager[object]] | None = None,
        seed: int | None = None,
        journal: Journal | None = None,
        max_steps: int | None = 100_000,
        log_failures: bool = True,
        bus_interceptors: Iterable[BusInterceptor] = (),
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        steps_time = isinstance(self.clock, SteppableClock)
        self.ids: IdGenerator = ids if ids is not None else UuidV7Ids(self.clock)
        self.journal = (
            journal
            if journal is not None
            # production keeps the last records, without payloads: bounded memory
            else Journal(max_records=None if steps_time else 10_000, keep_payloads=steps_time)
        )
        self.mode: Mode = mode
        self.retry = retry
        self.dead_letter = dead_letter
        self.transaction = transaction
        self.deduplication = deduplication
        self.max_steps = max_steps
        self.dead_letter_store: DeadLetterStore = (
            dead_letters if dead_letters is not None else InMemoryDeadLetterStore()
        )
        # 1. Everything that can be checked without a transport is checked first.
        specs, found_interceptors = read_handlers([*_iterable(handlers), *_checked(interceptors)])
        channel_list, aliases = split_aliases(_iterable(channels, "channels"))
        #: Each ``ChannelAlias`` name -> the channel it names (``run`` and the buses take both).
        self.aliases: Mapping[str, str] = MappingProxyType(aliases)
        specs = aliased(specs, aliases)
        self.handlers: tuple[HandlerSpec, ...] = tuple(specs)
        self.interceptors: tuple[Interceptor, ...] = tuple(found_interceptors)
        shared = catalogue(self.handlers)  # composed once per list of module-level handlers
        self.router: Router = shared.router
        self.endpoints: dict[str, HandlerSpec] = dict(shared.endpoints)
        definitions = check_channels(channel_list, self.endpoints)
        # Internal channels of dynamic channels: name -> their dynamic channel; used nowhere else.
        self.internal_channels: Mapping[str, str] = internal_channels(definitions)
        check_internal_channels([(s.name, s.channels) for s in specs], self.internal_channels)
        check_handlers(specs, definitions, deduplication)
        error_handler_spec = self._error_handler(error_handler, "Messaging")
        channel_error_handlers = {
            name: self._error_handler(d.error_handler, f"channel {name!r}")
            for name, d in definitions.items()
        }
        endpoint_error_handlers = {
            s.endpoint_id: self._error_handler(s.error_handler, s.name) for s in specs
        }
        self.types = registry = registered_types(types, specs, shared)
        self.codec: Codec = codec if codec is not None else JsonCodec(registry, plans=shared.plans)
        # 2. Then the transports are opened; if anything fails from here, they are closed.
        self._transports: dict[Hashable, Transport] = {}
        try:
            # The driver's own state per channel; users see ``channels``, a read-only view.
            self.runtimes: dict[str, ChannelRuntime] = open_channels(
                definitions,
                clock=self.clock,
                mode=mode,
                codec=self.codec,
                transports=self._transports,
                handler_channels={name for spec in specs for name in spec.channels},
            )
            check_capabilities(specs, self.runtimes, steps_time=steps_time)
        except BaseException:
            self.close()
            raise
        self._views: Mapping[str, ChannelView] = MappingProxyType(
            {name: view_of(runtime) for name, runtime in self.runtimes.items()}
        )
        # 3. The parts, each given only what it needs.
        if log_failures:
            log_failures_to(self.journal, logging.getLogger("conveyor"))
        has_inline = any(rt.inline for rt in self.runtimes.values())
        drain = self._drain_inline if has_inline else None
        scopes = Scopes()
        recorder = Recorder(self.journal, self.clock)
        outgoing = Outgoing(self.runtimes, self.clock, scopes, recorder)
        self.dispatch = Dispatch(
            self.handlers,
            self.interceptors,
            clock=self.clock,
            ids=self.ids,
            scopes=scopes,
            outgoing=outgoing,
            recorder=recorder,
            transaction=transaction,
            buses=self,
            drain_inline=drain,
        )
        self._policies = resolve_policies(
            self.handlers,
            self.runtimes,
            retry=retry,
            dead_letter=dead_letter,
            error_handler=error_handler_spec,
            channel_error_handlers=channel_error_handlers,
            endpoint_error_handlers=endpoint_error_handlers,
        )
        try:
            check_retry_delays(self._policies, self.runtimes)
        except BaseException:
            self.close()
            raise
        dispatch = self.dispatch
        parts = StackParts(
            scopes=scopes,
            outgoing=outgoing,
            recorder=recorder,
            clock=self.clock,
            transaction=transaction,
            deduplication=deduplication,
            call_handler=lambda spec, message, channel: dispatch.call_handler(
                spec, message, channel, outer=False
            ),
            context=dispatch.context,
            invoke=dispatch.invoke,
            purge=None if deduplication is None else KeyPurge(deduplication, self.clock),
        )
        self.dead_letters = DeadLetters(
            self.dead_letter_store,
            channels=self.runtimes,
            journal=self.journal,
            clock=self.clock,
            drain_inline=drain,
        )
        executor = PlanExecutor(
            clock=self.clock,
            journal=self.journal,
            recorder=recorder,
            outgoing=outgoing,
            letters=self.dead_letter_store,
            letter_id=self.dead_letters.new_id,
            call_error_handler=(
                error_handlers := ErrorHandlers(
                    self.endpoints, dispatch=dispatch, outgoing=outgoing, clock=self.clock
                )
            ),
            rng=seeded_random(seed),
        )
        self.consumption = Consumption(
            channels=self.runtimes,
            endpoints=self.endpoints,
            router=self.router,
            clock=self.clock,
            recorder=recorder,
            outgoing=outgoing,
            dispatch=dispatch,
            stacks=self._stacks(specs),
            parts=parts,
            policies=self._policies,
            bus_retry=retry,
            deduplication=deduplication,
            executor=executor,
        )
        self.outgoing = outgoing
        self.driver = Driver(
            channels=self.runtimes,
            scheduled=[s for s in specs if s.kind == "scheduled"],
            consumption=self.consumption,
            dispatch=dispatch,
            recorder=recorder,
            router=self.router,
            buses=self,
            clock=self.clock,
            max_steps=max_steps,
            schedule_store=schedule_store,
            ticks=TickFailures(
                policies=tick_policies(self.handlers, endpoint_error_handlers),
                clock=self.clock,
                recorder=recorder,
                letters=self.dead_letter_store,
                letter_id=self.dead_letters.new_id,
                rng=executor.random,
            ),
            error_handlers=error_handlers,
        )
        self.dead_letters.ticks = self.driver.replay_tick
        self._recorder = recorder
        # Routing decisions and their checks, the same as AsyncMessaging's (drivers.addressing).
        self._addressing = Addressing(self.router, self.handlers, self.clock)
        self._error_handlers = error_handlers
        if bus_interceptors := tuple(bus_interceptors):  # checked once: none costs nothing
            install_bus_interceptors(self, bus_interceptors)

    # ------------------------------------------------------------------ bootstrap

    def _error_handler(self, target: object, owner: str) -> HandlerSpec | None:
        return resolve_error_handler(target, owner, self.endpoints, self.handlers)

    def _stacks(self, specs: list[HandlerSpec]) -> dict[str, Callable[[Attempt], object]]:
        """Each asynchronous handler's consumption stack, composed once.

        Interceptors ordered below ``StackOrder.HANDLER`` sit among the built-in layers; layers
        that would do nothing for a handler (no instant retries, no deduplication, no
        transaction) are left out. Handlers that need the same layers share one stack.
        """
        stacks: dict[str, Callable[[Attempt], object]] = {}
        shared: dict[frozenset[Layer], Callable[[Attempt], object]] = {}
        for spec in specs:
            if not spec.channels:
                continue
            policy = self._policies.get((spec.endpoint_id, spec.channels[-1]))
            unused = unused_layers(
                policy, deduplication=self.deduplication, transaction=self.transaction
            )
            outer = [
                i
                for i in self.interceptors
                if i.order < StackOrder.HANDLER and i.selects(spec.message_types, spec.markers)
            ]
            if outer:
                stacks[spec.endpoint_id] = handling_stack(outer, unused=unused)
                continue
            stack = shared.get(unused)
            if stack is None:
                stack = shared[unused] = handling_stack([], unused=unused)
            stacks[spec.endpoint_id] = stack
        return stacks

    def _drain_inline(self) -> None:
        """Run inline channels' consumers until they are idle (inline mode).

        Only from the top of a call: a handler's sends are drained once its caller returns.
        """
        inline = [name for name, rt in self.runtimes.items() if rt.inline]
        self.driver.settle(names=inline, advance_time=False)

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
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Any:
        """Send a command to its one handler; returns what a synchronous handler returns."""
        # A handled type without a routing key, as nearly every send: one lookup, no call.
        spec = self._addressing.commands.get(type(command)) if routing_key is None else None
        if spec is None:
            spec = self._addressing.command(command, routing_key)
        message = self.dispatch.new_message(
            command, headers, routing_key, message_id, correlation_id, propagate_headers
        )
        self._recorder.verb(RecordKind.SENT, message)
        if delay is None and at is None and priority is None and ttl is None:
            options = NO_OPTIONS
        else:
            options = self._addressing.options(delay, at, priority, ttl)
            self._addressing.refuse_options(spec, message, options)
        if spec.retry is not None and not spec.is_async:  # its own instant retries
            return self.dispatch.retried(spec, message)
        return self.dispatch.deliver((spec,), message, options)

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
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> None:
        """Publish an event to every handler of it, in registration order (none is fine)."""
        specs = self._addressing.events(event, routing_key)
        message = self.dispatch.new_message(
            event, headers, routing_key, message_id, correlation_id, propagate_headers
        )
        self._recorder.verb(RecordKind.PUBLISHED, message)
        self.dispatch.deliver(specs, message, self._addressing.options(delay, at, priority, ttl))

    @overload
    def ask(
        self,
        query: Query[Answer],
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Answer: ...

    @overload
    def ask(
        self,
        query: object,
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Any: ...

    def ask(
        self,
        query: object,
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Any:
        """Ask a query of its one handler and return the answer.

        The answer is typed for a query class derived from ``Query[T]`` (a ``T``), else ``Any``.
        """
        spec = self._addressing.queries.get(type(query)) if routing_key is None else None
        if spec is None:  # not a handled type named exactly (the checks, the router)
            spec = self._addressing.query(query, routing_key)
        message = self.dispatch.new_message(
            query, headers, routing_key, message_id, correlation_id, propagate_headers
        )
        self._recorder.verb(RecordKind.ASKED, message)
        if spec.retry is not None:  # its own instant retries: each attempt a whole new call
            return self.dispatch.retried(spec, message)
        return self.dispatch.deliver((spec,), message, NO_OPTIONS)

    def command_bus(
        self,
        channel: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        error_handler: ErrorHandler | None = None,
    ) -> BusView | GuardedBus:
        """A command bus; with ``channel``, every command goes through that channel first.

        ``retry=RetryPolicy(instant=...)`` runs a failing call again at once (each attempt a
        whole new call); ``error_handler`` then receives the ``Failure`` and the call returns
        None instead of raising (``conveyor.drivers.guarded_bus``).
        """
        return self._guarded(
            BusView(self, channel, BUS_COMMAND), "command_bus", retry, error_handler,
            own_retry=channel is None,
        )  # fmt: skip

    def event_bus(
        self,
        channel: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        error_handler: ErrorHandler | None = None,
    ) -> BusView | GuardedBus:
        """An event bus; with ``channel``, every event goes through that channel first."""
        return self._guarded(
            BusView(self, channel, BUS_EVENT), "event_bus", retry, error_handler, own_retry=False
        )

    def query_bus(
        self, *, retry: RetryPolicy | None = None, error_handler: ErrorHandler | None = None
    ) -> BusView | GuardedBus:
        return self._guarded(BusView(self, None, "query"), "query_bus", retry, error_handler)

    def _guarded(
        self,
        view: BusView,
        bus: str,
        retry: RetryPolicy | None,
        error_handler: object | None,
        *,
        own_retry: bool = True,
    ) -> BusView | GuardedBus:
        """``view`` with the bus's failure tools; ``own_retry``: a handler's own retry (a
        synchronous call's) wins over the bus's."""
        if retry is None and error_handler is None:
            return view
        check_bus_retry(retry, bus)
        handler = self._error_handler(error_handler, f"{bus}(error_handler=...)")
        give = self._error_handlers.give

        def on_failure(failure: Failure) -> None:
            give(handler, failure, None, None, None)  # type: ignore[arg-type]

        return GuardedBus(
            view, bus, retry=retry, on_failure=on_failure if handler is not None else None,
            new_id=self.ids.new, now=self.clock.now,
            own_retry=self._addressing.own_retry if own_retry else None,
        )  # fmt: skip

    def send_through(
        self,
        channel: str,
        payload: object,
        *,
        bus: str,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> None:
        """Queue a message on ``channel`` so its consumer routes it on the bus (async bus)."""
        channel = self.aliases.get(channel, channel)
        check_bus_channel(channel, self.runtimes, self.internal_channels)
        message = self.dispatch.new_message.identified(
            payload,
            headers,
            routing_key,
            message_id=message_id,
            correlation_id=correlation_id,
            propagate_headers=propagate_headers,
        )
        self._recorder.message(
            RecordKind.SENT if bus == BUS_COMMAND else RecordKind.PUBLISHED,
            message,
            channel=channel,
        )
        self.dispatch.from_top(lambda: self.outgoing.enqueue(channel, bus, message, (), NO_OPTIONS))

    # ------------------------------------------------------------------ consumers and time

    @property
    def channels(self) -> Mapping[str, ChannelView]:
        """The declared channels by name, read-only: each one's definition, mode, bus flag and
        open transport (``pending()``, ``next_due()``, ``capabilities``). A dynamic channel is
        listed under its own name; the concrete channels behind it are not."""
        return self._views

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
        hooks: ConsumerHooks | None = None,
    ) -> RunResult:
        """Run one consumer until a limit is reached (whichever comes first).

        On a ``VirtualClock`` one rule says whether a run moves the clock: **a run waits for
        more work only when a limit can end the wait**. Given ``limit`` or ``time_limit``, a run
        that finds nothing due waits as a worker would, and on virtual time waiting is a jump of
        the clock to the next due message or tick; it stops at the limit, or when nothing more
        can come. Without a limit, ``run()`` handles what is due now and returns, leaving the
        clock where it was. ``finish_when_empty=True`` never waits, so never moves the clock;
        to move time on purpose, use ``advance`` or ``run_until_idle(advance_time=True)``.

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
            hooks: ``ConsumerHooks(on_start=, on_idle=, on_stop=)`` for resources the consumer
                holds while it runs (a connection, say).
        """
        name = self.aliases.get(name, name)
        if name in self.internal_channels:
            raise internal_channel_error(name, self.internal_channels[name], "run() was asked for")
        return self.driver.run(
            name,
            limit=limit,
            time_limit=time_limit,
            memory_limit=memory_limit,
            stop_on_failure=stop_on_failure,
            finish_when_empty=finish_when_empty,
            hooks=hooks,
        )

    def serve(
        self,
        consumers: Iterable[str],
        *,
        concurrency: int = 1,
        limit: int | None = None,
        time_limit: timedelta | None = None,
        memory_limit: int | None = None,
        stop_on_failure: bool = False,
        finish_when_empty: bool = False,
        grace: timedelta | None = None,
    ) -> RunResult:
        """Serve several consumers at once on a real clock: what ``conveyor run`` does.

        ``concurrency`` threads take messages from every channel in turn; the schedules have a
        thread of their own. SIGTERM and SIGINT (in the main thread) end every wait at once,
        stop taking work and return once the messages in flight are finished; a second signal,
        or ``grace`` running out, returns at once and leaves them to their lease. The limits
        are those of ``run``, counted over all the consumers.
        """
        names = list(dict.fromkeys(self.aliases.get(name, name) for name in consumers))
        for name in names:
            if name in self.internal_channels:
                owner = self.internal_channels[name]
                raise internal_channel_error(name, owner, "serve() was asked for")
        settings = WorkerSettings(
            concurrency=concurrency,
            limit=limit,
            time_limit=time_limit,
            memory_limit=memory_limit,
            stop_on_failure=stop_on_failure,
            finish_when_empty=finish_when_empty,
            grace=grace,
        )
        return Worker(self.driver, names, settings, self.clock).run()

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
        """Move the VirtualClock forward, handling everything due on the way at its due time.

        Raises:
            ClockError: ``duration`` is not a ``timedelta``.
            InstantOutOfRange: the clock would reach the year 9000 (``timedelta.max``, say).
        """
        if not isinstance(duration, timedelta):
            raise ClockError(
                f"advance() takes a timedelta, got a value of type {type(duration).__name__}; "
                f"for example advance(timedelta(seconds=5))."
            )
        target = later(self.clock.now(), duration, what="advance()")
        return self.driver.advance_to(target, max_steps=max_steps)

    def advance_to(self, instant: datetime, *, max_steps: int | None = None) -> int:
        """Move the VirtualClock to ``instant``, handling everything due on the way."""
        return self.driver.advance_to(ensure_aware(instant), max_steps=max_steps)

    def close(self) -> None:
        """Close every transport (each once, however many channels share it)."""
        for transport in self._transports.values():
            transport.close()

    def __enter__(self) -> Messaging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Messaging(handlers={len(self.handlers)}, channels={list(self.runtimes)}, "
            f"clock={self.clock!r})"
        )


def _iterable(values: object, what: str = "handlers") -> list[Any]:
    """``values`` as a list, or a clear error for a single object passed where a list goes."""
    if (isinstance(values, str | bytes) and what == "handlers") or not isinstance(values, Iterable):
        shown = getattr(values, "__qualname__", None) or repr(values)
        raise ConfigurationError(
            f"Messaging({what}=...) takes a list, got {shown}; wrap it in one: "
            f"Messaging({what}=[{shown}])."
        )
    return list(values)


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
