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
    """

    __slots__ = (
        "bus",
        "codec",
        "definition",
        "inline",
        "inspectable",
        "max_priority",
        "measurable",
        "name",
        "renewable",
        "router",
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


class AsyncChannelRuntime:
    """The asyncio twin of :class:`ChannelRuntime`, around an open ``AsyncTransport``.

    Dynamic channels are not offered to ``AsyncMessaging`` yet, so ``router`` is always None.
    """

    __slots__ = (
        "bus",
        "codec",
        "definition",
        "inline",
        "inspectable",
        "max_priority",
        "name",
        "renewable",
        "router",
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
