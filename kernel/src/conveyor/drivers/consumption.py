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

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from conveyor.core.clock import Clock
from conveyor.core.codec.serialization import UnknownMessageType
from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.errors import (
    ConnectionFailed,
    NoHandlerError,
    SerializationError,
    StaleReceipt,
    TransportClosed,
)
from conveyor.core.journal import ExceptionInfo, RecordKind
from conveyor.core.lifecycle import (
    Plan,
    Record,
    Release,
    ResolvedPolicy,
    after_bus_failure,
    after_failure,
    expire,
    reject,
)
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.core.routing import Router
from conveyor.core.wire import (
    BUS_COMMAND,
    BUS_EVENT,
    Delivery,
    Envelope,
    H,
    WireMessage,
    read_envelope,
)
from conveyor.drivers.channel_runtime import ChannelRuntime
from conveyor.drivers.dispatch import Dispatch
from conveyor.drivers.outgoing import Outgoing
from conveyor.drivers.plans import Consumed, PlanExecutor
from conveyor.drivers.policies import bus_retry
from conveyor.drivers.recording import Recorder
from conveyor.drivers.rejections import handles, no_endpoint, not_a_bus, wrong_type
from conveyor.drivers.stack import Attempt, StackParts
from conveyor.stores.deduplication import Deduplication

__all__ = ["Consumption", "Outcome"]

_LOG = logging.getLogger("conveyor")
_STORE_RETRY = timedelta(seconds=1)
"""How long a delivery whose store (deduplication, dead letters) failed waits to come back."""


