"""The ``ConveyorError`` tree.

Every error says what happened, what exists instead, and how to fix it. User exceptions raised
by handlers are never wrapped: they keep their type, message and traceback.
"""

from __future__ import annotations

__all__ = [
    "ConveyorError",
    "ConfigurationError",
    "RoutingError",
    "NoHandlerError",
    "SerializationError",
    "TransportError",
    "ConnectionFailed",
    "ChannelNotFound",
    "MessageTooLarge",
    "TransportClosed",
    "StaleReceipt",
    "ClockError",
    "InstantOutOfRange",
    "SettleError",
    "DeadLetterNotFound",
    "SendFailed",
    "MessageRejected",
    "NotAcknowledged",
]


class ConveyorError(Exception):
    """The root of every error Conveyor raises itself."""


class ConfigurationError(ConveyorError):
    """Raised when a ``Messaging`` is built from handlers, channels or options that cannot work."""


class RoutingError(ConveyorError):
    """A message cannot be routed as asked (for example an unmapped header value)."""


class NoHandlerError(RoutingError):
    """A command or query was sent and no handler is registered for it."""


class SerializationError(ConveyorError):
    """A payload could not be encoded or decoded. Keeps the raw bytes when decoding failed."""

    def __init__(self, message: str, *, raw: bytes | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class TransportError(ConveyorError):
    """A transport could not do what was asked."""


class ConnectionFailed(TransportError):
    """The broker could not be reached, or the connection was lost."""


class ChannelNotFound(TransportError):
    """A channel was used that the transport does not know and could not declare."""


class MessageTooLarge(TransportError):
    """A message is larger than the transport's declared maximum size."""


class StaleReceipt(TransportError):
    """An ack, release or renew named a lease that ran out and was given to another delivery.

    The message was (or will be) delivered again; the kernel records the stale settlement and the
    consumer goes on.
    """


class TransportClosed(TransportError):
    """The transport was used after ``close()``."""


class SendFailed(ConveyorError):
    """A copy could not be handed to its channel, even after the channel's ``send_retry``.

    Not a :class:`TransportError` on purpose: the transport that failed is the target's, not the
    consumer's own, so the handling attempt that sent it fails (and is retried as a whole, by
    its endpoint's policy) instead of stopping the consumer. The send's error is the cause.
    """


class MessageRejected(ConveyorError):
    """A handler refused its message (``ctx.reject(reason)``): it is not retried, and goes
    straight to the dead-letter store with the reason, whatever the endpoint's policy.

    For a message that can never succeed (a malformed order, a customer that does not exist):
    retrying it would only delay the dead letter it ends in.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAcknowledged(ConveyorError):
    """A handler on a channel with manual acknowledgement (``ack="manual"``) returned without
    ``ctx.ack()`` or ``ctx.reject(reason)``.

    Not a failure: raised by the kernel when the handler returns, so that the transaction rolls
    back and what the handler sent is discarded, like any unfinished work; the delivery is then
    given back to its channel and comes again once the channel's lease has passed, as a broker
    redelivers an unacknowledged message. Retries, error handlers and dead letters never see it.
    """


class ClockError(ConveyorError):
    """A clock was asked to do what clocks in Conveyor refuse (go backwards, naive times)."""


class InstantOutOfRange(ClockError):
    """A due time, an expiry or a clock would pass the latest instant Conveyor keeps.

    Every instant the kernel computes (a delay added to now, a time to live added to a due time,
    a virtual clock advanced) must be before :data:`conveyor.core.instants.LATEST` (year 9000):
    far enough for any real schedule, and far enough from ``datetime.max`` that leases and retry
    delays added to it never overflow.
    """


class SettleError(ConveyorError):
    """Settling did not reach a quiet state within its step limit (a runaway loop)."""


class DeadLetterNotFound(ConveyorError):
    """A dead letter was asked for by an id the store does not hold."""
