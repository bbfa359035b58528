"""Instants as integer unix milliseconds: how due times, leases and expiries reach the scripts.

The scripts compare integers, so every time is a whole millisecond (the precision the transport
declares). A not-before time rounds up and "now" rounds down: a message can become receivable up
to a millisecond late, never early. Times are read from the injected clock (DESIGN rule 2), not
from the server's ``TIME``, so a transport on a ``VirtualClock`` steps exactly like the in-memory
one; processes on several hosts need clocks kept in step (NTP), as with any lease.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conveyor.core.clock import ensure_aware

__all__ = ["to_ms", "from_ms", "duration_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def to_ms(instant: datetime, *, round_up: bool = False) -> int:
    """Milliseconds since the unix epoch, rounded down, or up for not-before times."""
    offset = ensure_aware(instant) - _EPOCH
    if round_up:
        return -(-offset // _MILLISECOND)
    return offset // _MILLISECOND


def from_ms(unix_ms: int) -> datetime:
    """The aware UTC instant of a millisecond value."""
    return _EPOCH + timedelta(milliseconds=unix_ms)


def duration_ms(duration: timedelta) -> int:
    """A duration in whole milliseconds, rounded up so a lease is never shorter than asked."""
    return -(-duration // _MILLISECOND)
