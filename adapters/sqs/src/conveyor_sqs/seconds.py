"""SQS counts time in whole seconds: delays, visibility timeouts and long polls.

Conveyor's times are instants and ``timedelta`` with microseconds, so every duration handed to
SQS is rounded here, always up (a message is never delivered before its time, a lease never
ends before it was promised), and capped at what SQS accepts.
"""

from __future__ import annotations

import math
from datetime import timedelta

__all__ = [
    "SQS_MAX_DELAY",
    "SQS_MAX_VISIBILITY",
    "SQS_MAX_WAIT",
    "seconds_up",
    "lease_seconds",
    "max_visibility",
    "hiding_hops",
]

SQS_MAX_DELAY = timedelta(minutes=15)
"""The longest ``DelaySeconds`` SQS accepts."""
SQS_MAX_VISIBILITY = timedelta(hours=12)
"""The longest visibility timeout (lease) SQS accepts."""
SQS_MAX_WAIT = 20
"""The longest ``WaitTimeSeconds`` (long poll) SQS accepts, in seconds."""


def seconds_up(duration: timedelta) -> int:
    """Whole seconds, rounded up (never early), never negative."""
    return max(math.ceil(duration.total_seconds() - 1e-6), 0)


def max_visibility() -> int:
    """SQS's longest visibility timeout, in seconds."""
    return int(SQS_MAX_VISIBILITY.total_seconds())


def lease_seconds(lease: timedelta) -> int:
    """A lease as a visibility timeout: at least 1 s, at most 12 hours."""
    return min(max(seconds_up(lease), 1), max_visibility())


def hiding_hops(first_received_ms: float, due_ms: int) -> int:
    """Receives spent hiding a delayed FIFO message, so they do not count as deliveries.

    The first receive before the due time hides it until then, 12 hours at most per receive;
    a message first received after its due time was never hidden. (A consumer that dies
    between receiving and hiding it adds one: the count is approximate, as SQS's own is.)
    """
    window = SQS_MAX_VISIBILITY.total_seconds() * 1000
    return math.ceil(max(due_ms - first_received_ms, 0) / window)
