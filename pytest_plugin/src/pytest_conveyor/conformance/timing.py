"""How long the checks wait, taken from what the transport declares and whose clock it runs on.

Two time modes. On **virtual time** (a :class:`~conveyor.core.clock.SteppableClock`, as memory
and SQLite run in tests) the checks step the clock to each boundary exactly: nothing at
``boundary - precision``, the message at ``boundary``. On **real time** (a broker on its own
clock) they cannot stop the clock, so they poll: nothing is receivable while polling up to
``boundary - precision`` (a boundary measured from *before* the call that started it, so a
timed lease cannot honestly end earlier), and the message arrives by ``boundary + slack``
(measured from *after* that call). Waiting is always polling a deadline, never a bare sleep.

Durations follow the declared capabilities: the lease and delay are whole multiples of
``delay_precision`` (SQS counts seconds, and moto checks visibility in 1 s ticks), the slack
covers one precision step, and a transport declaring ``visibility="eventual"`` is given
``visibility`` more to show a message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from conveyor.transports.seam import Capabilities

__all__ = ["Timing"]


@dataclass(frozen=True, slots=True)
class Timing:
    """The durations the checks use.

    Attributes:
        lease: the lease every check receives with (and renews to).
        delay: how far ahead delayed, expiring or released messages are set.
        many: how many messages the exactly-once check pushes through.
        slack: on real time, how long past a boundary a check still waits for the message.
        visibility: how long an eventually visible transport may take to show a message.
        poll: the pause between two polls on real time.
        counts_every_redelivery: ``delivery_count`` grows by one on each redelivery. RabbitMQ's
            classic queues only flag a redelivery (every redelivery counts 2): set it False
            there, and the checks require only ``delivery_count >= 2`` on a redelivery.
    """

    lease: timedelta = timedelta(seconds=30)
    delay: timedelta = timedelta(seconds=5)
    many: int = 200
    slack: timedelta = timedelta(0)
    visibility: timedelta = timedelta(seconds=5)
    poll: timedelta = timedelta(milliseconds=20)
    counts_every_redelivery: bool = True

    @classmethod
    def virtual(cls) -> Timing:
        """Long leases and delays cost nothing on a stepped clock."""
        return cls()

    @classmethod
    def real(cls, capabilities: Capabilities) -> Timing:
        """Short, but never shorter than two precision steps of the transport."""
        precision = capabilities.delay_precision
        span = max(timedelta(milliseconds=300), 2 * precision)
        if precision > timedelta(0):
            steps = -(-span // precision)  # whole steps: a broker counting seconds keeps them
            span = steps * precision
        return cls(
            lease=span,
            delay=span,
            many=50,
            slack=precision + timedelta(milliseconds=250),
        )

    def tuned(self, **changes: object) -> Timing:
        """A copy with the given fields changed; ``None`` values leave a field as it is."""
        given = {name: value for name, value in changes.items() if value is not None}
        return replace(self, **given)  # type: ignore[arg-type]
