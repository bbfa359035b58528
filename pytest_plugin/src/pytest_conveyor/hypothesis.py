"""Hypothesis for message flows: strategies, and a base class for stateful tests.

Install with ``pip install pytest-conveyor[hypothesis]``; nothing else in the plugin imports
Hypothesis. Rules stay synchronous: the kernel runs every consumer to quiescence from plain
code, so there is no async plumbing (Hypothesis issue #4107 does not apply).

* :func:`messages` draws messages of your types; :func:`failure_plans` draws which handlers fail
  how many times.
* :class:`MessageFlowMachine` is a ``RuleBasedStateMachine`` over a fresh harness per example. It
  brings rules that run one consumer step at a time (so Hypothesis explores the order in which
  queued messages are handled), move the clock, make handlers fail, and settle; and invariants
  checked after settling: no message is lost, and every copy of a message ends in exactly one
  final state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from conveyor.core.journal import RecordKind
from conveyor.testing import FailurePlan, FlowAssertionError, Harness, Setup
from conveyor.testing.flow import ancestors, causal_parents, fold_copies
from conveyor.testing.matching import MessageMatcher, as_matcher
from conveyor.testing.report import explain

__all__ = ["messages", "failure_plans", "MessageFlowMachine"]

_BUS = (RecordKind.SENT, RecordKind.PUBLISHED, RecordKind.ASKED)
_ACCOUNTED = frozenset(
    {"dead_lettered", "raised", "discarded", "expired", "error_handled", "rejected"}
)


def messages(*types: type, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Messages of these types, their fields drawn from their annotations.

    ``fields`` override the strategy of a field by name (for every type that has it)::

        messages(PlaceOrder, order_id=st.sampled_from(["o-1", "o-2"]))
    """
    if not types:
        raise TypeError("messages() needs at least one message type, e.g. messages(PlaceOrder)")
    built = [
        st.builds(kind, **{name: s for name, s in fields.items() if _has_field(kind, name)})
        for kind in types
    ]
    return built[0] if len(built) == 1 else st.one_of(built)


def failure_plans(
    handlers: Sequence[object],
    *,
    max_failures: int = 3,
    exception: type[BaseException] | None = None,
) -> st.SearchStrategy[FailurePlan]:
    """Plans making some of ``handlers`` fail 1 to ``max_failures`` times per message.

    Pass the plan in the ``Messaging``'s handlers; it shrinks towards fewer failing handlers and
    fewer failures.
    """
    if not handlers:
        raise TypeError("failure_plans() needs the handlers that may fail")
    plans = st.dictionaries(
        st.sampled_from(list(handlers)), st.integers(1, max_failures), max_size=len(handlers)
    )
    if exception is None:
        return plans.map(FailurePlan)
    return plans.map(lambda failures: FailurePlan(failures, exception=exception))


