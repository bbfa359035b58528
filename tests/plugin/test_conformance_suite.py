"""Tests of the conformance suite itself: it must catch broken transports, by name.

Each broken transport below wraps an honest MemoryTransport and breaks exactly one promise. The
suite runs against each in a pytester session, and the test names which conformance tests must
fail: a suite that lets a broken transport through is no safety net for adapters.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from conveyor.clock import VirtualClock
from conveyor.memory import MemoryTransport
from conveyor.transport import Capabilities, Delivery, Transport, WireMessage
from pytest_conveyor.conformance import TransportHarness


class _Wrapper:
    """Delegates every Transport call to a MemoryTransport; subclasses break one of them.

    It is a plain Transport, not an InspectableTransport, so the inspection tests skip and each
    broken transport fails only the tests about the promise it breaks.
    """

    def __init__(self, inner: MemoryTransport) -> None:
        self.inner = inner

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def declare(self, channel: str) -> None:
        self.inner.declare(channel)

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self.inner.send(
            channel, message, available_at=available_at, priority=priority, expires_at=expires_at
        )

    def receive(self, channel: str, *, lease: timedelta) -> Delivery | None:
        return self.inner.receive(channel, lease=lease)

    def ack(self, delivery: Delivery) -> None:
        self.inner.ack(delivery)

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        self.inner.release(delivery, available_at=available_at)

    def close(self) -> None:
        self.inner.close()


class HonestWrapper(_Wrapper):
    """Breaks nothing: proves the wrapper alone fails no test."""


class DropsHeaders(_Wrapper):
    """Sends the body and forgets the headers."""

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        super().send(
            channel, WireMessage(message.body), available_at=available_at, priority=priority
        )


class NeverRedelivers(_Wrapper):
    """Leases forever: an unacked message is lost to every other consumer."""

    def receive(self, channel: str, *, lease: timedelta) -> Delivery | None:
        return super().receive(channel, lease=timedelta(days=3650))


class IgnoresDelay(_Wrapper):
    """Delivers at once whatever ``available_at`` says."""

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        super().send(channel, message, priority=priority, expires_at=expires_at)

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        super().release(delivery)


class _SubjectPlugin:
    """Hands the transport under test to the pytester session as a ``subject_harness`` fixture."""

    def __init__(self, build: Callable[[MemoryTransport], Transport]) -> None:
        self.build = build

    @pytest.fixture
    def subject_harness(self) -> Iterator[TransportHarness]:
        clock = VirtualClock()
        transport = self.build(MemoryTransport(clock))
        names = itertools.count()
        yield TransportHarness(
            transport=transport,
            clock=clock,
            advance=clock.advance,
            make_channel=lambda: f"channel-{next(names)}",
        )
        transport.close()


_SUBJECT_MODULE = """
import pytest
from pytest_conveyor.conformance import TransportConformance

class TestSubject(TransportConformance):
    @pytest.fixture
    def harness(self, subject_harness):
        return subject_harness
"""


def _outcomes(
    pytester: pytest.Pytester, build: Callable[[MemoryTransport], Transport]
) -> dict[str, set[str]]:
    """Run the whole suite against ``build(MemoryTransport)``; test names by outcome."""
    pytester.makepyfile(test_subject=_SUBJECT_MODULE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[_SubjectPlugin(build)])
    passed, skipped, failed = result.reprec.listoutcomes()  # type: ignore[attr-defined]
    outcomes: dict[str, set[str]] = {}
    for name, reports in (("passed", passed), ("skipped", skipped), ("failed", failed)):
        outcomes[name] = {report.nodeid.rpartition("::")[2] for report in reports}
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    return outcomes


def test_honest_memory_transport_passes_every_test(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, lambda inner: inner)

    assert outcomes["failed"] == set()
    assert "test_next_due_of_leased_message_is_its_lease_expiry" in outcomes["passed"]
    assert len(outcomes["passed"]) >= 30


def test_the_wrapper_alone_breaks_nothing(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, HonestWrapper)

    assert outcomes["failed"] == set()


def test_dropped_headers_fail_the_header_round_trip(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, DropsHeaders)

    assert outcomes["failed"] == {"test_round_trip_keeps_unicode_headers"}


def test_missing_redelivery_fails_the_lease_tests(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, NeverRedelivers)

    assert outcomes["failed"] == {
        "test_unacked_message_is_redelivered_after_lease_and_not_before",
        "test_delivery_count_grows_with_each_redelivery",
        "test_consumer_killed_mid_message_loses_nothing",
    }


def test_ignored_delay_fails_the_delay_tests(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, IgnoresDelay)

    assert outcomes["failed"] == {
        "test_delayed_message_is_not_received_before_available_at",
        "test_delayed_message_does_not_block_due_message_behind_it",
        "test_release_with_available_at_holds_message_until_then",
    }


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
