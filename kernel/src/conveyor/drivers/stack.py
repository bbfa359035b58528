"""The handling stack of a consumed message, as ordered interceptors.

Each layer is an around-interceptor with an order, like Ecotone's precedences (reference
section 8.1); lower orders run further outside. User ``@around``/``@before``/``@after``
interceptors take their place among them by their own ``order``: the default 0 runs innermost,
around the handler, on every attempt; an order between two built-in layers runs between them
(for example ``order=StackOrder.TRANSACTION - 1`` to switch a tenant's connection before each
transaction). Acknowledgement and failure resolution wrap the whole stack in
``conveyor.drivers.consumption``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Generic

from typing_extensions import TypeVar

from conveyor.core.clock import Clock
from conveyor.core.collector import AttemptState, ManualAck, Scope
from conveyor.core.errors import NotAcknowledged
from conveyor.core.interceptors import Interceptor
from conveyor.core.journal import RecordKind
from conveyor.core.lifecycle import ResolvedPolicy
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.drivers.key_purge import KeyPurge
from conveyor.drivers.outgoing import Outgoing
from conveyor.drivers.recording import Recorder
from conveyor.drivers.scopes import Scopes
from conveyor.stores.deduplication import Deduplication, TransactionalDeduplicationStore

__all__ = ["StackOrder", "StackParts", "Attempt", "handling_stack"]


class StackOrder(IntEnum):
    """Orders of the built-in layers; user interceptors default to 0 (innermost)."""

    INSTANT_RETRY = -2002
    DEDUPLICATION = -2001
    TRANSACTION = -2000
    DEDUPLICATION_IN_TRANSACTION = -1999
    COLLECTOR = -1998
    HANDLER = 0


@dataclass(frozen=True, slots=True)
class StackParts:
    """What the built-in layers use, handed over by the composition root."""

    scopes: Scopes
    outgoing: Outgoing
    recorder: Recorder
    clock: Clock
    transaction: Callable[[], AbstractContextManager[object]] | None
    deduplication: Deduplication | None
    call_handler: Callable[[HandlerSpec, Message, str], object]
    context: Callable[[Message, str, str], object]
    #: Calls a handler inside a scope already entered (``Dispatch.invoke``): the collector's own,
    #: when nothing runs between the collector and the handler.
    invoke: Callable[[Scope, HandlerSpec, Message, str], object]
    purge: KeyPurge | None = None


P = TypeVar("P", default="StackParts")


class Attempt(Generic[P]):
    """What every layer knows about the delivery being handled.

    ``parts`` are what the driver's layers use: :class:`StackParts` here, their asyncio twin in
    ``conveyor.drivers.async_stack``.

    ``state`` is the current try's record of what it journaled: instant retry starts a new one
    for each try, so the same exception object raised by two tries is recorded twice.
    ``key_recorded`` is set once the deduplication key was written inside the transaction.
    """

    __slots__ = (
        "channel",
        "dedup_key",
        "key_recorded",
        "message",
        "parts",
        "policy",
        "spec",
        "state",
    )

    def __init__(
        self,
        parts: P,
        channel: str,
        spec: HandlerSpec,
        message: Message,
        dedup_key: str | None,
        policy: ResolvedPolicy,
    ) -> None:
        self.parts = parts
        self.channel = channel
        self.spec = spec
        self.message = message
        self.dedup_key = dedup_key
        self.policy = policy
        self.state = AttemptState()
        self.key_recorded = False


Proceed = Callable[[], object]
Layer = Callable[[Proceed, Attempt], object]


def retries_again(attempt: Attempt[Any], error: Exception, left: int) -> bool:
    """Whether an instant retry follows this failure, with ``left`` instant retries to go."""
    policy = attempt.policy.retry
    return left > 0 and policy is not None and policy.retries(error)


def instant_retry(proceed: Proceed, attempt: Attempt) -> object:
    """Retry at once, in the same delivery; each attempt runs every layer inside afresh."""
    policy = attempt.policy.retry
    left = policy.instant if policy is not None else 0
    while True:
        try:
            return proceed()
        except NotAcknowledged:
            raise  # not a failure: the delivery is given back, never retried here
        except Exception as error:
            attempt.parts.recorder.failure(
                attempt.state,
                attempt.message,
                endpoint_id=attempt.spec.endpoint_id,
                channel=attempt.channel,
                error=error,
            )
            if retries_again(attempt, error, left):
                left -= 1
                attempt.state = AttemptState()
                continue
            raise


def deduplication(proceed: Proceed, attempt: Attempt) -> object:
    """Remember a success, once the transaction committed and the collector flushed.

    A store that keeps its own transactions is written here, after the commit: recording inside
    the handler's transaction could remember a success that a failed flush or commit undid, and
    then skip its retry as a duplicate, losing the message. The price is a window: a crash
    between the commit and this write leaves an effect without its key, and the redelivery runs
    the handler again. A store that joins the handler's transaction has written the key already
    (``deduplication_in_transaction``), with no window. Duplicates are refused before the stack
    runs. Every deduplicated success also gives the purge of expired keys its turn.
    """
    result = proceed()
    parts = attempt.parts
    if attempt.dedup_key is not None and parts.deduplication is not None:
        if not attempt.key_recorded:
            parts.deduplication.store.add(
                attempt.spec.dedup_scope,
                attempt.dedup_key,
                expires_at=parts.clock.now() + parts.deduplication.expiry,
            )
        if parts.purge is not None:
            parts.purge.after_message()
    return result


def deduplication_in_transaction(proceed: Proceed, attempt: Attempt) -> object:
    """Check and record the key inside the handler's transaction, when the store writes there.

    Only a ``TransactionalDeduplicationStore`` that says it is inside the application's
    transaction now is used here; otherwise the outer layer writes after the commit. The key is
    looked up again inside the transaction (another consumer may have committed the same
    message since the check before the stack, after its lease ran out) and written after the
    handler and the collector's flush, before the commit: the effect, the messages sent and the
    key commit together or not at all.
    """
    parts = attempt.parts
    deduplication = parts.deduplication
    key = attempt.dedup_key
    if (
        key is None
        or deduplication is None
        or not isinstance(deduplication.store, TransactionalDeduplicationStore)
        or not deduplication.store.in_application_transaction()
    ):
        return proceed()
    store, endpoint_id, scope = (
        deduplication.store,
        attempt.spec.endpoint_id,
        attempt.spec.dedup_scope,
    )
    if store.contains(scope, key, now=parts.clock.now()):
        parts.recorder.message(
            RecordKind.DUPLICATE,
            attempt.message,
            endpoint_id=endpoint_id,
            channel=attempt.channel,
            attempt=attempt.message.headers.attempt,
            detail="found inside the transaction",
        )
        attempt.key_recorded = True
        return None
    result = proceed()
    store.add(scope, key, expires_at=parts.clock.now() + deduplication.expiry)
    attempt.key_recorded = True
    return result


def transaction(proceed: Proceed, attempt: Attempt) -> object:
    """The application's transaction (``Messaging(transaction=...)``) around one attempt."""
    transaction = attempt.parts.transaction
    if transaction is None:
        return proceed()
    with transaction():
        return proceed()


