"""AsyncRedisTransport: the asyncio twin keeps the sync transport's semantics.

The conformance package has no asyncio runner yet, so these tests drive the async transport
with ``asyncio.run`` through the same promises: round trip, ack, lease and redelivery, release,
delay, priority, renewal, the long poll and close. Time is a ``VirtualClock`` except for the
long poll, which waits on the server in real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from conveyor import SystemClock, VirtualClock
from conveyor.core.errors import StaleReceipt, TransportClosed
from conveyor.transports.seam import (
    AsyncInspectableTransport,
    AsyncRenewableTransport,
    AsyncTransport,
    ChannelOptions,
    WireMessage,
)
from conveyor_redis import AsyncRedisTransport, RedisChannel

LEASE = timedelta(seconds=30)

Scenario = Callable[[AsyncRedisTransport, VirtualClock], Awaitable[None]]


@dataclass(frozen=True)
class Ship:
    order_id: str


@dataclass(frozen=True)
class Bill:
    order_id: str


def run(redis_url: str, prefix: str, scenario: Scenario, clock: VirtualClock | None = None) -> None:
    async def main() -> None:
        transport = AsyncRedisTransport(redis_url, clock=clock or VirtualClock(), prefix=prefix)
        try:
            await scenario(transport, transport._clock)  # type: ignore[arg-type]
        finally:
            await transport.close()

    asyncio.run(main())


def test_the_channel_opens_the_async_twin(redis_url: str) -> None:
    opened = RedisChannel("orders", url=redis_url).open_async(VirtualClock())

    assert isinstance(opened, AsyncTransport)
    assert isinstance(opened, AsyncInspectableTransport)
    assert isinstance(opened, AsyncRenewableTransport)
    asyncio.run(opened.close())


def test_round_trip_keeps_body_and_unicode_headers(redis_url: str, prefix: str) -> None:
    headers = {"x-greeting": "grüß dich ✓ 日本語", "cv-id": "m-1", "x-empty": ""}

    async def scenario(transport: AsyncRedisTransport, clock: VirtualClock) -> None:
        await transport.declare(ChannelOptions("orders"))
        await transport.send("orders", WireMessage(bytes(range(256)), headers))
        [delivery] = await transport.receive("orders", lease=LEASE)
        assert delivery.message.body == bytes(range(256))
        assert dict(delivery.message.headers) == headers
        assert delivery.delivery_count == 1
        await transport.ack(delivery)
        assert await transport.pending("orders") == 0

    run(redis_url, prefix, scenario)


def test_an_unacked_message_comes_back_after_its_lease_and_a_late_ack_is_stale(
    redis_url: str, prefix: str
) -> None:
    async def scenario(transport: AsyncRedisTransport, clock: VirtualClock) -> None:
        await transport.send("orders", WireMessage(b"slow"))
        [first] = await transport.receive("orders", lease=LEASE)
        clock.advance(LEASE - timedelta(milliseconds=1))
        assert await transport.receive("orders", lease=LEASE) == []
        clock.advance(timedelta(milliseconds=1))
        [again] = await transport.receive("orders", lease=LEASE)
        assert again.delivery_count == 2
        with pytest.raises(StaleReceipt):
            await transport.ack(first)
        await transport.ack(again)

    run(redis_url, prefix, scenario)


def test_release_delay_priority_and_renewal(redis_url: str, prefix: str) -> None:
    async def scenario(transport: AsyncRedisTransport, clock: VirtualClock) -> None:
        await transport.send("orders", WireMessage(b"low"))
        await transport.send("orders", WireMessage(b"high"), priority=5)
        await transport.send(
            "orders", WireMessage(b"later"), available_at=clock.now() + timedelta(seconds=5)
        )
        [high] = await transport.receive("orders", lease=LEASE)
        assert high.message.body == b"high"
        await transport.release(high, available_at=clock.now() + timedelta(seconds=10))
        [low] = await transport.receive("orders", lease=LEASE)
        assert low.message.body == b"low"
        assert await transport.next_due("orders") == clock.now() + timedelta(seconds=5)
        clock.advance(timedelta(seconds=5))
        [later] = await transport.receive("orders", lease=LEASE)
        assert later.message.body == b"later"
        clock.advance(timedelta(seconds=20))
        await transport.renew(low, lease=LEASE)  # held 20 s of a 30 s lease: renewed
        clock.advance(timedelta(seconds=20))
        found = await transport.receive("orders", lease=LEASE, max_messages=5)
        # the released one (due since 10 s, priority 5) first; then the one not renewed
        assert [(d.message.body, d.delivery_count) for d in found] == [
            (b"high", 2),
            (b"later", 2),
        ]
        for delivery in (low, *found):
            await transport.ack(delivery)
        assert await transport.pending("orders") == 0

    run(redis_url, prefix, scenario)


def test_the_long_poll_wakes_on_a_send_from_another_task(redis_url: str, prefix: str) -> None:
    async def scenario(transport: AsyncRedisTransport, clock: VirtualClock) -> None:
        async def send_soon() -> None:
            await asyncio.sleep(0.15)
            await transport.send("orders", WireMessage(b"wake up"))

        started = time.monotonic()
        sender = asyncio.create_task(send_soon())
        found = await transport.receive("orders", lease=LEASE, wait=timedelta(seconds=5))
        await sender
        assert [d.message.body for d in found] == [b"wake up"]
        assert 0.1 < time.monotonic() - started < 2.0

    run(redis_url, prefix, scenario, clock=SystemClock())  # type: ignore[arg-type]


@pytest.mark.parametrize("operation", ["declare", "send", "receive", "ack", "release"])
def test_every_operation_after_close_raises_transport_closed(
    redis_url: str, prefix: str, operation: str
) -> None:
    async def main() -> None:
        transport = AsyncRedisTransport(redis_url, clock=VirtualClock(), prefix=prefix)
        await transport.send("orders", WireMessage(b"x"))
        [delivery] = await transport.receive("orders", lease=LEASE)
        await transport.close()
        calls = {
            "declare": lambda: transport.declare(ChannelOptions("orders")),
            "send": lambda: transport.send("orders", WireMessage(b"y")),
            "receive": lambda: transport.receive("orders", lease=LEASE),
            "ack": lambda: transport.ack(delivery),
            "release": lambda: transport.release(delivery),
        }
        with pytest.raises(TransportClosed):
            await calls[operation]()
        await transport.close()  # closing twice is a no-op

    asyncio.run(main())


def test_the_asyncio_driver_runs_a_flow_on_redis_channels(redis_url: str, prefix: str) -> None:
    """``AsyncMessaging`` on Redis channels: an async handler that fails once is retried after
    its delay, another always fails and is dead-lettered in Redis; virtual time, exact."""
    from conveyor import AsyncMessaging, RetryPolicy, asynchronous, command_handler
    from conveyor_redis import RedisDeadLetterStore

    shipped: list[str] = []
    failures = [TimeoutError("carrier timed out")]

    @asynchronous("shipping")
    @command_handler
    async def ship(command: Ship) -> None:
        if failures:
            raise failures.pop()
        shipped.append(command.order_id)

    @asynchronous("billing")
    @command_handler
    async def bill(command: Bill) -> None:
        raise ConnectionError("billing is down")

    retry = RetryPolicy(delays=[timedelta(seconds=30)], attempts=2)

    async def main() -> tuple[int, list[str]]:
        letters = RedisDeadLetterStore(redis_url, prefix=prefix)
        async with AsyncMessaging(
            handlers=[ship, bill],
            channels=[
                RedisChannel("shipping", url=redis_url, prefix=prefix, retry=retry),
                RedisChannel("billing", url=redis_url, prefix=prefix, retry=retry),
            ],
            dead_letters=letters,
            clock=VirtualClock(),
        ) as messaging:
            await messaging.send(Ship("o-1"))
            await messaging.send(Bill("o-1"))
            await messaging.run_until_idle(advance_time=True)
            return letters.count(), [letter.channel for letter in letters.list()]

    count, channels = asyncio.run(main())
    assert shipped == ["o-1"]
    assert (count, channels) == (1, ["billing"])
