"""Tests of the conformance suite itself: it must catch broken transports, by name.

Each transport in ``broken_transports`` and ``broken_capabilities`` breaks exactly one promise.
The suite's checks run against each through the sync runner and, wrapped as an AsyncTransport,
through the async runner, and the test names which checks must fail: a suite that lets a broken
transport through is no safety net for adapters. Together they fail every check of the suite at
least once. The pytest layer (``TransportConformance``) is tested in a pytester session.
"""

from __future__ import annotations

from collections.abc import Callable

import broken_capabilities as optional
import broken_transports as broken
import pytest

from conveyor.core.clock import Clock, SystemClock, VirtualClock
from conveyor.transports.async_memory import AsyncMemoryTransport
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Transport
from pytest_conveyor.conformance import (
    CHECKS,
    GROUPS,
    AsyncTransportHarness,
    Harness,
    Report,
    TransportHarness,
    run_checks,
)

# Breakers whose ack, release or renew do nothing also let those verbs pass after close.
_AFTER_CLOSE = "operations_after_close_raise_transport_closed"

FAILED_BY: dict[type, set[str]] = {
    broken.HonestWrapper: set(),
    broken.HonestFullWrapper: set(),
    optional.DurableMemory: set(),
    optional.ConnectionLeases: set(),
    broken.DropsHeaders: {"round_trip_keeps_unicode_headers", "large_message_round_trips_intact"},
    broken.MangleBinaryBodies: {"round_trip_keeps_body_bytes", "large_message_round_trips_intact"},
    broken.RefusesLargeMessages: {"large_message_round_trips_intact"},
    broken.NamesAnotherChannel: {"first_delivery_names_its_channel_and_counts_one"},
    broken.SharesOneQueue: {"channels_are_isolated"},
    broken.ReturnsOneAtATime: {"receive_returns_a_batch_up_to_max_messages"},
    broken.NeverRedelivers: {
        "unacked_message_is_redelivered_after_its_lease_and_not_before",
        "delivery_count_grows_with_each_redelivery",
        "consumer_killed_mid_message_loses_nothing",
    },
    broken.IgnoresAck: {
        "ack_removes_message",
        "consumer_killed_mid_message_loses_nothing",
        "many_messages_are_each_delivered_exactly_once",
        _AFTER_CLOSE,
    },
    broken.IgnoresRelease: {
        "release_puts_message_back_at_once",
        "release_with_available_at_holds_message_until_then",
        _AFTER_CLOSE,
    },
    broken.CountsEveryDeliveryAsFirst: {
        "unacked_message_is_redelivered_after_its_lease_and_not_before",
        "delivery_count_grows_with_each_redelivery",
        "release_puts_message_back_at_once",
        "release_with_available_at_holds_message_until_then",
    },
    broken.LeasesNothing: {
        "competing_receives_never_share_a_lease",
        "unacked_message_is_redelivered_after_its_lease_and_not_before",
        "delayed_message_does_not_block_due_message_behind_it",
        "receive_returns_a_batch_up_to_max_messages",
    },
    broken.IgnoresDelay: {
        "delayed_message_is_not_received_before_available_at",
        "delayed_message_does_not_block_due_message_behind_it",
        "release_with_available_at_holds_message_until_then",
    },
    broken.HoldsTwiceTheDelay: {
        "delayed_message_is_received_at_available_at",
        "release_with_available_at_holds_message_until_then",
    },
    broken.IgnoresPriority: {
        "higher_priority_is_received_first",
        "equal_priority_keeps_declared_ordering",
    },
    broken.ReversesOrder: {
        "fifo_ordering_keeps_send_order",
        "equal_priority_keeps_declared_ordering",
        "receive_returns_a_batch_up_to_max_messages",
    },
    broken.DropsExpired: {"expired_message_is_dropped_only_with_native_ttl"},
    broken.ClaimsNativeTtl: {"expired_message_is_dropped_only_with_native_ttl"},
    broken.DropsAnythingThatExpires: {"message_is_received_before_its_expires_at"},
    broken.MeasuresBodyOnly: {"message_over_max_size_raises_message_too_large"},
    broken.LimitOffByOne: {
        "message_of_exactly_max_size_is_accepted",
        "large_message_round_trips_intact",
    },
    broken.DeclareEmptiesTheChannel: {"declare_again_keeps_messages"},
    broken.DeclarePutsAMessageThere: {
        "empty_channel_receives_nothing",
        "declare_is_idempotent",
        "declare_again_keeps_messages",
        "declare_takes_the_channel_options",
        "channels_are_isolated",
        "higher_priority_is_received_first",
        "equal_priority_keeps_declared_ordering",
    },
    broken.RefusesChannelOptions: {
        "declare_takes_the_channel_options",
        "higher_priority_is_received_first",
        "equal_priority_keeps_declared_ordering",
    },
    broken.IgnoresClose: {_AFTER_CLOSE},
    broken.ClosingTwiceRaises: {"closing_twice_is_a_no_op"},
    optional.IgnoresRenew: {
        "renewed_lease_runs_from_the_renewal",
        "renewing_a_stale_receipt_raises_stale_receipt",
        "renewing_an_acknowledged_delivery_raises_stale_receipt",
        _AFTER_CLOSE,
    },
    optional.RenewsStaleReceipts: {
        "renewing_a_stale_receipt_raises_stale_receipt",
        "renewing_an_acknowledged_delivery_raises_stale_receipt",
    },
    optional.ForgetsAcksAfterRenew: {"renewed_delivery_can_still_be_acknowledged"},
    optional.PendingCountsOnlyDue: {
        "pending_counts_due_and_leased_messages",
        "pending_counts_delayed_messages",
    },
    optional.NextDueAnHourLate: {
        "next_due_of_empty_channel_is_none",
        "next_due_of_due_message_is_not_after_now",
        "next_due_of_delayed_message_is_its_available_at",
        "next_due_of_leased_message_is_its_lease_expiry",
    },
    optional.ForgetsOnRestart: {"sent_message_survives_reopen", "unacked_message_survives_reopen"},
    optional.ForgetsAcksOnRestart: {"acked_message_stays_gone_after_reopen"},
    optional.KeepsLeasesAfterClose: {
        "unacked_message_is_redelivered_after_its_lease_and_not_before",
        "delivery_count_grows_with_each_redelivery",
        "consumer_killed_mid_message_loses_nothing",
    },
}
"""Each transport, and the checks it must fail on virtual time, under either runner."""

