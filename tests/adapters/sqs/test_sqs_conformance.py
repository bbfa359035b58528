"""SqsTransport passes the shared transport conformance suite, against a real SQS server.

On a broker the clock is the real one: the real-time runner takes its durations from the
declared capabilities. SQS keeps visibility and delays in whole seconds (``delay_precision``
1 s) and moto checks them in 1 s steps, so leases and delays are 2 s, "not yet" is checked up
to a boundary less one second, and "there" polls until the boundary plus the precision and a
quarter; eventual visibility (declared) gives a message a few seconds more to show
(``../shared/reference/broker-adapters.md`` §4.3). The asyncio twin runs the same checks.

A standard queue declares delay (up to 15 minutes), a size limit, durability and no ordering;
a FIFO queue adds send order (within a group, here the whole channel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import ClassVar

import pytest

from conveyor.core.clock import SystemClock
from conveyor.transports.seam import ChannelOptions, Delivery, Transport, WireMessage
from conveyor_sqs import AsyncSqsTransport, ClientSettings, SqsTransport
from pytest_conveyor.conformance import (
    AsyncTransportConformance,
    AsyncTransportHarness,
    TransportConformance,
    TransportHarness,
    receive_one,
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


class TestAsyncSqsConformance(AsyncTransportConformance):
    """The asyncio twin (the sync client on a thread pool), through the async runner."""

    many = 60

    @pytest.fixture
    def harness(
        self, settings: ClientSettings, unique: Callable[[str], str]
    ) -> Iterator[AsyncTransportHarness]:
        clock = SystemClock()

        def open_transport() -> AsyncSqsTransport:
            return AsyncSqsTransport(SqsTransport(clock=clock, settings=settings))

        with AsyncTransportHarness(
            open_transport(), clock, make_channel=lambda: unique("cf"), reopen=open_transport
        ) as harness:
            yield harness


class TestSqsFifoConformance(TestSqsStandardConformance):
    """A FIFO queue: the whole channel is one group, so send order holds throughout.

    SQS FIFO promises more than send order: a group has at most one message in flight, and a
    delayed message (held by a visibility change, FIFO queues having no per-message delay)
    holds back the later messages of its group. Two tests of the suite assume the opposite
    (memory-queue ordering: later messages of the channel can be leased meanwhile); they are
    replaced here by what SQS FIFO promises instead, per group.
    """

    fifo = True
    replaced: ClassVar[dict[str, str]] = {
        "competing_receives_never_share_a_lease": "a group has one message in flight",
        "delayed_message_does_not_block_due_message_behind_it": "a held message holds its group",
    }

    def test_competing_receives_never_share_a_lease(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.channel()
        transport.declare(ChannelOptions(channel, fifo_group_header="group"))
        for n in range(10):
            for step in ("first", "second"):
                transport.send(channel, WireMessage(f"{n}-{step}".encode(), {"group": str(n)}))

        leased = [receive_one(transport, channel, lease=LEASE) for _ in range(10)]
        assert sorted(_body(d) for d in leased) == sorted(f"{n}-first".encode() for n in range(10))
        assert len({d.receipt for d in leased if d is not None}) == 10
        # Every group has a message in flight: its second waits for the first to be settled.
        assert receive_one(transport, channel, lease=LEASE) is None

    def test_delayed_message_does_not_block_due_message_behind_it(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.channel()
        transport.declare(ChannelOptions(channel, fifo_group_header="group"))
        now = harness.clock.now()
        transport.send(channel, WireMessage(b"held", {"group": "a"}), available_at=now + DELAY)
        transport.send(channel, WireMessage(b"after held", {"group": "a"}))
        transport.send(channel, WireMessage(b"due", {"group": "b"}))

        due = receive_one(transport, channel, lease=LEASE)
        assert _body(due) == b"due"
        transport.ack(due)  # type: ignore[arg-type]
        assert receive_one(transport, channel, lease=LEASE) is None  # group "a" is held
        harness.pass_time(DELAY + harness.timing.slack)
        assert _drain_bodies(transport, channel, LEASE) == [b"held", b"after held"]


def _body(delivery: Delivery | None) -> bytes:
    assert delivery is not None, "receive() returned nothing where a message was due"
    return delivery.message.body


def _drain_bodies(transport: Transport, channel: str, lease: timedelta) -> list[bytes]:
    bodies = []
    while (delivery := receive_one(transport, channel, lease=lease)) is not None:
        bodies.append(delivery.message.body)
        transport.ack(delivery)
    return bodies


LEASE = timedelta(seconds=2)
DELAY = timedelta(seconds=2)
