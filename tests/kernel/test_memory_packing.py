"""A queued in-memory message is packed into one object, and comes back exactly as it was sent.

Packing is how the memory transport holds a waiting message in about 210 bytes (issue 21); it
must never change what a consumer receives, nor the order it receives it in. Messages that do
not fit the packing are kept as entries, and the two kinds keep one send order.
"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.core.clock import VirtualClock
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.packed import MAX_BODY, SEPARATOR, pack, unpack
from conveyor.transports.seam import Delivery, WireMessage

LEASE = timedelta(seconds=30)
NOON = datetime(2026, 1, 1, 12, tzinfo=UTC)


def kernel_headers(number: int) -> dict[str, str]:
    """Headers shaped like the kernel's: a uuid-like id, its correlation, a timestamp, names."""
    message_id = f"0194f5c2-7b1e-7{number:03x}-8000-{number:012x}"
    return {
        "cv-id": message_id,
        "cv-correlation-id": message_id,
        "cv-timestamp": f"2026-01-01T12:00:{number % 60:02d}.123456+00:00",
        "cv-attempt": "1",
        "cv-type": "Work",
        "cv-content-type": "application/json",
        "cv-endpoint": "handle",
    }


def receive_all(transport: MemoryTransport, channel: str) -> list[Delivery]:
    received: list[Delivery] = []
    while batch := transport.receive(channel, lease=LEASE, max_messages=100):
        received += batch
    return received


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(kernel_headers(7), b'{"id":7,"name":"item"}', id="kernel-like"),
        pytest.param({}, b"no headers", id="no-headers"),
        pytest.param({"a": ""}, b"", id="empty-value-and-body"),
        pytest.param({"a": "", "b": "", "c": "x"}, b"x", id="empty-values"),
        pytest.param({"note": f"one{SEPARATOR}two"}, b"x", id="value-holding-the-separator"),
        pytest.param({"who": "Zoë ☃ 日本"}, "Zoë".encode(), id="non-ascii"),
        pytest.param({"odd": "\udc80lone"}, b"x", id="lone-surrogate"),
        pytest.param({"big": "x" * 70_000}, b"x", id="headers-over-64-KiB"),
        pytest.param({"k": "v"}, bytes(range(256)) * 3, id="every-byte-value"),
        pytest.param({"k": "v"}, b"y" * (MAX_BODY + 1), id="large-body"),
    ],
)
def test_a_queued_message_comes_back_exactly_as_sent(headers: dict[str, str], body: bytes) -> None:
    transport = MemoryTransport(VirtualClock(NOON))
    transport.send("work", WireMessage(body, headers))
    [delivery] = transport.receive("work", lease=LEASE)
    assert delivery.message.body == body
    assert delivery.message.headers == headers
    assert list(delivery.message.headers) == list(headers)
    assert delivery.delivery_count == 1


def test_packed_and_unpacked_messages_keep_one_send_order() -> None:
    transport = MemoryTransport(VirtualClock(NOON))
    sent = []
    for number in range(40):
        # every third does not pack: a value holding the separator, or a large body
        headers = {"n": str(number), "odd": SEPARATOR} if number % 3 == 0 else {"n": str(number)}
        body = b"z" * (MAX_BODY + 1) if number % 5 == 0 else b"%d" % number
        transport.send("work", WireMessage(body, headers))
        sent.append((body, headers))

    received = receive_all(transport, "work")
    assert [(d.message.body, d.message.headers) for d in received] == sent


def test_a_released_message_regains_its_place_among_packed_ones() -> None:
    transport = MemoryTransport(VirtualClock(NOON))
    for number in range(4):
        transport.send("work", WireMessage(b"%d" % number, {"n": str(number)}))
    first = transport.receive("work", lease=LEASE)[0]
    second = transport.receive("work", lease=LEASE)[0]
    transport.release(second)
    transport.release(first)

    assert [d.message.body for d in receive_all(transport, "work")] == [b"0", b"1", b"2", b"3"]


def test_priorities_still_come_first_when_packed() -> None:
    transport = MemoryTransport(VirtualClock(NOON))
    for number, level in enumerate([0, 5, 0, 5, -1]):
        transport.send("work", WireMessage(b"%d" % number, {"n": "x"}), priority=level)

    assert [d.message.body for d in receive_all(transport, "work")] == [
        b"1",
        b"3",
        b"0",
        b"2",
        b"4",
    ]


def test_header_name_sets_beyond_the_shared_ones_still_round_trip() -> None:
    transport = MemoryTransport(VirtualClock(NOON))
    for number in range(300):  # more name sets than the transport shares
        transport.send("work", WireMessage(b"%d" % number, {f"name-{number}": str(number)}))

    received = receive_all(transport, "work")
    assert [d.message.headers for d in received] == [{f"name-{n}": str(n)} for n in range(300)]


def test_pack_refuses_what_does_not_fit_and_round_trips_what_does() -> None:
    values = ("a", "b\u00e9", "")
    packed = pack(2**40, 3, values, SEPARATOR.join(values), b"body")
    assert packed is not None
    assert unpack(packed) == (2**40, 3, list(values), b"body")
    assert pack(1, 0, (), "", b"x") is None
    assert pack(1, 256, ("a",), "a", b"x") is None
    assert pack(1, 0, ("a\x1fb",), "a\x1fb", b"x") is None
    assert pack(1, 0, ("a",), "a", b"x" * (MAX_BODY + 1)) is None
    assert pack(1, 0, ("\udc80",), "\udc80", b"x") is None


def test_a_queued_kernel_message_costs_under_300_bytes() -> None:
    """The issue 21 budget, with headers shaped like the kernel's (id, timestamp, names).

    Each message is made while tracing, as the kernel makes its id and timestamp per message,
    and dropped by the sender: what stays allocated is what the transport keeps.
    """
    transport = MemoryTransport(VirtualClock(NOON))
    count = 20_000
    transport.send("bulk", WireMessage(b"{}", kernel_headers(0)))  # the name set, once
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(count):
            transport.send("bulk", WireMessage(b'{"id":%d,"name":"item"}' % n, kernel_headers(n)))
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert used / count < 300