LONG_POLL_FAILED_BY: dict[type, set[str]] = {
    broken.HonestWrapper: set(),
    optional.WaitsTheWaitOut: {
        "long_poll_returns_a_due_message_at_once",
        "long_poll_is_woken_by_a_send",
    },
    optional.IgnoresWait: {"long_poll_is_woken_by_a_send"},
    optional.LongPollInventsMessages: {"long_poll_on_an_empty_channel_returns_nothing"},
}
"""On real time, through the sync runner. (A blocking sync transport wrapped as async would block
the very loop its sender task needs: the async runner has breakers of its own, below.)"""

ASYNC_LONG_POLL_FAILED_BY: dict[type, set[str]] = {
    optional.AsyncHonestLongPoll: set(),
    optional.AsyncWaitsTheWaitOut: {
        "long_poll_returns_a_due_message_at_once",
        "long_poll_is_woken_by_a_send",
    },
    optional.AsyncIgnoresWait: {"long_poll_is_woken_by_a_send"},
    optional.AsyncLongPollInventsMessages: {"long_poll_on_an_empty_channel_returns_nothing"},
}
"""On real time, through the async runner: each breaks the long poll on the loop itself."""

_LONG_POLL = [c for g in GROUPS if g.name == "batches and long poll" for c in g.checks]


def _harness(kind: type, clock: Clock, runner: str) -> Harness:
    """A fresh harness around ``kind``: durable and connection kinds share one store."""
    reopen: Callable[[], Transport] | None = None
    if issubclass(kind, optional.DurableMemory):
        shared = optional.Shared(clock)
        opener = getattr(kind, "reopened", kind)
        transport: Transport = kind(shared, clock)

        def reopen() -> Transport:
            return opener(shared, clock)  # type: ignore[no-any-return]

    else:
        transport = kind(MemoryTransport(clock), clock)
    if runner == "sync":
        return TransportHarness(transport, clock, reopen=reopen)
    async_reopen = None if reopen is None else (lambda: optional.async_of(reopen()))
    return AsyncTransportHarness(optional.async_of(transport), clock, reopen=async_reopen)


def _run(kind: type, runner: str) -> Report:
    return run_checks(lambda: _harness(kind, VirtualClock(), runner))


