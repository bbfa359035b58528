"""Driving work and time in the asyncio driver: consumer runs, settling, stepping virtual time.

Settling and stepping are the sync driver's (``conveyor.drivers.driving``), one message at a time
in one task, so the same scenario gives the same journal. Where the loops decide (whether to jump
the clock and where to, why a run stops, how long an idle consumer waits) they call the same
functions as the sync driver.

On a ``VirtualClock`` the driver never sleeps for a duration: when nothing is runnable it jumps
the clock to the next due timer (a delayed message, a retry, a lease, a schedule). On a real clock
an idle consumer waits on its transport's long poll, or on the stop event with a timeout, so
SIGTERM and SIGINT end every wait at once.

``run(..., concurrency=n)`` keeps up to ``n`` messages in flight, each in its own task (its own
scope: collector, causation, failure records); a signal stops taking messages and the run returns
once those in flight are finished.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

from conveyor.core import lifecycle
from conveyor.core.clock import Clock, SteppableClock
from conveyor.core.errors import ConfigurationError, SettleError
from conveyor.core.journal import RecordKind
from conveyor.core.message import Message
from conveyor.core.registry import HandlerSpec
from conveyor.core.routing import Router
from conveyor.drivers.activity import activity_logged, log_consumed
from conveyor.drivers.async_consumption import AsyncConsumption
from conveyor.drivers.async_context import AsyncBuses
from conveyor.drivers.async_dispatch import AsyncDispatch, awaited
from conveyor.drivers.async_plans import AsyncErrorHandlers
from conveyor.drivers.channel_runtime import AsyncChannelRuntime
from conveyor.drivers.driving import (
    ConsumerHooks,
    RunResult,
    ScheduledEndpoint,
    StepBudget,
    check_run,
    check_time_limit,
    finishes_when_empty,
    format_records,
    idle_wait,
    next_jump,
    stop_reason,
)
from conveyor.drivers.leases import AsyncLeaseKeeper
from conveyor.drivers.recording import Recorder
from conveyor.drivers.ticks import TickFailures, log_tick_failure, replayed_tick
from conveyor.stores.dead_letters import DeadLetter
from conveyor.stores.schedules import InMemoryScheduleStore, ScheduleStore
from conveyor.transports.seam import Delivery

__all__ = ["AsyncDriver"]


class AsyncDriver:
    """Runs the consumers of one ``AsyncMessaging``: channels, schedules, settling, time."""

    __slots__ = (
        "_buses",
        "_channels",
        "_clock",
        "_consumption",
        "_dispatch",
        "_error_handlers",
        "_leases",
        "_max_steps",
        "_recorder",
        "_router",
        "_stepper",
        "_stops",
        "_ticks",
        "scheduled",
    )

    def __init__(
        self,
        *,
        channels: Mapping[str, AsyncChannelRuntime],
        scheduled: list[HandlerSpec],
        consumption: AsyncConsumption,
        dispatch: AsyncDispatch,
        recorder: Recorder,
        router: Router,
        buses: AsyncBuses,
        clock: Clock,
        max_steps: int | None,
        schedule_store: ScheduleStore | None = None,
        ticks: TickFailures | None = None,
        error_handlers: AsyncErrorHandlers | None = None,
    ) -> None:
        self._channels = channels
        self._ticks = ticks
        self._error_handlers = error_handlers
        self._consumption = consumption
        self._dispatch = dispatch
        self._recorder = recorder
        self._router = router
        self._buses = buses
        self._clock = clock
        self._stepper: SteppableClock | None = clock if isinstance(clock, SteppableClock) else None
        self._leases = AsyncLeaseKeeper(clock) if self._stepper is None else None
        self._max_steps = max_steps
        now = clock.now()
        store = schedule_store if schedule_store is not None else InMemoryScheduleStore()
        self.scheduled = {s.endpoint_id: ScheduledEndpoint(s, now, store) for s in scheduled}
        self._stops: set[asyncio.Event] = set()

    def names(self) -> list[str]:
        """The consumers: channels consumed here (not the send-only ones), then schedules."""
        consumed = [n for n, rt in self._channels.items() if not rt.definition.send_only]
        return [*consumed, *self.scheduled]

    # ------------------------------------------------------------------ one step

    async def step(
        self, name: str, *, stop_on_failure: bool = False, budget: StepBudget | None = None
    ) -> bool:
        """Process one message (or tick) of consumer ``name``; False when nothing was due.

        When ``budget`` is spent, work that is found is given back and settling counts as a
        runaway loop, as in the sync driver.
        """
        runtime = self._channels.get(name)
        if runtime is not None:
            lease = runtime.definition.lease
            deliveries = await runtime.transport.receive(name, lease=lease, max_messages=1)
            if not deliveries:
                return False
            if budget is not None and budget.exhausted():
                await runtime.transport.release(deliveries[0])
                raise self._runaway(budget.limit)
            await self._consume(runtime, deliveries[0], stop_on_failure)
            return True
        endpoint = self.scheduled[name]
        if endpoint.due > self._clock.now():
            return False
        if budget is not None and budget.exhausted():
            raise self._runaway(budget.limit)
        retried = endpoint.take_retry(self._clock.now())
        if retried is not None:
            await self._run_tick(endpoint, retried, stop_on_failure=stop_on_failure)
            return True
        taken = endpoint.take(self._clock.now())
        if taken is None:
            return False  # another worker claimed the tick
        planned, runs = taken
        if runs:
            await self._tick(endpoint, planned, stop_on_failure=stop_on_failure)
        return True

    async def _consume(
        self, runtime: AsyncChannelRuntime, delivery: Delivery, stop_on_failure: bool
    ) -> object:
        """Consume one delivery; on real time, keep its lease while the handler runs."""
        consume = self._consumption.consume(runtime, delivery, stop_on_failure=stop_on_failure)
        if self._leases is None:
            return await consume
        started = self._clock.now()
        key = self._leases.hold(runtime, delivery)
        try:
            outcome = await consume
        finally:
            self._leases.release(key)
        if activity_logged():
            log_consumed(runtime.name, delivery, outcome, started, self._clock.now())
        return outcome

    async def _tick(
        self, endpoint: ScheduledEndpoint, planned: datetime, *, stop_on_failure: bool
    ) -> None:
        tick = Message(planned, self._dispatch.new_message(None, None, None).headers, None)
        await self._run_tick(endpoint, tick, stop_on_failure=stop_on_failure)

    async def replay_tick(self, letter: DeadLetter) -> None:
        """Run a tick kept as a dead letter again, now (``dead_letters.replay``)."""
        endpoint = self.scheduled[letter.channel]
        tick = replayed_tick(letter, self._clock.now())
        await self._run_tick(endpoint, tick, stop_on_failure=False)

    async def _run_tick(
        self, endpoint: ScheduledEndpoint, tick: Message, *, stop_on_failure: bool
    ) -> None:
        """Run one tick; a failure follows the tick's policy (``conveyor.drivers.ticks``)."""
        spec = endpoint.spec
        dispatch = self._dispatch
        planned = tick.payload
        assert isinstance(planned, datetime)
        tick = Message(planned, tick.headers, spec.endpoint_id)
        self._recorder.message(
            RecordKind.TICKED, tick, endpoint_id=spec.endpoint_id, attempt=tick.headers.attempt,
            detail=f"planned {planned.isoformat()}",
        )  # fmt: skip

        async def run_tick() -> None:
            result = await dispatch.call_handler(spec, tick, None)
            if result is not None:
                if self._router.has_command(type(result)):
                    await self._buses.send(result)
                else:
                    await self._buses.publish(result)

        tried = 0
        while True:
            tried += 1
            try:
                await dispatch.collected(tick, spec.endpoint_id, None, run_tick)
                return
            except Exception as error:
                if stop_on_failure:
                    raise
                ticks = self._ticks
                if ticks is not None and ticks.instant_retries(spec.endpoint_id, error, tried):
                    continue
                plan = ticks.plan(spec.endpoint_id, error, tick.headers.attempt) if ticks else None
                if plan is None:
                    log_tick_failure(spec.endpoint_id, planned, error)
                    return
                await self._carry_out(plan, endpoint, tick, error)
                return

    async def _carry_out(
        self,
        plan: lifecycle.Plan,
        endpoint: ScheduledEndpoint,
        tick: Message,
        error: BaseException,
    ) -> None:
        """Perform a failing tick's plan (``TickFailures.perform``), calling its error handler."""
        ticks = self._ticks
        assert ticks is not None
        endpoint_id = endpoint.spec.endpoint_id

        def retry_later(due: datetime, retry: Message) -> None:
            endpoint.retry = (due, retry)

        next_plan: lifecycle.Plan | None = plan
        while next_plan is not None:
            call = ticks.perform(next_plan, tick, endpoint_id, retry_later)
            if call is None:
                return
            assert self._error_handlers is not None
            handler_error: BaseException | None = None
            try:
                await self._error_handlers.give(
                    call.handler, ticks.failure(tick, endpoint_id, error), tick, endpoint_id, None
                )
            except Exception as raised:
                handler_error = raised
            next_plan = ticks.after_error_handler(call, tick, endpoint_id, error, handler_error)

    # ------------------------------------------------------------------ settling

    async def settle(
        self,
        *,
        names: list[str] | None = None,
        advance_time: bool = False,
        max_steps: int | None = None,
        budget: StepBudget | None = None,
    ) -> int:
        """Run consumers until idle; with ``advance_time`` jump to each next due time."""
        budget = budget if budget is not None else StepBudget(max_steps)
        consumers = names if names is not None else self.names()
        steps = 0
        while True:
            progressed = False
            for name in consumers:
                if await self.step(name, budget=budget):
                    progressed = True
                    steps += 1
                    if budget.spend():
                        raise self._runaway(budget.limit)
            if progressed:
                continue
            if not advance_time:
                return steps
            due = await self.next_due([n for n in consumers if n in self._channels])
            clock = self._virtual_clock("run_until_idle(advance_time=True)")
            jump = next_jump(due, clock.now())
            if jump is None:
                return steps
            steps += await self.advance_to(jump, budget=budget)

    async def advance_to(
        self, target: datetime, *, max_steps: int | None = None, budget: StepBudget | None = None
    ) -> int:
        """Step the virtual clock to ``target``, settling at every due instant on the way."""
        clock = self._virtual_clock("advance")
        if budget is None:
            budget = StepBudget(max_steps if max_steps is not None else self._max_steps)
        steps = await self.settle(budget=budget)
        while (
            due := next_jump(await self.next_due(self.names()), clock.now(), target)
        ) is not None:
            clock.advance_to(due)
            steps += await self.settle(budget=budget)
        clock.advance_to(target)
        return steps + await self.settle(budget=budget)

    async def next_due(self, names: list[str]) -> datetime | None:
        """The earliest instant any of these consumers has work."""
        dues: list[datetime] = []
        for name in names:
            runtime = self._channels.get(name)
            if runtime is None:
                dues.append(self.scheduled[name].due)
            elif runtime.inspectable is not None:  # refused at bootstrap on a stepped clock
                due = await runtime.inspectable.next_due(name)
                if due is not None:
                    dues.append(due)
        return min(dues, default=None)

    def _virtual_clock(self, what: str) -> SteppableClock:
        if self._stepper is None:
            raise ConfigurationError(
                f"{what} moves time, so it needs AsyncMessaging(clock=VirtualClock(...)); "
                f"this AsyncMessaging runs on {self._clock!r}."
            )
        return self._stepper

    def _runaway(self, max_steps: int | None) -> SettleError:
        return SettleError(
            f"settling did not finish within {max_steps} steps: a handler keeps producing work "
            f"(a runaway loop?). Last journal records:\n"
            f"{format_records(self._recorder.journal.last(12))}\n"
            f"Raise max_steps if this much work is expected."
        )

    # ------------------------------------------------------------------ consumer runs

    async def run(
        self,
        name: str | list[str],
        *,
        concurrency: int,
        limit: int | None,
        time_limit: timedelta | None,
        memory_limit: int | None,
        stop_on_failure: bool,
        finish_when_empty: bool | None,
        grace: timedelta | None = None,
        hooks: ConsumerHooks | None = None,
    ) -> RunResult:
        """Run one consumer, or several in turn, with up to ``concurrency`` messages in flight.

        A second signal, or ``grace`` running out after the first, cancels what is in flight:
        those messages come back when their lease runs out. ``hooks`` are called (and awaited
        when they return an awaitable) for each consumer name, as ``Messaging.run`` calls them.
        """
        names = [name] if isinstance(name, str) else list(dict.fromkeys(name))
        if hooks is None:
            return await self._run(
                names, concurrency, limit, time_limit, memory_limit, stop_on_failure,
                finish_when_empty, grace, None,
            )  # fmt: skip
        for each in names:
            await awaited(hooks.on_start(each))

        async def idle() -> None:
            for each in names:
                await awaited(hooks.on_idle(each))

        result: RunResult | None = None
        try:
            result = await self._run(
                names, concurrency, limit, time_limit, memory_limit, stop_on_failure,
                finish_when_empty, grace, idle,
            )  # fmt: skip
            return result
        finally:
            for each in names:
                await awaited(hooks.on_stop(each, result))

    async def _run(
        self,
        names: list[str],
        concurrency: int,
        limit: int | None,
        time_limit: timedelta | None,
        memory_limit: int | None,
        stop_on_failure: bool,
        finish_when_empty: bool | None,
        grace: timedelta | None,
        on_idle: Callable[[], Awaitable[None]] | None,
    ) -> RunResult:
        if not names:
            raise ConfigurationError("run() needs at least one consumer")
        for each in names:
            check_run(each, self.names(), limit)
        if time_limit is not None:
            check_time_limit(time_limit, self._clock.now())
        if concurrency < 1:
            raise ConfigurationError(f"run(concurrency={concurrency}) must be at least 1")
        clock, virtual = self._clock, self._stepper is not None
        channels = [n for n in names if n in self._channels]
        if finish_when_empty is None:
            finish_when_empty = finishes_when_empty(
                virtual=virtual, channel=len(channels) == len(names), limit=limit,
                time_limit=time_limit,
            )  # fmt: skip
        turn = 0
        in_flight = _InFlight()
        stop, forced = asyncio.Event(), asyncio.Event()
        tally = _Tally(clock, limit, time_limit, memory_limit, stop)
        started = tally.started
        # On a real clock a single channel's slots chain (see _chained); on a VirtualClock each
        # message is taken by this loop, so a test's interleaving stays the one it always was.
        chain = tally if len(names) == 1 and channels and not virtual else None
        self._stops.add(stop)
        reason: str | None = None
        cut_short = False
        try:
            with _signals(stop, forced):
                if not virtual:
                    logging.getLogger("conveyor").info(
                        "serving %s, %d at once; SIGTERM or SIGINT stops taking work",
                        ", ".join(names), concurrency,
                    )  # fmt: skip
                while reason is None:
                    reason = tally.reason()
                    if reason is not None:
                        break
                    free = concurrency - len(in_flight)
                    if free == 0:
                        await _first_done(in_flight, stop)
                        continue
                    wanted = free if limit is None else min(free, limit - tally.taken)
                    started_now = 0
                    for offset in range(len(names)):  # every consumer in turn
                        each = names[(turn + offset) % len(names)]
                        started_now = await self._take(
                            each, wanted, in_flight, stop, stop_on_failure, chain=chain
                        )
                        if started_now:
                            break
                    turn += 1
                    if started_now:
                        tally.taken += started_now
                        continue
                    if in_flight:  # what is in flight may bring more work
                        await _first_done(in_flight, stop)
                        continue
                    if on_idle is not None:
                        await on_idle()
                    if finish_when_empty or (
                        virtual and time_limit is None and await self.next_due(names) is None
                    ):
                        reason = "empty"
                        break
                    wait = idle_wait(
                        clock.now(), await self.next_due(names), virtual=virtual,
                        channel=bool(channels), started=started, time_limit=time_limit,
                    )  # fmt: skip
                    if self._stepper is not None:
                        self._stepper.advance_to(clock.now() + wait)
                    elif (
                        len(names) == 1
                        and channels
                        and await self._take(
                            names[0], 1, in_flight, stop, stop_on_failure, wait, chain=chain
                        )
                    ):
                        tally.taken += 1  # the broker's long poll brought one
                    else:
                        await _wait(stop, wait)
                if in_flight:
                    cut_short = not await _finish(in_flight, forced, grace)
        finally:
            if in_flight and cut_short:
                for task in in_flight:
                    task.cancel()  # left to their lease
            if in_flight:
                await asyncio.wait(in_flight)
            self._stops.discard(stop)
        failures = in_flight.failures
        if failures and not cut_short:  # stop_on_failure, or a transport that cannot be reached
            raise failures[0]
        reason = reason or "signal"
        if cut_short:
            reason = f"{reason}, then {'a second signal' if forced.is_set() else 'grace'}"
        return RunResult(", ".join(names), tally.taken, reason)

    async def _take(
        self,
        name: str,
        wanted: int,
        in_flight: _InFlight,
        stop: asyncio.Event,
        stop_on_failure: bool,
        wait: timedelta | None = None,
        *,
        chain: _Tally | None = None,
    ) -> int:
        """Start handling up to ``wanted`` messages (or one tick), each in its own task.

        With ``chain``, each task goes on to the channel's next message itself (``_chained``).
        """
        runtime = self._channels.get(name)
        if runtime is None:
            if self.scheduled[name].due > self._clock.now():
                return 0
            started: list[asyncio.Future[object]] = [
                asyncio.ensure_future(self.step(name, stop_on_failure=stop_on_failure))
            ]
        else:
            deliveries = await runtime.transport.receive(
                name, lease=runtime.definition.lease, max_messages=wanted,
                wait=None if self._stepper is not None else wait,
            )  # fmt: skip
            started = [
                asyncio.ensure_future(
                    self._consume(runtime, d, stop_on_failure)
                    if chain is None
                    else self._chained(runtime, d, stop_on_failure, chain)
                )
                for d in deliveries
            ]
        for task in started:
            in_flight.add(task, stop)
        return len(started)

    async def _chained(
        self,
        runtime: AsyncChannelRuntime,
        delivery: Delivery,
        stop_on_failure: bool,
        tally: _Tally,
    ) -> None:
        """Consume ``delivery``, then take the channel's next message at once, while the run may.

        A slot that finishes a message starts the next in the same task: ``concurrency`` messages
        stay in flight without a trip through the run loop (and a new task) for each, and the
        slots' handlers drift apart instead of waiting and waking in lockstep. The run loop
        refills only slots that found the channel empty.
        """
        name, lease = runtime.name, runtime.definition.lease
        while True:
            await self._consume(runtime, delivery, stop_on_failure)
            if tally.reason() is not None:
                return
            more = await runtime.transport.receive(name, lease=lease, max_messages=1)
            if not more:
                return
            tally.taken += 1
            delivery = more[0]

    def request_stop(self) -> None:
        """Ask every running consumer to stop taking messages and finish those in flight."""
        for stop in self._stops:
            stop.set()


