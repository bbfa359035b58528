"""A production worker: several consumers of one ``Messaging`` in one process, on threads.

``Driver.run`` serves one consumer in the calling thread, which suits tests and virtual time.
An operator wants one process for N channels and M schedules, with several messages in flight
(Celery's ``-Q a,b -c 8``): :class:`Worker` runs ``concurrency`` threads that take messages from
every channel in turn, and one thread for the schedules, which waits for the next tick on the
stop event (never a sleep, so a signal ends the wait at once).

Stopping (``conveyor.drivers.stopping``): a limit, an empty round, a failure with
``stop_on_failure``, the time or memory limit, or SIGTERM/SIGINT stop the threads from taking
work; the worker returns once what is in flight is finished. A second signal, or ``grace``
running out, returns at once: the threads are daemons, and the messages they hold come back
when their lease runs out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from conveyor.core.clock import Clock, SteppableClock
from conveyor.core.errors import ConfigurationError
from conveyor.drivers.driving import Driver, RunResult
from conveyor.drivers.resident import resident_mib
from conveyor.drivers.stopping import Stopping

__all__ = ["Worker", "WorkerSettings"]

_POLL = timedelta(milliseconds=200)  # the longest idle wait of a channel thread
_FIRST_BACKOFF = 0.005  # seconds; idle waits double from here up to _POLL
_WATCH = 0.5  # seconds between the main thread's looks at the memory limit


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker runs and when it stops (whichever limit comes first).

    Attributes:
        concurrency: threads taking messages from the channels (schedules have one more).
        limit: stop after this many messages and ticks, in all.
        time_limit: stop after this long.
        memory_limit: stop once resident memory reaches this many MiB.
        stop_on_failure: stop on the first handler failure and re-raise it.
        finish_when_empty: stop once nothing is due on any consumer.
        grace: after a stop is asked for, how long to wait for messages in flight (None: as
            long as they take; a second signal stops at once either way).
    """

    concurrency: int = 1
    limit: int | None = None
    time_limit: timedelta | None = None
    memory_limit: int | None = None
    stop_on_failure: bool = False
    finish_when_empty: bool = False
    grace: timedelta | None = None


class _Tally:
    """What the threads share: work taken, steps under way, rounds, and the first failure.

    ``generation`` moves on with every message handled, so a thread whose whole round found
    nothing, while no step was under way and nothing was handled meanwhile, knows that nothing
    is due anywhere (a message a handler sent during the round would have moved it on).
    """

    __slots__ = ("done", "failure", "generation", "lock", "running", "under_way")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = 0
        self.under_way = 0
        self.generation = 0
        self.running = 0
        self.failure: BaseException | None = None


