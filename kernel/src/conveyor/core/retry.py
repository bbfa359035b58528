"""Retry policies: instant retries, delayed retries with backoff, and when to stop.

Pure decisions (DESIGN rule 1): given a policy, the exception and the attempt number, say whether
to retry and after what delay. Following stamina, a policy names what it retries (``on=``), caps
its delay (``max_delay`` caps; it never stops retrying) and stops by count (``attempts``).

No delay is ever longer than :data:`MAX_RETRY_DELAY` (365 days): an exponential backoff without
``max_delay`` grows to it and stays there, and a policy that asks for more is refused when it is
built. The cap is applied before the power is computed, so delivery 2,000 of a doubling backoff
costs what delivery 2 costs and never overflows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from conveyor.core.errors import ConfigurationError, MessageRejected
from conveyor.core.instants import readable

__all__ = ["Backoff", "RetryPolicy", "MAX_RETRY_DELAY"]

#: The longest delay before a retry: longer ones are refused, uncapped growth stops here.
MAX_RETRY_DELAY = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How the delay grows between delayed retries.

    The delay before retry ``k`` (1-based) is ``initial * factor ** (k - 1)``, capped at
    ``max_delay`` (or at :data:`MAX_RETRY_DELAY`, 365 days, without one), then spread by
    ``jitter`` (a fraction: 0.1 means up to 10 % either way) using the kernel's seeded random
    source, so tests stay repeatable. Jitter never pushes a delay past the cap.
    """

    initial: timedelta
    factor: float = 1.0
    max_delay: timedelta | None = None
    jitter: float = 0.0

    def __post_init__(self) -> None:
        _check_delay(self.initial, "Backoff initial delay")
        if self.max_delay is not None:
            _check_delay(self.max_delay, "Backoff max_delay")
        for name in ("factor", "jitter"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigurationError(
                    f"Backoff {name} is a number, got a value of type {type(value).__name__}; "
                    f"for example "
                    f"Backoff.exponential(initial=timedelta(seconds=1), factor=2, jitter=0.1)."
                )
        if not (1 <= self.factor < math.inf):
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
        """The delay before retry number ``retry`` (1 for the first retry; below 1 counts as 1)."""
        cap = (self.max_delay or MAX_RETRY_DELAY).total_seconds()
        initial = self.initial.total_seconds()
        steps = max(retry, 1) - 1
        if initial <= 0 or self.factor == 1 or steps == 0:
            seconds = min(initial, cap)
        elif initial >= cap or steps * math.log(self.factor) >= math.log(cap / initial):
            seconds = cap  # decided in log space: the power itself may not fit in a float
        else:
            seconds = min(initial * self.factor**steps, cap)
        if self.jitter and rng is not None:
            seconds = min(seconds * (1 + rng.uniform(-self.jitter, self.jitter)), cap)
        return timedelta(milliseconds=round(seconds * 1000))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What to do when a handler raises, before the message counts as failed for good.

    Args:
        instant: retries at once, within the same delivery (each in a fresh transaction scope).
        delays: delayed retries: the message goes back to the channel it came from with the
            next delay. A :class:`Backoff`, or an explicit list of delays (the last repeats),
            each from zero to :data:`MAX_RETRY_DELAY`. None means no delayed retries.
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
        for name in ("instant", "attempts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigurationError(
                    f"RetryPolicy {name}= is a whole number, got a value of type "
                    f"{type(value).__name__}; "
                    f"for example RetryPolicy(instant=2, attempts=5)."
                )
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
            if isinstance(self.delays, timedelta) or not isinstance(self.delays, Sequence):
                raise ConfigurationError(
                    f"RetryPolicy delays= takes a Backoff or a list of timedeltas, got a value "
                    f"of type {type(self.delays).__name__}; for example "
                    f"delays=[timedelta(seconds=1), timedelta(minutes=1)] or "
                    f"delays=Backoff.fixed(timedelta(seconds=5))."
                )
            delays = tuple(self.delays)
            if not delays:
                raise ConfigurationError(
                    "RetryPolicy delays, when a list, needs at least one delay"
                )
            for index, delay in enumerate(delays):
                _check_delay(delay, f"RetryPolicy delays[{index}]")
            object.__setattr__(self, "delays", delays)

    def retries(self, error: BaseException) -> bool:
        """Whether this policy retries ``error`` at all (never a handler's own rejection)."""
        return (
            isinstance(error, self.on)
            and not isinstance(error, self.ignore)
            and not isinstance(error, MessageRejected)
        )

    def next_delay(
        self, error: BaseException, attempt: int, rng: random.Random | None = None
    ) -> timedelta | None:
        """The delay before delivery ``attempt + 1``, or None when no delayed retry is left.

        An ``attempt`` below 1 (a corrupt header) counts as the first delivery.
        """
        attempt = max(attempt, 1)
        if self.delays is None or attempt >= self.attempts or not self.retries(error):
            return None
        if isinstance(self.delays, Backoff):
            return self.delays.delay(attempt, rng)
        delays = tuple(self.delays)
        return delays[min(attempt, len(delays)) - 1]


def _check_delay(delay: object, what: str) -> None:
    """Refuse a delay that is not a timedelta from zero to :data:`MAX_RETRY_DELAY`."""
    if not isinstance(delay, timedelta):
        fix = f"timedelta(seconds={delay!r})" if isinstance(delay, int | float) else "timedelta"
        raise ConfigurationError(
            f"{what} must be a timedelta, got a value of type {type(delay).__name__}; "
            f"for example {fix}."
        )
    if delay < timedelta(0):
        raise ConfigurationError(f"{what} cannot be negative, got {readable(delay)}")
    if delay > MAX_RETRY_DELAY:
        raise ConfigurationError(
            f"{what} is {readable(delay)}, longer than the longest retry delay Conveyor keeps "
            f"({readable(MAX_RETRY_DELAY)}); a message that must wait longer belongs in a "
            f"store of its own. Use a delay of at most 365 days."
        )
