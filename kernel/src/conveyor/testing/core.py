"""``HarnessCore``: the harness without its assertions, and what strict teardown reads from it.

The harness is built in layers, each in its own module, each adding one thing to the one below:
``verbs`` passes a ``Messaging``'s verbs through and notes exceptions that reach the test;
``settling`` settles exactly and shows what waits; ``querying`` answers queries over the journal
(``sent()``, ``failed()``, ...). ``HarnessCore`` is their sum plus the three lists strict
teardown reads (``strict.py``): failures, dead letters and pending work the test did not
notice. ``Harness`` adds the ``assert_*`` methods on top.
"""

from __future__ import annotations

from conveyor.core.journal import Record
from conveyor.testing.acknowledgements import letter_id
from conveyor.testing.flow import Pending
from conveyor.testing.querying import Matches, QueryingHarness

__all__ = ["HarnessCore", "Matches"]


class HarnessCore(QueryingHarness):
    """A ``Messaging`` under test, without the ``assert_*`` methods (see ``Harness``).

    Built as ``HarnessCore(messaging, advance_time=..., width=..., replay=...)``; the arguments
    are described on :class:`~conveyor.testing.verbs.HarnessVerbs`.
    """

    def unasserted_failures(self) -> list[Record]:
        """Failed attempts and expiries that no assertion matched and no test call raised."""
        return self._acknowledged.unasserted_failures(self.journal.records)

    def unasserted_dead_letters(self) -> list[Record]:
        """Dead letters still in the store that no assertion matched.

        The store is listed only when some letter went unmatched: listing formats each letter's
        traceback, the dearest step of a test whose message ends dead-lettered.
        """
        unmatched = self._acknowledged.unasserted_dead_letters(self.journal.records)
        if not unmatched:
            return []
        stored = {letter.id for letter in self.messaging.dead_letters.list()}
        return [record for record in unmatched if letter_id(record) in stored]

    def uninspected_pending(self) -> list[Pending]:
        """Messages still waiting that the test neither settled nor looked at."""
        return self._acknowledged.uninspected(self._pending())
