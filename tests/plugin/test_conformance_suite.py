"""Tests of the conformance suite itself: it must catch broken transports, by name.

Each broken transport below wraps an honest MemoryTransport and breaks exactly one promise. The
suite runs against each in a pytester session, and the test names which conformance tests must
fail: a suite that lets a broken transport through is no safety net for adapters. A test class
whose mixins do not match what its transport declares must fail too, naming the mismatch, and
no session may skip a test.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

import pytest

from conveyor.core.clock import Clock, VirtualClock
from conveyor.core.errors import MessageTooLarge
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Capabilities, ChannelOptions, Delivery, Transport, WireMessage
from pytest_conveyor.conformance import TransportHarness

EXPIRES_AT = "x-test-expires-at"


class _Wrapper:
    """Delegates every Transport call to a MemoryTransport; subclasses break one of them.

    It is a plain Transport, not an InspectableTransport, so it runs without the inspection
    mixin and each broken transport fails only the tests about the promise it breaks.
    """

    def __init__(self, inner: MemoryTransport, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def declare(self, options: ChannelOptions) -> None:
        self.inner.declare(options)

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

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        return self.inner.receive(channel, lease=lease, max_messages=max_messages, wait=wait)

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

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        return super().receive(channel, lease=timedelta(days=3650), max_messages=max_messages)


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


class DropsExpired(_Wrapper):
    """Drops messages past their ``expires_at`` though it declares no native TTL.

    The kernel never sees them, so it cannot dead-letter them: they are lost silently.
    """

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        if expires_at is not None:
            message = WireMessage(message.body, {**message.headers, EXPIRES_AT: str(expires_at)})
        super().send(channel, message, available_at=available_at, priority=priority)

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        while found := super().receive(channel, lease=lease):
            delivery = found[0]
            expires_at = delivery.message.headers.get(EXPIRES_AT)
            if expires_at is None or datetime.fromisoformat(expires_at) > self.clock.now():
                return [delivery]
            self.ack(delivery)
        return []


class ClaimsNativeTtl(_Wrapper):
    """Declares native TTL, yet delivers expired messages, which the kernel trusts it to drop."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(self.inner.capabilities, ttl=True)


class RefusesLargeMessages(_Wrapper):
    """Refuses messages over 64 KiB though it declares no ``max_size``."""

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        if message.size > 64 * 1024:
            raise MessageTooLarge(f"{message.size} bytes is over an undeclared limit")
        super().send(
            channel, message, available_at=available_at, priority=priority, expires_at=expires_at
        )


class DeclaresDurable(_Wrapper):
    """Declares durability: honest or not, no test of the memory-backed wrapper can reopen it."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(self.inner.capabilities, durable=True)


class _SubjectPlugin:
    """Hands the transport under test to the pytester session as a ``subject_harness`` fixture."""

    def __init__(self, build: Callable[[MemoryTransport, Clock], Transport]) -> None:
        self.build = build

    @pytest.fixture
    def subject_harness(self) -> Iterator[TransportHarness]:
        clock = VirtualClock()
        transport = self.build(MemoryTransport(clock), clock)
        names = itertools.count()
        yield TransportHarness(
            transport=transport,
            clock=clock,
            advance=clock.advance,
            make_channel=lambda: f"channel-{next(names)}",
        )
        transport.close()


_MEMORY_SUITES = (
    "DelayTransportConformance",
    "PriorityTransportConformance",
    "FifoTransportConformance",
)
"""The mixins for what MemoryTransport declares, less inspection, which the wrappers lack."""

_SUBJECT_MODULE = """
import pytest
from pytest_conveyor.conformance import {bases}

class TestSubject({bases}):
    @pytest.fixture
    def harness(self, subject_harness):
        return subject_harness
