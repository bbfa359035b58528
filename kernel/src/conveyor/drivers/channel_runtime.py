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


class _Runtime:
    """What both drivers' runtimes hold besides the transport."""

    __slots__ = ("codec", "definition", "inline", "name")

    def __init__(self, definition: Channel, inline: bool, codec: Codec) -> None:
        self.definition = definition
        self.name = definition.name
        self.inline = inline
        self.codec = codec


class ChannelRuntime(_Runtime):
    """A channel definition with its open transport.

    The transport's optional abilities are looked up once, here, when the ``Messaging`` is
    built: ``inspectable`` (it can say what it holds and when it is next due, which stepping
    virtual time needs) and ``renewable`` (it can extend a lease while a long handler runs).
    """

    __slots__ = ("inspectable", "renewable", "transport")

    def __init__(
        self, definition: Channel, transport: Transport, inline: bool, codec: Codec
    ) -> None:
        super().__init__(definition, inline, codec)
        self.transport = transport
        self.inspectable: InspectableTransport | None = (
            transport if isinstance(transport, InspectableTransport) else None
        )
        self.renewable: RenewableTransport | None = (
            transport if isinstance(transport, RenewableTransport) else None
        )


class AsyncChannelRuntime(_Runtime):
    """The asyncio twin of :class:`ChannelRuntime`, around an open ``AsyncTransport``."""

    __slots__ = ("inspectable", "renewable", "transport")

    def __init__(
        self, definition: Channel, transport: AsyncTransport, inline: bool, codec: Codec
    ) -> None:
        super().__init__(definition, inline, codec)
        self.transport = transport
        self.inspectable: AsyncInspectableTransport | None = (
            transport if isinstance(transport, AsyncInspectableTransport) else None
        )
        self.renewable: AsyncRenewableTransport | None = (
            transport if isinstance(transport, AsyncRenewableTransport) else None
        )


AnyRuntime = ChannelRuntime | AsyncChannelRuntime
"""What the decisions shared by both drivers read of a channel: its definition, name and codec."""
