"""The transport seam (v2): how bytes and string headers move through named channels.

This is the one module an adapter author reads. A transport is deliberately dumb (DESIGN rule 8):
it declares channels with their options, stores messages until they are due, leases them to a
consumer, and forgets them when acknowledged. Routing, retries, dead letters and expiry are
decided by the kernel. Where a broker cannot do something it says so in :class:`Capabilities`,
and the kernel either provides it (holding delays past ``max_delay``, checking expiry on
receipt) or refuses at bootstrap; a capability is never silently ignored.

The seam is shaped by the brokers behind it:

- ``receive`` takes a batch (SQS returns up to 10) and may wait up to ``wait`` for the first
  message (a long poll: SQS ``WaitTimeSeconds``, Redis ``XREADGROUP BLOCK``, PostgreSQL
  ``LISTEN``), in one call.
- A lease is either a timed visibility that runs out (SQS, SQLite, Redis streams, the in-memory
  transport) or held while the consumer's connection lives (RabbitMQ); ``Capabilities.lease``
  says which, and the conformance suite checks redelivery accordingly. A sent message is
  visible to ``receive`` at once or only eventually (SQS): ``Capabilities.visibility``.
- ``declare`` takes the channel's :class:`ChannelOptions` (lease, priority levels, FIFO group).
- One transport instance (one client, one pool) serves many channels; channel definitions that
  share a :meth:`conveyor.transports.channels.Channel.transport_key` share one transport.
- Optional abilities are Protocols a transport implements (:class:`InspectableTransport`,
  :class:`RenewableTransport`, :class:`MeasurableTransport`); the kernel checks them once, when
  it is built, never per call.
- :class:`AsyncTransport` is the asyncio twin with the same semantics.

``WireMessage`` and ``Delivery`` are core values (``conveyor.core.wire``), re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from conveyor.core.errors import (
    ChannelNotFound,
    ConnectionFailed,
    MessageTooLarge,
    StaleReceipt,
    TransportClosed,
    TransportError,
)
from conveyor.core.wire import Delivery, WireMessage

__all__ = [
    "WireMessage",
    "Delivery",
    "Capabilities",
    "ChannelOptions",
    "ChannelStats",
    "LeaseKind",
    "Visibility",
    "Transport",
    "InspectableTransport",
    "RenewableTransport",
    "MeasurableTransport",
    "AsyncTransport",
    "AsyncInspectableTransport",
    "AsyncRenewableTransport",
    "TransportError",
    "ConnectionFailed",
    "ChannelNotFound",
    "MessageTooLarge",
    "TransportClosed",
    "StaleReceipt",
]

LeaseKind = Literal["timed", "connection"]
"""``"timed"``: a lease runs out after its duration and the message comes back (SQS visibility,
SQLite, Redis pending entries). ``"connection"``: an unacknowledged message is held while the
consumer's connection lives and comes back when it closes (RabbitMQ)."""

Visibility = Literal["immediate", "eventual"]
"""``"immediate"``: a message sent is received by the next ``receive``. ``"eventual"``: it may
take a moment to become receivable (SQS); the conformance suite polls until a deadline."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a transport honours itself. The kernel never silently ignores a missing capability.

    Attributes:
        delay: messages can be held until a not-before time.
        max_delay: the longest delay the broker holds (SQS: 15 minutes); None for no limit.
            The kernel completes longer delays (the message comes back early and is sent on).
        delay_precision: the smallest delay step the broker keeps (SQLite: 1 ms; SQS: 1 s).
        priority: higher priority is received first among messages that are due.
        max_priority: the highest priority level honoured (RabbitMQ's ``x-max-priority``);
            None for any int. The kernel refuses a higher one at send.
        ttl: the broker drops or dead-letters expired messages on its own. The kernel checks
            expiry on receipt either way, so a transport without native TTL still works.
        ordering: "fifo" (per priority level), or "none".
        max_size: the largest message in bytes (body plus headers); None for no limit.
        durable: messages survive a restart of the process (and of the broker).
        lease: what a lease is (:data:`LeaseKind`).
        visibility: when a sent message can be received (:data:`Visibility`).
        max_batch: the most messages one ``receive`` returns (SQS: 10); None for no limit.
    """

    delay: bool = True
    max_delay: timedelta | None = None
    delay_precision: timedelta = timedelta(milliseconds=1)
    priority: bool = False
    max_priority: int | None = None
    ttl: bool = False
    ordering: Literal["fifo", "none"] = "fifo"
    max_size: int | None = None
    durable: bool = False
    lease: LeaseKind = "timed"
    visibility: Visibility = "immediate"
    max_batch: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelOptions:
    """What ``declare`` is told about a channel, beyond its name.

    Attributes:
        name: the channel's name.
        lease: how long a received message stays leased before it comes back (a timed lease:
            the visibility timeout); a connection-held lease ignores it.
        priority: the channel's messages carry priorities (declare priority levels where the
            broker needs them up front, as RabbitMQ's ``x-max-priority`` does).
        fifo_group_header: for brokers with ordered groups (SQS FIFO queues), the header whose
            value names a message's group; None when the channel has no groups.
    """

    name: str
    lease: timedelta = timedelta(seconds=30)
    priority: bool = False
    fifo_group_header: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """What a broker can say about the load of one channel, for operators (``conveyor list``).

    Each figure is None where the broker cannot say it; a tool shows it as unknown, never as 0.
    Brokers count approximately (SQS) or at one instant: the figures are a reading, not a
    promise.

    Attributes:
        pending: messages waiting to be received: due, or delayed until later, not leased.
        in_flight: messages leased to a consumer right now (received, not yet acknowledged).
        oldest_age: how long the longest-waiting receivable message has been receivable (for a
            message sent without a delay, its age); None when no message is waiting or the
            broker cannot say.
    """

    pending: int | None = None
    in_flight: int | None = None
    oldest_age: timedelta | None = None


