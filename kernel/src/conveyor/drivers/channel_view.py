"""``ChannelView``: what ``messaging.channels`` shows a user of each declared channel.

The driver keeps a mutable runtime per channel (its transport's optional abilities looked up
once, its codec, the router of a dynamic channel) that it is free to change. Users, tests and
tools want something else: which channels exist, how each was declared, whether it runs queued or
inline, whether it carries an asynchronous bus, and the open transport (to inspect it, or to put
a raw message on it in a test). A frozen value with exactly that is what ``messaging.channels``
maps each name to, in a read-only mapping, so nothing a user does through it changes how the
``Messaging`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from conveyor.drivers.channel_runtime import ChannelRuntime
from conveyor.transports.channels import Channel, Mode
from conveyor.transports.seam import (
    Capabilities,
    ChannelStats,
    InspectableTransport,
    MeasurableTransport,
    Transport,
)

__all__ = ["ChannelView", "view_of"]


@dataclass(frozen=True, slots=True)
class ChannelView:
    """One declared channel of a ``Messaging``, read-only.

    Attributes:
        name: the channel's name (its consumer's name for ``run`` and ``conveyor run``).
        definition: the ``Channel`` it was declared with (``QueueChannel("orders")``, ...).
        mode: "queued" (a consumer run handles its messages) or "inline" (handled at send).
        bus: whether its consumer routes an asynchronous bus's messages to any handler.
        transport: the open transport its messages travel through (shared with the other
            channels of the same broker). Putting a raw ``WireMessage`` on it is how a test
            rehearses what another producer could send.
    """

    name: str
    definition: Channel
    mode: Mode
    bus: bool
    transport: Transport

    @property
    def capabilities(self) -> Capabilities:
        """What its transport declares (delay, priority, TTL, ordering, durability, ...)."""
        return self.transport.capabilities

    def pending(self) -> int | None:
        """Messages stored on it, due or not; None if its transport cannot tell (a broker
        that does not count)."""
        if isinstance(self.transport, InspectableTransport):
            return self.transport.pending(self.name)
        return None

    def next_due(self) -> datetime | None:
        """When its earliest message becomes receivable; None if none is stored or its
        transport cannot tell."""
        if isinstance(self.transport, InspectableTransport):
            return self.transport.next_due(self.name)
        return None

    def stats(self) -> ChannelStats | None:
        """What its broker says of its load now (pending, in flight, the oldest's age), as
        ``conveyor list`` shows it, for a health check or a metrics endpoint; None if the
        transport is not a ``MeasurableTransport``."""
        if isinstance(self.transport, MeasurableTransport):
            return self.transport.stats(self.name)
        return None


def view_of(runtime: ChannelRuntime) -> ChannelView:
    """The user's view of a channel the driver runs."""
    mode: Mode = "inline" if runtime.inline else "queued"
    return ChannelView(runtime.name, runtime.definition, mode, runtime.bus, runtime.transport)
