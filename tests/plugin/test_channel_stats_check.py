"""The shared ``check_channel_stats`` passes an honest transport and fails each lie.

An honest in-memory ``stats`` (computed from what the wrapper sent, leased and acknowledged)
passes; one that reports in-flight messages as 0 while claiming not to know them, counts
leased messages as pending, or shows an age with nothing waiting, fails with a message naming
the figure.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from broken_transports import Wrapper

from conveyor.core.clock import VirtualClock
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import ChannelStats, Delivery, MeasurableTransport, WireMessage
from pytest_conveyor.channel_stats import Figure, check_channel_stats


class Counted(Wrapper):
    """Counts what it sent, leased and acknowledged, and reports it honestly (one channel)."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(MemoryTransport(clock), clock)
        self.sent: list[datetime] = []
        self.leased = 0

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        super().send(channel, message, **options)  # type: ignore[arg-type]
        self.sent.append(self.clock.now())

    def receive(self, channel: str, **options: object) -> list[Delivery]:
        got = super().receive(channel, **options)  # type: ignore[arg-type]
        self.leased += len(got)
        return got

    def ack(self, delivery: Delivery) -> None:
        super().ack(delivery)
        self.sent.pop(0)
        self.leased -= 1

    def stats(self, channel: str) -> ChannelStats:
        waiting = len(self.sent) - self.leased
        oldest = self.clock.now() - self.sent[self.leased] if waiting else None
        return ChannelStats(pending=waiting, in_flight=self.leased, oldest_age=oldest)


class ZeroForUnknown(Counted):
    def stats(self, channel: str) -> ChannelStats:
        return replace(super().stats(channel), in_flight=0)


class LeasedArePending(Counted):
    def stats(self, channel: str) -> ChannelStats:
        honest = super().stats(channel)
        return replace(honest, pending=len(self.sent))


class AgeOfNothing(Counted):
    def stats(self, channel: str) -> ChannelStats:
        return replace(super().stats(channel), oldest_age=timedelta(0))


ALL: set[Figure] = {"pending", "in_flight", "oldest_age"}


def run(kind: type[Counted], knows: set[Figure]) -> None:
    clock = VirtualClock()
    transport = kind(clock)
    assert isinstance(transport, MeasurableTransport)
    check_channel_stats(transport, "orders", knows=knows, advance=clock.advance)


def test_an_honest_transport_passes() -> None:
    run(Counted, ALL)


@pytest.mark.parametrize(
    ("kind", "knows", "complaint"),
    [
        (ZeroForUnknown, {"pending", "oldest_age"}, "in_flight is 0, but the broker cannot"),
        (LeasedArePending, ALL, "after 3 sent and 1 leased: pending is 3, not 2"),
        (AgeOfNothing, ALL, "after a new channel: oldest_age is 0:00:00 with no message"),
    ],
)
def test_each_lie_fails_naming_the_figure(
    kind: type[Counted], knows: set[Figure], complaint: str
) -> None:
    with pytest.raises(AssertionError, match=complaint):
        run(kind, knows)
