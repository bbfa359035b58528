"""Dispatch: calling synchronous handlers, each inside a scope, with its outcome journaled.

Every handler is composed with its interceptors once, when the ``Messaging`` is built, together
with the consumption stack it runs in when consumed from a channel (``conveyor.drivers.stack``).
Bus work started outside any handler runs in one collecting scope and the application's
transaction (the message collector, ``conveyor.core.collector``), and inline channels are drained
once it is done; a handler called while another is being handled opens a scope that only names
its message, so what it sends joins the enclosing collector.

A message created while another is being handled is caused by it: it names it as its cause,
shares its correlation id and inherits its user headers (its own win).

Scopes travel with the call (``conveyor.drivers.scopes``): concurrent calls from threads or
tasks each have their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from types import MappingProxyType
from typing import TypeVar

from conveyor.core.bus_calls import retries_at_once
from conveyor.core.clock import Clock
from conveyor.core.collector import AttemptState, ManualAck, Scope
from conveyor.core.delivery import DeliveryOptions
from conveyor.core.errors import NotAcknowledged
from conveyor.core.headers import Headers, check_identity, check_user_headers
from conveyor.core.ids import IdGenerator
from conveyor.core.interceptors import Interceptor, wrap_with
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.core.spec_cache import SpecsKey, cacheable
from conveyor.drivers.bootstrap import Invoke, base_call
from conveyor.drivers.buses import Buses
from conveyor.drivers.context import Context
from conveyor.drivers.outgoing import Outgoing
from conveyor.drivers.recording import Recorder
from conveyor.drivers.scopes import Scopes
from conveyor.drivers.stack import StackOrder

__all__ = ["Dispatch", "Transaction", "NewMessages", "compose_invokers"]

Transaction = Callable[[], AbstractContextManager[object]]

T = TypeVar("T")

_EMPTY_USER: Mapping[str, str] = MappingProxyType({})


class NewMessages:
    """Makes messages with new ids, caused by the message being handled in this call, if any."""

    __slots__ = ("_clock", "_new_id", "_scope")

    def __init__(self, clock: Clock, ids: IdGenerator, scopes: Scopes) -> None:
        self._clock = clock
        new_at = getattr(ids, "new_at", None)  # uuid v7 ids reuse the clock reading
        self._new_id: Callable[[datetime], str] = (
            new_at if new_at is not None else (lambda now: ids.new())
        )
        self._scope = scopes.var

    def __call__(
        self,
        payload: object,
        headers: Mapping[str, str] | None,
        routing_key: str | None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate_headers: bool = True,
    ) -> Message:
        """A message with a new id, caused by the message being handled, if any.

        Given an identity option (the bus verbs pass theirs on), it is :meth:`identified`; the
        common send pays one test for them.
        """
        if message_id is not None or correlation_id is not None or not propagate_headers:
            return self.identified(
                payload, headers, routing_key, message_id=message_id,
                correlation_id=correlation_id, propagate_headers=propagate_headers,
            )  # fmt: skip
        user = check_user_headers(headers) if headers else _EMPTY_USER
        scope = self._scope.get()
        parent = scope.handled_message() if scope is not None else None
        now = self._clock.now()
        message_id = self._new_id(now)
        if parent is None:
            built = Headers(message_id, message_id, None, now, 1, user)
        else:
            parent_headers = parent.headers
            inherited = {**parent_headers.user, **user} if user else parent_headers.user
            built = Headers(
                message_id, parent_headers.correlation_id, parent_headers.id, now, 1, inherited
            )
        return Message(payload, built, routing_key)

    def identified(
        self,
        payload: object,
        headers: Mapping[str, str] | None,
        routing_key: str | None,
        *,
        message_id: str | None,
        correlation_id: str | None,
        propagate_headers: bool,
    ) -> Message:
        """A message with an explicit id or correlation id, or without inherited user headers.

        The verbs call it only when one of these is given, so the common send pays nothing.
        An explicit correlation id wins over the one of the message being handled (a flow that
        started elsewhere, such as an HTTP request); the cause is still the message handled.
        """
        user = check_user_headers(headers) if headers else _EMPTY_USER
        scope = self._scope.get()
        parent = scope.handled_message() if scope is not None else None
        now = self._clock.now()
        new_id = (
            check_identity(message_id, "message_id=")
            if message_id is not None
            else self._new_id(now)
        )
        correlation = (
            check_identity(correlation_id, "correlation_id=")
            if correlation_id is not None
            else None
        )
        if parent is None:
            built = Headers(new_id, correlation or new_id, None, now, 1, user)
        else:
            parent_headers = parent.headers
            inherited = (
                ({**parent_headers.user, **user} if user else parent_headers.user)
                if propagate_headers
                else user
            )
            built = Headers(
                new_id,
                correlation or parent_headers.correlation_id,
                parent_headers.id,
                now,
                1,
                inherited,
            )
        return Message(payload, built, routing_key)


Invokers = tuple[dict[str, Invoke], dict[str, Invoke], AbstractSet[str]]
"""Each handler's call as consumed and as called, by endpoint id, and which want a context."""


