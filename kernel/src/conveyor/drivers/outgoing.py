"""Outgoing copies: a message on its way to an asynchronous endpoint's channel.

A copy is encoded once, with the codec of the last channel of its sequence (its consumer decodes it
there), and handed to the innermost collecting scope (``conveyor.core.collector``), which sends it
on only when the work that produced it succeeds; outside any collecting scope it goes to its channel
at once. Sending to a transport records QUEUED in the journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from conveyor.core.clock import Clock
from conveyor.core.collector import PendingSend, Scope
from conveyor.core.delivery import DeliveryOptions
from conveyor.core.errors import RoutingError, SendFailed
from conveyor.core.journal import RecordKind
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.core.wire import WireMessage, to_wire_headers
from conveyor.drivers.channel_runtime import AnyRuntime, ChannelRuntime
from conveyor.drivers.recording import Recorder
from conveyor.drivers.scopes import Scopes
from conveyor.transports.dynamic import VIA

__all__ = ["Outgoing", "held_until", "pending_copy", "record_queued", "send_again_after"]


class Outgoing:
    """The sending side of one ``Messaging``: copies for endpoints, held or transmitted."""

    __slots__ = ("_channels", "_clock", "_recorder", "_scopes")

    def __init__(
        self,
        channels: Mapping[str, ChannelRuntime],
        clock: Clock,
        scopes: Scopes,
        recorder: Recorder,
    ) -> None:
        self._channels = channels
        self._clock = clock
        self._scopes = scopes
        self._recorder = recorder

    def queue_copy(self, spec: HandlerSpec, message: Message, options: DeliveryOptions) -> None:
        """A copy of ``message`` for the asynchronous handler ``spec``, on its first channel."""
        self.put(  # ``enqueue``, one call less: every asynchronous handler's copy comes here
            pending_copy(
                self._channels,
                spec.channels[0],
                spec.endpoint_id,
                message,
                spec.channels[1:],
                options.for_handler(spec, self._clock, message.payload),
            )
        )

    def enqueue(
        self,
        channel: str,
        endpoint: str,
        message: Message,
        slip: tuple[str, ...],
        options: DeliveryOptions,
    ) -> None:
        """Encode a copy for ``endpoint`` (the rest of its sequence in ``slip``) and put it."""
        self.put(pending_copy(self._channels, channel, endpoint, message, slip, options))

    def put(self, pending: PendingSend) -> None:
        """Hand a message copy to the innermost collecting scope, or to its channel."""
        scope = self._scopes.current()
        collector = scope.collector() if scope is not None else None
        if collector is not None:
            collector.buffer.append(pending)
        else:
            self.transmit(pending)

    def flush(self, scope: Scope) -> None:
        """Send what a succeeded scope held, in order."""
        buffer, scope.buffer = scope.buffer, []
        for index, pending in enumerate(buffer):
            try:
                self.transmit(pending)
            except BaseException:  # what did not leave says so; the attempt fails
                for unsent in buffer[index:]:
                    self._recorder.unsent(unsent)
                raise

    def discard(self, scope: Scope) -> None:
        """Drop what a failed scope held, with an UNSENT record for each copy."""
        buffer, scope.buffer = scope.buffer, []
        for pending in buffer:
            self._recorder.unsent(pending)

    def transmit(self, pending: PendingSend) -> None:
        runtime = self._channels[pending.channel]
        try:
            self._send(runtime, pending)
        except Exception as error:
            send_retry = runtime.definition.send_retry
            if send_retry is None:
                raise
            attempt = 1
            while True:  # the channel's send_retry: again after its delays, or SendFailed
                self._clock.sleep(send_again_after(send_retry, error, attempt, pending))
                attempt += 1
                try:
                    self._send(runtime, pending)
                    break
                except Exception as again:
                    error = again
        record_queued(self._recorder, pending, via=runtime.router is not None)

    def _send(self, runtime: ChannelRuntime, pending: PendingSend) -> None:
        due = pending.available_at
        runtime.transport.send(
            pending.channel,
            pending.wire,
            # ``held_until`` only where it can change ``due``: most sends have no delay, and
            # most transports no maximum delay.
            available_at=due
            if due is None or runtime.max_delay is None
            else self.held_until(runtime, due),
            priority=pending.priority,
            expires_at=pending.expires_at,
        )

    def held_until(self, runtime: AnyRuntime, due: datetime | None) -> datetime | None:
        """The broker's not-before time: ``due``, or as far as the broker holds delays.

        A broker with a maximum delay (SQS: 15 minutes) gets the message back early; its
        consumer sees ``cv-not-before`` in the future and sends it on for the rest of the delay.
        """
        if due is None or runtime.max_delay is None:
            return due  # no clock read where there is nothing to cap
        return held_until(runtime, due, self._clock.now())


def held_until(runtime: AnyRuntime, due: datetime | None, now: datetime) -> datetime | None:
    """``due``, or ``now`` plus the broker's maximum delay when that comes first."""
    maximum = runtime.max_delay
    if due is None or maximum is None:
        return due
    return min(due, now + maximum)


