"""Consuming one delivery in the asyncio driver: the same stack and plans, awaited.

The order and every decision are the sync driver's (``conveyor.drivers.consumption`` says why):
where a delivery goes, how it is read, rejected, expired, refused as a duplicate, and which plan
follows a failure all come from ``conveyor.drivers.deliveries`` and ``conveyor.core.lifecycle``.
Only a transport that cannot be reached stops the consumer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from conveyor.core.clock import Clock
from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.errors import (
    ConnectionFailed,
    NotAcknowledged,
    SerializationError,
    StaleReceipt,
    TransportClosed,
)
from conveyor.core.journal import RecordKind
from conveyor.core.lifecycle import Plan, ResolvedPolicy, expire, not_acknowledged
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.core.routing import Router
from conveyor.core.wire import BUS_COMMAND, Delivery, Envelope, H, read_envelope
from conveyor.drivers import deliveries
from conveyor.drivers.async_dispatch import AsyncDispatch
from conveyor.drivers.async_outgoing import AsyncOutgoing
from conveyor.drivers.async_plans import AsyncConsumed, AsyncPlanExecutor
from conveyor.drivers.async_stack import AsyncAttempt, AsyncStackParts
from conveyor.drivers.channel_runtime import AsyncChannelRuntime
from conveyor.drivers.plans import Consumed
from conveyor.drivers.policies import bus_retry
from conveyor.drivers.recording import Recorder
from conveyor.drivers.rejections import Refusal, addressee, refused_payload
from conveyor.drivers.stack import Attempt
from conveyor.stores.deduplication import Deduplication

__all__ = ["AsyncConsumption"]

_UNREACHABLE = (ConnectionFailed, TransportClosed, StaleReceipt)


class AsyncConsumption:
    """Runs deliveries of one ``AsyncMessaging`` through the consumption stack."""

    __slots__ = (
        "_bus_retry",
        "_channels",
        "_clock",
        "_deduplication",
        "_dispatch",
        "_endpoints",
        "_executor",
        "_outgoing",
        "_parts",
        "_policies",
        "_recorder",
        "_router",
        "_stacks",
    )

    def __init__(
        self,
        *,
        channels: Mapping[str, AsyncChannelRuntime],
        endpoints: Mapping[str, HandlerSpec],
        router: Router,
        clock: Clock,
        recorder: Recorder,
        outgoing: AsyncOutgoing,
        dispatch: AsyncDispatch,
        stacks: Mapping[str, Callable[[AsyncAttempt], Awaitable[object]]],
        parts: AsyncStackParts,
        policies: Mapping[tuple[str, str], ResolvedPolicy],
        bus_retry: RetryPolicy | None,
        deduplication: Deduplication | None,
        executor: AsyncPlanExecutor,
    ) -> None:
        self._channels = channels
        self._endpoints = endpoints
        self._router = router
        self._clock = clock
        self._recorder = recorder
        self._outgoing = outgoing
        self._dispatch = dispatch
        self._stacks = stacks
        self._parts = parts
        self._policies = policies
        self._bus_retry = bus_retry
        self._deduplication = deduplication
        self._executor = executor

    async def consume(
        self, runtime: AsyncChannelRuntime, delivery: Delivery, *, stop_on_failure: bool = False
    ) -> Outcome:
        """Take one delivery to a decision; only an unreachable transport raises."""
        try:
            return await self._consume(runtime, delivery, stop_on_failure)
        except (ConnectionFailed, TransportClosed):
            raise
        except StaleReceipt as stale:
            journal, now = self._recorder.journal, self._clock.now()
            deliveries.record_stale(journal, now, runtime.name, delivery, stale)
            return Outcome.STALE

    async def _consume(
        self, runtime: AsyncChannelRuntime, delivery: Delivery, stop_on_failure: bool
    ) -> Outcome:
        self._recorder.received(runtime.name, delivery)
        try:
            envelope = read_envelope(delivery.message.headers, max_priority=runtime.max_priority)
        except SerializationError as error:
            endpoint = delivery.message.headers.get(H.ENDPOINT)
            return await self._reject(
                Consumed(runtime, delivery, endpoint_id=endpoint), "malformed headers", error
            )
        consumed = Consumed(runtime, delivery, envelope, endpoint_id=envelope.endpoint)
        try:
            route = deliveries.route_of(envelope, self._clock.now())
            if route == "forward":
                return await self._forward(consumed, envelope)
            if route == "hold":
                return await self._hold(consumed, envelope)
            spec = addressee(
                envelope.endpoint, to_bus=route == "bus", channel=runtime.name,
                bus_channel=runtime.bus, endpoints=self._endpoints,
            )  # fmt: skip
            if isinstance(spec, Refusal):
                return await self._reject(consumed, spec.reason, None, spec.detail)
            decoded = deliveries.decode(runtime.codec, delivery, envelope)
            if not isinstance(decoded, Message):
                return await self._reject(consumed, *decoded)
            if spec is None:
                return await self._route_on_bus(consumed, envelope, decoded)
            refusal = refused_payload(spec, decoded.payload)
            if refusal is not None:
                return await self._reject(consumed, refusal.reason, None, refusal.detail)
            consumed = Consumed(runtime, delivery, envelope, decoded, spec.endpoint_id)
        except _UNREACHABLE:
            raise
        except Exception as error:  # a kernel or codec bug must not stop the consumer either
            return await self._reject(consumed, "unreadable", error)
        return await self._handle(consumed, spec, envelope, decoded, stop_on_failure)

    async def _reject(
        self, consumed: AsyncConsumed, reason: str, error: Exception | None, detail: str = ""
    ) -> Outcome:
        plan = deliveries.rejection(consumed, reason, error, self._endpoints, detail)
        return await self._execute(plan, consumed)

    async def _handle(
        self,
        consumed: AsyncConsumed,
        spec: HandlerSpec,
        envelope: Envelope,
        message: Message,
        stop_on_failure: bool,
    ) -> Outcome:
        runtime = consumed.runtime
        now = self._clock.now()
        if envelope.expires_at is not None and envelope.expires_at <= now:
            plan = expire(
                envelope.expires_at,
                dead_letter_expired=runtime.definition.dead_letter_expired,
                attempt=message.headers.attempt,
            )
            return await self._execute(plan, consumed)
        policy = self._policies[(spec.endpoint_id, runtime.name)]
        attempt: AsyncAttempt = Attempt(self._parts, runtime.name, spec, message, None, policy)
        try:
            attempt.dedup_key = deliveries.dedup_key(self._deduplication, spec, message)
        except Exception as key_error:  # the handler's key function: the message's failure
            self._recorder.failure(
                attempt.state, message, endpoint_id=spec.endpoint_id, channel=runtime.name,
                error=key_error, detail="@deduplicated key",
            )  # fmt: skip
            return await self._failed(consumed, policy, key_error, stop_on_failure)
        deduplication = self._deduplication
        if attempt.dedup_key is not None and deduplication is not None:
            try:
                seen = deduplication.store.contains(spec.dedup_scope, attempt.dedup_key, now=now)
            except Exception as store_error:
                plan = deliveries.store_failed_plan(store_error, "deduplication store")
                return await self._execute(plan, consumed)
            if seen:
                self._recorder.message(
                    RecordKind.DUPLICATE, message, endpoint_id=spec.endpoint_id,
                    channel=runtime.name, attempt=message.headers.attempt,
                    detail=deliveries.tracking_detail(spec),
                )  # fmt: skip
                await runtime.transport.ack(consumed.delivery)
                return Outcome.DUPLICATE
        try:
            await self._stacks[spec.endpoint_id](attempt)
        except NotAcknowledged:
            plan = not_acknowledged(runtime.definition.lease, self._clock.now())
            return await self._execute(plan, consumed)
        except Exception as error:
            self._recorder.failure(
                attempt.state, message, endpoint_id=spec.endpoint_id, channel=runtime.name,
                error=error,
            )  # fmt: skip
            return await self._failed(consumed, policy, error, stop_on_failure)
        await runtime.transport.ack(consumed.delivery)
        return Outcome.HANDLED

    async def _failed(
        self, consumed: AsyncConsumed, policy: ResolvedPolicy, error: Exception, stop: bool
    ) -> Outcome:
        if stop:
            await consumed.runtime.transport.release(consumed.delivery)
            raise error
        now = self._clock.now()
        plan = deliveries.failure_plan(consumed, policy, error, self._executor.random, now)
        return await self._execute(plan, consumed, policy=policy, error=error)

    async def _execute(
        self,
        plan: Plan,
        consumed: AsyncConsumed,
        *,
        policy: ResolvedPolicy | None = None,
        error: BaseException | None = None,
    ) -> Outcome:
        try:
            return await self._executor.execute(plan, consumed, policy=policy, error=error)
        except _UNREACHABLE:
            raise
        except Exception as raised:
            if error is not None and raised is error:  # final_failure="stop" re-raises it
                raise
            available_at = self._clock.now() + deliveries.STORE_RETRY
            await consumed.runtime.transport.release(consumed.delivery, available_at=available_at)
            deliveries.log_undone(consumed, raised)
            return Outcome.RELEASED

    async def _forward(self, consumed: AsyncConsumed, envelope: Envelope) -> Outcome:
        """A channel sequence: move the message on to the next channel."""
        runtime, delivery = consumed.runtime, consumed.delivery
        next_channel, wire, more = deliveries.forwarded(delivery, envelope)
        target = self._channels.get(next_channel)
        if target is None:
            return await self._reject(consumed, "unknown channel", None)
        held = None if more else self._outgoing.held_until(target, envelope.not_before)
        await target.transport.send(
            next_channel, wire, available_at=held, priority=envelope.priority,
            expires_at=envelope.expires_at,
        )  # fmt: skip
        self._recorder.journal.append(
            self._clock.now(), RecordKind.FORWARDED, envelope.headers.id, envelope.type_name,
            channel=next_channel, endpoint_id=envelope.endpoint, detail=f"from {runtime.name}",
            causation_id=envelope.headers.causation_id,
        )  # fmt: skip
        await runtime.transport.ack(delivery)
        return Outcome.FORWARDED

    async def _hold(self, consumed: AsyncConsumed, envelope: Envelope) -> Outcome:
        """A message back early from a broker's maximum delay: send it on for the rest."""
        runtime, delivery = consumed.runtime, consumed.delivery
        held = self._outgoing.held_until(runtime, envelope.not_before)
        await runtime.transport.send(
            runtime.name, delivery.message, available_at=held, priority=envelope.priority,
            expires_at=envelope.expires_at,
        )  # fmt: skip
        await runtime.transport.ack(delivery)
        return Outcome.HELD

    async def _route_on_bus(
        self, consumed: AsyncConsumed, envelope: Envelope, decoded: Message
    ) -> Outcome:
        """An asynchronous bus message: route it as the plain bus would."""
        runtime, delivery = consumed.runtime, consumed.delivery
        message = Message(decoded.payload, envelope.headers, envelope.routing_key)
        consumed = Consumed(runtime, delivery, envelope, message, envelope.endpoint)
        try:
            await self._dispatch.collected(
                message, envelope.endpoint, runtime.name,
                lambda: self._route(envelope, message, runtime.name),
            )  # fmt: skip
        except Exception as error:
            retry, now = bus_retry(runtime, self._bus_retry), self._clock.now()
            plan = deliveries.bus_failure_plan(consumed, retry, error, self._executor.random, now)
            return await self._execute(plan, consumed)
        await runtime.transport.ack(delivery)
        return Outcome.HANDLED

    async def _route(self, envelope: Envelope, message: Message, channel: str) -> None:
        payload = message.payload
        if envelope.endpoint == BUS_COMMAND:
            spec = self._router.command(type(payload), envelope.routing_key)
            if spec.is_async:
                self._outgoing.queue_copy(spec, message, NO_OPTIONS)
            else:
                await self._dispatch.call_handler(spec, message, channel)
        else:
            specs = self._router.events(type(payload), envelope.routing_key)
            await self._dispatch.publish_to(specs, message, NO_OPTIONS)
