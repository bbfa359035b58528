"""What became of one consumed delivery.

Its own module because both the consumption entry (``conveyor.drivers.consumption``, which
re-exports it) and the modules that settle a failed or unhandleable delivery
(``conveyor.drivers.failure_resolution``, ``conveyor.drivers.dead_lettering``) return it, and
neither of those may import the entry.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Outcome"]


class Outcome(StrEnum):
    """What became of one delivery."""

    HANDLED = "handled"
    FORWARDED = "forwarded"
    RETRIED = "retried"
    ERROR_HANDLED = "error_handled"
    DEAD_LETTERED = "dead_lettered"
    REQUEUED = "requeued"
    DISCARDED = "discarded"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    HELD = "held"
    RELEASED = "released"  # given back to the transport to come again (a store failed)
    STALE = "stale"  # the lease ran out first: another delivery settles the message