def pending_copy(
    channels: Mapping[str, AnyRuntime],
    channel: str,
    endpoint: str,
    message: Message,
    slip: tuple[str, ...],
    options: DeliveryOptions,
) -> PendingSend:
    """A copy for ``endpoint`` on ``channel``, encoded for the last channel of its sequence."""
    final = channels[slip[-1] if slip else channel]
    body, type_name = final.codec.encode(message.payload)  # its consumer decodes it
    headers = to_wire_headers(
        message.headers,
        type_name=type_name,
        content_type=final.codec.content_type,
        endpoint=endpoint,
        slip=slip,
        routing_key=message.routing_key,
        expires_at=options.expires_at,
        not_before=options.available_at,
        priority=options.priority,
    )
    router = channels[channel].router
    if router is not None:  # a dynamic channel: its strategy places the copy now, at send
        headers[VIA] = router.route(channel, headers)
    wire = WireMessage(body, headers)
    if options.available_at is not None and not final.transport.capabilities.delay:
        raise RoutingError(
            f"a delay (delay=, at= or @delayed) was asked for {message.type_name}, but channel "
            f"{final.name!r} ({type(final.transport).__qualname__}) cannot hold delayed "
            f"messages, so it would be delivered at once; send without a delay or use a "
            f"channel whose transport declares delay."
        )
    if options.priority and not final.transport.capabilities.priority:
        raise RoutingError(
            f"priority={options.priority} was asked for {message.type_name}, but channel "
            f"{final.name!r} ({type(final.transport).__qualname__}) does not honour "
            f"priority; send without priority or use a channel that declares it."
        )
    return PendingSend(
        channel,
        wire,
        message,
        endpoint,
        None if slip else options.available_at,  # a sequence is delayed at its end
        options.priority,
        options.expires_at,
    )


def record_queued(recorder: Recorder, pending: PendingSend, *, via: bool = False) -> None:
    """Journal a copy handed to its channel's transport, with what is left of its delay."""
    delay = (pending.available_at - recorder.clock.now()) if pending.available_at else None
    recorder.message(
        RecordKind.QUEUED,
        pending.message,
        endpoint_id=pending.endpoint_id,
        channel=pending.channel,
        delay=delay if delay and delay > timedelta(0) else None,
        attempt=pending.message.headers.attempt,
        via=pending.wire.headers.get(VIA) if via else None,
        wire=pending.wire,
    )


def send_again_after(
    retry: RetryPolicy, error: Exception, attempt: int, pending: PendingSend
) -> float:
    """Seconds to wait before sending ``pending`` again after its ``attempt``-th send failed.

    The channel's ``send_retry`` decides (its delays, attempts and exception filter); when it is
    spent, :class:`SendFailed` fails the handling attempt that sent the copy, never the consumer.
    """
    delay = retry.next_delay(error, attempt)
    if delay is None:
        raise SendFailed(
            f"could not send {pending.message.type_name} to channel {pending.channel!r} after "
            f"{attempt} attempt(s): {type(error).__name__}: {error}; the handling attempt "
            f"fails and is retried by its endpoint's policy."
        ) from error
    return delay.total_seconds()
