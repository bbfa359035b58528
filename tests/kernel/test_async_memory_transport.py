"""AsyncMemoryTransport: the asyncio twin of MemoryTransport, waiting without blocking the loop.

The conformance suite's async runner checks its semantics against the sync transport's; these
tests cover what only the twin has: a long poll that suspends a task (woken by a send, a release,
a due time, or close) while other tasks run, and wake-ups across event loops in other threads.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

from conveyor import QueueChannel, SystemClock, VirtualClock
from conveyor.core.errors import TransportClosed
from conveyor.transports.async_memory import AsyncMemoryTransport
from conveyor.transports.seam import (
    AsyncInspectableTransport,
    AsyncRenewableTransport,
    ChannelOptions,
    WireMessage,
)

LEASE = timedelta(seconds=30)
LONG = timedelta(seconds=30)
"""A wait no test reaches: each ends by a wake-up, so a missed one fails by timeout, not by luck."""


def test_is_an_inspectable_and_renewable_async_transport() -> None:
    transport = AsyncMemoryTransport(VirtualClock())

    assert isinstance(transport, AsyncInspectableTransport)
    assert isinstance(transport, AsyncRenewableTransport)


def test_queue_channel_opens_it_for_asyncio() -> None:
    assert isinstance(QueueChannel("orders").open_async(VirtualClock()), AsyncMemoryTransport)


def test_waiting_receive_is_woken_by_a_send_from_another_task() -> None:
    async def scenario() -> bytes:
        transport = AsyncMemoryTransport(SystemClock())
        waiting = asyncio.create_task(transport.receive("jobs", lease=LEASE, wait=LONG))
        await asyncio.sleep(0)  # the receive is parked now; the loop is free
        await transport.send("jobs", WireMessage(b"wake up"))
        async with asyncio.timeout(5):
            found = await waiting
        await transport.close()
        return found[0].message.body

    assert asyncio.run(scenario()) == b"wake up"


def test_waiting_receive_is_woken_by_a_release() -> None:
    async def scenario() -> int:
        transport = AsyncMemoryTransport(SystemClock())
        await transport.send("jobs", WireMessage(b"again"))
        (first,) = await transport.receive("jobs", lease=LEASE)
        waiting = asyncio.create_task(transport.receive("jobs", lease=LEASE, wait=LONG))
        await asyncio.sleep(0)
        await transport.release(first)
        async with asyncio.timeout(5):
            (again,) = await waiting
        await transport.close()
        return again.delivery_count

    assert asyncio.run(scenario()) == 2


def test_waiting_receive_wakes_when_a_delayed_message_falls_due() -> None:
    async def scenario() -> bytes:
        clock = SystemClock()
        transport = AsyncMemoryTransport(clock)
        await transport.send(
            "jobs", WireMessage(b"later"), available_at=clock.now() + timedelta(milliseconds=50)
        )
        async with asyncio.timeout(5):
            found = await transport.receive("jobs", lease=LEASE, wait=LONG)
        await transport.close()
        return found[0].message.body

    assert asyncio.run(scenario()) == b"later"


def test_waiting_receive_returns_empty_when_the_wait_ends() -> None:
    async def scenario() -> list[object]:
        transport = AsyncMemoryTransport(SystemClock())
        await transport.declare(ChannelOptions("jobs"))
        found = await transport.receive("jobs", lease=LEASE, wait=timedelta(milliseconds=20))
        await transport.close()
        return list(found)

    assert asyncio.run(scenario()) == []


def test_a_send_on_another_channel_does_not_end_the_wait() -> None:
    async def scenario() -> tuple[bool, bytes]:
        transport = AsyncMemoryTransport(SystemClock())
        waiting = asyncio.create_task(transport.receive("jobs", lease=LEASE, wait=LONG))
        await asyncio.sleep(0)
        await transport.send("other", WireMessage(b"not yours"))
        await asyncio.sleep(0.01)
        still_waiting = not waiting.done()
        await transport.send("jobs", WireMessage(b"yours"))
        async with asyncio.timeout(5):
            found = await waiting
        await transport.close()
        return still_waiting, found[0].message.body

    assert asyncio.run(scenario()) == (True, b"yours")


def test_close_wakes_a_waiting_receive_with_transport_closed() -> None:
    async def scenario() -> None:
        transport = AsyncMemoryTransport(SystemClock())
        waiting = asyncio.create_task(transport.receive("jobs", lease=LEASE, wait=LONG))
        await asyncio.sleep(0)
        await transport.close()
        async with asyncio.timeout(5):
            await waiting

    with pytest.raises(TransportClosed):
        asyncio.run(scenario())


def test_a_send_from_another_thread_wakes_a_receive_on_its_own_loop() -> None:
    transport = AsyncMemoryTransport(SystemClock())
    parked = threading.Event()

    async def consume() -> bytes:
        waiting = asyncio.create_task(transport.receive("jobs", lease=LEASE, wait=LONG))
        await asyncio.sleep(0)
        parked.set()
        async with asyncio.timeout(5):
            found = await waiting
        return found[0].message.body

    result: list[bytes] = []
    consumer = threading.Thread(target=lambda: result.append(asyncio.run(consume())))
    consumer.start()
    assert parked.wait(5)
    asyncio.run(transport.send("jobs", WireMessage(b"across threads")))
    consumer.join(5)

    assert result == [b"across threads"]
    asyncio.run(transport.close())
