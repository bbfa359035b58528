"""Time to live: both sides of ``capabilities.ttl``, one promise about who decides expiry.

With native TTL the broker drops (or dead-letters) an expired message itself. Without it the
transport must still deliver the message: the kernel checks ``expires_at`` on receipt and
dead-letters it, so a transport that dropped it would lose it silently.
"""

from __future__ import annotations

from conveyor.transports.seam import WireMessage
from pytest_conveyor.conformance.harness import Harness
from pytest_conveyor.conformance.registry import Group

__all__ = ["EXPIRY"]

EXPIRY = Group("time to live")
check = EXPIRY.check


@check()
def message_is_received_before_its_expires_at(h: Harness) -> None:
    """``expires_at`` never hides a message early, native TTL or not."""
    channel, expires_at = h.channel(), h.now() + h.timing.delay
    h.send(channel, WireMessage(b"fresh"), expires_at=expires_at)

    delivery = h.expect(channel, "a message that has not expired", by=expires_at - h.precision())
    assert delivery.message.body == b"fresh"


@check()
def expired_message_is_dropped_only_with_native_ttl(h: Harness) -> None:
    """Declared ``ttl``: an expired message is not delivered. Not declared: it still is."""
    channel, expires_at = h.channel(), h.now() + h.timing.delay
    h.send(channel, WireMessage(b"stale"), expires_at=expires_at)

    h.pass_time(expires_at + h.precision() - h.now())
    if h.capabilities.ttl:
        h.expect_nothing(channel, "it declares capabilities.ttl and the message had expired")
    else:
        try:
            delivery = h.expect(channel, "the expired message (the kernel decides expiry)")
        except AssertionError:
            raise AssertionError(
                f"{h.name} declares no capabilities.ttl, yet dropped a message past its "
                f"expires_at; the kernel decides expiry, so it must be delivered (or declare "
                f"ttl=True)"
            ) from None
        assert delivery.message.body == b"stale"