@runtime_checkable
class Transport(Protocol):
    """Moves :class:`WireMessage` values through named channels, at least once.

    A transport may be used by several threads at once (a consumer per thread, sends from
    request threads); it guards its own client or connections.
    """

    @property
    def capabilities(self) -> Capabilities:
        """What this transport honours; readable after ``close``."""
        ...

    def declare(self, options: ChannelOptions) -> None:
        """Create the channel if it does not exist. Idempotent; messages already on it stay."""
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
        """Store a message; it is not received before ``available_at``.

        Raises:
            MessageTooLarge: the message is over ``capabilities.max_size``.
            ConnectionFailed: the broker cannot be reached (naming host and port, never a
                password).
            TransportClosed: after ``close``.
        """
        ...

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        """Lease up to ``max_messages`` due messages, in delivery order.

        With ``wait``, block up to that long for the first message when none is due (a long
        poll); without, return at once, possibly an empty list. The kernel never passes
        ``wait`` on a virtual clock. A timed lease that is neither acknowledged nor released
        runs out after ``lease`` and the message is delivered again with a higher
        ``delivery_count``.
        """
        ...

    def ack(self, delivery: Delivery) -> None:
        """Forget a delivered message for good.

        Raises:
            StaleReceipt: the lease ran out and the message was delivered again (or settled by
                another consumer); the kernel records it and goes on.
        """
        ...

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        """Give a leased message back, to be received again from ``available_at``.

        Raises:
            StaleReceipt: as for ``ack``.
        """
        ...

    def close(self) -> None:
        """Release connections. Any later call but ``capabilities`` raises ``TransportClosed``;
        closing twice is a no-op."""
        ...


@runtime_checkable
class InspectableTransport(Transport, Protocol):
    """A transport that can say what it holds, so tests and ``advance`` step time exactly.

    The in-memory and SQLite transports are inspectable. A ``Messaging`` whose clock steps
    virtual time refuses, when it is built, a channel whose transport is not.
    """

    def pending(self, channel: str) -> int:
        """Messages stored on the channel, due or not, leased or not."""
        ...

    def next_due(self, channel: str) -> datetime | None:
        """The earliest instant something on the channel becomes receivable, or None if empty.

        A message that is due now gives an instant at or before now; a leased message counts
        from its lease's expiry.
        """
        ...


@runtime_checkable
class RenewableTransport(Transport, Protocol):
    """A transport that can extend a timed lease while a long handler runs."""

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        """Extend the lease of ``delivery`` to ``lease`` from now.

        Raises:
            StaleReceipt: the lease already ran out and the message was delivered again.
        """
        ...


@runtime_checkable
class MeasurableTransport(Transport, Protocol):
    """A transport whose broker can say how loaded a channel is (``conveyor list`` shows it).

    Unlike :class:`InspectableTransport`, which virtual time needs exactly, this is a reading
    for people: a broker that can tell only some figures (RabbitMQ: messages ready, not those
    unacknowledged) implements it and leaves the rest None.
    """

    def stats(self, channel: str) -> ChannelStats:
        """The channel's figures now; None for each one the broker cannot tell."""
        ...


@runtime_checkable
class AsyncTransport(Protocol):
    """The asyncio twin of :class:`Transport`: the same verbs and semantics, awaitable."""

    @property
    def capabilities(self) -> Capabilities: ...

    async def declare(self, options: ChannelOptions) -> None: ...

    async def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None: ...

    async def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]: ...

    async def ack(self, delivery: Delivery) -> None: ...

    async def release(
        self, delivery: Delivery, *, available_at: datetime | None = None
    ) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class AsyncInspectableTransport(AsyncTransport, Protocol):
    """The asyncio twin of :class:`InspectableTransport`."""

    async def pending(self, channel: str) -> int: ...

    async def next_due(self, channel: str) -> datetime | None: ...


@runtime_checkable
class AsyncRenewableTransport(AsyncTransport, Protocol):
    """The asyncio twin of :class:`RenewableTransport`."""

    async def renew(self, delivery: Delivery, *, lease: timedelta) -> None: ...
