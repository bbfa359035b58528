"""Driving work and time: consumer runs, exact settling, and stepping a virtual clock.

Settling is exact (DESIGN section 6): every consumer runs until nothing is runnable; with
``advance_time`` the clock jumps to the next due timer (a delayed message, a retry, a lease, a
schedule) and settling goes on. A step limit turns a runaway loop into an error that prints the
last journal records, never a wall-clock timeout.
"""

from __future__ import annotations

import inspect
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import TypeGuard

from conveyor.core import lifecycle
from conveyor.core.clock import Clock, SteppableClock
from conveyor.core.errors import ConfigurationError, SettleError
from conveyor.core.implements import implements
from conveyor.core.instants import LATEST, later
from conveyor.core.journal import Journal, Record, RecordKind
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.registry import HandlerSpec
from conveyor.core.routing import Router
from conveyor.core.wire import Delivery
from conveyor.drivers.activity import activity_logged, log_consumed
from conveyor.drivers.buses import Buses
from conveyor.drivers.channel_runtime import ChannelRuntime
from conveyor.drivers.consumption import Consumption
from conveyor.drivers.dispatch import Dispatch
from conveyor.drivers.error_handlers import ErrorHandlers
from conveyor.drivers.leases import LeaseKeeper
from conveyor.drivers.recording import Recorder
from conveyor.drivers.resident import resident_mib
from conveyor.drivers.ticks import TickFailures, log_tick_failure, replayed_tick
from conveyor.stores.dead_letters import DeadLetter
from conveyor.stores.schedules import InMemoryScheduleStore, ScheduleStore

__all__ = [
    "ConsumerHooks",
    "HookResult",
    "called_hook",
    "Driver",
    "RunResult",
    "ScheduledEndpoint",
    "StepBudget",
    "format_records",
    "finishes_when_empty",
    "idle_wait",
    "next_jump",
    "stop_reason",
    "check_run",
    "check_time_limit",
]

_POLL_INTERVAL = timedelta(milliseconds=200)


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a consumer run ended: what it processed and why it stopped."""

    name: str
    processed: int
    stopped_because: str  # "limit", "empty", "time limit", "memory limit", "signal"


class StepBudget:
    """Steps left before settling counts as a runaway loop; shared by the settles of one call."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def spend(self) -> bool:
        """Count one step; True once the limit is passed."""
        self.used += 1
        return self.limit is not None and self.used > self.limit

    def exhausted(self) -> bool:
        """Whether every step is spent: one more would pass the limit."""
        return self.limit is not None and self.used >= self.limit


def _nothing(*args: object) -> None:
    return None


HookResult = Awaitable[None] | None
"""What a hook returns: nothing, or (under ``AsyncMessaging``) an awaitable it awaits."""


@dataclass(frozen=True, slots=True)
class ConsumerHooks:
    """Calls around one consumer run, for resources it holds while it runs (a connection).

    ``Messaging.run`` calls them; ``AsyncMessaging.run`` calls them too and awaits what they
    return, so there they may be ``async def`` (a run of several consumers calls each hook
    once per consumer name).

    Attributes:
        on_start: called with the consumer's name before its first message.
        on_idle: called with the name each time the consumer finds nothing due, before it
            waits (or finishes, when it finishes when empty).
        on_stop: called with the name and the run's result when the run ends; the result is
            None when the run ended by raising (``stop_on_failure``, a transport error).
    """

    on_start: Callable[[str], HookResult] = _nothing
    on_idle: Callable[[str], HookResult] = _nothing
    on_stop: Callable[[str, RunResult | None], HookResult] = _nothing


def called_hook(result: HookResult, hook: str) -> None:
    """Refuse an ``async def`` hook under the synchronous driver, which cannot await it."""
    if result is not None and inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise ConfigurationError(
            f"ConsumerHooks({hook}=...) returned an awaitable; Messaging.run cannot await it. "
            f"Make the hook a plain def, or run the consumer with AsyncMessaging."
        )


