"""An asyncio event loop on virtual time, for tests: ``asyncio.sleep`` follows a ``VirtualClock``.

As trio's ``MockClock`` with autojump: the loop reads its time from the clock, and when nothing is
runnable and only timers are waiting, it jumps the clock to the earliest timer instead of
sleeping. So ``await asyncio.sleep(3600)`` in a handler (a rate limit, a backoff, a timeout)
returns at once, the clock an hour later, and Conveyor's own due times move with it.

It never jumps while real work is in flight: while a thread started through the loop
(``asyncio.to_thread``, ``run_in_executor``) runs, or while a socket or pipe other than the loop's
own is registered, it waits on the selector in real time (in short slices, so finished work is
seen promptly) and the clock stays put (``../shared/reference/broker-adapters.md`` section 5).

Use it with ``asyncio.Runner(loop_factory=virtual_loop(clock))`` (or
``asyncio.run(main(), loop_factory=...)`` on Python 3.12+).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import timedelta
from typing import Any, TypeVar

from conveyor.core.clock import VirtualClock

__all__ = ["VirtualTimeLoop", "virtual_loop"]

T = TypeVar("T")

_REAL_SLICE = 0.05
"""Seconds of real time the loop waits at most at once while real work is in flight."""


class _JumpingSelector(selectors.DefaultSelector):
    """The platform's selector, except that an idle wait on timers jumps the clock instead."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.threads = 0
        self.own_fds = 0  # the loop's self-pipe, registered by the loop itself

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            ready: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
            return ready
        ready = super().select(0)
        if ready:
            return ready
        if self.threads or len(self.get_map()) > self.own_fds:
            waited: list[tuple[selectors.SelectorKey, int]] = super().select(
                min(timeout, _REAL_SLICE)
            )
            return waited
        self.clock.advance(timedelta(seconds=timeout))
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` is a ``VirtualClock``'s, jumping when idle."""

    def __init__(self, clock: VirtualClock) -> None:
        self._virtual = _JumpingSelector(clock)
        super().__init__(self._virtual)
        self._virtual.own_fds = len(self._virtual.get_map())

    def time(self) -> float:
        return self._virtual.clock.monotonic()

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self._virtual.threads += 1

        def finished(_: asyncio.Future[T]) -> None:
            self._virtual.threads -= 1

        future.add_done_callback(finished)
        return future


def virtual_loop(clock: VirtualClock) -> Callable[[], VirtualTimeLoop]:
    """A ``loop_factory`` for ``asyncio.Runner``: loops on ``clock``'s virtual time."""
    return lambda: VirtualTimeLoop(clock)
