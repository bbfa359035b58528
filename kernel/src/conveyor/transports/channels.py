"""Channel definitions: a name, the failure policy of its consumer, and how to open its transport.

A channel definition is configuration: building a ``Messaging`` opens its transport with the
kernel's clock. ``QueueChannel`` is the in-memory channel, a real channel (DESIGN rule 3); broker
adapters subclass :class:`Channel` and open their own transport. Business code never changes
between the two.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from conveyor.core.clock import Clock
from conveyor.core.codec.serialization import Codec
from conveyor.core.errors import ConfigurationError
from conveyor.core.handlers import ErrorHandler
from conveyor.core.retry import RetryPolicy
from conveyor.transports.seam import AsyncTransport, ChannelOptions, Transport

if TYPE_CHECKING:
    from conveyor.transports.memory_broker import MemoryBroker

__all__ = ["Channel", "ChannelAlias", "QueueChannel", "FinalFailure", "Mode", "Ack"]

FinalFailure = Literal["resend", "ignore", "stop", "release"]
Mode = Literal["queued", "inline"]
Ack = Literal["auto", "manual"]


@dataclass(frozen=True, kw_only=True)
class Channel:
    """What every channel definition carries.

    Attributes:
        name: the channel's name; also its consumer's name for ``run`` and ``conveyor run``.
        retry: the retry policy of handlers consumed from this channel (a handler's own wins).
        dead_letter: put messages that still fail in the dead-letter store. None inherits the
            Messaging default (True).
        error_handler: a handler (or its endpoint id) that receives the ``Failure`` instead.
        final_failure: what happens to a message that still fails when neither an error handler
            nor the dead-letter store takes it: "resend" (to the tail of the channel), "stop"
            (the consumer stops and the message stays), "release" (the delivery is given back
            to the channel as it is, for this or another consumer; its delivery count grows),
            or "ignore" (dropped, with a journal record; only when chosen explicitly).
        mode: "queued" (a consumer run handles messages) or "inline" (handled at send time,
            still through the codec); None inherits the Messaging's mode.
        lease: how long a received message stays invisible to other consumers before it is
            delivered again; longer than your slowest handler.
        dead_letter_expired: also dead-letter messages whose time to live ran out.
        codec: how payloads on this channel become bytes; None uses the Messaging's codec
            (JSON). ``InProcessCodec()`` opts an in-memory channel out of serialization.
        bus: the channel carries messages of an asynchronous bus
            (``messaging.command_bus(name)``), which its consumer routes to any handler of
            their type. None (the default) means: when no asynchronous handler is bound to it.
            Elsewhere a message addressed to a bus is dead-lettered as unroutable, so whoever
            can write to a handler's channel cannot reach every other handler through it.
        send_only: this ``Messaging`` sends to the channel but never consumes it: another
            service (or process) does. It is not among ``consumers()``, settling and
            ``advance`` skip it, and ``run`` refuses it. Two services in one test that share an
            in-memory broker declare the channel in both; the sender declares it send-only.
        send_retry: when sending to this channel fails (its broker is down), send again after
            the policy's ``delays``, up to its ``attempts`` sends, for the exceptions it names
            (``on=ConnectionFailed``, say); then the handling attempt that sent it fails with
            ``SendFailed`` and is retried as a whole. None: a failed send raises at once.
        collector: what a handler consumed from this channel sends leaves only when it
            succeeds (the message collector). False sends each message at once, for handlers
            whose sends must not wait for the end of the handling (they stay sent if it fails).
        ack: "auto" (the default): a message is acknowledged when its handler returns.
            "manual": the handler decides, through its context: ``ctx.ack()`` acknowledges it
            (when the handler returns, with what it sent), ``ctx.reject(reason)`` sends it
            straight to the dead-letter store. A handler that returns without either gives it
            back: it comes again once the ``lease`` has passed, as a broker redelivers an
            unacknowledged message, and nothing the handler sent leaves.
    """

    name: str = field(kw_only=False)
    retry: RetryPolicy | None = None
    dead_letter: bool | None = None
    error_handler: ErrorHandler | None = None
    final_failure: FinalFailure = "resend"
    mode: Mode | None = None
    lease: timedelta = timedelta(seconds=30)
    dead_letter_expired: bool = False
    codec: Codec | None = None
    bus: bool | None = None
    send_only: bool = False
    send_retry: RetryPolicy | None = None
    collector: bool = True
    ack: Ack = "auto"

    def __post_init__(self) -> None:
        if self.ack not in ("auto", "manual"):
            raise ConfigurationError(
                f"channel {self.name!r} has ack={self.ack!r}; choose 'auto' (acknowledged when "
                f"the handler returns) or 'manual' (the handler calls ctx.ack() or "
                f"ctx.reject(reason))."
            )
        if self.final_failure not in ("resend", "ignore", "stop", "release"):
            raise ConfigurationError(
                f"channel {self.name!r} has final_failure={self.final_failure!r}; choose "
                f"'resend' (back to the tail of the channel), 'stop' (the consumer stops, the "
                f"message stays), 'release' (given back to the channel for another consumer) or "
                f"'ignore' (dropped, with a journal record)."
            )

    def transport_key(self) -> Hashable:
        """Channels whose keys are equal share one transport (one client or pool).

        By default a definition opens its own; an adapter returns what identifies the broker
        connection (a URL, a file), so ten channels on one Redis share one client.
        """
        return (type(self), id(self))

    def channel_options(self) -> ChannelOptions:
        """What ``Transport.declare`` is told about this channel."""
        return ChannelOptions(self.name, lease=self.lease)

    def open(self, clock: Clock) -> Transport:
        """Open the transport this channel's messages travel through (for ``Messaging``)."""
        raise NotImplementedError(f"{type(self).__qualname__} does not say how to open it")

    def open_shared(self, clock: Clock, transports: dict[Hashable, Transport]) -> Transport:
        """This channel's transport from ``transports`` (keyed by ``transport_key()``), opened
        and added there if no channel with the same key opened one yet.

        The ``Messaging`` closes every transport in the pool; a channel made of other channels
        (``conveyor.transports.dynamic.DynamicChannel``) opens theirs in the same pool.
        """
        key = self.transport_key()
        transport = transports.get(key)
        if transport is None:
            transport = transports[key] = self.open(clock)
        return transport

    def open_async(self, clock: Clock) -> AsyncTransport:
        """Open the asyncio twin of the transport (for ``AsyncMessaging``)."""
        raise ConfigurationError(
            f"channel {self.name!r} ({type(self).__qualname__}) has no asyncio transport; use "
            f"it with Messaging, or use a channel whose adapter offers one."
        )


@dataclass(frozen=True, kw_only=True)
class QueueChannel(Channel):
    """An in-memory channel: serializes through the codec, honours delay, priority and leases.

    Attributes:
        broker: a ``MemoryBroker`` shared with other ``Messaging`` instances (several services
            in one test): channels of the same name on one broker are one queue. None: this
            ``Messaging``'s own in-memory channels.
    """

    broker: MemoryBroker | None = None

    def transport_key(self) -> Hashable:
        """Every in-memory channel of one ``Messaging`` shares one ``MemoryTransport`` (one
        ``AsyncMemoryTransport`` under ``AsyncMessaging``), or its broker's."""
        return (QueueChannel,) if self.broker is None else (QueueChannel, id(self.broker))

    def open(self, clock: Clock) -> Transport:
        if self.broker is not None:
            return self.broker.transport(clock)
        from conveyor.transports.memory import MemoryTransport

        return MemoryTransport(clock)

    def open_async(self, clock: Clock) -> AsyncTransport:
        if self.broker is not None:
            raise ConfigurationError(
                f"channel {self.name!r} is on a MemoryBroker, which serves Messaging only; "
                f"under AsyncMessaging drop broker=."
            )
        from conveyor.transports.async_memory import AsyncMemoryTransport

        return AsyncMemoryTransport(clock)


@dataclass(frozen=True)
class ChannelAlias:
    """A second name for a declared channel: two channel names, one queue.

    ``Messaging(channels=[QueueChannel("orders"), ChannelAlias("orders.v1", to="orders")])``:
    handlers bound to either name (``@asynchronous("orders.v1")``), an asynchronous bus on
    either and ``run`` of either use the one channel ``orders``, for renaming a channel while
    code or deployments still use the old name. The journal names the channel itself. ``to``
    may name another alias; an alias to nothing declared, or a cycle of aliases, is a
    ``ConfigurationError`` when the ``Messaging`` is built.
    """

    name: str
    to: str
