"""RabbitMQ restarted in the middle of a flow: nothing confirmed is lost (sync and asyncio).

The broker is this module's own (``rabbitmq_private_broker``), restarted by ``.ci/brokers.sh``'s
``restart_rabbitmq`` while a producer keeps sending and a consumer holds unacknowledged
messages. Durable quorum queues, persistent messages and publisher confirms promise that every
``send`` that returned survives; the consumer's leases die with its connection, so what it held
comes back; a delayed message waiting in the delay ladder arrives after the restart. The
transports reconnect with backoff and declare again on their own; sends that were in flight
are sent again (at least once), so duplicates are allowed and losses are not.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from rabbitmq_private_broker import PrivateBroker, private_broker_or_skip

from conveyor.core.clock import SystemClock
from conveyor.core.errors import StaleReceipt
from conveyor.transports.seam import WireMessage
from conveyor_rabbitmq import AsyncRabbitMQTransport, RabbitMQTransport

LEASE = timedelta(seconds=30)
RECONNECT = timedelta(seconds=240)  # a loaded 2-core machine restarts RabbitMQ in 5 to 60 s
BEFORE, DURING = 30, 40


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateBroker]:
    broker = private_broker_or_skip()
    yield broker
    broker.remove()


def expected_after(acked: set[bytes], confirmed: list[bytes]) -> set[bytes]:
    return {f"before-{i}".encode() for i in range(BEFORE)} - acked | {b"delayed", *confirmed}


def test_a_restart_mid_flow_loses_nothing_confirmed(broker: PrivateBroker) -> None:
    clock = SystemClock()
    consumer = RabbitMQTransport(broker.url, clock=clock, reconnect_timeout=RECONNECT)
    producer = RabbitMQTransport(broker.url, clock=clock, reconnect_timeout=RECONNECT)
    channel = "restart-sync"
    for i in range(BEFORE):
        producer.send(channel, WireMessage(f"before-{i}".encode()))
    producer.send(channel, WireMessage(b"delayed"), available_at=clock.now() + timedelta(seconds=1))
    received = consumer.receive(channel, lease=LEASE, max_messages=5)
    assert len(received) == 5
    for delivery in received[:2]:
        consumer.ack(delivery)
    acked = {delivery.message.body for delivery in received[:2]}
    held = received[2:]

    confirmed: list[bytes] = []
    started = threading.Event()
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(DURING):
                producer.send(channel, WireMessage(f"during-{i}".encode()))
                confirmed.append(f"during-{i}".encode())  # send returned: the broker has it
                if i == 9:
                    started.set()
        except BaseException as error:  # reported by the test below
            failures.append(error)
            started.set()

    thread = threading.Thread(target=produce)
    thread.start()
    assert started.wait(timeout=60)
    broker.restart()
    thread.join(timeout=RECONNECT.total_seconds())
    assert not thread.is_alive()
    assert not failures, failures
    assert len(confirmed) == DURING

    for delivery in held:  # their connection died in the restart: the broker put them back
        with pytest.raises(StaleReceipt):
            consumer.ack(delivery)
    expected = expected_after(acked, confirmed)
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    while not expected <= set(got) and time.monotonic() < deadline:
        for delivery in consumer.receive(
            channel, lease=LEASE, max_messages=20, wait=timedelta(seconds=1)
        ):
            got.append(delivery.message.body)
            consumer.ack(delivery)
    assert expected - set(got) == set()  # nothing confirmed lost
    assert acked.isdisjoint(got)  # what was acknowledged before the restart stays gone
    consumer.close()
    producer.close()


def test_the_async_transport_survives_a_restart_mid_flow(broker: PrivateBroker) -> None:
    clock = SystemClock()
    channel = "restart-async"

    async def scenario() -> tuple[set[bytes], set[bytes], list[bytes]]:
        consumer = AsyncRabbitMQTransport(broker.url, clock=clock, reconnect_timeout=RECONNECT)
        producer = AsyncRabbitMQTransport(broker.url, clock=clock, reconnect_timeout=RECONNECT)
        for i in range(BEFORE):
            await producer.send(channel, WireMessage(f"before-{i}".encode()))
        await producer.send(
            channel, WireMessage(b"delayed"), available_at=clock.now() + timedelta(seconds=1)
        )
        received = await consumer.receive(channel, lease=LEASE, max_messages=5)
        assert len(received) == 5
        for delivery in received[:2]:
            await consumer.ack(delivery)
        acked = {delivery.message.body for delivery in received[:2]}

        confirmed: list[bytes] = []
        tenth = asyncio.Event()

        async def produce() -> None:
            for i in range(DURING):
                await producer.send(channel, WireMessage(f"during-{i}".encode()))
                confirmed.append(f"during-{i}".encode())
                if i == 9:
                    tenth.set()

        sending = asyncio.create_task(produce())
        await asyncio.wait_for(tenth.wait(), timeout=60)
        await asyncio.to_thread(broker.restart)
        await asyncio.wait_for(sending, timeout=RECONNECT.total_seconds())

        for delivery in received[2:]:
            with pytest.raises(StaleReceipt):
                await consumer.ack(delivery)
        expected = expected_after(acked, confirmed)
        got: set[bytes] = set()
        deadline = time.monotonic() + 60
        while not expected <= got and time.monotonic() < deadline:
            for delivery in await consumer.receive(
                channel, lease=LEASE, max_messages=20, wait=timedelta(seconds=1)
            ):
                got.add(delivery.message.body)
                await consumer.ack(delivery)
        await consumer.close()
        await producer.close()
        return expected, got, list(acked)

    expected, got, acked = asyncio.run(scenario())
    assert expected - got == set()
    assert got.isdisjoint(acked)