class ScheduledEndpoint:
    """A ``@scheduled`` handler, its first planned tick, and the store of its next one.

    ``first`` is planned from this process's start; it is used only while the store holds no
    tick for the endpoint (the first worker ever, or state kept in memory).
    """

    __slots__ = ("first", "retry", "spec", "store")

    def __init__(self, spec: HandlerSpec, started: datetime, store: ScheduleStore) -> None:
        assert spec.schedule is not None
        self.spec = spec
        self.store = store
        self.first = spec.schedule.first_due(started)
        #: A failed tick's delayed retry: when, and the tick to run again (this process only).
        self.retry: tuple[datetime, Message] | None = None

    @property
    def due(self) -> datetime:
        """The next planned tick, as the store says, or a delayed retry due sooner."""
        stored = self.store.next_due(self.spec.endpoint_id)
        planned = self.first if stored is None else stored
        if self.retry is not None and self.retry[0] < planned:
            return self.retry[0]
        return planned

    def take_retry(self, now: datetime) -> Message | None:
        """The tick whose delayed retry is due at ``now``, if any (taken: it runs once)."""
        if self.retry is None or self.retry[0] > now:
            return None
        tick, self.retry = self.retry[1], None
        return tick

    def take(self, now: datetime) -> tuple[datetime, bool] | None:
        """Claim the tick due at ``now``: its planned instant and whether it runs.

        None when nothing is due or another worker claimed it first. A claimed tick that the
        schedule's ``catch_up="skip"`` drops does not run.
        """
        schedule = self.spec.schedule
        assert schedule is not None
        stored = self.store.next_due(self.spec.endpoint_id)
        planned = self.first if stored is None else stored
        if planned > now:
            return None
        following = schedule.next_due(planned, now)
        if not self.store.claim(self.spec.endpoint_id, stored, following):
            return None
        return planned, not schedule.is_missed(planned, now)