def compose_invokers(
    specs: tuple[HandlerSpec, ...],
    interceptors: tuple[Interceptor, ...],
    wrap: Callable[[list[Interceptor], Invoke], Invoke],
) -> Invokers:
    """Each handler with its interceptors: as consumed, as called, and which want a context.

    Interceptors ordered below ``StackOrder.HANDLER`` sit among the consumption stack's layers
    when the handler is consumed from a channel (``conveyor.drivers.stack``); on a synchronous
    call they simply wrap the inner ones. ``wrap`` composes (the sync or the asyncio way).

    Module-level handlers without interceptors are composed once and shared by every kernel
    built from the same specs (``conveyor.core.spec_cache``): the tables are only read.
    """
    if not interceptors and cacheable(specs):
        return _shared_invokers(SpecsKey(specs), wrap)
    return _compose_invokers(specs, interceptors, wrap)


@functools.lru_cache(maxsize=64)
def _shared_invokers(
    key: SpecsKey, wrap: Callable[[list[Interceptor], Invoke], Invoke]
) -> Invokers:
    return _compose_invokers(key.specs, (), wrap)


def _compose_invokers(
    specs: tuple[HandlerSpec, ...],
    interceptors: tuple[Interceptor, ...],
    wrap: Callable[[list[Interceptor], Invoke], Invoke],
) -> Invokers:
    consumed: dict[str, Invoke] = {}
    called: dict[str, Invoke] = {}
    for spec in specs:
        selected = [i for i in interceptors if i.selects(spec.message_types, spec.markers)]
        inner = [i for i in selected if i.order >= StackOrder.HANDLER]
        base = base_call(spec)
        consumed[spec.endpoint_id] = wrap(inner, base) if inner else base
        called[spec.endpoint_id] = (
            wrap(selected, base) if len(inner) < len(selected) else consumed[spec.endpoint_id]
        )
    wants_context = frozenset(
        s.endpoint_id
        for s in specs
        if s.kind == "scheduled"
        or s.arity != 1
        or any(i.selects(s.message_types, s.markers) for i in interceptors)
    )
    return consumed, called, wants_context


def unacknowledged(attempt: AttemptState, endpoint_id: str) -> None:
    """Raise ``NotAcknowledged`` for a handler consumed from a manually acknowledged channel
    that returned without ``ctx.ack()``: what it did is undone and the delivery given back."""
    if isinstance(attempt, ManualAck) and not attempt.acked:
        raise NotAcknowledged(
            f"{endpoint_id} returned without ctx.ack() or ctx.reject(reason) on a channel with "
            f'ack="manual"; the message comes again after the channel\'s lease'
        )