class MessageFlowMachine(RuleBasedStateMachine):
    """A stateful test of a message flow, with invariants checked after settling.

    Subclass it, set ``setup`` (handlers, channels) and write rules that send or publish
    messages through ``self.messaging``; then ``TestMyFlow = MyFlow.TestCase``. Messages wait
    (queued mode); the built-in rules run them one step at a time in the order Hypothesis
    chooses, move the clock, inject failures and settle. After every settle and at the end of
    each example, the built-in invariants are checked:

    * every copy of a message ends in exactly one final state (handled, dead-lettered, ...);
      two for one copy is a message handled twice;
    * no message is lost: after settling with the clock moving, nothing is left waiting, and for
      each ``(cause, effect)`` in ``leads_to``, every message matching ``cause`` has a descendant
      matching ``effect``, unless a copy on the way ended in a recorded failure.

    Attributes:
        setup: how to build each example's ``Messaging`` (its clock always moves when settling).
        leads_to: pairs of message matchers: every cause must lead to an effect.
        fault_handlers: handlers the built-in ``inject_failure`` rule may make fail.
        max_failures: the most failures per message that rule plans.
        max_advance: the longest single clock step the ``advance`` rule takes.
    """

    setup: ClassVar[Setup] = Setup()
    leads_to: ClassVar[Sequence[tuple[MessageMatcher, MessageMatcher]]] = ()
    fault_handlers: ClassVar[Sequence[object]] = ()
    max_failures: ClassVar[int] = 2
    max_advance: ClassVar[timedelta] = timedelta(seconds=10)

    def __init__(self) -> None:
        super().__init__()
        self.faults = FailurePlan()
        setup = self.setup.replace(
            handlers=[*self.setup.handlers, self.faults], mode="queued", advance_time=True
        )
        self.messaging: Harness = setup.harness()
        self._broken = False

    # ------------------------------------------------------------------ built-in rules

    def _runnable(self) -> list[str]:
        m = self.messaging.messaging
        now = m.clock.now()
        return [
            name
            for name in m.channels
            if (due := m.driver.next_due([name])) is not None and due <= now
        ]

    @precondition(lambda self: bool(self._runnable()))
    @rule(data=st.data())
    def run_one_message(self, data: st.DataObject) -> None:
        """Handle one message from a channel Hypothesis picks: explores handling orders."""
        name = data.draw(st.sampled_from(self._runnable()), label="channel")
        self.messaging.messaging.driver.step(name)

    @rule(seconds=st.integers(min_value=1, max_value=60))
    def advance(self, seconds: int) -> None:
        """Move the clock, running what falls due on the way."""
        step = min(timedelta(seconds=seconds), self.max_advance)
        self.messaging.advance(step)

    @precondition(lambda self: bool(self.fault_handlers))
    @rule(data=st.data())
    def inject_failure(self, data: st.DataObject) -> None:
        """Make a handler fail its next attempts for each message."""
        handler = data.draw(st.sampled_from(list(self.fault_handlers)), label="handler")
        times = data.draw(st.integers(1, self.max_failures), label="times")
        self.faults.fail(handler, times)

    @rule()
    def settle(self) -> None:
        """Settle (moving the clock) and check the flow's invariants."""
        self.messaging.settle()
        self.check_flow()

    def teardown(self) -> None:
        if not self._broken:  # a rule already failed: report that failure, not a second one
            self.messaging.settle()
            self.check_flow()

    # ------------------------------------------------------------------ invariants

    def check_flow(self) -> None:
        """The built-in invariants, on a settled flow; extend it with your own checks."""
        __tracebackhide__ = True
        problems = [*self._twice_final(), *self._lost()]
        if problems:
            self._broken = True
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            sections = [("Flow invariants broken", problems)] if len(problems) > 1 else []
            raise FlowAssertionError(
                explain(  # one raise site: Hypothesis sees one failure
                    self.messaging.snapshot(),
                    f"{problems[0]}{more}",
                    sections=sections,
                )
            )

    def _twice_final(self) -> list[str]:
        found = []
        for copy in fold_copies(self.messaging.journal.records).values():
            if any(count > 1 for count in copy.outcomes()):
                finals = ", ".join(
                    f"#{r.seq} {r.kind.value}" for r in copy.records if r.kind in _FINALS
                )
                found.append(
                    f"Handled twice: {copy.message_type} {copy.message_id} -> "
                    f"{copy.endpoint_id} ended more than once: {finals}."
                )
        return found

    def _lost(self) -> list[str]:
        harness = self.messaging
        found = [
            f"Message lost: {p.message_type} {p.message_id} still waits on {p.where} after "
            f"settling with the clock moving."
            for p in harness.pending()
        ]
        records = harness.journal.records
        parents = causal_parents(records)
        copies = fold_copies(records).values()
        failed_ids = {c.message_id for c in copies if c.state in _ACCOUNTED}
        bus = [r for r in records if r.kind in _BUS]
        for cause, effect in self.leads_to:
            wanted, result = as_matcher(cause), as_matcher(effect)
            for record in bus:
                if not wanted.matches(record.payload, record.message_type):
                    continue
                family = {
                    r.message_id
                    for r in bus
                    if record.message_id in ancestors(r.message_id, parents)
                }
                if any(
                    result.matches(r.payload, r.message_type) for r in bus if r.message_id in family
                ):
                    continue
                if failed_ids & (family | {record.message_id}):
                    continue
                found.append(
                    f"Message lost: {record.message_type} {record.message_id} led to "
                    f"no {result.describe()}, and nothing on its way failed."
                )
        return found


_FINALS = frozenset(
    {
        RecordKind.HANDLED,
        RecordKind.ERROR_HANDLED,
        RecordKind.DEAD_LETTERED,
        RecordKind.DISCARDED,
        RecordKind.DUPLICATE,
        RecordKind.EXPIRED,
        RecordKind.REJECTED,
    }
)


def _has_field(kind: type, name: str) -> bool:
    annotations: dict[str, object] = {}
    for klass in reversed(kind.__mro__):
        annotations.update(getattr(klass, "__annotations__", {}))
    return name in annotations
