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
from typing import Any

from conveyor.core.clock import Clock, ensure_aware
from conveyor.core.codec.serialization import Codec
from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.errors import ConfigurationError
from conveyor.core.ids import IdGenerator, seeded_random
from conveyor.core.interceptors import Interceptor
from conveyor.core.journal import Journal, RecordKind
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.core.wire import BUS_COMMAND, BUS_EVENT
from conveyor.drivers.addressing import Addressing
from conveyor.drivers.bootstrap import (
    basics,
    check_capabilities,
    compose_stacks,
    open_channels,
    prepare,
)
from conveyor.drivers.buses import BusView
from conveyor.drivers.channel_runtime import ChannelRuntime
from conveyor.drivers.consumption import Consumption
from conveyor.drivers.dispatch import Dispatch
from conveyor.drivers.driving import Driver, RunResult
from conveyor.drivers.error_handlers import ErrorHandlers
from conveyor.drivers.logs import log_failures as log_failures_to
from conveyor.drivers.outgoing import Outgoing
from conveyor.drivers.plans import PlanExecutor
from conveyor.drivers.policies import resolve_policies
from conveyor.drivers.recording import Recorder
from conveyor.drivers.replay import DeadLetters
from conveyor.drivers.scopes import Scopes
from conveyor.drivers.stack import StackParts, handling_stack
from conveyor.stores.dead_letters import DeadLetterStore
from conveyor.stores.deduplication import Deduplication
from conveyor.transports.channels import Channel, Mode
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
        given = basics(clock, ids, journal, dead_letters)
        self.clock: Clock = given.clock
        steps_time = given.steps_time
        self.ids: IdGenerator = given.ids
        self.journal = given.journal
        self.dead_letter_store: DeadLetterStore = given.dead_letters
        self.mode: Mode = mode
        self.retry = retry
        self.dead_letter = dead_letter
        self.transaction = transaction
        self.deduplication = deduplication
        self.max_steps = max_steps
        # 1. Everything that can be checked without a transport is checked first.
        prepared = prepare(
            handlers,
            channels,
            interceptors,
            deduplication=deduplication,
            error_handler=error_handler,
            types=types,
            codec=codec,
            root="Messaging",
        )
        specs = list(prepared.handlers)
        definitions = prepared.definitions
        self.handlers: tuple[HandlerSpec, ...] = prepared.handlers
        self.interceptors: tuple[Interceptor, ...] = prepared.interceptors
        self.router = prepared.router
        self.endpoints: dict[str, HandlerSpec] = prepared.endpoints
        self.types = prepared.types
        self.codec: Codec = prepared.codec
        # 2. Then the transports are opened; if anything fails from here, they are closed.
        self._transports: dict[Hashable, Transport] = {}
        try:
            self.channels: dict[str, ChannelRuntime] = open_channels(
                definitions,
                clock=self.clock,
                mode=mode,
                codec=self.codec,
                transports=self._transports,
            )
            check_capabilities(specs, self.channels, steps_time=steps_time)
        except BaseException:
            self.close()
            raise
        # 3. The parts, each given only what it needs.
        if log_failures:
            log_failures_to(self.journal, logging.getLogger("conveyor"))
        has_inline = any(rt.inline for rt in self.channels.values())
        drain = self._drain_inline if has_inline else None
        scopes = Scopes()
        recorder = Recorder(self.journal, self.clock)
        outgoing = Outgoing(self.channels, self.clock, scopes, recorder)
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
            self.channels,
            retry=retry,
            dead_letter=dead_letter,
            error_handler=prepared.error_handler,
            channel_error_handlers=prepared.channel_error_handlers,
            endpoint_error_handlers=prepared.endpoint_error_handlers,
        )
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
        )
        self.dead_letters = DeadLetters(
            self.dead_letter_store,
            channels=self.channels,
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
            call_error_handler=ErrorHandlers(
                self.endpoints, dispatch=dispatch, outgoing=outgoing, clock=self.clock
            ),
            rng=seeded_random(seed),
        )
        self.consumption = Consumption(
            channels=self.channels,
            endpoints=self.endpoints,
            router=self.router,
            clock=self.clock,
            recorder=recorder,
            outgoing=outgoing,
            dispatch=dispatch,
            stacks=compose_stacks(
                prepared,
                self._policies,
                deduplication=deduplication,
                transaction=transaction,
                build=lambda outer, unused: handling_stack(outer, unused=unused),
            ),
            parts=parts,
            policies=self._policies,
            bus_retry=retry,
            deduplication=deduplication,
            executor=executor,
        )
        self.outgoing = outgoing
        self.driver = Driver(
            channels=self.channels,
            scheduled=[s for s in specs if s.kind == "scheduled"],
            consumption=self.consumption,
            dispatch=dispatch,
            recorder=recorder,
            router=self.router,
            buses=self,
            clock=self.clock,
            max_steps=max_steps,
        )
        self._recorder = recorder
        self._addressing = Addressing(self.router, self.handlers, self.clock)

    def _drain_inline(self) -> None:
        """Run inline channels' consumers until they are idle (inline mode).

        Only from the top of a call: a handler's sends are drained once its caller returns.
        """
        inline = [name for name, rt in self.channels.items() if rt.inline]
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
    ) -> object:
        """Send a command to its one handler; returns what a synchronous handler returns."""
        spec = self._addressing.command(command, routing_key)
        message = self.dispatch.new_message(command, headers, routing_key)
        self._recorder.message(RecordKind.SENT, message, at=message.headers.timestamp)
        options = self._addressing.options(delay, at, priority, ttl)
        if not spec.is_async:
            self._addressing.refuse_options(spec, message, options)
            return self.dispatch.from_top(lambda: self.dispatch.call_handler(spec, message, None))
        self.dispatch.from_top(lambda: self.outgoing.queue_copy(spec, message, options))
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
        message = self.dispatch.new_message(event, headers, routing_key)
        self._recorder.message(RecordKind.PUBLISHED, message, at=message.headers.timestamp)
        options = self._addressing.options(delay, at, priority, ttl)
        specs = self._addressing.events(event, routing_key)
        self.dispatch.from_top(lambda: self.dispatch.publish_to(specs, message, options))

    def ask(
        self,
        query: object,
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
    ) -> Any:
        """Ask a query of its one handler and return the answer."""
        spec = self._addressing.query(query, routing_key)
        message = self.dispatch.new_message(query, headers, routing_key)
        self._recorder.message(RecordKind.ASKED, message, at=message.headers.timestamp)
        return self.dispatch.from_top(lambda: self.dispatch.call_handler(spec, message, None))

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
        message = self.dispatch.new_message(payload, headers, routing_key)
        self._recorder.message(
            RecordKind.SENT if bus == BUS_COMMAND else RecordKind.PUBLISHED,
            message,
            channel=channel,
        )
        self.dispatch.from_top(lambda: self.outgoing.enqueue(channel, bus, message, (), NO_OPTIONS))

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
        """Close every transport (each once, however many channels share it)."""
        for transport in self._transports.values():
            transport.close()

    def __enter__(self) -> Messaging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Messaging(handlers={len(self.handlers)}, channels={list(self.channels)}, "
            f"clock={self.clock!r})"
        )
