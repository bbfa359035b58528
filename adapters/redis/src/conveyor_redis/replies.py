"""What the sync and asyncio transports share: checking arguments and reading script replies.

Both transports run the same scripts with the same arguments; only the waiting differs. Keeping
the reading of replies here means the two cannot drift apart in what a receipt is, when a
delivery is stale, or how long a long poll blocks.
"""

from __future__ import annotations

from datetime import timedelta

from conveyor.core.errors import MessageTooLarge, StaleReceipt, TransportClosed, TransportError
from conveyor.transports.seam import Capabilities, Delivery, WireMessage
from conveyor_redis.address import RedisAddress
from conveyor_redis.envelope import decode

__all__ = [
    "capabilities_of",
    "check_receive",
    "check_size",
    "closed",
    "deliveries_of",
    "parse_receipt",
    "stale",
    "block_seconds",
]

_PRIORITY_LIMIT = 2**53
"""Priorities are sorted-set scores (doubles): integers beyond 2**53 would collide."""


def capabilities_of(*, max_size: int | None, native_ttl: bool) -> Capabilities:
    """What a Redis transport honours: everything, and native TTL when asked for."""
    if max_size is not None and max_size <= 0:
        raise ValueError(f"max_size={max_size} must be positive, or None for no limit.")
    return Capabilities(
        delay=True,
        max_delay=None,
        delay_precision=timedelta(milliseconds=1),
        priority=True,
        max_priority=None,
        ttl=native_ttl,
        ordering="fifo",
        max_size=max_size,
        durable=True,
        lease="timed",
        visibility="immediate",
        max_batch=None,
    )


def check_size(
    message: WireMessage, limit: int | None, address: RedisAddress, channel: str
) -> None:
    if limit is not None and message.size > limit:
        raise MessageTooLarge(
            f"message of {message.size} bytes (body plus headers) is larger than the {limit} "
            f"bytes the channel {channel!r} on {address.where()} accepts. Send a smaller "
            f"message (store large payloads elsewhere and send a reference), or raise max_size."
        )


def check_priority(priority: int) -> None:
    if not -_PRIORITY_LIMIT < priority < _PRIORITY_LIMIT:
        raise ValueError(f"priority={priority} must be between -2**53 and 2**53 on Redis.")


def check_receive(lease: timedelta, max_messages: int) -> None:
    if lease <= timedelta(0):
        raise ValueError(
            f"lease={lease} must be positive: it is how long the consumer has before the "
            f"message is delivered again."
        )
    if max_messages < 1:
        raise ValueError(f"max_messages={max_messages} must be at least 1.")


def closed(address: RedisAddress, action: str) -> TransportClosed:
    return TransportClosed(
        f"cannot {action}: this transport to {address.where()} was closed. Open a new one "
        f"(a new Messaging) to go on."
    )


def deliveries_of(channel: str, reply: list[object]) -> list[Delivery]:
    """Deliveries from a receive script's reply (its first element is the next due instant)."""
    found = []
    for i in range(1, len(reply), 3):
        raw_id = reply[i]
        message_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        count = int(reply[i + 1])  # type: ignore[call-overload]
        stored = reply[i + 2]
        assert isinstance(stored, bytes)
        found.append(Delivery(channel, decode(stored), f"{message_id}:{count}", count))
    return found


def parse_receipt(delivery: Delivery) -> tuple[str, str]:
    """The message id and delivery count a receipt was made of."""
    message_id, _, count = delivery.receipt.partition(":")
    if not message_id or not count.isdigit():
        raise TransportError(
            f"receipt {delivery.receipt!r} of a delivery on channel {delivery.channel!r} was "
            f"not made by a Redis transport (expected '<id>:<delivery count>'). Ack and "
            f"release a delivery with the transport that received it."
        )
    return message_id, count


def stale(delivery: Delivery, address: RedisAddress, now: object, verb: str) -> StaleReceipt:
    """Explain why a lease no longer holds, from the count the message has now."""
    current = now.decode() if isinstance(now, bytes) else str(now)
    message_id = delivery.receipt.partition(":")[0]
    where = (
        f"message {message_id} on channel {delivery.channel!r} (delivery "
        f"{delivery.delivery_count}) on {address.where()}"
    )
    if current == str(delivery.delivery_count):
        return StaleReceipt(
            f"cannot {verb} {where}: it was released, so this delivery no longer holds it. "
            f"Ack or release a delivery once."
        )
    if not current:
        cause = (
            "it is no longer stored: it was already acknowledged, by this consumer or by "
            "another one that received it after this lease expired"
        )
    else:
        cause = f"its lease expired and it was received again (now delivery {current})"
    return StaleReceipt(
        f"cannot {verb} {where}: {cause}. If the handler outlived its lease, give the channel "
        f"a longer lease or renew it; either way keep handlers idempotent (deduplication), "
        f"since a message is handled again whenever a lease expires."
    )


def block_seconds(now_ms: int, deadline_ms: int, next_due_ms: int, longest: float) -> float:
    """How long one blocking wait may last: until the deadline, the next delayed message or
    lease expiry, whichever is first, and never longer than ``longest`` (under the socket
    timeout, so a blocked read never looks like a dead server). 0 means stop waiting."""
    until = deadline_ms
    if 0 <= next_due_ms < until:
        until = max(next_due_ms, now_ms + 1)
    left = (until - now_ms) / 1000
    if deadline_ms <= now_ms:
        return 0.0
    return min(left, longest)