class Consumption:
    """Runs deliveries of one ``Messaging`` through the consumption stack."""

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
        self._stacks = stacks
        self._parts = parts
        self._policies = policies
        self._bus_retry = bus_retry
        self._deduplication = deduplication
        self._executor = executor

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
            self._executor_record_stale(runtime, delivery, stale)
            return Outcome.STALE

    def _consume(
        self, runtime: ChannelRuntime, delivery: Delivery, stop_on_failure: bool
    ) -> Outcome:
        wire = delivery.message.headers
        try:
            envelope = read_envelope(wire, max_priority=runtime.max_priority)
        except SerializationError as error:
            consumed = Consumed(runtime, delivery, endpoint_id=wire.get(H.ENDPOINT))
            return self._reject(consumed, "malformed headers", error)
        consumed = Consumed(runtime, delivery, envelope, endpoint_id=envelope.endpoint)
        try:
            if envelope.slip:
                return self._forward(consumed, envelope)
            if envelope.not_before is not None and envelope.not_before > self._clock.now():
                return self._hold(consumed, envelope)
            if envelope.endpoint in (BUS_COMMAND, BUS_EVENT):
                if not runtime.bus:
                    return self._reject(consumed, "unroutable", None, not_a_bus(runtime.name))
                return self._route_on_bus(consumed, envelope)
            spec = self._endpoints.get(envelope.endpoint)
            if spec is None or runtime.name not in spec.channels:
                detail = no_endpoint(envelope.endpoint, runtime.name, self._endpoints.values())
                return self._reject(consumed, "no endpoint", None, detail)
            message = self._decode(consumed, envelope)
            if isinstance(message, Outcome):
                return message
            if not handles(spec, message.payload):
                detail = wrong_type(spec, message.payload)
                return self._reject(consumed, "wrong type for endpoint", None, detail)
            consumed = Consumed(runtime, delivery, envelope, message, spec.endpoint_id)
        except (ConnectionFailed, TransportClosed, StaleReceipt):
            raise
        except Exception as error:  # a kernel or codec bug must not stop the consumer either
            return self._reject(consumed, "unreadable", error)
        return self._handle(consumed, spec, envelope, message, stop_on_failure)

    # ---------------------------------------------------------------- reading

    def _decode(self, consumed: Consumed, envelope: Envelope) -> Message | Outcome:
        runtime, delivery = consumed.runtime, consumed.delivery
        try:
            payload = runtime.codec.decode(delivery.message.body, envelope.type_name)
        except UnknownMessageType as error:
            return self._reject(consumed, "unknown type", error)
        except SerializationError as error:
            return self._reject(consumed, "undecodable", error)
        headers = envelope.headers
        if delivery.delivery_count > 1 and headers.attempt < delivery.delivery_count:
            headers = headers.with_attempt(delivery.delivery_count)
        return Message(payload, headers, envelope.routing_key)

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
        consumed: Consumed,
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
            return self._execute(plan, consumed)
        policy = self._policies[(spec.endpoint_id, runtime.name)]
        attempt = Attempt(self._parts, runtime.name, spec, message, None, policy)
        try:
            dedup_key = self._dedup_key(spec, message)
        except Exception as key_error:  # the handler's key function: the message's failure
            self._recorder.failure(
                attempt.state,
                message,
                endpoint_id=spec.endpoint_id,
                channel=runtime.name,
                error=key_error,
                detail="@deduplicated key",
            )
            return self._failed(consumed, policy, key_error, stop_on_failure)
        attempt.dedup_key = dedup_key
        deduplication = self._deduplication
        if dedup_key is not None and deduplication is not None:
            try:
                seen = deduplication.store.contains(spec.endpoint_id, dedup_key, now=now)
            except Exception as store_error:
                return self._store_failed(consumed, store_error, "deduplication store")
            if seen:
                self._recorder.message(
                    RecordKind.DUPLICATE,
                    message,
                    endpoint_id=spec.endpoint_id,
                    channel=runtime.name,
                    attempt=message.headers.attempt,
                )
                runtime.transport.ack(consumed.delivery)
                return Outcome.DUPLICATE
        try:
            self._stacks[spec.endpoint_id](attempt)
        except Exception as error:
            # raised outside the handler (a layer or an outer interceptor): record it once
            self._recorder.failure(
                attempt.state, message, endpoint_id=spec.endpoint_id, channel=runtime.name,
                error=error,
            )  # fmt: skip
            return self._failed(consumed, policy, error, stop_on_failure)
        runtime.transport.ack(consumed.delivery)
        return Outcome.HANDLED

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
        assert consumed.message is not None
        assert consumed.endpoint_id is not None
        attempt = consumed.message.headers.attempt
        retry = policy.retry
        delay = retry.next_delay(error, attempt, self._executor.random) if retry else None
        plan = after_failure(
            policy,
            endpoint_id=consumed.endpoint_id,
            error=error,
            attempt=attempt,
            retry_delay=delay,
            wire=consumed.delivery.message.headers,
            now=self._clock.now(),
        )
        return self._execute(plan, consumed, policy=policy, error=error)

    def _store_failed(self, consumed: Consumed, error: Exception, what: str) -> Outcome:
        """A store the kernel needs failed: release the delivery to come back later."""
        plan = Plan(
            (
                Record(
                    RecordKind.RELEASED,
                    exception=ExceptionInfo.capture(error),
                    detail=f"{what} failed; released to come back",
                ),
                Release(),
            ),
            Outcome.RELEASED,
        )
        return self._execute(plan, consumed)

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
                consumed.delivery, available_at=self._clock.now() + _STORE_RETRY
            )
            _LOG.error(
                "could not carry out the decision for message %s on channel %s (%s); "
                "released it to come back",
                consumed.message_id,
                consumed.runtime.name,
                ExceptionInfo.capture(raised),
            )
            return Outcome.RELEASED

    def _executor_record_stale(
        self, runtime: ChannelRuntime, delivery: Delivery, stale: StaleReceipt
    ) -> None:
        self._recorder.journal.append(
            self._clock.now(),
            RecordKind.STALE,
            delivery.message.headers.get(H.ID, delivery.receipt),
            delivery.message.headers.get(H.TYPE, "?"),
            channel=runtime.name,
            endpoint_id=delivery.message.headers.get(H.ENDPOINT),
            detail="lease ran out before the handling finished; the message comes again",
        )
        _LOG.warning(
            "message %s on channel %s outlived its lease: %s",
            delivery.message.headers.get(H.ID, delivery.receipt),
            runtime.name,
            stale,
        )

    # ---------------------------------------------------------------- other outcomes

    def _forward(self, consumed: Consumed, envelope: Envelope) -> Outcome:
        """A channel sequence: move the message on to the next channel, unchanged otherwise."""
        runtime, delivery = consumed.runtime, consumed.delivery
        next_channel, rest = envelope.slip[0], envelope.slip[1:]
        headers = dict(delivery.message.headers)
        if rest:
            headers[H.SLIP] = ",".join(rest)
        else:
            headers.pop(H.SLIP, None)
        target = self._channels.get(next_channel)
        if target is None:
            return self._reject(consumed, "unknown channel", None)
        target.transport.send(
            next_channel,
            WireMessage(delivery.message.body, headers),
            available_at=None if rest else self._outgoing.held_until(target, envelope.not_before),
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
            if not handles(command, message.payload):
                detail = wrong_type(command, message.payload)
                return self._reject(consumed, "wrong type for endpoint", None, detail)
        try:
            self._dispatch.collected(
                message,
                envelope.endpoint,
                runtime.name,
                lambda: self._route(command, envelope, message, runtime.name),
            )
        except Exception as error:
            attempt = message.headers.attempt
            retry = bus_retry(runtime, self._bus_retry)
            delay = retry.next_delay(error, attempt, self._executor.random) if retry else None
            plan = after_bus_failure(
                error=error,
                attempt=attempt,
                retry_delay=delay,
                wire=delivery.message.headers,
                now=self._clock.now(),
            )
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

    def _dedup_key(self, spec: HandlerSpec, message: Message) -> str | None:
        if self._deduplication is None:
            return None
        rule = spec.deduplication
        if rule is None:
            return message.headers.id
        if rule.header is not None:
            value = message.headers.user.get(rule.header)
            return value if value is not None else message.headers.id
        if rule.key is not None:
            return rule.key(message.payload)
        return message.headers.id
