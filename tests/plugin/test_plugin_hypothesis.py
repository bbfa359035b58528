"""Hypothesis: strategies for messages and failure plans, and the stateful base class."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plugin_app import CardDeclined, ChargeCard, OrderPlaced, PlaceOrder, charge

from conveyor import RecordKind
from conveyor.core.journal import Journal
from conveyor.testing import ALWAYS, FailurePlan, Setup
from conveyor.testing.flow import fold_copies
from pytest_conveyor.hypothesis import failure_plans, messages

WAREHOUSE = """
from dataclasses import dataclass

from hypothesis import Phase, settings
from hypothesis.stateful import rule

from conveyor import Context, asynchronous, event_handler
from conveyor.testing import Setup
from pytest_conveyor.hypothesis import MessageFlowMachine, messages


@dataclass(frozen=True)
class OrderPaid:
    order_id: str


@dataclass(frozen=True)
class OrderCancelled:
    order_id: str


@dataclass(frozen=True)
class OrderShipped:
    order_id: str


@asynchronous("warehouse")
class Warehouse:
    def __init__(self):
        self.after_cancel = False

    @event_handler
    def ship(self, event: OrderPaid, ctx: Context) -> None:
        if self.after_cancel and PLANTED_BUG:  # a flag the previous handler left behind
            self.after_cancel = False
            return  # the paid order is never shipped: a lost message
        ctx.publish(OrderShipped(event.order_id))

    @event_handler
    def cancel(self, event: OrderCancelled) -> None:
        self.after_cancel = True


class ShopFlow(MessageFlowMachine):
    setup = Setup(handlers=[Warehouse], channels=["warehouse"])
    leads_to = [(OrderPaid, OrderShipped)]
    fault_handlers = FAULTS

    @rule(event=messages(OrderPaid))
    def pay(self, event):
        self.messaging.publish(event)

    @rule(event=messages(OrderCancelled))
    def cancel(self, event):
        self.messaging.publish(event)


TestShopFlow = ShopFlow.TestCase
TestShopFlow.settings = settings(
    derandomize=True, max_examples=100, phases=[Phase.generate, Phase.shrink], deadline=None
)
"""


def shop(pytester: pytest.Pytester, *, planted_bug: bool, faults: str = "()") -> None:
    pytester.makepyfile(
        test_shop_flow=f"PLANTED_BUG = {planted_bug}\nFAULTS = {faults}\n" + WAREHOUSE
    )


def test_the_state_machine_finds_a_handler_that_loses_a_message_and_shrinks_it(pytester):
    shop(pytester, planted_bug=True)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(failed=1)
    lines = result.outlines
    start = lines.index("E       state = ShopFlow()")
    steps = lines[start + 1 : lines.index("E       state.teardown()", start)]
    assert [line[8:] for line in steps] == [
        "state.cancel(event=OrderCancelled(order_id=''))",
        "state.pay(event=OrderPaid(order_id=''))",
        "state.settle()",
    ]
    result.stdout.fnmatch_lines(
        [
            "E       FlowAssertionError: Message lost: OrderPaid msg-2 led to no OrderShipped, and "
            "nothing on its way failed.",
        ]
    )


def test_the_same_flow_without_the_bug_passes(pytester):
    shop(pytester, planted_bug=False)

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_injected_failures_that_end_in_dead_letters_are_accounted_for_not_lost(pytester):
    shop(pytester, planted_bug=False, faults='["Warehouse.ship"]')

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@given(messages(PlaceOrder, OrderPlaced, order_id=st.sampled_from(["o-1", "o-2"])))
def test_messages_draws_the_given_types_with_field_overrides(message):
    assert isinstance(message, PlaceOrder | OrderPlaced)
    assert message.order_id in ("o-1", "o-2")


@given(failure_plans([charge], max_failures=2, exception=CardDeclined))
def test_failure_plans_make_handlers_fail_as_many_times_as_drawn(plan):
    harness = Setup(handlers=[charge, plan], channels=["payments"], advance_time=True).harness()
    harness.send(ChargeCard("o-1"))

    failures = plan.failures.get("charge", 0)
    harness.assert_failed(ChargeCard, times=failures) if failures else harness.assert_not_failed()
    harness.assert_handled(charge)


def test_a_failure_plan_counts_attempts_per_message_and_can_fail_always():
    plan = FailurePlan({charge: ALWAYS})
    harness = Setup(handlers=[charge, plan], channels=["payments"], advance_time=True).harness()
    harness.send(ChargeCard("o-1"))

    harness.assert_dead_lettered(ChargeCard, match="planned failure 3 of every attempt")
    assert repr(plan) == "FailurePlan({charge: ALWAYS})"


def test_a_copy_that_ends_twice_is_visible_to_the_invariant():
    journal = Journal()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for kind in (
        RecordKind.QUEUED,
        RecordKind.HANDLED,
        RecordKind.HANDLED,
        RecordKind.REPLAYED,
        RecordKind.EXPIRED,
        RecordKind.DEAD_LETTERED,
    ):
        journal.append(at, kind, "msg-1", "ChargeCard", channel="payments", endpoint_id="charge")

    [copy] = fold_copies(journal.records).values()

    assert copy.outcomes() == [2, 1]  # handled twice; then expired and dead-lettered: one end
    assert copy.state == "dead_lettered"
