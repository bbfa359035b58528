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

Layers 3 to 7 are ordered interceptors (``conveyor.stack``): a user interceptor can sit between
any two of them by its ``order``.

Messages that cannot be decoded, have an unknown type, or name no endpoint on this channel are
never dropped: they go to the dead-letter store with the reason, and the consumer moves on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from conveyor.delivery import NO_OPTIONS
from conveyor.errors import SerializationError
from conveyor.failure import Failure
from conveyor.journal import ExceptionInfo, RecordKind
from conveyor.message import Message
from conveyor.registry import HandlerSpec
from conveyor.retry import RetryPolicy
from conveyor.serialization import UnknownMessageType
from conveyor.stack import Attempt
from conveyor.transport import Delivery, WireMessage
from conveyor.wire import BUS_COMMAND, BUS_EVENT, Envelope, H, read_envelope

if TYPE_CHECKING:
    from conveyor.messaging import ChannelRuntime, Messaging

__all__ = ["Consumption", "Outcome"]


class Outcome(StrEnum):
    """What became of one delivery."""

    HANDLED = "handled"
    FORWARDED = "forwarded"
    RETRIED = "retried"
    ERROR_HANDLED = "error_handled"
    DEAD_LETTERED = "dead_lettered"
    REQUEUED = "requeued"
    DISCARDED = "discarded"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    HELD = "held"


