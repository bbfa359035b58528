"""Channels, close and durability: declare with options, isolation, the transport's end of life.

Durability needs what only the harness can give: ``reopen``, a new transport on the same storage,
as a restarted process would open. A transport declaring ``durable`` whose harness cannot reopen
it fails these checks (saying so); it does not skip them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from conveyor.core.errors import TransportClosed
from conveyor.transports.seam import ChannelOptions, WireMessage
from pytest_conveyor.conformance.harness import Harness
from pytest_conveyor.conformance.registry import Group, declares

__all__ = ["CHANNELS"]

CHANNELS = Group("declare, options and close")
check = CHANNELS.check


@check()
def declare_is_idempotent(h: Harness) -> None:
    """Declaring a channel twice is no error and leaves it empty."""
    channel = h.channel()
    h.declare(ChannelOptions(channel))
    h.declare(ChannelOptions(channel))

    h.expect_nothing(channel, "nothing was sent to it")


@check()
def declare_again_keeps_messages(h: Harness) -> None:
    """Declaring a channel that holds messages keeps them."""
    channel = h.channel()
    h.declare(ChannelOptions(channel))
    h.send(channel, WireMessage(b"kept"))
    h.declare(ChannelOptions(channel))

    delivery = h.expect(channel, "the message sent before the second declare")
    assert delivery.message.body == b"kept"


@check()
def declare_takes_the_channel_options(h: Harness) -> None:
    """A channel declared with its options (lease, priority as declared) carries messages."""
    channel = h.channel()
    options = ChannelOptions(
        channel, lease=h.timing.lease + timedelta(seconds=1), priority=h.capabilities.priority
    )
    h.declare(options)
    h.declare(options)
    h.send(channel, WireMessage(b"options"))

    assert h.expect(channel, "the message sent to the declared channel").message.body == (
        b"options"
    )


@check()
def channels_are_isolated(h: Harness) -> None:
    """A message sent to one channel is never received from another."""
    first, second = h.channel(), h.channel()
    h.declare(ChannelOptions(second))
    h.send(first, WireMessage(b"mine"))

    h.expect_nothing(second, f"the only message was sent to {first!r}")
    assert h.expect(first, "the message sent to it").message.body == b"mine"


@check()
def operations_after_close_raise_transport_closed(h: Harness) -> None:
    """After ``close`` every verb raises ``TransportClosed``; ``capabilities`` stays readable."""
    channel = h.channel()
    h.send(channel, WireMessage(b"before close"))
    delivery = h.expect(channel, "the message sent before close")
    calls: dict[str, Callable[[], object]] = {
        "declare": lambda: h.declare(ChannelOptions(channel)),
        "send": lambda: h.send(channel, WireMessage(b"after close")),
        "receive": lambda: h.receive(channel),
        "ack": lambda: h.ack(delivery),
        "release": lambda: h.release(delivery),
    }
    if h.renewable:
        calls["renew"] = lambda: h.renew(delivery, lease=h.timing.lease)
    if h.inspectable:
        calls["pending"] = lambda: h.pending(channel)
        calls["next_due"] = lambda: h.next_due(channel)
    h.close()

    wrong = {}
    for verb, call in calls.items():
        try:
            call()
        except TransportClosed:
            continue
        except Exception as error:
            wrong[verb] = f"raised {type(error).__name__}: {error}"
        else:
            wrong[verb] = "returned"
    assert not wrong, f"after close, {h.name} did not raise TransportClosed: {wrong}"
    assert h.capabilities is not None


@check()
def closing_twice_is_a_no_op(h: Harness) -> None:
    """``close`` on a closed transport does nothing and raises nothing."""
    h.close()
    try:
        h.close()
    except Exception as error:
        raise AssertionError(
            f"{h.name}.close() on a closed transport raised {type(error).__name__}: {error}"
        ) from None


@check(declares("durable"))
def sent_message_survives_reopen(h: Harness) -> None:
    """A message sent, then the transport closed: a new transport on the storage receives it."""
    channel = h.channel()
    h.send(channel, WireMessage(b"persistent"))
    h.close()

    reopened = h.reopen()
    delivery = reopened.expect(channel, "the message sent before the restart")
    assert delivery.message.body == b"persistent"


@check(declares("durable"))
def acked_message_stays_gone_after_reopen(h: Harness) -> None:
    """An acknowledged message does not come back after a restart."""
    channel = h.channel()
    h.send(channel, WireMessage(b"finished"))
    h.ack(h.expect(channel, "the message just sent"))
    h.close()

    reopened = h.reopen()
    reopened.expect_nothing(
        channel,
        "it was acknowledged before the restart",
        until=h.now() + h.timing.lease + h.precision(),
    )


@check(declares("durable"))
def unacked_message_survives_reopen(h: Harness) -> None:
    """A process dies holding a lease: after the restart the message comes back."""
    channel = h.channel()
    h.send(channel, WireMessage(b"in flight"))
    h.expect(channel, "the message just sent")  # the process dies holding the lease
    lease_ends = h.now() + h.timing.lease
    h.close()

    reopened = h.reopen()
    by = lease_ends if h.capabilities.lease == "timed" else None
    delivery = reopened.expect(channel, "the message its dead process held", by=by)
    assert delivery.message.body == b"in flight"
