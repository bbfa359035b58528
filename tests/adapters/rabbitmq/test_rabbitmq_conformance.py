"""RabbitMQTransport and AsyncRabbitMQTransport pass the shared conformance suite on a real broker.

Leases here are held by the consumer's connection, not timed (``capabilities.lease ==
"connection"``): the suite's lease checks take a second consumer from ``reopen``, let time pass
(time alone must not free its message), then close its connection, and the message must come
back. Time is the broker's real time, so the real-time runner polls to each deadline; the
asyncio twin (aio-pika) runs the same checks through the async runner.

Beyond the suite, a consumer whose TCP connection dies without an AMQP goodbye (a process
killed, a network cut: ``TcpProxy.cut``) loses nothing either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from rabbitmq_kit import TcpProxy

from conveyor.core.clock import SystemClock
from conveyor.transports.seam import WireMessage
from conveyor_rabbitmq.async_transport import AsyncRabbitMQTransport
from conveyor_rabbitmq.topology import QueueType
from conveyor_rabbitmq.transport import RabbitMQTransport
from pytest_conveyor.conformance import (
    AsyncTransportConformance,
    AsyncTransportHarness,
    Harness,
    TransportConformance,
    TransportHarness,
)


class _RabbitMQConfiguration:
    """Quorum queues (the default): the broker counts every redelivery; 1 MiB messages."""

    many = 100
    queue_type: QueueType = "quorum"
    max_priority: int | None = None
    max_size = 2 * 1024 * 1024  # over the suite's 1 MiB message, under a slow test

    def open_victim(self, harness: Harness, url: str) -> Harness:
        """A consumer connected through ``url`` (the proxy), sharing ``harness``'s clock."""
        raise NotImplementedError

    def test_consumer_whose_connection_dies_loses_nothing(
        self, harness: Harness, amqp_url: str
    ) -> None:
        proxy = TcpProxy(amqp_url)
        try:
            victim, channel = self.open_victim(harness, proxy.url), harness.channel()
            harness.send(channel, WireMessage(b"survivor"))
            victim.expect(channel, "the message just sent")
            proxy.cut()  # the connection dies under it, as when the process is killed

            second = harness.expect(
                channel,
                "the message its dead consumer held",
                by=harness.now() + 10 * harness.timing.lease,  # the broker notices, then requeues
            )
            harness.ack(second)
            assert second.message.body == b"survivor"
            harness.expect_nothing(channel, "its redelivery was acknowledged")
        finally:
            proxy.close()


class TestRabbitMQQuorumConformance(_RabbitMQConfiguration, TransportConformance):
    """Quorum queues, through py-amqp."""

    def open(self, url: str) -> RabbitMQTransport:
        return RabbitMQTransport(
            url,
            clock=SystemClock(),
            queue_type=self.queue_type,
            max_priority=self.max_priority,
            max_size=self.max_size,
        )

    @pytest.fixture
    def harness(self, amqp_url: str, queue_names: Callable[[], str]) -> Iterator[TransportHarness]:
        with TransportHarness(
            self.open(amqp_url),
            SystemClock(),
            make_channel=queue_names,
            reopen=lambda: self.open(amqp_url),
        ) as harness:
            yield harness

    def open_victim(self, harness: Harness, url: str) -> Harness:
        assert isinstance(harness, TransportHarness)
        victim = TransportHarness(self.open(url), harness.clock, timing=harness.timing)
        harness.adopt(victim)
        return victim


class TestRabbitMQClassicPriorityConformance(TestRabbitMQQuorumConformance):
    """Classic queues with x-max-priority, and a 64 KiB size limit.

    Classic queues only flag a redelivery, so each redelivery after a lost connection counts
    as the second delivery (releases are counted exactly: the adapter republishes them).
    """

    queue_type = "classic"
    max_priority = 9
    max_size = 64 * 1024
    counts_every_redelivery = False


class TestAsyncRabbitMQQuorumConformance(_RabbitMQConfiguration, AsyncTransportConformance):
    """Quorum queues, through aio-pika and the async runner."""

    def open(self, url: str) -> AsyncRabbitMQTransport:
        return AsyncRabbitMQTransport(
            url,
            clock=SystemClock(),
            queue_type=self.queue_type,
            max_priority=self.max_priority,
            max_size=self.max_size,
        )

    @pytest.fixture
    def harness(
        self, amqp_url: str, queue_names: Callable[[], str]
    ) -> Iterator[AsyncTransportHarness]:
        with AsyncTransportHarness(
            self.open(amqp_url),
            SystemClock(),
            make_channel=queue_names,
            reopen=lambda: self.open(amqp_url),
        ) as harness:
            yield harness

    def open_victim(self, harness: Harness, url: str) -> Harness:
        assert isinstance(harness, AsyncTransportHarness)
        victim = AsyncTransportHarness(
            self.open(url), harness.clock, timing=harness.timing, loop=harness.loop
        )
        harness.adopt(victim)
        return victim


class TestAsyncRabbitMQClassicPriorityConformance(TestAsyncRabbitMQQuorumConformance):
    """Classic priority queues, through aio-pika."""

    queue_type = "classic"
    max_priority = 9
    max_size = 64 * 1024
    counts_every_redelivery = False
