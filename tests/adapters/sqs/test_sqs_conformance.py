"""SqsTransport passes the shared transport conformance suite, against a real SQS server.

On a broker the clock is the real one: the harness's ``advance`` waits (polling its own
deadline) for the duration plus a quarter second, and the suite's lease and delay are 2 s.
SQS keeps visibility and delays in whole seconds and moto checks them in 1 s steps, so a
check "not yet at lease minus one second" and "there at lease plus a quarter" is as tight as
the server allows, in both directions (``../shared/reference/broker-adapters.md`` §4.3).

A standard queue declares delay (up to 15 minutes), a size limit, durability and no ordering;
a FIFO queue adds send order (within a group, here the whole channel).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from conveyor.core.clock import SystemClock
from conveyor.transports.seam import ChannelOptions, Delivery, Transport, WireMessage
from conveyor_sqs import ClientSettings, SqsTransport
from pytest_conveyor.legacy_conformance import (
    DelayTransportConformance,
    DurableTransportConformance,
    FifoTransportConformance,
    MaxSizeTransportConformance,
    TransportHarness,
    receive_one,
)

SLACK = 0.25  # seconds past each advance, less than the 1 s steps SQS counts in


def wait(duration: timedelta) -> None:
    """The harness's clock: a real wait, polled against its own deadline."""
    deadline = time.monotonic() + duration.total_seconds() + SLACK
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


class _SqsConformance(
    DurableTransportConformance, DelayTransportConformance, MaxSizeTransportConformance
):
    lease = timedelta(seconds=2)
    delay = timedelta(seconds=2)
    many = 60
    fifo = False

    @pytest.fixture
    def harness(
        self, settings: ClientSettings, unique: Callable[[str], str]
    ) -> Iterator[TransportHarness]:
        clock = SystemClock()

        def open_transport() -> SqsTransport:
            return SqsTransport(clock=clock, settings=settings, fifo=self.fifo)

        transport = open_transport()
        yield TransportHarness(
            transport=transport,
            clock=clock,
            advance=wait,
            make_channel=lambda: unique("cf"),
            reopen=open_transport,  # a new client on the same queues: a restarted process
        )
        transport.close()


class TestSqsStandardConformance(_SqsConformance):
    """A standard queue: at-least-once, unordered, delays up to 15 minutes."""


class TestSqsFifoConformance(FifoTransportConformance, _SqsConformance):
    """A FIFO queue: the whole channel is one group, so send order holds throughout.

    SQS FIFO promises more than send order: a group has at most one message in flight, and a
    delayed message (held by a visibility change, FIFO queues having no per-message delay)
    holds back the later messages of its group. Two tests of the suite assume the opposite
    (memory-queue ordering: later messages of the channel can be leased meanwhile); they are
    replaced here by what SQS FIFO promises instead, per group.
    """

    fifo = True

    def test_competing_receives_never_share_a_lease(self, harness: TransportHarness) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.declare(ChannelOptions(channel, fifo_group_header="group"))
        for n in range(10):
            for step in ("first", "second"):
                transport.send(channel, WireMessage(f"{n}-{step}".encode(), {"group": str(n)}))

        leased = [receive_one(transport, channel, lease=self.lease) for _ in range(10)]
        assert sorted(_body(d) for d in leased) == sorted(f"{n}-first".encode() for n in range(10))
        assert len({d.receipt for d in leased if d is not None}) == 10
        # Every group has a message in flight: its second waits for the first to be settled.
        assert receive_one(transport, channel, lease=self.lease) is None

    def test_delayed_message_does_not_block_due_message_behind_it(
        self, harness: TransportHarness
    ) -> None:
        transport, channel = harness.transport, harness.make_channel()
        transport.declare(ChannelOptions(channel, fifo_group_header="group"))
        now = harness.clock.now()
        transport.send(channel, WireMessage(b"held", {"group": "a"}), available_at=now + self.delay)
        transport.send(channel, WireMessage(b"after held", {"group": "a"}))
        transport.send(channel, WireMessage(b"due", {"group": "b"}))

        due = receive_one(transport, channel, lease=self.lease)
        assert _body(due) == b"due"
        transport.ack(due)  # type: ignore[arg-type]
        assert receive_one(transport, channel, lease=self.lease) is None  # group "a" is held
        harness.advance(self.delay)
        assert _drain_bodies(transport, channel, self.lease) == [b"held", b"after held"]


def _body(delivery: Delivery | None) -> bytes:
    assert delivery is not None, "receive() returned nothing where a message was due"
    return delivery.message.body


def _drain_bodies(transport: Transport, channel: str, lease: timedelta) -> list[bytes]:
    bodies = []
    while (delivery := receive_one(transport, channel, lease=lease)) is not None:
        bodies.append(delivery.message.body)
        transport.ack(delivery)
    return bodies
