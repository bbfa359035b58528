"""Assertions about how messages relate: the order they were sent in, and what caused what.

Both settle first, like every outcome assertion, and both look only at messages entering the
bus (sent, published or asked): that is where order and causation are visible to a user of the
flow. Order allows gaps, so a test names only the messages it cares about; causation follows
each message's causation id up its chain of ancestors (or one step, with ``direct=True``).
"""

from __future__ import annotations

from conveyor.core.journal import Record
from conveyor.testing.core import HarnessCore
from conveyor.testing.flow import BUS_KINDS, ancestors, causal_parents, first_bus_records
from conveyor.testing.matching import MessageMatcher, as_matcher
from conveyor.testing.report import FlowAssertionError, explain

__all__ = ["OrderAssertions"]


class OrderAssertions(HarnessCore):
    """``assert_in_order`` and ``assert_caused_by``."""

    def assert_in_order(self, *messages: MessageMatcher) -> list[Record]:
        """Messages matching these were sent, published or asked in this order (gaps allowed)."""
        __tracebackhide__ = True
        self.settle()
        records = [r for r in self.journal.records if r.kind in BUS_KINDS]
        matchers = [as_matcher(m) for m in messages]
        found: list[Record] = []
        position = 0
        for matcher in matchers:
            hit = next(
                (
                    i
                    for i in range(position, len(records))
                    if matcher.matches(records[i].payload, records[i].message_type)
                ),
                None,
            )
            if hit is None:
                after = f" after #{found[-1].seq}" if found else ""
                order = [f"#{r.seq} {r.message_type} {r.message_id}" for r in found]
                raise FlowAssertionError(
                    explain(
                        self.snapshot(),
                        f"{matcher.describe()} was not sent, published or asked{after}.",
                        sections=[("Matched in order so far", order or ["nothing"])],
                    )
                )
            found.append(records[hit])
            position = hit + 1
        return found

    def assert_caused_by(
        self, message: MessageMatcher, cause: MessageMatcher, *, direct: bool = False
    ) -> Record:
        """A message matching ``message`` descends from one matching ``cause``.

        ``direct=True`` asks for the immediate cause (the message being handled when it was
        sent); otherwise any ancestor counts.
        """
        __tracebackhide__ = True
        self.settle()
        records = self.journal.records
        parents = causal_parents(records)
        first = first_bus_records(records)
        child, parent = as_matcher(message), as_matcher(cause)
        children = [r for r in first.values() if child.matches(r.payload, r.message_type)]
        for record in children:
            chain = ancestors(record.message_id, parents)
            for ancestor in chain[:1] if direct else chain:
                origin = first.get(ancestor)
                if origin is not None and parent.matches(origin.payload, origin.message_type):
                    return record
        how = "directly caused" if direct else "caused"
        note = "" if children else f" (no {child.describe()} was sent, published or asked)"
        raise FlowAssertionError(
            explain(
                self.snapshot(),
                f"{child.describe()} was not {how} by {parent.describe()}{note}.",
                offenders=children,
            )
        )
