"""What this adapter declares on the broker: channel queues and the delay ladder. Pure values.

A channel is one durable queue with the channel's name, published to through the default
exchange. Its type is chosen per transport (see :data:`QueueType`):

- ``"quorum"`` (the default): replicated, durable by construction, and the broker counts
  deliveries (``x-delivery-count``), so a message that kills its consumer is seen to come back
  with a growing count. RabbitMQ 3.x quorum queues have no priorities.
- ``"classic"``: a durable classic queue with ``x-max-priority``, so priorities are honoured; the
  broker only flags a redelivery, so a redelivery after a lost connection counts as the second.

Delays without the delayed-message plugin (Debian's RabbitMQ 3.10 has none) use a ladder of
:data:`LEVELS` wait queues, one per power of two of milliseconds, in the manner of NServiceBus
and kombu's native delayed delivery. Level ``k`` is a topic exchange and a queue whose
``x-message-ttl`` is ``2**k`` ms and whose dead-letter exchange is level ``k - 1``. A delayed
message is published to the top level with a routing key that spells the delay in binary, one
word per level, followed by the target queue's name in hex. At each level the exchange routes
the message into the level's queue when that bit is 1 (it waits ``2**k`` ms there, then is
dead-lettered down) or straight on to the next level's exchange when it is 0. Below level 0 the
deliver exchange routes it into the target queue through a binding made when the channel is
declared. Every level queue holds messages of one TTL only, so RabbitMQ's head-of-queue expiry
is exact; the delay is kept to the millisecond, plus about a millisecond per 1-bit for each hop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from conveyor.core.errors import ConfigurationError

__all__ = [
    "QueueType",
    "LEVELS",
    "MAX_DELAY",
    "DELIVER_EXCHANGE",
    "MAX_NAME_BYTES",
    "Level",
    "queue_arguments",
    "delay_levels",
    "top_exchange",
    "delay_routing_key",
    "deliver_binding_key",
    "delay_milliseconds",
    "check_channel_name",
]

QueueType = Literal["quorum", "classic"]

LEVELS = 32
"""Levels of the delay ladder: delays up to 2**32 - 1 ms (49.7 days) in one pass."""

MAX_DELAY = timedelta(milliseconds=2**LEVELS - 1)
"""The longest delay the ladder holds; the kernel sends longer delays on when they come back."""

DELIVER_EXCHANGE = "conveyor.delay.deliver"
"""Where a message leaves the ladder: bound to each channel's queue by its hex name."""

MAX_NAME_BYTES = (255 - 2 * LEVELS) // 2
"""A routing key holds 255 bytes: the delay's 32 words and dots, then the name in hex."""

_TOP = LEVELS - 1


@dataclass(frozen=True, slots=True)
class Level:
    """One rung of the delay ladder: an exchange, a queue, and where each routes.

    Attributes:
        exchange: the level's topic exchange (and its queue's name).
        ttl_ms: how long a message waits in the level's queue.
        arguments: the queue's arguments.
        into_queue: the binding pattern that routes a message with this bit set into the queue.
        onward: the binding pattern that routes a message with this bit unset to ``next``.
        next: the exchange below (the next level's, or the deliver exchange).
    """

    exchange: str
    ttl_ms: int
    arguments: dict[str, object] = field(hash=False, compare=False)
    into_queue: str
    onward: str
    next: str


def queue_arguments(queue_type: QueueType, max_priority: int | None) -> dict[str, object]:
    """The ``queue.declare`` arguments of a channel's queue."""
    if queue_type == "quorum":
        return {"x-queue-type": "quorum"}
    arguments: dict[str, object] = {"x-queue-type": "classic"}
    if max_priority is not None:
        arguments["x-max-priority"] = max_priority
    return arguments


def delay_levels(queue_type: QueueType) -> list[Level]:
    """The ladder's levels from the top (where delayed messages enter) down to level 0.

    Each queue type has its own ladder (queues of one name cannot have two types); quorum
    levels dead-letter at least once, so a delayed message survives a crash mid-hop.
    """
    levels = []
    for k in range(_TOP, -1, -1):
        exchange = _level_name(queue_type, k)
        below = _level_name(queue_type, k - 1) if k > 0 else DELIVER_EXCHANGE
        arguments: dict[str, object] = {
            "x-queue-type": queue_type,
            "x-message-ttl": 2**k,
            "x-dead-letter-exchange": below,
        }
        if queue_type == "quorum":
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
        prefix = "*." * (_TOP - k)
        levels.append(
            Level(
                exchange=exchange,
                ttl_ms=2**k,
                arguments=arguments,
                into_queue=f"{prefix}1.#",
                onward=f"{prefix}0.#",
                next=below,
            )
        )
    return levels


def top_exchange(queue_type: QueueType) -> str:
    """Where a delayed message is published."""
    return _level_name(queue_type, _TOP)


def delay_routing_key(delay_ms: int, queue: str) -> str:
    """The routing key that carries ``queue``'s message ``delay_ms`` down the ladder."""
    bits = format(delay_ms, f"0{LEVELS}b")
    return ".".join(bits) + "." + queue.encode().hex()


def deliver_binding_key(queue: str) -> str:
    """The deliver exchange's binding for ``queue``: any delay, then the queue's hex name."""
    return "*." * LEVELS + queue.encode().hex()


def delay_milliseconds(delay: timedelta) -> int:
    """Whole milliseconds to wait, rounded up (a message is never early), at most the ladder's."""
    unit = timedelta(milliseconds=1)
    whole: int = delay // unit
    ms = whole + (1 if delay % unit else 0)
    return int(max(0, min(ms, 2**LEVELS - 1)))


def check_channel_name(name: str) -> None:
    """Refuse a channel name RabbitMQ or the delay ladder cannot carry, saying why."""
    size = len(name.encode())
    if not name or size > MAX_NAME_BYTES:
        raise ConfigurationError(
            f"RabbitMQ channel name {name!r} is {size} bytes long; use 1 to {MAX_NAME_BYTES} "
            f"bytes (UTF-8), so the name fits in the routing key of a delayed message."
        )
    if name.startswith("amq."):
        raise ConfigurationError(
            f"RabbitMQ channel name {name!r} starts with 'amq.', which RabbitMQ reserves for "
            f"its own queues; choose another name."
        )


def _level_name(queue_type: QueueType, k: int) -> str:
    return f"conveyor.delay.{queue_type}.{k:02d}"