@pytest.mark.parametrize("runner", ["sync", "async"])
@pytest.mark.parametrize("kind", list(FAILED_BY), ids=lambda kind: kind.__name__)
def test_each_broken_transport_fails_exactly_the_checks_of_its_promise(
    kind: type, runner: str
) -> None:
    report = _run(kind, runner)

    assert report.failed == FAILED_BY[kind], str(report)


@pytest.mark.parametrize("kind", list(LONG_POLL_FAILED_BY), ids=lambda kind: kind.__name__)
def test_broken_long_polls_fail_the_long_poll_checks_on_real_time(kind: type) -> None:
    report = run_checks(lambda: _harness(kind, SystemClock(), "sync"), _LONG_POLL)

    assert report.failed == LONG_POLL_FAILED_BY[kind], str(report)


@pytest.mark.parametrize("kind", list(ASYNC_LONG_POLL_FAILED_BY), ids=lambda kind: kind.__name__)
def test_broken_async_long_polls_fail_the_long_poll_checks_on_real_time(kind: type) -> None:
    def make() -> Harness:
        clock = SystemClock()
        return AsyncTransportHarness(kind(AsyncMemoryTransport(clock)), clock)

    report = run_checks(make, _LONG_POLL)

    assert report.failed == ASYNC_LONG_POLL_FAILED_BY[kind], str(report)


def test_every_check_is_failed_by_some_broken_transport() -> None:
    failed = set().union(*FAILED_BY.values(), *LONG_POLL_FAILED_BY.values())

    assert {c.name for c in CHECKS} - failed == set()


def test_a_failure_says_what_the_transport_did() -> None:
    report = _run(broken.IgnoresDelay, "sync")

    (outcome,) = [
        o
        for o in report.outcomes
        if o.check == "delayed_message_is_not_received_before_available_at"
    ]
    assert "Wrapper" not in outcome.detail
    assert outcome.detail.startswith("IgnoresDelay delivered b'wait' (delivery 1)")


def test_durable_checks_fail_without_reopen_rather_than_skip() -> None:
    def make() -> Harness:
        clock = VirtualClock()
        return TransportHarness(optional.DurableMemory(optional.Shared(clock), clock), clock)

    report = run_checks(make)

    assert report.failed == {
        "sent_message_survives_reopen",
        "acked_message_stays_gone_after_reopen",
        "unacked_message_survives_reopen",
    }
    assert "needs `reopen`" in str(report)


def test_only_undeclared_promises_and_virtual_long_polls_are_not_applicable() -> None:
    report = _run(broken.HonestWrapper, "sync")

    reasons = {o.detail.split(": ", 1)[1] for o in report.outcomes if o.verdict == "not applicable"}
    assert {r for r in reasons if not r.startswith("virtual time")} == {
        "HonestWrapper declares capabilities.max_size=None",
        "HonestWrapper declares capabilities.durable=False",
        "HonestWrapper does not implement renew (it is not a RenewableTransport)",
        "HonestWrapper has no pending and next_due (it is not an InspectableTransport)",
    }


_SUBJECT_MODULE = """
import pytest
from conveyor.core.clock import VirtualClock
from conveyor.transports.memory import MemoryTransport
from pytest_conveyor.conformance import TransportConformance, TransportHarness

class TestSubject(TransportConformance):
    replaced = {replaced}

    @pytest.fixture
    def harness(self):
        clock = VirtualClock()
        with TransportHarness(MemoryTransport(clock), clock) as harness:
            yield harness
"""


def test_the_pytest_layer_parametrizes_every_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_subject=_SUBJECT_MODULE.format(replaced="{}"))

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs")

    clock = VirtualClock()
    report = run_checks(lambda: TransportHarness(MemoryTransport(clock), clock))
    skipped = len(report.named("not applicable"))
    assert skipped > 0
    result.assert_outcomes(passed=len(CHECKS) - skipped, skipped=skipped)
    result.stdout.fnmatch_lines(["*MemoryTransport declares capabilities.durable=False*"])


def test_a_replaced_check_must_name_a_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_subject=_SUBJECT_MODULE.format(replaced='{"no_such_check": "why"}'))

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")

    result.stdout.fnmatch_lines(["*no conformance check 'no_such_check'*"])


def test_suite_without_a_harness_explains_how_to_provide_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_no_harness="""
        from pytest_conveyor.conformance import TransportConformance

        class TestForgotten(TransportConformance):
            pass
        """
    )

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "body_bytes")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TestForgotten subclasses TransportConformance without*"])
