"""Delays, priority and ordering: who is received when, and in which order.

A transport without ``delay`` makes no promise about ``available_at`` (the kernel holds such
delays itself or refuses ``@delayed`` at bootstrap), one without ``priority`` none about
``priority``, and ``ordering="none"`` none about order: those checks do not apply to it.
"""

from __future__ import annotations

from conveyor.transports.seam import ChannelOptions, WireMessage
from pytest_conveyor.conformance.checks.leases import assert_redelivery
from pytest_conveyor.conformance.harness import Harness
from pytest_conveyor.conformance.registry import Group, declares, fifo

__all__ = ["DELAYS"]

DELAYS = Group("delays and priority")
check = DELAYS.check


@check(declares("delay"))
def delayed_message_is_not_received_before_available_at(h: Harness) -> None:
    """Held until ``available_at``: not at once, not one precision step before it."""
    channel, available_at = h.channel(), h.now() + h.timing.delay
    h.send(channel, WireMessage(b"wait"), available_at=available_at)

    h.expect_nothing(channel, f"it is held until {available_at.isoformat()}")
    h.expect_nothing(
        channel,
        f"it is held until {available_at.isoformat()}",
        until=available_at - h.precision(),
    )


@check(declares("delay"))
def delayed_message_is_received_at_available_at(h: Harness) -> None:
    """Receivable from ``available_at`` on."""
    channel, available_at = h.channel(), h.now() + h.timing.delay
    h.send(channel, WireMessage(b"now"), available_at=available_at)

    delivery = h.expect(channel, "the delayed message", by=available_at)
    assert delivery.message.body == b"now", f"{h.name} delivered {delivery.message.body!r}"


@check(declares("delay"))
def delayed_message_does_not_block_due_message_behind_it(h: Harness) -> None:
    """A message due now is received while one sent before it is still held."""
    channel = h.channel()
    h.send(channel, WireMessage(b"held"), available_at=h.now() + h.timing.delay)
    h.send(channel, WireMessage(b"due"))

    delivery = h.expect(channel, "the message sent without a delay")
    assert delivery.message.body == b"due", (
        f"{h.name} delivered {delivery.message.body!r} before its available_at"
    )
    h.expect_nothing(channel, "the other message is held")


@check(declares("delay"))
def release_with_available_at_holds_message_until_then(h: Harness) -> None:
    """A release with ``available_at`` holds the message back until then."""
    channel = h.channel()
    h.send(channel, WireMessage(b"later"))
    delivery = h.expect(channel, "the message just sent")
    available_at = h.now() + h.timing.delay
    h.release(delivery, available_at=available_at)

    h.expect_nothing(
        channel,
        f"it was released to come back at {available_at.isoformat()}",
        until=available_at - h.precision(),
    )
    again = h.expect(channel, "the released message", by=available_at)
    assert_redelivery(h, again, b"later", 2)


@check(declares("priority"))
def higher_priority_is_received_first(h: Harness) -> None:
    """Among due messages, the highest priority first (within ``max_priority``)."""
    top = h.capabilities.max_priority or 9
    channel = h.channel()
    h.declare(ChannelOptions(channel, priority=True))
    for body, priority in [(b"low", 0), (b"high", top), (b"middle", top // 2)]:
        h.send(channel, WireMessage(body), priority=priority)

    received = h.drain(channel, expect=3)
    assert received == [b"high", b"middle", b"low"], (
        f"{h.name} delivered priorities {top}, {top // 2}, 0 as {received}"
    )


@check(declares("priority"))
def equal_priority_keeps_declared_ordering(h: Harness) -> None:
    """Within one priority level, messages come in ``capabilities.ordering``.

    "fifo": send order within a level; "none": any order within a level, levels still in
    priority order.
    """
    top = h.capabilities.max_priority or 9
    channel = h.channel()
    h.declare(ChannelOptions(channel, priority=True))
    for body, priority in [(b"a", top), (b"x", 0), (b"b", top), (b"y", 0), (b"c", top)]:
        h.send(channel, WireMessage(body), priority=priority)

    received = h.drain(channel, expect=5)
    if h.capabilities.ordering == "fifo":
        assert received == [b"a", b"b", b"c", b"x", b"y"], (
            f"{h.name} declares ordering='fifo', yet delivered {received}"
        )
    else:
        assert (sorted(received[:3]), sorted(received[3:])) == ([b"a", b"b", b"c"], [b"x", b"y"])


@check(fifo)
def fifo_ordering_keeps_send_order(h: Harness) -> None:
    """Twenty messages come back in the order they were sent."""
    channel = h.channel()
    sent = [f"step-{n:02}".encode() for n in range(20)]
    for body in sent:
        h.send(channel, WireMessage(body))

    received = h.drain(channel, expect=len(sent))
    assert received == sent, f"{h.name} declares ordering='fifo', yet delivered {received}"
