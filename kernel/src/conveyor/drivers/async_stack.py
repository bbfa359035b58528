"""The handling stack of a consumed message in the asyncio driver.

The same layers in the same order as the sync stack (``conveyor.drivers.stack``: instant retry,
deduplication, transaction, collector, then the user's outer interceptors and the handler), with
``await`` where the sync layers call. Which layers a handler needs is decided once, for both
drivers, by ``conveyor.drivers.bootstrap.unused_layers``; whether an instant retry follows a
failure by ``conveyor.drivers.stack.retries_again``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conveyor.core.clock import Clock
from conveyor.core.collector import AttemptState, ManualAck
from conveyor.core.errors import NotAcknowledged
from conveyor.core.interceptors import Interceptor
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.drivers import stack
from conveyor.drivers.async_dispatch import AsyncTransaction, awaited
from conveyor.drivers.async_outgoing import AsyncOutgoing
from conveyor.drivers.recording import Recorder
from conveyor.drivers.scopes import Scopes
from conveyor.drivers.stack import Attempt, Layer, retries_again
from conveyor.stores.deduplication import Deduplication

__all__ = ["AsyncStackParts", "AsyncAttempt", "async_handling_stack"]


@dataclass(frozen=True, slots=True)
class AsyncStackParts:
    """What the asyncio layers use, handed over by ``AsyncMessaging``."""

    scopes: Scopes
    outgoing: AsyncOutgoing
    recorder: Recorder
    clock: Clock
    transaction: AsyncTransaction | None
    deduplication: Deduplication | None
    call_handler: Callable[[HandlerSpec, Message, str], Awaitable[object]]
    context: Callable[[Message, str, str], object]


AsyncAttempt = Attempt[AsyncStackParts]
Proceed = Callable[[], Awaitable[object]]
AsyncLayer = Callable[[Proceed, AsyncAttempt], Awaitable[object]]


async def instant_retry(proceed: Proceed, attempt: AsyncAttempt) -> object:
    """Retry at once, in the same delivery; each attempt runs every layer inside afresh."""
    policy = attempt.policy.retry
    left = policy.instant if policy is not None else 0
    while True:
        try:
            return await proceed()
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
            if not retries_again(attempt, error, left):
                raise
            left -= 1
            attempt.state = AttemptState()


async def deduplication(proceed: Proceed, attempt: AsyncAttempt) -> object:
    """Remember a success once the transaction committed and the collector flushed."""
    result = await proceed()
    parts = attempt.parts
    if attempt.dedup_key is not None and parts.deduplication is not None:
        parts.deduplication.store.add(
            attempt.spec.dedup_scope,
            attempt.dedup_key,
            expires_at=parts.clock.now() + parts.deduplication.expiry,
        )
    return result


async def transaction(proceed: Proceed, attempt: AsyncAttempt) -> object:
    """The application's transaction (``AsyncMessaging(transaction=...)``) around one attempt."""
    factory = attempt.parts.transaction
    if factory is None:
        return await proceed()
    async with factory():
        return await proceed()


async def collector(proceed: Proceed, attempt: AsyncAttempt) -> object:
    """Messages sent while handling leave only when the handler returns."""
    parts = attempt.parts
    scopes = parts.scopes
    if attempt.policy is not None and attempt.policy.manual_ack:
        attempt.state = ManualAck()  # ctx.ack() marks it; the handler's call checks it
    scope, token = scopes.inner(
        attempt.message,
        attempt.spec.endpoint_id,
        attempt.channel,
        attempt=attempt.state,
        collecting=attempt.policy is None or attempt.policy.collect,
    )
    try:
        try:
            result = await proceed()
        except BaseException:
            parts.outgoing.discard(scope)
            raise
        await parts.outgoing.flush(scope)
    finally:
        scopes.leave(token)
    return result


_TWINS: dict[Layer, AsyncLayer] = {
    stack.instant_retry: instant_retry,
    stack.deduplication: deduplication,
    stack.transaction: transaction,
    stack.collector: collector,
}


def async_handling_stack(
    outer_interceptors: list[Interceptor],
    *,
    unused: frozenset[Layer] = frozenset(),
) -> Callable[[AsyncAttempt], Awaitable[object]]:
    """The sync stack's layers, in its order, as their asyncio twins around the handler."""
    layers: list[tuple[int, int, AsyncLayer]] = [
        (order, position, _TWINS[layer])
        for position, (order, layer) in enumerate(stack.BUILT_IN)
        if layer not in unused
    ]
    for interceptor in outer_interceptors:
        layers.append((interceptor.order, len(layers), _as_layer(interceptor)))
    layers.sort(key=lambda item: (item[0], item[1]))

    async def handle(attempt: AsyncAttempt) -> object:
        return await attempt.parts.call_handler(attempt.spec, attempt.message, attempt.channel)

    call: Callable[[AsyncAttempt], Awaitable[object]] = handle
    for _, _, layer in reversed(layers):
        call = _bind(layer, call)
    return call


def _bind(
    layer: AsyncLayer, inner: Callable[[AsyncAttempt], Awaitable[object]]
) -> Callable[[AsyncAttempt], Awaitable[object]]:
    async def run(attempt: AsyncAttempt) -> object:
        return await layer(lambda: inner(attempt), attempt)

    return run


def _as_layer(interceptor: Interceptor) -> AsyncLayer:
    function = interceptor.function

    async def layer(proceed: Proceed, attempt: AsyncAttempt) -> object:
        message = attempt.message
        if interceptor.kind == "around":
            return await awaited(function(proceed, message))
        if interceptor.kind == "before":
            context = attempt.parts.context(message, attempt.spec.endpoint_id, attempt.channel)
            await awaited(
                function(message, context) if interceptor.wants_context else function(message)
            )
            return await proceed()
        result = await proceed()
        await awaited(function(message, result))
        return result

    return layer
