"""RabbitMQTransport passes the shared conformance suite against a real RabbitMQ.

Leases here are held by the consumer's connection, not timed: the suite's timed-lease tests are
replaced by the same promises for a connection lease (redelivery after the consumer's
connection closes, and not before). Time is the broker's real time: ``advance`` waits, adding a
settling margin under the declared delay precision for the hops of the delay ladder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from rabbitmq_kit import TcpProxy, poll_receive, real_wait

from conveyor.core.clock import SystemClock
from conveyor.transports.seam import WireMessage
from conveyor_rabbitmq.transport import RabbitMQTransport
from pytest_conveyor.legacy_conformance import (
    DelayTransportConformance,
    DurableTransportConformance,
    FifoTransportConformance,
    MaxSizeTransportConformance,
    PriorityTransportConformance,
    TransportHarness,
    receive_one,
)


class _RabbitMQConformance(
    MaxSizeTransportConformance,
    DurableTransportConformance,
    DelayTransportConformance,
    FifoTransportConformance,
):
    lease = timedelta(milliseconds=100)
    delay = timedelta(milliseconds=512)  # one hop of the ladder
    many = 100
    queue_type = "quorum"
    max_priority: int | None = None
    max_size = 2 * 1024 * 1024  # over the suite's 1 MiB message, under a slow test

    proxy: TcpProxy

    def open(self, url: str) -> RabbitMQTransport:
        return RabbitMQTransport(
            url,
            clock=SystemClock(),
            queue_type=self.queue_type,  # type: ignore[arg-type]
            max_priority=self.max_priority,
            max_size=self.max_size,
        )

    @pytest.fixture
    def harness(self, amqp_url: str, queue_names: Callable[[], str]) -> Iterator[TransportHarness]:
        transport = self.open(amqp_url)
        opened = [transport]
        self.proxy = TcpProxy(amqp_url)

        def reopen() -> RabbitMQTransport:
            opened.append(self.open(amqp_url))
            return opened[-1]

        yield TransportHarness(
            transport=transport,
            clock=SystemClock(),
            advance=real_wait,
            make_channel=queue_names,
            reopen=reopen,
        )
        for each in opened:
            each.close()
        self.proxy.close()

    # Connection leases: the suite's timed-lease tests, for a lease held by a connection ----

    def test_unacked_message_is_redelivered_after_lease_and_not_before(
        self, harness: TransportHarness
    ) -> None:
        assert harness.transport.capabilities.lease == "connection"
        assert harness.reopen is not None
        consumer, channel = harness.reopen(), harness.make_channel()
        harness.transport.send(channel, WireMessage(b"slow"))
        assert receive_one(consumer, channel, lease=self.lease) is not None

        harness.advance(self.lease * 3)  # time alone never ends a connection lease
        assert receive_one(harness.transport, channel, lease=self.lease) is None
        consumer.close()
        again = receive_one(harness.transport, channel, lease=self.lease)
        assert again is not None
        assert (again.message.body, again.delivery_count) == (b"slow", 2)

    def test_delivery_count_grows_with_each_redelivery(self, harness: TransportHarness) -> None:
        assert harness.reopen is not None
        channel = harness.make_channel()
        harness.transport.send(channel, WireMessage(b"flaky"))

        counts = []
        for _ in range(3):
            consumer = harness.reopen()
            delivery = receive_one(consumer, channel, lease=self.lease)
            assert delivery is not None
            counts.append(delivery.delivery_count)
            consumer.close()
        assert tuple(counts) == self.expected_counts

    expected_counts: tuple[int, ...] = (1, 2, 3)

    def test_consumer_killed_mid_message_loses_nothing(self, harness: TransportHarness) -> None:
        victim, channel = self.open(self.proxy.url), harness.make_channel()
        harness.transport.send(channel, WireMessage(b"survivor"))
        assert receive_one(victim, channel, lease=self.lease) is not None
        self.proxy.cut()  # the connection dies under it, as when the process is killed

        second = poll_receive(harness.transport, channel, self.lease)
        harness.transport.ack(second)
        assert second.message.body == b"survivor"
        assert receive_one(harness.transport, channel, lease=self.lease) is None
        victim.close()


class TestRabbitMQQuorumConformance(_RabbitMQConformance):
    """Quorum queues (the default): the broker counts every redelivery; 1 MiB messages."""


class TestRabbitMQClassicPriorityConformance(PriorityTransportConformance, _RabbitMQConformance):
    """Classic queues with x-max-priority, and a 64 KiB size limit.

    Classic queues only flag a redelivery, so each redelivery after a lost connection counts
    as the second delivery (releases are counted exactly: the adapter republishes them).
    """

    queue_type = "classic"
    max_priority = 9
    max_size = 64 * 1024
    expected_counts = (1, 2, 2)
