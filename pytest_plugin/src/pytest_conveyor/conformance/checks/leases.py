"""Leases, acknowledgement and release: at least once, as the declared lease promises.

A lease is what ``capabilities.lease`` says. A **timed** lease runs out after its duration and
the message comes back, not before (on real time: nothing until ``lease - precision`` after the
receive began, the message by ``lease + slack`` after it returned). A **connection** lease holds
the message while the consumer's connection lives: these checks take a second consumer from
``reopen``, let time pass (time alone must not free the message), then close that consumer's
connection, as a killed process would, and the message must come back.
"""

from __future__ import annotations

from datetime import datetime

from conveyor.transports.seam import Delivery, WireMessage
from pytest_conveyor.conformance.harness import Harness
from pytest_conveyor.conformance.registry import Group

__all__ = ["LEASES", "assert_redelivery", "lose_lease"]

LEASES = Group("leases and release")
check = LEASES.check


@check()
def ack_removes_message(h: Harness) -> None:
    """An acknowledged message never comes back, not even after its lease would have run out."""
    channel = h.channel()
    h.send(channel, WireMessage(b"done"))
    h.ack(h.expect(channel, "the message just sent"))

    h.expect_nothing(channel, "it was acknowledged", until=h.now() + h.timing.lease + h.precision())


@check()
def unacked_message_is_redelivered_after_its_lease_and_not_before(h: Harness) -> None:
    """At least once: a message leased and never settled comes back, as the lease promises."""
    channel = h.channel()
    h.send(channel, WireMessage(b"slow"))
    if h.capabilities.lease == "timed":
        before = h.now()
        h.expect(channel, "the message just sent")
        after = h.now()
        h.expect_nothing(
            channel,
            f"its lease of {h.timing.lease} had not run out",
            until=before + h.timing.lease - h.precision(),
        )
        again = h.expect(channel, "the redelivery", by=after + h.timing.lease)
    else:
        consumer = h.reopen()
        consumer.expect(channel, "the message just sent")
        h.expect_nothing(
            channel,
            "the consumer holding it is still connected (time alone never ends a connection lease)",
            until=h.now() + 3 * h.timing.lease,
        )
        consumer.close()
        again = h.expect(channel, "the redelivery after the consumer's connection closed")
    assert_redelivery(h, again, b"slow", 2)


@check()
def delivery_count_grows_with_each_redelivery(h: Harness) -> None:
    """1, 2, 3: each redelivery of the same message counts one more."""
    channel = h.channel()
    h.send(channel, WireMessage(b"flaky"))

    counts, due = [], None
    for n in (1, 2, 3):
        delivery, due = lose_lease(h, channel, f"delivery {n}", by=due)
        counts.append(delivery.delivery_count)
    if h.timing.counts_every_redelivery:
        assert counts == [1, 2, 3], f"{h.name} counted the deliveries {counts}, not [1, 2, 3]"
    else:
        assert counts[0] == 1, f"{h.name} counted the first delivery {counts[0]}, not 1"
        assert all(c >= 2 for c in counts[1:]), f"{h.name} counted redeliveries {counts[1:]}"


@check()
def consumer_killed_mid_message_loses_nothing(h: Harness) -> None:
    """A consumer dies holding the lease: the message comes back, and goes once acknowledged."""
    channel = h.channel()
    h.send(channel, WireMessage(b"survivor"))
    _, due = lose_lease(h, channel, "the message just sent")  # the consumer dies holding it

    second = h.expect(channel, "the message its dead consumer held", by=due)
    h.ack(second)
    assert second.message.body == b"survivor", f"{h.name} redelivered {second.message.body!r}"
    h.expect_nothing(
        channel, "the redelivery was acknowledged", until=h.now() + h.timing.lease + h.precision()
    )


@check()
def release_puts_message_back_at_once(h: Harness) -> None:
    """A released message is receivable again at once, counted as a redelivery."""
    channel = h.channel()
    h.send(channel, WireMessage(b"again"))
    h.release(h.expect(channel, "the message just sent"))

    assert_redelivery(h, h.expect(channel, "the released message"), b"again", 2)


def lose_lease(
    h: Harness, channel: str, what: str, *, by: datetime | None = None
) -> tuple[Delivery, datetime | None]:
    """Receive the next message on ``channel`` (due ``by``) and lose its lease unsettled.

    Timed: the lease runs out; returns the delivery and the instant the message is due back.
    Connection: a second consumer receives it and its connection closes; the message is due
    back at once (None).
    """
    if h.capabilities.lease == "timed":
        delivery = h.expect(channel, what, by=by)
        return delivery, h.now() + h.timing.lease
    consumer = h.reopen()
    delivery = consumer.expect(channel, what)
    consumer.close()
    return delivery, None


def assert_redelivery(h: Harness, delivery: Delivery, body: bytes, count: int) -> None:
    """The redelivered message is the same one, with ``delivery_count`` grown as declared."""
    assert delivery.message.body == body, f"{h.name} redelivered {delivery.message.body!r}"
    if h.timing.counts_every_redelivery:
        assert delivery.delivery_count == count, (
            f"{h.name} redelivered {body!r} with delivery_count {delivery.delivery_count}, "
            f"not {count}"
        )
    else:
        assert delivery.delivery_count >= 2, (
            f"{h.name} redelivered {body!r} with delivery_count {delivery.delivery_count}"
        )
