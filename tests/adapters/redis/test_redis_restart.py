"""Redis restarts in the middle of a flow, and connections drop: nothing is lost.

Each test runs its own redis-server with ``appendonly yes`` and ``appendfsync always`` (every
write on disk before Redis answers), so a SIGKILL of the server loses nothing that was
acknowledged to a sender. A consumer that loses the server retries with a growing pause,
logging each attempt, and goes on when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from datetime import timedelta

import pytest
from private_server import PrivateRedis

from conveyor import SystemClock
from conveyor.core.errors import ConnectionFailed
from conveyor.transports.seam import WireMessage
from conveyor_redis import AsyncRedisTransport, Reconnect, RedisTransport

FAST = Reconnect(first=timedelta(milliseconds=50), longest=timedelta(milliseconds=200))


def test_a_redis_killed_mid_flow_and_restarted_with_aof_loses_nothing(
    private_redis: PrivateRedis,
) -> None:
    clock = SystemClock()
    transport = RedisTransport(private_redis.url, clock=clock, reconnect=FAST)
    lease = timedelta(milliseconds=500)
    sent = [f"m-{n:03}".encode() for n in range(100)]
    for body in sent[:60]:
        transport.send("orders", WireMessage(body, {"x-n": body.decode()}))
    handled = []
    for _ in range(20):  # 20 handled and acked, 5 received and held when the server dies
        [delivery] = transport.receive("orders", lease=lease)
        handled.append(delivery.message.body)
        transport.ack(delivery)
    held = transport.receive("orders", lease=lease, max_messages=5)
    transport.send("orders", WireMessage(b"delayed"), available_at=clock.now() + lease)

    private_redis.restart(signal.SIGKILL)  # a crash, not a clean shutdown

    for body in sent[60:]:  # the client reconnects on its own
        transport.send("orders", WireMessage(body, {"x-n": body.decode()}))
    for delivery in held:  # the leases survived the restart: acking them still works
        transport.ack(delivery)
        handled.append(delivery.message.body)
    while found := transport.receive("orders", lease=lease, max_messages=10, wait=2 * lease):
        for delivery in found:
            assert delivery.message.headers.get("x-n", "delayed") == delivery.message.body.decode()
            handled.append(delivery.message.body)
            transport.ack(delivery)

    assert sorted(handled) == sorted([*sent, b"delayed"])
    assert transport.pending("orders") == 0
    transport.close()


def test_a_consumer_waits_out_a_lost_server_logging_each_attempt(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    transport = RedisTransport(private_redis.url, clock=SystemClock(), reconnect=FAST)
    transport.send("orders", WireMessage(b"before"))
    private_redis.stop(signal.SIGKILL)
    back = threading.Timer(0.6, private_redis.start)

    with caplog.at_level(logging.INFO, logger="conveyor.redis"):
        back.start()
        found = transport.receive("orders", lease=timedelta(seconds=5))
        back.join()

    assert [d.message.body for d in found] == [b"before"]
    attempts = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(attempts) >= 2
    assert all(f"Redis at 127.0.0.1:{private_redis.port}" in r.getMessage() for r in attempts)
    assert [int(r.args[1]) for r in attempts] == list(range(1, len(attempts) + 1))  # type: ignore[index]
    pauses = [float(r.args[3]) for r in attempts]  # type: ignore[index]
    assert pauses[0] == 0.05  # then growing (backoff) up to the longest pause
    assert pauses == sorted(pauses)
    assert max(pauses) <= 0.2
    assert any("reconnected" in r.getMessage() for r in caplog.records)
    transport.close()


def test_an_async_consumer_waits_out_a_lost_server_logging_each_attempt(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> list[bytes]:
        transport = AsyncRedisTransport(private_redis.url, clock=SystemClock(), reconnect=FAST)
        try:
            await transport.send("orders", WireMessage(b"before"))
            private_redis.stop(signal.SIGKILL)
            back = threading.Timer(0.6, private_redis.start)
            back.start()
            found = await transport.receive("orders", lease=timedelta(seconds=5))
            back.join()
            return [d.message.body for d in found]
        finally:
            await transport.close()

    with caplog.at_level(logging.INFO, logger="conveyor.redis"):
        bodies = asyncio.run(scenario())

    assert bodies == [b"before"]
    attempts = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(attempts) >= 2
    assert all(f"Redis at 127.0.0.1:{private_redis.port}" in r.getMessage() for r in attempts)
    assert any("reconnected" in r.getMessage() for r in caplog.records)


def test_a_consumer_gives_up_after_its_reconnect_budget_with_a_clear_error(
    private_redis: PrivateRedis,
) -> None:
    budget = Reconnect(
        first=timedelta(milliseconds=20),
        longest=timedelta(milliseconds=50),
        give_up_after=timedelta(milliseconds=300),
    )
    transport = RedisTransport(private_redis.url, clock=SystemClock(), reconnect=budget)
    transport.send("orders", WireMessage(b"stranded"))
    private_redis.stop(signal.SIGKILL)

    with pytest.raises(
        ConnectionFailed, match=f"cannot reach Redis at 127.0.0.1:{private_redis.port}"
    ):
        transport.receive("orders", lease=timedelta(seconds=5))
    transport.close()
