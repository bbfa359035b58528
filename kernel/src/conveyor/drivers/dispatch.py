"""Dispatch: calling synchronous handlers, each inside a scope, with its outcome journaled.

Every handler is composed with its interceptors once, when the ``Messaging`` is built, together with
the consumption stack it runs in when consumed from a channel (``conveyor.drivers.stack``). Bus work
started outside any handler runs in one collecting scope and the application's transaction (the
message collector, ``conveyor.core.collector``), and inline channels are drained once it is done; a
handler called while another is being handled opens a scope that only names its message, so what it
sends joins the enclosing collector.

A message created while another is being handled is caused by it: it names it as its cause,
shares its correlation id and inherits its user headers (its own win).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from conveyor.core.collector import Scope
from conveyor.core.construct import fast_constructor
from conveyor.core.delivery import DeliveryOptions
from conveyor.core.headers import Headers, check_user_headers
from conveyor.core.interceptors import wrap_with
from conveyor.core.journal import ExceptionInfo, RecordKind
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.drivers.bootstrap import Invoke, base_call, unused_layers
from conveyor.drivers.context import Context
from conveyor.drivers.stack import Attempt, Layer, StackOrder, handling_stack

if TYPE_CHECKING:
    from conveyor.drivers.messaging import Messaging
    from conveyor.drivers.outgoing import Outgoing

__all__ = ["Dispatch"]

_EMPTY_USER: Mapping[str, str] = MappingProxyType({})

_make_headers = fast_constructor(
    Headers, ("id", "correlation_id", "causation_id", "timestamp", "attempt", "user")
)
_make_message = fast_constructor(Message, ("payload", "headers", "routing_key"))


class Dispatch:
    """Calls the handlers of one ``Messaging``; ``stacks`` are their consumption stacks."""

    __slots__ = (
        "_draining",
        "_has_inline",
        "_invokers",
        "_m",
        "_new_id",
        "_outgoing",
        "_plain_stacks",
        "_recorded_failure",
        "_scopes",
        "_sync_invokers",
        "_top_scope",
        "_wants_context",
        "stacks",
    )

    def __init__(self, messaging: Messaging, outgoing: Outgoing) -> None:
        self._m = messaging
        self._outgoing = outgoing
        self._scopes = messaging._scopes  # the handling scopes, shared with outgoing
        self._top_scope = Scope(None)
        self._invokers: dict[str, Invoke] = {}
        self._sync_invokers: dict[str, Invoke] = {}
        self.stacks: dict[str, Callable[[Attempt], object]] = {}
        self._plain_stacks: dict[frozenset[Layer], Callable[[Attempt], object]] = {}
        specs = messaging.handlers
        for spec in specs:
            self._compose(spec)
        self._wants_context = {
            s.endpoint_id
            for s in specs
            if s.kind == "scheduled"
            or s.arity != 1
            or any(i.selects(s.message_types, s.markers) for i in messaging.interceptors)
        }
        new_at = getattr(messaging.ids, "new_at", None)
        ids = messaging.ids
        self._new_id: Callable[[datetime], str] = (
            new_at if new_at is not None else (lambda now: ids.new())
        )
        self._recorded_failure: Exception | None = None
        self._draining = False
        self._has_inline = any(rt.inline for rt in messaging.channels.values())

    def _compose(self, spec: HandlerSpec) -> None:
        """Precompose each handler with its interceptors, once.

        Interceptors ordered below ``StackOrder.HANDLER`` sit among the consumption stack's layers
        (``conveyor.drivers.stack``) when the handler is consumed from a channel; on a synchronous
        call they simply wrap the inner ones.
        """
        m = self._m
        selected = [i for i in m.interceptors if i.selects(spec.message_types, spec.markers)]
        inner = [i for i in selected if i.order >= StackOrder.HANDLER]
        outer = [i for i in selected if i.order < StackOrder.HANDLER]
        base = base_call(spec)
        self._invokers[spec.endpoint_id] = wrap_with(inner, base) if inner else base
        self._sync_invokers[spec.endpoint_id] = (
            wrap_with(selected, base) if outer else (self._invokers[spec.endpoint_id])
        )
        unused = unused_layers(
            spec,
            m.channels,
            retry=m.retry,
            deduplication=m.deduplication,
            transaction=m.transaction,
        )
        if outer:
            self.stacks[spec.endpoint_id] = handling_stack(outer, unused=unused)
        else:  # shared by every handler without outer interceptors that uses the same layers
            shared = self._plain_stacks.get(unused)
            if shared is None:
                shared = self._plain_stacks[unused] = handling_stack([], unused=unused)
            self.stacks[spec.endpoint_id] = shared

    # ------------------------------------------------------------------ new messages

    def new_message(
        self, payload: object, headers: Mapping[str, str] | None, routing_key: str | None
    ) -> Message:
        """A message with a new id, caused by the message being handled, if any."""
        user = check_user_headers(headers) if headers else _EMPTY_USER
        parent = self._current_message() if self._scopes else None
        now = self._m.clock.now()
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

    # ------------------------------------------------------------------ from the top

    def top_level(self, work: Callable[[], object]) -> object:
        """Run bus work in a collecting scope unless one is already open; then drain inline."""
        scopes = self._scopes
        if scopes:
            return work()
        scope = self._top_scope  # only ever open at the top, so one object serves every call
        scopes.append(scope)
        try:
            transaction = self._m.transaction
            if transaction is None:
                result = work()
                if scope.buffer:
                    self._outgoing.flush(scope)
            else:
                with transaction():
                    result = work()
                    self._outgoing.flush(scope)
        finally:
            scopes.pop()
            scope.buffer.clear()
        if self._has_inline:
            self.drain_inline()
        return result

    def publish_from_top(
        self, specs: tuple[HandlerSpec, ...], message: Message, options: DeliveryOptions
    ) -> None:
        """``publish_to`` for an event published from outside any handler, in one scope.

        The scope collects the asynchronous copies and names the event for every synchronous
        handler, so none of them needs a scope of its own.
        """
        scopes = self._scopes
        if scopes or self._m.transaction is not None:
            self.top_level(lambda: self.publish_to(specs, message, options))
            return
        scope = self._top_scope
        scope.message = message
        scopes.append(scope)
        try:
            for spec in specs:
                if spec.is_async:
                    self._outgoing.queue_copy(spec, message, options)
                else:
                    self._run_handler(spec, message, None, True)
            if scope.buffer:
                self._outgoing.flush(scope)
        finally:
            scopes.pop()
            scope.message = None
            scope.buffer.clear()
        if self._has_inline:
            self.drain_inline()

    def call_from_top(self, spec: HandlerSpec, message: Message) -> object:
        """A synchronous handler called from outside any handler (the common ``send``/``ask``).

        One scope both collects what the handler sends and names the message being handled,
        where the general path opens two; the outcome is the same.
        """
        scopes = self._scopes
        if scopes or self._m.transaction is not None:
            return self.top_level(lambda: self.call_handler(spec, message, None))
        scope = self._top_scope  # only ever open at the top, so one object serves every call
        scope.message = message
        scope.endpoint_id = spec.endpoint_id
        scopes.append(scope)
        try:
            result = self._run_handler(spec, message, None, True)
            if scope.buffer:
                self._outgoing.flush(scope)
        finally:
            scopes.pop()
            scope.message = None
            scope.buffer.clear()
        if self._has_inline:
            self.drain_inline()
        return result

    def publish_to(
        self, specs: tuple[HandlerSpec, ...], message: Message, options: DeliveryOptions
    ) -> None:
        """Queue a copy for each asynchronous handler and call each synchronous one, in order."""
        for spec in specs:
            if spec.is_async:
                self._outgoing.queue_copy(spec, message, options)
            else:
                self.call_handler(spec, message, None)

    def drain_inline(self) -> None:
        """Run inline channels' consumers until they are idle (inline mode)."""
        if self._draining or self._scopes:
            return
        m = self._m
        inline = [name for name, rt in m.channels.items() if rt.inline]
        if not inline:
            return
        self._draining = True
        try:
            m.driver.settle(names=inline, advance_time=False)
        finally:
            self._draining = False

    # ------------------------------------------------------------------ one handler

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
        m = self._m
        try:
            invokers = self._sync_invokers if outer else self._invokers
            context = (
                Context(m, message, endpoint_id, channel)
                if endpoint_id in self._wants_context
                else None
            )
            result = invokers[endpoint_id](message, context)
        except Exception as error:
            self.record_failure(spec, message, channel, error)
            raise
        headers = message.headers
        payload = message.payload
        m.journal.append(
            m.clock.now(), RecordKind.HANDLED, headers.id,
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
        self._m._record(
            RecordKind.FAILED,
            message,
            endpoint_id=spec.endpoint_id,
            channel=channel,
            exception=ExceptionInfo.capture(error),
            attempt=message.headers.attempt,
        )
