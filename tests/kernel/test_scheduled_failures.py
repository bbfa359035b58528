"""Scheduled endpoints are endpoints: a failing tick is retried, handed to an error handler, or
kept as a dead letter whose replay runs the tick again (sync and asyncio drivers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from conveyor import (
    AsyncMessaging,
    Failure,
    Messaging,
    RecordKind,
    RetryPolicy,
    SequentialIds,
    VirtualClock,
    event_handler,
    scheduled,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Flaky:
    """A tick that fails its first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[datetime] = []

    def __call__(self, now: datetime) -> None:
        self.calls.append(now)
        if len(self.calls) <= self.failures:
            raise ConnectionError(f"call {len(self.calls)} failed")


def build(handlers: list[object]) -> Messaging:
    return Messaging(handlers=handlers, clock=VirtualClock(START), ids=SequentialIds(), seed=1)


def test_a_failing_tick_is_retried_at_once_then_after_a_delay() -> None:
    flaky = Flaky(failures=2)
    clock = VirtualClock(START)

    @scheduled(
        every=timedelta(hours=1),
        retry=RetryPolicy(instant=1, delays=[timedelta(seconds=30)], attempts=2),
    )
    def sync_prices() -> None:
        flaky(clock.now())

    messaging = Messaging(handlers=[sync_prices], clock=clock, ids=SequentialIds())
    messaging.advance(MINUTE)
    # the first tick ran twice at once (one instant retry), then once more 30 s later
    assert flaky.calls == [START, START, START + timedelta(seconds=30)]
    [retried] = messaging.journal.of_kind(RecordKind.RETRIED)
    assert (retried.endpoint_id, retried.delay) == ("sync_prices", timedelta(seconds=30))
    assert [r.attempt for r in messaging.journal.of_kind(RecordKind.TICKED)] == [1, 2]
    assert messaging.journal.of_kind(RecordKind.HANDLED)[-1].attempt == 2
    messaging.advance(timedelta(hours=1))  # the schedule goes on as planned
    assert flaky.calls[-1] == START + timedelta(hours=1)


def test_a_failing_tick_goes_to_its_error_handler() -> None:
    failures: list[Failure] = []

    @event_handler
    def on_failure(failure: Failure) -> None:
        failures.append(failure)

    @scheduled(every=timedelta(hours=1), error_handler=on_failure)
    def sync_prices() -> None:
        raise ConnectionError("the price feed is down")

    messaging = build([sync_prices, on_failure])
    messaging.advance(MINUTE)
    [failure] = failures
    assert (failure.endpoint_id, failure.message_type, failure.payload) == (
        "sync_prices",
        "tick",
        START,
    )
    assert isinstance(failure.error, ConnectionError)
    assert messaging.journal.of_kind(RecordKind.ERROR_HANDLED)[0].endpoint_id == "sync_prices"


def test_a_failing_tick_kept_as_a_dead_letter_runs_again_when_replayed() -> None:
    flaky = Flaky(failures=1)

    @scheduled(every=timedelta(hours=1), dead_letter=True)
    def sync_prices() -> None:
        flaky(START)

    messaging = build([sync_prices])
    messaging.advance(MINUTE)
    [letter] = messaging.dead_letters.list()
    assert (letter.channel, letter.endpoint_id, letter.message_type) == (
        "sync_prices",
        "sync_prices",
        "tick",
    )
    assert letter.exception_type == "ConnectionError"
    messaging.dead_letters.replay(letter.id)
    assert len(flaky.calls) == 2
    assert messaging.dead_letters.count() == 0
    kinds = [r.kind for r in messaging.journal if r.message_id == letter.message_id]
    assert kinds[-3:] == [RecordKind.REPLAYED, RecordKind.TICKED, RecordKind.HANDLED]


def test_a_tick_without_failure_settings_is_only_logged_as_before() -> None:
    @scheduled(every=timedelta(hours=1))
    def sync_prices() -> None:
        raise ConnectionError("down")

    messaging = Messaging(
        handlers=[sync_prices], clock=VirtualClock(START), dead_letter=True, log_failures=False
    )
    messaging.advance(MINUTE)
    assert messaging.dead_letters.count() == 0
    assert len(messaging.journal.of_kind(RecordKind.FAILED)) == 1


def test_the_asyncio_driver_retries_and_dead_letters_a_failing_tick() -> None:
    calls: list[int] = []

    @scheduled(every=timedelta(hours=1), retry=RetryPolicy(instant=1), dead_letter=True)
    async def sync_prices() -> None:
        calls.append(1)
        raise ConnectionError("down")

    async def main() -> AsyncMessaging:
        async with AsyncMessaging(
            handlers=[sync_prices], clock=VirtualClock(START), ids=SequentialIds()
        ) as messaging:
            await messaging.advance(MINUTE)
            [letter] = messaging.dead_letters.list()
            await messaging.dead_letters.replay(letter.id)
        return messaging

    messaging = asyncio.run(main())
    assert len(calls) == 4  # twice at the tick, twice on replay
    assert messaging.dead_letters.count() == 1  # it failed again after its replay
    assert messaging.dead_letters.list()[0].replayed == 1
