"""Failure resolution: what becomes of a delivery whose handling failed.

These are layers 1 and 2 of the consumption stack (``conveyor.drivers.consumption`` lists them all)
once an attempt has failed, its instant retries are spent and its transaction is rolled back: a
delayed retry (the copy goes back to its channel, due later, while the retry policy has one left),
then the error handler (the endpoint's, the channel's or the Messaging's), then a dead letter
(``conveyor.drivers.dead_lettering``), then the channel's final failure strategy (resend, stop,
ignore). A message of an asynchronous bus, which has no endpoint of its own, gets the channel's
retry policy, then a letter.

They live apart from the entry because they run only when something went wrong: the entry stays
the short path every successful delivery takes, and the order of the fallbacks reads in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from conveyor.core.delivery import NO_OPTIONS
from conveyor.core.failure import Failure
from conveyor.core.journal import ExceptionInfo, RecordKind
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.core.wire import Envelope, H
from conveyor.drivers.dead_lettering import DeadLettering
from conveyor.transports.seam import Delivery, WireMessage

if TYPE_CHECKING:
    from conveyor.drivers.messaging import ChannelRuntime, Messaging

__all__ = ["FailureResolution"]


class FailureResolution:
    """Resolves the failed deliveries of one ``Messaging``'s consumers."""

    __slots__ = ("_letters", "_messaging")

    def __init__(self, messaging: Messaging, letters: DeadLettering) -> None:
        self._messaging = messaging
        self._letters = letters

    def resolve(
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
            self._letters.store_letter(
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

    def resolve_bus(
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
        self._letters.store_letter(
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


def _first_set(*values: bool | None) -> bool:
    for value in values:
        if value is not None:
            return value
    return False