class Driver:
    """Runs the consumers of one ``Messaging``: channel consumers, schedules, settling, time."""

    __slots__ = (
        "_buses",
        "_channels",
        "_clock",
        "_consumption",
        "_dispatch",
        "_error_handlers",
        "_journal",
        "_leases",
        "_log_activity",
        "_max_steps",
        "_recorder",
        "_router",
        "_stepper",
        "_stop_requested",
        "_ticks",
        "scheduled",
    )

    def __init__(
        self,
        *,
        channels: Mapping[str, ChannelRuntime],
        scheduled: list[HandlerSpec],
        consumption: Consumption,
        dispatch: Dispatch,
        recorder: Recorder,
        router: Router,
        buses: Buses,
        clock: Clock,
        max_steps: int | None,
        schedule_store: ScheduleStore | None = None,
        ticks: TickFailures | None = None,
        error_handlers: ErrorHandlers | None = None,
    ) -> None:
        self._channels = channels
        self._ticks = ticks
        self._error_handlers = error_handlers
        self._consumption = consumption
        self._dispatch = dispatch
        self._recorder = recorder
        self._journal: Journal = recorder.journal
        self._router = router
        self._buses = buses
        self._clock = clock
        self._stepper: SteppableClock | None = clock if _steppable(clock) else None
        self._leases = LeaseKeeper(clock) if self._stepper is None else None
        self._log_activity = activity_logged()
        self._max_steps = max_steps
        now = clock.now()
        store = schedule_store if schedule_store is not None else InMemoryScheduleStore()
        self.scheduled = {s.endpoint_id: ScheduledEndpoint(s, now, store) for s in scheduled}
        self._stop_requested = False

    def observe_logging(self) -> None:
        """Decide whether consumed messages are logged (``activity_logged``), once per run.

        A consumer run and a worker call it as they start: asked on every message, the logging
        lookup cost as much as keeping the message's lease.
        """
        self._log_activity = activity_logged()

    def names(self) -> list[str]:
        """The consumers: channels this Messaging consumes (not the send-only ones), then
        scheduled endpoints."""
        consumed = [n for n, rt in self._channels.items() if not rt.definition.send_only]
        return [*consumed, *self.scheduled]

    # ------------------------------------------------------------------ one step

    def step(
        self,
        name: str,
        *,
        stop_on_failure: bool = False,
        wait: timedelta | None = None,
        budget: StepBudget | None = None,
    ) -> bool:
        """Process one message (or tick) of consumer ``name``; False when nothing was due.

        ``wait`` (on a real clock only) lets the transport block that long for a message: the
        broker's long poll instead of a sleep between polls. When ``budget`` is spent, work that
        is found is given back and settling counts as a runaway loop (``max_steps=100`` runs
        100 steps, never 101).
        """
        runtime = self._channels.get(name)
        if runtime is not None:
            deliveries = runtime.transport.receive(
                name, lease=runtime.definition.lease, max_messages=1, wait=wait
            )
            if not deliveries:
                return False
            delivery = deliveries[0]
            if budget is not None and budget.exhausted():
                runtime.transport.release(delivery)
                raise self._runaway(budget.limit)
            if self._leases is not None:  # real time: keep the lease while the handler runs
                started = self._clock.now()
                held = self._leases.hold(runtime, delivery, since=started)
                try:
                    outcome = self._consume(runtime, delivery, stop_on_failure)
                finally:
                    self._leases.release(held)
                if self._log_activity:
                    log_consumed(name, delivery, outcome, started, self._clock.now())
            else:
                self._consume(runtime, delivery, stop_on_failure)
            return True
        endpoint = self.scheduled[name]
        if endpoint.due > self._clock.now():
            return False
        if budget is not None and budget.exhausted():
            raise self._runaway(budget.limit)
        retried = endpoint.take_retry(self._clock.now())
        if retried is not None:
            self._run_tick(endpoint, retried, stop_on_failure=stop_on_failure)
            return True
        taken = endpoint.take(self._clock.now())
        if taken is None:
            return False  # another worker claimed the tick
        planned, runs = taken
        if runs:
            self._tick(endpoint, planned, stop_on_failure=stop_on_failure)
        return True

    def _consume(
        self, runtime: ChannelRuntime, delivery: Delivery, stop_on_failure: bool
    ) -> Outcome:
        if runtime.router is not None:  # a dynamic channel: journal its concrete channel too
            with self._recorder.consuming_via(runtime.name, delivery.channel):
                return self._consumption.consume(runtime, delivery, stop_on_failure=stop_on_failure)
        return self._consumption.consume(runtime, delivery, stop_on_failure=stop_on_failure)

    def _tick(
        self, endpoint: ScheduledEndpoint, planned: datetime, *, stop_on_failure: bool
    ) -> None:
        tick = Message(planned, self._dispatch.new_message(None, None, None).headers, None)
        self._run_tick(endpoint, tick, stop_on_failure=stop_on_failure)

    def replay_tick(self, letter: DeadLetter) -> None:
        """Run a tick kept as a dead letter again, now (``dead_letters.replay``)."""
        endpoint = self.scheduled[letter.channel]
        tick = replayed_tick(letter, self._clock.now())
        self._run_tick(endpoint, tick, stop_on_failure=False)

    def _run_tick(
        self, endpoint: ScheduledEndpoint, tick: Message, *, stop_on_failure: bool
    ) -> None:
        spec = endpoint.spec
        dispatch = self._dispatch
        planned = tick.payload
        assert isinstance(planned, datetime)
        tick = Message(planned, tick.headers, spec.endpoint_id)
        self._recorder.message(
            RecordKind.TICKED,
            tick,
            endpoint_id=spec.endpoint_id,
            attempt=tick.headers.attempt,
            detail=f"planned {planned.isoformat()}",
        )

        def run_tick() -> None:
            result = dispatch.call_handler(spec, tick, None)
            if result is not None:
                if self._router.has_command(type(result)):
                    self._buses.send(result)
                else:
                    self._buses.publish(result)

        tried = 0
        while True:
            tried += 1
            try:
                dispatch.collected(tick, spec.endpoint_id, None, run_tick)
                return
            except Exception as error:
                if stop_on_failure:
                    raise
                ticks = self._ticks
                if ticks is not None and ticks.instant_retries(spec.endpoint_id, error, tried):
                    continue
                plan = ticks.plan(spec.endpoint_id, error, tick.headers.attempt) if ticks else None
                if plan is None:
                    # The failure is in the journal (FAILED); the tick sets no failure policy,
                    # so an operator must see it in the log. The next tick runs as planned.
                    log_tick_failure(spec.endpoint_id, planned, error)
                    return
                self._carry_out(plan, endpoint, tick, error)
                return

    def _carry_out(
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
                self._error_handlers.give(
                    call.handler, ticks.failure(tick, endpoint_id, error), tick, endpoint_id, None
                )
            except Exception as raised:
                handler_error = raised
            next_plan = ticks.after_error_handler(call, tick, endpoint_id, error, handler_error)

    # ------------------------------------------------------------------ settling

    def settle(
        self,
        *,
        names: list[str] | None = None,
        advance_time: bool = False,
        max_steps: int | None = None,
        budget: StepBudget | None = None,
    ) -> int:
        """Run consumers until idle; with ``advance_time`` jump to each next due time.

        Steps are counted against ``budget`` when one is shared (an ``advance`` settles many
        times), else against a budget of ``max_steps`` (None: no limit).
        """
        budget = budget if budget is not None else StepBudget(max_steps)
        consumers = names if names is not None else self.names()
        steps = 0
        while True:
            progressed = False
            for name in consumers:
                if self.step(name, budget=budget):
                    progressed = True
                    steps += 1
                    if budget.spend():
                        raise self._runaway(budget.limit)
            if progressed:
                continue
            if not advance_time:
                return steps
            # Jump to the next pending message; schedules that fall due on the way run at their
            # own instants, but a periodic schedule alone never keeps settling going.
            due = self.next_due([n for n in consumers if n in self._channels])
            clock = self._virtual_clock("run_until_idle(advance_time=True)")
            jump = next_jump(due, clock.now())
            if jump is None:
                return steps  # nothing pending, or due but leased elsewhere
            steps += self.advance_to(jump, budget=budget)

    def advance_to(
        self,
        target: datetime,
        *,
        max_steps: int | None = None,
        budget: StepBudget | None = None,
    ) -> int:
        """Step the virtual clock to ``target``, settling at every due instant on the way.

        ``max_steps`` None means the Messaging's own limit.
        """
        clock = self._virtual_clock("advance")
        if budget is None:
            budget = StepBudget(max_steps if max_steps is not None else self._max_steps)
        consumers = self.names()  # once: a million due instants would list them a million times
        steps = self.settle(names=consumers, budget=budget)
        while True:
            due = next_jump(self.next_due(consumers), clock.now(), target)
            if due is None:
                break
            clock.advance_to(due)
            steps += self.settle(names=consumers, budget=budget)
        clock.advance_to(target)
        steps += self.settle(names=consumers, budget=budget)
        return steps

    def next_due(self, names: list[str]) -> datetime | None:
        """The earliest instant any of these consumers has work."""
        earliest: datetime | None = None
        for name in names:
            runtime = self._channels.get(name)
            if runtime is not None:
                if runtime.inspectable is None:  # refused at bootstrap on a stepped clock
                    continue
                due = runtime.inspectable.next_due(name)
            else:
                due = self.scheduled[name].due
            if due is not None and (earliest is None or due < earliest):
                earliest = due
        return earliest

    def _virtual_clock(self, what: str) -> SteppableClock:
        if self._stepper is None:
            raise ConfigurationError(
                f"{what} moves time, so it needs Messaging(clock=VirtualClock(...)); this "
                f"Messaging runs on {self._clock!r}."
            )
        return self._stepper

    def _runaway(self, max_steps: int | None) -> SettleError:
        last = self._journal.last(12)
        return SettleError(
            f"settling did not finish within {max_steps} steps: a handler keeps producing work "
            f"(a runaway loop?). Last journal records:\n{format_records(last)}\n"
            f"Raise max_steps if this much work is expected."
        )

    # ------------------------------------------------------------------ consumer runs

    def run(
        self,
        name: str,
        *,
        limit: int | None,
        time_limit: timedelta | None,
        memory_limit: int | None,
        stop_on_failure: bool,
        finish_when_empty: bool | None,
        hooks: ConsumerHooks | None = None,
    ) -> RunResult:
        if hooks is None:
            return self._run(name, limit, time_limit, memory_limit, stop_on_failure,
                             finish_when_empty, None)  # fmt: skip
        called_hook(hooks.on_start(name), "on_start")
        result: RunResult | None = None
        try:
            result = self._run(
                name, limit, time_limit, memory_limit, stop_on_failure, finish_when_empty,
                lambda each: called_hook(hooks.on_idle(each), "on_idle"),
            )  # fmt: skip
            return result
        finally:
            called_hook(hooks.on_stop(name, result), "on_stop")

    def _run(
        self,
        name: str,
        limit: int | None,
        time_limit: timedelta | None,
        memory_limit: int | None,
        stop_on_failure: bool,
        finish_when_empty: bool | None,
        on_idle: Callable[[str], None] | None,
    ) -> RunResult:
        runtime = self._channels.get(name)
        if runtime is not None and runtime.definition.send_only:
            raise ConfigurationError(
                f"channel {name!r} is declared send_only=True: this Messaging sends to it and "
                f"another consumes it. Run it where it is consumed, or drop send_only."
            )
        check_run(name, self.names(), limit)
        if time_limit is not None:
            check_time_limit(time_limit, self._clock.now())
        clock = self._clock
        virtual = self._stepper is not None
        if finish_when_empty is None:
            finish_when_empty = finishes_when_empty(
                virtual=virtual, channel=name in self._channels, limit=limit, time_limit=time_limit
            )
        started = clock.now()
        processed = 0
        self._stop_requested = False
        self.observe_logging()
        with self._signals():
            while True:
                # Only a time limit needs the elapsed time: without one, reading the clock
                # before every message would be work for nothing.
                elapsed = clock.now() - started if time_limit is not None else _UNTIMED
                reason = stop_reason(
                    processed, limit, elapsed, time_limit, memory_limit,
                    stop_requested=self._stop_requested,
                )  # fmt: skip
                if reason is not None:
                    return RunResult(name, processed, reason)
                if self.step(name, stop_on_failure=stop_on_failure):
                    processed += 1
                    continue
                if on_idle is not None:
                    on_idle(name)
                if finish_when_empty:
                    return RunResult(name, processed, "empty")
                if virtual and time_limit is None and self.next_due([name]) is None:
                    return RunResult(name, processed, "empty")  # on virtual time, none will come
                wait = self._idle_wait(name, started, time_limit)
                if virtual or name not in self._channels:
                    clock.sleep(wait.total_seconds())
                elif self.step(name, stop_on_failure=stop_on_failure, wait=wait):
                    processed += 1  # the broker's long poll brought one

    def _idle_wait(self, name: str, started: datetime, time_limit: timedelta | None) -> timedelta:
        return idle_wait(
            self._clock.now(),
            self.next_due([name]),
            virtual=self._stepper is not None,
            channel=name in self._channels,
            started=started,
            time_limit=time_limit,
        )

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT finish the current message, then stop the run."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: FrameType | None) -> None:
            self._stop_requested = True

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def request_stop(self) -> None:
        """Ask a running consumer to stop after the current message."""
        self._stop_requested = True


_UNTIMED = timedelta(0)
"""The elapsed time a run without a time limit passes to ``stop_reason`` (never compared)."""


def check_time_limit(time_limit: object, now: datetime) -> None:
    """Refuse a ``run(time_limit=...)`` that is not a duration, or ends past the year 9000.

    A run's deadline is summed with the clock like any due time, so ``timedelta.max`` gets the
    same clear error as ``send(delay=timedelta.max)`` instead of an overflow mid-run.
    """
    if not isinstance(time_limit, timedelta):
        raise ConfigurationError(
            f"run(time_limit=...) takes a timedelta, got a value of type "
            f"{type(time_limit).__name__}; for example time_limit=timedelta(hours=1)."
        )
    if time_limit < timedelta(0):
        raise ConfigurationError("run(time_limit=...) cannot be negative")
    later(now, time_limit, what="run(time_limit=...)")


def next_jump(
    due: datetime | None, now: datetime, target: datetime | None = None
) -> datetime | None:
    """Where settling on virtual time jumps next: ``due``, if it is ahead and not past ``target``.

    None when nothing is pending, when what is due is leased elsewhere (due now, yet not
    received), when it lies beyond the instant being advanced to, or when it is not before
    :data:`~conveyor.core.instants.LATEST`: a clock never gets there, so it never comes due (a
    lease until the year 9999 written into a broker by hand must not stop settling).
    """
    if due is None or due <= now or due >= LATEST or (target is not None and due > target):
        return None
    return due


def stop_reason(
    processed: int,
    limit: int | None,
    elapsed: timedelta,
    time_limit: timedelta | None,
    memory_limit: int | None,
    *,
    stop_requested: bool,
) -> str | None:
    """Why a consumer run stops before taking another message (whichever limit comes first)."""
    if limit is not None and processed >= limit:
        return "limit"
    if time_limit is not None and elapsed >= time_limit:
        return "time limit"
    if memory_limit is not None and resident_mib() >= memory_limit:
        return "memory limit"
    if stop_requested:
        return "signal"
    return None


def idle_wait(
    now: datetime,
    due: datetime | None,
    *,
    virtual: bool,
    channel: bool,
    started: datetime,
    time_limit: timedelta | None,
) -> timedelta:
    """How long an idle consumer waits before looking again.

    On virtual time: until the next due time (the clock jumps there). On a real clock: a poll
    interval, shorter when something falls due sooner; a schedule waits for its next tick.
    """
    if virtual:
        wait = due - now if due is not None and due > now else timedelta(days=365)
    else:
        wait = _POLL_INTERVAL
        if due is not None and due > now:
            wait = min(wait, due - now) if channel else due - now
    if time_limit is not None:
        wait = min(wait, max(time_limit - (now - started), timedelta(0)))
    return max(wait, timedelta(milliseconds=1))


def finishes_when_empty(
    *, virtual: bool, channel: bool, limit: int | None, time_limit: timedelta | None
) -> bool:
    """The default of ``finish_when_empty``: what a caller who did not say most likely means.

    On a virtual clock, a run without limits handles what is due now; with limits it waits on
    virtual time (instantly) for more, until nothing more can come. On a real clock, a channel
    run with only a message limit handles what is queued, up to the limit; a run with a time
    limit, or none at all, is a worker: it waits for messages until a limit or a signal. A
    scheduled endpoint on a real clock always waits for its next tick.
    """
    if virtual:
        return limit is None and time_limit is None
    return channel and limit is not None and time_limit is None


def format_records(records: list[Record]) -> str:
    """One readable line per record: time, kind, type, id, channel, endpoint, outcome."""
    lines = []
    for r in records:
        where = " ".join(
            part
            for part in (
                f"channel={r.where}" if r.channel else "",
                f"endpoint={r.endpoint_id}" if r.endpoint_id else "",
                f"attempt={r.attempt}" if r.attempt > 1 else "",
                f"delay={r.delay}" if r.delay else "",
            )
            if part
        )
        failure = f" !! {r.exception}" if r.exception else ""
        detail = f" ({r.detail})" if r.detail else ""
        lines.append(
            f"  {r.at.isoformat()} #{r.seq} {r.kind.value:<13} {r.message_type} "
            f"[{r.message_id}] {where}{detail}{failure}".rstrip()
        )
    return "\n".join(lines)


def check_run(name: str, consumers: list[str], limit: int | None) -> None:
    """Refuse a run of a consumer that does not exist, or with a limit below one."""
    if name not in consumers:
        known = ", ".join(consumers) or "none"
        raise ConfigurationError(
            f"no consumer named {name!r}; consumers: {known}. A consumer is a declared "
            f"channel or a @scheduled endpoint."
        )
    if limit is not None and limit < 1:
        raise ConfigurationError(f"run(limit={limit}) must be at least 1")


def _steppable(clock: Clock) -> TypeGuard[SteppableClock]:
    return implements(clock, SteppableClock)
