"""Deterministic time: delays, due times, priority, TTL and advancing the clock (issue 4)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    ConfigurationError,
    Context,
    Messaging,
    QueueChannel,
    RecordKind,
    RoutingError,
    SequentialIds,
    SettleError,
    VirtualClock,
    asynchronous,
    command_handler,
    delayed,
    event_handler,
    priority,
    scheduled,
    time_to_live,
)
from conveyor.core.errors import ClockError

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


@dataclass(frozen=True)
class Task:
    name: str


class Orders:
    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        ctx.publish(OrderPlaced(command.order_id))


def build(handlers: list[object], channels: list[object], **options: object) -> Messaging:
    return Messaging(
        handlers=handlers,
        channels=channels,  # type: ignore[arg-type]
        clock=VirtualClock(START),
        ids=SequentialIds(),
        **options,  # type: ignore[arg-type]
    )


def test_the_issue_example_reminder_runs_at_exactly_24_hours() -> None:
    reminded: list[datetime] = []

    @asynchronous("reminders")
    @delayed(timedelta(hours=24))
    @event_handler
    def remind_unpaid(event: OrderPlaced, ctx: Context) -> None:
        reminded.append(ctx.clock.now())

    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    messaging = Messaging(
        handlers=[Orders(), remind_unpaid], channels=[QueueChannel("reminders")], clock=clock
    )
    messaging.send(PlaceOrder("o-1"))
    messaging.advance(timedelta(hours=23))
    assert reminded == []
    messaging.advance(timedelta(hours=1))
    assert reminded == [datetime(2026, 1, 2, tzinfo=UTC)]


def _recorder(channel: str = "work") -> tuple[object, list[tuple[str, datetime]]]:
    seen: list[tuple[str, datetime]] = []

    @asynchronous(channel)
    @command_handler
    def handle(task: Task, ctx: Context) -> None:
        seen.append((task.name, ctx.now))

    return handle, seen


def test_send_delay_and_at_hold_a_message_until_due_with_millisecond_precision() -> None:
    handle, seen = _recorder()
    messaging = build([handle], ["work"])
    messaging.send(Task("delayed"), delay=timedelta(milliseconds=1500))
    messaging.send(Task("at"), at=START + timedelta(seconds=2, milliseconds=1))
    messaging.advance(timedelta(milliseconds=1499))
    assert seen == []
    messaging.advance(timedelta(milliseconds=1))
    assert seen == [("delayed", START + timedelta(milliseconds=1500))]
    messaging.advance(timedelta(milliseconds=501))
    assert seen[-1] == ("at", START + timedelta(seconds=2, milliseconds=1))


def test_a_due_time_in_the_past_means_now() -> None:
    handle, seen = _recorder()
    messaging = build([handle], ["work"])
    messaging.send(Task("late"), at=START - timedelta(days=1))
    messaging.run_until_idle()
    assert seen == [("late", START)]


def test_naive_due_times_are_refused() -> None:
    handle, _ = _recorder()
    with pytest.raises(ClockError, match="has no timezone"):
        build([handle], ["work"]).send(Task("x"), at=datetime(2026, 1, 2))


def test_delay_and_at_together_are_refused() -> None:
    handle, _ = _recorder()
    with pytest.raises(RoutingError, match="pass delay= or at=, not both"):
        build([handle], ["work"]).send(Task("x"), delay=timedelta(1), at=START)


def test_per_handler_options_override_message_level_ones() -> None:
    seen: list[tuple[str, datetime]] = []

    @asynchronous("work")
    @delayed(timedelta(minutes=10))
    @event_handler
    def slow(event: OrderPlaced, ctx: Context) -> None:
        seen.append(("slow", ctx.now))

    @asynchronous("work")
    @event_handler
    def plain(event: OrderPlaced, ctx: Context) -> None:
        seen.append(("plain", ctx.now))

    messaging = build([slow, plain], ["work"])
    messaging.publish(OrderPlaced("o"), delay=timedelta(minutes=1))
    messaging.advance(timedelta(hours=1))
    assert seen == [
        ("plain", START + timedelta(minutes=1)),
        ("slow", START + timedelta(minutes=10)),
    ]


def test_higher_priority_first_then_fifo_among_equals() -> None:
    handle, seen = _recorder()
    messaging = build([handle], ["work"])
    messaging.send(Task("low-1"), priority=1)
    messaging.send(Task("high"), priority=9)
    messaging.send(Task("low-2"), priority=1)
    messaging.send(Task("none"))
    messaging.run("work")
    assert [name for name, _ in seen] == ["high", "low-1", "low-2", "none"]


def test_priority_per_handler() -> None:
    order: list[str] = []

    @asynchronous("work")
    @event_handler
    def normal(event: OrderPlaced) -> None:
        order.append("normal")

    @asynchronous("work")
    @priority(5)
    @event_handler
    def urgent(event: OrderPlaced) -> None:
        order.append("urgent")

    messaging = build([normal, urgent], ["work"])
    messaging.publish(OrderPlaced("o"))
    messaging.run("work")
    assert order == ["urgent", "normal"]


def test_expired_messages_are_never_handled_and_are_recorded() -> None:
    handle, seen = _recorder()
    messaging = build([handle], ["work"])
    messaging.send(Task("fresh"), ttl=timedelta(minutes=5))
    messaging.send(Task("stale"), ttl=timedelta(minutes=1))
    messaging.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    messaging.run("work")
    assert [name for name, _ in seen] == ["fresh"]
    [expired] = messaging.journal.of_kind(RecordKind.EXPIRED)
    assert expired.payload == Task("stale")
    assert messaging.dead_letters.count() == 0


def test_expired_messages_are_dead_lettered_when_the_channel_asks() -> None:
    handle, seen = _recorder()
    messaging = build([handle], [QueueChannel("work", dead_letter_expired=True)])
    messaging.send(Task("stale"), ttl=timedelta(seconds=1))
    messaging.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    messaging.run("work")
    [letter] = messaging.dead_letters.list()
    assert (letter.reason, letter.message_type) == ("expired", "Task")
    assert seen == []


def test_time_to_live_per_handler_counts_from_when_the_copy_is_due() -> None:
    seen: list[str] = []

    @asynchronous("work")
    @delayed(timedelta(hours=1))
    @time_to_live(timedelta(minutes=5))
    @event_handler
    def later(event: OrderPlaced) -> None:
        seen.append(event.order_id)

    messaging = build([later], ["work"])
    messaging.publish(OrderPlaced("o"))
    messaging.advance(timedelta(hours=1))
    assert seen == ["o"]


def test_advance_handles_timers_created_during_the_advance_at_their_own_instant() -> None:
    seen: list[tuple[str, datetime]] = []

    @asynchronous("work")
    @command_handler
    def chain(task: Task, ctx: Context) -> None:
        seen.append((task.name, ctx.clock.now()))
        if len(task.name) < 4:
            ctx.send(Task(task.name + "x"), delay=timedelta(minutes=30))

    messaging = build([chain], ["work"])
    messaging.send(Task("x"), delay=timedelta(minutes=30))
    messaging.advance(timedelta(hours=3))
    assert seen == [
        ("x", START + timedelta(minutes=30)),
        ("xx", START + timedelta(minutes=60)),
        ("xxx", START + timedelta(minutes=90)),
        ("xxxx", START + timedelta(minutes=120)),
    ]
    assert messaging.clock.now() == START + timedelta(hours=3)


def test_advance_to_an_instant_and_never_backwards() -> None:
    handle, seen = _recorder()
    messaging = build([handle], ["work"])
    messaging.send(Task("a"), at=START + timedelta(days=2))
    messaging.advance_to(START + timedelta(days=3))
    assert seen == [("a", START + timedelta(days=2))]
    with pytest.raises(ClockError) as caught:
        messaging.advance_to(START)
    assert str(caught.value) == (
        "cannot move a VirtualClock back from 2026-01-04T00:00:00+00:00 to "
        "2026-01-01T00:00:00+00:00; it never goes backwards. Advance to a later instant, or "
        "build a new VirtualClock for a new scenario."
    )


def test_run_until_idle_jumps_the_clock_only_when_asked() -> None:
    handle, seen = _recorder()
    messaging = build([handle], ["work"])
    messaging.send(Task("a"), delay=timedelta(days=1))
    assert messaging.run_until_idle() == 0
    assert seen == []
    assert messaging.run_until_idle(advance_time=True) == 1
    assert seen == [("a", START + timedelta(days=1))]


def test_advance_needs_a_virtual_clock() -> None:
    from conveyor import SystemClock

    messaging = Messaging(clock=SystemClock())
    with pytest.raises(ConfigurationError) as caught:
        messaging.advance(timedelta(seconds=1))
    assert str(caught.value).startswith(
        "advance moves time, so it needs Messaging(clock=VirtualClock(...)); this Messaging "
        "runs on SystemClock()."
    )


def test_a_runaway_loop_raises_with_the_last_journal_records() -> None:
    @asynchronous("work")
    @command_handler
    def forever(task: Task, ctx: Context) -> None:
        ctx.send(Task("again"))

    messaging = build([forever], ["work"])
    messaging.send(Task("start"))
    with pytest.raises(SettleError) as caught:
        messaging.run_until_idle(max_steps=3)
    text = str(caught.value)
    lines = text.splitlines()
    assert lines[0] == (
        "settling did not finish within 3 steps: a handler keeps producing work (a runaway "
        "loop?). Last journal records:"
    )
    assert lines[-1] == "Raise max_steps if this much work is expected."
    assert lines[-2] == (
        "  2026-01-01T00:00:00+00:00 #11 queued        Task [msg-4] channel=work endpoint=forever"
    )


@pytest.mark.parametrize("limit", [1, 3, 100])
def test_a_step_limit_runs_exactly_that_many_steps_before_raising(limit: int) -> None:
    ran: list[str] = []

    @asynchronous("work")
    @command_handler
    def forever(task: Task, ctx: Context) -> None:
        ran.append(task.name)
        ctx.send(Task("again"))

    messaging = build([forever], ["work"])
    messaging.send(Task("start"))
    with pytest.raises(SettleError, match=f"within {limit} steps"):
        messaging.run_until_idle(max_steps=limit)
    assert len(ran) == limit
    transport = messaging.channels["work"].transport
    assert transport.pending("work") == 1  # type: ignore[attr-defined]  # given back, not lost


def test_work_that_fits_the_step_limit_exactly_settles() -> None:
    ran: list[str] = []

    @asynchronous("work")
    @command_handler
    def once(task: Task) -> None:
        ran.append(task.name)

    messaging = build([once], ["work"])
    for n in range(3):
        messaging.send(Task(str(n)))
    assert messaging.run_until_idle(max_steps=3) == 3
    assert ran == ["0", "1", "2"]


def test_no_code_path_sleeps_while_delays_retries_and_schedules_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conveyor import Backoff, RetryPolicy

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"time.sleep({seconds}) was called")

    monkeypatch.setattr(time, "sleep", no_sleep)
    attempts: list[int] = []
    ticks: list[datetime] = []

    @asynchronous("work", retry=RetryPolicy(delays=Backoff.fixed(timedelta(minutes=1)), attempts=3))
    @command_handler
    def flaky(task: Task, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise TimeoutError("later")

    @scheduled(every=timedelta(hours=1))
    def hourly(ctx: Context) -> None:
        ticks.append(ctx.now)

    messaging = build([flaky, hourly], ["work"])
    messaging.send(Task("t"), delay=timedelta(minutes=5))
    messaging.advance(timedelta(hours=2))
    messaging.run("work", time_limit=timedelta(minutes=10), finish_when_empty=False)
    assert attempts == [1, 2, 3]
    assert ticks == [START, START + timedelta(hours=1), START + timedelta(hours=2)]


def test_system_clock_follows_freezegun() -> None:
    freezegun = pytest.importorskip("freezegun")
    from conveyor import SystemClock

    with freezegun.freeze_time("2030-05-01 12:00:00"):
        assert SystemClock().now() == datetime(2030, 5, 1, 12, tzinfo=UTC)
        handle, seen = _recorder()
        messaging = Messaging(handlers=[handle], channels=["work"], clock=SystemClock())
        messaging.send(Task("frozen"))
        messaging.run("work", finish_when_empty=True)
        assert seen == [("frozen", datetime(2030, 5, 1, 12, tzinfo=UTC))]


def test_a_bound_virtual_clock_makes_datetime_now_follow_virtual_time() -> None:
    pytest.importorskip("time_machine")
    seen: list[datetime] = []

    @asynchronous("work")
    @command_handler
    def handle(task: Task) -> None:
        seen.append(datetime.now(UTC))  # user code reading the OS clock

    clock = VirtualClock(START)
    messaging = Messaging(handlers=[handle], channels=["work"], clock=clock)
    with clock.bound():
        assert datetime.now(UTC) == START
        messaging.send(Task("x"), delay=timedelta(hours=5))
        messaging.advance(timedelta(days=1))
        assert datetime.now(UTC) == START + timedelta(days=1)
    assert seen == [START + timedelta(hours=5)]
    assert datetime.now(UTC) > datetime(2026, 6, 1, tzinfo=UTC)  # released after the block


def test_system_clock_follows_time_machine() -> None:
    time_machine = pytest.importorskip("time_machine")
    from conveyor import SystemClock

    with time_machine.travel(datetime(2031, 7, 1, 8, 30, tzinfo=UTC), tick=False):
        handle, seen = _recorder()
        messaging = Messaging(handlers=[handle], channels=["work"], clock=SystemClock())
        messaging.send(Task("travelled"))
        messaging.run("work", finish_when_empty=True)
        assert seen == [("travelled", datetime(2031, 7, 1, 8, 30, tzinfo=UTC))]


def test_one_advance_shares_its_step_limit_and_reports_it() -> None:
    @asynchronous("work")
    @command_handler
    def handle(task: Task) -> None: ...

    messaging = build([handle], ["work"])
    for n in range(5):
        messaging.send(Task(str(n)), delay=timedelta(seconds=n + 1))
    with pytest.raises(SettleError, match="did not finish within 3 steps"):
        messaging.advance(timedelta(minutes=1), max_steps=3)
    messaging.advance(timedelta(minutes=1), max_steps=10)  # the rest fits in 10
    assert len(messaging.journal.of_kind(RecordKind.HANDLED)) == 5


def test_a_run_moves_the_virtual_clock_only_when_a_limit_can_end_its_wait() -> None:
    """The documented rule of ``Messaging.run`` on a VirtualClock, pinned both ways."""

    @asynchronous("tasks")
    @delayed(timedelta(minutes=5))
    @command_handler
    def later(task: Task) -> None: ...

    def fresh() -> Messaging:
        messaging = build([later], [QueueChannel("tasks")])
        messaging.send(Task("a"))
        return messaging

    unlimited = fresh()
    assert unlimited.run("tasks").processed == 0
    assert unlimited.clock.now() == START  # nothing was due now; no wait, no jump

    emptied = fresh()
    assert emptied.run("tasks", limit=5, finish_when_empty=True).processed == 0
    assert emptied.clock.now() == START

    limited = fresh()
    result = limited.run("tasks", limit=5)
    assert (result.processed, result.stopped_because) == (1, "empty")
    assert limited.clock.now() == START + timedelta(minutes=5)  # it waited, on virtual time

    timed = fresh()
    assert timed.run("tasks", time_limit=timedelta(minutes=1)).processed == 0
    assert timed.clock.now() == START + timedelta(minutes=1)
