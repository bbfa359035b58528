"""Lease renewal: a :class:`~conveyor.transports.seam.RenewableTransport` extends a timed lease.

The kernel renews while a long handler runs, so a renewed lease must run from the renewal (not
from the receive), a renewed delivery must still settle, and a receipt whose lease already ran
out (and whose message was delivered again) must not be renewed: its handler no longer owns the
message. A lease held by a connection has nothing to renew, so these checks do not apply to it.
"""

from __future__ import annotations

from conveyor.core.errors import StaleReceipt
from conveyor.transports.seam import Delivery, WireMessage
from pytest_conveyor.conformance.checks.leases import assert_redelivery
from pytest_conveyor.conformance.harness import Harness
from pytest_conveyor.conformance.registry import Group, renewable, timed_lease

__all__ = ["RENEWAL"]

RENEWAL = Group("lease renewal")
check = RENEWAL.check


@check(renewable, timed_lease)
def renewed_lease_runs_from_the_renewal(h: Harness) -> None:
    """Renewed halfway, the message stays leased past the first lease's end, then comes back."""
    lease, channel = h.timing.lease, h.channel()
    h.send(channel, WireMessage(b"long job"))
    delivery = h.expect(channel, "the message just sent")
    h.pass_time(lease / 2)

    renewed_before = h.now()
    h.renew(delivery, lease=lease)
    renewed_after = h.now()

    h.expect_nothing(
        channel,
        f"its lease was renewed at {renewed_before.isoformat()} for {lease}",
        until=renewed_before + lease - h.precision(),
    )
    again = h.expect(channel, "the redelivery after the renewed lease", by=renewed_after + lease)
    assert_redelivery(h, again, b"long job", 2)


@check(renewable, timed_lease)
def renewed_delivery_can_still_be_acknowledged(h: Harness) -> None:
    """Renewing keeps the receipt good: the ack after it removes the message for good."""
    channel = h.channel()
    h.send(channel, WireMessage(b"renewed"))
    delivery = h.expect(channel, "the message just sent")
    h.renew(delivery, lease=h.timing.lease)
    h.ack(delivery)

    h.expect_nothing(
        channel,
        "it was acknowledged after its renewal",
        until=h.now() + h.timing.lease + h.precision(),
    )


@check(renewable, timed_lease)
def renewing_a_stale_receipt_raises_stale_receipt(h: Harness) -> None:
    """Once the lease ran out and the message was delivered again, the old receipt is stale."""
    channel = h.channel()
    h.send(channel, WireMessage(b"taken over"))
    first = h.expect(channel, "the message just sent")
    second = h.expect(channel, "the redelivery", by=h.now() + h.timing.lease)

    _expect_stale(h, first, "whose message was delivered again")
    h.ack(second)  # the current delivery still owns it


@check(renewable, timed_lease)
def renewing_an_acknowledged_delivery_raises_stale_receipt(h: Harness) -> None:
    """An acknowledged message cannot be renewed back to life."""
    channel = h.channel()
    h.send(channel, WireMessage(b"finished"))
    delivery = h.expect(channel, "the message just sent")
    h.ack(delivery)

    _expect_stale(h, delivery, "that was acknowledged")
    h.expect_nothing(channel, "it was acknowledged before the renewal")


def _expect_stale(h: Harness, delivery: Delivery, which: str) -> None:
    try:
        h.renew(delivery, lease=h.timing.lease)
    except StaleReceipt:
        return
    raise AssertionError(
        f"{h.name}.renew() accepted a receipt {which} instead of raising StaleReceipt"
    )
