"""Retry policies: instant retries, delayed retries with backoff, and when to stop.

Pure decisions (DESIGN rule 1): given a policy, the exception and the attempt number, say whether
to retry and after what delay. Following stamina, a policy names what it retries (``on=``), caps
its delay (``max_delay`` caps; it never stops retrying) and stops by count (``attempts``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from conveyor.core.errors import ConfigurationError

__all__ = ["Backoff", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """How the delay grows between delayed retries.

    The delay before retry ``k`` (1-based) is ``initial * factor ** (k - 1)``, capped at
    ``max_delay``, then spread by ``jitter`` (a fraction: 0.1 means up to 10 % either way) using
    the kernel's seeded random source, so tests stay repeatable. Jitter never pushes a delay past
    ``max_delay``.
    """

    initial: timedelta
    factor: float = 1.0
    max_delay: timedelta | None = None
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.initial < timedelta(0):
            raise ConfigurationError(f"Backoff initial delay cannot be negative: {self.initial}")
        if self.factor < 1:
            raise ConfigurationError(f"Backoff factor must be at least 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"Backoff jitter is a fraction from 0 to 1: {self.jitter}")

    @classmethod
    def fixed(cls, delay: timedelta, *, jitter: float = 0.0) -> Backoff:
        """The same delay before every retry."""
        return cls(initial=delay, factor=1.0, jitter=jitter)

    @classmethod
    def exponential(
        cls,
        *,
        initial: timedelta,
        factor: float = 2.0,
        max_delay: timedelta | None = None,
        jitter: float = 0.0,
    ) -> Backoff:
        """A delay multiplied by ``factor`` before each further retry, capped at ``max_delay``."""
        return cls(initial=initial, factor=factor, max_delay=max_delay, jitter=jitter)

    def delay(self, retry: int, rng: random.Random | None = None) -> timedelta:
        """The delay before retry number ``retry`` (1 for the first retry)."""
        seconds = self.initial.total_seconds() * self.factor ** (retry - 1)
        if self.max_delay is not None:
            seconds = min(seconds, self.max_delay.total_seconds())
        if self.jitter and rng is not None:
            seconds *= 1 + rng.uniform(-self.jitter, self.jitter)
            if self.max_delay is not None:  # the cap holds after jitter too
                seconds = min(seconds, self.max_delay.total_seconds())
        return timedelta(milliseconds=round(seconds * 1000))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What to do when a handler raises, before the message counts as failed for good.

    Args:
        instant: retries at once, within the same delivery (each in a fresh transaction scope).
        delays: delayed retries: the message goes back to the channel it came from with the
            next delay. A :class:`Backoff`, or an explicit list of delays (the last repeats).
            None means no delayed retries.
        attempts: deliveries in all, the first included, after which delayed retries stop.
        on: only these exception types are retried (default: any ``Exception``).
        ignore: these types are never retried, even when they match ``on``.
    """

    instant: int = 0
    delays: Backoff | Sequence[timedelta] | None = None
    attempts: int = 3
    on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,)
    ignore: tuple[type[BaseException], ...] | type[BaseException] = field(default=())

    def __post_init__(self) -> None:
        if self.instant < 0:
            raise ConfigurationError(
                f"RetryPolicy instant retries cannot be negative: {self.instant}"
            )
        if self.attempts < 1:
            raise ConfigurationError(
                f"RetryPolicy attempts counts deliveries, the first included, so it is at least "
                f"1; got {self.attempts}."
            )
        for name in ("on", "ignore"):
            value = getattr(self, name)
            types = (value,) if isinstance(value, type) else tuple(value)
            for kind in types:
                if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                    raise ConfigurationError(
                        f"RetryPolicy {name}= takes exception types, got {kind!r}; for example "
                        f"{name}=(TimeoutError, ConnectionError)."
                    )
            object.__setattr__(self, name, types)
        if not isinstance(self.delays, Backoff | None):
            delays = tuple(self.delays)
            if not delays:
                raise ConfigurationError(
                    "RetryPolicy delays, when a list, needs at least one delay"
                )
            object.__setattr__(self, "delays", delays)

    def retries(self, error: BaseException) -> bool:
        """Whether this policy retries ``error`` at all."""
        return isinstance(error, self.on) and not isinstance(error, self.ignore)

    def next_delay(
        self, error: BaseException, attempt: int, rng: random.Random | None = None
    ) -> timedelta | None:
        """The delay before delivery ``attempt + 1``, or None when no delayed retry is left."""
        if self.delays is None or attempt >= self.attempts or not self.retries(error):
            return None
        if isinstance(self.delays, Backoff):
            return self.delays.delay(attempt, rng)
        delays = tuple(self.delays)
        return delays[min(attempt, len(delays)) - 1]
