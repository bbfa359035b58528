"""A waiting consumer holds no more than the batch it asked for (prefetch follows the consumer).

A long poll starts a push consumer whose ``basic.qos`` prefetch is ``max_messages``; a
``Messaging`` worker asks for one message at a time, so it holds one. Without that limit
RabbitMQ would push every ready message to the first subscriber, and a second worker on the
same queue would sit idle while the first holds them all, unacknowledged, in its buffer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from conveyor.core.clock import SystemClock
from conveyor.transports.seam import ChannelOptions, WireMessage
from conveyor_rabbitmq import AsyncRabbitMQTransport, RabbitMQTransport

LEASE = timedelta(seconds=30)
WAIT = timedelta(seconds=5)


def test_a_waiting_consumer_holds_only_its_batch(
    amqp_url: str, queue_names: Callable[[], str]
) -> None:
    channel = queue_names()
    first = RabbitMQTransport(amqp_url, clock=SystemClock())
    second = RabbitMQTransport(amqp_url, clock=SystemClock())
    first.declare(ChannelOptions(channel))
    assert first.receive(channel, lease=LEASE, max_messages=2, wait=timedelta(milliseconds=1)) == []
    for n in range(6):  # the first's push consumer is subscribed, with prefetch 2
        second.send(channel, WireMessage(b"%d" % n))

    assert len(first.receive(channel, lease=LEASE, max_messages=2, wait=WAIT)) == 2
    assert len(second.receive(channel, lease=LEASE, max_messages=10)) == 4  # none held back
    first.close()
    second.close()


def test_the_async_transport_holds_only_its_batch(
    amqp_url: str, queue_names: Callable[[], str]
) -> None:
    channel = queue_names()

    async def scenario() -> tuple[int, int]:
        first = AsyncRabbitMQTransport(amqp_url, clock=SystemClock())
        second = AsyncRabbitMQTransport(amqp_url, clock=SystemClock())
        await first.declare(ChannelOptions(channel))
        idle = await first.receive(
            channel, lease=LEASE, max_messages=2, wait=timedelta(milliseconds=1)
        )
        assert idle == []
        for n in range(6):
            await second.send(channel, WireMessage(b"%d" % n))
        taken = await first.receive(channel, lease=LEASE, max_messages=2, wait=WAIT)
        rest = await second.receive(channel, lease=LEASE, max_messages=10)
        await first.close()
        await second.close()
        return len(taken), len(rest)

    assert asyncio.run(scenario()) == (2, 4)
