"""``Harness``: a ``Messaging`` with assertions about what its messages did.

Every assertion about an outcome settles first (runs every consumer until nothing is runnable,
moving the clock only when the test asked for it), so ``assert_published`` and
``assert_not_published`` are both exact and instant. Assertions about pending work do not
settle: settling would run exactly what they look at. A failed assertion raises
:class:`~conveyor.testing.report.FlowAssertionError` with the full explanation.

The assertions live next to what they are about: outcomes (``outcome_assertions``), pending
work (``pending_assertions``), order and causation (``order_assertions``), each on top of
``HarnessCore`` (``core``); this module puts them together in the one class tests use.
"""

from __future__ import annotations

from conveyor.testing.order_assertions import OrderAssertions
from conveyor.testing.outcome_assertions import OutcomeAssertions
from conveyor.testing.pending_assertions import PendingAssertions
from conveyor.testing.transcript import transcript

__all__ = ["Harness"]


class Harness(OutcomeAssertions, PendingAssertions, OrderAssertions):
    """A ``Messaging`` under test, with ``assert_*`` methods next to its verbs.

    Build one around any ``Messaging`` (``Harness(Messaging(...))``), or let the pytest plugin's
    ``messaging`` fixture build it. Everything a ``Messaging`` has is reachable through it.
    """

    def transcript(self, *, payloads: bool = True) -> str:
        """The flow so far as stable text, one line per journal record (no settling)."""
        return transcript(self.journal.records, self.origin, payloads=payloads)
