"""Dynamic channels: one channel name in business code, several concrete channels behind it.

``DynamicChannel("orders", channels=[...])`` is declared like any channel and handlers use it as
one (``@asynchronous("orders")``); its sending strategy picks a concrete channel per message and
its receiving strategy picks the channel each poll reads (``conveyor.core.dynamic_routing``).
Its internal channels are ordinary channel definitions on any transport (in-memory, SQLite, a
broker), visible only to their dynamic channel: nothing else may run them or send to them.

It works as a transport over the internal channels' transports, so everything the kernel does
with a channel (send, receive, ack, release, inspect) goes through it unchanged. A received
message is stamped with the concrete channel it came from (the ``cv-via`` header), so a retry,
a requeue, a delay completed by the kernel and a replayed dead letter go back to that channel,
not through the sending strategy again; the journal names both (``Record.channel`` and
``Record.via``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from conveyor.core.clock import Clock
from conveyor.core.dynamic_routing import (
    ByHeader,
    Outbound,
    Receiver,
    ReceivingStrategy,
    RoundRobin,
    Sender,
    SendingStrategy,
    Throttled,
    bind_receiving,
    bind_sending,
)
from conveyor.core.errors import ChannelNotFound, ConfigurationError, TransportClosed
from conveyor.core.wire import H, WireMessage
from conveyor.transports.channels import Channel
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    Delivery,
    InspectableTransport,
    Transport,
)

__all__ = [
    "VIA",
    "DynamicChannel",
    "DynamicTransport",
    "InspectableDynamicTransport",
    "internal_channels",
    "check_internal_channels",
    "internal_channel_error",
]

VIA = "cv-via"
"""The wire header naming the concrete channel a message of a dynamic channel is on."""


@dataclass(frozen=True, kw_only=True)
class DynamicChannel(Channel):
    """A channel whose messages travel through one of several internal channels.

    The dynamic channel's own options (retry, dead letters, error handler, final failure, lease,
    codec, mode) apply to every message on it; the internal definitions say where and how
    messages are stored. Internal channels share transports with the other channels of a
    ``Messaging`` as usual (ten SQLite channels on one file use one connection pool).

    Attributes:
        channels: the internal channels, each with a name unique in the ``Messaging``.
        sending: which channel a message goes to: ``round_robin()`` (the default),
            ``by_header("tenant", {...}, default=...)``, or a function taking an ``Outbound``
            and returning a channel name.
        receiving: which channel a poll reads: ``round_robin()`` (the default),
            ``throttled(allow)``, or a function returning a channel name (None skips the poll).
    """

    channels: Sequence[Channel] = ()
    sending: SendingStrategy = field(default_factory=RoundRobin)
    receiving: ReceivingStrategy = field(default_factory=RoundRobin)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels:
            raise ConfigurationError(
                f"dynamic channel {self.name!r} has no channels; give it its concrete "
                f'channels: DynamicChannel({self.name!r}, channels=[QueueChannel("{self.name}.a"), '
                f"...])."
            )
        seen: set[str] = set()
        for internal in self.channels:
            if isinstance(internal, DynamicChannel) or not isinstance(internal, Channel):
                raise ConfigurationError(
                    f"dynamic channel {self.name!r} takes concrete channel definitions such as "
                    f"QueueChannel(...) or a broker's channel, got {internal!r}."
                )
            if internal.name == self.name or internal.name in seen:
                raise ConfigurationError(
                    f"dynamic channel {self.name!r} declares channel {internal.name!r} twice "
                    f"(or under its own name); give each internal channel its own name."
                )
            seen.add(internal.name)
        bind_sending(self.name, self.sending, self.names)  # refuse a bad strategy now
        bind_receiving(self.name, self.receiving, self.names)

    @property
    def names(self) -> tuple[str, ...]:
        """The internal channels' names, in declaration order."""
        return tuple(c.name for c in self.channels)

    def transport_key(self) -> Hashable:
        return (DynamicChannel, id(self))

    def open(self, clock: Clock) -> Transport:
        return self.open_shared(clock, {})

    def open_shared(self, clock: Clock, transports: dict[Hashable, Transport]) -> Transport:
        """A transport over the internal channels' transports, opened in (or taken from) the
        pool ``transports`` that the ``Messaging`` closes."""
        inner = {c.name: c.open_shared(clock, transports) for c in self.channels}
        transport = DynamicTransport.over(self, inner, clock)
        transports[self.transport_key()] = transport
        return transport

    def describe_strategies(self) -> str:
        """How ``conveyor list`` names its strategies: "send by header 'tenant', receive
        round robin"."""
        return f"send {_strategy_name(self.sending)}, receive {_strategy_name(self.receiving)}"


