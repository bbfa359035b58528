"""Instants as integer unix milliseconds: how every time is stored in the SQLite tables.

Integers compare and index exactly, and SQLite has no datetime type, so every due time, lease
and expiry is a whole millisecond (the precision ``SqliteTransport`` declares). Rounding is
chosen so that nothing is ever early: a not-before time rounds up, "now" rounds down, so a
message can become receivable up to one millisecond late but never before its instant.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from conveyor.core.clock import ensure_aware

__all__ = ["to_unix_ms", "from_unix_ms", "duration_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
# The stored milliseconds a datetime can stand for; a row written by hand can hold any number.
_FIRST_MS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MILLISECOND
_LAST_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MILLISECOND


def to_unix_ms(instant: datetime, *, round_up: bool = False) -> int:
    """Milliseconds since the unix epoch, rounded down (for "now") or up (for not-before times).

    Args:
        instant: an aware datetime; naive ones are refused rather than read in local time.
        round_up: round a sub-millisecond remainder up, so a stored due time is never earlier
            than the instant it stands for.
    """
    offset = ensure_aware(instant) - _EPOCH
    if round_up:
        return -(-offset // _MILLISECOND)
    return offset // _MILLISECOND


def from_unix_ms(unix_ms: float) -> datetime:
    """The aware UTC instant of a stored millisecond value.

    A value past what a datetime holds (a lease of 2**62 or an infinite REAL written by hand)
    saturates at the first or last instant instead of raising ``OverflowError``: such a row
    never comes due, and reading when it would must not stop a consumer. A fraction of a
    millisecond (a REAL written by hand) rounds up, so the instant is never earlier than stored.
    """
    return _EPOCH + timedelta(milliseconds=math.ceil(min(max(unix_ms, _FIRST_MS), _LAST_MS)))


def duration_ms(duration: timedelta) -> int:
    """A duration in whole milliseconds, rounded up so a lease is never shorter than asked."""
    return -(-duration // _MILLISECOND)
