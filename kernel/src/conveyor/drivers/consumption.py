"""Consuming one delivery: the stack every asynchronous message goes through.

Outermost first, as Ecotone's consumption stack (reference section 8.1):

1. acknowledge, or the final failure strategy (resend, stop, ignore);
2. failure resolution after rollback: delayed retry, then error handler, then dead letter;
3. instant retries, each attempt in a fresh transaction scope;
4. the transaction;
5. the message collector (messages sent while handling leave only on success);
6. deduplication (checked before the stack; only success is recorded, once the collector has
   flushed and the transaction committed);
7. user interceptors, then the handler.

This module is the entry: it reads the envelope, forwards a channel sequence, routes an
asynchronous bus message, expires, refuses duplicates and runs the stack (layers 3 to 7,
``conveyor.drivers.stack``). What happens after (layers 1 and 2) is decided by the core as a
plan (``conveyor.core.lifecycle``) and carried out by ``conveyor.drivers.plans``.

Every exception ends in a decision: a message that cannot be read, decoded or routed goes to the
dead-letter store with its reason; a failure of the handler, an interceptor or an error handler
follows the endpoint's policy; a failing store releases the delivery to come back later. Only a
transport that cannot be reached stops the consumer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from conveyor.core.clock import Clock
from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.errors import (
    ConnectionFailed,
    NoHandlerError,
    NotAcknowledged,
    SerializationError,
    StaleReceipt,
    TransportClosed,
)
from conveyor.core.journal import ExceptionInfo, RecordKind
from conveyor.core.lifecycle import Plan, ResolvedPolicy, expire, not_acknowledged, reject
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.core.routing import Router
from conveyor.core.wire import BUS_COMMAND, BUS_EVENT, Delivery, Envelope, H, read_envelope
from conveyor.drivers import deliveries
from conveyor.drivers.channel_runtime import ChannelRuntime
from conveyor.drivers.dispatch import Dispatch
from conveyor.drivers.outgoing import Outgoing
from conveyor.drivers.plans import Consumed, PlanExecutor
from conveyor.drivers.policies import bus_retry
from conveyor.drivers.recording import Recorder
from conveyor.drivers.rejections import (
    Refusal,
    addressee,
    refused_payload,
    wrong_payload,
)
from conveyor.drivers.stack import Attempt, StackParts
from conveyor.stores.deduplication import Deduplication

__all__ = ["Consumption", "Outcome", "Bound"]


@dataclass(frozen=True, slots=True)
class Bound:
    """An endpoint as consumed from one of its channels: its handler, policy there and stack."""

    spec: HandlerSpec
    policy: ResolvedPolicy
    stack: Callable[[Attempt], object]


class Consumption:
    """Runs deliveries of one ``Messaging`` through the consumption stack."""

    __slots__ = (
        "_bound",
        "_bus_retry",
        "_channels",
        "_clock",
        "_deduplication",
        "_dispatch",
        "_endpoints",
        "_executor",
        "_outgoing",
        "_parts",
        "_recorder",
        "_router",
    )

    def __init__(
        self,
        *,
        channels: Mapping[str, ChannelRuntime],
        endpoints: Mapping[str, HandlerSpec],
        router: Router,
        clock: Clock,
        recorder: Recorder,
        outgoing: Outgoing,
        dispatch: Dispatch,
        stacks: Mapping[str, Callable[[Attempt], object]],
        parts: StackParts,
        policies: Mapping[tuple[str, str], ResolvedPolicy],
        bus_retry: RetryPolicy | None,
        deduplication: Deduplication | None,
        executor: PlanExecutor,
    ) -> None:
        self._channels = channels
        self._endpoints = endpoints
        self._router = router
        self._clock = clock
        self._recorder = recorder
        self._outgoing = outgoing
        self._dispatch = dispatch
        self._parts = parts
        self._bus_retry = bus_retry
        self._deduplication = deduplication
        self._executor = executor
        self._bound = {
            (spec.endpoint_id, channel): Bound(
                spec, policies[(spec.endpoint_id, channel)], stacks[spec.endpoint_id]
            )
            for spec in endpoints.values()
            if spec.endpoint_id not in (BUS_COMMAND, BUS_EVENT)
            for channel in spec.channels
        }

    def consume(
        self, runtime: ChannelRuntime, delivery: Delivery, *, stop_on_failure: bool = False
    ) -> Outcome:
        """Take one delivery to a decision; only an unreachable transport raises.

        With ``stop_on_failure`` a handler's failure is re-raised after the delivery is released
        (fail-fast runs and tests).
        """
        try:
            return self._consume(runtime, delivery, stop_on_failure)
        except (ConnectionFailed, TransportClosed):
            raise
        except StaleReceipt as stale:
            # Another consumer holds (or settled) the message since this lease ran out: what
            # this consumer did is not acknowledged, and the message comes (or came) again.
            deliveries.record_stale(
                self._recorder.journal, self._clock.now(), runtime.name, delivery, stale
            )
            return Outcome.STALE

    def _consume(
        self, runtime: ChannelRuntime, delivery: Delivery, stop_on_failure: bool
    ) -> Outcome:
        recorder = self._recorder
        if delivery.delivery_count > 1 or recorder.journal.deliveries:  # Recorder.received, inline
            recorder.delivered(runtime.name, delivery)
        wire = delivery.message.headers
        try:
            envelope = read_envelope(wire, max_priority=runtime.max_priority)
        except SerializationError as error:
            consumed = Consumed(runtime, delivery, endpoint_id=wire.get(H.ENDPOINT))
            return self._reject(consumed, "malformed headers", error)
        now = self._clock.now()  # read once: routing and the expiry check see the same instant
        # A ``Consumed`` is made only on the way to a plan or another route: the common delivery,
        # handled and acknowledged, never needs one.
        try:
            # The common delivery, in one lookup: a due copy for an endpoint bound to this
            # channel, in no channel sequence (what route_of and addressee would find).
            bound = self._bound.get((envelope.endpoint, runtime.name))
            not_before = envelope.not_before
            if bound is None or envelope.slip or (not_before is not None and not_before > now):
                return self._elsewhere(runtime, delivery, envelope, now)
            spec = bound.spec
            message = deliveries.decode(runtime.codec, delivery, envelope)
            if not isinstance(message, Message):
                return self._reject(_readable(runtime, delivery, envelope), *message)
            if spec.message_types and not isinstance(message.payload, spec.message_types):
                # not rejections.handles(spec, payload), which this is without its call
                refusal = wrong_payload(spec, message.payload)
                return self._reject(
                    _readable(runtime, delivery, envelope), refusal.reason, None, refusal.detail
                )
        except (ConnectionFailed, TransportClosed, StaleReceipt):
            raise
        except Exception as error:  # a kernel or codec bug must not stop the consumer either
            return self._reject(_readable(runtime, delivery, envelope), "unreadable", error)
        return self._handle(runtime, delivery, envelope, bound, message, now, stop_on_failure)

    def _elsewhere(
        self, runtime: ChannelRuntime, delivery: Delivery, envelope: Envelope, now: datetime
    ) -> Outcome:
        """Any other delivery: the next step of a channel sequence, a copy back early, a message
        of an asynchronous bus, or one that no handler here may take."""
        consumed = _readable(runtime, delivery, envelope)
        route = deliveries.route_of(envelope, now)
        if route == "forward":
            return self._forward(consumed, envelope)
        if route == "hold":
            return self._hold(consumed, envelope)
        spec = addressee(
            envelope.endpoint, to_bus=route == "bus", channel=runtime.name,
            bus_channel=runtime.bus, endpoints=self._endpoints,
        )  # fmt: skip
        if spec is None:
            return self._route_on_bus(consumed, envelope)
        assert isinstance(spec, Refusal), "a bound endpoint's due copy is handled in _consume"
        return self._reject(consumed, spec.reason, None, spec.detail)

    # ---------------------------------------------------------------- reading

    def _decode(self, consumed: Consumed, envelope: Envelope) -> Message | Outcome:
        decoded = deliveries.decode(consumed.runtime.codec, consumed.delivery, envelope)
        if isinstance(decoded, Message):
            return decoded
        return self._reject(consumed, *decoded)

    def _reject(
        self, consumed: Consumed, reason: str, error: Exception | None, detail: str = ""
    ) -> Outcome:
        detail = detail or reason
        info = ExceptionInfo.capture(error) if error is not None else None
        plan = reject(reason, detail, info, consumed.attempt)
        return self._execute(plan, consumed)

    # ---------------------------------------------------------------- handling

    def _handle(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope,
        bound: Bound,
        message: Message,
        now: datetime,
        stop_on_failure: bool,
    ) -> Outcome:
        spec, policy = bound.spec, bound.policy
        if envelope.expires_at is not None and envelope.expires_at <= now:
            plan = expire(
                envelope.expires_at,
                dead_letter_expired=runtime.definition.dead_letter_expired,
                attempt=message.headers.attempt,
            )
            return self._execute(
                plan, Consumed(runtime, delivery, envelope, message, spec.endpoint_id)
            )
        attempt = Attempt(self._parts, runtime.name, spec, message, None, policy)
        if self._deduplication is not None:
            refused = self._refused_duplicate(
                Consumed(runtime, delivery, envelope, message, spec.endpoint_id),
                attempt,
                now,
                stop_on_failure,
            )
            if refused is not None:
                return refused
        try:
            bound.stack(attempt)
        except NotAcknowledged:
            plan = not_acknowledged(runtime.definition.lease, self._clock.now())
            return self._execute(
                plan, Consumed(runtime, delivery, envelope, message, spec.endpoint_id)
            )
        except Exception as error:
            # raised outside the handler (a layer or an outer interceptor): record it once
            self._recorder.failure(
                attempt.state, message, endpoint_id=spec.endpoint_id, channel=runtime.name,
                error=error,
            )  # fmt: skip
            consumed = Consumed(runtime, delivery, envelope, message, spec.endpoint_id)
            return self._failed(consumed, policy, error, stop_on_failure)
        runtime.transport.ack(delivery)
        return Outcome.HANDLED

    def _refused_duplicate(
        self, consumed: Consumed, attempt: Attempt, now: datetime, stop_on_failure: bool
    ) -> Outcome | None:
        """With deduplication on: set the attempt's key, and refuse a copy already handled.

        None lets the delivery through to the stack; an outcome is the duplicate's (acknowledged
        as such), or that of a key function or a store that failed.
        """
        runtime, spec, message = consumed.runtime, attempt.spec, attempt.message
        try:
            dedup_key = deliveries.dedup_key(self._deduplication, spec, message)
        except Exception as key_error:  # the handler's key function: the message's failure
            self._recorder.failure(
                attempt.state,
                message,
                endpoint_id=spec.endpoint_id,
                channel=runtime.name,
                error=key_error,
                detail="@deduplicated key",
            )
            return self._failed(consumed, attempt.policy, key_error, stop_on_failure)
        attempt.dedup_key = dedup_key
        deduplication = self._deduplication
        if dedup_key is None or deduplication is None:
            return None
        try:
            seen = deduplication.store.contains(spec.dedup_scope, dedup_key, now=now)
        except Exception as store_error:
            return self._store_failed(consumed, store_error, "deduplication store")
        if not seen:
            return None
        self._recorder.message(
            RecordKind.DUPLICATE,
            message,
            endpoint_id=spec.endpoint_id,
            channel=runtime.name,
            attempt=message.headers.attempt,
            detail=deliveries.tracking_detail(spec),
        )
        runtime.transport.ack(consumed.delivery)
        return Outcome.DUPLICATE

    def _failed(
        self,
        consumed: Consumed,
        policy: ResolvedPolicy,
        error: Exception,
        stop_on_failure: bool,
    ) -> Outcome:
        if stop_on_failure:
            consumed.runtime.transport.release(consumed.delivery)
            raise error
        now = self._clock.now()
        plan = deliveries.failure_plan(consumed, policy, error, self._executor.random, now)
        return self._execute(plan, consumed, policy=policy, error=error)

    def _store_failed(self, consumed: Consumed, error: Exception, what: str) -> Outcome:
        return self._execute(deliveries.store_failed_plan(error, what), consumed)

    def _execute(
        self,
        plan: Plan,
        consumed: Consumed,
        *,
        policy: ResolvedPolicy | None = None,
        error: BaseException | None = None,
    ) -> Outcome:
        try:
            return self._executor.execute(plan, consumed, policy=policy, error=error)
        except (ConnectionFailed, TransportClosed, StaleReceipt):
            raise
        except Exception as raised:
            if error is not None and raised is error:  # final_failure="stop" re-raises it
                raise
            # Carrying out the plan failed (a dead-letter store that is down, say): nothing
            # was acknowledged, so give the delivery back to come again.
            consumed.runtime.transport.release(
                consumed.delivery, available_at=self._clock.now() + deliveries.STORE_RETRY
            )
            deliveries.log_undone(consumed, raised)
            return Outcome.RELEASED

    # ---------------------------------------------------------------- other outcomes

    def _forward(self, consumed: Consumed, envelope: Envelope) -> Outcome:
        """A channel sequence: move the message on to the next channel, unchanged otherwise."""
        runtime, delivery = consumed.runtime, consumed.delivery
        next_channel, wire, more = deliveries.forwarded(delivery, envelope)
        target = self._channels.get(next_channel)
        if target is None:
            return self._reject(consumed, "unknown channel", None)
        target.transport.send(
            next_channel,
            wire,
            available_at=None if more else self._outgoing.held_until(target, envelope.not_before),
            priority=envelope.priority,
            expires_at=envelope.expires_at,
        )
        self._recorder.journal.append(
            self._clock.now(),
            RecordKind.FORWARDED,
            envelope.headers.id,
            envelope.type_name,
            channel=next_channel,
            endpoint_id=envelope.endpoint,
            detail=f"from {runtime.name}",
            causation_id=envelope.headers.causation_id,
        )
        runtime.transport.ack(delivery)
        return Outcome.FORWARDED

    def _hold(self, consumed: Consumed, envelope: Envelope) -> Outcome:
        """A message back early from a broker's maximum delay: send it on for the rest."""
        runtime, delivery = consumed.runtime, consumed.delivery
        runtime.transport.send(
            runtime.name,
            delivery.message,
            available_at=self._outgoing.held_until(runtime, envelope.not_before),
            priority=envelope.priority,
            expires_at=envelope.expires_at,
        )
        runtime.transport.ack(delivery)
        return Outcome.HELD

    def _route_on_bus(self, consumed: Consumed, envelope: Envelope) -> Outcome:
        """An asynchronous bus message: decode, then route it as the plain bus would."""
        runtime, delivery = consumed.runtime, consumed.delivery
        decoded = self._decode(consumed, envelope)
        if isinstance(decoded, Outcome):
            return decoded
        message = Message(decoded.payload, envelope.headers, envelope.routing_key)
        consumed = Consumed(runtime, delivery, envelope, message, envelope.endpoint)
        command: HandlerSpec | None = None
        if envelope.endpoint == BUS_COMMAND:
            try:
                command = self._router.command(type(message.payload), envelope.routing_key)
            except NoHandlerError as error:
                return self._reject(consumed, "unroutable", error, "unroutable: no handler")
            refusal = refused_payload(command, message.payload)
            if refusal is not None:
                return self._reject(consumed, refusal.reason, None, refusal.detail)
        try:
            self._dispatch.collected(
                message,
                envelope.endpoint,
                runtime.name,
                lambda: self._route(command, envelope, message, runtime.name),
            )
        except Exception as error:
            retry = bus_retry(runtime, self._bus_retry)
            now = self._clock.now()
            plan = deliveries.bus_failure_plan(consumed, retry, error, self._executor.random, now)
            return self._execute(plan, consumed)
        runtime.transport.ack(delivery)
        return Outcome.HANDLED

    def _route(
        self, command: HandlerSpec | None, envelope: Envelope, message: Message, channel: str
    ) -> None:
        payload = message.payload
        if command is not None:
            if command.is_async:
                self._outgoing.queue_copy(command, message, NO_OPTIONS)
            else:
                self._dispatch.call_handler(command, message, channel)
        else:
            self._dispatch.publish_to(
                self._router.events(type(payload), envelope.routing_key), message, NO_OPTIONS
            )


def _readable(runtime: ChannelRuntime, delivery: Delivery, envelope: Envelope) -> Consumed:
    """A delivery whose envelope could be read, for a plan or a route other than its handler."""
    return Consumed(runtime, delivery, envelope, endpoint_id=envelope.endpoint)