class Consumption:
    """Runs deliveries of one ``Messaging`` through the consumption stack."""

    __slots__ = ("_messaging",)

    def __init__(self, messaging: Messaging) -> None:
        self._messaging = messaging

    def consume(
        self, runtime: ChannelRuntime, delivery: Delivery, *, stop_on_failure: bool = False
    ) -> Outcome:
        m = self._messaging
        try:
            envelope = read_envelope(delivery.message.headers)
        except SerializationError as error:
            return self._reject(runtime, delivery, None, "malformed headers", error)
        if envelope.slip:
            return self._forward(runtime, delivery, envelope)
        if envelope.not_before is not None and envelope.not_before > m.clock.now():
            return self._hold(runtime, delivery, envelope)
        if envelope.endpoint in (BUS_COMMAND, BUS_EVENT):
            return self._route_on_bus(runtime, delivery, envelope)
        spec = m.endpoints.get(envelope.endpoint)
        if spec is None or runtime.name not in spec.channels:
            return self._reject(runtime, delivery, envelope, "no endpoint", None)
        try:
            payload = runtime.codec.decode(delivery.message.body, envelope.type_name)
        except UnknownMessageType as error:
            return self._reject(runtime, delivery, envelope, "unknown type", error)
        except SerializationError as error:
            return self._reject(runtime, delivery, envelope, "undecodable", error)
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
            return self._resolve_failure(runtime, delivery, envelope, spec, message, key_error)
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
        return self._resolve_failure(runtime, delivery, envelope, spec, message, failure)

    # ---------------------------------------------------------------- the stack

    def _attempt(
        self, runtime: ChannelRuntime, spec: HandlerSpec, message: Message, dedup_key: str | None
    ) -> Exception | None:
        """Run the handling stack (``conveyor.stack``); return the failure, if any."""
        m = self._messaging
        try:
            m.dispatch.stacks[spec.endpoint_id](Attempt(m, runtime, spec, message, dedup_key))
        except Exception as error:
            # raised outside the handler
            m.dispatch.record_failure(spec, message, runtime.name, error)
            return error
        return None

    def _resolve_failure(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope,
        spec: HandlerSpec,
        message: Message,
        error: Exception,
    ) -> Outcome:
        """Delayed retry, then error handler, then dead letter, then the final strategy."""
        m = self._messaging
        now = m.clock.now()
        attempt = message.headers.attempt
        policy = spec.retry or runtime.definition.retry or m.retry
        if self._retry_later(runtime, delivery, envelope, message, spec.endpoint_id, policy, error):
            return Outcome.RETRIED
        handler = (
            m._endpoint_error_handlers.get(spec.endpoint_id)
            or m._channel_error_handlers.get(runtime.name)
            or m.error_handler
        )
        if handler is not None and handler.endpoint_id != spec.endpoint_id:
            handler_error = self._give_to_error_handler(
                handler, runtime, delivery, envelope, spec, message, error
            )
            if handler_error is None:
                m._record(
                    RecordKind.ERROR_HANDLED,
                    message,
                    endpoint_id=spec.endpoint_id,
                    channel=runtime.name,
                    attempt=attempt,
                    exception=ExceptionInfo.capture(error),
                    detail=handler.endpoint_id,
                )
                runtime.transport.ack(delivery)
                return Outcome.ERROR_HANDLED
            # The message's own failure stays the one on record; the error handler's is noted.
            reason = (
                f"failed; error handler {handler.endpoint_id} raised "
                f"{ExceptionInfo.capture(handler_error)}"
            )
        else:
            reason = "failed"
        dead_letter = _first_set(spec.dead_letter, runtime.definition.dead_letter, m.dead_letter)
        if dead_letter:
            self._store_letter(
                runtime,
                delivery,
                envelope,
                spec.endpoint_id,
                reason,
                ExceptionInfo.capture(error),
                attempt,
                message,
            )
            runtime.transport.ack(delivery)
            return Outcome.DEAD_LETTERED
        final = runtime.definition.final_failure
        if final == "stop":
            runtime.transport.release(delivery)
            raise error
        if final == "ignore":
            m._record(
                RecordKind.DISCARDED,
                message,
                endpoint_id=spec.endpoint_id,
                channel=runtime.name,
                attempt=attempt,
                exception=ExceptionInfo.capture(error),
                detail="final_failure='ignore'",
            )
            runtime.transport.ack(delivery)
            return Outcome.DISCARDED
        self._resend(runtime, delivery, envelope, attempt + 1, None, now)
        m._record(
            RecordKind.REQUEUED,
            message,
            endpoint_id=spec.endpoint_id,
            channel=runtime.name,
            attempt=attempt,
            exception=ExceptionInfo.capture(error),
        )
        runtime.transport.ack(delivery)
        return Outcome.REQUEUED

    def _give_to_error_handler(
        self,
        handler: HandlerSpec,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope,
        spec: HandlerSpec,
        message: Message,
        error: Exception,
    ) -> Exception | None:
        m = self._messaging
        info = ExceptionInfo.capture(error)
        failure = Failure(
            message_id=message.headers.id,
            channel=runtime.name,
            endpoint_id=spec.endpoint_id,
            message_type=envelope.type_name,
            payload=message.payload,
            headers=dict(delivery.message.headers),
            exception_type=info.qualified_name,
            exception_message=info.message,
            traceback=info.traceback,
            attempt=message.headers.attempt,
            failed_at=m.clock.now(),
            error=None if handler.is_async else error,
        )
        try:
            with (
                m._transaction(),
                m.outgoing.collecting(message, spec.endpoint_id, runtime.name) as scope,
            ):
                failure_message = m.dispatch.new_message(failure, None, None)
                if handler.is_async:
                    m.outgoing.queue_copy(handler, failure_message, NO_OPTIONS)
                else:
                    m.dispatch.call_handler(handler, failure_message, runtime.name)
                m.outgoing.flush(scope)
        except Exception as handler_error:
            return handler_error
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
            return self._reject(runtime, delivery, envelope, "unknown channel", None)
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
            return self._reject(runtime, delivery, envelope, "unknown type", error)
        except SerializationError as error:
            return self._reject(runtime, delivery, envelope, "undecodable", error)
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
            return self._bus_failure(runtime, delivery, envelope, message, error)
        runtime.transport.ack(delivery)
        return Outcome.HANDLED

    def _bus_failure(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope,
        message: Message,
        error: Exception,
    ) -> Outcome:
        """A message of an asynchronous bus failed: the channel's retry policy, then a letter.

        Its handlers ran as on the plain bus (their own policies apply only on their own
        channels), so the channel's and the Messaging's policies decide here.
        """
        m = self._messaging
        attempt = message.headers.attempt
        policy = runtime.definition.retry or m.retry
        if self._retry_later(
            runtime, delivery, envelope, message, envelope.endpoint, policy, error
        ):
            return Outcome.RETRIED
        self._store_letter(
            runtime,
            delivery,
            envelope,
            envelope.endpoint,
            "failed",
            ExceptionInfo.capture(error),
            attempt,
            message,
        )
        runtime.transport.ack(delivery)
        return Outcome.DEAD_LETTERED

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
            self._store_letter(
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

    def _reject(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope | None,
        reason: str,
        error: Exception | None,
    ) -> Outcome:
        """Set aside a message that cannot be handled here, with why; never drop it."""
        m = self._messaging
        wire = delivery.message.headers
        message_id = envelope.headers.id if envelope else wire.get(H.ID, delivery.receipt)
        type_name = envelope.type_name if envelope else wire.get(H.TYPE, "?")
        endpoint = envelope.endpoint if envelope else wire.get(H.ENDPOINT)
        detail = reason
        if reason == "no endpoint":
            known = [s.endpoint_id for s in m.handlers if runtime.name in s.channels]
            detail = (
                f"no endpoint {endpoint!r} on channel {runtime.name!r}; endpoints here: "
                f"{', '.join(known) or 'none'}"
            )
        info = ExceptionInfo.capture(error) if error is not None else None
        m.journal.append(
            m.clock.now(),
            RecordKind.REJECTED,
            message_id,
            type_name,
            channel=runtime.name,
            endpoint_id=endpoint,
            exception=info,
            detail=detail,
        )
        self._store_letter(
            runtime,
            delivery,
            envelope,
            endpoint,
            reason,
            info,
            envelope.headers.attempt if envelope else delivery.delivery_count,
            None,
            detail=detail,
            message_id=message_id,
            type_name=type_name,
        )
        runtime.transport.ack(delivery)
        return Outcome.REJECTED

    # ---------------------------------------------------------------- helpers

    def _retry_later(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope,
        message: Message,
        endpoint_id: str,
        policy: RetryPolicy | None,
        error: Exception,
    ) -> bool:
        """Send the copy back to its channel for a delayed retry, if the policy has one left."""
        m = self._messaging
        attempt = message.headers.attempt
        delay = policy.next_delay(error, attempt, m.random) if policy is not None else None
        if delay is None:
            return False
        now = m.clock.now()
        self._resend(runtime, delivery, envelope, attempt + 1, now + delay, now)
        m._record(
            RecordKind.RETRIED,
            message,
            endpoint_id=endpoint_id,
            channel=runtime.name,
            attempt=attempt,
            delay=delay,
            exception=ExceptionInfo.capture(error),
        )
        runtime.transport.ack(delivery)
        return True

    def _resend(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope,
        attempt: int,
        available_at: datetime | None,
        now: datetime,
    ) -> None:
        """Put a copy back on the channel it came from, for the same endpoint only."""
        headers = dict(delivery.message.headers)
        headers[H.ATTEMPT] = str(attempt)
        headers.setdefault(H.FIRST_FAILED_AT, now.isoformat())
        headers.pop(H.EXPIRES_AT, None)  # a retried message cannot expire by its original TTL
        if available_at is not None:  # a broker with a maximum delay may hand it back early
            headers[H.NOT_BEFORE] = available_at.isoformat()
        else:
            headers.pop(H.NOT_BEFORE, None)
        runtime.transport.send(
            runtime.name,
            WireMessage(delivery.message.body, headers),
            available_at=self._messaging.outgoing.held_until(runtime, available_at),
            priority=envelope.priority,  # a retried copy keeps its place among priorities
        )

    def _store_letter(
        self,
        runtime: ChannelRuntime,
        delivery: Delivery,
        envelope: Envelope | None,
        endpoint: str | None,
        reason: str,
        info: ExceptionInfo | None,
        attempts: int,
        message: Message | None,
        *,
        detail: str = "",
        message_id: str | None = None,
        type_name: str | None = None,
    ) -> None:
        m = self._messaging
        now = m.clock.now()
        letter_id = m.dead_letters.new_id(
            message_id or (envelope.headers.id if envelope else delivery.receipt),
            endpoint or runtime.name,
        )
        from conveyor.deadletter import DeadLetter

        letter = DeadLetter(
            id=letter_id,
            message_id=message_id or (envelope.headers.id if envelope else delivery.receipt),
            channel=runtime.name,
            endpoint_id=endpoint,
            message_type=type_name or (envelope.type_name if envelope else "?"),
            body=delivery.message.body,
            headers=dict(delivery.message.headers),
            reason=detail or reason,
            exception_type=info.qualified_name if info else None,
            exception_message=info.message if info else None,
            traceback=info.traceback if info else None,
            attempts=attempts,
            first_failed_at=(
                envelope.first_failed_at if envelope and envelope.first_failed_at else now
            ),
            last_failed_at=now,
            replayed=_replay_count(delivery.message.headers),
        )
        m.dead_letter_store.add(letter)
        if message is not None:
            m._record(
                RecordKind.DEAD_LETTERED,
                message,
                endpoint_id=endpoint,
                channel=runtime.name,
                attempt=attempts,
                exception=info,
                detail=f"{reason}; dead letter {letter_id}",
            )
        else:
            m.journal.append(
                now,
                RecordKind.DEAD_LETTERED,
                letter.message_id,
                letter.message_type,
                channel=runtime.name,
                endpoint_id=endpoint,
                attempt=attempts,
                exception=info,
                detail=f"{letter.reason}; dead letter {letter_id}",
            )

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


def _replay_count(wire: Mapping[str, str]) -> int:
    try:
        return max(int(wire.get(H.REPLAYED, "0")), 0)
    except ValueError:
        return 0


def _first_set(*values: bool | None) -> bool:
    for value in values:
        if value is not None:
            return value
    return False
