"""AsyncSqsTransport: the asyncio twin keeps the sync transport's semantics, on its own threads.

Round trip, ack, release with a delay, renewal, the long poll woken by a send from another
task, long polls that run side by side without holding up the event loop, and close.
Real time against the real server, each wait bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from conveyor import SystemClock
from conveyor.core.errors import TransportClosed
from conveyor.transports.seam import (
    AsyncRenewableTransport,
    AsyncTransport,
    ChannelOptions,
    WireMessage,
)
from conveyor_sqs import AsyncSqsTransport, ClientSettings, SqsChannel, SqsTransport

LEASE = timedelta(seconds=2)

Scenario = Callable[[AsyncSqsTransport, str], Awaitable[None]]


@dataclass(frozen=True)
class Ship:
    order_id: str


def run(settings: ClientSettings, channel: str, scenario: Scenario) -> None:
    async def main() -> None:
        transport = AsyncSqsTransport(SqsTransport(clock=SystemClock(), settings=settings))
        try:
            await transport.declare(ChannelOptions(channel))
            await scenario(transport, channel)
        finally:
            await transport.close()

    asyncio.run(main())


def test_the_channel_opens_the_async_twin(sqs_endpoint: str) -> None:
    opened = SqsChannel("orders", endpoint_url=sqs_endpoint).open_async(SystemClock())

    assert isinstance(opened, AsyncTransport)
    assert isinstance(opened, AsyncRenewableTransport)
    assert opened.capabilities.visibility == "eventual"
    asyncio.run(opened.close())


def test_round_trip_ack_release_and_renew(
    settings: ClientSettings, unique: Callable[[str], str]
) -> None:
    headers = {"x-greeting": "grüß dich ✓ 日本語", "cv-id": "m-1"}

    async def scenario(transport: AsyncSqsTransport, channel: str) -> None:
        await transport.send(channel, WireMessage(bytes(range(256)), headers))
        [first] = await transport.receive(channel, lease=LEASE, wait=timedelta(seconds=5))
        assert (first.message.body, dict(first.message.headers)) == (bytes(range(256)), headers)
        await transport.release(first, available_at=SystemClock().now() + timedelta(seconds=1))
        assert await transport.receive(channel, lease=LEASE) == []
        [second] = await transport.receive(channel, lease=LEASE, wait=timedelta(seconds=5))
        assert second.delivery_count == 2
        await transport.renew(second, lease=timedelta(seconds=10))
        await transport.ack(second)
        assert await transport.receive(channel, lease=LEASE, wait=timedelta(seconds=1)) == []

    run(settings, unique("async"), scenario)


def test_long_polls_run_side_by_side_and_wake_on_a_send_from_another_task(
    settings: ClientSettings, unique: Callable[[str], str]
) -> None:
    async def scenario(transport: AsyncSqsTransport, channel: str) -> None:
        other = unique("async-other")
        await transport.declare(ChannelOptions(other))

        async def send_soon() -> None:
            await asyncio.sleep(0.5)  # the producer's own pace, not a wait for work
            await transport.send(channel, WireMessage(b"wake up"))

        started = time.monotonic()
        found, idle, _ = await asyncio.gather(
            transport.receive(channel, lease=LEASE, wait=timedelta(seconds=10)),
            transport.receive(other, lease=LEASE, wait=timedelta(seconds=2)),
            send_soon(),
        )
        elapsed = time.monotonic() - started
        assert [d.message.body for d in found] == [b"wake up"]
        assert idle == []
        # Both polls were in flight at once: the whole took the longer one, not the sum.
        assert elapsed < 6.0
        await transport.ack(found[0])

    run(settings, unique("async-poll"), scenario)


def test_every_verb_after_close_raises_transport_closed(
    settings: ClientSettings, unique: Callable[[str], str]
) -> None:
    async def main() -> None:
        transport = AsyncSqsTransport(SqsTransport(clock=SystemClock(), settings=settings))
        await transport.close()
        await transport.close()  # closing again is allowed
        with pytest.raises(TransportClosed):
            await transport.send(unique("closed"), WireMessage(b"x"))
        with pytest.raises(TransportClosed):
            await transport.receive(unique("closed"), lease=LEASE)

    asyncio.run(main())


def test_threads_must_be_positive(settings: ClientSettings) -> None:
    with pytest.raises(ValueError, match="threads=0"):
        AsyncSqsTransport(SqsTransport(clock=SystemClock(), settings=settings), threads=0)


def test_the_asyncio_driver_runs_a_flow_on_sqs_queues(
    sqs_endpoint: str, unique: Callable[[str], str], tmp_path: Any
) -> None:
    """``AsyncMessaging`` on an SQS channel: an async handler's message goes through the queue
    and is handled once; a failing one ends in the SQLite dead-letter store."""
    from conveyor import AsyncMessaging, asynchronous, command_handler
    from conveyor_sqlite import SqliteDeadLetterStore

    shipped: list[str] = []

    @asynchronous("shipping")
    @command_handler
    async def ship(command: Ship) -> None:
        if command.order_id == "broken":
            raise ValueError("no such address")
        shipped.append(command.order_id)

    prefix = unique("aflow") + "-"
    letters = SqliteDeadLetterStore(tmp_path / "letters.db")

    async def main() -> None:
        channel = SqsChannel(
            "shipping", endpoint_url=sqs_endpoint, queue_prefix=prefix, lease=LEASE
        )
        async with AsyncMessaging(
            handlers=[ship], channels=[channel], dead_letters=letters, clock=SystemClock()
        ) as messaging:
            await messaging.send(Ship("o-1"))
            await messaging.send(Ship("broken"))
            deadline = time.monotonic() + 20
            while (not shipped or letters.count() == 0) and time.monotonic() < deadline:
                await messaging.run("shipping", limit=1, time_limit=timedelta(seconds=1))

    asyncio.run(main())
    assert shipped == ["o-1"]
    assert [letter.exception_message for letter in letters.list()] == ["no such address"]