class DynamicTransport:
    """Moves a dynamic channel's messages through its internal channels' transports.

    A send to the dynamic channel goes to the channel its ``cv-via`` header names when that is
    one of its internal channels (a retry, a replay), else where the sending strategy says. A
    receive tries up to one poll per internal channel, in the order the receiving strategy
    gives, and returns the first messages found; a poll the strategy skips takes nothing.
    """

    __slots__ = ("_clock", "_closed", "_inner", "_receiver", "_sender", "definition", "name")

    def __init__(
        self, definition: DynamicChannel, inner: Mapping[str, Transport], clock: Clock
    ) -> None:
        self.definition = definition
        self.name = definition.name
        self._inner = dict(inner)
        self._clock = clock
        self._sender: Sender = bind_sending(definition.name, definition.sending, definition.names)
        self._receiver: Receiver = bind_receiving(
            definition.name, definition.receiving, definition.names
        )
        self._closed = False

    @staticmethod
    def over(
        definition: DynamicChannel, inner: Mapping[str, Transport], clock: Clock
    ) -> DynamicTransport:
        """The inspectable variant when every internal transport is inspectable (so tests can
        step virtual time over it), else the plain one."""
        if all(isinstance(t, InspectableTransport) for t in inner.values()):
            return InspectableDynamicTransport(definition, inner, clock)
        return DynamicTransport(definition, inner, clock)

    # ------------------------------------------------------------------ routing

    @property
    def internal(self) -> tuple[str, ...]:
        """The internal channels' names, in declaration order."""
        return self.definition.names

    def transport_of(self, channel: str) -> Transport:
        """The transport an internal channel's messages travel through."""
        self._check(channel)
        return self._inner[channel]

    def route(self, channel: str, headers: Mapping[str, str]) -> str:
        """The concrete channel for a message sent to ``channel`` with these wire headers.

        Raises:
            RoutingError: the sending strategy cannot place it (an unmapped header value
                without a default).
        """
        if channel in self._inner:
            return channel
        via = headers.get(VIA)
        if via is not None and via in self._inner:
            return via
        user = {k: v for k, v in headers.items() if not k.startswith("cv-")}
        return self._sender(
            Outbound(channel, headers.get(H.TYPE, "?"), headers.get(H.ENDPOINT, "?"), user)
        )

    def _check(self, channel: str) -> None:
        self._check_open()
        if channel != self.name and channel not in self._inner:
            raise ChannelNotFound(
                f"dynamic channel {self.name!r} has no channel {channel!r}; its channels: "
                f"{', '.join(self._inner)}."
            )

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed(f"the transport of dynamic channel {self.name!r} is closed")

    # ------------------------------------------------------------------ Transport

    @property
    def capabilities(self) -> Capabilities:
        """What every internal channel honours (the weakest of them, capability by capability)."""
        return _weakest([t.capabilities for t in self._inner.values()])

    def declare(self, options: ChannelOptions) -> None:
        self._check_open()
        for internal in self.definition.channels:
            self._inner[internal.name].declare(internal.channel_options())

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self._check(channel)
        target = self.route(channel, message.headers)
        if message.headers.get(VIA) != target:
            message = WireMessage(message.body, {**message.headers, VIA: target})
        self._inner[target].send(
            target, message, available_at=available_at, priority=priority, expires_at=expires_at
        )

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        self._check(channel)
        if channel in self._inner:
            return self._poll(channel, lease, max_messages, wait)
        polls = len(self._inner)
        for _ in range(polls):
            chosen = self._receiver(self._clock.now())
            if chosen is None:
                continue  # a skipped poll takes nothing
            # A long poll is shared out, so one quiet channel cannot hold the others' messages.
            found = self._poll(chosen, lease, max_messages, wait / polls if wait else None)
            if found:
                return found
        return []

    def _poll(
        self, channel: str, lease: timedelta, max_messages: int, wait: timedelta | None
    ) -> list[Delivery]:
        found = self._inner[channel].receive(
            channel, lease=lease, max_messages=max_messages, wait=wait
        )
        return [_stamped(d, channel) for d in found]

    def ack(self, delivery: Delivery) -> None:
        self._check(delivery.channel)
        self._inner[delivery.channel].ack(delivery)

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        self._check(delivery.channel)
        self._inner[delivery.channel].release(delivery, available_at=available_at)

    def close(self) -> None:
        """Stop using the internal transports; the ``Messaging`` that opened them closes them."""
        self._closed = True


