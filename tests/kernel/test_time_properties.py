"""Properties of time (issue 4): due order, step independence, never early, never after expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor import (
    Context,
    Messaging,
    RecordKind,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Job:
    number: int


@dataclass(frozen=True)
class Plan:
    delay_ms: int
    priority: int
    ttl_ms: int | None


plans = st.lists(
    st.builds(
        Plan,
        delay_ms=st.integers(0, 5_000),
        priority=st.integers(0, 3),
        ttl_ms=st.none() | st.integers(1, 3_000),
    ),
    max_size=25,
)


def scenario(jobs: list[Plan]) -> tuple[Messaging, list[tuple[int, datetime]]]:
    handled: list[tuple[int, datetime]] = []

    @asynchronous("jobs")
    @command_handler
    def run_job(job: Job, ctx: Context) -> None:
        handled.append((job.number, ctx.now))

    messaging = Messaging(
        handlers=[run_job], channels=["jobs"], clock=VirtualClock(START), ids=SequentialIds()
    )
    for number, plan in enumerate(jobs):
        messaging.send(
            Job(number),
            delay=timedelta(milliseconds=plan.delay_ms),
            priority=plan.priority,
            ttl=timedelta(milliseconds=plan.ttl_ms) if plan.ttl_ms is not None else None,
        )
    return messaging, handled


def transcript(messaging: Messaging) -> list[tuple[object, ...]]:
    return [(r.at, r.kind, r.message_id, r.endpoint_id, r.attempt) for r in messaging.journal]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(plans)
def test_handling_order_is_due_order_then_priority_then_send_order(jobs: list[Plan]) -> None:
    messaging, handled = scenario(jobs)
    messaging.advance(timedelta(seconds=10))
    expected = sorted(
        (n for n, p in enumerate(jobs)),
        key=lambda n: (jobs[n].delay_ms, -jobs[n].priority, n),
    )
    assert [n for n, _ in handled] == expected


@settings(max_examples=150, deadline=None, derandomize=True)
@given(plans, st.lists(st.integers(1, 2_000), min_size=1, max_size=20))
def test_many_small_steps_give_the_same_journal_as_one_big_step(
    jobs: list[Plan], steps_ms: list[int]
) -> None:
    big, _ = scenario(jobs)
    small, _ = scenario(jobs)
    total = timedelta(milliseconds=sum(steps_ms))
    for step in steps_ms:
        small.advance(timedelta(milliseconds=step))
    big.advance(total)
    assert transcript(small) == transcript(big)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(plans)
def test_nothing_is_handled_before_its_due_time_or_after_its_expiry(jobs: list[Plan]) -> None:
    messaging, handled = scenario(jobs)
    messaging.advance(timedelta(seconds=10))
    for number, at in handled:
        plan = jobs[number]
        due = START + timedelta(milliseconds=plan.delay_ms)
        assert at == due  # handled at exactly its due instant, never before
        if plan.ttl_ms is not None:
            assert at < due + timedelta(milliseconds=plan.ttl_ms)
    expired = {r.payload.number for r in messaging.journal.of_kind(RecordKind.EXPIRED)}  # type: ignore[attr-defined]
    handled_numbers = {n for n, _ in handled}
    assert expired | handled_numbers == set(range(len(jobs)))
    assert not expired & handled_numbers
