"""A waiting consumer holds no more than the batch it asked for (prefetch follows the consumer).

A long poll starts a push consumer whose ``basic.qos`` prefetch is ``max_messages``; a
``Messaging`` worker asks for one message at a time, so it holds one. Without that limit
RabbitMQ would push every ready message to the first subscriber, and a second worker on the
same queue would sit idle while the first holds them all, unacknowledged, in its buffer.
A worker with several threads gets a consumer per waiting thread, so it holds one message per
thread: its prefetch follows its concurrency.
"""

from __future__ import annotations

import asyncio
import threading
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


def test_a_worker_holds_one_message_per_waiting_thread(
    amqp_url: str, queue_names: Callable[[], str]
) -> None:
    channel = queue_names()
    worker = RabbitMQTransport(amqp_url, clock=SystemClock())
    sender = RabbitMQTransport(amqp_url, clock=SystemClock())
    worker.declare(ChannelOptions(channel))
    subscribed, sent = threading.Barrier(3), threading.Event()
    taken: list[int] = []

    def worker_thread() -> None:
        worker.receive(channel, lease=LEASE, wait=timedelta(milliseconds=1))  # subscribes
        subscribed.wait()
        sent.wait()
        taken.append(len(worker.receive(channel, lease=LEASE, wait=WAIT)))

    threads = [threading.Thread(target=worker_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    subscribed.wait()  # two threads wait on the channel: two consumers, prefetch 1 each
    for n in range(6):
        sender.send(channel, WireMessage(b"%d" % n))
    rest = sender.receive(channel, lease=LEASE, max_messages=10)
    sent.set()
    for thread in threads:
        thread.join()

    assert len(rest) == 4  # the worker holds the two its threads work on, no more
    assert taken == [1, 1]  # and each thread has its own
    worker.close()
    sender.close()


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
