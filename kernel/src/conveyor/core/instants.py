"""Adding durations to instants without ever overflowing, and saying durations readably.

``datetime + timedelta`` raises a bare ``OverflowError`` past year 9999, and a ``timedelta`` can be
2.7 million years long, so any sum of a user's duration and a clock's instant can crash. The
kernel never adds them directly: :func:`later` checks the sum against :data:`LATEST` first and
raises :class:`~conveyor.core.errors.InstantOutOfRange`, which names what was being computed, the
limit and the fix. Year 9000 is the limit rather than ``datetime.max`` so that whatever the kernel
adds to an instant that passed the check (a lease, a retry delay of at most a year) still fits.

Transports that must not fail (a lease taken when some clock is already near ``datetime.max``)
use :func:`saturating_later`, which stops at the end of time instead.

A negative ``timedelta`` prints as ``-1 day, 23:59:55``; error messages use :func:`readable`
(``-5 seconds``) instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conveyor.core.errors import InstantOutOfRange

__all__ = ["LATEST", "END_OF_TIME", "later", "before_latest", "saturating_later", "readable"]

#: Every due time, expiry and virtual clock reading the kernel computes is before this instant.
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
#: The last instant a ``datetime`` holds, in UTC: where :func:`saturating_later` stops.
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def later(instant: datetime, duration: timedelta, *, what: str) -> datetime:
    """``instant + duration``, refused with a clear error when it would reach :data:`LATEST`.

    Args:
        instant: an aware instant.
        duration: any ``timedelta`` (negative ones too).
        what: how the caller names the result in the error, for example ``"send(delay=...)"``.

    Raises:
        InstantOutOfRange: the sum is not before :data:`LATEST` (or before ``datetime.min``).
    """
    try:
        result = instant + duration
    except OverflowError:
        result = None
    if result is None or result >= LATEST:
        raise InstantOutOfRange(
            f"{what}: {readable(duration)} after {instant.isoformat()} is past the latest "
            f"instant Conveyor keeps ({LATEST.isoformat()}); due times, expiries and clocks "
            f"must be before the year {LATEST.year}. Use a shorter duration (a timedelta of "
            f"days or years, not timedelta.max), or leave the option out for no limit."
        )
    return result


def before_latest(instant: datetime, *, what: str) -> datetime:
    """``instant`` itself, refused with a clear error unless it is before :data:`LATEST`.

    Raises:
        InstantOutOfRange: ``instant`` is not before :data:`LATEST`.
    """
    if instant >= LATEST:
        raise InstantOutOfRange(
            f"{what} {instant.isoformat()} is past the latest instant Conveyor keeps "
            f"({LATEST.isoformat()}); due times, expiries and clocks must be before the year "
            f"{LATEST.year}. Use an earlier instant."
        )
    return instant


def saturating_later(instant: datetime, duration: timedelta) -> datetime:
    """``instant + duration``, or :data:`END_OF_TIME` when that would overflow.

    For a transport's lease expiry: a lease that lasts until the end of time is what such a
    sum means, and a receive must not fail because a clock reads far in the future.
    """
    try:
        return instant + duration
    except OverflowError:
        return END_OF_TIME if duration > timedelta(0) else datetime.min.replace(tzinfo=UTC)


def readable(duration: timedelta) -> str:
    """A duration as a person writes it: ``-5 seconds``, ``1 day 2 hours``, ``1.5 seconds``.

    Example:
        >>> readable(timedelta(seconds=-5))
        '-5 seconds'
        >>> readable(timedelta(days=1, hours=2, milliseconds=500))
        '1 day 2 hours 0.5 seconds'
    """
    sign = "-" if duration < timedelta(0) else ""
    duration = abs(duration)
    hours, rest = divmod(duration.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        _count(duration.days, "day"),
        _count(hours, "hour"),
        _count(minutes, "minute"),
    ]
    if duration.microseconds:
        fraction = f"{seconds}.{duration.microseconds:06d}".rstrip("0")
        parts.append(f"{fraction} seconds")
    else:
        parts.append(_count(seconds, "second"))
    text = " ".join(part for part in parts if part)
    return sign + (text or "0 seconds")


def _count(number: int, unit: str) -> str:
    if not number:
        return ""
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"
