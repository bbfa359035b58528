"""Periodic handlers: ``@scheduled`` with cron, fixed rate and initial delay, and catch-up.

A scheduled endpoint is a consumer like an async channel (``run("nightly_report")``). Its
function may take a ``Context``; a message it returns is sent (None skips the tick).

Fixed rate (not fixed delay): the first tick is ``initial_delay`` after the endpoint starts,
each next one is ``every`` after the previous *planned* tick. Cron times are evaluated in UTC
unless ``zone`` names an IANA time zone. When ticks were missed (the process was stopped, or the
clock jumped), ``catch_up`` says what happens:

* ``"once"`` (default): one tick runs for the whole missed span, then the schedule resumes at
  its next planned time after now.
* ``"all"``: every missed tick runs, back to back (Ecotone's behaviour).
* ``"skip"``: missed ticks are dropped; the schedule resumes at its next planned time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from conveyor.core.errors import ConfigurationError
from conveyor.core.handlers import HandlerMark
from conveyor.core.retry import RetryPolicy

__all__ = ["Schedule", "scheduled", "CatchUp"]

F = TypeVar("F", bound=Callable[..., Any])
CatchUp = Literal["once", "all", "skip"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a scheduled endpoint ticks. Exactly one of ``cron`` and ``every`` is set."""

    cron: str | None = None
    every: timedelta | None = None
    initial_delay: timedelta = timedelta(0)
    zone: str | None = None
    catch_up: CatchUp = "once"

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ConfigurationError(
                '@scheduled needs exactly one of cron="0 3 * * *" or every=timedelta(...)'
            )
        if self.every is not None and self.every <= timedelta(0):
            raise ConfigurationError(f"@scheduled every= must be positive, got {self.every}")
        if self.initial_delay < timedelta(0):
            raise ConfigurationError(
                f"@scheduled initial_delay cannot be negative, got {self.initial_delay}"
            )
        if self.catch_up not in ("once", "all", "skip"):
            raise ConfigurationError(
                f"@scheduled catch_up={self.catch_up!r}; choose 'once', 'all' or 'skip'"
            )
        if self.cron is not None:
            try:
                next(CronSim(self.cron, datetime(2026, 1, 1, tzinfo=UTC)))
            except (CronSimError, ValueError) as error:
                raise ConfigurationError(
                    f"@scheduled cron={self.cron!r} is not a valid cron expression ({error}); "
                    f"use five fields: minute hour day-of-month month day-of-week, "
                    f'for example "0 3 * * *" for 03:00 every day.'
                ) from None
        self._zone()

    def _zone(self) -> ZoneInfo | None:
        if self.zone is None:
            return None
        try:
            return ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(
                f"@scheduled zone={self.zone!r} is not a known IANA time zone; "
                f"use a name like 'Europe/Paris', or leave it out for UTC."
            ) from None

    def first_due(self, started: datetime) -> datetime:
        """The first tick for an endpoint started at ``started``."""
        if self.every is not None:
            return started + self.initial_delay
        return self._cron_after(started + self.initial_delay, inclusive=True)

    def next_due(self, planned: datetime, now: datetime) -> datetime:
        """The tick after one planned at ``planned`` ran at ``now`` (``now >= planned``)."""
        following = self._after(planned)
        if self.catch_up == "all" or following > now:
            return following
        # Ticks were missed: resume at the first planned time after now.
        return self._first_after(planned, now)

    def is_missed(self, planned: datetime, now: datetime) -> bool:
        """Whether a tick planned at ``planned`` is so late that ``skip`` drops it."""
        return self.catch_up == "skip" and self._after(planned) <= now

    def _after(self, planned: datetime) -> datetime:
        if self.every is not None:
            return planned + self.every
        return self._cron_after(planned, inclusive=False)

    def _first_after(self, planned: datetime, now: datetime) -> datetime:
        if self.every is not None:
            missed = (now - planned) // self.every
            return planned + self.every * (missed + 1)
        return self._cron_after(now, inclusive=False)

    def _cron_after(self, instant: datetime, *, inclusive: bool) -> datetime:
        assert self.cron is not None
        zone = self._zone()
        local = instant.astimezone(zone) if zone else instant.astimezone(UTC)
        start = local - timedelta(seconds=1) if inclusive else local
        return next(CronSim(self.cron, start)).astimezone(UTC)

    def describe(self) -> str:
        if self.cron is not None:
            zone = f" ({self.zone})" if self.zone else " (UTC)"
            return f"cron {self.cron}{zone}"
        delay = f", first after {self.initial_delay}" if self.initial_delay else ""
        return f"every {self.every}{delay}"


def scheduled(
    *,
    cron: str | None = None,
    every: timedelta | None = None,
    initial_delay: timedelta = timedelta(0),
    zone: str | None = None,
    catch_up: CatchUp = "once",
    endpoint_id: str | None = None,
    retry: RetryPolicy | None = None,
    error_handler: object | None = None,
    dead_letter: bool | None = None,
) -> Callable[[F], F]:
    """Run a function periodically; a message it returns is sent (None skips the tick).

    The function takes no parameter or a ``Context``. Its endpoint id (the function's qualified
    name unless given) is the consumer name for ``run`` and ``conveyor run``.

    A failing tick is an endpoint's failure, with the options of ``@asynchronous``: ``retry``
    (instant retries at once; delayed ones run the tick again after the delay, beside the
    schedule), then ``error_handler`` (a handler taking a ``Failure``), then, with
    ``dead_letter=True``, a dead letter whose replay runs the tick again. These are the tick's
    own settings (a ``Messaging``-wide error handler or dead-letter setting does not apply);
    without them a failing tick is logged and the next one runs as planned.
    """
    schedule = Schedule(cron, every, initial_delay, zone, catch_up)

    def apply(function: F) -> F:
        from conveyor.core.handlers import AsyncOptions, set_option

        function.__conveyor_handler__ = HandlerMark("scheduled", None, endpoint_id)  # type: ignore[attr-defined]
        if retry is not None or error_handler is not None or dead_letter is not None:
            failure = AsyncOptions((), None, retry, error_handler, dead_letter)  # type: ignore[arg-type]
            set_option("tick_failure", failure)(function)
        return set_option("schedule", schedule)(function)

    return apply
