"""Acks become batched deletes against a real SQS-compatible server (``conveyor_sqs.deletes``).

The calls are counted through botocore's own event hooks on the real client, so each test sees
how many ``DeleteMessageBatch`` and ``DeleteMessage`` requests reached the server, and the queue's
own counters say whether the messages are gone. A wait for the background thread is a wait on
an event its call sets, never a sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from conveyor.core.clock import SystemClock
from conveyor.core.errors import ConfigurationError
from conveyor.transports.seam import ChannelOptions, WireMessage
from conveyor_sqs import ClientSettings, SqsTransport
from conveyor_sqs.client import open_client

LEASE = timedelta(seconds=30)


class Calls:
    """The delete requests a client sent, counted by botocore's own events."""

    def __init__(self, client: Any) -> None:
        self.batches: list[int] = []
        self.single = 0
        self.sent = threading.Event()
        client.meta.events.register("before-parameter-build.sqs.DeleteMessageBatch", self._batch)
        client.meta.events.register("before-parameter-build.sqs.DeleteMessage", self._single)
        client.meta.events.register("after-call.sqs.DeleteMessageBatch", self._after)

    def _batch(self, params: dict[str, Any], **_: object) -> None:
        self.batches.append(len(params["Entries"]))

    def _single(self, **_: object) -> None:
        self.single += 1

    def _after(self, **_: object) -> None:
        self.sent.set()


@pytest.fixture
def client(settings: ClientSettings) -> Any:
    """The transport's client (the transport closes it)."""
    return open_client(settings)[0]


@pytest.fixture
def observer(settings: ClientSettings) -> Iterator[Any]:
    """Another client, to read the queue's counters."""
    made, _ = open_client(settings)
    yield made
    made.close()


def _left(observer: Any, transport: SqsTransport, channel: str) -> int:
    """Messages still on the queue, visible or leased."""
    url = observer.get_queue_url(QueueName=transport.queue_name(channel))["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    found = observer.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(found[name]) for name in names)


def _received(transport: SqsTransport, channel: str, count: int) -> list[Any]:
    for n in range(count):
        transport.send(channel, WireMessage(b"%d" % n))
    taken: list[Any] = []
    while len(taken) < count:
        taken += transport.receive(channel, lease=LEASE, max_messages=10)
    return taken


def _acked(client: Any, channel: str, *, count: int, delay: float) -> tuple[Calls, SqsTransport]:
    """A transport with ``ack_delay=delay`` that received ``count`` messages and acked them."""
    calls = Calls(client)
    transport = SqsTransport(clock=SystemClock(), client=client, ack_delay=timedelta(seconds=delay))
    transport.declare(ChannelOptions(channel))
    for delivery in _received(transport, channel, count):
        transport.ack(delivery)
    return calls, transport


def test_acks_within_the_delay_share_one_delete_call(
    client: Any, observer: Any, unique: Callable[[str], str]
) -> None:
    channel = unique("deletes")
    calls, transport = _acked(client, channel, count=3, delay=0.5)
    transport.flush()

    assert (calls.batches, calls.single) == ([3], 0)
    assert _left(observer, transport, channel) == 0
    transport.close()


def test_ten_acks_are_deleted_by_the_tenth_without_waiting(
    client: Any, observer: Any, unique: Callable[[str], str]
) -> None:
    channel = unique("deletes")
    calls, transport = _acked(client, channel, count=10, delay=0.5)

    assert calls.batches == [10]  # sent when the tenth ack returned, without a flush
    assert _left(observer, transport, channel) == 0
    transport.close()


def test_a_lone_ack_is_deleted_after_the_delay_by_the_background_thread(
    client: Any, observer: Any, unique: Callable[[str], str]
) -> None:
    channel = unique("deletes")
    calls, transport = _acked(client, channel, count=1, delay=0.05)

    assert calls.sent.wait(timeout=10), "the background thread never sent the delete"
    assert calls.batches == [1]
    assert _left(observer, transport, channel) == 0
    transport.close()


def test_a_receive_sends_the_acks_made_before_it_before_it_hands_anything_out(
    client: Any, observer: Any, unique: Callable[[str], str]
) -> None:
    channel = unique("deletes")
    calls, transport = _acked(client, channel, count=2, delay=0.5)
    transport.send(channel, WireMessage(b"next"))
    found: list[Any] = []
    while not found:
        found = transport.receive(channel, lease=LEASE)

    assert calls.batches == [2]  # sent with the receive, not after the delay
    assert _left(observer, transport, channel) == 1  # only the message just received
    transport.close()


def test_close_sends_the_deletes_still_waiting(
    client: Any, observer: Any, unique: Callable[[str], str]
) -> None:
    channel = unique("deletes")
    calls, transport = _acked(client, channel, count=2, delay=0.5)
    transport.close()

    assert calls.batches == [2]
    assert _left(observer, transport, channel) == 0


def test_no_delay_and_fifo_queues_delete_each_message_as_it_is_acked(
    client: Any, observer: Any, unique: Callable[[str], str]
) -> None:
    calls = Calls(client)
    immediate = SqsTransport(clock=SystemClock(), client=client, ack_delay=timedelta(0))
    fifo = SqsTransport(clock=SystemClock(), client=client, fifo=True)
    for transport in (immediate, fifo):
        channel = unique("deletes")
        transport.declare(ChannelOptions(channel))
        [delivery] = _received(transport, channel, 1)
        transport.ack(delivery)
        assert _left(observer, transport, channel) == 0
    assert (calls.batches, calls.single) == ([], 2)
    immediate.close()


def test_an_ack_delay_near_a_lease_is_refused(client: Any) -> None:
    with pytest.raises(ConfigurationError, match="ack_delay"):
        SqsTransport(clock=SystemClock(), client=client, ack_delay=timedelta(seconds=1))