"""


def _outcomes(
    pytester: pytest.Pytester,
    build: Callable[[MemoryTransport, Clock], Transport],
    suites: Sequence[str] = _MEMORY_SUITES,
    *,
    output: Sequence[str] = (),
) -> dict[str, set[str]]:
    """Run the suite's ``suites`` (its base class if none) against ``build``: names by outcome.

    ``output`` holds glob patterns that lines of the session's output must match, in order.
    """
    pytester.makepyfile(
        test_subject=_SUBJECT_MODULE.format(bases=", ".join(suites) or "TransportConformance")
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[_SubjectPlugin(build)])
    passed, skipped, failed = result.reprec.listoutcomes()  # type: ignore[attr-defined]
    outcomes: dict[str, set[str]] = {}
    for name, reports in (("passed", passed), ("skipped", skipped), ("failed", failed)):
        outcomes[name] = {report.nodeid.rpartition("::")[2] for report in reports}
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    assert outcomes["skipped"] == set(), "the suite tests what a transport declares, never skips"
    result.stdout.fnmatch_lines(list(output))
    return outcomes


def _memory(inner: MemoryTransport, clock: Clock) -> Transport:
    return inner


def test_honest_memory_transport_passes_every_test(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, _memory, [*_MEMORY_SUITES, "InspectableTransportConformance"])

    assert outcomes["failed"] == set()
    assert "test_next_due_of_leased_message_is_its_lease_expiry" in outcomes["passed"]
    assert len(outcomes["passed"]) >= 40


def test_the_wrapper_alone_breaks_nothing(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, HonestWrapper)

    assert outcomes["failed"] == set()


def test_dropped_headers_fail_the_header_round_trips(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, DropsHeaders)

    assert outcomes["failed"] == {
        "test_round_trip_keeps_unicode_headers",
        "test_large_message_round_trips_intact",
    }


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


def test_expired_message_dropped_without_native_ttl_fails_the_ttl_test(
    pytester: pytest.Pytester,
) -> None:
    outcomes = _outcomes(pytester, DropsExpired)

    assert outcomes["failed"] == {"test_expired_message_is_dropped_only_with_native_ttl"}


def test_expired_message_delivered_despite_native_ttl_fails_the_ttl_test(
    pytester: pytest.Pytester,
) -> None:
    outcomes = _outcomes(pytester, ClaimsNativeTtl)

    assert outcomes["failed"] == {"test_expired_message_is_dropped_only_with_native_ttl"}


def test_undeclared_size_limit_fails_the_large_message_test(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, RefusesLargeMessages)

    assert outcomes["failed"] == {"test_large_message_round_trips_intact"}


def test_declared_capabilities_left_untested_fail_by_name(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, _memory, suites=[])

    assert outcomes["failed"] == {
        "test_declared_capability_is_tested_by_its_suite[delay]",
        "test_declared_capability_is_tested_by_its_suite[priority]",
        "test_declared_capability_is_tested_by_its_suite[fifo]",
        "test_declared_capability_is_tested_by_its_suite[inspectable]",
    }


def test_durable_transport_without_the_durable_suite_fails(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(
        pytester,
        DeclaresDurable,
        output=[
            "*DeclaresDurable declares capabilities.durable=True, but TestSubject does not "
            "subclass DurableTransportConformance*"
        ],
    )

    assert outcomes["failed"] == {"test_declared_capability_is_tested_by_its_suite[durable]"}


def test_durable_suite_without_reopen_fails_its_tests(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(
        pytester,
        DeclaresDurable,
        [*_MEMORY_SUITES, "DurableTransportConformance"],
        output=["*DurableTransportConformance needs `reopen` on the TransportHarness*"],
    )

    assert outcomes["failed"] == {
        "test_sent_message_survives_reopen",
        "test_acked_message_stays_gone_after_reopen",
        "test_unacked_message_survives_reopen",
    }


def test_suite_of_an_undeclared_capability_fails(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, HonestWrapper, [*_MEMORY_SUITES, "MaxSizeTransportConformance"])

    assert outcomes["failed"] == {
        "test_declared_capability_is_tested_by_its_suite[max_size]",
        "test_message_over_max_size_raises_message_too_large",
        "test_message_of_exactly_max_size_is_accepted",
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
