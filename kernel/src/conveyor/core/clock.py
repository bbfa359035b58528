"""Time, injected: the only module that reads the OS clock or sleeps.

Every due time in Conveyor (delays, retries, leases, schedules, timestamps) is read from a
:class:`Clock`. Production uses :class:`SystemClock`; tests use :class:`VirtualClock`, which only
moves when told to and never goes backwards, so the same scenario always gives the same journal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from conveyor.core.errors import ClockError, InstantOutOfRange
from conveyor.core.instants import LATEST, before_latest, later, readable

__all__ = [
    "Clock",
    "SteppableClock",
    "SystemClock",
    "VirtualClock",
    "ensure_aware",
    "pause",
]


@runtime_checkable
class Clock(Protocol):
    """Where Conveyor reads the current time from, and how it waits."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait for ``seconds``. A virtual clock advances instead of waiting."""
        ...


def ensure_aware(instant: datetime, *, what: str = "instant") -> datetime:
    """Return ``instant`` in UTC, refusing naive datetimes that would be read in local time."""
    if type(instant) is datetime and instant.tzinfo is UTC:  # already as Conveyor keeps time
        return instant
    if not isinstance(instant, datetime):
        raise ClockError(
            f"{what} must be a datetime, got {instant!r}; for example "
            f"datetime(2026, 1, 1, tzinfo=UTC)."
        )
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ClockError(
            f"{what} {instant.isoformat()} has no timezone. Conveyor keeps every time in "
            f"aware UTC; pass datetime(..., tzinfo=UTC) or instant.replace(tzinfo=UTC)."
        )
    return instant.astimezone(UTC)


class SystemClock:
    """The operating system's wall clock, in UTC.

    It reads ``datetime.now(UTC)`` on every call, so freezegun and time-machine, which patch that
    call, freeze it too: code under ``freeze_time`` sees the frozen instant.
    """

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never jump; used for run-time limits."""
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock that stands still until it is advanced, and never goes backwards.

    Modelled on trio's ``MockClock``: time is a value the test owns. ``sleep`` advances the clock
    instead of waiting, so a consumer loop that sleeps until its next due time finishes at once.
    """

    __slots__ = ("_followers", "_now")

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (
            before_latest(ensure_aware(start, what="VirtualClock start"), what="VirtualClock start")
            if start is not None
            else _DEFAULT_START
        )
        self._followers: list[Callable[[datetime], None]] = []

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            try:
                duration = timedelta(seconds=seconds)
            except (OverflowError, ValueError):  # inf, nan, or more than 999,999,999 days
                raise InstantOutOfRange(
                    f"VirtualClock.sleep({seconds!r}) cannot be a duration: sleep at most "
                    f"until before {LATEST.isoformat()}."
                ) from None
            self.advance(duration)

    def monotonic(self) -> float:
        """Seconds since an arbitrary origin, in virtual time; used for run-time limits."""
        return (self._now - _DEFAULT_START).total_seconds()

    def advance(self, duration: timedelta) -> datetime:
        """Move forward by ``duration`` (zero is allowed) and return the new instant.

        Raises:
            ClockError: ``duration`` is not a ``timedelta``, or is negative.
            InstantOutOfRange: the clock would reach the year 9000 (:data:`LATEST`).
        """
        if not isinstance(duration, timedelta):
            raise ClockError(
                f"VirtualClock.advance() takes a timedelta, got a value of type "
                f"{type(duration).__name__}; "
                f"for example advance(timedelta(seconds=5))."
            )
        if duration < timedelta(0):
            raise ClockError(
                f"cannot advance a VirtualClock by a negative duration ({readable(duration)}); "
                f"it is at {self._now.isoformat()} and never goes backwards."
            )
        return self._move(later(self._now, duration, what="VirtualClock.advance()"))

    def advance_to(self, instant: datetime) -> datetime:
        """Move forward to ``instant``; an instant before now is an error, not a no-op."""
        target = ensure_aware(instant, what="advance_to target")
        if target < self._now:
            raise ClockError(
                f"cannot move a VirtualClock back from {self._now.isoformat()} to "
                f"{target.isoformat()}; it never goes backwards. Advance to a later instant, "
                f"or build a new VirtualClock for a new scenario."
            )
        return self._move(before_latest(target, what="VirtualClock.advance_to()"))

    def _move(self, target: datetime) -> datetime:
        self._now = target
        for follow in self._followers:
            follow(target)
        return target

    @contextmanager
    def bound(self) -> Iterator[VirtualClock]:
        """Make ``datetime.now()`` and ``time.time()`` in user code read this clock in the block.

        Uses time-machine (``pip install "conveyor[time-machine]"``) with ``tick=False``; the
        patched time follows this clock every time it is advanced inside the block.
        """
        try:
            import time_machine
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ClockError(
                "VirtualClock.bound() needs the time-machine package: "
                'pip install "conveyor[time-machine]"'
            ) from error
        traveller = time_machine.travel(self._now, tick=False)
        coordinates = traveller.start()
        self._followers.append(coordinates.move_to)
        try:
            yield self
        finally:
            self._followers.remove(coordinates.move_to)
            traveller.stop()

    def __repr__(self) -> str:
        return f"VirtualClock({self._now.isoformat()})"


_DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


@runtime_checkable
class SteppableClock(Clock, Protocol):
    """A clock whose time is stepped by its owner: virtual time, as ``VirtualClock`` gives.

    The capability the drivers check (once, when a ``Messaging`` is built) to know that
    ``advance`` and ``run_until_idle(advance_time=True)`` may move time, and that a consumer
    waits on its own timers instead of sleeping.
    """

    def advance_to(self, instant: datetime) -> datetime: ...


async def pause(clock: Clock, seconds: float) -> None:
    """Wait ``seconds`` without blocking the event loop: a stepped (virtual) clock advances at
    once, any other clock is awaited on the running loop."""
    if isinstance(clock, SteppableClock):
        clock.sleep(seconds)
    elif seconds > 0:
        await asyncio.sleep(seconds)
