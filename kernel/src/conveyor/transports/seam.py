"""The transport seam: how bytes and string headers move through named channels.

A transport is deliberately dumb (DESIGN rule 8): it declares channels, stores messages until
they are due, leases them to one consumer at a time, and forgets them when acknowledged. Routing,
retries, dead letters and expiry are decided by the kernel. Brokers that cannot do something
declare it in :class:`Capabilities`, and the kernel either provides it or refuses at bootstrap.

The in-memory transport (``conveyor.transports.memory``) is the first implementation; every adapter passes
the same conformance suite (``pytest_conveyor.conformance``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "WireMessage",
    "Delivery",
    "Capabilities",
    "Transport",
    "InspectableTransport",
    "WaitingTransport",
]


@dataclass(frozen=True, slots=True)
class WireMessage:
    """What crosses a broker: an opaque body and string headers."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes on the wire: body plus header names and values (UTF-8)."""
        return len(self.body) + sum(
            len(k.encode()) + len(v.encode()) for k, v in self.headers.items()
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One leased delivery of a message to a consumer.

    ``receipt`` is the transport's own handle (a row id, a stream entry id, a delivery tag);
    ``delivery_count`` is 1 the first time and grows on each redelivery of the same message.
    """

    channel: str
    message: WireMessage
    receipt: str
    delivery_count: int = 1


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a transport honours itself. The kernel never silently ignores a missing capability.

    Attributes:
        delay: messages can be held until a not-before time.
        max_delay: the longest delay the broker holds (SQS: 15 minutes); None for no limit.
        delay_precision: the smallest delay step the broker keeps (SQLite: 1 ms; SQS: 1 s).
        priority: higher priority is received first among messages that are due.
        ttl: the broker drops or dead-letters expired messages on its own. The kernel checks
            expiry on receipt either way, so a transport without native TTL still works.
        ordering: "fifo" (per priority level), or "none".
        max_size: the largest message in bytes (body plus headers); None for no limit.
        durable: messages survive a restart of the process (and of the broker).
    """

    delay: bool = True
    max_delay: timedelta | None = None
    delay_precision: timedelta = timedelta(milliseconds=1)
    priority: bool = False
    ttl: bool = False
    ordering: Literal["fifo", "none"] = "fifo"
    max_size: int | None = None
    durable: bool = False


@runtime_checkable
class Transport(Protocol):
    """Moves :class:`WireMessage` values through named channels, at least once."""

    @property
    def capabilities(self) -> Capabilities: ...

    def declare(self, channel: str) -> None:
        """Create the channel if it does not exist. Idempotent."""
        ...

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        """Store a message; it is not received before ``available_at``."""
        ...

    def receive(self, channel: str, *, lease: timedelta) -> Delivery | None:
        """Lease the next due message, or return None at once when nothing is due.

        An unacknowledged, unreleased lease expires after ``lease`` and the message is
        delivered again with a higher ``delivery_count``.
        """
        ...

    def ack(self, delivery: Delivery) -> None:
        """Forget a delivered message for good."""
        ...

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        """Give a leased message back, to be received again from ``available_at``."""
        ...

    def close(self) -> None:
        """Release connections. Any later call raises ``TransportClosed``."""
        ...


@runtime_checkable
class InspectableTransport(Transport, Protocol):
    """A transport that can say what it holds, so tests and ``advance`` can step time exactly.

    The in-memory and SQLite transports are inspectable; a networked broker may not be.
    """

    def pending(self, channel: str) -> int:
        """Messages stored on the channel, due or not, leased or not."""
        ...

    def next_due(self, channel: str) -> datetime | None:
        """The earliest instant something on the channel becomes receivable, or None if empty.

        A message that is due now returns an instant at or before now; a leased message counts
        from its lease's expiry.
        """
        ...


@runtime_checkable
class WaitingTransport(Transport, Protocol):
    """A transport that can block until a message may be receivable (a broker's long poll).

    An idle consumer on a real clock calls ``wait`` instead of sleeping between polls, so a
    message sent to a networked broker is handled as soon as it arrives. Transports without it
    are polled.
    """

    def wait(self, channel: str, *, timeout: timedelta) -> None:
        """Return when a message may be receivable on ``channel``, or after ``timeout``."""
        ...
