"""SqsTransport and AsyncSqsTransport pass the shared conformance suite against a real SQS server.

On a broker the clock is the real one: the real-time runner takes its durations from the
declared capabilities. SQS keeps visibility and delays in whole seconds (``delay_precision``
1 s) and moto checks them in 1 s steps, so leases and delays are 2 s, "not yet" is checked up
to a boundary less one second, and "there" polls until the boundary plus the precision and a
quarter; eventual visibility (declared) gives a message a few seconds more to show
(``../shared/reference/broker-adapters.md`` §4.3). The asyncio twin runs the same checks
through the async runner.

A standard queue declares delay (up to 15 minutes), a size limit, durability and no ordering;
a FIFO queue adds send order (within a group, here the whole channel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from conveyor.core.clock import SystemClock
from conveyor.transports.seam import ChannelOptions, WireMessage
from conveyor_sqs import AsyncSqsTransport, ClientSettings, SqsTransport
from pytest_conveyor.conformance import (
    AsyncTransportConformance,
    AsyncTransportHarness,
    Harness,
    TransportConformance,
    TransportHarness,
)


class TestSqsStandardConformance(TransportConformance):
    """A standard queue: at-least-once, unordered, delays up to 15 minutes."""

    many = 60
    fifo = False

    @pytest.fixture
    def harness(
        self, settings: ClientSettings, unique: Callable[[str], str]
    ) -> Iterator[TransportHarness]:
        clock = SystemClock()

        def open_transport() -> SqsTransport:  # a new client on the same queues: a restart
            return SqsTransport(clock=clock, settings=settings, fifo=self.fifo)

        with TransportHarness(
            open_transport(), clock, make_channel=lambda: unique("cf"), reopen=open_transport
        ) as harness:
            yield harness

    def test_is_renewable(self, harness: TransportHarness) -> None:
        """Else the renewal checks would be skipped as not applicable."""
        assert harness.renewable


class _FifoGroups:
    """What a FIFO queue promises instead of two checks of the suite, on either runner.

    SQS FIFO promises more than send order: a group has at most one message in flight, and a
    delayed message (held by a visibility change, FIFO queues having no per-message delay)
    holds back the later messages of its group. Two checks of the suite assume the opposite
    (memory-queue ordering: later messages of the channel can be leased meanwhile); they are
    replaced by what SQS FIFO promises instead, per group.
    """

    fifo = True
    replaced: ClassVar[dict[str, str]] = {
        "competing_receives_never_share_a_lease": "a group has one message in flight",
        "delayed_message_does_not_block_due_message_behind_it": "a held message holds its group",
    }

    def test_competing_receives_never_share_a_lease(self, harness: Harness) -> None:
        channel = harness.channel()
        harness.declare(ChannelOptions(channel, fifo_group_header="group"))
        for n in range(10):
            for step in ("first", "second"):
                harness.send(channel, WireMessage(f"{n}-{step}".encode(), {"group": str(n)}))

        leased = [harness.expect(channel, f"the first message of group {n}") for n in range(10)]
        assert sorted(d.message.body for d in leased) == sorted(
            f"{n}-first".encode() for n in range(10)
        )
        assert len({d.receipt for d in leased}) == 10
        # Every group has a message in flight: its second waits for the first to be settled.
        harness.expect_nothing(channel, "each group has its first message in flight")

    def test_delayed_message_does_not_block_due_message_behind_it(self, harness: Harness) -> None:
        channel, delay = harness.channel(), harness.timing.delay
        harness.declare(ChannelOptions(channel, fifo_group_header="group"))
        available_at = harness.now() + delay
        harness.send(channel, WireMessage(b"held", {"group": "a"}), available_at=available_at)
        harness.send(channel, WireMessage(b"after held", {"group": "a"}))
        harness.send(channel, WireMessage(b"due", {"group": "b"}))

        due = harness.expect(channel, "the message of group b")
        assert due.message.body == b"due"
        harness.ack(due)
        harness.expect_nothing(channel, "group a is held until its first message is due")
        first = harness.expect(channel, "the held message", by=available_at)
        harness.ack(first)
        second = harness.expect(channel, "the message behind the held one")
        harness.ack(second)
        assert [first.message.body, second.message.body] == [b"held", b"after held"]


class TestSqsFifoConformance(_FifoGroups, TestSqsStandardConformance):
    """A FIFO queue: the whole channel is one group, so send order holds throughout."""


class TestAsyncSqsStandardConformance(AsyncTransportConformance):
    """The asyncio twin (the sync client on a thread pool), through the async runner."""

    many = 60
    fifo = False

    @pytest.fixture
    def harness(
        self, settings: ClientSettings, unique: Callable[[str], str]
    ) -> Iterator[AsyncTransportHarness]:
        clock = SystemClock()

        def open_transport() -> AsyncSqsTransport:
            return AsyncSqsTransport(SqsTransport(clock=clock, settings=settings, fifo=self.fifo))

        with AsyncTransportHarness(
            open_transport(), clock, make_channel=lambda: unique("cf"), reopen=open_transport
        ) as harness:
            yield harness

    def test_is_renewable(self, harness: AsyncTransportHarness) -> None:
        assert harness.renewable


class TestAsyncSqsFifoConformance(_FifoGroups, TestAsyncSqsStandardConformance):
    """A FIFO queue through the async runner."""
