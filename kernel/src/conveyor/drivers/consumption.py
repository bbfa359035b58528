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

This module is the entry: it reads the envelope, forwards a channel sequence, routes an asynchronous
bus message, expires, refuses duplicates, runs the stack and acknowledges a success. Layers 3 to 7
are ordered interceptors (``conveyor.drivers.stack``): a user interceptor can sit between any two of
them by its ``order``. Layers 1 and 2 after a failure, from the delayed retry to the final strategy,
are in ``conveyor.drivers.failure_resolution``.

Messages that cannot be decoded, have an unknown type, or name no endpoint on this channel are never
dropped: they go to the dead-letter store with the reason (``conveyor.drivers.dead_lettering``), and
the consumer moves on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.core.codec.serialization import UnknownMessageType
from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.errors import SerializationError
from conveyor.core.journal import ExceptionInfo, RecordKind
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.registry import HandlerSpec
from conveyor.core.wire import BUS_COMMAND, BUS_EVENT, Envelope, H, read_envelope
from conveyor.drivers.dead_lettering import DeadLettering
from conveyor.drivers.failure_resolution import FailureResolution
from conveyor.drivers.stack import Attempt
from conveyor.transports.seam import Delivery, WireMessage

if TYPE_CHECKING:
    from conveyor.drivers.messaging import ChannelRuntime, Messaging

__all__ = ["Consumption", "Outcome"]


