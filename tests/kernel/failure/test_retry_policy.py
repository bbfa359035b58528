"""``Backoff`` and ``RetryPolicy`` as pure decisions: the delay, whether to retry, when to stop."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from failure_kit import GatewayTimeout, PaymentDeclined

from conveyor import Backoff, ConfigurationError, RetryPolicy
from conveyor.core.retry import MAX_RETRY_DELAY


def s(n: float) -> timedelta:
    return timedelta(seconds=n)


# ---------------------------------------------------------------- Backoff


def test_a_fixed_backoff_waits_the_same_before_every_retry() -> None:
    backoff = Backoff.fixed(s(5))
    assert [backoff.delay(k) for k in (1, 2, 3, 10)] == [s(5)] * 4


def test_an_exponential_backoff_multiplies_the_delay_by_its_factor() -> None:
    backoff = Backoff.exponential(initial=s(1), factor=3)
    assert [backoff.delay(k) for k in (1, 2, 3, 4)] == [s(1), s(3), s(9), s(27)]


def test_max_delay_caps_the_delay() -> None:
    backoff = Backoff.exponential(initial=s(1), factor=10, max_delay=s(30))
    assert [backoff.delay(k) for k in (1, 2, 3, 4, 50)] == [s(1), s(10), s(30), s(30), s(30)]


def test_delays_keep_millisecond_precision() -> None:
    backoff = Backoff.exponential(initial=timedelta(milliseconds=5), factor=1.5)
    assert [backoff.delay(k) for k in (1, 2, 3)] == [
        timedelta(milliseconds=5),
        timedelta(milliseconds=8),  # 7.5 rounds to even
        timedelta(milliseconds=11),  # 11.25
    ]


def test_jitter_spreads_delays_within_its_fraction_either_way() -> None:
    backoff = Backoff.fixed(s(10), jitter=0.2)
    delays = [backoff.delay(1, random.Random(seed)) for seed in range(200)]
    assert all(s(8) <= d <= s(12) for d in delays)
    assert min(delays) < s(9)
    assert max(delays) > s(11)


def test_jitter_from_a_seeded_random_repeats_exactly() -> None:
    backoff = Backoff.exponential(initial=s(1), factor=2, jitter=0.5)
    first, second = random.Random(42), random.Random(42)
    assert [backoff.delay(k, first) for k in range(1, 8)] == [
        backoff.delay(k, second) for k in range(1, 8)
    ]


def test_without_a_random_source_jitter_does_nothing() -> None:
    assert Backoff.fixed(s(10), jitter=0.5).delay(1) == s(10)


def test_jitter_never_pushes_a_delay_past_max_delay() -> None:
    backoff = Backoff.exponential(initial=s(1), factor=2, max_delay=s(8), jitter=0.5)
    rng = random.Random(0)
    delays = [backoff.delay(k, rng) for k in range(1, 200)]
    assert max(delays) <= s(8)
    assert min(delays[10:]) >= s(4)  # at the cap, jitter only ever shortens the delay


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Backoff.fixed(s(-1)),
            "Backoff initial delay cannot be negative, got -1 second",
        ),
        (
            lambda: Backoff.exponential(initial=s(1), factor=0.5),
            "Backoff factor must be at least 1, got 0.5",
        ),
        (
            lambda: Backoff.fixed(s(1), jitter=1.5),
            "Backoff jitter is a fraction from 0 to 1: 1.5",
        ),
    ],
)
def test_a_backoff_that_cannot_work_is_refused(make: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        make()  # type: ignore[operator]
    assert str(raised.value) == message


# ---------------------------------------------------------------- RetryPolicy


def test_the_default_policy_retries_nothing_later() -> None:
    policy = RetryPolicy()
    assert policy.instant == 0
    assert policy.next_delay(GatewayTimeout(), 1) is None


def test_attempts_count_deliveries_and_stop_delayed_retries() -> None:
    policy = RetryPolicy(delays=Backoff.fixed(s(1)), attempts=3)
    assert [policy.next_delay(GatewayTimeout(), attempt) for attempt in (1, 2, 3, 4)] == [
        s(1),
        s(1),
        None,
        None,
    ]


def test_max_delay_caps_and_attempts_stop() -> None:
    """Ecotone stops retrying once the delay would pass maxDelay; Conveyor caps it instead."""
    policy = RetryPolicy(
        delays=Backoff.exponential(initial=s(1), factor=2, max_delay=s(3)), attempts=7
    )
    delays = [policy.next_delay(GatewayTimeout(), attempt) for attempt in range(1, 9)]
    assert delays == [s(1), s(2), s(3), s(3), s(3), s(3), None, None]


def test_a_list_of_delays_repeats_its_last_delay() -> None:
    policy = RetryPolicy(delays=[s(1), s(30)], attempts=5)
    delays = [policy.next_delay(GatewayTimeout(), attempt) for attempt in range(1, 6)]
    assert delays == [s(1), s(30), s(30), s(30), None]


def test_a_policy_with_one_attempt_never_retries_later() -> None:
    policy = RetryPolicy(instant=2, delays=Backoff.fixed(s(1)), attempts=1)
    assert policy.next_delay(GatewayTimeout(), 1) is None


def test_on_names_the_exception_types_retried_including_subclasses() -> None:
    policy = RetryPolicy(delays=[s(1)], on=(TimeoutError, ConnectionError))
    assert policy.retries(GatewayTimeout())
    assert policy.retries(ConnectionResetError())
    assert not policy.retries(PaymentDeclined())
    assert policy.next_delay(PaymentDeclined(), 1) is None


def test_ignore_wins_over_on() -> None:
    policy = RetryPolicy(delays=[s(1)], on=(Exception,), ignore=(PaymentDeclined,))
    assert policy.retries(GatewayTimeout())
    assert not policy.retries(PaymentDeclined())
    assert policy.next_delay(PaymentDeclined(), 1) is None


def test_a_single_exception_type_is_accepted_for_on_and_ignore() -> None:
    policy = RetryPolicy(on=TimeoutError, ignore=GatewayTimeout)
    assert policy.on == (TimeoutError,)
    assert policy.ignore == (GatewayTimeout,)
    assert policy.retries(TimeoutError())
    assert not policy.retries(GatewayTimeout())


def test_a_list_of_exception_types_is_accepted_for_on() -> None:
    policy = RetryPolicy(on=[TimeoutError, ConnectionError])  # type: ignore[arg-type]
    assert policy.on == (TimeoutError, ConnectionError)
    assert policy.retries(ConnectionError())


def test_by_default_every_exception_is_retried() -> None:
    policy = RetryPolicy(delays=[s(1)])
    assert policy.retries(PaymentDeclined())
    assert policy.retries(GatewayTimeout())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"instant": -1}, "RetryPolicy instant retries cannot be negative: -1"),
        (
            {"attempts": 0},
            "RetryPolicy attempts counts deliveries, the first included, so it is at least 1; "
            "got 0.",
        ),
        ({"delays": []}, "RetryPolicy delays, when a list, needs at least one delay"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        RetryPolicy(**options)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_on_must_name_exception_types() -> None:
    with pytest.raises(ConfigurationError) as raised:
        RetryPolicy(on=("TimeoutError",))  # type: ignore[arg-type]
    assert str(raised.value) == (
        "RetryPolicy on= takes exception types, got 'TimeoutError'; for example "
        "on=(TimeoutError, ConnectionError)."
    )


# ---------------------------------------------------------------- huge numbers and bad input


def test_a_capped_exponential_backoff_stays_at_its_cap_for_thousands_of_deliveries() -> None:
    """The cap is applied before the power: 2 ** 1024 does not fit in a float."""
    policy = RetryPolicy(
        delays=Backoff.exponential(
            initial=timedelta(seconds=1), factor=2, max_delay=timedelta(minutes=1)
        ),
        attempts=2000,
    )
    assert policy.next_delay(GatewayTimeout(), 1025) == timedelta(minutes=1)
    assert policy.next_delay(GatewayTimeout(), 1999) == timedelta(minutes=1)
    assert policy.next_delay(GatewayTimeout(), 2000) is None
    assert policy.delays.delay(10**9) == timedelta(minutes=1)  # type: ignore[union-attr]


def test_an_uncapped_exponential_backoff_grows_to_365_days_and_stays_there() -> None:
    policy = RetryPolicy(delays=Backoff.exponential(initial=s(1), factor=2), attempts=60)
    delays = [policy.next_delay(GatewayTimeout(), attempt) for attempt in range(1, 60)]
    assert delays[:3] == [s(1), s(2), s(4)]
    assert delays[24] == s(2**24)  # 194 days: still growing
    assert delays[25:] == [timedelta(days=365)] * 34
    assert timedelta(days=365) == MAX_RETRY_DELAY


def test_seeded_jitter_keeps_working_at_the_cap() -> None:
    backoff = Backoff.exponential(initial=s(1), factor=2, max_delay=s(60), jitter=0.5)
    first, second = random.Random(7), random.Random(7)
    delays = [backoff.delay(k, first) for k in range(1000, 1100)]
    assert delays == [backoff.delay(k, second) for k in range(1000, 1100)]
    assert all(s(30) <= d <= s(60) for d in delays)
    assert len(set(delays)) > 50


@pytest.mark.parametrize("attempt", [0, -1, -50])
def test_an_attempt_below_one_counts_as_the_first_delivery(attempt: int) -> None:
    listed = RetryPolicy(delays=[s(1), s(30)], attempts=3)
    backoff = RetryPolicy(delays=Backoff.exponential(initial=s(1), factor=3), attempts=3)
    assert listed.next_delay(GatewayTimeout(), attempt) == s(1)
    assert backoff.next_delay(GatewayTimeout(), attempt) == s(1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"delays": [s(1), s(-1)]},
            "RetryPolicy delays[1] cannot be negative, got -1 second",
        ),
        (
            {"delays": [5]},
            "RetryPolicy delays[0] must be a timedelta, got a value of type int; for example "
            "timedelta(seconds=5).",
        ),
        (
            {"delays": s(5)},
            "RetryPolicy delays= takes a Backoff or a list of timedeltas, got a value of type "
            "timedelta; for example delays=[timedelta(seconds=1), timedelta(minutes=1)] or "
            "delays=Backoff.fixed(timedelta(seconds=5)).",
        ),
        (
            {"delays": [timedelta(days=400)]},
            "RetryPolicy delays[0] is 400 days, longer than the longest retry delay Conveyor "
            "keeps (365 days); a message that must wait longer belongs in a store of its own. "
            "Use a delay of at most 365 days.",
        ),
        (
            {"attempts": "3"},
            "RetryPolicy attempts= is a whole number, got a value of type str; for example "
            "RetryPolicy(instant=2, attempts=5).",
        ),
    ],
)
def test_delays_and_counts_of_the_wrong_kind_are_refused(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        RetryPolicy(**options)  # type: ignore[arg-type]
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Backoff.exponential(initial=s(1), factor=float("nan")), "factor must be"),
        (lambda: Backoff.exponential(initial=s(1), factor=float("inf")), "factor must be"),
        (lambda: Backoff.fixed(timedelta.max), "longer than the longest retry delay"),
        (
            lambda: Backoff.exponential(initial=s(1), max_delay=timedelta(days=366)),
            "Backoff max_delay is 366 days, longer than",
        ),
        (
            lambda: Backoff.fixed(5),
            "Backoff initial delay must be a timedelta, got a value of type int",
        ),  # type: ignore[arg-type]
        (
            lambda: Backoff.fixed(s(1), jitter="0.1"),
            "Backoff jitter is a number, got a value of type str",
        ),  # type: ignore[arg-type]
    ],
)
def test_backoffs_that_could_overflow_or_are_of_the_wrong_kind_are_refused(
    make: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make()  # type: ignore[operator]
