"""How a consumer waits out a lost connection: retries with a growing pause, each logged.

A consumer that loses Redis (a restart, a network blip) should not die: it retries its receive
after 0.1 s, 0.2 s, 0.4 s ... up to ``longest`` between tries, logging each attempt at WARNING
with the server's address (never the URL), and once more at INFO when it is back. After
``give_up_after`` without success it raises the last ``ConnectionFailed``, so a worker whose
server is gone for good stops with a clear error instead of hanging. Sends are not retried
here: a send that cannot reach Redis raises at once, so the caller knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["Reconnect"]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The reconnect schedule of a consuming receive.

    Attributes:
        first: the pause after the first failed attempt.
        factor: how much each pause grows.
        longest: the longest pause between attempts.
        give_up_after: how long to keep trying before raising; None retries forever.
    """

    first: timedelta = timedelta(milliseconds=100)
    factor: float = 2.0
    longest: timedelta = timedelta(seconds=5)
    give_up_after: timedelta | None = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.first <= timedelta(0) or self.longest < self.first or self.factor < 1:
            raise ValueError(
                f"Reconnect(first={self.first}, factor={self.factor}, longest={self.longest}) "
                f"needs 0 < first <= longest and factor >= 1."
            )

    def pause(self, attempt: int) -> timedelta:
        """The pause after failed attempt number ``attempt`` (1 for the first)."""
        return min(self.first * self.factor ** (attempt - 1), self.longest)