class Worker:
    """Runs several consumers of one ``Messaging`` on threads until a limit or a signal."""

    __slots__ = ("_channels", "_clock", "_driver", "_schedules", "_settings", "_stop", "_tally")

    def __init__(
        self, driver: Driver, names: list[str], settings: WorkerSettings, clock: Clock
    ) -> None:
        if isinstance(clock, SteppableClock):
            raise ConfigurationError(
                f"a worker waits for real time, and this Messaging runs on {clock!r}; on "
                f"virtual time use run(...), advance(...) or run_until_idle(advance_time=True)."
            )
        if settings.concurrency < 1:
            raise ConfigurationError(f"concurrency={settings.concurrency} must be at least 1")
        if settings.limit is not None and settings.limit < 1:
            raise ConfigurationError(f"limit={settings.limit} must be at least 1")
        known = driver.names()
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise ConfigurationError(
                f"no consumer named {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"consumers: {', '.join(known) or 'none'}."
            )
        self._driver = driver
        self._clock = clock
        self._settings = settings
        self._schedules = [name for name in dict.fromkeys(names) if name in driver.scheduled]
        self._channels = [n for n in dict.fromkeys(names) if n not in driver.scheduled]
        self._stop = Stopping()
        self._tally = _Tally()

    def request_stop(self) -> None:
        """Stop taking work and finish what is in flight (what SIGTERM does)."""
        self._stop.request("signal")

    def run(self) -> RunResult:
        """Serve the consumers; return how it ended once they are stopped.

        Raises:
            Exception: with ``stop_on_failure``, the first handler failure; always, a transport
                that cannot be reached (after the other threads finished their messages).
        """
        stop, settings = self._stop, self._settings
        name = ", ".join([*self._channels, *self._schedules])
        started = self._clock.now()
        self._driver.observe_logging()
        threads = [
            threading.Thread(target=self._guarded, args=(self._serve_channels, index))
            for index in range(settings.concurrency if self._channels else 0)
        ]
        if self._schedules:
            threads.append(threading.Thread(target=self._guarded, args=(self._serve_schedules, 0)))
        self._tally.running = len(threads)
        try:
            with stop.signals():
                for index, thread in enumerate(threads):
                    thread.name = f"conveyor-worker-{index}"
                    thread.daemon = True  # a forced stop leaves them to the process's exit
                    thread.start()
                logging.getLogger("conveyor").info(
                    "serving %s on %d thread%s; SIGTERM or SIGINT stops taking work",
                    name,
                    len(threads),
                    "" if len(threads) == 1 else "s",
                )
                self._watch(started)
                finished = self._finish(threads)
        finally:
            stop.close()
        failure = self._tally.failure
        if failure is not None and finished:
            raise failure
        reason = stop.reason or "signal"
        if not finished:
            reason = f"{reason}, then {'a second signal' if stop.forced.is_set() else 'grace'}"
        return RunResult(name, self._tally.done, reason)

    # ------------------------------------------------------------------ the main thread

    def _watch(self, started: datetime) -> None:
        """Wait for a stop; apply the time and memory limits meanwhile."""
        stop, settings = self._stop, self._settings
        while not stop.stopping.is_set():
            wait = _WATCH
            if settings.time_limit is not None:
                left = settings.time_limit - (self._clock.now() - started)
                if left <= timedelta(0):
                    stop.request("time limit")
                    break
                wait = min(wait, left.total_seconds())
            if settings.memory_limit is not None and resident_mib() >= settings.memory_limit:
                stop.request("memory limit")
                break
            stop.wait_main(wait)

    def _finish(self, threads: list[threading.Thread]) -> bool:
        """Wait for the messages in flight; False if a second signal or the grace cut it short."""
        stop, grace = self._stop, self._settings.grace
        deadline = None if grace is None else self._clock.now() + grace
        with self._tally.lock:
            under_way = self._tally.under_way
        logging.getLogger("conveyor").info(
            "stopping (%s): taking no more work; %d in flight to finish%s",
            stop.reason,
            under_way,
            "" if grace is None else f" within {grace}",
        )
        while any(thread.is_alive() for thread in threads):
            if stop.forced.is_set():
                return False
            wait = _WATCH
            if deadline is not None:
                left = (deadline - self._clock.now()).total_seconds()
                if left <= 0:
                    return False
                wait = min(wait, left)
            stop.wait_main(wait)
        return True

    # ------------------------------------------------------------------ the threads

    def _guarded(self, serve: Callable[[int], None], index: int) -> None:
        tally = self._tally
        try:
            serve(index)
        except BaseException as error:  # a transport lost, or stop_on_failure
            with tally.lock:
                if tally.failure is None:
                    tally.failure = error
            self._stop.request("failure")
        finally:
            with tally.lock:
                tally.running -= 1
            self._stop.wake()

    def _claim(self) -> bool:
        """Reserve one message of the limit before taking it; False once the limit is reached."""
        tally, limit = self._tally, self._settings.limit
        with tally.lock:
            if limit is not None and tally.done + tally.under_way >= limit:
                if tally.done >= limit:
                    self._stop.request("limit")
                return False
            tally.under_way += 1
            return True

    def _settle_claim(self, handled: bool) -> None:
        tally = self._tally
        with tally.lock:
            tally.under_way -= 1
            if handled:
                tally.done += 1
                tally.generation += 1
            reached = self._settings.limit is not None and tally.done >= self._settings.limit
        if reached:
            self._stop.request("limit")

    def _step(self, name: str, wait: timedelta | None = None) -> bool | None:
        """One message (or tick) of ``name``; None when the limit allows no more."""
        if not self._claim():
            return None
        handled = False
        try:
            handled = self._driver.step(
                name, stop_on_failure=self._settings.stop_on_failure, wait=wait
            )
        finally:
            self._settle_claim(handled)
        return handled

    def _serve_channels(self, index: int) -> None:
        names, stopping = self._channels, self._stop.stopping
        backoff = _FIRST_BACKOFF
        turn = index
        while not stopping.is_set():
            generation = self._tally.generation
            found = False
            for offset in range(len(names)):  # each thread starts its round elsewhere
                handled = self._step(names[(turn + offset) % len(names)])
                if handled is None:
                    stopping.wait(_POLL.total_seconds())  # the limit: wait for those in flight
                    break
                found = found or handled
            turn += 1
            if found:
                backoff = _FIRST_BACKOFF
                continue
            if self._settings.finish_when_empty and self._idle_since(generation):
                self._stop.request("empty")
                return
            if len(names) == 1 and not self._settings.finish_when_empty:
                # The transport's long poll. Not when finishing empty: a thread in a long poll
                # counts as under way, and no round would ever find every thread idle.
                self._step(names[0], wait=_POLL)
            else:
                stopping.wait(backoff)
                backoff = min(backoff * 2, _POLL.total_seconds())

    def _idle_since(self, generation: int) -> bool:
        tally = self._tally
        with tally.lock:
            return tally.generation == generation and tally.under_way == 0

    def _serve_schedules(self, index: int) -> None:
        names, stopping, clock = self._schedules, self._stop.stopping, self._clock
        while not stopping.is_set():
            generation = self._tally.generation
            for name in names:
                if stopping.is_set() or self._step(name) is None:
                    break
            empty = self._settings.finish_when_empty and not self._channels
            if empty and self._idle_since(generation):
                self._stop.request("empty")
                return
            due = self._driver.next_due(names)
            wait = _POLL if due is None else max(due - clock.now(), timedelta(0))
            if wait > timedelta(0):
                stopping.wait(wait.total_seconds())
