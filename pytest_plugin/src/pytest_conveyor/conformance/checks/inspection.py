"""Inspection: ``pending`` and ``next_due``, with which the kernel steps virtual time exactly.

They exist only on an :class:`~conveyor.transports.seam.InspectableTransport` (or its async
twin); the checks about delayed messages also need ``capabilities.delay``.
"""

from __future__ import annotations

from conveyor.transports.seam import ChannelOptions, WireMessage
from pytest_conveyor.conformance.harness import Harness
from pytest_conveyor.conformance.registry import Group, declares, inspectable

__all__ = ["INSPECTION"]

INSPECTION = Group("inspection")
check = INSPECTION.check


@check(inspectable)
def pending_counts_due_and_leased_messages(h: Harness) -> None:
    """Two sent, one leased: two pending; one acknowledged: one."""
    channel = h.channel()
    h.declare(ChannelOptions(channel))
    assert h.pending(channel) == 0, f"{h.name}.pending() of a new channel is not 0"
    h.send(channel, WireMessage(b"one"))
    h.send(channel, WireMessage(b"two"))
    delivery = h.expect(channel, "the first message")

    pending = h.pending(channel)
    assert pending == 2, f"{h.name}.pending() is {pending} with 1 message due and 1 leased"
    h.ack(delivery)
    assert h.pending(channel) == 1, f"{h.name}.pending() is {h.pending(channel)} after an ack"


@check(inspectable, declares("delay"))
def pending_counts_delayed_messages(h: Harness) -> None:
    """A message held until later is pending too."""
    channel = h.channel()
    h.send(channel, WireMessage(b"held"), available_at=h.now() + h.timing.delay)

    assert h.pending(channel) == 1, f"{h.name}.pending() is {h.pending(channel)} with 1 delayed"


@check(inspectable)
def next_due_of_empty_channel_is_none(h: Harness) -> None:
    """Nothing on the channel, nothing due."""
    channel = h.channel()
    h.declare(ChannelOptions(channel))

    assert h.next_due(channel) is None, f"{h.name}.next_due() of an empty channel is not None"


@check(inspectable)
def next_due_of_due_message_is_not_after_now(h: Harness) -> None:
    """A message due now is due at or before now."""
    channel = h.channel()
    h.send(channel, WireMessage(b"due"))

    next_due, now = h.next_due(channel), h.now()
    assert next_due is not None, f"{h.name}.next_due() is None with a message due"
    assert next_due <= now, f"{h.name}.next_due() is {next_due} for a message due at {now}"


@check(inspectable, declares("delay"))
def next_due_of_delayed_message_is_its_available_at(h: Harness) -> None:
    """A delayed message is due at its ``available_at``, to the declared precision."""
    channel, available_at = h.channel(), h.now() + h.timing.delay
    h.send(channel, WireMessage(b"held"), available_at=available_at)

    next_due = h.next_due(channel)
    assert next_due is not None, f"{h.name}.next_due() is None with a message delayed"
    assert available_at <= next_due < available_at + h.precision(), (
        f"{h.name}.next_due() is {next_due} for a message available at {available_at}"
    )


@check(inspectable)
def next_due_of_leased_message_is_its_lease_expiry(h: Harness) -> None:
    """A leased message is due again when its lease runs out, to the declared precision."""
    channel = h.channel()
    h.send(channel, WireMessage(b"leased"))
    before = h.now()
    h.expect(channel, "the message just sent")
    after = h.now()

    next_due, lease = h.next_due(channel), h.timing.lease
    assert next_due is not None, f"{h.name}.next_due() is None with a message leased"
    assert before + lease - h.precision() <= next_due < after + lease + h.precision(), (
        f"{h.name}.next_due() is {next_due} for a lease of {lease} taken between {before} "
        f"and {after}"
    )
