"""Batches and the long poll: ``receive(max_messages=..., wait=...)`` in one call.

A transport with immediate visibility returns as many due messages as asked for (up to its
``max_batch``); one with eventual visibility (SQS) may return fewer, never more. A receive with
``wait`` returns a due message at once, and one that arrives while it waits, without waiting
the whole duration out.
"""

from __future__ import annotations

from datetime import timedelta

from conveyor.transports.seam import ChannelOptions, Delivery, WireMessage
from pytest_conveyor.conformance.harness import Harness, real_seconds
from pytest_conveyor.conformance.registry import Group, real_time

__all__ = ["BATCHES"]

BATCHES = Group("batches and long poll")
check = BATCHES.check

_LONG = timedelta(seconds=5)
"""A long poll that no passing check waits out."""


@check()
def receive_returns_a_batch_up_to_max_messages(h: Harness) -> None:
    """Five due messages, ``max_messages=3``: three leased in one call, the rest still there.

    The batch is acknowledged before the rest is drained: on a FIFO queue with message groups
    (SQS FIFO) a group's leased messages hold its later ones back until they are settled.
    """
    channel = h.channel()
    sent = [f"batch-{n}".encode() for n in range(5)]
    for body in sent:
        h.send(channel, WireMessage(body))
    asked = min(3, h.capabilities.max_batch or 3)

    batch: list[Delivery] = []
    for _ in range(asked):  # eventual visibility: poll until the first shows
        batch = h.receive(channel, max_messages=asked)
        if batch or h.capabilities.visibility == "immediate":
            break
        h.pause(h.timing.poll)
    if h.capabilities.visibility == "immediate":
        assert len(batch) == asked, (
            f"{h.name} returned {len(batch)} deliveries for max_messages={asked} with "
            f"{len(sent)} due (visibility='immediate')"
        )
        if h.capabilities.ordering == "fifo":
            assert [d.message.body for d in batch] == sent[:asked], (
                f"{h.name} declares ordering='fifo', yet batched {[d.message.body for d in batch]}"
            )
    assert len({d.receipt for d in batch}) == len(batch), f"{h.name} reused a receipt in a batch"
    # While the batch is leased none of it comes back (a FIFO group may hold the rest back too).
    more = h.receive(channel, max_messages=min(len(sent), h.capabilities.max_batch or len(sent)))
    leased = {d.message.body for d in batch}
    again = [d.message.body for d in more if d.message.body in leased]
    assert not again, f"{h.name} delivered {again} again while the batch held their leases"
    for delivery in batch + more:
        h.ack(delivery)
    rest = h.drain(channel, expect=len(sent) - len(batch) - len(more))
    received = sorted([d.message.body for d in batch + more] + rest)
    assert received == sorted(sent), f"{h.name} delivered {received} for {sorted(sent)}"


@check()
def long_poll_returns_a_due_message_at_once(h: Harness) -> None:
    """With ``wait``, a message already due is returned without waiting."""
    channel = h.channel()
    h.send(channel, WireMessage(b"ready"))

    start = real_seconds()
    found = h.receive(channel, wait=_LONG)
    seconds = real_seconds() - start
    if not found and h.capabilities.visibility == "eventual":
        found = [h.expect(channel, "the message sent before the long poll")]
    assert [d.message.body for d in found] == [b"ready"], (
        f"{h.name}.receive(wait={_LONG}) returned {found} with one message due"
    )
    assert seconds < _LONG.total_seconds() / 2, (
        f"{h.name}.receive(wait={_LONG}) took {seconds:.2f} s to return a message that was due"
    )


@check(real_time)
def long_poll_on_an_empty_channel_returns_nothing(h: Harness) -> None:
    """A long poll that nothing arrives in ends empty, after its wait.

    Real time only: a wait is measured on the transport's clock, which a virtual clock never
    moves on its own (the seam says the kernel never passes ``wait`` there).
    """
    channel = h.channel()
    h.declare(ChannelOptions(channel))

    found = h.receive(channel, wait=max(h.precision(), timedelta(milliseconds=100)))
    assert found == [], f"{h.name} returned {found} from an empty channel"


@check(real_time)
def long_poll_is_woken_by_a_send(h: Harness) -> None:
    """A message sent while a receive waits is returned by it, long before the wait ends.

    The send comes from another consumer (a second connection when the harness can open one;
    on the async runner, another task on the same loop).
    """
    channel = h.channel()
    h.declare(ChannelOptions(channel))
    sender = h.reopen() if h.can_reopen else h

    found, seconds = h.receive_during_send(
        channel, WireMessage(b"wake up"), wait=_LONG, sender=sender
    )
    assert [d.message.body for d in found] == [b"wake up"], (
        f"{h.name}.receive(wait={_LONG}) returned {found} though a message was sent meanwhile"
    )
    assert seconds < _LONG.total_seconds() / 2, (
        f"{h.name}.receive(wait={_LONG}) took {seconds:.2f} s to return a message sent "
        f"while it waited: it waited the poll out instead of waking"
    )
