"""``MemoryBroker``: in-memory channels that several ``Messaging`` instances share.

Each ``Messaging`` opens its own ``MemoryTransport`` for its ``QueueChannel`` definitions, so
two services built in one test share nothing: a message one of them queues on "billing" never
reaches the other's "billing" consumer. A test of two services talking through a queue wants what
a broker gives two processes: one queue per name. ``QueueChannel(name, broker=broker)`` opens the
broker's transport instead, so every service whose channels name the same broker and channel
reads and writes one queue, on one clock.

The broker owns its transport: a ``Messaging`` that closes (one service's teardown) leaves it
open for the others, and ``MemoryBroker.close()`` drops everything at the end.
"""

from __future__ import annotations

from conveyor.core.clock import Clock
from conveyor.core.errors import ConfigurationError
from conveyor.transports.memory import MemoryTransport

__all__ = ["MemoryBroker"]


class _BrokerTransport(MemoryTransport):
    """The broker's transport: ``close`` from one ``Messaging`` leaves it open for the others."""

    __slots__ = ()

    def close(self) -> None:
        """Nothing: the broker closes it (``MemoryBroker.close``)."""

    def shut(self) -> None:
        super().close()


class MemoryBroker:
    """One set of in-memory channels for every ``Messaging`` whose ``QueueChannel``s name it.

    Opened on first use with that ``Messaging``'s clock; every other ``Messaging`` must use the
    same clock (one virtual time for the services of a test), or building it is refused.
    """

    __slots__ = ("_clock", "_transport")

    def __init__(self) -> None:
        self._clock: Clock | None = None
        self._transport: _BrokerTransport | None = None

    def transport(self, clock: Clock) -> MemoryTransport:
        """The shared transport, opened with ``clock`` the first time."""
        if self._transport is None:
            self._clock = clock
            self._transport = _BrokerTransport(clock)
        elif clock is not self._clock:
            raise ConfigurationError(
                f"this MemoryBroker runs on {self._clock!r}, but a Messaging on {clock!r} "
                f"opened it: services that share a broker share one clock. Build them with the "
                f"same clock (messaging_factory does)."
            )
        return self._transport

    def close(self) -> None:
        """Drop every message of every channel; closing again is a no-op."""
        if self._transport is not None:
            self._transport.shut()