class Consumption:
    """Runs deliveries of one ``Messaging`` through the consumption stack."""

    __slots__ = ("_failures", "_letters", "_messaging")

    def __init__(self, messaging: Messaging) -> None:
        self._messaging = messaging
        self._letters = DeadLettering(messaging)
        self._failures = FailureResolution(messaging, self._letters)

    def consume(
        self, runtime: ChannelRuntime, delivery: Delivery, *, stop_on_failure: bool = False
    ) -> Outcome:
        m = self._messaging
        try:
            envelope = read_envelope(delivery.message.headers)
        except SerializationError as error:
            return self._letters.reject(runtime, delivery, None, "malformed headers", error)
        if envelope.slip:
            return self._forward(runtime, delivery, envelope)
        if envelope.not_before is not None and envelope.not_before > m.clock.now():
            return self._hold(runtime, delivery, envelope)
        if envelope.endpoint in (BUS_COMMAND, BUS_EVENT):
            return self._route_on_bus(runtime, delivery, envelope)
        spec = m.endpoints.get(envelope.endpoint)
        if spec is None or runtime.name not in spec.channels:
            return self._letters.reject(runtime, delivery, envelope, "no endpoint", None)
        try:
            payload = runtime.codec.decode(delivery.message.body, envelope.type_name)
        except UnknownMessageType as error:
            return self._letters.reject(runtime, delivery, envelope, "unknown type", error)
        except SerializationError as error:
            return self._letters.reject(runtime, delivery, envelope, "undecodable", error)
        headers = envelope.headers
        if delivery.delivery_count > 1 and headers.attempt < delivery.delivery_count:
            headers = headers.with_attempt(delivery.delivery_count)
        message = Message(payload, headers, envelope.routing_key)
        now = m.clock.now()
        if envelope.expires_at is not None and envelope.expires_at <= now:
            return self._expire(runtime, delivery, envelope, spec, message)
        try:
            dedup_key = self._dedup_key(spec, message)
        except Exception as key_error:  # the handler's key function: the message's failure
            m._record(
                RecordKind.FAILED,
                message,
                endpoint_id=spec.endpoint_id,
                channel=runtime.name,
                exception=ExceptionInfo.capture(key_error),
                attempt=headers.attempt,
                detail="@deduplicated key",
            )
            if stop_on_failure:
                runtime.transport.release(delivery)
                raise
            return self._failures.resolve(runtime, delivery, envelope, spec, message, key_error)
        if (
            dedup_key is not None
            and m.deduplication is not None
            and m.deduplication.store.contains(spec.endpoint_id, dedup_key, now=now)
        ):
            m._record(
                RecordKind.DUPLICATE,
                message,
                endpoint_id=spec.endpoint_id,
                channel=runtime.name,
                attempt=headers.attempt,
            )
            runtime.transport.ack(delivery)
            return Outcome.DUPLICATE
        failure = self._attempt(runtime, spec, message, dedup_key)
        if failure is None:
            runtime.transport.ack(delivery)
            return Outcome.HANDLED
        if stop_on_failure:
            runtime.transport.release(delivery)
            raise failure
        return self._failures.resolve(runtime, delivery, envelope, spec, message, failure)

    # ---------------------------------------------------------------- the stack

    def _attempt(
        self, runtime: ChannelRuntime, spec: HandlerSpec, message: Message, dedup_key: str | None
    ) -> Exception | None:
        """Run the handling stack (``conveyor.drivers.stack``); return the failure, if any."""
        m = self._messaging
        try:
            m.dispatch.stacks[spec.endpoint_id](Attempt(m, runtime, spec, message, dedup_key))
        except Exception as error:
            # raised outside the handler
            m.dispatch.record_failure(spec, message, runtime.name, error)
            return error
        return None

    # ---------------------------------------------------------------- other outcomes

    def _forward(self, runtime: ChannelRuntime, delivery: Delivery, envelope: Envelope) -> Outcome:
        """A channel sequence: move the message on to the next channel, unchanged otherwise."""
        m = self._messaging
        next_channel, rest = envelope.slip[0], envelope.slip[1:]
        headers = dict(delivery.message.headers)
        if rest:
            headers[H.SLIP] = ",".join(rest)
        else:
            headers.pop(H.SLIP, None)
        target = m.channels.get(next_channel)
        if target is None:
            return self._letters.reject(runtime, delivery, envelope, "unknown channel", None)
        target.transport.send(
            next_channel,
            WireMessage(delivery.message.body, headers),
            available_at=None if rest else m.outgoing.held_until(target, envelope.not_before),
            priority=envelope.priority,
            expires_at=envelope.expires_at,
        )
        m.journal.append(
            m.clock.now(),
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

    def _hold(self, runtime: ChannelRuntime, delivery: Delivery, envelope: Envelope) -> Outcome:
        """A message back early from a broker's maximum delay: send it on for the rest."""
        m = self._messaging
        runtime.transport.send(
            runtime.name,
            delivery.message,
            available_at=m.outgoing.held_until(runtime, envelope.not_before),
            priority=envelope.priority,
            expires_at=envelope.expires_at,
        )
        runtime.transport.ack(delivery)
        return Outcome.HELD

    def _route_on_bus(
        self, runtime: ChannelRuntime, delivery: Delivery, envelope: Envelope
    ) -> Outcome:
        """An asynchronous bus message: decode, then route it as the plain bus would."""
        m = self._messaging
        try:
            payload = runtime.codec.decode(delivery.message.body, envelope.type_name)
        except UnknownMessageType as error:
            return self._letters.reject(runtime, delivery, envelope, "unknown type", error)
        except SerializationError as error:
            return self._letters.reject(runtime, delivery, envelope, "undecodable", error)
        message = Message(payload, envelope.headers, envelope.routing_key)
        try:
            with (
                m._transaction(),
                m.outgoing.collecting(message, envelope.endpoint, runtime.name) as scope,
            ):
                if envelope.endpoint == BUS_COMMAND:
                    spec = m.router.command(type(payload), envelope.routing_key)
                    if spec.is_async:
                        m.outgoing.queue_copy(spec, message, NO_OPTIONS)
                    else:
                        m.dispatch.call_handler(spec, message, runtime.name)
                else:
                    m.dispatch.publish_to(
                        m.router.events(type(payload), envelope.routing_key), message, NO_OPTIONS
                    )
                m.outgoing.flush(scope)
        except Exception as error:
            return self._failures.resolve_bus(runtime, delivery, envelope, message, error)
        runtime.transport.ack(delivery)
        return Outcome.HANDLED

    def _expire(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope,
        spec: HandlerSpec,
        message: Message,
    ) -> Outcome:
        m = self._messaging
        m._record(
            RecordKind.EXPIRED,
            message,
            endpoint_id=spec.endpoint_id,
            channel=runtime.name,
            attempt=message.headers.attempt,
            detail=f"expired at {envelope.expires_at.isoformat() if envelope.expires_at else ''}",
        )
        if runtime.definition.dead_letter_expired:
            self._letters.store_letter(
                runtime,
                delivery,
                envelope,
                spec.endpoint_id,
                "expired",
                None,
                message.headers.attempt,
                message,
            )
        runtime.transport.ack(delivery)
        return Outcome.EXPIRED

    def _dedup_key(self, spec: HandlerSpec, message: Message) -> str | None:
        if self._messaging.deduplication is None:
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
