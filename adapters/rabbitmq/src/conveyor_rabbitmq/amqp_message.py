"""How a :class:`WireMessage` travels as an AMQP message, and how many times it was delivered.

Conveyor's headers become AMQP headers of the same names with string values, so other AMQP tools
read them as they are. RabbitMQ adds headers of its own when it dead-letters a message (each hop
of the delay ladder does) or redelivers one from a quorum queue; those are removed on receipt, so
the headers a consumer sees are exactly the ones sent. A message may not carry those names itself.

The delivery count a consumer sees is ``1 + earlier + redeliveries``: a released message is
republished as a copy carrying the deliveries so far in the adapter's own header (the broker's
count starts again with the copy), and the broker counts redeliveries of this copy (quorum
queues in ``x-delivery-count``; classic queues only flag a redelivery, which counts as one).
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.core.errors import TransportError
from conveyor.core.wire import WireMessage

__all__ = [
    "EARLIER_DELIVERIES",
    "BROKER_HEADERS",
    "amqp_headers",
    "wire_message",
    "delivery_count",
]

EARLIER_DELIVERIES = "x-conveyor-deliveries"
"""How many times the message was delivered before it was released and sent again as a copy."""

BROKER_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
        "x-acquired-count",
        EARLIER_DELIVERIES,
    }
)
"""Headers RabbitMQ (or this adapter) sets itself; never part of a Conveyor message."""


def amqp_headers(message: WireMessage, *, earlier: int = 0) -> dict[str, object]:
    """The AMQP headers table for ``message``; ``earlier``: deliveries before this copy.

    Raises:
        TransportError: a header uses a name RabbitMQ writes itself.
    """
    headers: dict[str, object] = dict(message.headers)
    clash = BROKER_HEADERS.intersection(headers)
    if clash:
        names = ", ".join(sorted(clash))
        raise TransportError(
            f"a message header is named {names}, a name RabbitMQ sets itself on dead-lettering "
            f"or redelivery, so it would not come back as sent; rename the header."
        )
    if earlier:
        headers[EARLIER_DELIVERIES] = earlier
    return headers


def wire_message(body: bytes, headers: Mapping[str, object] | None) -> WireMessage:
    """The Conveyor message in an AMQP delivery: the body and the sender's string headers."""
    if not headers:
        return WireMessage(body, {})
    kept: dict[str, str] = {}
    for name, value in headers.items():
        if name in BROKER_HEADERS:
            continue
        kept[name] = value.decode() if isinstance(value, bytes) else str(value)
    return WireMessage(body, kept)


def delivery_count(headers: Mapping[str, object] | None, *, redelivered: bool) -> int:
    """1 the first time, then one more per release and per redelivery the broker made."""
    count = 1
    if headers:
        count += _int(headers.get(EARLIER_DELIVERIES))
        broker = headers.get("x-delivery-count")
        if broker is not None:
            return count + _int(broker)
    return count + (1 if redelivered else 0)


def _int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0
