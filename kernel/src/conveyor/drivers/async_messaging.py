"""``AsyncMessaging``: the asyncio kernel facade, the composition root of the asyncio driver.

It takes what ``Messaging`` takes, checks it the same way when it is built (``prepare``), and
runs the same lifecycle plans; its verbs are awaitable because they may wait on a transport.
``async with messaging:`` declares the channels and closes the transports (a verb used before
declares them on first use).

Where handlers run: ``async def`` handlers, interceptors and error handlers are awaited in the
task handling the message; plain ``def`` ones are called in that task, on the loop's thread (see
``conveyor.drivers.async_dispatch``). ``run(channel, concurrency=n)`` handles up to ``n``
messages at once, each in its own task; ``run_until_idle``, ``advance`` and ``advance_to`` handle
one message at a time, so a test's journal is the same on every run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, overload

from conveyor.core.bus_calls import BusInterceptor
from conveyor.core.clock import Clock, ensure_aware
from conveyor.core.codec.serialization import Codec
from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.ids import IdGenerator, seeded_random
from conveyor.core.instants import later
from conveyor.core.journal import Journal, RecordKind
from conveyor.core.queries import Answer, Query
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.drivers.addressing import Addressing, check_bus_channel
from conveyor.drivers.async_consumption import AsyncConsumption
from conveyor.drivers.async_dispatch import AsyncDispatch, AsyncTransaction
from conveyor.drivers.async_driving import AsyncDriver
from conveyor.drivers.async_outgoing import AsyncOutgoing
from conveyor.drivers.async_plans import AsyncErrorHandlers, AsyncPlanExecutor
from conveyor.drivers.async_replay import AsyncDeadLetters
from conveyor.drivers.async_stack import AsyncStackParts, async_handling_stack
from conveyor.drivers.bootstrap import (
    basics,
    check_capabilities,
    check_retry_delays,
    compose_stacks,
    open_async_channels,
    prepare,
)
from conveyor.drivers.channel_runtime import AsyncChannelRuntime
from conveyor.drivers.driving import ConsumerHooks, RunResult
from conveyor.drivers.guarded_bus import install_bus_interceptors
from conveyor.drivers.logs import log_failures as log_failures_to
from conveyor.drivers.policies import resolve_policies
from conveyor.drivers.recording import Recorder
from conveyor.drivers.scopes import Scopes
from conveyor.drivers.ticks import TickFailures, tick_policies
from conveyor.stores.dead_letters import DeadLetterStore
from conveyor.stores.deduplication import Deduplication
from conveyor.stores.schedules import ScheduleStore
from conveyor.transports.channels import Channel, ChannelAlias, Mode
from conveyor.transports.seam import AsyncTransport

__all__ = ["AsyncMessaging"]


class AsyncMessaging:
    """Awaitable command, event and query buses over handlers and channels, with injected time.

    Args: as ``Messaging``; ``transaction`` is a factory of async context managers, and bus
    interceptors are ``async def (call, proceed)`` that ``await proceed(call)``.
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
        error_handler: object | None = None,
        dead_letter: bool = True,
        mode: Mode = "queued",
        transaction: AsyncTransaction | None = None,
        seed: int | None = None,
        journal: Journal | None = None,
        max_steps: int | None = 100_000,
        log_failures: bool = True,
        bus_interceptors: Iterable[BusInterceptor] = (),
    ) -> None:
        given = basics(clock, ids, journal, dead_letters)
        self.clock: Clock = given.clock
        steps_time = given.steps_time
        self.ids: IdGenerator = given.ids
        self.journal = given.journal
        self.dead_letter_store: DeadLetterStore = given.dead_letters
        self.mode: Mode = mode
        self.max_steps = max_steps
        prepared = prepare(
            handlers, channels, interceptors, deduplication=deduplication,
            error_handler=error_handler, types=types, codec=codec, root="AsyncMessaging",
        )  # fmt: skip
        self.handlers: tuple[HandlerSpec, ...] = prepared.handlers
        #: Each ``ChannelAlias`` name -> the channel it names (``run`` and the buses take both).
        self.aliases: Mapping[str, str] = prepared.aliases
        self.endpoints: dict[str, HandlerSpec] = prepared.endpoints
        self.router = prepared.router
        self.codec: Codec = prepared.codec
        self._transports: dict[Hashable, AsyncTransport] = {}
        self._declared: asyncio.Lock | None = None
        self._open = False
        self.channels: dict[str, AsyncChannelRuntime] = open_async_channels(
            prepared.definitions, clock=self.clock, mode=mode, codec=self.codec,
            transports=self._transports,
            handler_channels={c for s in self.handlers for c in s.channels},
        )  # fmt: skip
        check_capabilities(list(self.handlers), self.channels, steps_time=steps_time)
        if log_failures:
            log_failures_to(self.journal, logging.getLogger("conveyor"))
        inline = [name for name, rt in self.channels.items() if rt.inline]
        drain: Callable[[], Awaitable[object]] | None = (
            (lambda: self._drain(inline)) if inline else None
        )
        scopes = Scopes()
        recorder = Recorder(self.journal, self.clock)
        outgoing = AsyncOutgoing(self.channels, self.clock, scopes, recorder)
        dispatch = AsyncDispatch(
            self.handlers, prepared.interceptors, clock=self.clock, ids=self.ids, scopes=scopes,
            outgoing=outgoing, recorder=recorder, transaction=transaction, buses=self,
            drain_inline=drain,
        )  # fmt: skip
        policies = resolve_policies(
            self.handlers, self.channels, retry=retry, dead_letter=dead_letter,
            error_handler=prepared.error_handler,
            channel_error_handlers=prepared.channel_error_handlers,
            endpoint_error_handlers=prepared.endpoint_error_handlers,
        )  # fmt: skip
        check_retry_delays(policies, self.channels)
        self.dead_letters = AsyncDeadLetters(
            self.dead_letter_store, channels=self.channels, journal=self.journal,
            clock=self.clock, drain_inline=drain,
        )  # fmt: skip
        executor = AsyncPlanExecutor(
            clock=self.clock, journal=self.journal, recorder=recorder, outgoing=outgoing,
            letters=self.dead_letter_store, letter_id=self.dead_letters.new_id,
            call_error_handler=(error_handlers := AsyncErrorHandlers(
                self.endpoints, dispatch=dispatch, outgoing=outgoing, clock=self.clock
            )),
            rng=seeded_random(seed),
        )  # fmt: skip
        parts = AsyncStackParts(
            scopes=scopes, outgoing=outgoing, recorder=recorder, clock=self.clock,
            transaction=transaction, deduplication=deduplication,
            call_handler=lambda spec, message, channel: dispatch.call_handler(
                spec, message, channel, outer=False
            ),
            context=dispatch.context,
        )  # fmt: skip
        consumption = AsyncConsumption(
            channels=self.channels, endpoints=self.endpoints, router=self.router,
            clock=self.clock, recorder=recorder, outgoing=outgoing, dispatch=dispatch,
            stacks=compose_stacks(
                prepared, policies, deduplication=deduplication, transaction=transaction,
                build=lambda outer, unused: async_handling_stack(outer, unused=unused),
            ),
            parts=parts, policies=policies, bus_retry=retry, deduplication=deduplication,
            executor=executor,
        )  # fmt: skip
        self._driver: AsyncDriver = AsyncDriver(
            channels=self.channels, scheduled=[s for s in self.handlers if s.kind == "scheduled"],
            consumption=consumption, dispatch=dispatch, recorder=recorder, router=self.router,
            buses=self, clock=self.clock, max_steps=max_steps, schedule_store=schedule_store,
            ticks=TickFailures(
                policies=tick_policies(self.handlers, prepared.endpoint_error_handlers),
                clock=self.clock, recorder=recorder, letters=self.dead_letter_store,
                letter_id=self.dead_letters.new_id, rng=executor.random,
            ),
            error_handlers=error_handlers,
        )  # fmt: skip
        self.dead_letters.ticks = self._driver.replay_tick
        self._dispatch = dispatch
        self._outgoing = outgoing
        self._recorder = recorder
        self._addressing = Addressing(self.router, self.handlers, self.clock)
        if bus_interceptors := tuple(bus_interceptors):  # async def (call, proceed) -> result
            install_bus_interceptors(self, bus_interceptors)

    @property
    def driver(self) -> AsyncDriver:
        """Runs the consumers: channels, schedules, settling and time (as ``Messaging.driver``)."""
        return self._driver

    async def _drain(self, inline: list[str]) -> int:
        """Run inline channels' consumers until they are idle (inline mode)."""
        return await self._driver.settle(names=inline)

    # ------------------------------------------------------------------ opening and closing

    async def open(self) -> AsyncMessaging:
        """Declare every channel on its transport (once; ``async with`` and every verb call it)."""
        if self._open:
            return self
        if self._declared is None:
            self._declared = asyncio.Lock()
        async with self._declared:
            if not self._open:
                for runtime in self.channels.values():
                    await runtime.transport.declare(runtime.definition.channel_options())
                self._open = True
        return self

    async def aclose(self) -> None:
        """Close every transport (each once, however many channels share it)."""
        for transport in self._transports.values():
            await transport.close()

    async def __aenter__(self) -> AsyncMessaging:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ buses

    async def send(
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
    ) -> object:
        """Send a command to its one handler; returns what a synchronous handler returns."""
        if not self._open:
            await self.open()
        spec = self._addressing.command(command, routing_key)
        message = self._dispatch.new_message(
            command, headers, routing_key, message_id, correlation_id, propagate_headers
        )
        self._recorder.verb(RecordKind.SENT, message)
        options = self._addressing.options(delay, at, priority, ttl)
        dispatch = self._dispatch
        if not spec.is_async:
            self._addressing.refuse_options(spec, message, options)
            return await dispatch.handle_from_top(spec, message)
        await dispatch.queue_from_top(spec, message, options)
        return None

    async def publish(
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
        if not self._open:
            await self.open()
        specs = self._addressing.events(event, routing_key)
        message = self._dispatch.new_message(
            event, headers, routing_key, message_id, correlation_id, propagate_headers
        )
        self._recorder.verb(RecordKind.PUBLISHED, message)
        options = self._addressing.options(delay, at, priority, ttl)
        dispatch = self._dispatch
        await dispatch.from_top(lambda: dispatch.publish_to(specs, message, options))

    @overload
    async def ask(
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
    async def ask(
        self,
        query: object,
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Any: ...

    async def ask(
        self,
        query: object,
        *,
        headers: Mapping[str, str] | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Any:
        """Ask a query of its one handler and return the answer (typed for a ``Query[T]``)."""
        if not self._open:
            await self.open()
        spec = self._addressing.query(query, routing_key)
        message = self._dispatch.new_message(
            query, headers, routing_key, message_id, correlation_id, propagate_headers
        )
        self._recorder.verb(RecordKind.ASKED, message)
        dispatch = self._dispatch
        return await dispatch.handle_from_top(spec, message)

    async def send_through(
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
        check_bus_channel(channel, self.channels, {})  # no dynamic channels: none is internal
        if not self._open:
            await self.open()
        message = self._dispatch.new_message.identified(
            payload,
            headers,
            routing_key,
            message_id=message_id,
            correlation_id=correlation_id,
            propagate_headers=propagate_headers,
        )
        kind = RecordKind.SENT if bus == "command" else RecordKind.PUBLISHED
        self._recorder.message(kind, message, channel=channel)

        async def hold() -> None:
            self._outgoing.enqueue(channel, bus, message, (), NO_OPTIONS)

        await self._dispatch.from_top(hold)

    # ------------------------------------------------------------------ consumers and time

    def consumers(self) -> list[str]:
        """Names of the runnable consumers: channels, then scheduled endpoints."""
        return self._driver.names()

    async def run(
        self,
        name: str | list[str],
        *,
        concurrency: int = 1,
        limit: int | None = None,
        time_limit: timedelta | None = None,
        memory_limit: int | None = None,
        stop_on_failure: bool = False,
        finish_when_empty: bool | None = None,
        grace: timedelta | None = None,
        hooks: ConsumerHooks | None = None,
    ) -> RunResult:
        """Run one consumer, or several in turn, up to ``concurrency`` messages at once.

        The limits and their defaults are ``Messaging.run``'s, counted over all the consumers.
        SIGTERM and SIGINT (in the main thread) stop taking messages; the run returns once
        those in flight are finished. A second signal, or ``grace`` running out, cancels them
        (they come back when their lease runs out). ``hooks``: ``ConsumerHooks(on_start=,
        on_idle=, on_stop=)``, plain or ``async def``, called for each consumer name.
        """
        if not self._open:
            await self.open()
        aliases = self.aliases
        name = (
            aliases.get(name, name)
            if isinstance(name, str)
            else [aliases.get(each, each) for each in name]
        )
        return await self._driver.run(
            name, concurrency=concurrency, limit=limit, time_limit=time_limit,
            memory_limit=memory_limit, stop_on_failure=stop_on_failure,
            finish_when_empty=finish_when_empty, grace=grace, hooks=hooks,
        )  # fmt: skip

    def request_stop(self) -> None:
        """Ask every running consumer to stop taking messages and finish those in flight."""
        self._driver.request_stop()

    async def run_until_idle(self, advance_time: bool = False, max_steps: int | None = None) -> int:
        """Run every consumer until nothing is runnable; returns the number of steps taken.

        With ``advance_time``, jump the VirtualClock to the next due timer and go on until no
        timer is left. More than ``max_steps`` steps raises ``SettleError`` (a runaway loop).
        """
        if not self._open:
            await self.open()
        return await self._driver.settle(
            advance_time=advance_time,
            max_steps=max_steps if max_steps is not None else self.max_steps,
        )

    async def advance(self, duration: timedelta, *, max_steps: int | None = None) -> int:
        """Move the VirtualClock forward, handling everything due on the way at its due time."""
        if not self._open:
            await self.open()
        target = later(self.clock.now(), duration, what="advance()")
        return await self._driver.advance_to(target, max_steps=max_steps)

    async def advance_to(self, instant: datetime, *, max_steps: int | None = None) -> int:
        """Move the VirtualClock to ``instant``, handling everything due on the way."""
        if not self._open:
            await self.open()
        return await self._driver.advance_to(ensure_aware(instant), max_steps=max_steps)

    def __repr__(self) -> str:
        return (
            f"AsyncMessaging(handlers={len(self.handlers)}, channels={list(self.channels)}, "
            f"clock={self.clock!r})"
        )