class Dispatch:
    """Calls the handlers of one ``Messaging`` and makes the messages they cause."""

    __slots__ = (
        "_buses",
        "_clock",
        "_drain_inline",
        "_invokers",
        "_outgoing",
        "_recorder",
        "_scope",
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
        outgoing: Outgoing,
        recorder: Recorder,
        transaction: Transaction | None,
        buses: Buses,
        drain_inline: Callable[[], None] | None,
    ) -> None:
        self._clock = clock
        self.new_message = NewMessages(clock, ids, scopes)
        self._scopes = scopes
        self._scope = scopes.var
        self._outgoing = outgoing
        self._recorder = recorder
        self._transaction = transaction
        self._buses = buses
        self._drain_inline = drain_inline
        self._invokers, self._sync_invokers, self._wants_context = compose_invokers(
            specs, interceptors, wrap_with
        )

    # ------------------------------------------------------------------ new messages

    def context(self, message: Message, endpoint_id: str | None, channel: str | None) -> Context:
        """The ``Context`` a handler (or an interceptor) handling ``message`` receives."""
        return Context(self._buses, self._clock, message, endpoint_id, channel)

    # ------------------------------------------------------------------ from the top

    def from_top(self, work: Callable[[], T]) -> T:
        """Run bus work in a collecting scope unless one is open already; then drain inline.

        At the top (no handler is running in this thread or task) the work gets its own
        collecting scope and the application's transaction: what it sends leaves only if it
        all succeeds. Inside a handler it joins the enclosing scope.
        """
        if self._scope.get() is not None:
            return work()
        return self._at_top(Scope(None), lambda scope: work())

    def deliver(
        self, specs: tuple[HandlerSpec, ...], message: Message, options: DeliveryOptions
    ) -> object:
        """What ``send``, ``publish`` and ``ask`` do with their new message: queue a copy for each
        asynchronous handler and call each synchronous one, in order; return what the last
        synchronous one returned.

        At the top (no handler is running in this thread or task), one collecting scope that
        also names the message serves every handler: what they send leaves only if all of them
        succeed, and is caused by the message, exactly as if each handler had a scope of its
        own inside a collecting one (the general path, which costs two scopes a handler).
        Inside a handler it is :meth:`publish_to`: each synchronous handler a nested call.
        """
        if self._scope.get() is not None:
            return self.publish_to(specs, message, options)
        scope = Scope(message)
        token = self._scope.set(scope)
        try:
            if self._transaction is None:
                result = None
                for spec in specs:
                    if spec.channels:  # asynchronous (``is_async`` without the property call)
                        self._outgoing.queue_copy(spec, message, options)
                    else:
                        result = self.invoke(scope, spec, message, None, outer=True)
                if scope.buffer:
                    self._outgoing.flush(scope)
            else:
                with self._transaction():
                    result = self._each(scope, specs, message, options)
                    self._outgoing.flush(scope)
        except BaseException:
            if scope.buffer:
                self._outgoing.discard(scope)
            raise
        finally:
            self._scope.reset(token)
        if self._drain_inline is not None:
            self._drain_inline()
        return result

    def retried(self, spec: HandlerSpec, message: Message) -> object:
        """``send`` or ``ask`` of a handler with its own instant retries
        (``@command_handler(retry=...)``): at the top, each attempt a whole new call; inside a
        handler, an ordinary nested call (the enclosing work owns the retry)."""
        if self._scope.get() is not None:
            return self.call_handler(spec, message, None)
        return self._retried_from_top(spec, message)

    def _each(
        self,
        scope: Scope,
        specs: tuple[HandlerSpec, ...],
        message: Message,
        options: DeliveryOptions,
    ) -> object:
        result = None
        for spec in specs:
            if spec.is_async:
                self._outgoing.queue_copy(spec, message, options)
            else:
                result = self.invoke(scope, spec, message, None, outer=True)
        return result

    def _retried_from_top(self, spec: HandlerSpec, message: Message) -> object:
        """A handler with its own instant retries (``@command_handler(retry=...)``), at the top:
        each attempt a whole new call (its scope and transaction), under the same message."""
        tried = 0
        while True:
            tried += 1
            try:
                return self._at_top(
                    Scope(message, spec.endpoint_id),
                    lambda scope: self.invoke(scope, spec, message, None, outer=True),
                )
            except Exception as error:
                if not retries_at_once(spec.retry, error, tried):
                    raise

    def _at_top(self, scope: Scope, work: Callable[[Scope], T]) -> T:
        """Run ``work`` in the top-level ``scope`` and the transaction; flush; drain inline."""
        token = self._scope.set(scope)
        try:
            if self._transaction is None:
                result = work(scope)
                if scope.buffer:
                    self._outgoing.flush(scope)
            else:
                with self._transaction():
                    result = work(scope)
                    self._outgoing.flush(scope)
        except BaseException:
            if scope.buffer:
                self._outgoing.discard(scope)
            raise
        finally:
            self._scope.reset(token)
        if self._drain_inline is not None:
            self._drain_inline()
        return result

    def collected(
        self,
        message: Message | None,
        endpoint_id: str | None,
        channel: str | None,
        work: Callable[[], T],
    ) -> T:
        """Run ``work`` in the application's transaction and a collecting scope; flush on success.

        How a tick, a routed bus message and an error handler run: what they send leaves only
        if all of it succeeds.
        """
        transaction = self._transaction() if self._transaction is not None else nullcontext()
        with transaction, self._scopes.opened(message, endpoint_id, channel) as scope:
            try:
                result = work()
            except BaseException:
                self._outgoing.discard(scope)
                raise
            self._outgoing.flush(scope)
        return result

    def publish_to(
        self, specs: tuple[HandlerSpec, ...], message: Message, options: DeliveryOptions
    ) -> object:
        """Queue a copy for each asynchronous handler and call each synchronous one, in order;
        return what the last synchronous one returned."""
        result = None
        for spec in specs:
            if spec.is_async:
                self._outgoing.queue_copy(spec, message, options)
            else:
                result = self.call_handler(spec, message, None)
        return result

    # ------------------------------------------------------------------ one handler

    def call_handler(
        self, spec: HandlerSpec, message: Message, channel: str | None, *, outer: bool = True
    ) -> object:
        """Run one handler with its interceptors, recording the outcome in the journal.

        The handler gets a scope that names its message (for causation) and joins the enclosing
        collector. ``outer=False`` leaves out the interceptors that the consumption stack
        already ran.
        """
        current = self._scope
        scope = Scope(message, spec.endpoint_id, channel, collecting=False, parent=current.get())
        token = current.set(scope)
        try:
            return self.invoke(scope, spec, message, channel, outer=outer)
        finally:
            current.reset(token)

    def invoke(
        self,
        scope: Scope,
        spec: HandlerSpec,
        message: Message,
        channel: str | None,
        *,
        outer: bool = False,
    ) -> object:
        """Call the handler inside ``scope`` (already entered) and journal the outcome.

        ``outer=False`` (the consumption stack's call, in the collector's own scope) leaves out
        the interceptors that the stack already ran among its layers.
        """
        endpoint_id = spec.endpoint_id
        try:
            invoke = (self._sync_invokers if outer else self._invokers)[endpoint_id]
            context = (
                Context(self._buses, self._clock, message, endpoint_id, channel, scope.attempt)
                if endpoint_id in self._wants_context
                else None
            )
            result = invoke(message, context)
        except Exception as error:
            self._recorder.failure(
                scope.attempt, message, endpoint_id=endpoint_id, channel=channel, error=error
            )
            raise
        if channel is not None:
            unacknowledged(scope.attempt, endpoint_id)
        self._recorder.handled(message, endpoint_id, channel)
        return result
