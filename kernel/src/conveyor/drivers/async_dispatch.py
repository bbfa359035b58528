"""Dispatch in the asyncio driver: awaiting handlers and interceptors, each inside a scope.

Where handlers run: an ``async def`` handler (or interceptor, or error handler) is awaited in the
task that handles its message. A plain ``def`` handler is called directly in that same task, on
the event loop's thread, without a thread pool: it runs to its end before anything else on the
loop does, so tests stay deterministic; blocking work belongs in ``await asyncio.to_thread(...)``
inside an ``async def`` handler.

Interceptors compose as in the sync driver (``conveyor.drivers.dispatch.compose_invokers``); an
interceptor may be ``async def`` or plain: what it returns is awaited when it is awaitable, so a
plain ``@around`` that returns ``proceed()`` works too.

Scopes travel with the task (``conveyor.drivers.scopes``): concurrent consumers each have their own
collector, causation and failure records.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from conveyor.core.bus_calls import retries_at_once
from conveyor.core.clock import Clock
from conveyor.core.delivery import DeliveryOptions
from conveyor.core.ids import IdGenerator
from conveyor.core.interceptors import Interceptor
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.drivers.async_context import AsyncBuses, AsyncContext
from conveyor.drivers.async_outgoing import AsyncOutgoing
from conveyor.drivers.bootstrap import Invoke
from conveyor.drivers.dispatch import NewMessages, compose_invokers, unacknowledged
from conveyor.drivers.recording import Recorder
from conveyor.drivers.scopes import Scopes

__all__ = ["AsyncDispatch", "AsyncTransaction", "awaited", "wrap_async"]

AsyncTransaction = Callable[[], AbstractAsyncContextManager[object]]

T = TypeVar("T")


async def awaited(value: Any) -> Any:
    """``value``, awaited if it is awaitable (what a plain ``def`` returns is used as it is)."""
    if inspect.isawaitable(value):
        return await value
    return value


def wrap_async(interceptors: list[Interceptor], call: Invoke) -> Invoke:
    """Compose ``call(message, ctx)`` with interceptors into a coroutine function.

    Outermost (lowest order) first, as ``conveyor.core.interceptors.wrap_with`` does.
    """
    wrapped = call
    for interceptor in sorted(interceptors, key=lambda i: (i.order, i.position), reverse=True):
        wrapped = _wrap_one(interceptor, wrapped)
    return wrapped


def _wrap_one(interceptor: Interceptor, inner: Invoke) -> Invoke:
    function = interceptor.function
    kind, wants_context = interceptor.kind, interceptor.wants_context

    async def intercepted(message: Message, ctx: object) -> object:
        if kind == "around":
            return await awaited(function(lambda: awaited(inner(message, ctx)), message))
        if kind == "before":
            await awaited(function(message, ctx) if wants_context else function(message))
            return await awaited(inner(message, ctx))
        result = await awaited(inner(message, ctx))
        await awaited(function(message, result))
        return result

    return intercepted


class AsyncDispatch:
    """Calls the handlers of one ``AsyncMessaging`` and makes the messages they cause."""

    __slots__ = (
        "_buses",
        "_clock",
        "_drain_inline",
        "_invokers",
        "_outgoing",
        "_recorder",
        "_scopes",
        "_sync_invokers",
        "_transaction",
        "_wants_context",
        "new_message",
    )

    def __init__(
        self,
        specs: tuple[HandlerSpec, ...],
        interceptors: tuple[Interceptor, ...],
        *,
        clock: Clock,
        ids: IdGenerator,
        scopes: Scopes,
        outgoing: AsyncOutgoing,
        recorder: Recorder,
        transaction: AsyncTransaction | None,
        buses: AsyncBuses,
        drain_inline: Callable[[], Awaitable[object]] | None,
    ) -> None:
        self._clock = clock
        self.new_message = NewMessages(clock, ids, scopes)
        self._scopes = scopes
        self._outgoing = outgoing
        self._recorder = recorder
        self._transaction = transaction
        self._buses = buses
        self._drain_inline = drain_inline
        self._invokers, self._sync_invokers, self._wants_context = compose_invokers(
            specs, interceptors, wrap_async
        )

    def context(self, message: Message, endpoint_id: str | None, channel: str | None) -> object:
        """The ``AsyncContext`` a handler (or an interceptor) handling ``message`` receives."""
        return AsyncContext(self._buses, self._clock, message, endpoint_id, channel)

    async def from_top(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run bus work in a collecting scope unless one is open already; then drain inline.

        Inside a handler whose channel switched the collector off (``collector=False``) no
        collecting scope is open: the work gets one of its own, flushed as soon as it is done,
        so what it sends leaves at once (an asyncio copy is held until a flush can await it).
        """
        current = self._scopes.current()
        if current is not None:
            if current.collector() is not None:
                return await work()
            return await self._collect(None, None, None, work)
        result = await self.collected(None, None, None, work)
        if self._drain_inline is not None:
            await self._drain_inline()
        return result

    async def handle_from_top(self, spec: HandlerSpec, message: Message) -> object:
        """Call a synchronous handler for ``send`` or ``ask``; at the top, a handler with its
        own instant retries (``@command_handler(retry=...)``) runs each attempt as a whole new
        call (its scope and transaction), under the same message."""
        tried = 0
        while True:
            tried += 1
            try:
                return await self.from_top(lambda: self.call_handler(spec, message, None))
            except Exception as error:
                if self._scopes.current() is not None or not retries_at_once(
                    spec.retry, error, tried
                ):
                    raise

    async def queue_from_top(
        self, spec: HandlerSpec, message: Message, options: DeliveryOptions
    ) -> None:
        """Queue a copy of ``message`` for the asynchronous handler ``spec`` (``send``).

        At the top and outside a transaction the scope ``from_top`` opens would hold this one
        copy and flush it straight away, so the copy is sent at once; what is sent and journaled
        is the same. Inside a handler (or a transaction) it is held like every other copy.
        """
        if self._transaction is None and self._scopes.current() is None:
            await self._outgoing.send_copy(spec, message, options)
            if self._drain_inline is not None:
                await self._drain_inline()
            return

        async def hold() -> None:
            self._outgoing.queue_copy(spec, message, options)

        await self.from_top(hold)

    async def collected(
        self,
        message: Message | None,
        endpoint_id: str | None,
        channel: str | None,
        work: Callable[[], Awaitable[T]],
    ) -> T:
        """Run ``work`` in the application's transaction and a collecting scope; flush on success.

        How a top-level verb, a tick, a routed bus message and an error handler run.
        """
        if self._transaction is None:
            return await self._collect(message, endpoint_id, channel, work)
        async with self._transaction():
            return await self._collect(message, endpoint_id, channel, work)

    async def _collect(
        self,
        message: Message | None,
        endpoint_id: str | None,
        channel: str | None,
        work: Callable[[], Awaitable[T]],
    ) -> T:
        scopes = self._scopes
        scope, token = scopes.inner(message, endpoint_id, channel)
        try:
            try:
                result = await work()
            except BaseException:
                self._outgoing.discard(scope)
                raise
            await self._outgoing.flush(scope)
        finally:
            scopes.leave(token)
        return result

    async def publish_to(
        self, specs: tuple[HandlerSpec, ...], message: Message, options: DeliveryOptions
    ) -> None:
        """Hold a copy for each asynchronous handler and await each synchronous one, in order."""
        for spec in specs:
            if spec.is_async:
                self._outgoing.queue_copy(spec, message, options)
            else:
                await self.call_handler(spec, message, None)

    async def call_handler(
        self, spec: HandlerSpec, message: Message, channel: str | None, *, outer: bool = True
    ) -> object:
        """Run one handler with its interceptors, recording the outcome in the journal."""
        endpoint_id = spec.endpoint_id
        scopes = self._scopes
        scope, token = scopes.inner(message, endpoint_id, channel, collecting=False)
        try:
            invoke = (self._sync_invokers if outer else self._invokers)[endpoint_id]
            context = (
                AsyncContext(self._buses, self._clock, message, endpoint_id, channel, scope.attempt)
                if endpoint_id in self._wants_context
                else None
            )
            result = await awaited(invoke(message, context))
        except Exception as error:
            self._recorder.failure(
                scope.attempt, message, endpoint_id=endpoint_id, channel=channel, error=error
            )
            raise
        finally:
            scopes.leave(token)
        if channel is not None:
            unacknowledged(scope.attempt, endpoint_id)
        self._recorder.handled(message, endpoint_id, channel)
        return result