class InspectableDynamicTransport(DynamicTransport):
    """A dynamic channel over inspectable transports: it can say what it holds, and when."""

    __slots__ = ()

    def pending(self, channel: str) -> int:
        names = self._names(channel)
        return sum(self._inspect(n).pending(n) for n in names)

    def next_due(self, channel: str) -> datetime | None:
        due = [d for n in self._names(channel) if (d := self._inspect(n).next_due(n)) is not None]
        return min(due, default=None)

    def pending_by_channel(self) -> dict[str, int]:
        """Messages stored on each internal channel (for ``conveyor list`` and tests)."""
        return {n: self._inspect(n).pending(n) for n in self._inner}

    def _names(self, channel: str) -> tuple[str, ...]:
        self._check(channel)
        return (channel,) if channel in self._inner else tuple(self._inner)

    def _inspect(self, name: str) -> InspectableTransport:
        transport = self._inner[name]
        assert isinstance(transport, InspectableTransport)
        return transport


def _stamped(delivery: Delivery, channel: str) -> Delivery:
    """The delivery as the kernel sees it: on its concrete channel, with ``cv-via`` set."""
    headers = delivery.message.headers
    if headers.get(VIA) == channel and delivery.channel == channel:
        return delivery
    return replace(
        delivery,
        channel=channel,
        message=WireMessage(delivery.message.body, {**headers, VIA: channel}),
    )


def _weakest(all_capabilities: list[Capabilities]) -> Capabilities:
    def smallest(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return min(known) if known else None

    delays = [c.max_delay for c in all_capabilities if c.max_delay is not None]
    return Capabilities(
        delay=all(c.delay for c in all_capabilities),
        max_delay=min(delays) if delays else None,
        delay_precision=max(c.delay_precision for c in all_capabilities),
        priority=all(c.priority for c in all_capabilities),
        max_priority=smallest([c.max_priority for c in all_capabilities]),
        ttl=all(c.ttl for c in all_capabilities),
        ordering="fifo" if all(c.ordering == "fifo" for c in all_capabilities) else "none",
        max_size=smallest([c.max_size for c in all_capabilities]),
        durable=all(c.durable for c in all_capabilities),
        lease="timed" if all(c.lease == "timed" for c in all_capabilities) else "connection",
        visibility=(
            "immediate"
            if all(c.visibility == "immediate" for c in all_capabilities)
            else "eventual"
        ),
        max_batch=smallest([c.max_batch for c in all_capabilities]),
    )


def _strategy_name(strategy: object) -> str:
    if isinstance(strategy, RoundRobin):
        rotation = f" ({', '.join(strategy.channels)})" if strategy.channels else ""
        return f"round robin{rotation}"
    if isinstance(strategy, ByHeader):
        return f"by header {strategy.header!r}"
    if isinstance(strategy, Throttled):
        return f"throttled by {_function_name(strategy.allow)}"
    return _function_name(strategy)


def _function_name(function: object) -> str:
    return str(getattr(function, "__qualname__", None) or type(function).__qualname__)


# ---------------------------------------------------------------------- internal channels


def internal_channels(definitions: Mapping[str, Channel]) -> dict[str, str]:
    """Each internal channel's name, mapped to the dynamic channel it belongs to.

    Raises:
        ConfigurationError: an internal channel has the name of another channel.
    """
    owners: dict[str, str] = {}
    for definition in definitions.values():
        if not isinstance(definition, DynamicChannel):
            continue
        for name in definition.names:
            if name in definitions or name in owners:
                other = owners.get(name)
                where = f"in dynamic channel {other!r}" if other else "on its own"
                raise ConfigurationError(
                    f"channel {name!r} is internal to dynamic channel {definition.name!r} and "
                    f"also declared {where}; a channel belongs to one place. Rename one of them."
                )
            owners[name] = definition.name
    return owners


def internal_channel_error(name: str, owner: str, use: str) -> ConfigurationError:
    """The error for using an internal channel where only its dynamic channel may be used."""
    return ConfigurationError(
        f"{use} channel {name!r}, which is internal to dynamic channel {owner!r}: only "
        f"{owner!r} sends to it and polls it. Use {owner!r} instead (its strategies choose "
        f"{name!r} when they should)."
    )


def check_internal_channels(
    handlers: Sequence[tuple[str, tuple[str, ...]]], owners: Mapping[str, str]
) -> None:
    """Refuse handlers that are ``@asynchronous`` on an internal channel.

    ``handlers`` holds each handler's name with its channels.
    """
    for handler, channels in handlers:
        for channel in channels:
            owner = owners.get(channel)
            if owner is not None:
                raise internal_channel_error(
                    channel, owner, f"handler {handler} is @asynchronous on"
                )
