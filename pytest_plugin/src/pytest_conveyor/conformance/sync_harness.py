"""The sync runner's harness: the checks' verbs, called on a :class:`Transport` directly."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from conveyor.core.clock import Clock
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    Delivery,
    InspectableTransport,
    RenewableTransport,
    Transport,
    WireMessage,
)
from pytest_conveyor.conformance.harness import _NO_REOPEN, _REAL, STAGGER, Harness
from pytest_conveyor.conformance.timing import Timing

__all__ = ["TransportHarness"]


class TransportHarness(Harness):
    """Drives a sync :class:`~conveyor.transports.seam.Transport`.

    Args:
        transport: the transport under test, fresh for each check.
        clock: the clock the transport reads.
        make_channel: a fresh, unique channel name per call.
        reopen: a new transport on the same storage (a restarted process, a second consumer's
            connection). Checks of durability and of connection leases need it.
        timing: the durations the checks use.
    """

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        *,
        make_channel: Callable[[], str] | None = None,
        reopen: Callable[[], Transport] | None = None,
        timing: Timing | None = None,
    ) -> None:
        super().__init__(clock, make_channel=make_channel, timing=timing)
        self.transport = transport
        self._reopen = reopen
        self._opened: list[TransportHarness] = [self]

    @property
    def capabilities(self) -> Capabilities:
        return self.transport.capabilities

    @property
    def name(self) -> str:
        return type(self.transport).__qualname__

    @property
    def renewable(self) -> bool:
        return isinstance(self.transport, RenewableTransport)

    @property
    def inspectable(self) -> bool:
        return isinstance(self.transport, InspectableTransport)

    def declare(self, options: ChannelOptions) -> None:
        self.transport.declare(options)

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self.transport.send(
            channel, message, available_at=available_at, priority=priority, expires_at=expires_at
        )

    def _receive(
        self, channel: str, *, lease: timedelta, max_messages: int, wait: timedelta | None
    ) -> list[Delivery]:
        return self.transport.receive(channel, lease=lease, max_messages=max_messages, wait=wait)

    def ack(self, delivery: Delivery) -> None:
        self.transport.ack(delivery)

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        self.transport.release(delivery, available_at=available_at)

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        transport = self.transport
        assert isinstance(transport, RenewableTransport), f"{self.name} cannot renew"
        transport.renew(delivery, lease=lease)

    def pending(self, channel: str) -> int:
        transport = self.transport
        assert isinstance(transport, InspectableTransport), f"{self.name} is not inspectable"
        return transport.pending(channel)

    def next_due(self, channel: str) -> datetime | None:
        transport = self.transport
        assert isinstance(transport, InspectableTransport), f"{self.name} is not inspectable"
        return transport.next_due(channel)

    def _close(self) -> None:
        self.transport.close()

    def reopen(self) -> TransportHarness:
        if self._reopen is None:
            raise AssertionError(_NO_REOPEN)
        other = TransportHarness(
            self._reopen(), self.clock, make_channel=self._make_channel, timing=self.timing
        )
        other._reopen = self._reopen
        other._opened = self._opened
        self._opened.append(other)
        return other

    def adopt(self, other: TransportHarness) -> None:
        """Close ``other`` with this harness: a consumer a test opened beside it."""
        other._opened = self._opened
        self._opened.append(other)

    @property
    def can_reopen(self) -> bool:
        return self._reopen is not None

    def receive_during_send(
        self, channel: str, message: WireMessage, *, wait: timedelta, sender: Harness
    ) -> tuple[list[Delivery], float]:
        def send_soon() -> None:
            _REAL.sleep(STAGGER.total_seconds())  # the stimulus comes after the poll began
            sender.send(channel, message)

        thread = threading.Thread(target=send_soon, name="conformance-sender", daemon=True)
        start = _REAL.monotonic()
        thread.start()
        try:
            found = self.receive(channel, wait=wait)
        finally:
            thread.join()
        return found, _REAL.monotonic() - start

    def close_all(self) -> None:
        for each in _open_ones(self._opened):
            each.close()


def _open_ones(opened: list[TransportHarness]) -> Iterator[TransportHarness]:
    for each in list(opened):
        if not each._closed:
            yield each
