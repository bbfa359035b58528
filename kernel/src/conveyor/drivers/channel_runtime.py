"""A declared channel as the driver runs it: its definition, its open transport, its codec."""

from __future__ import annotations

from conveyor.core.codec.serialization import Codec
from conveyor.transports.channels import Channel
from conveyor.transports.seam import (
    AsyncInspectableTransport,
    AsyncRenewableTransport,
    AsyncTransport,
    InspectableTransport,
    RenewableTransport,
    Transport,
)

__all__ = ["ChannelRuntime", "AsyncChannelRuntime", "AnyRuntime"]


class ChannelRuntime:
    """A channel definition with its open transport.

    The transport's optional abilities are looked up once, here, when the ``Messaging`` is
    built: ``inspectable`` (it can say what it holds and when it is next due, which stepping
    virtual time needs) and ``renewable`` (it can extend a lease while a long handler runs).
    """

    __slots__ = ("codec", "definition", "inline", "inspectable", "name", "renewable", "transport")

    def __init__(
        self, definition: Channel, transport: Transport, inline: bool, codec: Codec
    ) -> None:
        self.definition = definition
        self.name = definition.name
        self.transport = transport
        self.inline = inline
        self.codec = codec
        self.inspectable: InspectableTransport | None = (
            transport if isinstance(transport, InspectableTransport) else None
        )
        self.renewable: RenewableTransport | None = (
            transport if isinstance(transport, RenewableTransport) else None
        )


class AsyncChannelRuntime:
    """The asyncio twin of :class:`ChannelRuntime`, around an open ``AsyncTransport``."""

    __slots__ = ("codec", "definition", "inline", "inspectable", "name", "renewable", "transport")

    def __init__(
        self, definition: Channel, transport: AsyncTransport, inline: bool, codec: Codec
    ) -> None:
        self.definition = definition
        self.name = definition.name
        self.transport = transport
        self.inline = inline
        self.codec = codec
        self.inspectable: AsyncInspectableTransport | None = (
            transport if isinstance(transport, AsyncInspectableTransport) else None
        )
        self.renewable: AsyncRenewableTransport | None = (
            transport if isinstance(transport, AsyncRenewableTransport) else None
        )


AnyRuntime = ChannelRuntime | AsyncChannelRuntime
"""What the decisions shared by both drivers read of a channel: its definition, name and codec."""
