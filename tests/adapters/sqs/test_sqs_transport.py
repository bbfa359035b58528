"""SqsTransport against a real SQS-compatible server: what the conformance suite does not reach.

The long poll, batches of at most 10 (received and sent), lease renewal and release with a
delay as visibility changes, headers beyond SQS's 10 message attributes, FIFO groups from a
header and deduplication ids from the message id, and the size limit read from the queue's
attributes. moto checks visibility in 1 s steps, so each timing check leaves a second's room in
the direction that cannot pass by accident, and waits on a deadline, never a bare sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from conveyor.core.clock import SystemClock
from conveyor.core.errors import MessageTooLarge
from conveyor.core.wire import H
from conveyor.transports.seam import ChannelOptions, Delivery, RenewableTransport, WireMessage
from conveyor_sqs import ClientSettings, SqsTransport, wire
from conveyor_sqs.queues import DEFAULT_MAXIMUM

LEASE = timedelta(seconds=2)


def drain(transport: SqsTransport, channel: str, *, expected: int) -> list[Delivery]:
    """Receive (batches of 10 asked for more) and ack until ``expected`` came, within 15 s."""
    deadline = time.monotonic() + 15
    received: list[Delivery] = []
    while len(received) < expected and time.monotonic() < deadline:
        batch = transport.receive(channel, lease=LEASE, max_messages=25, wait=timedelta(seconds=1))
        assert len(batch) <= 10, "SQS hands out at most 10 messages per receive"
        for delivery in batch:
            transport.ack(delivery)
        received += batch
    return received


def test_a_long_poll_returns_as_soon_as_a_message_is_sent(
    transport: SqsTransport, unique: Callable[[str], str]
) -> None:
    channel = unique("poll")
    transport.declare(ChannelOptions(channel))
    sender = threading.Timer(0.5, lambda: transport.send(channel, WireMessage(b"wake up")))
    started = time.monotonic()
    sender.start()

    found = transport.receive(channel, lease=LEASE, wait=timedelta(seconds=10))

    elapsed = time.monotonic() - started
    sender.join()
    assert [d.message.body for d in found] == [b"wake up"]
    assert 0.4 < elapsed < 5.0  # woken by the send (WaitTimeSeconds), not by the 10 s deadline


def test_a_long_poll_on_an_empty_queue_returns_nothing_at_its_deadline(
    transport: SqsTransport, unique: Callable[[str], str]
) -> None:
    channel = unique("empty")
    transport.declare(ChannelOptions(channel))
    started = time.monotonic()

    found = transport.receive(channel, lease=LEASE, wait=timedelta(seconds=1))

    assert found == []
    assert 0.9 < time.monotonic() - started < 5.0


def test_batches_of_ten_are_sent_and_received(
    transport: SqsTransport, unique: Callable[[str], str]
) -> None:
    channel = unique("batch")
    bodies = [f"m-{n:02}".encode() for n in range(25)]
    transport.send_batch(channel, [WireMessage(body, {"n": body.decode()}) for body in bodies])

    received = drain(transport, channel, expected=25)

    assert sorted(d.message.body for d in received) == bodies
    assert all(d.message.headers["n"] == d.message.body.decode() for d in received)


def test_renewing_the_lease_keeps_a_long_handler_s_message_hidden(
    transport: SqsTransport, unique: Callable[[str], str]
) -> None:
    assert isinstance(transport, RenewableTransport)
    channel = unique("renew")
    transport.send(channel, WireMessage(b"long"))
    [delivery] = transport.receive(channel, lease=LEASE, wait=timedelta(seconds=5))
    renewed_at = time.monotonic()
    transport.renew(delivery, lease=timedelta(seconds=6))

    # Past the first lease (2 s, plus moto's 1 s step) the message is still with its handler.
    while time.monotonic() - renewed_at < 3.5:
        assert transport.receive(channel, lease=LEASE, wait=timedelta(seconds=1)) == []
    transport.ack(delivery)
    assert transport.receive(channel, lease=LEASE, wait=timedelta(seconds=7)) == []


def test_release_with_a_delay_hides_the_message_until_then(
    transport: SqsTransport, unique: Callable[[str], str]
) -> None:
    channel = unique("release")
    clock = SystemClock()
    transport.send(channel, WireMessage(b"later"))
    [first] = transport.receive(channel, lease=timedelta(seconds=30), wait=timedelta(seconds=5))
    released_at = time.monotonic()
    transport.release(first, available_at=clock.now() + timedelta(seconds=2))

    assert transport.receive(channel, lease=LEASE, wait=timedelta(seconds=1)) == []
    [again] = transport.receive(channel, lease=LEASE, wait=timedelta(seconds=6))
    assert again.message.body == b"later"
    assert again.delivery_count == 2
    assert time.monotonic() - released_at > 1.0
    transport.ack(again)


def test_more_headers_than_sqs_has_message_attributes_round_trip(
    transport: SqsTransport, unique: Callable[[str], str]
) -> None:
    channel = unique("headers")
    headers = {f"x-header-{n:02}": f"value {n} ✓ 日本" for n in range(30)}
    transport.send(channel, WireMessage(b'{"json": true}', headers))

    [delivery] = transport.receive(channel, lease=LEASE, wait=timedelta(seconds=5))

    assert dict(delivery.message.headers) == headers
    assert delivery.message.body == b'{"json": true}'
    transport.ack(delivery)


def test_binary_and_empty_bodies_round_trip(
    transport: SqsTransport, unique: Callable[[str], str]
) -> None:
    channel = unique("bytes")
    bodies = [b"\x00\xff\xfe binary", b"", "caf\u00e9 \ufffe".encode()]
    for n, body in enumerate(bodies):
        transport.send(channel, WireMessage(body, {"n": str(n)}))

    received = drain(transport, channel, expected=3)

    assert {d.message.headers["n"]: d.message.body for d in received} == {
        str(n): body for n, body in enumerate(bodies)
    }


def test_the_size_limit_is_read_from_the_queue_attributes(
    settings: ClientSettings, unique: Callable[[str], str]
) -> None:
    transport = SqsTransport(
        clock=SystemClock(), settings=settings, queue_attributes={"MaximumMessageSize": "4096"}
    )
    default = SqsTransport(clock=SystemClock(), settings=settings)
    channel = unique("small")
    transport.declare(ChannelOptions(channel))
    # Another transport that did not create the queue still reads its limit on declare.
    assert default.capabilities.max_size == wire.wire_limit(DEFAULT_MAXIMUM)
    default.declare(ChannelOptions(channel))
    assert default.capabilities.max_size == transport.capabilities.max_size == wire.wire_limit(4096)

    with pytest.raises(MessageTooLarge) as raised:
        default.send(channel, WireMessage(b"x" * 4000))
    assert "accepts 4096 bytes (MaximumMessageSize)" in str(raised.value)
    assert "message of 4000 bytes" in str(raised.value)
    default.send(channel, WireMessage(b"x" * wire.wire_limit(4096)))  # the promised size fits
    transport.close()
    default.close()


def test_fifo_groups_come_from_a_header_and_a_resent_copy_is_stored_once(
    settings: ClientSettings, unique: Callable[[str], str]
) -> None:
    transport = SqsTransport(clock=SystemClock(), settings=settings, fifo=True)
    channel = unique("fifo")
    transport.declare(ChannelOptions(channel, fifo_group_header="account"))
    first = WireMessage(b"a-1", {H.ID: "m-1", "account": "a"})
    transport.send(channel, first)
    transport.send(channel, first)  # a producer retrying a send whose answer it lost
    transport.send(channel, WireMessage(b"a-1", {H.ID: "m-1", "account": "a", H.ATTEMPT: "2"}))
    transport.send(channel, WireMessage(b"b-1", {H.ID: "m-2", "account": "b"}))
    transport.send(channel, WireMessage(b"a-2", {H.ID: "m-3", "account": "a"}))

    received = drain(transport, channel, expected=4)

    assert transport.receive(channel, lease=LEASE, wait=timedelta(seconds=1)) == []
    bodies = [(d.message.body, d.message.headers.get(H.ATTEMPT)) for d in received]
    # The copy sent twice is stored once; the kernel's resend (attempt 2) is never a duplicate.
    assert [m for m in bodies if m[0] != b"b-1"] == [
        (b"a-1", None),
        (b"a-1", "2"),
        (b"a-2", None),
    ]
    assert len(received) == 4
    transport.close()


def test_fifo_ids_follow_the_message_id_and_fit_sqs() -> None:
    message = WireMessage(b"x", {H.ID: "0190-abc", "account": "a"})
    assert wire.deduplication_id(message).startswith("0190-abc.")
    assert wire.deduplication_id(message) == wire.deduplication_id(
        WireMessage(b"x", {"account": "a", H.ID: "0190-abc"})
    )
    assert len(wire.deduplication_id(WireMessage(b"x", {H.ID: "é" * 200}))) <= 128
    assert wire.group_id("customer-42") == "customer-42"
    unsafe = wire.group_id("klant ✓ 42")
    assert unsafe == wire.group_id("klant ✓ 42")
    assert unsafe.isascii()
    assert len(unsafe) <= 128
