"""RedisTransport on the system clock: the long poll, leases in real time, renewal, sharing.

The conformance suite covers the semantics on virtual time; these tests cover what only real
time shows. Each waits on a deadline, never on a bare sleep.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from conveyor import Messaging, SystemClock, VirtualClock
from conveyor.core.errors import StaleReceipt
from conveyor.transports.seam import RenewableTransport, WireMessage
from conveyor_redis import RedisChannel, RedisTransport


@pytest.fixture
def transport(redis_url: str, prefix: str) -> Iterator[RedisTransport]:
    opened = RedisTransport(redis_url, clock=SystemClock(), prefix=prefix)
    yield opened
    opened.close()


def test_a_long_poll_returns_as_soon_as_a_message_is_sent(transport: RedisTransport) -> None:
    sender = threading.Timer(0.15, lambda: transport.send("jobs", WireMessage(b"wake up")))
    started = time.monotonic()
    sender.start()

    found = transport.receive("jobs", lease=timedelta(seconds=5), wait=timedelta(seconds=5))

    elapsed = time.monotonic() - started
    sender.join()
    assert [d.message.body for d in found] == [b"wake up"]
    assert 0.1 < elapsed < 2.0  # woken by the send, not by the 5 s deadline


def test_a_long_poll_on_an_empty_channel_returns_nothing_at_its_deadline(
    transport: RedisTransport,
) -> None:
    started = time.monotonic()

    found = transport.receive("jobs", lease=timedelta(seconds=5), wait=timedelta(milliseconds=300))

    assert found == []
    assert 0.29 < time.monotonic() - started < 2.0


def test_a_long_poll_wakes_when_a_delayed_message_becomes_due(transport: RedisTransport) -> None:
    clock = SystemClock()
    transport.send("jobs", WireMessage(b"later"), available_at=clock.now() + timedelta(seconds=0.3))
    started = time.monotonic()

    found = transport.receive("jobs", lease=timedelta(seconds=5), wait=timedelta(seconds=5))

    assert [d.message.body for d in found] == [b"later"]
    assert 0.29 < time.monotonic() - started < 2.0


def test_a_lease_runs_out_in_real_time_and_the_message_comes_back(
    transport: RedisTransport,
) -> None:
    transport.send("jobs", WireMessage(b"abandoned"))
    first = transport.receive("jobs", lease=timedelta(milliseconds=200))
    assert transport.receive("jobs", lease=timedelta(milliseconds=200)) == []

    again = transport.receive("jobs", lease=timedelta(seconds=5), wait=timedelta(seconds=3))

    assert [d.delivery_count for d in first + again] == [1, 2]
    with pytest.raises(StaleReceipt, match="received again \\(now delivery 2\\)"):
        transport.ack(first[0])
    transport.ack(again[0])


def test_renewing_a_lease_keeps_a_long_handler_s_message_from_coming_back(
    redis_url: str, prefix: str
) -> None:
    clock = VirtualClock()
    transport = RedisTransport(redis_url, clock=clock, prefix=prefix)
    assert isinstance(transport, RenewableTransport)
    transport.send("jobs", WireMessage(b"long"))
    [delivery] = transport.receive("jobs", lease=timedelta(seconds=10))

    for _ in range(3):  # 27 s of handling under a 10 s lease, renewed every 9 s
        clock.advance(timedelta(seconds=9))
        transport.renew(delivery, lease=timedelta(seconds=10))
        assert transport.receive("jobs", lease=timedelta(seconds=10)) == []
    transport.ack(delivery)
    clock.advance(timedelta(seconds=60))
    assert transport.pending("jobs") == 0
    transport.close()


def test_renewing_after_the_message_was_received_again_is_a_stale_receipt(
    redis_url: str, prefix: str
) -> None:
    clock = VirtualClock()
    transport = RedisTransport(redis_url, clock=clock, prefix=prefix)
    transport.send("jobs", WireMessage(b"slow"))
    [late] = transport.receive("jobs", lease=timedelta(seconds=1))
    clock.advance(timedelta(seconds=1))
    [again] = transport.receive("jobs", lease=timedelta(seconds=1))

    with pytest.raises(StaleReceipt):
        transport.renew(late, lease=timedelta(seconds=10))
    transport.renew(again, lease=timedelta(seconds=10))
    transport.close()


def test_one_receive_leases_a_batch_in_order(transport: RedisTransport) -> None:
    for n in range(5):
        transport.send("jobs", WireMessage(f"{n}".encode()))

    batch = transport.receive("jobs", lease=timedelta(seconds=5), max_messages=3)
    rest = transport.receive("jobs", lease=timedelta(seconds=5), max_messages=10)

    assert [d.message.body for d in batch] == [b"0", b"1", b"2"]
    assert [d.message.body for d in rest] == [b"3", b"4"]


def test_threads_sharing_a_transport_never_receive_a_message_twice(
    transport: RedisTransport,
) -> None:
    for n in range(300):
        transport.send("jobs", WireMessage(f"{n}".encode()))
    seen: list[bytes] = []

    def consume() -> None:
        while found := transport.receive("jobs", lease=timedelta(seconds=30), max_messages=4):
            for delivery in found:
                seen.append(delivery.message.body)
                transport.ack(delivery)

    workers = [threading.Thread(target=consume) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert sorted(seen) == sorted(f"{n}".encode() for n in range(300))


def test_ten_channels_on_one_server_share_one_client(redis_url: str, prefix: str) -> None:
    channels = [RedisChannel(f"c{n}", url=redis_url, prefix=prefix) for n in range(10)]

    messaging = Messaging(handlers=[], channels=channels, clock=SystemClock())

    transports = {id(messaging.channels[f"c{n}"].transport) for n in range(10)}
    assert len(transports) == 1
    messaging.close()


def test_importing_the_adapter_imports_no_client_library() -> None:
    code = (
        "import sys, conveyor_redis; print(sorted(m for m in sys.modules if m.startswith('redis')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "[]"
