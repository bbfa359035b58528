"""What a RabbitMQ transport declares it honours, for each queue type (shared by sync and async)."""

from __future__ import annotations

from datetime import timedelta

from conveyor.core.errors import ConfigurationError, MessageTooLarge, TransportError
from conveyor.core.wire import WireMessage
from conveyor.transports.seam import Capabilities
from conveyor_rabbitmq.topology import MAX_DELAY, QueueType

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DELAY_PRECISION",
    "capabilities_for",
    "check_options",
    "check_size",
    "check_priority",
]

DEFAULT_MAX_SIZE = 128 * 1024 * 1024
"""RabbitMQ's default ``max_message_size`` (128 MiB): the broker refuses anything larger."""

DELAY_PRECISION = timedelta(milliseconds=100)
"""How late a delayed message may be: whole milliseconds, plus about 1 ms per hop of the ladder
(at most 32 hops): measured 1.5 to 3 ms per hop here, so 100 ms covers the longest path."""


def capabilities_for(
    queue_type: QueueType, max_priority: int | None, max_size: int
) -> Capabilities:
    """The honest declaration: durable, connection-held leases, ladder delays, FIFO queues."""
    return Capabilities(
        delay=True,
        max_delay=MAX_DELAY,
        delay_precision=DELAY_PRECISION,
        priority=queue_type == "classic" and max_priority is not None,
        max_priority=max_priority if queue_type == "classic" else None,
        ttl=False,  # the kernel checks cv-expires-at; RabbitMQ would drop expired messages silently
        ordering="fifo",
        max_size=max_size,
        durable=True,
        lease="connection",
        visibility="immediate",
        max_batch=None,
    )


def check_options(queue_type: str, max_priority: int | None, max_size: int) -> None:
    """Refuse a configuration RabbitMQ cannot honour, saying what to choose instead."""
    if queue_type not in ("quorum", "classic"):
        raise ConfigurationError(
            f"RabbitMQ queue_type={queue_type!r}; choose 'quorum' (replicated, counts "
            f"deliveries) or 'classic' (supports max_priority)."
        )
    if max_priority is not None:
        if queue_type != "classic":
            raise ConfigurationError(
                f"RabbitMQ quorum queues have no priorities before RabbitMQ 4.0, so "
                f"max_priority={max_priority} cannot be honoured; use queue_type='classic' "
                f"with max_priority, or drop max_priority."
            )
        if not 1 <= max_priority <= 255:
            raise ConfigurationError(
                f"RabbitMQ max_priority={max_priority}; x-max-priority must be between 1 and "
                f"255 (RabbitMQ recommends at most 10)."
            )
    if max_size < 1:
        raise ConfigurationError(f"RabbitMQ max_size={max_size} must be at least 1 byte.")


def check_size(message: WireMessage, channel: str, max_size: int) -> None:
    if message.size > max_size:
        raise MessageTooLarge(
            f"a message of {message.size} bytes (body plus headers) is over the {max_size} "
            f"bytes channel {channel!r} accepts on RabbitMQ; send a reference to the data "
            f"instead, or raise max_size (and the broker's max_message_size) together."
        )


def check_priority(priority: int, channel: str, max_priority: int | None) -> int | None:
    """The AMQP priority property for ``priority``, or None when it is the default 0."""
    if priority == 0:
        return None
    if max_priority is None or not 0 <= priority <= max_priority:
        levels = f"0 to {max_priority}" if max_priority is not None else "only 0"
        raise TransportError(
            f"priority {priority} on RabbitMQ channel {channel!r}, which takes {levels}; "
            f"use a classic queue with a higher max_priority, or a priority in range."
        )
    return priority