class _Tally:
    """How many messages a run has taken, and whether it may take another (its slots ask too)."""

    __slots__ = ("clock", "limit", "memory_limit", "started", "stop", "taken", "time_limit")

    def __init__(
        self,
        clock: Clock,
        limit: int | None,
        time_limit: timedelta | None,
        memory_limit: int | None,
        stop: asyncio.Event,
    ) -> None:
        self.clock = clock
        self.limit = limit
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.stop = stop
        self.started = clock.now()
        self.taken = 0

    def reason(self) -> str | None:
        """Why the run stops before taking another message, or None (``stop_reason``)."""
        return stop_reason(
            self.taken, self.limit, self.clock.now() - self.started, self.time_limit,
            self.memory_limit, stop_requested=self.stop.is_set(),
        )  # fmt: skip


class _InFlight(set[asyncio.Future[object]]):
    """The messages being handled by one run; the first failure a task raised stops the run."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: list[BaseException] = []

    def add(self, task: asyncio.Future[object], stop: asyncio.Event | None = None) -> None:
        super().add(task)

        def done(finished: asyncio.Future[object]) -> None:
            self.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self.failures.append(finished.exception())  # type: ignore[arg-type]
                if stop is not None:
                    stop.set()

        task.add_done_callback(done)


async def _first_done(in_flight: _InFlight, stop: asyncio.Event) -> None:
    """Wait until a message in flight is finished, or a stop is asked for."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([*in_flight, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()


