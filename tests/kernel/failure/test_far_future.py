"""Far-future due times and durations get a clear ConveyorError naming the limit, never a raw
OverflowError: at send, at advance, at run, in a retry policy and in a deduplication expiry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from failure_kit import START, ChargeCard, build

from conveyor import (
    Backoff,
    ConfigurationError,
    Deduplication,
    InMemoryDeduplicationStore,
    QueueChannel,
    RetryPolicy,
    VirtualClock,
    asynchronous,
    command_handler,
)
from conveyor.core.errors import ConveyorError, InstantOutOfRange


@asynchronous("orders")
@command_handler(endpoint_id="charge")
def charge(command: ChargeCard) -> None: ...


def test_advance_by_timedelta_max_names_the_limit() -> None:
    messaging = build([charge], ["orders"])
    with pytest.raises(InstantOutOfRange, match=r"advance\(\): .* past the latest instant"):
        messaging.advance(timedelta.max)
    assert messaging.clock.now() == START  # nothing moved


@pytest.mark.parametrize(
    "options",
    [
        {"delay": timedelta(days=999999999)},
        {"ttl": timedelta.max},
        {"delay": timedelta(days=1), "ttl": timedelta(days=999999000)},
    ],
)
def test_send_with_a_far_future_due_time_names_the_limit(options: dict[str, timedelta]) -> None:
    messaging = build([charge], ["orders"])
    with pytest.raises(InstantOutOfRange, match=r"before the year 9000"):
        messaging.send(ChargeCard("o-1"), **options)  # type: ignore[arg-type]


def test_run_with_a_time_limit_past_the_limit_is_refused() -> None:
    messaging = build([charge], ["orders"])
    with pytest.raises(InstantOutOfRange, match=r"run\(time_limit=\.\.\.\)"):
        messaging.run("orders", time_limit=timedelta.max)
    with pytest.raises(ConfigurationError, match=r"takes a timedelta"):
        messaging.run("orders", time_limit=3600)  # type: ignore[arg-type]


def test_a_deduplication_expiry_past_a_century_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"expiry"):
        Deduplication(InMemoryDeduplicationStore(), expiry=timedelta.max)


def test_two_thousand_doubling_retries_never_overflow() -> None:
    policy = RetryPolicy(
        delays=Backoff.exponential(
            initial=timedelta(seconds=1), factor=2, max_delay=timedelta(minutes=1)
        ),
        attempts=2000,
    )
    assert policy.next_delay(RuntimeError(), 1999) == timedelta(minutes=1)
    uncapped = RetryPolicy(delays=Backoff.exponential(initial=timedelta(seconds=1)), attempts=60)
    assert uncapped.next_delay(RuntimeError(), 59) == timedelta(days=365)


def test_a_consumer_with_a_lease_of_timedelta_max_near_the_end_of_time_still_runs() -> None:
    handled: list[ChargeCard] = []

    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def record(command: ChargeCard) -> None:
        handled.append(command)

    clock = VirtualClock(datetime(8999, 12, 31, 23, 0, tzinfo=UTC))
    messaging = build([record], [QueueChannel("orders", lease=timedelta.max)], clock=clock)
    messaging.send(ChargeCard("o-1"))
    messaging.run("orders")
    assert handled == [ChargeCard("o-1")]
    with pytest.raises(ConveyorError):
        messaging.advance(timedelta(days=2))
