"""What each assertion accepts and refuses: matching, counting, settling, time.

These drive ``conveyor.testing.Harness`` directly (the object the ``messaging`` fixture is);
what pytest prints when they fail is pinned in ``test_plugin_output.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from plugin_app import (
    CHANNELS,
    HANDLERS,
    CardDeclined,
    ChargeCard,
    OrderPlaced,
    Orders,
    PlaceOrder,
    charge,
    email_customer,
)

from conveyor import (
    Context,
    QueueChannel,
    SettleError,
    asynchronous,
    command_handler,
    event_handler,
    scheduled,
    time_to_live,
)
from conveyor.testing import ANY, FlowAssertionError, Harness, Setup, where

SETUP = Setup(handlers=HANDLERS, channels=CHANNELS)


@pytest.fixture
def flow() -> Harness:
    return SETUP.harness()


def fails(assertion: object, *args: object, **kwargs: object) -> str:
    """Call an assertion that must fail; return its headline."""
    assert callable(assertion)
    with pytest.raises(FlowAssertionError) as raised:
        assertion(*args, **kwargs)
    return str(raised.value).splitlines()[0]


# ---------------------------------------------------------------------- matching


def test_a_type_an_equal_value_a_subset_of_fields_a_name_and_a_predicate_all_match(flow):
    flow.send(PlaceOrder("o-1"))

    flow.assert_published(OrderPlaced)
    flow.assert_published(OrderPlaced(order_id="o-1"))
    flow.assert_published(where(OrderPlaced, order_id="o-1"))
    flow.assert_published(where(order_id=ANY))
    flow.assert_published(where(OrderPlaced, order_id=lambda value: value.startswith("o-")))
    flow.assert_published("OrderPlaced")
    flow.assert_published(lambda event: event.order_id == "o-1")
    flow.assert_published()


def test_values_that_differ_do_not_match(flow):
    flow.send(PlaceOrder("o-1"))

    flow.assert_not_published(OrderPlaced(order_id="o-2"))
    flow.assert_not_published(where(OrderPlaced, order_id="o-2"))
    flow.assert_not_published(where(OrderPlaced, missing_field=1))
    flow.assert_not_published(ChargeCard)
    flow.assert_not_published(lambda event: event.no_such_attribute)


def test_headers_match_the_messages_own_and_propagate_to_what_it_causes(flow):
    flow.send(PlaceOrder("o-1"), headers={"tenant": "acme"})

    flow.assert_sent(PlaceOrder, headers={"tenant": "acme"})
    flow.assert_published(OrderPlaced, headers={"tenant": "acme"})
    flow.assert_handled(email_customer, headers={"tenant": "acme"})
    assert fails(flow.assert_published, OrderPlaced, headers={"tenant": "other"}) == (
        "OrderPlaced was not published with headers {'tenant': 'other'}."
    )


def test_times_counts_matching_records_exactly(flow):
    flow.send(PlaceOrder("o-1"))
    flow.send(PlaceOrder("o-2"))

    flow.assert_published(OrderPlaced, times=2)
    assert fails(flow.assert_published, OrderPlaced, times=1) == (
        "OrderPlaced was published 2 times, not once."
    )


def test_one_returns_the_single_match_and_refuses_none_or_several(flow):
    flow.send(PlaceOrder("o-1"))
    flow.send(PlaceOrder("o-2"))

    record = flow.published(where(OrderPlaced, order_id="o-2")).one()
    assert record.payload == OrderPlaced("o-2")
    assert fails(flow.published(OrderPlaced).one) == "OrderPlaced was published 2 times, not once."
    assert fails(flow.published(ChargeCard).one) == "ChargeCard was not published."
    assert flow.sent(PlaceOrder).payloads() == [PlaceOrder("o-1"), PlaceOrder("o-2")]


# ---------------------------------------------------------------------- handling


def test_the_handler_is_named_by_function_bound_method_or_endpoint_id_first_or_by():
    orders = Orders()
    flow = SETUP.replace(handlers=[orders, email_customer, charge]).harness()
    flow.send(PlaceOrder("o-1"))

    flow.assert_handled(email_customer, OrderPlaced)
    flow.assert_handled(OrderPlaced, by=email_customer)
    flow.assert_handled(PlaceOrder, by=orders.place)
    flow.assert_handled("Orders.place")
    flow.assert_handled(email_customer)
    flow.assert_not_handled(PlaceOrder, by=email_customer)
    with pytest.raises(ValueError, match="is not a handler of this Messaging"):
        flow.assert_handled(OrderPlaced, by="nobody")


def test_failed_attempts_match_by_exception_class_name_text_and_attempt(flow):
    flow.send(PlaceOrder("declined-1"))

    flow.assert_failed(ChargeCard, by=charge, exception=CardDeclined, attempt=1)
    flow.assert_failed(ChargeCard, exception="CardDeclined", match="declined for declined-1")
    flow.assert_failed(ChargeCard, exception=CardDeclined("card declined for declined-1"))
    flow.assert_not_failed(OrderPlaced)
    assert fails(flow.assert_failed, ChargeCard, exception=ValueError) == (
        "ChargeCard did not fail with ValueError."
    )


def test_a_synchronous_handlers_exception_reaches_the_test(flow):
    @command_handler
    def refuse(command: ChargeCard) -> None:
        raise CardDeclined("no")

    sync = Setup(handlers=[refuse]).harness()
    with pytest.raises(CardDeclined):
        sync.send(ChargeCard("o-1"))
    sync.assert_failed(ChargeCard, exception=CardDeclined)


# ---------------------------------------------------------------------- time


def test_retries_wait_for_the_clock_unless_settling_may_move_it(flow):
    flow.send(PlaceOrder("declined-1"))

    flow.assert_retried(ChargeCard, delays=[timedelta(seconds=1)])
    assert flow.clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    flow.assert_not_dead_lettered()

    flow.settle(advance_time=True)

    flow.assert_retried(ChargeCard, times=2, delays=[timedelta(seconds=1), timedelta(seconds=2)])
    flow.assert_dead_lettered(ChargeCard, by=charge, exception=CardDeclined, attempts=3)
    assert flow.clock.now() == datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)


def test_advance_time_on_the_harness_makes_every_assertion_move_the_clock():
    flow = SETUP.replace(advance_time=True).harness()
    flow.send(PlaceOrder("declined-1"))

    flow.assert_dead_lettered(ChargeCard, attempts=3)
    headline = fails(flow.assert_retried, ChargeCard, delays=[timedelta(seconds=2)])
    assert headline == "ChargeCard was not retried with delays [2s]."


def test_advancing_the_clock_runs_the_retry_at_its_due_time(flow):
    flow.send(PlaceOrder("declined-1"))
    flow.assert_pending(ChargeCard, channel="payments", due_in=timedelta(0))  # queued, not run
    flow.settle()
    flow.assert_pending(ChargeCard, channel="payments", due_in=timedelta(seconds=1))

    flow.advance(timedelta(milliseconds=999))
    flow.assert_failed(ChargeCard, times=1)
    flow.advance(timedelta(milliseconds=1))
    flow.assert_failed(ChargeCard, times=2)
    flow.assert_pending(ChargeCard, due_at=datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC))


def test_a_scheduled_endpoint_does_not_keep_settling_going():
    ticks = []

    @scheduled(every=timedelta(hours=1))
    def hourly() -> None:
        ticks.append(1)

    flow = Setup(handlers=[hourly, *HANDLERS], channels=CHANNELS, advance_time=True).harness()
    flow.send(PlaceOrder("declined-1"))

    flow.assert_dead_lettered(ChargeCard)
    assert flow.clock.now() == datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)
    assert ticks == [1]  # the tick due at the start; the next one, at +1h, waits


def test_expired_copies_are_asserted_as_expired():
    @asynchronous("slow")
    @time_to_live(timedelta(seconds=5))
    @event_handler
    def archive(event: OrderPlaced) -> None:
        pass

    flow = Setup(handlers=[archive], channels=[QueueChannel("slow")]).harness()
    flow.publish(OrderPlaced("o-1"))
    flow.clock.advance(timedelta(seconds=6))  # the clock alone: nothing runs on the way

    flow.assert_expired(OrderPlaced, by=archive)
    flow.assert_not_handled(OrderPlaced, by=archive)


@dataclass(frozen=True)
class Ping:
    n: int


def test_a_runaway_loop_stops_at_the_step_limit_with_the_last_records():
    @asynchronous("loop")
    @command_handler
    def ping(command: Ping, ctx: Context) -> None:
        ctx.send(Ping(command.n + 1))

    flow = Setup(handlers=[ping], channels=["loop"], options={"max_steps": 50}).harness()
    flow.send(Ping(0))
    with pytest.raises(SettleError, match="did not finish within 50 steps"):
        flow.assert_handled(Ping)


# ---------------------------------------------------------------------- pending, order, causes


def test_pending_inspections_do_not_settle(flow):
    flow.send(PlaceOrder("o-1"))

    [email] = flow.pending(OrderPlaced, by=email_customer)
    assert (email.channel, email.state, email.attempt) == ("notifications", "queued", 1)
    flow.assert_pending(ChargeCard, channel="payments", times=1)
    assert fails(flow.assert_nothing_pending).startswith("Expected nothing pending, but")

    flow.assert_handled(email_customer)  # an outcome: settles
    flow.assert_nothing_pending()


def test_order_allows_gaps_and_refuses_the_wrong_order(flow):
    flow.send(PlaceOrder("o-1"))
    flow.send(PlaceOrder("o-2"))

    flow.assert_in_order(PlaceOrder("o-1"), ChargeCard("o-1"), PlaceOrder("o-2"))
    assert fails(flow.assert_in_order, PlaceOrder("o-2"), PlaceOrder("o-1")) == (
        "PlaceOrder(order_id='o-1') was not sent, published or asked after #7."
    )


def test_causation_follows_the_chain_directly_or_through_ancestors(flow):
    flow.send(PlaceOrder("o-1"))
    flow.send(PlaceOrder("o-2"))

    flow.assert_caused_by(OrderPlaced("o-2"), PlaceOrder("o-2"), direct=True)
    flow.assert_caused_by(ChargeCard("o-1"), PlaceOrder("o-1"))
    assert fails(flow.assert_caused_by, OrderPlaced("o-2"), PlaceOrder("o-1")) == (
        "OrderPlaced(order_id='o-2') was not caused by PlaceOrder(order_id='o-1')."
    )


def test_the_harness_has_everything_messaging_has(flow):
    assert flow.consumers() == ["notifications", "payments"]
    assert set(flow.channels) == {"notifications", "payments"}
    assert flow.dead_letters.count() == 0
    assert flow.command_bus().send(PlaceOrder("o-1")) is None
    flow.run("notifications")
    flow.assert_handled(email_customer)