async def _finish(in_flight: _InFlight, forced: asyncio.Event, grace: timedelta | None) -> bool:
    """Wait for the messages in flight; False if a second signal or ``grace`` cut it short."""
    interrupted = asyncio.ensure_future(forced.wait())
    try:
        timeout = None if grace is None else grace.total_seconds()
        deadline = asyncio.get_running_loop().time() + (timeout or 0.0)
        while in_flight:
            left = None if timeout is None else deadline - asyncio.get_running_loop().time()
            if forced.is_set() or (left is not None and left <= 0):
                return False
            await asyncio.wait(
                [*in_flight, interrupted], timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
        return True
    finally:
        interrupted.cancel()


async def _wait(stop: asyncio.Event, wait: timedelta) -> None:
    """Wait for ``wait`` or a stop, whichever comes first: never a wait a signal cannot end."""
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), wait.total_seconds())


def _stop_or_force(stop: asyncio.Event, forced: asyncio.Event) -> None:
    (forced if stop.is_set() else stop).set()


@contextmanager
def _signals(stop: asyncio.Event, forced: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT stop taking messages and those in flight finish; a second one forces."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    installed: list[tuple[signal.Signals, Any]] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        try:
            loop.add_signal_handler(signum, _stop_or_force, stop, forced)
        except (NotImplementedError, RuntimeError):  # not on this loop (Windows, a thread)
            continue
        installed.append((signum, previous))
    try:
        yield
    finally:
        for signum, previous in installed:
            loop.remove_signal_handler(signum)
            if previous is not None:
                signal.signal(signum, previous)