def collector(proceed: Proceed | None, attempt: Attempt) -> object:
    """Messages sent while handling leave only when the handler returns (inside the transaction).

    The scope is entered and left explicitly rather than with ``Scopes.opened``: this layer runs
    for every consumed message, and the generator behind a context manager (or the calls of
    ``Scopes.inner`` and ``leave``) cost more than the scope itself. A handler that sent nothing
    has nothing to flush.

    Without ``proceed`` the collector is the innermost layer (the common case: no user
    interceptor among the layers) and calls the handler itself, inside its own scope: that scope
    already names the message, the endpoint, the channel and the attempt, as the scope of
    ``Dispatch.call_handler`` would, so the handler needs no second one (nor the calls between).
    """
    parts = attempt.parts
    if attempt.policy is not None and attempt.policy.manual_ack:
        attempt.state = ManualAck()  # ctx.ack() marks it; the handler's call checks it
    current = parts.scopes.var  # the ``ContextVar`` itself, as ``Scopes.inner`` without its call
    scope = Scope(
        attempt.message,
        attempt.spec.endpoint_id,
        attempt.channel,
        collecting=attempt.policy is None or attempt.policy.collect,
        parent=current.get(),
        attempt=attempt.state,
    )
    token = current.set(scope)
    try:
        try:
            if proceed is None:
                result = parts.invoke(scope, attempt.spec, attempt.message, attempt.channel)
            else:
                result = proceed()
        except BaseException:
            parts.outgoing.discard(scope)
            raise
        if scope.buffer:
            parts.outgoing.flush(scope)
    finally:
        current.reset(token)
    return result


BUILT_IN: tuple[tuple[int, Layer], ...] = (
    (StackOrder.INSTANT_RETRY, instant_retry),
    (StackOrder.DEDUPLICATION, deduplication),
    (StackOrder.TRANSACTION, transaction),
    (StackOrder.DEDUPLICATION_IN_TRANSACTION, deduplication_in_transaction),
    (StackOrder.COLLECTOR, collector),
)


def handling_stack(
    outer_interceptors: list[Interceptor],
    *,
    unused: frozenset[Layer] = frozenset(),
) -> Callable[[Attempt], object]:
    """Compose the built-in layers and the outer user interceptors around the handler call.

    ``outer_interceptors`` are the user interceptors selected for one handler whose order puts them
    among the built-in layers (below ``StackOrder.HANDLER``); the others run inside
    ``Dispatch.call_handler`` (``conveyor.drivers.dispatch``). Layers in ``unused`` would do nothing
    for this handler (no instant retries, no deduplication, no transaction) and are left out: the
    stack runs on every consumed message. For the same reason a collector that is the innermost
    layer calls the handler itself (see :func:`collector`).
    """
    layers: list[tuple[int, int, Layer]] = [
        (order, position, layer)
        for position, (order, layer) in enumerate(BUILT_IN)
        if layer not in unused
    ]
    for interceptor in outer_interceptors:
        layers.append((interceptor.order, len(layers), _as_layer(interceptor)))
    layers.sort(key=lambda item: (item[0], item[1]))

    def handle(attempt: Attempt) -> object:
        return attempt.parts.call_handler(attempt.spec, attempt.message, attempt.channel)

    call: Callable[[Attempt], object] = handle
    if layers and layers[-1][2] is collector:
        call = functools.partial(collector, None)
        del layers[-1]
    for _, _, layer in reversed(layers):
        call = _bind(layer, call)
    return call


def _bind(layer: Layer, inner: Callable[[Attempt], object]) -> Callable[[Attempt], object]:
    def run(attempt: Attempt) -> object:
        return layer(lambda: inner(attempt), attempt)

    return run


def _as_layer(interceptor: Interceptor) -> Layer:
    function = interceptor.function

    def layer(proceed: Proceed, attempt: Attempt) -> object:
        message = attempt.message
        if interceptor.kind == "around":
            return function(proceed, message)
        if interceptor.kind == "before":
            if interceptor.wants_context:
                function(message, _context(attempt))
            else:
                function(message)
            return proceed()
        result = proceed()
        function(message, result)
        return result

    return layer


def _context(attempt: Attempt) -> object:
    return attempt.parts.context(attempt.message, attempt.spec.endpoint_id, attempt.channel)
