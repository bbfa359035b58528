"""A declared channel as the driver runs it: its definition, its open transport, its codec."""

from __future__ import annotations

from typing import TypeGuard

from conveyor.core.codec.serialization import Codec
from conveyor.core.implements import implements
from conveyor.transports.channels import Channel
from conveyor.transports.dynamic import DynamicTransport
from conveyor.transports.seam import (
    AsyncInspectableTransport,
    AsyncRenewableTransport,
    AsyncTransport,
    InspectableTransport,
    MeasurableTransport,
    RenewableTransport,
    Transport,
)

__all__ = ["ChannelRuntime", "AsyncChannelRuntime", "AnyRuntime"]


class ChannelRuntime:
    """A channel definition with its open transport.

    The transport's optional abilities are looked up once, here, when the ``Messaging`` is
    built: ``inspectable`` (it can say what it holds and when it is next due, which stepping
    virtual time needs), ``renewable`` (it can extend a lease while a long handler runs) and
    ``measurable`` (its broker can say how loaded a channel is, for ``conveyor list``).
    ``bus`` says whether the channel carries an asynchronous bus's messages (only there does a
    consumer route one to any handler), ``max_priority`` the highest priority a header may hold.
    ``router`` is set for a dynamic channel: it places each message on a concrete channel.

    What the per-message paths read of the transport's capabilities is read here once too (a
    ``capabilities`` property call on every message added up): ``max_delay``, the longest delay
    the broker holds; ``timed_lease``, whether a lease runs out on a timer (so a
    ``LeaseKeeper`` must keep it while a handler runs); ``first_look``, how long after handling
    starts the keeper first looks at such a lease (a third of it where it can renew, all of it
    where it can only warn).
    """

    __slots__ = (
        "bus",
        "codec",
        "definition",
        "first_look",
        "inline",
        "inspectable",
        "max_delay",
        "max_priority",
        "measurable",
        "name",
        "renewable",
        "router",
        "timed_lease",
        "transport",
    )

    def __init__(
        self,
        definition: Channel,
        transport: Transport,
        inline: bool,
        codec: Codec,
        *,
        bus: bool = False,
    ) -> None:
        self.definition = definition
        self.name = definition.name
        self.transport = transport
        self.inline = inline
        self.codec = codec
        self.bus = bus
        self.max_priority: int | None = transport.capabilities.max_priority
        self.inspectable: InspectableTransport | None = (
            transport if _inspectable(transport) else None
        )
        self.renewable: RenewableTransport | None = transport if _renewable(transport) else None
        self.measurable: MeasurableTransport | None = transport if _measurable(transport) else None
        self.router: DynamicTransport | None = (
            transport if isinstance(transport, DynamicTransport) else None
        )
        capabilities = transport.capabilities
        self.max_delay = capabilities.max_delay
        self.timed_lease = capabilities.lease == "timed"
        lease = definition.lease
        self.first_look = lease / 3 if self.renewable is not None else lease


class AsyncChannelRuntime:
    """The asyncio twin of :class:`ChannelRuntime`, around an open ``AsyncTransport``.

    Dynamic channels are not offered to ``AsyncMessaging`` yet, so ``router`` is always None.
    """

    __slots__ = (
        "bus",
        "codec",
        "definition",
        "first_look",
        "inline",
        "inspectable",
        "max_delay",
        "max_priority",
        "name",
        "renewable",
        "router",
        "timed_lease",
        "transport",
    )

    def __init__(
        self,
        definition: Channel,
        transport: AsyncTransport,
        inline: bool,
        codec: Codec,
        *,
        bus: bool = False,
    ) -> None:
        self.definition = definition
        self.name = definition.name
        self.transport = transport
        self.inline = inline
        self.codec = codec
        self.bus = bus
        self.max_priority: int | None = transport.capabilities.max_priority
        self.inspectable: AsyncInspectableTransport | None = (
            transport if _async_inspectable(transport) else None
        )
        self.renewable: AsyncRenewableTransport | None = (
            transport if _async_renewable(transport) else None
        )
        self.router: DynamicTransport | None = None
        capabilities = transport.capabilities
        self.max_delay = capabilities.max_delay
        self.timed_lease = capabilities.lease == "timed"
        lease = definition.lease
        self.first_look = lease / 3 if self.renewable is not None else lease


def _inspectable(transport: Transport) -> TypeGuard[InspectableTransport]:
    return implements(transport, InspectableTransport)


def _renewable(transport: Transport) -> TypeGuard[RenewableTransport]:
    return implements(transport, RenewableTransport)


def _measurable(transport: Transport) -> TypeGuard[MeasurableTransport]:
    return implements(transport, MeasurableTransport)


def _async_inspectable(transport: AsyncTransport) -> TypeGuard[AsyncInspectableTransport]:
    return implements(transport, AsyncInspectableTransport)


def _async_renewable(transport: AsyncTransport) -> TypeGuard[AsyncRenewableTransport]:
    return implements(transport, AsyncRenewableTransport)


AnyRuntime = ChannelRuntime | AsyncChannelRuntime
"""What the decisions shared by both drivers read of a channel: its definition, name and codec."""
