"""A check for :class:`~conveyor.transports.seam.MeasurableTransport`: what ``stats`` reports.

``conveyor list`` shows each channel's pending messages, those in flight and the age of the
oldest waiting one, as the broker reads them. A broker that cannot tell a figure leaves it
None, and the check holds it to that: a transport that claims a figure must get it right, one
that does not must not invent it (a 0 shown for "unknown" hides a backlog).

The check sends three messages, leases one and acknowledges it, reading the figures at each
step. On virtual time (``advance`` given) the readings must be exact at once, the age to the
millisecond; on a broker's own clock they are polled until they match or ``within`` runs out,
since some brokers count approximately (SQS) or a moment late. Pytest-free, so that the tests
of a third-party transport can run it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Literal

from conveyor.core.clock import Clock, SystemClock
from conveyor.transports.seam import (
    ChannelOptions,
    ChannelStats,
    Delivery,
    MeasurableTransport,
    WireMessage,
)

__all__ = ["Figure", "check_channel_stats"]

Figure = Literal["pending", "in_flight", "oldest_age"]

_LEASE = timedelta(seconds=60)
_WAITED = timedelta(seconds=90)
_POLL = timedelta(milliseconds=50)


def check_channel_stats(
    transport: MeasurableTransport,
    channel: str,
    *,
    knows: Collection[Figure],
    advance: Callable[[timedelta], None] | None = None,
    within: timedelta = timedelta(seconds=15),
    pushed_ahead: int = 0,
) -> None:
    """Check ``transport.stats`` through an empty channel, three sent, one leased, one acked.

    Args:
        transport: an open transport; ``channel`` must be new (nothing on it).
        knows: the figures the transport's broker can tell; the others must be None.
        advance: moves the transport's virtual clock; None on a broker's own clock.
        within: on a broker's own clock, how long a reading may take to match.
        pushed_ahead: how many messages a broker may push to a consumer that received once,
            beyond those it leased (RabbitMQ: the prefetch); the broker counts them neither
            pending nor known in flight, so pending may read that much lower from then on.
    """
    wait = _Waiter(transport, channel, set(knows), exact=advance is not None, within=within)
    transport.declare(ChannelOptions(channel, lease=_LEASE))
    wait.until("a new channel", pending=0, in_flight=0)

    for body in (b"one", b"two", b"three"):
        transport.send(channel, WireMessage(body))
    if advance is not None:
        advance(_WAITED)
    wait.until("3 messages sent", pending=3, in_flight=0, waited=_WAITED)

    delivery = wait.receive()
    wait.pushed_ahead = pushed_ahead
    wait.until("3 sent and 1 leased", pending=2, in_flight=1, waited=_WAITED)

    transport.ack(delivery)
    wait.until("3 sent and 1 acknowledged", pending=2, in_flight=0, waited=_WAITED)


class _Waiter:
    """Reads ``stats`` until it matches, once on virtual time, polled on a broker's clock."""

    def __init__(
        self,
        transport: MeasurableTransport,
        channel: str,
        knows: set[Figure],
        *,
        exact: bool,
        within: timedelta,
    ) -> None:
        self.transport, self.channel, self.knows = transport, channel, knows
        self.exact, self.within = exact, within
        self.pushed_ahead = 0
        self.clock: Clock = SystemClock()  # real waits only: a virtual clock must not move
        self.name = type(transport).__name__

    def until(
        self, moment: str, *, pending: int, in_flight: int, waited: timedelta | None = None
    ) -> None:
        deadline = self.clock.now() + self.within
        while True:
            stats = self.transport.stats(self.channel)
            problems = self._problems(stats, pending, in_flight, waited)
            if not problems or self.exact or self.clock.now() >= deadline:
                break
            self.clock.sleep(_POLL.total_seconds())
        assert not problems, f"{self.name}.stats() after {moment}: {'; '.join(problems)}"

    def _problems(
        self, stats: ChannelStats, pending: int, in_flight: int, waited: timedelta | None
    ) -> list[str]:
        problems = []
        expected: dict[Figure, object] = {"pending": pending, "in_flight": in_flight}
        for figure, value in (("pending", stats.pending), ("in_flight", stats.in_flight)):
            if figure not in self.knows:
                if value is not None:
                    problems.append(f"{figure} is {value}, but the broker cannot tell it")
            elif figure == "pending" and value is not None and self.pushed_ahead:
                if not pending - self.pushed_ahead <= value <= pending:
                    low = pending - self.pushed_ahead
                    problems.append(f"pending is {value}, not between {low} and {pending}")
            elif value != expected[figure]:
                problems.append(f"{figure} is {value}, not {expected[figure]}")
        problems.extend(self._age_problems(stats.oldest_age, pending, waited))
        return problems

    def _age_problems(
        self, age: timedelta | None, pending: int, waited: timedelta | None
    ) -> list[str]:
        if "oldest_age" not in self.knows or pending == 0:
            return [] if age is None else [f"oldest_age is {age} with no message waiting"]
        if age is None:
            return ["oldest_age is None with messages waiting"]
        if self.exact and waited is not None and age != waited:
            return [f"oldest_age is {age}, not the {waited} the oldest message waited"]
        if age < timedelta(0):
            return [f"oldest_age is negative: {age}"]
        return []

    def receive(self) -> Delivery:
        deadline = self.clock.now() + self.within
        while True:
            got = self.transport.receive(self.channel, lease=_LEASE, wait=_POLL)
            if got:
                return got[0]
            if self.exact or self.clock.now() >= deadline:
                raise AssertionError(
                    f"{self.name}.receive() gave nothing with 3 messages on {self.channel!r}"
                )
